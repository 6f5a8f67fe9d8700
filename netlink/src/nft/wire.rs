//! Framing shared by every nf_tables message: `nlmsghdr` + `nfgenmsg` + attributes, on the
//! crate's one framing layer, netlink-packet-core: its [`NetlinkHeader`] for the header, its
//! [`Nla`](netlink_packet_core::Nla) / [`Emitable`] for the attributes sent ([`Attr`]), its
//! [`NlasIterator`] for the attributes received ([`AttrBuf`], every length checked).

use netlink_packet_core::{
    DefaultNla, Emitable, NetlinkHeader, NlaBuffer, NlasIterator, NLA_F_NESTED, NLA_HEADER_SIZE,
};

use super::consts::{NFNETLINK_V0, NFT_DATA_VALUE_MAXLEN, NFT_NAME_MAXLEN};
use super::NftError;
use crate::frame::NLMSG_HDRLEN;

/// An nf_tables attribute to send: netlink-packet-core's [`DefaultNla`], whose kind carries
/// `NLA_F_NESTED` for a nest.
pub type Attr = DefaultNla;

/// An nf_tables attribute as received: a view into the reply whose
/// [`kind`](NlaBuffer::kind) has `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` masked off.
pub type AttrBuf<'a> = NlaBuffer<&'a [u8]>;

/// `struct nfgenmsg` (4 bytes): the start of every nfnetlink message payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nfgenmsg {
    /// `nfgen_family` (`NFPROTO_*`).
    pub family: u8,
    /// `res_id`: subsystem id in batch markers, ruleset generation (low 16 bits) in replies.
    /// Big-endian on the wire.
    pub res_id: u16,
}

impl Nfgenmsg {
    const LEN: usize = 4;

    /// Split a message payload (the bytes after the 16-byte `nlmsghdr`) into its `nfgenmsg`
    /// and its attributes. A payload whose length is not a multiple of 4 (last attribute's
    /// padding cut off) is tolerated.
    pub(crate) fn parse(payload: &[u8]) -> Result<(Nfgenmsg, Vec<AttrBuf<'_>>), NftError> {
        let Some((h, attrs)) = payload.split_first_chunk::<{ Self::LEN }>() else {
            return Err(NftError::Truncated(payload.len()));
        };
        let msg = Nfgenmsg {
            family: h[0],
            res_id: u16::from_be_bytes([h[2], h[3]]),
        };
        Ok((msg, parse_attrs(attrs)?))
    }

    fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.family;
        buf[1] = NFNETLINK_V0;
        buf[2..4].copy_from_slice(&self.res_id.to_be_bytes());
    }
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
    let attrs = attrs.as_slice();
    let len = NLMSG_HDRLEN + Nfgenmsg::LEN + attrs.buffer_len();
    let mut hdr = NetlinkHeader::default();
    hdr.length = u32::try_from(len).map_err(|_| NftError::TooLarge)?;
    hdr.message_type = nl_type;
    hdr.flags = flags;
    hdr.sequence_number = seq;
    let mut out = vec![0; len];
    let (h, body) = out.split_at_mut(NLMSG_HDRLEN);
    hdr.emit(h);
    let (nfgen, rest) = body.split_at_mut(Nfgenmsg::LEN);
    Nfgenmsg { family, res_id }.emit(nfgen);
    attrs.emit(rest);
    Ok(out)
}

fn attr_with(ty: u16, nested: bool, payload: Vec<u8>) -> Result<Attr, NftError> {
    // nla_len is a u16 covering the 4-byte header and the payload.
    if payload.len() + NLA_HEADER_SIZE > u16::MAX as usize {
        return Err(NftError::TooLarge);
    }
    let kind = if nested { ty | NLA_F_NESTED } else { ty };
    Ok(DefaultNla::new(kind, payload))
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

/// Big-endian u64 attribute (timeouts, handles).
pub(crate) fn attr_be64(ty: u16, v: u64) -> Result<Attr, NftError> {
    attr_with(ty, false, v.to_be_bytes().to_vec())
}

/// Nested attribute (NLA_F_NESTED set, as nft/libmnl do).
pub(crate) fn attr_nest(ty: u16, children: &[Attr]) -> Result<Attr, NftError> {
    attr_with(ty, true, attrs_to_bytes(children))
}

/// Nested attribute whose payload is already-serialised attributes (kept raw).
pub(crate) fn attr_raw_nest(ty: u16, payload: &[u8]) -> Result<Attr, NftError> {
    attr_with(ty, true, payload.to_vec())
}

/// Serialise attributes back to back (padded), as they appear inside a nest.
pub fn attrs_to_bytes(attrs: &[Attr]) -> Vec<u8> {
    let mut buf = vec![0; attrs.buffer_len()];
    attrs.emit(&mut buf);
    buf
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

/// The attributes inside a nest (or any attribute stream), with netlink-packet-core's
/// iterator: an error at the first attribute whose length does not fit.
pub(crate) fn parse_attrs(bytes: &[u8]) -> Result<Vec<AttrBuf<'_>>, NftError> {
    Ok(NlasIterator::new(bytes).collect::<Result<_, _>>()?)
}

/// First attribute of type `ty` (flags masked off).
pub(crate) fn find<'b, 'a>(attrs: &'b [AttrBuf<'a>], ty: u16) -> Option<&'b AttrBuf<'a>> {
    attrs.iter().find(|a| a.kind() == ty)
}

pub(crate) fn get_be32(a: &AttrBuf<'_>, what: &'static str) -> Result<u32, NftError> {
    let p = a.value();
    <[u8; 4]>::try_from(p)
        .map(u32::from_be_bytes)
        .map_err(|_| NftError::BadLength {
            what,
            expected: 4,
            got: p.len(),
        })
}

pub(crate) fn get_be64(a: &AttrBuf<'_>, what: &'static str) -> Result<u64, NftError> {
    let p = a.value();
    <[u8; 8]>::try_from(p)
        .map(u64::from_be_bytes)
        .map_err(|_| NftError::BadLength {
            what,
            expected: 8,
            got: p.len(),
        })
}

/// A NUL-terminated string attribute (anything from the first NUL on is ignored).
pub(crate) fn get_str(a: &AttrBuf<'_>, what: &'static str) -> Result<String, NftError> {
    let p = a.value();
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..end])
        .map(str::to_owned)
        .map_err(|_| NftError::BadString(what))
}

pub(crate) fn req<'b, 'a>(
    attrs: &'b [AttrBuf<'a>],
    ty: u16,
    what: &'static str,
) -> Result<&'b AttrBuf<'a>, NftError> {
    find(attrs, ty).ok_or(NftError::MissingAttr(what))
}
