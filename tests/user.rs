//! `plugctl reload --user USER[:GROUP] -- CMD`: the real binary, run as
//! root, must start CMD with the user's uid, gid, supplementary groups and
//! HOME/USER/LOGNAME/SHELL, without CAP_NET_ADMIN in its bounding set, and
//! exit with CMD's own code. An unknown user or group: exit 14, one line,
//! CMD not run.
//!
//! Each test runs in its own mount and network namespace. Tests that need
//! a user with supplementary groups bind-mount a temporary passwd, group
//! and nsswitch.conf over /etc's inside that namespace: the host's /etc is
//! never written. On this workplace's kernel (no sch_prio) reload cannot
//! hold connections and runs CMD unprotected, with a warning; these tests
//! check only the user switch.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{in_netns, plugctl_bin, tempdir, Run};

/// CAP_NET_ADMIN's bit in the capability sets.
const CAP_NET_ADMIN: u32 = 12;

/// Prints who it runs as, then exits with `$1` (default 0).
const PROBE: &str = r#"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "home=${HOME-<unset>}"
echo "user=${USER-<unset>}"
echo "logname=${LOGNAME-<unset>}"
echo "shell=${SHELL-<unset>}"
echo "capbnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)"
echo "capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)"
echo "ran=yes"
exit "${1:-0}"
"#;

/// A user database to bind-mount over /etc's for one test.
struct UserDb {
    passwd: &'static str,
    group: &'static str,
    nsswitch: &'static str,
}

/// `plugtest` (4242) has primary group 4242 and is a member of 4243 and
/// 4244, not of 4245; no entry has uid 5555.
const PLUGTEST_DB: UserDb = UserDb {
    passwd: "root:x:0:0:root:/root:/bin/bash\n\
             plugtest:x:4242:4242:plugctl test:/home/plugtest:/opt/plugtest/shell\n",
    group: "root:x:0:\n\
            plugtest:x:4242:\n\
            plugextra1:x:4243:plugtest\n\
            plugextra2:x:4244:root,plugtest\n\
            plugother:x:4245:root\n",
    nsswitch: "passwd: files\ngroup: files\n",
};

/// Run `script` with bash in a new mount and network namespace (lo up,
/// cwd `/`), with `$PLUGCTL`, a private `$STATE` dir and `$PROBE` (a
/// script that prints who it runs as). With `db`, its files are
/// bind-mounted over /etc/passwd, /etc/group and /etc/nsswitch.conf in
/// that namespace only. Everything is written under a temporary dir.
fn run(db: Option<&UserDb>, script: &str) -> Run {
    let dir = tempdir();
    std::fs::create_dir_all(&dir).expect("creating the test's temporary dir");
    let write = |name: &str, text: &str| {
        let path = format!("{dir}/{name}");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    };
    write("probe.sh", PROBE);
    let mut full = String::from("set -u\n");
    if let Some(db) = db {
        write("passwd", db.passwd);
        write("group", db.group);
        write("nsswitch.conf", db.nsswitch);
        full.push_str(
            r#"mount --bind "$DIR/passwd" /etc/passwd || exit 99
mount --bind "$DIR/group" /etc/group || exit 99
mount --bind "$DIR/nsswitch.conf" /etc/nsswitch.conf || exit 99
# A running nscd would answer from the host's files.
if [ -d /run/nscd ]; then mount -t tmpfs tmpfs /run/nscd || exit 99; fi
"#,
        );
    }
    full.push_str("ip link set lo up\ncd /\n");
    full.push_str(script);
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--net", "--"])
        .args(["bash", "-c", &full])
        .env("PLUGCTL", plugctl_bin())
        .env("DIR", &dir)
        .env("STATE", format!("{dir}/state"))
        .env("PROBE", format!("{dir}/probe.sh"))
        .output()
        .expect("unshare runs (tests need root)");
    let _ = std::fs::remove_dir_all(&dir);
    let r: Run = out.into();
    assert_ne!(r.code, 99, "bind-mounting the user db failed: {}", r.stderr);
    r
}

/// The `key=value` lines of the probe's output after the marker line
/// `== name`, up to the next marker.
fn section(stdout: &str, name: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .skip_while(|l| *l != format!("== {name}"))
        .skip(1)
        .take_while(|l| !l.starts_with("== "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// This process's capability bounding set.
fn own_capbnd() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd in /proc/self/status");
    u64::from_str_radix(hex.trim(), 16).expect("CapBnd is hex")
}

/// Checks the probe's `capbnd`: exactly this process's bounding set
/// without CAP_NET_ADMIN.
fn assert_capbnd_lacks_net_admin(p: &HashMap<String, String>, ctx: &str) {
    let bnd = p
        .get("capbnd")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("{ctx}: no CapBnd in the probe's output: {p:?}"));
    assert_eq!(
        bnd & (1 << CAP_NET_ADMIN),
        0,
        "{ctx}: CMD's bounding set still has CAP_NET_ADMIN: {bnd:x}"
    );
    assert_eq!(
        bnd,
        own_capbnd() & !(1 << CAP_NET_ADMIN),
        "{ctx}: only CAP_NET_ADMIN is to leave the bounding set"
    );
}

fn get<'a>(p: &'a HashMap<String, String>, key: &str) -> &'a str {
    p.get(key).map(String::as_str).unwrap_or("<missing>")
}

/// A user with supplementary groups: CMD gets the passwd entry's uid and
/// gid, every group the database lists the user in (and no other), the
/// entry's HOME and SHELL, USER and LOGNAME set to its name (root's own
/// values are replaced), no CAP_NET_ADMIN, and plugctl exits with CMD's
/// code.
#[test]
fn user_gets_uid_gid_groups_env_and_no_net_admin() {
    let r = run(
        Some(&PLUGTEST_DB),
        r#"
        echo "== plugtest"
        HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
            $PLUGCTL --state-dir "$STATE" reload --user plugtest -- sh "$PROBE" 7
        echo "rc=$?"
        "#,
    );
    println!("{}\n{}", r.stdout, r.stderr);
    let p = section(&r.stdout, "plugtest");
    assert_eq!(get(&p, "ran"), "yes", "CMD did not run: {}", r.stderr);
    assert_eq!(get(&p, "uid"), "4242");
    assert_eq!(get(&p, "gid"), "4242");
    assert_eq!(get(&p, "groups"), "4242 4243 4244");
    assert_eq!(get(&p, "home"), "/home/plugtest");
    assert_eq!(get(&p, "user"), "plugtest");
    assert_eq!(get(&p, "logname"), "plugtest");
    assert_eq!(get(&p, "shell"), "/opt/plugtest/shell");
    assert_eq!(get(&p, "capeff"), "0000000000000000");
    assert_capbnd_lacks_net_admin(&p, "plugtest");
    assert_eq!(get(&p, "rc"), "7", "plugctl must exit with CMD's code");
}

/// `USER:GROUP`, by name or number: GROUP is the primary group and the
/// only supplementary one. A uid without a passwd entry is accepted with
/// an explicit group; its CMD gets no HOME/USER/LOGNAME/SHELL (not root's).
#[test]
fn explicit_group_replaces_the_user_groups() {
    let r = run(
        Some(&PLUGTEST_DB),
        r#"
        for spec in plugtest:plugextra2 4242:4245 plugtest:4999 5555:plugextra1; do
            echo "== $spec"
            HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
                $PLUGCTL --state-dir "$STATE" reload --user "$spec" -- sh "$PROBE" 3
            echo "rc=$?"
        done
        "#,
    );
    println!("{}\n{}", r.stdout, r.stderr);
    for (spec, uid, gid, home) in [
        ("plugtest:plugextra2", "4242", "4244", "/home/plugtest"),
        ("4242:4245", "4242", "4245", "/home/plugtest"),
        ("plugtest:4999", "4242", "4999", "/home/plugtest"),
        ("5555:plugextra1", "5555", "4243", "<unset>"),
    ] {
        let p = section(&r.stdout, spec);
        assert_eq!(get(&p, "ran"), "yes", "{spec}: CMD did not run");
        assert_eq!(get(&p, "uid"), uid, "{spec}");
        assert_eq!(get(&p, "gid"), gid, "{spec}");
        assert_eq!(get(&p, "groups"), gid, "{spec}: only GROUP");
        assert_eq!(get(&p, "home"), home, "{spec}");
        let name = if home == "<unset>" {
            "<unset>"
        } else {
            "plugtest"
        };
        assert_eq!(get(&p, "user"), name, "{spec}");
        assert_eq!(get(&p, "logname"), name, "{spec}");
        assert_capbnd_lacks_net_admin(&p, spec);
        assert_eq!(get(&p, "rc"), "3", "{spec}");
    }
}

/// `--user nobody` and `--user nobody:<group 65534>` against the host's own
/// user database (compared with what `getent` says).
#[test]
fn nobody_from_the_host_database() {
    let r = run(
        None,
        r#"
        echo "== getent"
        echo "passwd=$(getent passwd nobody)"
        grp=$(getent group 65534 | cut -d: -f1); echo "group=$grp"
        echo "== nobody"
        $PLUGCTL --state-dir "$STATE" reload --user nobody -- sh "$PROBE"
        echo "rc=$?"
        echo "== nobody:group"
        $PLUGCTL --state-dir "$STATE" reload --user "nobody:$grp" -- sh "$PROBE" 5
        echo "rc=$?"
        "#,
    );
    println!("{}\n{}", r.stdout, r.stderr);
    let g = section(&r.stdout, "getent");
    let pw: Vec<&str> = get(&g, "passwd").split(':').collect();
    assert_eq!(pw.len(), 7, "no passwd entry for nobody: {g:?}");
    assert_eq!(pw[2], "65534", "nobody's uid");
    assert!(!get(&g, "group").is_empty(), "no group 65534: {g:?}");

    let p = section(&r.stdout, "nobody");
    assert_eq!(get(&p, "ran"), "yes", "CMD did not run: {}", r.stderr);
    assert_eq!(get(&p, "uid"), "65534");
    assert_eq!(get(&p, "gid"), pw[3]);
    assert_eq!(get(&p, "home"), pw[5]);
    assert_eq!(get(&p, "user"), "nobody");
    assert_eq!(get(&p, "logname"), "nobody");
    assert_eq!(get(&p, "capeff"), "0000000000000000");
    assert_capbnd_lacks_net_admin(&p, "nobody");
    assert_eq!(get(&p, "rc"), "0");

    let p = section(&r.stdout, "nobody:group");
    assert_eq!(get(&p, "ran"), "yes", "nobody:group: CMD did not run");
    assert_eq!(get(&p, "uid"), "65534");
    assert_eq!(get(&p, "gid"), "65534");
    assert_eq!(get(&p, "groups"), "65534");
    assert_capbnd_lacks_net_admin(&p, "nobody:group");
    assert_eq!(get(&p, "rc"), "5");
}

/// Users come from NSS, not from reading /etc/passwd: with a passwd file
/// that lacks `nobody` and `passwd: files systemd`, nss-systemd supplies
/// it. (Skipped where glibc has no nss-systemd.)
#[test]
fn users_are_looked_up_through_nss() {
    let have = ["/lib", "/usr/lib", "/lib64", "/usr/lib64"]
        .iter()
        .flat_map(|d| {
            [
                format!("{d}/libnss_systemd.so.2"),
                format!("{d}/x86_64-linux-gnu/libnss_systemd.so.2"),
                format!("{d}/aarch64-linux-gnu/libnss_systemd.so.2"),
            ]
        })
        .any(|p| std::path::Path::new(&p).exists());
    if !have {
        println!("skipped: no libnss_systemd.so.2 here");
        return;
    }
    let db = UserDb {
        passwd: "root:x:0:0:root:/root:/bin/bash\n",
        group: "root:x:0:\n",
        nsswitch: "passwd: files systemd\ngroup: files systemd\n",
    };
    let r = run(
        Some(&db),
        r#"
        echo "== getent"
        echo "passwd=$(getent passwd nobody)"
        echo "== nobody"
        $PLUGCTL --state-dir "$STATE" reload --user nobody -- sh "$PROBE"
        echo "rc=$?"
        "#,
    );
    println!("{}\n{}", r.stdout, r.stderr);
    let g = section(&r.stdout, "getent");
    let pw: Vec<&str> = get(&g, "passwd").split(':').collect();
    assert_eq!(pw.len(), 7, "nss-systemd gave no nobody: {g:?}");
    let p = section(&r.stdout, "nobody");
    assert_eq!(get(&p, "rc"), "0", "{}", r.stderr);
    assert_eq!(get(&p, "uid"), "65534");
    assert_eq!(get(&p, "gid"), pw[3]);
    assert_eq!(get(&p, "home"), pw[5]);
    assert_eq!(get(&p, "shell"), pw[6]);
}

/// `--user root`: CMD keeps uid 0 but loses CAP_NET_ADMIN from every set,
/// so it cannot change the network (here: its namespace's lo).
#[test]
fn root_cmd_cannot_use_net_admin() {
    let r = run(
        None,
        r#"
        echo "== root"
        $PLUGCTL --state-dir "$STATE" reload --user root -- sh -c \
            'sh "$PROBE"; ip link set lo down 2>/dev/null && echo "lo-down=allowed" || echo "lo-down=refused"'
        echo "rc=$?"
        "#,
    );
    println!("{}\n{}", r.stdout, r.stderr);
    let p = section(&r.stdout, "root");
    assert_eq!(get(&p, "ran"), "yes", "CMD did not run: {}", r.stderr);
    assert_eq!(get(&p, "uid"), "0");
    assert_eq!(get(&p, "gid"), "0");
    assert_eq!(get(&p, "home"), "/root");
    assert_eq!(get(&p, "user"), "root");
    assert_capbnd_lacks_net_admin(&p, "root");
    let eff = u64::from_str_radix(get(&p, "capeff"), 16).unwrap_or(u64::MAX);
    assert_eq!(eff & (1 << CAP_NET_ADMIN), 0, "CapEff {eff:x}");
    assert_eq!(get(&p, "lo-down"), "refused");
    assert_eq!(get(&p, "rc"), "0");
}

/// An unknown user, an unknown group, or a uid without a passwd entry and
/// no group: exit 14, one line on stderr naming it, CMD not run.
#[test]
fn unknown_user_or_group_exits_14_without_running_cmd() {
    for (spec, what) in [
        ("nosuchuser-xyz", "no such user \"nosuchuser-xyz\""),
        ("nosuchuser-xyz:root", "no such user \"nosuchuser-xyz\""),
        ("root:nosuchgroup-xyz", "no such group \"nosuchgroup-xyz\""),
        ("4294967", "no such user \"4294967\""),
    ] {
        let r = in_netns(&format!(
            r#"cd / && $PLUGCTL --state-dir "$STATE" reload --user '{spec}' -- sh -c 'echo CMD-RAN'"#
        ));
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(r.code, 14, "{spec}: {}{}", r.stdout, r.stderr);
        assert_eq!(lines.len(), 1, "{spec}: one line expected: {lines:?}");
        assert!(lines[0].starts_with("plugctl: error: "), "{}", lines[0]);
        assert!(lines[0].contains(what), "{spec}: {}", lines[0]);
        assert!(!r.stdout.contains("CMD-RAN"), "{spec}: CMD ran");
    }
}

/// Without root, `--user` is refused up front with one line that says
/// what it needs (exit 14), and CMD does not run (before: CMD failed to
/// start with a bare "Operation not permitted", exit 126).
#[test]
fn user_without_root_is_refused_naming_what_it_needs() {
    let r = common::in_netns(
        r#"mkdir -p "$STATE" && chmod 0777 "$STATE"
        setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
            $PLUGCTL --state-dir "$STATE/s" reload --user 0:0 -- sh -c 'echo CMD-RAN'
        echo "rc=$?""#,
    );
    assert!(r.stdout.contains("rc=14"), "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("CMD-RAN"), "CMD ran: {}", r.stdout);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {lines:?}");
    assert!(
        lines[0].starts_with("plugctl: error: --user needs root")
            && lines[0].contains("CAP_SETUID"),
        "{}",
        lines[0]
    );
}
