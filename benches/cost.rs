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
//!      [--mode no-wait|quiet-0|default]... [--copies-only]
//! ```
//!
//! `--mode` times only the given modes (all three without it);
//! `--copies-only` times only the copies in `--copy-to DIR`.
//!
//! Every `--plugctl` binary (e.g. this branch's and main's) is timed in the
//! same interleaved rounds. `--copy-to DIR` also times a copy of each in
//! DIR, and Yelp's `nl-qdisc-add` and `true` copied there too: in the VM
//! lab the binaries live on the host's filesystem, shared over 9p without a
//! page cache, so every start of a 3 MB binary reads what it touches from
//! the host again (Yelp's nl-qdisc-add and its libraries too, but they are
//! smaller); copies on the guest's tmpfs show what a local disk would. Each
//! plugctl row's ratio is against Yelp's sequence run from the same place.

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

/// The ways each plugctl binary is timed: a name for `--mode`, a label
/// and the arguments before `-- true`.
const MODES: [(&str, &str, &[&str]); 3] = [
    (
        "no-wait",
        "reload --no-wait -- true",
        &["reload", "--no-wait"],
    ),
    (
        "quiet-0",
        "reload --quiet-window 0s -- true",
        &["reload", "--quiet-window", "0s"],
    ),
    ("default", "reload -- true (default)", &["reload"]),
];

/// One way to reload, timed in every round.
enum Contender {
    /// Yelp's sequence with these `nl-qdisc-add` and `true` programs.
    Yelp { nl: String, tru: String },
    /// A `plugctl` binary in one of [`MODES`].
    Plugctl { bin: String, mode: usize },
}

impl Contender {
    fn label(&self) -> String {
        match self {
            Contender::Yelp { nl, tru } => {
                format!("yelp: {nl} --buffer; {tru}; {nl} --release-indefinite")
            }
            Contender::Plugctl { bin, mode } => format!("{bin} {}", MODES[*mode].1),
        }
    }
}

/// `prog`'s path: as given if it names a file, else found on PATH.
fn which(prog: &str) -> String {
    if prog.contains('/') {
        return prog.into();
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(prog))
                .find(|p| p.is_file())
        })
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| panic!("{prog} not found on PATH"))
}

fn main() {
    let mut plugctls: Vec<String> = vec![];
    let mut rounds = 15usize;
    let mut copy_to: Option<String> = None;
    let mut modes: Vec<usize> = vec![];
    let mut copies_only = false;
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
            "--copy-to" => copy_to = Some(args.next().expect("--copy-to DIR")),
            "--mode" => {
                let m = args.next().expect("--mode NAME");
                let i = MODES.iter().position(|(name, ..)| *name == m);
                modes.push(i.unwrap_or_else(|| panic!("unknown --mode {m}")));
            }
            "--copies-only" => copies_only = true,
            // `cargo bench` passes --bench.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if plugctls.is_empty() {
        eprintln!("cost: no --plugctl given: nothing to compare (run benches/cost.sh)");
        return;
    }
    // Groups of contenders that start their programs from one place: the
    // given paths, then (with --copy-to) copies of them all in DIR.
    let mut groups = vec![(which("nl-qdisc-add"), which("true"), plugctls.clone())];
    if let Some(dir) = &copy_to {
        std::fs::create_dir_all(dir).expect("--copy-to DIR");
        let copy = |from: &str, name: String| {
            let to = format!("{dir}/{name}");
            std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copying {from}: {e}"));
            to
        };
        let (nl, tru, _) = &groups[0];
        let copied = (
            copy(nl, "nl-qdisc-add".into()),
            copy(tru, "true".into()),
            plugctls
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let name = std::path::Path::new(p)
                        .file_name()
                        .map_or("plugctl".into(), |n| n.to_string_lossy().into_owned());
                    copy(p, format!("{i}-{name}"))
                })
                .collect(),
        );
        groups.push(copied);
        if copies_only {
            groups.remove(0);
        }
    }
    if modes.is_empty() {
        modes = (0..MODES.len()).collect();
    }
    // Every contender, and the index of the Yelp run it is compared with.
    let mut contenders: Vec<(Contender, usize)> = vec![];
    for (nl, tru, bins) in &groups {
        let yelp = contenders.len();
        contenders.push((
            Contender::Yelp {
                nl: nl.clone(),
                tru: tru.clone(),
            },
            yelp,
        ));
        for bin in bins {
            for &mode in &modes {
                let bin = bin.clone();
                contenders.push((Contender::Plugctl { bin, mode }, yelp));
            }
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
    let run = |c: &Contender| match c {
        Contender::Yelp { nl, tru } => {
            must(quiet(nl).args(YELP_PLUG).arg("--buffer"));
            must(&mut Command::new(tru));
            must(quiet(nl).args(YELP_PLUG).arg("--release-indefinite"));
        }
        Contender::Plugctl { bin, mode } => must(
            plugctl(bin)
                .args(MODES[*mode].2)
                .args(["--", "true"])
                .stderr(Stdio::null()),
        ),
    };
    // Warm up each once (page cache, module loading).
    for (c, _) in &contenders {
        run(c);
    }
    let mut ms = vec![vec![]; contenders.len()];
    let n = contenders.len();
    // A fixed-seed xorshift: each round's order is shuffled, so that no
    // contender always follows the same other (a plugctl run right after a
    // Yelp run measured ~300 ms slower in the lab, and rotating the order
    // keeps neighbours together).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..rounds {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        for i in order {
            ms[i].push(time(|| run(&contenders[i].0)));
        }
    }
    must(plugctl(&plugctls[0]).arg("teardown"));
    let _ = std::fs::remove_dir_all(&state);

    println!("cost of one reload, median of {rounds} interleaved rounds (ms):");
    let medians: Vec<f64> = ms.iter().map(|v| median(v)).collect();
    for (i, (c, yelp)) in contenders.iter().enumerate() {
        match c {
            Contender::Yelp { .. } => println!("  {:72} {:8.1}", c.label(), medians[i]),
            Contender::Plugctl { .. } => println!(
                "  {:72} {:8.1}   ratio plugctl/yelp {:.2}",
                c.label(),
                medians[i],
                medians[i] / medians[*yelp]
            ),
        }
    }
    println!("samples (ms):");
    for (i, (c, _)) in contenders.iter().enumerate() {
        let all: Vec<String> = ms[i].iter().map(|x| format!("{x:.0}")).collect();
        println!("  {}: {}", c.label(), all.join(" "));
    }
}
