//! The lease against this machine's own kernel: nf_tables sets with
//! timeouts and concatenations need no module this host lacks (unlike the
//! plug), so these run natively, each in its own network namespace. A
//! second table counts the SYNs plugctl's rule marked: the lease is
//! observed on real packets, not only in the set.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use plugctl::hold::lease;
use plugctl::kernel::{Kernel, NetlinkKernel};
use plugctl::Config;
use plugctl_netlink::nft::Ruleset;

fn fresh_netns() {
    // SAFETY: unshare only affects the calling thread's namespaces.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
    sh("ip link set lo up && ip addr add 169.254.255.254/32 dev lo");
}

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// plugctl's table and sets, as `setup` installs them (without the tc part,
/// which this kernel cannot build), and a table that counts marked SYNs.
fn install(cfg: &Config) -> NetlinkKernel {
    let mut k = NetlinkKernel::new();
    let rules = plugctl::tree::rules(cfg);
    let sets = plugctl::tree::sets(cfg);
    k.nft_install(&Ruleset::new(&cfg.table, plugctl::tree::CHAIN, &rules).with_sets(&sets))
        .expect("install");
    sh("nft add table inet count
        nft add chain inet count c '{ type filter hook output priority 0; }'
        nft add rule inet count c tcp flags syn / syn,ack meta mark 0x1 counter");
    k
}

fn marked() -> u64 {
    let out = sh("nft list chain inet count c");
    out.split("packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {out}"))
}

fn connect(port: u16) {
    let addr: SocketAddr = format!("169.254.255.254:{port}").parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
}

fn config(ports: Vec<u16>) -> Config {
    Config {
        ports,
        ..Config::default()
    }
}

#[test]
fn the_kernel_takes_plugctls_sets_and_rules_as_nft_prints_them() {
    fresh_netns();
    let cfg = Config {
        addresses: vec![
            "169.254.255.254".parse().unwrap(),
            "fd00::1".parse().unwrap(),
        ],
        ports: vec![80, 443],
        ..Config::default()
    };
    let mut k = install(&cfg);
    lease::renew(&mut k, &cfg, Duration::from_secs(30)).expect("renew");
    let out = sh("nft list table inet plugctl");
    for want in [
        "type ipv4_addr . inet_service",
        "type ipv6_addr . inet_service",
        "flags timeout",
        "169.254.255.254 . 80 timeout 30s expires",
        "169.254.255.254 . 443 timeout 30s expires",
        "fd00::1 . 443 timeout 30s expires",
        "ip daddr . tcp dport @lease4 meta mark set 0x00000001",
        "ip6 daddr . tcp dport @lease6 meta mark set 0x00000001",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    // plugctl reads back what it installed, and the lease.
    let obs_rules = k.nft_rules(&cfg.table, plugctl::tree::CHAIN).unwrap();
    assert_eq!(
        obs_rules,
        Some(plugctl::tree::rules(&cfg).into_iter().map(Some).collect())
    );
    let leased = lease::read(&mut k, &cfg).unwrap();
    assert_eq!(leased.len(), 4, "{leased:?}");
    for l in &leased {
        assert_eq!(l.lease_ms, Some(30_000));
        assert!(l.expires_in_ms.is_some_and(|e| e <= 30_000), "{l:?}");
    }
    lease::end(&mut k, &cfg).expect("end");
    assert!(lease::read(&mut k, &cfg).unwrap().is_empty());
}

#[test]
fn renewing_sets_the_new_deadline_and_ending_never_fails() {
    fresh_netns();
    let cfg = config(vec![]);
    let mut k = install(&cfg);
    // Ending what is not there, renewing what is not there: no -ENOENT.
    lease::end(&mut k, &cfg).expect("end of nothing");
    lease::renew(&mut k, &cfg, Duration::from_secs(600)).expect("renew");
    // A shorter renewal replaces the deadline (an add alone would keep
    // the old timeout on 6.1; the delete + add in one batch does not).
    lease::renew(&mut k, &cfg, Duration::from_secs(20)).expect("renew");
    let l = lease::read(&mut k, &cfg).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].lease_ms, Some(20_000));
    assert!(l[0].expires_in_ms.is_some_and(|e| e <= 20_000), "{l:?}");
    lease::renew(&mut k, &cfg, Duration::from_secs(300)).expect("renew");
    assert_eq!(
        lease::read(&mut k, &cfg).unwrap()[0].lease_ms,
        Some(300_000)
    );
    lease::end(&mut k, &cfg).expect("end");
    lease::end(&mut k, &cfg).expect("end again");
    assert!(lease::read(&mut k, &cfg).unwrap().is_empty());
}

#[test]
fn syns_are_marked_only_while_the_lease_lasts() {
    fresh_netns();
    let listener = TcpListener::bind("169.254.255.254:8080").expect("bind");
    let cfg = config(vec![8080]);
    let mut k = install(&cfg);
    connect(8080);
    assert_eq!(marked(), 0, "no lease, no mark");
    lease::renew(&mut k, &cfg, Duration::from_secs(1)).expect("renew");
    connect(8080);
    assert_eq!(marked(), 1, "leased: marked");
    // Another port is not leased.
    let _other = TcpListener::bind("169.254.255.254:8081").expect("bind");
    connect(8081);
    assert_eq!(marked(), 1);
    // Wait for the kernel to expire it (bounded, observed, not slept on).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lease::read(&mut k, &cfg).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the lease never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    connect(8080);
    assert_eq!(marked(), 1, "expired: not marked");
    drop(listener);
}
