//! Helpers shared by the host and VM integration tests: run the real
//! `plugctl` binary and independent tools (`tc`, `nft`) inside a private
//! network namespace, so nothing on the machine running the tests changes.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The `plugctl` binary under test.
pub fn plugctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_plugctl")
}

/// Result of a shell script run in a fresh network namespace.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Run `script` with bash in a new network namespace (lo up), with
/// `$PLUGCTL` naming the binary and a private state dir.
pub fn in_netns(script: &str) -> Run {
    let state = tempdir();
    let full = format!("set -u\nip link set lo up\n{script}");
    let out = Command::new("unshare")
        .args(["--net", "--", "bash", "-c", &full])
        .env("PLUGCTL", plugctl_bin())
        .env("STATE", &state)
        .output()
        .expect("unshare runs (tests need root)");
    let _ = std::fs::remove_dir_all(&state);
    out.into()
}

/// A fresh temporary directory path (not created).
pub fn tempdir() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir()
        .join(format!("plugctl-test-{}-{n}", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

/// Does this kernel have the qdisc `kind`? Probed with `tc` in a scratch
/// namespace (test code may run tc; plugctl itself never does).
pub fn kernel_has_qdisc(kind: &str) -> bool {
    let r = in_netns(&format!("tc qdisc add dev lo root handle 1: {kind}"));
    r.code == 0
}
