//! Sets: the named set a lease lives in (`NFT_MSG_NEWSET` / `GETSET` / `DELSET`), keyed by a
//! destination address, or by address . port, with per-element timeouts
//! (`flags timeout`; docs/netlink-reference.md §7.9).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};

use super::consts::*;
use super::wire::{
    attr_be32, attr_bytes, attr_str, check_name, find, get_be32, get_be64, get_str, message, req,
    Nfgenmsg,
};
use super::NftError;

/// What a set's elements are: a destination address of one family, alone or followed by a
/// TCP destination port (the concatenation `ip daddr . tcp dport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetKey {
    /// `ipv6_addr` rather than `ipv4_addr`.
    pub ipv6: bool,
    /// `. inet_service` after the address.
    pub port: bool,
}

/// The `NFTA_SET_USERDATA` nft 1.0.6 sends for `type ipv4_addr . inet_service` (and the IPv6
/// one): how `nft list` prints the key. Host byte order inside (little-endian here).
const UDATA_CONCAT: [u8; 16] = [
    0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00,
];
/// The same for a key of one address (`type ipv4_addr` / `ipv6_addr`): key byte order big endian.
const UDATA_ADDR: [u8; 6] = [0x00, 0x04, 0x02, 0x00, 0x00, 0x00];

impl SetKey {
    /// The key of `addr` \[. `port`\] in this set, `None` if the address is of the other
    /// family or the port is missing (or present) where the key says otherwise.
    pub fn element(&self, addr: IpAddr, port: Option<u16>) -> Option<Vec<u8>> {
        let mut key = match (addr, self.ipv6) {
            (IpAddr::V4(a), false) => a.octets().to_vec(),
            (IpAddr::V6(a), true) => a.octets().to_vec(),
            _ => return None,
        };
        match (port, self.port) {
            // Each concatenated field fills whole 4-byte registers: the port is padded.
            (Some(p), true) => key.extend_from_slice(&[(p >> 8) as u8, p as u8, 0, 0]),
            (None, false) => {}
            _ => return None,
        }
        Some(key)
    }

    /// Address and port of an element key (the inverse of [`SetKey::element`]).
    pub fn parse_element(&self, key: &[u8]) -> Option<(IpAddr, Option<u16>)> {
        let alen = if self.ipv6 { 16 } else { 4 };
        if key.len() != self.key_len() as usize {
            return None;
        }
        let addr = if self.ipv6 {
            IpAddr::from(<[u8; 16]>::try_from(&key[..16]).ok()?)
        } else {
            IpAddr::from(<[u8; 4]>::try_from(&key[..4]).ok()?)
        };
        let port = self
            .port
            .then(|| u16::from_be_bytes([key[alen], key[alen + 1]]));
        Some((addr, port))
    }

    /// `NFTA_SET_KEY_TYPE`: nft's datatype id, `addr << 6 | inet_service` for the pair.
    pub fn key_type(&self) -> u32 {
        let addr = if self.ipv6 {
            NFT_TYPE_IPV6_ADDR
        } else {
            NFT_TYPE_IPV4_ADDR
        };
        if self.port {
            (addr << 6) | NFT_TYPE_INET_SERVICE
        } else {
            addr
        }
    }

    /// `NFTA_SET_KEY_LEN`: 4 or 16 bytes of address, + 4 for a (padded) port.
    pub fn key_len(&self) -> u32 {
        (if self.ipv6 { 16 } else { 4 }) + if self.port { 4 } else { 0 }
    }

    /// nft's words for the key type.
    pub fn nft_type(&self) -> &'static str {
        match (self.ipv6, self.port) {
            (false, false) => "ipv4_addr",
            (false, true) => "ipv4_addr . inet_service",
            (true, false) => "ipv6_addr",
            (true, true) => "ipv6_addr . inet_service",
        }
    }

    fn userdata(&self) -> &'static [u8] {
        if self.port {
            &UDATA_CONCAT
        } else {
            &UDATA_ADDR
        }
    }
}

/// A named set of `key`s with `flags timeout`, in an `inet` table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetSpec {
    /// Set name (1..=255 bytes, no NUL).
    pub name: String,
    /// Its key.
    pub key: SetKey,
}

impl SetSpec {
    /// Whether a set found in the kernel is this one (same name, key, and `flags timeout`
    /// among its flags).
    pub fn matches(&self, found: &DumpedSet) -> bool {
        found.name == self.name
            && found.key_type == self.key.key_type()
            && found.key_len == self.key.key_len()
            && found.flags & NFT_SET_TIMEOUT != 0
    }

    /// `nft add set` syntax of the set (without the `nft add set inet TABLE` prefix).
    pub fn to_nft_syntax(&self) -> String {
        format!(
            "{} '{{ type {}; flags timeout; }}'",
            self.name,
            self.key.nft_type()
        )
    }
}

/// NEWSET {TABLE, NAME, FLAGS = timeout, KEY_TYPE, KEY_LEN, ID, USERDATA}, REQUEST|ACK|CREATE,
/// family inet: what `nft add set inet TABLE NAME '{ type …; flags timeout; }'` sends (plus the
/// ACK). `id` names the set for rules of the same batch ([`Expr::Lookup`](super::Expr)).
pub(crate) fn new_set(table: &str, set: &SetSpec, id: u32, seq: u32) -> Result<Vec<u8>, NftError> {
    check_name(&set.name)?;
    message(
        NFT_MSG_NEWSET,
        NLM_F_REQUEST | NLM_F_ACK | netlink_packet_core::NLM_F_CREATE,
        seq,
        NFPROTO_INET,
        0,
        vec![
            attr_str(NFTA_SET_TABLE, table)?,
            attr_str(NFTA_SET_NAME, &set.name)?,
            attr_be32(NFTA_SET_FLAGS, NFT_SET_TIMEOUT)?,
            attr_be32(NFTA_SET_KEY_TYPE, set.key.key_type())?,
            attr_be32(NFTA_SET_KEY_LEN, set.key.key_len())?,
            attr_be32(NFTA_SET_ID, id)?,
            attr_bytes(NFTA_SET_USERDATA, set.key.userdata())?,
        ],
    )
}

/// NFT_MSG_GETSET of one set (REQUEST|ACK, family inet, TABLE, NAME), as `nft list set inet
/// TABLE NAME` sends it: answered by one NFT_MSG_NEWSET ([`parse_set`]) then an ACK, or by
/// -ENOENT if the table or the set does not exist.
pub fn get_set_request(table: &str, set: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    check_name(table)?;
    check_name(set)?;
    message(
        NFT_MSG_GETSET,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        NFPROTO_INET,
        0,
        vec![
            attr_str(NFTA_SET_TABLE, table)?,
            attr_str(NFTA_SET_NAME, set)?,
        ],
    )
}

/// A set from an NFT_MSG_NEWSET reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedSet {
    /// NFTA_SET_TABLE.
    pub table: String,
    /// NFTA_SET_NAME.
    pub name: String,
    /// NFTA_SET_FLAGS (0 if absent).
    pub flags: u32,
    /// NFTA_SET_KEY_TYPE (0 if absent).
    pub key_type: u32,
    /// NFTA_SET_KEY_LEN.
    pub key_len: u32,
    /// NFTA_SET_TIMEOUT: the default element timeout, ms, if the set has one.
    pub timeout_ms: Option<u64>,
}

/// Parse the payload (from `nfgenmsg` on) of one NFT_MSG_NEWSET reply. Attributes plugctl does
/// not need (handle, user data, backend, …) are ignored.
pub fn parse_set(payload: &[u8]) -> Result<DumpedSet, NftError> {
    let (_, a) = Nfgenmsg::parse(payload)?;
    let a = a.as_slice();
    let be32 = |ty, what| find(a, ty).map(|x| get_be32(x, what)).transpose();
    Ok(DumpedSet {
        table: get_str(req(a, NFTA_SET_TABLE, "NFTA_SET_TABLE")?, "NFTA_SET_TABLE")?,
        name: get_str(req(a, NFTA_SET_NAME, "NFTA_SET_NAME")?, "NFTA_SET_NAME")?,
        flags: be32(NFTA_SET_FLAGS, "NFTA_SET_FLAGS")?.unwrap_or(0),
        key_type: be32(NFTA_SET_KEY_TYPE, "NFTA_SET_KEY_TYPE")?.unwrap_or(0),
        key_len: get_be32(
            req(a, NFTA_SET_KEY_LEN, "NFTA_SET_KEY_LEN")?,
            "NFTA_SET_KEY_LEN",
        )?,
        timeout_ms: find(a, NFTA_SET_TIMEOUT)
            .map(|x| get_be64(x, "NFTA_SET_TIMEOUT"))
            .transpose()?,
    })
}
