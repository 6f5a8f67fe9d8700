//! tc handles: `major:minor`, written in hex as `tc` does.

use std::fmt;
use std::str::FromStr;

/// A tc handle or class id, `major << 16 | minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub u32);

impl Handle {
    /// `root` (`TC_H_ROOT`).
    pub const ROOT: Handle = Handle(0xFFFF_FFFF);
    /// Unspecified (`TC_H_UNSPEC`).
    pub const UNSPEC: Handle = Handle(0);

    /// `major:minor`.
    pub const fn new(major: u16, minor: u16) -> Handle {
        Handle((major as u32) << 16 | minor as u32)
    }
    /// The major half.
    pub const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// The minor half.
    pub const fn minor(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Handle::ROOT => f.write_str("root"),
            h if h.minor() == 0 => write!(f, "{:x}:", h.major()),
            h => write!(f, "{:x}:{:x}", h.major(), h.minor()),
        }
    }
}

/// A handle that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tc handle {0:?}: expected MAJOR:[MINOR] in hex, e.g. 1: or 1:4")]
pub struct BadHandle(pub String);

impl FromStr for Handle {
    type Err = BadHandle;
    fn from_str(s: &str) -> Result<Handle, BadHandle> {
        if s == "root" {
            return Ok(Handle::ROOT);
        }
        let bad = || BadHandle(s.to_string());
        let (maj, min) = s.split_once(':').ok_or_else(bad)?;
        let maj = u16::from_str_radix(maj, 16).map_err(|_| bad())?;
        let min = if min.is_empty() {
            0
        } else {
            u16::from_str_radix(min, 16).map_err(|_| bad())?
        };
        Ok(Handle::new(maj, min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        for (s, v) in [
            ("1:", 0x0001_0000),
            ("1:4", 0x0001_0004),
            ("40:", 0x0040_0000),
            ("root", 0xFFFF_FFFF),
        ] {
            let h: Handle = s.parse().unwrap();
            assert_eq!(h.0, v);
            assert_eq!(h.to_string(), s);
        }
        assert!("x".parse::<Handle>().is_err());
        assert!("1:g".parse::<Handle>().is_err());
    }
}
