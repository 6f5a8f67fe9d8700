//! What one reload costs: `plugctl reload -- true` against Yelp's shell
//! sequence, `nl-qdisc-add … plug --buffer; true; nl-qdisc-add … plug
//! --release-indefinite`, timed side by side, round by round, on the same
//! plug (plugctl's tree is Yelp's layout: `prio 1:`, `plug 40:` on `1:4`).
//! Prints the median wall time of each and the ratio plugctl / Yelp.
//!
//! Each plugctl binary is timed three ways:
//! - `reload --no-wait -- true`: what Yelp's sequence does (release when
//!   the command returns), so the ratio compares the same work;
//! - `reload --quiet-window 0s -- true`: the default's observed hand-over
//!   (listener snapshot, drain check, one look after the command) without
//!   its deliberate wait;
//! - `reload -- true`: the default. `true` changes no listener, so it
//!   releases after the quiet window (300 ms): a wait for an asynchronous
//!   reload (`kill -USR2`), not a cost of plugctl's.
//!
//! Run it with `benches/cost.sh` (natively if the kernel has
//! sch_prio/sch_plug/cls_fw, else in the VM lab). A benchmark, not a test:
//! the figures are only compared within one run.
//!
//! ```text
//! cost --plugctl PATH [--plugctl PATH]... [--rounds N] [--copy-to DIR]
//! ```
//!
//! Every `--plugctl` binary (e.g. this branch's and main's) is timed in the
//! same interleaved rounds. `--copy-to DIR` also times a copy of each in
//! DIR: in the VM lab the binaries live on the host's filesystem, shared
//! over 9p without a page cache, so every start of a 4 MB binary reads what
//! it touches from the host again (Yelp's nl-qdisc-add and its libraries
//! too, but they are smaller); a copy on the guest's tmpfs shows what a
//! local disk would.

use std::process::{Command, Stdio};
use std::time::Instant;

/// Yelp's plug change: `nl-qdisc-add` with these arguments and an action
/// (as in benches/storm.rs and benches/netlink.rs).
const YELP_PLUG: [&str; 5] = ["--dev=lo", "--parent=1:4", "--id=40:", "--update", "plug"];

fn must(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?}: {st}");
}

fn quiet(cmd: &str) -> Command {
    let mut c = Command::new(cmd);
    c.stdout(Stdio::null());
    c
}

/// Run `f` once and return its wall time in ms.
fn time(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The ways each plugctl binary is timed: a label and the arguments
/// before `-- true`.
const MODES: [(&str, &[&str]); 3] = [
    ("reload --no-wait -- true", &["reload", "--no-wait"]),
    (
        "reload --quiet-window 0s -- true",
        &["reload", "--quiet-window", "0s"],
    ),
    ("reload -- true (default)", &["reload"]),
];

fn main() {
    let mut plugctls: Vec<String> = vec![];
    let mut rounds = 15usize;
    let mut copy_to: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plugctl" => plugctls.push(args.next().expect("--plugctl PATH")),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds N")
            }
            // `cargo bench` passes --bench.
            "--copy-to" => copy_to = Some(args.next().expect("--copy-to DIR")),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if plugctls.is_empty() {
        eprintln!("cost: no --plugctl given: nothing to compare (run benches/cost.sh)");
        return;
    }
    if let Some(dir) = &copy_to {
        std::fs::create_dir_all(dir).expect("--copy-to DIR");
        for (i, p) in plugctls.clone().iter().enumerate() {
            let name = std::path::Path::new(p)
                .file_name()
                .map_or("plugctl".into(), |n| n.to_string_lossy().into_owned());
            let copy = format!("{dir}/{i}-{name}");
            std::fs::copy(p, &copy).expect("copying a plugctl binary");
            plugctls.push(copy);
        }
    }
    // A network namespace of its own: the tree never touches the host's lo.
    // SAFETY: unshare(2) on this single-threaded process.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
    must(Command::new("ip").args(["link", "set", "lo", "up"]));
    let state = std::env::temp_dir().join(format!("plugctl-cost-{}", std::process::id()));
    let state = state.to_string_lossy().into_owned();
    let plugctl = |bin: &str| {
        let mut c = quiet(bin);
        c.args(["--state-dir", &state]);
        c
    };
    must(plugctl(&plugctls[0]).arg("setup"));
    let yelp = |action: &str| {
        must(quiet("nl-qdisc-add").args(YELP_PLUG).arg(action));
    };
    // Warm up each command once (page cache, module loading).
    yelp("--buffer");
    yelp("--release-indefinite");
    // Every contender: a binary and a mode.
    let contenders: Vec<(&String, &(&str, &[&str]))> = plugctls
        .iter()
        .flat_map(|p| MODES.iter().map(move |m| (p, m)))
        .collect();
    for (p, (_, args)) in &contenders {
        must(
            plugctl(p)
                .args(*args)
                .args(["--", "true"])
                .stderr(Stdio::null()),
        );
    }

    let mut yelp_ms = vec![];
    let mut plug_ms = vec![vec![]; contenders.len()];
    for r in 0..rounds {
        // Alternate who goes first, so neither always follows the other.
        let mut order: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..contenders.len()).map(Some))
            .collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for who in order {
            match who {
                None => yelp_ms.push(time(|| {
                    yelp("--buffer");
                    must(&mut Command::new("true"));
                    yelp("--release-indefinite");
                })),
                Some(i) => plug_ms[i].push(time(|| {
                    let (p, (_, args)) = contenders[i];
                    must(
                        plugctl(p)
                            .args(*args)
                            .args(["--", "true"])
                            .stderr(Stdio::null()),
                    )
                })),
            }
        }
    }
    must(plugctl(&plugctls[0]).arg("teardown"));
    let _ = std::fs::remove_dir_all(&state);

    let y = median(&yelp_ms);
    println!("cost of one reload, median of {rounds} interleaved rounds (ms):");
    println!(
        "  {:60} {y:8.1}",
        "yelp: nl-qdisc-add --buffer; true; nl-qdisc-add --release-indefinite"
    );
    for ((p, (mode, _)), ms) in contenders.iter().zip(&plug_ms) {
        let m = median(ms);
        println!(
            "  {:60} {m:8.1}   ratio plugctl/yelp {:.2}",
            format!("{p} {mode}"),
            m / y
        );
    }
    let all = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("samples (ms):");
    println!("  yelp: {}", all(&yelp_ms));
    for ((p, (mode, _)), ms) in contenders.iter().zip(&plug_ms) {
        println!("  {p} {mode}: {}", all(ms));
    }
}
