//! What an operator reads from `setup`, `teardown`, their `--dry-run` and
//! `status` (text and JSON), byte for byte, against the fake kernel. These
//! outputs are an interface (scripts and monitoring parse them): a change
//! to the code behind them must not change a byte unless it means to.

use std::time::Duration;

use plugctl_netlink::tc::{Filter, FwOptions, Handle, QdiscKind, QueueStats, ETH_P_IP};

use super::tests::{temp_dir, TempDir};
use crate::kernel::fake::FakeKernel;
use crate::{tree, Config, Controller};

/// Two families and two ports: every part kind, and more than one rule.
fn config(dir: &TempDir) -> Config {
    Config {
        addresses: vec![
            "169.254.255.254".parse().unwrap(),
            "fd00::1".parse().unwrap(),
        ],
        ports: vec![80, 443],
        state_dir: dir.0.clone(),
        ..Config::default()
    }
}

fn controller(dir: &TempDir) -> Controller<FakeKernel> {
    Controller::with_kernel(config(dir), FakeKernel::new())
        .unwrap()
        .with_lock_wait(Duration::from_millis(200))
}

/// A record with fixed times and pids: closed, held by the manual holder
/// and by one whose process is gone (its slot is not locked).
const RECORD: &str = r#"{"version":1,"closed":true,"pid":4242,"since_ms":1700000000000,"holders":[{"id":"manual","slot":null,"pid":4242,"since_ms":1700000000000,"what":"plugctl plug"},{"id":"77-00112233aabbccdd","slot":0,"pid":77,"since_ms":1700000000500,"what":"reload: systemctl reload haproxy"}]}"#;

/// [`RECORD`] without its manual holder: nobody alive holds the plug.
fn record_without_manual() -> String {
    RECORD.replace(
        r#"{"id":"manual","slot":null,"pid":4242,"since_ms":1700000000000,"what":"plugctl plug"},"#,
        "",
    )
}

/// What `setup` prints for the tc part of the tree, built from nothing.
const TC_ADDED: &str = "added qdisc prio 1: root bands 4 on lo
added qdisc pfifo 10: parent 1:1
added qdisc pfifo 20: parent 1:2
added qdisc pfifo 30: parent 1:3
added qdisc plug 40: parent 1:4 limit 1048576 (released)
added filter ip prio 1 fw handle 1 classid 1:4
added filter ipv6 prio 2 fw handle 1 classid 1:4";

/// `status`'s part lines for [`config`], each name followed by `checks[i]`.
fn part_lines(checks: [&str; 8]) -> String {
    const NAMES: [&str; 8] = [
        "  qdisc prio 1: root bands 4                                     ",
        "  qdisc pfifo 10: parent 1:1                                     ",
        "  qdisc pfifo 20: parent 1:2                                     ",
        "  qdisc pfifo 30: parent 1:3                                     ",
        "  qdisc plug 40: parent 1:4                                      ",
        "  filter ip prio 1 fw handle 1 classid 1:4                       ",
        "  filter ipv6 prio 2 fw handle 1 classid 1:4                     ",
        "  nft table inet plugctl chain output: 2 mark rule(s)            ",
    ];
    NAMES
        .iter()
        .zip(checks)
        .map(|(n, c)| format!("{n}{c}\n"))
        .collect()
}

fn status_text_and_json(c: &mut Controller<FakeKernel>) -> (String, String) {
    let s = c.status().unwrap();
    (s.to_string(), serde_json::to_string(&s).unwrap())
}

#[test]
fn setup_and_teardown_print_the_same_lines() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    assert_eq!(
        c.setup(false).unwrap().to_string(),
        format!(
            "{TC_ADDED}\ninstalled nft table inet plugctl with 2 lease set(s) and 2 mark rule(s)"
        )
    );
    assert_eq!(c.setup(false).unwrap().to_string(), "nothing to change");
    std::fs::write(c.store().record_path(), record_without_manual()).unwrap();
    assert_eq!(
        c.setup(false).unwrap().to_string(),
        "released a plug that was left closed by a holder that is gone"
    );
    std::fs::write(c.store().record_path(), "{").unwrap();
    assert_eq!(
        c.setup(false).unwrap().to_string(),
        "released a plug that may have been closed (unreadable record: not a record: EOF while parsing an object at line 1 column 1)"
    );
    assert_eq!(
        serde_json::to_string(&c.teardown().unwrap()).unwrap(),
        r#"["released plug 40:","deleted qdisc prio 1: root on lo (with its children and filters)","deleted nft table inet plugctl"]"#
    );
    assert_eq!(c.teardown().unwrap().to_string(), "nothing to change");
}

#[test]
fn conflicts_forced_setup_and_a_changed_config_print_the_same_lines() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let k = c.kernel_mut();
    k.qdiscs[0].handle = Handle::new(0x8001, 0);
    k.qdiscs[0].kind = QdiscKind::Other {
        kind: "fq_codel".into(),
        options: None,
    };
    assert_eq!(
        c.setup(false).unwrap_err().to_string(),
        "device lo has a root qdisc that is not plugctl's: fq_codel 8001:; left alone (use --force to replace it)"
    );
    assert_eq!(
        c.setup(true).unwrap().to_string(),
        format!("removed the root qdisc on lo (--force)\n{TC_ADDED}\ninstalled nft table inet plugctl with 2 lease set(s) and 2 mark rule(s)")
    );
    // Someone else's filter in plugctl's IPv6 slot.
    let k = c.kernel_mut();
    k.filters.retain(|f| f.prio != 2);
    k.filters.push(Filter {
        ifindex: 1,
        parent: Handle::new(1, 0),
        prio: 2,
        protocol: ETH_P_IP,
        handle: 7,
        kind: "fw".into(),
        fw: Some(FwOptions {
            classid: Handle::new(1, 1),
            mask: None,
        }),
    });
    assert_eq!(
        c.setup(false).unwrap_err().to_string(),
        "filter ipv6 prio 2 fw handle 1 classid 1:4 on lo: Differs(\"found fw handle 0x7 protocol 0x0800\"); left alone (use --force to replace it)"
    );
    let (text, json) = status_text_and_json(&mut c);
    assert_eq!(
        text,
        format!(
            "device lo (ifindex 1): tree differs from the config\n{}plug: open (set by pid {}); holding 0 packets (0 bytes); passed 0; dropped 0\nlease: none (new SYNs are not steered into the plug)",
            part_lines(["ok", "ok", "ok", "ok", "ok", "ok", "DIFFERS: found fw handle 0x7 protocol 0x0800", "ok"]), std::process::id()
        )
    );
    assert!(json.contains(r#"{"name":"filter ipv6 prio 2 fw handle 1 classid 1:4","check":{"state":"differs","detail":"found fw handle 0x7 protocol 0x0800"}}"#), "{json}");
    assert_eq!(
        c.setup(true).unwrap().to_string(),
        format!("removed the root qdisc on lo (--force)\n{TC_ADDED}")
    );
    // A changed configuration: only the rules are replaced (other ports
    // are other lease elements: no port at all is another key).
    let mut cfg = config(&dir);
    cfg.ports = vec![];
    let mut c = Controller::with_kernel(cfg, std::mem::take(c.kernel_mut())).unwrap();
    assert_eq!(
        c.setup(false).unwrap().to_string(),
        "installed nft table inet plugctl with 2 lease set(s) and 2 mark rule(s)"
    );
}

#[test]
fn dry_run_prints_the_same_commands() {
    let dir = temp_dir();
    let cfg = config(&dir);
    assert_eq!(
        tree::commands(&cfg).join("\n"),
        "tc qdisc add dev lo root handle 1: prio bands 4
tc qdisc add dev lo parent 1:1 handle 10: pfifo
tc qdisc add dev lo parent 1:2 handle 20: pfifo
tc qdisc add dev lo parent 1:3 handle 30: pfifo
tc qdisc add dev lo parent 1:4 handle 40: plug limit 1048576
tc qdisc change dev lo parent 1:4 handle 40: plug release_indefinite
tc filter add dev lo parent 1: protocol ip prio 1 handle 1 fw classid 1:4
tc filter add dev lo parent 1: protocol ipv6 prio 2 handle 1 fw classid 1:4
nft add table inet plugctl
nft add set inet plugctl lease4 '{ type ipv4_addr . inet_service; flags timeout; }'
nft add set inet plugctl lease6 '{ type ipv6_addr . inet_service; flags timeout; }'
nft add chain inet plugctl output '{ type filter hook output priority mangle; policy accept; }'
nft add rule inet plugctl output tcp flags & (syn|ack) == syn ip daddr . tcp dport @lease4 meta mark set 0x00000001
nft add rule inet plugctl output tcp flags & (syn|ack) == syn ip6 daddr . tcp dport @lease6 meta mark set 0x00000001"
    );
    assert_eq!(
        tree::teardown_commands(&cfg).join("\n"),
        "tc qdisc change dev lo parent 1:4 handle 40: plug release_indefinite
tc qdisc del dev lo root handle 1:
nft delete table inet plugctl"
    );
}

#[test]
fn status_prints_the_same_text_and_json() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let (text, json) = status_text_and_json(&mut c);
    assert_eq!(
        text,
        format!(
            "device lo (ifindex 1): tree missing\n{}plug: none",
            part_lines([
                "MISSING", "MISSING", "MISSING", "MISSING", "MISSING", "MISSING", "MISSING",
                "MISSING"
            ])
        )
    );
    assert_eq!(
        json,
        r#"{"device":"lo","ifindex":1,"setup":"missing","parts":[{"name":"qdisc prio 1: root bands 4","check":{"state":"missing"}},{"name":"qdisc pfifo 10: parent 1:1","check":{"state":"missing"}},{"name":"qdisc pfifo 20: parent 1:2","check":{"state":"missing"}},{"name":"qdisc pfifo 30: parent 1:3","check":{"state":"missing"}},{"name":"qdisc plug 40: parent 1:4","check":{"state":"missing"}},{"name":"filter ip prio 1 fw handle 1 classid 1:4","check":{"state":"missing"}},{"name":"filter ipv6 prio 2 fw handle 1 classid 1:4","check":{"state":"missing"}},{"name":"nft table inet plugctl chain output: 2 mark rule(s)","check":{"state":"missing"}}],"plug":null,"holders":[],"lease":[],"leftover":false,"record_error":null}"#
    );

    c.setup(false).unwrap();
    std::fs::write(c.store().record_path(), RECORD).unwrap();
    let plug = c
        .kernel_mut()
        .qdiscs
        .iter_mut()
        .find(|q| q.handle == tree::PLUG)
        .unwrap();
    plug.stats = QueueStats {
        qlen: 3,
        backlog: 222,
        packets: 1000,
        drops: 2,
        ..QueueStats::default()
    };
    // The rules as an older configuration had them.
    c.kernel_mut().table.as_mut().unwrap().truncate(1);
    let (text, json) = status_text_and_json(&mut c);
    assert_eq!(
        text,
        format!(
            "device lo (ifindex 1): tree differs from the config\n{}plug: closed (set by pid 4242); holding 3 packets (222 bytes); passed 1000; dropped 2\nholder manual: plugctl plug (pid 4242)\nholder 77-00112233aabbccdd: reload: systemctl reload haproxy (pid 77) GONE\nlease: none (new SYNs are not steered into the plug)",
            part_lines(["ok", "ok", "ok", "ok", "ok", "ok", "ok", "DIFFERS: found 1 rule(s), 1 of them plugctl mark rules as configured"])
        )
    );
    assert_eq!(
        json,
        r#"{"device":"lo","ifindex":1,"setup":"differs","parts":[{"name":"qdisc prio 1: root bands 4","check":{"state":"ok"}},{"name":"qdisc pfifo 10: parent 1:1","check":{"state":"ok"}},{"name":"qdisc pfifo 20: parent 1:2","check":{"state":"ok"}},{"name":"qdisc pfifo 30: parent 1:3","check":{"state":"ok"}},{"name":"qdisc plug 40: parent 1:4","check":{"state":"ok"}},{"name":"filter ip prio 1 fw handle 1 classid 1:4","check":{"state":"ok"}},{"name":"filter ipv6 prio 2 fw handle 1 classid 1:4","check":{"state":"ok"}},{"name":"nft table inet plugctl chain output: 2 mark rule(s)","check":{"state":"differs","detail":"found 1 rule(s), 1 of them plugctl mark rules as configured"}}],"plug":{"state":"closed","pid":4242,"since_ms":1700000000000,"held_packets":3,"held_bytes":222,"passed_packets":1000,"drops":2},"holders":[{"id":"manual","slot":null,"pid":4242,"since_ms":1700000000000,"what":"plugctl plug","alive":true},{"id":"77-00112233aabbccdd","slot":0,"pid":77,"since_ms":1700000000500,"what":"reload: systemctl reload haproxy","alive":false}],"lease":[],"leftover":false,"record_error":null}"#
    );

    // Without the manual holder, the gone one leaves the plug closed.
    std::fs::write(c.store().record_path(), record_without_manual()).unwrap();
    c.kernel_mut().table = None;
    let (text, json) = status_text_and_json(&mut c);
    assert!(
        text.ends_with(
            "  nft table inet plugctl chain output: 2 mark rule(s)            MISSING
plug: closed (set by pid 4242); holding 3 packets (222 bytes); passed 1000; dropped 2
holder 77-00112233aabbccdd: reload: systemctl reload haproxy (pid 77) GONE
lease: none (new SYNs are not steered into the plug)
WARNING: the plug is closed but nobody holds it (a crash?): run `plugctl release`"
        ),
        "{text}"
    );
    assert!(
        json.ends_with(r#""leftover":true,"record_error":null}"#),
        "{json}"
    );

    std::fs::write(c.store().record_path(), "[1]").unwrap();
    let (text, json) = status_text_and_json(&mut c);
    assert!(
        text.ends_with(
            "  nft table inet plugctl chain output: 2 mark rule(s)            MISSING
plug: unreadable; holding 3 packets (222 bytes); passed 1000; dropped 2
lease: none (new SYNs are not steered into the plug)
WARNING: the state record is unreadable (not a record: invalid length 1, expected struct Record with 5 elements at line 1 column 3); the plug may be closed: run `plugctl release`"
        ),
        "{text}"
    );
    assert!(
        json.ends_with(r#""plug":{"state":"unreadable","pid":null,"since_ms":null,"held_packets":3,"held_bytes":222,"passed_packets":1000,"drops":2},"holders":[],"lease":[],"leftover":false,"record_error":"not a record: invalid length 1, expected struct Record with 5 elements at line 1 column 3"}"#),
        "{json}"
    );

    // A root that is not plugctl's hides everything below it.
    let k = c.kernel_mut();
    k.qdiscs.retain(|q| q.parent != Handle::ROOT);
    k.qdiscs.push(plugctl_netlink::tc::Qdisc {
        ifindex: 1,
        handle: Handle::new(5, 0),
        parent: Handle::ROOT,
        kind: QdiscKind::Pfifo(None),
        stats: QueueStats::default(),
    });
    let (text, _) = status_text_and_json(&mut c);
    assert!(
        text.starts_with(
            "device lo (ifindex 1): tree differs from the config
  qdisc prio 1: root bands 4                                     DIFFERS: found pfifo 5:
  qdisc pfifo 10: parent 1:1                                     MISSING"
        ),
        "{text}"
    );
    assert!(text.contains("\nplug: none\n"), "{text}");
    // ... and teardown leaves it alone.
    c.kernel_mut().calls.clear();
    assert_eq!(c.teardown().unwrap().to_string(), "nothing to change");
    assert!(c.kernel_mut().calls.is_empty());
}
