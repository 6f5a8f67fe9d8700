//! Helpers shared by the fuzz targets in `fuzz_targets/`: wrapping fuzzer
//! bytes into the messages the parsers take, so that mutations go to the
//! part under test rather than to framing the parser never sees.
#![deny(missing_docs)]

use plugctl_netlink::frame::RawMessage;
use plugctl_netlink::nft::consts::{
    NFPROTO_INET, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS, NFTA_RULE_HANDLE, NFTA_RULE_TABLE,
};
use plugctl_netlink::nft::{attrs_to_bytes, Attr};

/// A received message of type `ty` whose body is `payload`, as
/// [`frame::split`](plugctl_netlink::frame::split) hands it to a parser.
pub fn message(ty: u16, flags: u16, payload: &[u8]) -> RawMessage {
    RawMessage {
        ty,
        flags,
        seq: 0,
        payload: payload.to_vec(),
    }
}

/// Decode `m` as `NLMSG_ERROR` and as `NLMSG_DONE`: whatever the bytes, a
/// kernel error that comes out carries a real errno (1..=4095) and prints.
pub fn check_error_decoding(m: &RawMessage) {
    use plugctl_netlink::frame::MAX_ERRNO;
    if let Some(Ok(ack)) = m.as_ack() {
        if let Err(k) = ack.result {
            assert!((1..=MAX_ERRNO).contains(&k.errno), "{k:?}");
            let _ = k.to_string();
        }
    }
    if let Some(Err(plugctl_netlink::Error::Kernel(k))) = m.as_done() {
        assert!((1..=MAX_ERRNO).contains(&k.errno), "{k:?}");
        let _ = k.to_string();
    }
}

/// Append one netlink attribute (header, value, padding); `None` if it would
/// not fit the 16-bit `nla_len`.
fn push_attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) -> Option<()> {
    let len = u16::try_from(4 + value.len()).ok()?;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
    Some(())
}

/// The payload (after the `nlmsghdr`) of an `NFT_MSG_NEWRULE` dump entry of
/// table `plugctl`, chain `output`, handle 2, whose `NFTA_RULE_EXPRESSIONS`
/// holds `expressions` (a list of `NFTA_LIST_ELEM`); `None` if that list is
/// too long for one attribute.
pub fn rule_payload(expressions: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![NFPROTO_INET, 0, 0, 0];
    push_attr(&mut out, NFTA_RULE_TABLE, b"plugctl\0")?;
    push_attr(&mut out, NFTA_RULE_CHAIN, b"output\0")?;
    push_attr(&mut out, NFTA_RULE_HANDLE, &2u64.to_be_bytes())?;
    push_attr(&mut out, NFTA_RULE_EXPRESSIONS, expressions)?;
    Some(out)
}

/// An attribute as bytes on the wire (padded).
pub fn attr_bytes(attr: &Attr) -> Vec<u8> {
    attrs_to_bytes(std::slice::from_ref(attr))
}
