//! The shipped systemd unit (`config/plugctl.service`): systemd accepts it
//! as it is (`systemd-analyze verify`, with the binary path pointed at the
//! one under test), and stopping it releases (its `ExecStop=` is `plugctl
//! release --force`; tests/kernel.rs runs it against a closed plug).

mod common;

use std::process::Command;

const UNIT: &str = include_str!("../config/plugctl.service");

/// The unit's `KEY=` lines' values.
fn values<'a>(key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn the_unit_sets_up_at_start_and_releases_at_stop() {
    assert_eq!(values("ExecStart"), ["/usr/local/bin/plugctl setup"]);
    assert_eq!(
        values("ExecStop"),
        ["/usr/local/bin/plugctl release --force"]
    );
    assert_eq!(values("RemainAfterExit"), ["yes"]);
}

#[test]
fn systemd_accepts_the_unit() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("no systemd-analyze here: skipped");
        return;
    };
    assert!(out.status.success());
    let dir = common::tempdir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!("{dir}/plugctl.service");
    std::fs::write(
        &path,
        UNIT.replace("/usr/local/bin/plugctl", common::plugctl_bin()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", &path])
        .output()
        .expect("systemd-analyze runs");
    let err = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}
