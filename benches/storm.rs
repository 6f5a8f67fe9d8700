//! The reload storm: HAProxy on loopback under an open-loop stream of new
//! connections, reloaded again and again by each method in turn, all in one
//! run on one machine, so the figures compare. Runs as root inside its own
//! network namespaces (natively where the kernel has sch_plug, otherwise in
//! the VM lab): use `benches/storm.sh`, which also writes the table and the
//! picture.
//!
//! Methods (scenario `reload`): naive `haproxy -sf`; `plugctl reload`;
//! Yelp's shell method (tc + nl-qdisc-add + iptables); the SYN-drop trick;
//! HAProxy's seamless reload (`-x` with `expose-fd listeners`); naive with
//! `net.ipv4.tcp_migrate_req=1`. Scenario `cold`: a stop + start with a gap
//! (the restart command returns before the new listener exists): alone,
//! with the sysctl, with SYN-drop, and under `plugctl reload` (no flags:
//! its default observed hand-over). `benches/storm.sh --saturation` runs
//! naive, Yelp and plugctl at a rate above what HAProxy sustains under TCG,
//! with frequent reloads: the load where a hold can make things worse.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LB: &str = "169.254.255.254";
const PORT: u16 = 8080;
/// How long a client waits for its connect, and then for its answer,
/// before it counts a timeout. Scaled for TCG like plugctl's max-hold: the
/// same `haproxy -D -sf` reload takes 61 ms natively and 2.1 s in the lab VM
/// unloaded (4.3 s under the saturation load), so 30 s here is a client
/// that gives up after about a second natively. With 5 s for the answer
/// (before 2026-12-01) every connection queued behind a reload's burst on
/// an overloaded service timed out: a 70-140 ms client natively.
const CLIENT_PATIENCE: Duration = Duration::from_secs(30);
/// Yelp's plug change: `nl-qdisc-add` with these arguments and an action.
const YELP_PLUG: [&str; 5] = ["--dev=lo", "--parent=1:4", "--id=40:", "--update", "plug"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Ok,
    Refused,
    Reset,
    Timeout,
    BadStatus,
    /// Any other error (e.g. EHOSTUNREACH, or the client's own EMFILE):
    /// counted as a failure, and listed by errno under the table.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: f64,
    outcome: Outcome,
    /// The errno of a failed request, 0 if none.
    errno: i32,
    connect_ms: f64,
    total_ms: f64,
}

struct Args {
    rate: u32,
    reloads: usize,
    gap_ms: u64,
    out: String,
    methods: Vec<String>,
    plugctl: String,
    /// plugctl's flags (`--plugctl-flags`; default: the TCG scaling).
    flags: String,
}

fn args() -> Args {
    let mut a = Args {
        rate: 200,
        reloads: 50,
        // Under TCG one HAProxy reload takes ~2 s (~20 ms natively): with a
        // 200 ms gap the service would be reloading 90% of the time, and a
        // SYN dropped by the SYN-drop trick would find its retransmits
        // (1, 3, 7, 15 s later) dropped again by the next reloads.
        gap_ms: 1000,
        out: "target/storm".into(),
        methods: vec![],
        plugctl: "target/release/plugctl".into(),
        flags: TCG_SCALED.into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_default();
        match k.as_str() {
            "--rate" => a.rate = v().parse().expect("--rate N"),
            "--reloads" => a.reloads = v().parse().expect("--reloads N"),
            "--gap-ms" => a.gap_ms = v().parse().expect("--gap-ms N"),
            "--out" => a.out = v(),
            "--method" => a.methods.push(v()),
            "--plugctl" => a.plugctl = v(),
            // `none`: no flags at all (an empty word may not survive the
            // trip into the VM).
            "--plugctl-flags" => {
                a.flags = v();
                if a.flags == "none" {
                    a.flags.clear();
                }
            }
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if a.methods.is_empty() {
        a.methods = [
            "naive",
            "plugctl",
            "yelp",
            "syn-drop",
            "seamless",
            "sysctl",
            "cold",
            "cold+sysctl",
            "cold+syn-drop",
            "cold+plugctl",
        ]
        .map(String::from)
        .to_vec();
    }
    a
}

fn sh(script: &str) -> bool {
    Command::new("bash")
        .args(["-c", script])
        .status()
        .is_ok_and(|s| s.success())
}

fn must(script: &str) {
    assert!(sh(script), "failed: {script}");
}

fn haproxy_cfg(dir: &str, seamless: bool) -> String {
    let sock = if seamless {
        format!("    stats socket {dir}/admin.sock mode 600 level admin expose-fd listeners\n")
    } else {
        String::new()
    };
    format!(
        "global\n    maxconn 4000\n{sock}defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind {LB}:{PORT}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:9001\n    server s2 127.0.0.1:9002\n\
         listen s1\n    bind 127.0.0.1:9001\n    http-request return status 200 content-type text/plain string ok\n\
         listen s2\n    bind 127.0.0.1:9002\n    http-request return status 200 content-type text/plain string ok\n"
    )
}

/// A shell loop that returns once something listens on the LB port.
fn wait_listening() -> String {
    format!("while ! ss -Hltn 'sport = :{PORT}' | grep -q {PORT}; do sleep 0.01; done")
}

/// plugctl's timing flag for the VM lab (see reload_script).
const TCG_SCALED: &str = "--max-hold 30s";

/// The reload command of a method, as a bash script.
fn reload_script(method: &str, dir: &str, plugctl: &str, flags: &str) -> String {
    // The SYN-drop trick: new SYNs to the port are dropped while it runs.
    let drop_syns = |op| format!("iptables {op} INPUT -p tcp --dport {PORT} --syn -j DROP");
    let (drop, undrop) = (drop_syns("-I"), drop_syns("-D"));
    let yelp_plug = |action| format!("nl-qdisc-add {} {action}", YELP_PLUG.join(" "));
    let hap = format!("haproxy -f {dir}/h.cfg -p {dir}/h.pid -D");
    let sf = format!("-sf $(cat {dir}/h.pid)");
    let st = format!("--state-dir {dir}/state --port {PORT} reload --record {dir}/records.jsonl");
    // Cold restart: stop, then start again after a gap, in the background:
    // the command returns before the new listener exists.
    let cold = format!("kill $(cat {dir}/h.pid); (sleep 0.3; {hap}) >/dev/null 2>&1 &");
    match method {
        "naive" | "sysctl" => format!("{hap} {sf}"),
        // max-hold is scaled for TCG (25-90x slower than native: HAProxy
        // takes seconds to start, and to exit after SIGTERM); no other
        // flags: the default (the observed hand-over, its 300 ms quiet
        // window included) is measured.
        "plugctl" => format!("{plugctl} {st} {flags} -- {hap} {sf}"),
        "yelp" => format!(
            "{}; {hap} {sf}; sleep 0.010; {}",
            yelp_plug("--buffer"),
            yelp_plug("--release-indefinite")
        ),
        "syn-drop" => format!("{drop}; sleep 0.2; {hap} {sf}; {undrop}"),
        "seamless" => format!("{hap} -x {dir}/admin.sock {sf}"),
        "cold" | "cold+sysctl" => cold,
        "cold+syn-drop" => format!(
            "{drop}; kill $(cat {dir}/h.pid); sleep 0.3; {hap}; {}; {undrop}",
            wait_listening()
        ),
        "cold+plugctl" => format!(
            "{plugctl} {st} {flags} -- bash -c '{}'",
            cold.replace('\'', "'\\''")
        ),
        m => panic!("unknown method {m}"),
    }
}

fn prepare(method: &str, dir: &str, plugctl: &str) {
    // SAFETY: unshare affects this thread, which runs the method and spawns all its processes.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
    must(&format!("ip link set lo up && ip addr add {LB}/32 dev lo"));
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        format!("{dir}/h.cfg"),
        haproxy_cfg(dir, method == "seamless"),
    )
    .unwrap();
    if method.contains("sysctl") {
        must("sysctl -q -w net.ipv4.tcp_migrate_req=1");
    }
    if method.contains("plugctl") {
        must(&format!(
            "{plugctl} --state-dir {dir}/state --port {PORT} setup >/dev/null"
        ));
    }
    if method == "yelp" {
        must(&format!(
            "tc qdisc add dev lo root handle 1: prio bands 4 && \
             for b in 1 2 3; do tc qdisc add dev lo parent 1:$b handle ${{b}}0: pfifo; done && \
             nl-qdisc-add --dev=lo --parent=1:4 --id=40: plug --limit=1048576 >/dev/null && \
             nl-qdisc-add {} --release-indefinite >/dev/null && \
             tc filter add dev lo protocol ip parent 1:0 prio 1 handle 1 fw classid 1:4 && \
             iptables -t mangle -I OUTPUT -p tcp -s 169.254.255.254 --syn -j MARK --set-mark 1 >/dev/null",
            YELP_PLUG.join(" ")
        ));
    }
    must(&format!("haproxy -f {dir}/h.cfg -p {dir}/h.pid -D"));
    must(&wait_listening());
}

async fn one(addr: SocketAddr, t0: Instant) -> Sample {
    let start = Instant::now();
    let at = start.duration_since(t0).as_secs_f64();
    let mk = |outcome, c: f64, errno: i32| Sample {
        at,
        outcome,
        errno,
        connect_ms: c,
        total_ms: start.elapsed().as_secs_f64() * 1000.0,
    };
    // A held connect is a slow success, not a failure, and so is an answer
    // that waited behind a reload's burst: both waits get CLIENT_PATIENCE
    // (scaled for TCG). Clients that give up sooner would count them as
    // failures; the table shows the latencies.
    let conn = tokio::time::timeout(CLIENT_PATIENCE, tokio::net::TcpStream::connect(addr)).await;
    let mut s = match conn {
        Err(_) => return mk(Outcome::Timeout, CLIENT_PATIENCE.as_secs_f64() * 1000.0, 0),
        Ok(Err(e)) => return mk(classify(&e), 0.0, e.raw_os_error().unwrap_or(0)),
        Ok(Ok(s)) => s,
    };
    let c = start.elapsed().as_secs_f64() * 1000.0;
    let io = async {
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    match tokio::time::timeout(CLIENT_PATIENCE, io).await {
        Err(_) => mk(Outcome::Timeout, c, 0),
        Ok(Err(e)) => mk(classify(&e), c, e.raw_os_error().unwrap_or(0)),
        Ok(Ok(b)) if b.starts_with(b"HTTP/1.0 200") || b.starts_with(b"HTTP/1.1 200") => {
            mk(Outcome::Ok, c, 0)
        }
        Ok(Ok(_)) => mk(Outcome::BadStatus, c, 0),
    }
}

fn classify(e: &std::io::Error) -> Outcome {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Outcome::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Outcome::Reset,
        K::TimedOut => Outcome::Timeout,
        _ => Outcome::Other,
    }
}

/// Hundreds of connects can wait seconds at once (held, or SYN-dropped and
/// retrying): the default 1,024 open files would fail them with EMFILE, a
/// failure of this generator, not of the method.
fn raise_open_files() {
    let want: libc::rlim_t = 1 << 20;
    // SAFETY: getrlimit/setrlimit on a valid, owned struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            let hard = r.rlim_max.max(want);
            let ok = libc::setrlimit(
                libc::RLIMIT_NOFILE,
                &libc::rlimit {
                    rlim_cur: hard,
                    rlim_max: hard,
                },
            ) == 0;
            if !ok {
                r.rlim_cur = r.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            }
        }
        let mut r: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        eprintln!("# open files limit: {}", r.rlim_cur);
    }
}

struct Run {
    method: String,
    samples: Vec<Sample>,
    windows: Vec<(f64, f64)>,
    /// The kernel's own drop counters in the method's netns after the run.
    counters: String,
    /// What plugctl's reload records say (plugctl methods only).
    records: Option<String>,
}

/// Counters that say where SYNs and connections were lost (this thread's
/// network namespace is the method's own, so they count only its run).
const COUNTERS: &[&str] = &[
    "TcpExtListenOverflows",
    "TcpExtListenDrops",
    "TcpExtTCPReqQFullDrop",
    "TcpExtTCPSynRetrans",
    "TcpExtTCPAbortOnClose",
    "TcpExtTCPAbortOnData",
    "TcpExtTCPMigrateReqSuccess",
    "TcpExtTCPMigrateReqFailure",
];

fn counters() -> String {
    let out = Command::new("nstat")
        .args(["-az"])
        .args(COUNTERS)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.strip_prefix("TcpExt")?;
            let v: u64 = f.next()?.parse().ok()?;
            (v > 0).then(|| format!("{name} {v}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_method(method: &str, a: &Args) -> Run {
    let dir = format!("/tmp/plugctl-storm/{method}");
    prepare(method, &dir, &a.plugctl);
    let script = reload_script(method, &dir, &a.plugctl, &a.flags);
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let rate = a.rate;
    let stop2 = stop.clone();
    // The load generator: its own runtime thread, in this thread's netns
    // (threads inherit the creating thread's namespaces).
    let load = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let addr: SocketAddr = format!("{LB}:{PORT}").parse().unwrap();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                tick.tick().await;
                tasks.push(tokio::spawn(one(addr, t0)));
            }
            let mut out = Vec::new();
            for t in tasks {
                if let Ok(s) = t.await {
                    out.push(s);
                }
            }
            out
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut windows = Vec::new();
    for i in 0..a.reloads {
        let s = t0.elapsed().as_secs_f64();
        let ok = sh(&format!("{script} >/dev/null 2>&1"));
        if method.starts_with("cold") && !method.contains("plugctl") && !method.contains("syn-drop")
        {
            // The restart returns at once; the window ends when something listens again.
            must(&wait_listening());
        }
        windows.push((s, t0.elapsed().as_secs_f64()));
        if !ok {
            eprintln!("{method}: reload {i} failed");
        }
        std::thread::sleep(Duration::from_millis(a.gap_ms));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let samples = load.join().unwrap();
    sh(&format!(
        "kill $(cat {dir}/h.pid) 2>/dev/null; pkill -f '{dir}/h.cfg'"
    ));
    // The records themselves, beside the table (the method's directory
    // is gone with the VM).
    let records = format!("{dir}/records.jsonl");
    if std::path::Path::new(&records).exists() {
        let name = method.replace('+', "-");
        let _ = std::fs::copy(&records, format!("{}/records-{name}.jsonl", a.out));
    }
    Run {
        method: method.into(),
        samples,
        windows,
        counters: counters(),
        records: records_summary(&records),
    }
}

/// Percentiles of one field over plugctl's reload records (`--record`):
/// how long each hold lasted, how long the drain took, how many SYNs each
/// release let go at once, and which warnings were given how often.
fn records_summary(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let recs: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let field = |get: &dyn Fn(&serde_json::Value) -> Option<f64>| {
        let mut v: Vec<f64> = recs.iter().filter_map(get).collect();
        let n = v.len();
        format!(
            "p50 {:.0} / p90 {:.0} / max {:.0}",
            pct(&mut v, 0.5),
            pct(&mut v, 0.9),
            if n > 0 { pct(&mut v, 1.0) } else { 0.0 }
        )
    };
    let mut warnings: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &recs {
        for w in r["warnings"].as_array().into_iter().flatten() {
            // The warning's kind: its words up to the first colon or
            // parenthesis, every figure as N.
            let w = w.as_str().unwrap_or("");
            let head = w.split([':', '(']).next().unwrap_or("").trim();
            let mut kind = String::new();
            for c in head.chars() {
                match (c.is_ascii_digit() || c == '.', kind.ends_with('N')) {
                    (true, true) => {}
                    (true, false) => kind.push('N'),
                    (false, _) => kind.push(c),
                }
            }
            *warnings.entry(kind).or_default() += 1;
        }
    }
    let warnings: Vec<String> = warnings
        .iter()
        .map(|(k, n)| format!("{n}× \"{k}\""))
        .collect();
    let mut modes: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &recs {
        let m = r["handover"]["mode"].as_str().unwrap_or("?").to_string();
        *modes.entry(m).or_default() += 1;
    }
    let modes: Vec<String> = modes.iter().map(|(m, n)| format!("{m} {n}")).collect();
    let queued_at_hold = |r: &serde_json::Value| {
        r["handover"]["ports"].as_array().map(|ps| {
            ps.iter()
                .filter_map(|p| p["queued_at_hold"].as_f64())
                .sum::<f64>()
        })
    };
    // How the learned drain went: skipped (ports kept), cut short by the
    // budget learned from the last reload, or in full.
    let skipped = recs
        .iter()
        .filter(|r| {
            r["handover"]["drain_skipped"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .count();
    let budgeted = recs
        .iter()
        .filter(|r| r["handover"]["drain_budget_ms"].is_number())
        .count();
    Some(format!(
        "{} reloads (hand-over mode: {}); connections queued when the hold began {}; \
         held ms {}; drain ms {} (skipped {skipped}, with a learned budget {budgeted}: \
         budget ms {}); waited after the command ms {}; \
         SYNs held at release {}; warnings: {}",
        recs.len(),
        modes.join(", "),
        field(&queued_at_hold),
        field(&|r| r["held_ms"].as_f64()),
        field(&|r| r["handover"]["drain_ms"].as_f64()),
        field(&|r| r["handover"]["drain_budget_ms"].as_f64()),
        field(&|r| r["waited_for_listen_ms"].as_f64()),
        field(&|r| r["packets"].as_f64()),
        if warnings.is_empty() {
            "none".into()
        } else {
            warnings.join(", ")
        }
    ))
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn in_window(at: f64, w: &[(f64, f64)]) -> bool {
    w.iter().any(|(s, e)| at >= *s && at <= *e)
}

fn table(runs: &[Run], rate: u32, gap_ms: u64) -> String {
    let mut t = String::from(
        "| method | attempted | failed | failed % | refused / reset / timeout / bad / other | connect p50 / p99 / max ms | in reload windows: p50 / p99 / max ms | reloads | reload p50 ms |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let n = r.samples.len();
        let count = |o| r.samples.iter().filter(|s| s.outcome == o).count();
        let failed = n - count(Outcome::Ok);
        let mut all: Vec<f64> = r
            .samples
            .iter()
            .filter(|s| s.outcome == Outcome::Ok)
            .map(|s| s.connect_ms)
            .collect();
        let mut win: Vec<f64> = r
            .samples
            .iter()
            .filter(|s| s.outcome == Outcome::Ok && in_window(s.at, &r.windows))
            .map(|s| s.connect_ms)
            .collect();
        let mut durs: Vec<f64> = r.windows.iter().map(|(s, e)| (e - s) * 1000.0).collect();
        t += &format!(
            "| {} | {n} | {failed} | {:.3}% | {} / {} / {} / {} / {} | {:.1} / {:.1} / {:.0} | {:.1} / {:.1} / {:.0} | {} | {:.0} |\n",
            r.method,
            100.0 * failed as f64 / n.max(1) as f64,
            count(Outcome::Refused),
            count(Outcome::Reset),
            count(Outcome::Timeout),
            count(Outcome::BadStatus),
            count(Outcome::Other),
            pct(&mut all.clone(), 0.5),
            pct(&mut all.clone(), 0.99),
            pct(&mut all, 1.0),
            pct(&mut win.clone(), 0.5),
            pct(&mut win.clone(), 0.99),
            pct(&mut win, 1.0),
            r.windows.len(),
            pct(&mut durs, 0.5),
        );
    }
    t += &format!(
        "\nOffered load: {rate} new connections/s, open loop, one request per connection; \
         each reload starts {gap_ms} ms after the previous one ended.\n"
    );
    // The kernel's counters, per method.
    t += "\nKernel counters (nstat, the method's own netns, non-zero only):\n";
    for r in runs {
        t += &format!(
            "{}: {}.\n",
            r.method,
            if r.counters.is_empty() {
                "none"
            } else {
                &r.counters
            }
        );
    }
    if runs.iter().any(|r| r.records.is_some()) {
        t += "\nplugctl's reload records (`--record`):\n";
        for r in runs {
            if let Some(rec) = &r.records {
                t += &format!("{}: {rec}.\n", r.method);
            }
        }
    }
    t += "\nFailures by error:\n";
    // Which errors the failures were, so that no class hides a cause.
    for r in runs {
        let mut by: std::collections::BTreeMap<(String, i32), usize> = Default::default();
        for smp in r.samples.iter().filter(|s| s.outcome != Outcome::Ok) {
            *by.entry((format!("{:?}", smp.outcome), smp.errno))
                .or_default() += 1;
        }
        if by.is_empty() {
            continue;
        }
        let parts: Vec<String> = by
            .iter()
            .map(|((o, errno), n)| {
                if *errno == 0 {
                    format!("{o} {n}")
                } else {
                    let text = std::io::Error::from_raw_os_error(*errno).to_string();
                    format!("{o} {n} ({text})")
                }
            })
            .collect();
        t += &format!("{}: {}.\n", r.method, parts.join(", "));
    }
    t
}

/// Connect latency over time, one panel per method, reload windows shaded,
/// failures as red marks at the top.
fn svg(runs: &[Run]) -> String {
    let (w, ph, pad) = (900.0, 140.0, 40.0);
    let h = pad + runs.len() as f64 * (ph + pad);
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n"
    );
    let ymax_ms = 30000.0_f64;
    let y = |ms: f64| (ms.max(0.1).log10() + 1.0) / (ymax_ms.log10() + 1.0);
    for (i, r) in runs.iter().enumerate() {
        let top = pad + i as f64 * (ph + pad);
        let tmax = r.samples.iter().map(|s| s.at).fold(1.0, f64::max);
        let x = |t: f64| 60.0 + (w - 80.0) * t / tmax;
        s += &format!("<text x='60' y='{}'>{} (connect ms, log scale 0.1–30000; shaded: reload windows; red: failed)</text>\n", top - 6.0, r.method);
        s += &format!(
            "<rect x='60' y='{top}' width='{}' height='{ph}' fill='none' stroke='#888'/>\n",
            w - 80.0
        );
        for (a, b) in &r.windows {
            s += &format!(
                "<rect x='{:.1}' y='{top}' width='{:.1}' height='{ph}' fill='#ddeeff'/>\n",
                x(*a),
                (x(*b) - x(*a)).max(0.5)
            );
        }
        for ms in [1.0, 10.0, 100.0, 1000.0, 10000.0] {
            let yy = top + ph - ph * y(ms);
            s += &format!("<text x='20' y='{:.1}'>{ms}</text><line x1='60' x2='{}' y1='{yy:.1}' y2='{yy:.1}' stroke='#eee'/>\n", yy + 4.0, w - 20.0);
        }
        // One mark per pixel: a sample drawn where another already is adds
        // nothing to the picture, and tens of thousands of them would make
        // the file megabytes.
        let mut drawn = std::collections::HashSet::new();
        for smp in &r.samples {
            let xx = x(smp.at);
            if smp.outcome == Outcome::Ok {
                let yy = top + ph - ph * y(smp.connect_ms).min(1.0);
                if !drawn.insert((xx as i32, yy as i32)) {
                    continue;
                }
                s += &format!("<circle cx='{xx:.1}' cy='{yy:.1}' r='0.8' fill='#333'/>\n");
            } else {
                if !drawn.insert((xx as i32, i32::MIN)) {
                    continue;
                }
                let failed_top = top + 10.0;
                s += &format!(
                    "<line x1='{xx:.1}' x2='{xx:.1}' y1='{top}' y2='{failed_top}' stroke='red'/>\n"
                );
            }
        }
    }
    s + "</svg>\n"
}

fn main() {
    let a = args();
    raise_open_files();
    std::fs::create_dir_all(&a.out).unwrap();
    let mut runs = Vec::new();
    for m in a.methods.clone() {
        eprintln!("# method {m}: {} reloads at {} conn/s", a.reloads, a.rate);
        // Each method runs on a fresh thread so that its network namespace is its own.
        let args2 = Args {
            methods: vec![],
            out: a.out.clone(),
            plugctl: a.plugctl.clone(),
            flags: a.flags.clone(),
            ..a
        };
        let r = std::thread::spawn(move || run_method(&m, &args2))
            .join()
            .unwrap();
        let t = table(std::slice::from_ref(&r), a.rate, a.gap_ms);
        eprintln!("{}", t.lines().nth(2).unwrap_or(""));
        runs.push(r);
    }
    let t = table(&runs, a.rate, a.gap_ms);
    println!("{t}");
    std::fs::write(format!("{}/table.md", a.out), &t).unwrap();
    std::fs::write(format!("{}/latency.svg", a.out), svg(&runs)).unwrap();
    // Buffered: one write per line is minutes over the VM's 9p share.
    let mut csv =
        std::io::BufWriter::new(std::fs::File::create(format!("{}/samples.csv", a.out)).unwrap());
    writeln!(csv, "method,at_s,outcome,errno,connect_ms,total_ms").unwrap();
    for r in &runs {
        for s in &r.samples {
            writeln!(
                csv,
                "{},{:.4},{:?},{},{:.3},{:.3}",
                r.method, s.at, s.outcome, s.errno, s.connect_ms, s.total_ms
            )
            .unwrap();
        }
    }
    csv.flush().unwrap();
}
