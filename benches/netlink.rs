//! Netlink speed: what one plug+release costs plugctl against what Yelp's
//! shell method costs, with a bare netlink round trip as the floor; setup
//! against Yelp's setup script; and building/parsing the messages.
//!
//! The kernel parts need sch_prio/sch_plug/cls_fw: run them with
//! `benches/run.sh` (natively if the kernel has them, else in the VM lab).
//! Without them only the build/parse group runs. Every figure that matters
//! is a ratio between benchmarks of the same run (`benches/run.sh` prints
//! them): these machines are shared and noisy.

use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use plugctl::hold::{Hold, PlugHold};
use plugctl::kernel::{Kernel, NetlinkKernel};
use plugctl::tree::{PLUG, PLUG_PARENT, PRIO};
use plugctl::{Config, Controller};
use plugctl_netlink::frame::split;
use plugctl_netlink::nft::{self, MarkRule, Ruleset};
use plugctl_netlink::tc::{self, Handle, PlugAction, PlugOptions, QdiscKind, Write};
use plugctl_netlink::{Family, Socket};

fn build_and_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    let release = QdiscKind::Plug(Some(PlugOptions::action(PlugAction::ReleaseIndefinite)));
    g.bench_function("build plug change", |b| {
        b.iter(|| tc::new_qdisc(1, PLUG_PARENT, PLUG, &release, Write::Change, 7))
    });
    let rules = [nft::Rule::Mark(MarkRule {
        addr: "169.254.255.254".parse().unwrap(),
        port: None,
        mark: 1,
    })];
    g.bench_function("build nft install batch", |b| {
        b.iter(|| nft::install_batch(&Ruleset::new("plugctl", "output", &rules), 1))
    });
    // A plug dump entry as the kernel sends it (docs/netlink-reference.md §2.7).
    let entry = tc::new_qdisc(
        1,
        PLUG_PARENT,
        PLUG,
        &QdiscKind::Plug(None),
        Write::Create,
        1,
    );
    let mut msg = split(&entry).unwrap().remove(0);
    msg.ty = tc::RTM_NEWQDISC;
    g.bench_function("parse qdisc dump entry", |b| {
        b.iter(|| tc::parse_qdisc(&msg))
    });
    g.finish();
}

fn in_fresh_netns() -> bool {
    // SAFETY: unshare only affects this thread (criterion runs benchmarks on it).
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return false;
    }
    Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().expect("spawn");
    assert!(st.success(), "{cmd} {args:?}");
}

/// Yelp's setup script (tc + nl-qdisc-add + iptables), as shell commands.
fn yelp_setup() {
    run(
        "tc",
        &[
            "qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "4",
        ],
    );
    for (p, h) in [("1:1", "10:"), ("1:2", "20:"), ("1:3", "30:")] {
        run(
            "tc",
            &[
                "qdisc", "add", "dev", "lo", "parent", p, "handle", h, "pfifo",
            ],
        );
    }
    run(
        "nl-qdisc-add",
        &[
            "--dev=lo",
            "--parent=1:4",
            "--id=40:",
            "plug",
            "--limit=1048576",
        ],
    );
    yelp_plug("--release-indefinite");
    run(
        "tc",
        &[
            "filter", "add", "dev", "lo", "protocol", "ip", "parent", "1:0", "prio", "1", "handle",
            "1", "fw", "classid", "1:4",
        ],
    );
    yelp_mark_rule("-I");
}

/// Yelp's plug change, `nl-qdisc-add` with these arguments and an ACTION.
const YELP_PLUG: [&str; 5] = ["--dev=lo", "--parent=1:4", "--id=40:", "--update", "plug"];

fn yelp_plug(action: &str) {
    run("nl-qdisc-add", &[&YELP_PLUG[..], &[action]].concat());
}

/// Yelp's marking rule, inserted (`-I`) or deleted (`-D`).
fn yelp_mark_rule(op: &str) {
    let rule = "-p tcp -s 169.254.255.254 --syn -j MARK --set-mark 1";
    let mut args = vec!["-t", "mangle", op, "OUTPUT"];
    args.extend(rule.split(' '));
    run("iptables", &args);
}

fn yelp_teardown() {
    run("tc", &["qdisc", "del", "dev", "lo", "root"]);
    yelp_mark_rule("-D");
}

fn kernel(c: &mut Criterion) {
    if !in_fresh_netns() {
        eprintln!("kernel benchmarks skipped: cannot make a network namespace (not root?)");
        return;
    }
    let state = std::env::temp_dir().join(format!("plugctl-bench-{}", std::process::id()));
    let cfg = Config {
        state_dir: state.clone(),
        ..Config::default()
    };
    let mut ctl = Controller::new(cfg.clone()).unwrap();
    if let Err(e) = ctl.setup(false) {
        eprintln!("kernel benchmarks skipped: {e} (run benches/run.sh: it uses the VM lab)");
        return;
    }
    let mut k = NetlinkKernel::new();
    let ifindex = k.ifindex("lo").unwrap().unwrap();
    let mut g = c.benchmark_group("plug+release");
    g.measurement_time(Duration::from_secs(5)).sample_size(20);

    // The floor: one request and its ACK on a held rtnetlink socket (a
    // no-op change of the plug: no TCA_OPTIONS, so the kernel only looks it up).
    let mut sock = Socket::open(Family::Route).unwrap();
    g.bench_function("bare netlink round trip", |b| {
        b.iter(|| {
            let seq = sock.next_seq();
            let msg = tc::new_qdisc(
                ifindex,
                PLUG_PARENT,
                PLUG,
                &QdiscKind::Plug(None),
                Write::Change,
                seq,
            );
            sock.request(&msg, seq).unwrap();
        })
    });
    // Exactly what `plugctl plug` and `plugctl release` send.
    let mut plug = PlugHold::new("lo");
    plug.held(&mut k).unwrap();
    g.bench_function("plugctl: buffer + release over a held socket", |b| {
        b.iter(|| {
            plug.hold(&mut k).unwrap();
            plug.release(&mut k).unwrap();
        })
    });
    // Attribution: two real changes that wake no queue. BUFFER while already
    // buffering leaves the plug closed and does not schedule the device
    // queue; release (and the first BUFFER after it) do. Against the floor
    // and plug+release, this splits plugctl's cost into round trips and the
    // kernel's queue wake-up (NET_TX softirq over prio's bands).
    g.bench_function("two changes that wake no queue (buffer, buffer)", |b| {
        b.iter(|| {
            plug.hold(&mut k).unwrap();
            plug.hold(&mut k).unwrap();
        })
    });
    plug.release(&mut k).unwrap();
    let tc_plug = |action| {
        let args = [
            "qdisc", "change", "dev", "lo", "parent", "1:4", "handle", "40:", "plug",
        ];
        run("tc", &[&args[..], &[action]].concat());
    };
    g.bench_function("tc qdisc change x2 (spawned)", |b| {
        b.iter(|| {
            tc_plug("block");
            tc_plug("release_indefinite");
        })
    });
    let nl_ok = Command::new("nl-qdisc-add")
        .args(YELP_PLUG)
        .arg("--release-indefinite")
        .status()
        .is_ok_and(|s| s.success());
    if nl_ok {
        g.bench_function("nl-qdisc-add x2 (spawned, Yelp)", |b| {
            b.iter(|| {
                yelp_plug("--buffer");
                yelp_plug("--release-indefinite");
            })
        });
    } else {
        eprintln!(
            "nl-qdisc-add cannot load its plug module (libnl plugin path, trip-up 15): skipped"
        );
    }
    g.finish();

    let mut g = c.benchmark_group("setup+teardown");
    g.measurement_time(Duration::from_secs(8)).sample_size(10);
    ctl.teardown().unwrap();
    g.bench_function("plugctl setup + teardown", |b| {
        b.iter(|| {
            ctl.setup(false).unwrap();
            ctl.teardown().unwrap();
        })
    });
    let yelp_ok = nl_ok
        && Command::new("iptables")
            .arg("-V")
            .status()
            .is_ok_and(|s| s.success());
    if yelp_ok {
        g.bench_function("Yelp's setup script + teardown (spawned)", |b| {
            b.iter(|| {
                yelp_setup();
                yelp_teardown();
            })
        });
    } else {
        eprintln!("Yelp's setup script needs nl-qdisc-add's plug module and iptables: skipped");
    }
    g.finish();
    steady_state(c, &mut ctl);
    let _ = std::fs::remove_dir_all(state);
}

/// What the installed tree (plug open) costs every loopback connection and
/// byte: lo's default is `noqueue`, so the prio qdisc adds queueing to each
/// packet. Measured with and without the tree in the same run.
fn steady_state(c: &mut Criterion, ctl: &mut Controller) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    if !Command::new("ip")
        .args(["addr", "add", "169.254.255.254/32", "dev", "lo"])
        .status()
        .is_ok_and(|s| s.success())
    {
        return;
    }
    // Every connect below leaves a TIME_WAIT socket; tens of thousands pile
    // up over the run and slow later configurations, so none are kept (this
    // is the bench's own network namespace). A last "no tree" run checks that
    // nothing else drifts.
    std::fs::write("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0").unwrap();
    // A sink that accepts connections and reads everything sent to it.
    let listener = TcpListener::bind("169.254.255.254:7000").unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    let payload = vec![7u8; 4 << 20];
    let mut g = c.benchmark_group("steady-state");
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    // The whole tree, and each half alone, to attribute the overhead: the
    // tc half (prio root on lo, whose default is noqueue: every packet now
    // takes the qdisc lock, enqueue and dequeue, and the fw lookup) and the
    // nf_tables half (one more output hook and one rule for every packet).
    let mut k = NetlinkKernel::new();
    let ifindex = k.ifindex("lo").unwrap().unwrap();
    for (label, tc_half, nft_half) in [
        ("no tree", false, false),
        ("tree installed (plug open)", true, true),
        ("tc qdiscs and filters only", true, false),
        ("nft mark rule only", false, true),
        ("no tree, again at the end", false, false),
    ] {
        let _ = ctl.teardown();
        if tc_half || nft_half {
            ctl.setup(false).unwrap();
            if !tc_half {
                k.del_qdisc(ifindex, Handle::ROOT, PRIO).unwrap();
            }
            if !nft_half {
                k.nft_delete(&ctl.config().table).unwrap();
            }
        }
        g.bench_function(format!("connect, {label}"), |b| {
            b.iter(|| TcpStream::connect("169.254.255.254:7000").unwrap())
        });
        g.bench_function(format!("send 4 MiB, {label}"), |b| {
            b.iter(|| {
                let mut s = TcpStream::connect("169.254.255.254:7000").unwrap();
                s.write_all(&payload).unwrap();
            })
        });
    }
    g.finish();
    let _ = ctl.teardown();
}

criterion_group!(benches, build_and_parse, kernel);
criterion_main!(benches);
