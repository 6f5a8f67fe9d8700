//! `[ADDR:]PORT`: a port whose listening sockets `reload --wait-listen`
//! watches, as the configuration and the command line spell it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A port to watch, optionally on one local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    /// Only sockets bound to this address (a wildcard-bound socket matches
    /// every address); `None`: any address.
    pub addr: Option<IpAddr>,
    /// The port.
    pub port: u16,
}

impl FromStr for ListenSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<ListenSpec, String> {
        let bad =
            || format!("invalid --wait-listen {s:?}: expected PORT, ADDR:PORT or [V6ADDR]:PORT");
        if let Ok(port) = s.parse::<u16>() {
            return (port != 0)
                .then_some(ListenSpec { addr: None, port })
                .ok_or_else(bad);
        }
        let sa: std::net::SocketAddr = s.parse().map_err(|_| bad())?;
        if sa.port() == 0 {
            return Err(bad());
        }
        Ok(ListenSpec {
            addr: Some(sa.ip()),
            port: sa.port(),
        })
    }
}

impl serde::Serialize for ListenSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.addr {
            None => s.serialize_str(&self.port.to_string()),
            Some(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ListenSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ListenSpec, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.port),
            Some(a) => write!(f, "{a}:{}", self.port),
            None => write!(f, "*:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            "8080".parse(),
            Ok(ListenSpec {
                addr: None,
                port: 8080
            })
        );
        let s: ListenSpec = "169.254.255.254:80".parse().unwrap();
        assert_eq!(s.to_string(), "169.254.255.254:80");
        let s: ListenSpec = "[fd00::1]:443".parse().unwrap();
        assert_eq!(s.to_string(), "[fd00::1]:443");
        assert!("0".parse::<ListenSpec>().is_err());
        assert!("x:1".parse::<ListenSpec>().is_err());
    }
}
