//! Configuration: a TOML file (see `config/plugctl.toml`) with every key
//! optional; defaults are Yelp's values. Command-line flags override it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod listen;
pub use listen::ListenSpec;

/// Where `plugctl` looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/plugctl/plugctl.toml";

/// Everything plugctl needs to know to build and drive its tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Device whose egress carries the SYNs (the balancer is local: `lo`).
    pub device: String,
    /// Balancer addresses whose new connections are held (IPv4 or IPv6).
    pub addresses: Vec<IpAddr>,
    /// Only connections to these TCP ports; empty means every port.
    pub ports: Vec<u16>,
    /// Packet mark that steers SYNs into the plug (non-zero).
    pub mark: u32,
    /// Most bytes the plug holds; more is dropped (TCP retries it after 1 s).
    /// One IPv4 SYN on `lo` is 74 bytes.
    pub plug_limit: u32,
    /// Name of plugctl's own nf_tables table (family inet).
    pub table: String,
    /// Where plugctl remembers whether the plug is closed (the kernel cannot
    /// report it).
    pub state_dir: PathBuf,
    /// `reload` releases at the latest this long after closing the plug,
    /// even if the command is still running.
    #[serde(with = "humantime_serde")]
    pub max_hold: std::time::Duration,
    /// `reload` releases only once each of these `[ADDR:]PORT`s has a new
    /// listening socket and none of the old ones (empty: release as soon as
    /// the command returns).
    pub wait_listen: Vec<ListenSpec>,
    /// How long that must have held before releasing.
    #[serde(with = "humantime_serde")]
    pub settle: std::time::Duration,
    /// `reload`'s observed hand-over: when nothing changes on any protected
    /// port, release this long after the command returned (an asynchronous
    /// reload, such as `kill -USR2`, returns before anything happens).
    #[serde(with = "humantime_serde")]
    pub quiet_window: std::time::Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            device: "lo".into(),
            addresses: vec![IpAddr::from([169, 254, 255, 254])],
            ports: vec![],
            mark: 1,
            plug_limit: 1 << 20,
            table: "plugctl".into(),
            state_dir: PathBuf::from("/run/plugctl"),
            max_hold: std::time::Duration::from_secs(5),
            wait_listen: vec![],
            settle: std::time::Duration::from_millis(20),
            quiet_window: std::time::Duration::from_millis(300),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for plugctl.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words, flattened to one line.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Read `path`. A missing file at the default path is not an error (the
    /// defaults apply); a missing file named explicitly is.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Config::from_toml(&text).map_err(|message| ConfigError::Parse { path, message })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parse TOML text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.message().replace('\n', " "))
    }

    /// Check values the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.into()));
        if self.device.is_empty()
            || self.device.len() >= libc::IFNAMSIZ
            || self.device.contains('/')
        {
            return bad("device must be an interface name (1-15 characters)");
        }
        if self.addresses.is_empty() {
            return bad("addresses must name at least one address");
        }
        if self.mark == 0 {
            return bad("mark must be non-zero (fw filters match on it)");
        }
        if self.ports.contains(&0) {
            return bad("ports must be 1-65535");
        }
        if self.plug_limit < 128 {
            return bad("plug_limit is in bytes and must hold at least one SYN (>= 128)");
        }
        if self.max_hold.is_zero() || self.max_hold > std::time::Duration::from_secs(600) {
            return bad("max_hold must be between 1ms and 10min");
        }
        if self.settle > std::time::Duration::from_secs(600) {
            return bad("settle must be at most 10min");
        }
        if self.quiet_window > std::time::Duration::from_secs(600) {
            return bad("quiet_window must be at most 10min");
        }
        if self.table.is_empty() || self.table.len() > 255 {
            return bad("table must be a non-empty name");
        }
        if !self.state_dir.is_absolute() {
            return bad("state_dir must be an absolute path");
        }
        if self.state_dir.components().any(|c| {
            matches!(
                c,
                std::path::Component::ParentDir | std::path::Component::CurDir
            )
        }) {
            return bad("state_dir must not contain `.` or `..`");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../../config/plugctl.toml");
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(Config::from_toml("devcie = \"lo\"").is_err());
        assert!(Config::from_toml("addresses = [\"not-an-ip\"]").is_err());
        let c = Config::from_toml("mark = 0").unwrap();
        assert!(c.validate().is_err());
        for dir in ["", "run/plugctl", "./x", "/run/../tmp"] {
            let c = Config::from_toml(&format!("state_dir = {dir:?}")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("state_dir"), "{dir:?}: {e}");
        }
        let c = Config::from_toml("max_hold = \"11min\"").unwrap();
        assert!(c.validate().is_err());
        let c = Config::from_toml("quiet_window = \"11min\"").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("quiet_window"));
        let c = Config::from_toml("addresses = [\"fd00::1\", \"10.0.0.1\"]\nports = [80, 443]")
            .unwrap();
        assert!(c.validate().is_ok());
    }
}
