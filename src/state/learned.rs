//! What earlier reloads showed about a reload command, per port: how long
//! after the command started its old listeners stopped listening (HAProxy
//! `-sf` pauses them only once the new process has read its configuration;
//! a `systemctl restart` at once), or that they were kept (`nginx -s
//! reload`, a master-worker `USR2`: the new processes inherit the sockets).
//!
//! The drain before the command uses it: the old process may go on
//! accepting from its queue while the command runs, until its listeners
//! stop. So a port whose listeners are kept is not drained, and a port
//! whose listeners stayed open for a while after the last start of the
//! command, and whose old process was seen accepting meanwhile, is drained
//! only until what is left would take the old process half that time. One
//! whose old process did not accept (a SIGTERM) is drained in full.
//! Every observed reload of the command replaces what it showed; a port or
//! command plugctl has not seen is drained in full.
//!
//! One small JSON file per device and network namespace beside the record,
//! mode 0600 (it names commands), replaced whole. Unreadable or missing, it
//! is empty: it only ever saves time.

use serde::{Deserialize, Serialize};

/// Largest file plugctl reads; anything longer is not one of its own.
pub const MAX_LEN: usize = 64 * 1024;
/// Most (command, port) pairs kept; the oldest are forgotten first.
pub const MAX_ENTRIES: usize = 64;
/// The format written by this version.
pub const VERSION: u32 = 1;

/// What was seen, per (command, port).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// Oldest first.
    #[serde(default)]
    pub ports: Vec<Seen>,
}

/// What the last observed reload of `command` showed on `port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The reload command (argv, without its numeric arguments).
    pub command: Vec<String>,
    /// The port.
    pub port: u16,
    /// How long after the command started the old listeners stopped
    /// listening, ms; `None`: they were kept.
    pub old_open_ms: Option<u64>,
    /// Whether the old process went on accepting from its queue after the
    /// command started (`false`: it stopped at once, as on a SIGTERM, and
    /// what was queued was reset); `None`: never seen (nothing was queued
    /// when the command ran). Kept from an earlier reload when a later one
    /// shows nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts: Option<bool>,
    /// When it was seen, ms since the Unix epoch.
    pub seen_ms: u64,
}

/// Why bytes are not a learned file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LearnedError(pub String);

impl Learned {
    /// Parse the file as read from disk.
    pub fn parse(bytes: &[u8]) -> Result<Learned, LearnedError> {
        if bytes.len() > MAX_LEN {
            return Err(LearnedError(format!("longer than {MAX_LEN} bytes")));
        }
        if !bytes.trim_ascii_start().starts_with(b"{") {
            return Err(LearnedError("not a JSON object".into()));
        }
        let l: Learned = serde_json::from_slice(bytes)
            .map_err(|e| LearnedError(format!("not a learned file: {e}")))?;
        if l.version > VERSION {
            return Err(LearnedError(format!(
                "format version {} is newer than this plugctl's ({VERSION})",
                l.version
            )));
        }
        if l.ports.len() > MAX_ENTRIES {
            return Err(LearnedError(format!("more than {MAX_ENTRIES} entries")));
        }
        for (i, o) in l.ports.iter().enumerate() {
            if l.ports[..i]
                .iter()
                .any(|p| p.port == o.port && p.command == o.command)
            {
                return Err(LearnedError(format!(
                    "port {} of {:?} appears twice",
                    o.port, o.command
                )));
            }
        }
        Ok(l)
    }

    /// The bytes to write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// What the last observed reload of `command` showed on `port`.
    pub fn seen(&self, command: &[String], port: u16) -> Option<&Seen> {
        self.ports
            .iter()
            .find(|o| o.port == port && o.command == command)
    }

    /// Note what a reload of `command` showed on `port` (replacing what an
    /// earlier one did; `accepts: None` keeps what an earlier one showed).
    /// Returns whether anything changed.
    pub fn note(
        &mut self,
        command: &[String],
        port: u16,
        old_open_ms: Option<u64>,
        accepts: Option<bool>,
        now_ms: u64,
    ) -> bool {
        let at = self
            .ports
            .iter()
            .position(|o| o.port == port && o.command == command);
        let before = at.map(|i| self.ports.remove(i));
        let accepts = accepts.or(before.as_ref().and_then(|b| b.accepts));
        self.version = VERSION;
        self.ports.push(Seen {
            command: command.to_vec(),
            port,
            old_open_ms,
            accepts,
            seen_ms: now_ms,
        });
        if self.ports.len() > MAX_ENTRIES {
            self.ports.remove(0);
        }
        before.is_none_or(|b| {
            b.old_open_ms != old_open_ms || b.accepts != accepts || b.seen_ms != now_ms
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn what_is_noted_is_kept_per_command_and_port_and_round_trips() {
        let mut l = Learned::default();
        assert!(l.note(&cmd("haproxy -sf"), 80, Some(2000), None, 5));
        assert!(l.note(&cmd("nginx -s reload"), 80, None, None, 5));
        assert_eq!(
            l.seen(&cmd("haproxy -sf"), 80).map(|s| s.old_open_ms),
            Some(Some(2000))
        );
        assert_eq!(
            l.seen(&cmd("nginx -s reload"), 80).map(|s| s.old_open_ms),
            Some(None)
        );
        assert_eq!(
            l.seen(&cmd("haproxy -sf"), 443).map(|s| s.old_open_ms),
            None
        );
        assert_eq!(
            l.seen(&cmd("systemctl restart haproxy"), 80)
                .map(|s| s.old_open_ms),
            None
        );
        assert_eq!(Learned::parse(&l.to_bytes()), Ok(l));
    }

    #[test]
    fn a_later_reload_replaces_what_an_earlier_one_showed() {
        let mut l = Learned::default();
        l.note(&cmd("x"), 80, Some(2000), None, 1);
        assert!(l.note(&cmd("x"), 80, Some(3), None, 2));
        assert_eq!(l.seen(&cmd("x"), 80).map(|s| s.old_open_ms), Some(Some(3)));
        assert_eq!(l.ports.len(), 1);
    }

    #[test]
    fn the_oldest_is_forgotten_beyond_max_entries() {
        let mut l = Learned::default();
        for p in 0..=MAX_ENTRIES as u16 {
            l.note(&cmd("x"), p, None, None, u64::from(p));
        }
        assert_eq!(l.ports.len(), MAX_ENTRIES);
        assert_eq!(l.seen(&cmd("x"), 0).map(|s| s.old_open_ms), None);
        assert_eq!(
            l.seen(&cmd("x"), MAX_ENTRIES as u16).map(|s| s.old_open_ms),
            Some(None)
        );
        // Seeing one again makes it the newest.
        l.note(&cmd("x"), 1, None, None, 99);
        l.note(&cmd("x"), 1000, None, None, 100);
        assert_eq!(l.seen(&cmd("x"), 1).map(|s| s.old_open_ms), Some(None));
        assert_eq!(l.seen(&cmd("x"), 2).map(|s| s.old_open_ms), None);
    }

    #[test]
    fn whether_the_old_process_accepts_is_kept_until_a_reload_shows_it_again() {
        let mut l = Learned::default();
        l.note(&cmd("x"), 80, Some(400), Some(false), 1);
        assert!(l.note(&cmd("x"), 80, Some(500), None, 2));
        let s = l.seen(&cmd("x"), 80).unwrap();
        assert_eq!((s.old_open_ms, s.accepts), (Some(500), Some(false)));
        l.note(&cmd("x"), 80, Some(500), Some(true), 3);
        assert_eq!(l.seen(&cmd("x"), 80).unwrap().accepts, Some(true));
        // A file from before the field: read as never seen.
        let old =
            br#"{"version":1,"ports":[{"command":["x"],"port":80,"old_open_ms":1,"seen_ms":1}]}"#;
        assert_eq!(Learned::parse(old).unwrap().ports[0].accepts, None);
        assert_eq!(Learned::parse(&l.to_bytes()), Ok(l));
    }

    #[test]
    fn what_is_not_a_learned_file_is_refused() {
        for bad in [
            &b""[..],
            b"[]",
            br#"{"version":2}"#,
            br#"{"ports":[{"command":["x"],"port":80,"old_open_ms":1,"seen_ms":1},{"command":["x"],"port":80,"old_open_ms":null,"seen_ms":2}]}"#,
            br#"{"ports":[{"command":["x"],"port":70000,"old_open_ms":1,"seen_ms":1}]}"#,
        ] {
            assert!(Learned::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let long = vec![b' '; MAX_LEN + 1];
        assert!(Learned::parse(&long).is_err());
        assert_eq!(Learned::parse(b"{}"), Ok(Learned::default()));
    }
}
