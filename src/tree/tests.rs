//! The tree against the fake kernel: order, idempotence, rollback, conflicts.

use super::*;
use crate::kernel::fake::FakeKernel;
use plugctl_netlink::KernelError;

fn fails_with(prefix: &str, errno: i32, message: &str) -> Option<(String, KernelError)> {
    Some((
        prefix.into(),
        KernelError {
            errno,
            message: Some(message.into()),
        },
    ))
}

#[test]
fn setup_builds_in_order_and_second_run_changes_nothing() {
    let mut k = FakeKernel::new();
    let cfg = Config::default();
    let changes = setup(&mut k, &cfg, false).unwrap();
    assert_eq!(changes.lines.len(), 8, "{changes}");
    assert!(changes.plug_created);
    assert_eq!(
        k.calls,
        [
            "new_qdisc prio 1: Create",
            "new_qdisc pfifo 10: Create",
            "new_qdisc pfifo 20: Create",
            "new_qdisc pfifo 30: Create",
            "new_qdisc plug 40: Create",
            "new_qdisc plug 40: Change release_indefinite",
            "new_filter prio 1",
            "new_filter prio 2",
            "nft_install plugctl",
        ]
    );
    assert!(observe(&mut k, &cfg).unwrap().complete());
    k.calls.clear();
    let again = setup(&mut k, &cfg, false).unwrap();
    assert_eq!(again.to_string(), "nothing to change");
    assert!(!again.plug_created);
    assert!(k.calls.is_empty(), "{:?}", k.calls);
}

#[test]
fn failure_half_way_rolls_back_what_this_run_created() {
    let mut k = FakeKernel::new();
    k.fail_on = fails_with("new_filter prio 1", libc::ENOENT, "TC classifier not found");
    let err = setup(&mut k, &Config::default(), false).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingKernelFeature {
                feature: "cls_fw",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        k.qdiscs.iter().all(|q| q.handle.0 == 0),
        "left behind: {:?}",
        k.qdiscs
    );
    assert!(k.filters.is_empty() && k.table.is_none());
}

#[test]
fn failure_of_the_rule_keeps_what_existed_before() {
    let mut k = FakeKernel::new();
    let cfg = Config::default();
    setup(&mut k, &cfg, false).unwrap();
    // The rule is gone (someone flushed the ruleset); re-adding it fails.
    k.table = None;
    k.fail_on = fails_with("nft_install", libc::EPERM, "Operation not permitted");
    let err = setup(&mut k, &cfg, false).unwrap_err();
    assert!(matches!(err, Error::Permission { .. }), "{err}");
    // The tc tree predates this run: it stays.
    assert!(k.qdiscs.iter().any(|q| q.handle == PLUG));
    assert_eq!(k.filters.len(), 2);
}

#[test]
fn foreign_root_is_refused_unless_forced() {
    let mut k = FakeKernel::new();
    k.qdiscs[0].handle = Handle::new(0x8001, 0);
    k.qdiscs[0].kind = QdiscKind::Other {
        kind: "fq_codel".into(),
        options: None,
    };
    let err = setup(&mut k, &Config::default(), false).unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("fq_codel 8001:")),
        "{err}"
    );
    assert!(k.calls.is_empty());
    setup(&mut k, &Config::default(), true).unwrap();
    assert_eq!(k.calls[0], "del_qdisc root 0:");
    assert!(observe(&mut k, &Config::default()).unwrap().complete());
}

#[test]
fn teardown_releases_then_removes_only_what_setup_built() {
    let mut k = FakeKernel::new();
    let cfg = Config::default();
    setup(&mut k, &cfg, false).unwrap();
    k.calls.clear();
    teardown(&mut k, &cfg).unwrap();
    assert_eq!(
        k.calls,
        [
            "new_qdisc plug 40: Change release_indefinite",
            "del_qdisc root 1:",
            "nft_delete plugctl"
        ]
    );
    assert!(observe(&mut k, &cfg).unwrap().absent());
    k.calls.clear();
    assert_eq!(
        teardown(&mut k, &cfg).unwrap().to_string(),
        "nothing to change"
    );
    assert!(k.calls.is_empty());
}

#[test]
fn changed_config_is_reported_and_applied() {
    let mut k = FakeKernel::new();
    let mut cfg = Config::default();
    setup(&mut k, &cfg, false).unwrap();
    cfg.ports = vec![80, 443];
    let obs = observe(&mut k, &cfg).unwrap();
    let rules = obs.parts.last().unwrap();
    assert!(matches!(rules.check, Check::Differs(_)), "{rules:?}");
    k.calls.clear();
    setup(&mut k, &cfg, false).unwrap();
    assert_eq!(k.calls, ["nft_install plugctl"]);
    // One rule per family; the ports are the lease's elements, keyed by
    // address . port now.
    assert_eq!(k.table.as_ref().map(Vec::len), Some(1));
    assert_eq!(k.sets[0].0.key_len, 8);
    // Other ports, same key: nothing to change.
    cfg.ports = vec![8080];
    k.calls.clear();
    assert_eq!(
        setup(&mut k, &cfg, false).unwrap().to_string(),
        "nothing to change"
    );
    assert!(k.calls.is_empty());
    // Another family: its set and rule are added.
    cfg.addresses.push("fd00::1".parse().unwrap());
    setup(&mut k, &cfg, false).unwrap();
    assert_eq!(k.calls, ["nft_install plugctl"]);
    assert_eq!(k.sets.len(), 2);
}

#[test]
fn an_older_unleased_tree_is_migrated() {
    use plugctl_netlink::nft::{MarkRule, Rule};
    let mut k = FakeKernel::new();
    let cfg = Config::default();
    setup(&mut k, &cfg, false).unwrap();
    // What plugctl built before leases: a mark rule per address, no set.
    k.table = Some(vec![Rule::Mark(MarkRule {
        addr: cfg.addresses[0],
        port: None,
        mark: cfg.mark,
    })]);
    k.sets.clear();
    let obs = observe(&mut k, &cfg).unwrap();
    let Check::Differs(why) = &obs.parts.last().unwrap().check else {
        panic!("{obs:?}");
    };
    assert!(why.contains("un-leased"), "{why}");
    k.calls.clear();
    setup(&mut k, &cfg, false).unwrap();
    assert_eq!(k.calls, ["nft_install plugctl"]);
    assert_eq!(k.table, Some(rules(&cfg)));
    assert_eq!(k.sets.len(), 1);
    assert!(observe(&mut k, &cfg).unwrap().complete());
    // A set of the wrong key (no flags timeout) is replaced too.
    k.sets[0].0.flags = 0;
    assert!(!observe(&mut k, &cfg).unwrap().complete());
}

#[test]
fn dry_run_commands_name_every_part() {
    let cfg = Config {
        addresses: vec![
            "169.254.255.254".parse().unwrap(),
            "fd00::1".parse().unwrap(),
        ],
        ..Config::default()
    };
    let c = commands(&cfg).join("\n");
    assert!(
        c.contains("tc qdisc add dev lo root handle 1: prio bands 4"),
        "{c}"
    );
    assert!(
        c.contains("protocol ipv6 prio 2 handle 1 fw classid 1:4"),
        "{c}"
    );
    assert_eq!(c.matches("nft add rule").count(), 2, "{c}");
}

#[test]
fn a_new_plug_that_cannot_be_opened_is_deleted_again() {
    let mut k = FakeKernel::new();
    let cfg = Config::default();
    setup(&mut k, &cfg, false).unwrap();
    // Someone deleted the plug; the rest of the tree predates the next run.
    k.qdiscs.retain(|q| q.handle != PLUG);
    k.calls.clear();
    k.fail_on = fails_with(
        "new_qdisc plug 40: Change",
        libc::EINVAL,
        "Invalid argument",
    );
    setup(&mut k, &cfg, false).unwrap_err();
    // A new plug is closed: left behind, it would hold every marked SYN.
    assert_eq!(
        k.calls,
        [
            "new_qdisc plug 40: Create",
            "new_qdisc plug 40: Change release_indefinite -> error",
            "del_qdisc 1:4 40:",
        ]
    );
    assert!(find_plug(&k.qdiscs).is_none());
    assert_eq!(k.filters.len(), 2, "what predates the run stays");
}
