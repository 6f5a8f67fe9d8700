//! Framing shared by every nf_tables message: `nlmsghdr` + `nfgenmsg` + attributes, built and
//! parsed with neli's [`Nlmsghdr`](neli::nl::Nlmsghdr), [`Nlattr`] and a derived [`Nfgenmsg`].
//!
//! neli 0.7.5 pitfalls avoided on kernel input (they panic instead of returning an error):
//! `Nlmsghdr::from_bytes` computes `nl_len - 16` unchecked (so replies are handed to us as
//! payloads, framed by the caller), `String::from_bytes_with_input` slices `len - 1` unchecked
//! (so strings are decoded from the raw attribute bytes, see [`get_str`]), and `()`'s
//! `from_bytes_with_input` asserts. Only `Nlattr`/`GenlBuffer`/`Buffer` parsing is used, which
//! checks every length.

use std::io::Cursor;

use neli::{
    consts::nl::NlmF,
    err::{DeError, SerError},
    genl::{AttrTypeBuilder, Nlattr, NlattrBuilder},
    nl::{NlPayload, NlmsghdrBuilder},
    types::{Buffer, GenlBuffer},
    FromBytes, FromBytesWithInput, Header, Size, ToBytes, TypeSize,
};

use super::consts::{NFNETLINK_V0, NFT_DATA_VALUE_MAXLEN, NFT_NAME_MAXLEN};
use super::NftError;

/// A raw nfnetlink attribute as neli models it: `u16` type (neli masks NLA_F_NESTED /
/// NLA_F_NET_BYTEORDER off when parsing), payload bytes.
pub type Attr = Nlattr<u16, Buffer>;

/// A big-endian `u16` (neli only ships a big-endian `u64`); used for `nfgenmsg.res_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Be16(pub u16);

impl Size for Be16 {
    fn unpadded_size(&self) -> usize {
        2
    }
}

impl TypeSize for Be16 {
    fn type_size() -> usize {
        2
    }
}

impl ToBytes for Be16 {
    fn to_bytes(&self, buffer: &mut Cursor<Vec<u8>>) -> Result<(), SerError> {
        self.0.to_be_bytes().to_bytes(buffer)
    }
}

impl FromBytes for Be16 {
    fn from_bytes(buffer: &mut Cursor<impl AsRef<[u8]>>) -> Result<Self, DeError> {
        <[u8; 2]>::from_bytes(buffer).map(|b| Be16(u16::from_be_bytes(b)))
    }
}

/// `struct nfgenmsg` (4 bytes) followed by the message's attributes: the payload of every
/// nfnetlink `nlmsghdr`.
#[derive(
    Debug, Clone, PartialEq, Eq, neli::Size, neli::ToBytes, neli::FromBytesWithInput, neli::Header,
)]
pub struct Nfgenmsg {
    /// `nfgen_family` (`NFPROTO_*`).
    pub family: u8,
    /// `version` (`NFNETLINK_V0`).
    pub version: u8,
    /// `res_id`: subsystem id in batch markers, ruleset generation (low 16 bits) in replies.
    pub res_id: Be16,
    /// The attributes.
    #[neli(input = "input.checked_sub(Self::header_size()).ok_or(DeError::InvalidInput(input))?")]
    pub attrs: GenlBuffer<u16, Buffer>,
}

impl Nfgenmsg {
    /// Parse a message payload (the bytes after the 16-byte `nlmsghdr`). A payload whose length
    /// is not a multiple of 4 (last attribute's padding cut off) is tolerated.
    pub fn parse(payload: &[u8]) -> Result<Nfgenmsg, NftError> {
        if payload.len() < Self::header_size() {
            return Err(NftError::Truncated(payload.len()));
        }
        let padded = pad4(payload);
        Ok(Nfgenmsg::from_bytes_with_input(
            &mut Cursor::new(&padded[..]),
            padded.len(),
        )?)
    }
}

fn pad4(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if bytes.len() % 4 == 0 {
        std::borrow::Cow::Borrowed(bytes)
    } else {
        let mut v = bytes.to_vec();
        v.resize(neli::consts::alignto(bytes.len()), 0);
        std::borrow::Cow::Owned(v)
    }
}

fn ser<E: std::fmt::Display>(e: E) -> NftError {
    NftError::Serialize(e.to_string())
}

/// Serialise one complete netlink message: `nlmsghdr` (pid 0) + `nfgenmsg` + `attrs`.
pub(crate) fn message(
    nl_type: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: Vec<Attr>,
) -> Result<Vec<u8>, NftError> {
    let payload = Nfgenmsg {
        family,
        version: NFNETLINK_V0,
        res_id: Be16(res_id),
        attrs: attrs.into_iter().collect(),
    };
    let msg = NlmsghdrBuilder::default()
        .nl_type(nl_type)
        .nl_flags(NlmF::from_bits_retain(flags))
        .nl_seq(seq)
        .nl_pid(0)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(ser)?;
    if msg.padded_size() > u32::MAX as usize {
        return Err(NftError::TooLarge);
    }
    let mut buf = Cursor::new(Vec::new());
    msg.to_bytes(&mut buf)?;
    Ok(buf.into_inner())
}

fn attr_with(ty: u16, nested: bool, payload: Vec<u8>) -> Result<Attr, NftError> {
    // nla_len is a u16 covering the 4-byte header and the payload.
    if payload.len() + 4 > u16::MAX as usize {
        return Err(NftError::TooLarge);
    }
    NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(ty)
                .nla_nested(nested)
                .build()
                .map_err(ser)?,
        )
        .nla_payload(Buffer::from(payload))
        .build()
        .map_err(ser)
}

/// Attribute with raw bytes.
pub(crate) fn attr_bytes(ty: u16, payload: &[u8]) -> Result<Attr, NftError> {
    attr_with(ty, false, payload.to_vec())
}

/// NUL-terminated string attribute.
pub(crate) fn attr_str(ty: u16, s: &str) -> Result<Attr, NftError> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    attr_with(ty, false, v)
}

/// Big-endian u32 attribute (every nf_tables integer attribute is big-endian).
pub(crate) fn attr_be32(ty: u16, v: u32) -> Result<Attr, NftError> {
    attr_with(ty, false, v.to_be_bytes().to_vec())
}

/// Nested attribute (NLA_F_NESTED set, as nft/libmnl do), built with neli's `Nlattr::nest`.
pub(crate) fn attr_nest(ty: u16, children: &[Attr]) -> Result<Attr, NftError> {
    let total: usize = children.iter().map(|c| c.padded_size()).sum();
    if total + 4 > u16::MAX as usize {
        return Err(NftError::TooLarge);
    }
    let mut nest = attr_with(ty, true, Vec::new())?;
    for c in children {
        nest = nest.nest(c)?;
    }
    Ok(nest)
}

/// Nested attribute whose payload is already-serialised attributes (kept raw).
pub(crate) fn attr_raw_nest(ty: u16, payload: &[u8]) -> Result<Attr, NftError> {
    attr_with(ty, true, payload.to_vec())
}

/// Serialise attributes back to back (padded), as they appear inside a nest.
#[cfg(test)]
pub(crate) fn attrs_to_bytes(attrs: &[Attr]) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    for a in attrs {
        a.to_bytes(&mut buf).expect("writing to a Vec cannot fail");
    }
    buf.into_inner()
}

/// Check a table/chain name: 1..=255 bytes, no NUL (the kernel limit is NFT_NAME_MAXLEN incl. NUL).
pub(crate) fn check_name(name: &str) -> Result<(), NftError> {
    if name.is_empty() || name.len() >= NFT_NAME_MAXLEN || name.contains('\0') {
        return Err(NftError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// Check an NFTA_DATA_VALUE length (1..=64 bytes).
pub(crate) fn check_value(what: &'static str, v: &[u8]) -> Result<(), NftError> {
    if v.is_empty() || v.len() > NFT_DATA_VALUE_MAXLEN {
        return Err(NftError::BadLength {
            what,
            expected: NFT_DATA_VALUE_MAXLEN,
            got: v.len(),
        });
    }
    Ok(())
}

/// Parse the attributes inside a nest (or any attribute stream) with neli.
pub(crate) fn parse_attrs(bytes: &[u8]) -> Result<Vec<Attr>, NftError> {
    let padded = pad4(bytes);
    let buf = GenlBuffer::<u16, Buffer>::from_bytes_with_input(
        &mut Cursor::new(&padded[..]),
        padded.len(),
    )?;
    Ok(buf.into_iter().collect())
}

/// The attribute type with NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off.
pub(crate) fn attr_type(a: &Attr) -> u16 {
    *a.nla_type().nla_type()
}

/// Payload bytes of an attribute.
pub(crate) fn payload(a: &Attr) -> &[u8] {
    a.nla_payload().as_ref()
}

/// First attribute of type `ty`.
pub(crate) fn find(attrs: &[Attr], ty: u16) -> Option<&Attr> {
    attrs.iter().find(|a| attr_type(a) == ty)
}

pub(crate) fn get_be32(a: &Attr, what: &'static str) -> Result<u32, NftError> {
    let p = payload(a);
    <[u8; 4]>::try_from(p)
        .map(u32::from_be_bytes)
        .map_err(|_| NftError::BadLength {
            what,
            expected: 4,
            got: p.len(),
        })
}

pub(crate) fn get_be64(a: &Attr, what: &'static str) -> Result<u64, NftError> {
    let p = payload(a);
    <[u8; 8]>::try_from(p)
        .map(u64::from_be_bytes)
        .map_err(|_| NftError::BadLength {
            what,
            expected: 8,
            got: p.len(),
        })
}

/// A NUL-terminated string attribute (anything from the first NUL on is ignored).
pub(crate) fn get_str(a: &Attr, what: &'static str) -> Result<String, NftError> {
    let p = payload(a);
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..end])
        .map(str::to_owned)
        .map_err(|_| NftError::BadString(what))
}

pub(crate) fn req<'a>(
    attrs: &'a [Attr],
    ty: u16,
    what: &'static str,
) -> Result<&'a Attr, NftError> {
    find(attrs, ty).ok_or(NftError::MissingAttr(what))
}
