//! What the reload command left running in the background.
//!
//! A command that returns before it has acted (`kill OLD; (sleep 0.3;
//! start) &`) looks, to the listeners, like one that changed nothing: the
//! quiet window would end the hold while the old process is still exiting
//! and before the new one starts. So the quiet window also waits for what
//! the command started and left running.
//!
//! That needs to see the command's orphans: the caller makes itself a
//! child subreaper ([`adopt`]; `plugctl reload` does, the library does not
//! on its own), so that a process whose parent exits is reparented to it
//! rather than to init. Its children that appeared after the command was
//! spawned, and still run, are what the command left running. A long-lived
//! caller that adopts must reap them (they stay its children); plugctl
//! exits after the release and passes them on to init.

use std::collections::HashSet;

use super::rule::{Pid, Proc};
use super::snapshot::{exited, parse_stat};

/// Make this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): the
/// orphans of its descendants are reparented to it.
pub fn adopt() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

/// Is this process a child subreaper?
pub fn adopting() -> bool {
    nix::sys::prctl::get_child_subreaper().unwrap_or(false)
}

/// The children this process had before the command was spawned.
#[derive(Debug, Clone, Default)]
pub struct Background {
    before: HashSet<(Pid, u64)>,
}

impl Background {
    /// Note the children now (the hold's watchdog among them), just before
    /// the command is spawned; `None` if this process does not adopt.
    pub fn before_command() -> Option<Background> {
        adopting().then(|| Background {
            before: children().iter().map(|p| (p.pid, p.start)).collect(),
        })
    }

    /// What the command left running: this process's live children that
    /// were not its children before the command, other than the command.
    pub fn left(&self, command: Option<Pid>) -> Vec<Proc> {
        children()
            .into_iter()
            .filter(|p| Some(p.pid) != command && !self.before.contains(&(p.pid, p.start)))
            .collect()
    }
}

/// `PID (comm)`, to name a process in a warning.
pub fn name(pid: Pid) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{pid} ({})", comm.trim_end())
}

/// This process's live children (zombies left out): from
/// `/proc/self/task/*/children`, or, where the kernel lacks it
/// (`CONFIG_PROC_CHILDREN`), one pass over `/proc/*/stat`.
pub fn children() -> Vec<Proc> {
    let me = std::process::id();
    let pids = listed_children().unwrap_or_else(|| scan_children(me));
    pids.into_iter()
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let p = parse_stat(&text)?;
            (p.ppid == me && !exited(&text)).then_some(p)
        })
        .collect()
}

/// The pids in every thread's `children` file.
fn listed_children() -> Option<Vec<Pid>> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        match std::fs::read_to_string(t.path().join("children")) {
            Ok(s) => out.extend(parse_children(&s)),
            // The thread exited meanwhile: it has no children left.
            Err(_) if !t.path().exists() => {}
            Err(_) => return None,
        }
    }
    Some(out)
}

/// `/proc/PID/task/TID/children`: pids separated by spaces.
pub fn parse_children(text: &str) -> impl Iterator<Item = Pid> + '_ {
    text.split_ascii_whitespace().filter_map(|p| p.parse().ok())
}

/// Every process whose parent is `me`, from `/proc/*/stat`.
fn scan_children(me: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<Pid>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|t| parse_stat(&t))
                .is_some_and(|p| p.ppid == me)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn children_files_parse() {
        assert_eq!(parse_children("12 345 \n").collect::<Vec<_>>(), [12, 345]);
        assert_eq!(parse_children("").count(), 0);
        assert_eq!(parse_children("x 7").collect::<Vec<_>>(), [7]);
    }

    /// A child of this test process shows up by both paths while it runs,
    /// and not once it exited (even before it is reaped).
    #[test]
    fn a_child_is_listed_while_it_runs_and_not_once_it_exited() {
        let me = std::process::id();
        let mut c = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = c.id();
        assert!(children().iter().any(|p| p.pid == pid));
        assert!(scan_children(me).contains(&pid));
        if let Some(listed) = listed_children() {
            assert!(listed.contains(&pid));
        }
        assert!(
            name(pid).starts_with(&format!("{pid} (sleep")),
            "{}",
            name(pid)
        );
        c.kill().unwrap();
        // A zombie until reaped: not running.
        let start = std::time::Instant::now();
        while children().iter().any(|p| p.pid == pid) {
            assert!(
                start.elapsed().as_secs() < 10,
                "still listed after it was killed"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        c.wait().unwrap();
    }

    /// What the command left: not the children from before, not the
    /// command. (The orphan-adoption itself runs in the VM tests: a test
    /// process that made itself a subreaper would adopt every other test's
    /// orphans.)
    #[test]
    fn left_leaves_out_the_children_from_before_and_the_command() {
        let mut old = Command::new("sleep").arg("30").spawn().unwrap();
        let bg = Background {
            before: children().iter().map(|p| (p.pid, p.start)).collect(),
        };
        let mut cmd = Command::new("sleep").arg("30").spawn().unwrap();
        let mut new = Command::new("sleep").arg("30").spawn().unwrap();
        let left: Vec<Pid> = bg.left(Some(cmd.id())).iter().map(|p| p.pid).collect();
        assert!(left.contains(&new.id()), "{left:?}");
        assert!(!left.contains(&old.id()), "{left:?}");
        assert!(!left.contains(&cmd.id()), "{left:?}");
        for c in [&mut old, &mut cmd, &mut new] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}
