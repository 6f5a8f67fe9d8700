//! The state record: whether the plug is closed (the kernel cannot say)
//! and who holds it. One small JSON object per device and network
//! namespace, readable by every user, replaced whole on every change.

use serde::{Deserialize, Serialize};

/// Largest record plugctl reads; anything longer is not one of its own.
pub const MAX_LEN: usize = 64 * 1024;
/// Most holders a record can name (each needs a lock slot).
pub const MAX_HOLDERS: usize = 1024;
/// The record format written by this version.
pub const VERSION: u32 = 1;

/// The recorded state of the hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Format version (records written before versioning have none: 0).
    #[serde(default)]
    pub version: u32,
    /// True while new connections are held.
    pub closed: bool,
    /// Process that last changed it (informational: PIDs are per namespace).
    pub pid: u32,
    /// When it last changed, ms since the Unix epoch.
    pub since_ms: u64,
    /// Who holds it.
    #[serde(default)]
    pub holders: Vec<Holder>,
}

/// One holder of the hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique name (`PID-RANDOM`, or `manual` for `plugctl plug`).
    pub id: String,
    /// Its lock slot; `None` for the manual hold, which lasts until
    /// `plugctl release`.
    #[serde(default)]
    pub slot: Option<u32>,
    /// Its process, as seen from its own PID namespace (informational).
    #[serde(default)]
    pub pid: Option<u32>,
    /// When the hold began, ms since the Unix epoch.
    pub since_ms: u64,
    /// What it is for (the reload command, "plugctl plug", ...).
    pub what: String,
    /// When its lease ends, ms since the Unix epoch (`None`: a holder
    /// recorded before leases). A later holder never shortens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<u64>,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

impl Record {
    /// A record of `closed` with no holders, changed now by this process.
    pub fn now(closed: bool) -> Record {
        Record {
            version: VERSION,
            closed,
            pid: std::process::id(),
            since_ms: crate::clock::now_ms(),
            holders: vec![],
        }
    }

    /// Parse a record read from disk.
    pub fn parse(bytes: &[u8]) -> Result<Record, RecordError> {
        if bytes.len() > MAX_LEN {
            return Err(RecordError(format!("longer than {MAX_LEN} bytes")));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(RecordError("empty".into()));
        }
        let r: Record =
            serde_json::from_slice(bytes).map_err(|e| RecordError(format!("not a record: {e}")))?;
        if r.version > VERSION {
            return Err(RecordError(format!(
                "format version {} is newer than this plugctl's ({VERSION})",
                r.version
            )));
        }
        if r.holders.len() > MAX_HOLDERS {
            return Err(RecordError(format!("more than {MAX_HOLDERS} holders")));
        }
        for (i, h) in r.holders.iter().enumerate() {
            if r.holders[..i].iter().any(|o| o.id == h.id) {
                return Err(RecordError(format!("holder {:?} appears twice", h.id)));
            }
            if h.slot.is_some_and(|s| s as usize >= MAX_HOLDERS) {
                return Err(RecordError(format!(
                    "holder {:?} has a slot out of range",
                    h.id
                )));
            }
            if h.slot.is_some() && r.holders[..i].iter().any(|o| o.slot == h.slot) {
                return Err(RecordError(format!("two holders share slot {:?}", h.slot)));
            }
        }
        Ok(r)
    }

    /// The bytes to write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut r = Record::now(true);
        r.holders.push(Holder {
            id: "1-ab".into(),
            slot: Some(3),
            pid: Some(1),
            since_ms: 5,
            what: "reload: true".into(),
            lease_until_ms: Some(7),
        });
        assert_eq!(Record::parse(&r.to_bytes()), Ok(r));
    }

    #[test]
    fn a_record_of_the_previous_format_still_parses() {
        let r = Record::parse(br#"{"closed":true,"pid":7,"since_ms":9}"#).unwrap();
        assert!(r.closed && r.holders.is_empty() && r.version == 0);
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for (bytes, why) in [
            (&b""[..], "empty"),
            (b"  \n", "empty"),
            (b"{\"closed\":tr", "not a record"),
            (b"\xff\xfe", "not a record"),
            (b"{\"version\":99,\"closed\":false,\"pid\":1,\"since_ms\":0}", "newer"),
            (
                b"{\"closed\":true,\"pid\":1,\"since_ms\":0,\"holders\":[{\"id\":\"a\",\"since_ms\":0,\"what\":\"\"},{\"id\":\"a\",\"since_ms\":0,\"what\":\"\"}]}",
                "twice",
            ),
            (
                b"{\"closed\":true,\"pid\":1,\"since_ms\":0,\"holders\":[{\"id\":\"a\",\"slot\":99999,\"since_ms\":0,\"what\":\"\"}]}",
                "out of range",
            ),
        ] {
            let e = Record::parse(bytes).unwrap_err();
            assert!(e.0.contains(why), "{bytes:?}: {e}");
        }
        assert!(Record::parse(&vec![b' '; MAX_LEN + 1]).is_err());
    }
}
