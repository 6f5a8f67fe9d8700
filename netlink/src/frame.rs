//! Netlink framing shared by every family plugctl speaks: walking the
//! `nlmsghdr`s of a received datagram and decoding `NLMSG_ERROR` (ACKs,
//! errors and their extended-ack strings).
//!
//! The one framing layer of this crate is netlink-packet-core's: its
//! [`NetlinkBuffer`] / [`NetlinkHeader`] for `nlmsghdr`, its `NLM_F_*` and
//! `NLMSG_*` constants, its `NlasIterator` for attributes. What it lacks, and
//! this module adds, is the decoding of extended acks (`NLMSGERR_ATTR_MSG`).
//!
//! Message *bodies* are parsed elsewhere (tc by `netlink-packet-route`,
//! nf_tables by [`crate::nft`]); this module only cuts the datagram up.

use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkHeader, NlasIterator, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
};

use crate::error::{Error, KernelError};

/// `NLMSGERR_ATTR_MSG`: a human-readable string (netlink-packet-core does not
/// decode extended-ack attributes; plugctl does).
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;

/// The largest errno the kernel reports (`MAX_ERRNO` in `include/linux/err.h`):
/// an error code in a reply is `-errno` with `errno` in `1..=MAX_ERRNO`.
pub const MAX_ERRNO: i32 = 4095;

/// One netlink message as received: header fields and the body after the
/// 16-byte `nlmsghdr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The body (everything after the header, without trailing padding).
    pub payload: Vec<u8>,
}

impl RawMessage {
    /// The whole message, header included (what the kernel sent, minus padding).
    pub fn to_bytes(&self, pid: u32) -> Vec<u8> {
        let mut hdr = NetlinkHeader::default();
        hdr.length = (NLMSG_HDRLEN + self.payload.len()) as u32;
        hdr.message_type = self.ty;
        hdr.flags = self.flags;
        hdr.sequence_number = self.seq;
        hdr.port_number = pid;
        let mut out = vec![0; NLMSG_HDRLEN];
        hdr.emit(&mut out);
        out.extend_from_slice(&self.payload);
        out
    }

    /// The body, if this message has type `ty` (`name` is for the error).
    pub fn body_of(&self, ty: u16, name: &str) -> Result<&[u8], Error> {
        if self.ty != ty {
            return Err(Error::Malformed(format!("type {} is not {name}", self.ty)));
        }
        Ok(&self.payload)
    }

    /// If this is an `NLMSG_ERROR`, decode it.
    pub fn as_ack(&self) -> Option<Result<Ack, Error>> {
        (self.ty == NLMSG_ERROR).then(|| Ack::parse(self))
    }

    /// If this is an `NLMSG_DONE`, decode the status that ends the dump:
    /// `Ok(())` when it completed (no status, or a non-negative one), the
    /// kernel's error when the dump failed part-way (a `-errno` status).
    pub fn as_done(&self) -> Option<Result<(), Error>> {
        (self.ty == NLMSG_DONE).then(|| {
            let code = match self.payload.get(..4) {
                Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                None => 0,
            };
            if code >= 0 {
                return Ok(());
            }
            Err(Error::Kernel(KernelError {
                errno: errno_of(code, "NLMSG_DONE")?,
                message: None,
            }))
        })
    }
}

/// The positive errno of a kernel error `code` (`-errno`), or
/// [`Error::Malformed`] if `code` is no such number: positive, or below
/// `-MAX_ERRNO` (`i32::MIN` among them, which has no positive counterpart).
fn errno_of(code: i32, what: &str) -> Result<i32, Error> {
    match code.checked_neg() {
        Some(errno) if (1..=MAX_ERRNO).contains(&errno) => Ok(errno),
        _ => Err(Error::Malformed(format!(
            "{what} with error code {code}, not a -errno"
        ))),
    }
}

/// Serialize a `netlink-packet-*` message with these flags and seq.
pub fn serialize<T>(inner: T, flags: u16, seq: u32) -> Vec<u8>
where
    T: netlink_packet_core::NetlinkSerializable + std::fmt::Debug,
    netlink_packet_core::NetlinkPayload<T>: From<T>,
{
    let mut hdr = netlink_packet_core::NetlinkHeader::default();
    hdr.flags = flags;
    hdr.sequence_number = seq;
    let mut msg = netlink_packet_core::NetlinkMessage::new(
        hdr,
        netlink_packet_core::NetlinkPayload::from(inner),
    );
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Split a datagram into its messages (netlink-packet-core's
/// [`NetlinkBuffer`] checks each header's length against what is left).
pub fn split(mut buf: &[u8]) -> Result<Vec<RawMessage>, Error> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let msg = NetlinkBuffer::new_checked(buf).map_err(|e| {
            Error::Malformed(format!("nlmsghdr with {} bytes left: {e}", buf.len()))
        })?;
        let len = msg.length() as usize;
        out.push(RawMessage {
            ty: msg.message_type(),
            flags: msg.flags(),
            seq: msg.sequence_number(),
            payload: msg.payload().to_vec(),
        });
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(out)
}

/// A decoded `NLMSG_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Sequence number of the message this answers.
    pub seq: u32,
    /// `Ok(())` for an ACK, the kernel's error otherwise.
    pub result: Result<(), KernelError>,
}

impl Ack {
    fn parse(msg: &RawMessage) -> Result<Ack, Error> {
        let p = &msg.payload;
        if p.len() < 4 + NLMSG_HDRLEN {
            return Err(Error::Malformed(format!(
                "NLMSG_ERROR of {} bytes",
                p.len()
            )));
        }
        let code = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
        let echoed_len = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as usize;
        if code == 0 {
            return Ok(Ack {
                seq: msg.seq,
                result: Ok(()),
            });
        }
        // The echoed request: only its header when capped, else all of it.
        let echoed = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            echoed_len.checked_next_multiple_of(4).unwrap_or(usize::MAX)
        };
        let errno = errno_of(code, "NLMSG_ERROR")?;
        let mut message = None;
        if msg.flags & NLM_F_ACK_TLVS != 0 {
            let tlvs = p.get(4..).and_then(|p| p.get(echoed..)).unwrap_or_default();
            message = extack_message(tlvs);
        }
        Ok(Ack {
            seq: msg.seq,
            result: Err(KernelError { errno, message }),
        })
    }
}

/// `NLMSGERR_ATTR_MSG` among the extended-ack attributes, walked with
/// netlink-packet-core's iterator (`None` at the first malformed one).
fn extack_message(tlvs: &[u8]) -> Option<String> {
    for nla in NlasIterator::new(tlvs) {
        let nla = nla.ok()?;
        if nla.kind() == NLMSGERR_ATTR_MSG {
            let s = nla.value().split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // [CAPTURED kernel] ACK for `tc qdisc add dev lo root handle 1: prio bands 4`
    // on 6.1 (docs/netlink-reference.md §1.4).
    #[test]
    fn parses_capped_ack() {
        let b =
            hex("24000000 02000001 512b056b a4000000 00000000 4c000000 24000506 512b056b 00000000");
        let msgs = split(&b).unwrap();
        assert_eq!(msgs.len(), 1);
        let ack = msgs[0].as_ack().unwrap().unwrap();
        assert_eq!(ack.seq, 0x6b052b51);
        assert_eq!(ack.result, Ok(()));
    }

    // [CAPTURED kernel] EEXIST with extack, 6.18 (docs/netlink-reference.md §1.4).
    #[test]
    fn parses_error_with_extack() {
        let b = hex("6c000000 02000002 02000000 331c0000 efffffff
             30000000 24000506 02000000 00000000
             00000000 01000000 00000100 ffffffff
             00000000 0a000100 70666966 6f000000
             27000100 4578636c7573697669747920666c6167206f6e2c2063616e6e6f74206d6f646966790000");
        let msgs = split(&b).unwrap();
        let ack = msgs[0].as_ack().unwrap().unwrap();
        assert_eq!(
            ack.result,
            Err(KernelError {
                errno: 17,
                message: Some("Exclusivity flag on, cannot modify".into())
            })
        );
    }

    // The fuzzer's find (issue 11): an NLMSG_ERROR whose code is i32::MIN
    // made `-errno` overflow (a panic with overflow checks on, as in debug
    // builds). It is no -errno: a malformed reply.
    #[test]
    fn error_code_i32_min_is_malformed() {
        let b =
            hex("24000000 02000001 512b056b a4000000 00000080 4c000000 24000506 512b056b 00000000");
        let msgs = split(&b).unwrap();
        assert!(matches!(msgs[0].as_ack(), Some(Err(Error::Malformed(_)))));
        // The same for positive codes and codes below -MAX_ERRNO.
        for code in [1, i32::MAX, -MAX_ERRNO - 1, i32::MIN + 1] {
            let mut b = b.clone();
            b[16..20].copy_from_slice(&code.to_ne_bytes());
            let msgs = split(&b).unwrap();
            assert!(matches!(msgs[0].as_ack(), Some(Err(Error::Malformed(_)))));
        }
        let mut b = b.clone();
        b[16..20].copy_from_slice(&(-MAX_ERRNO).to_ne_bytes());
        let ack = split(&b).unwrap()[0].as_ack().unwrap().unwrap();
        assert_eq!(ack.result.unwrap_err().errno, MAX_ERRNO);
    }

    // The same overflow in the NLMSG_DONE status of a failed dump.
    #[test]
    fn done_status_i32_min_is_malformed() {
        let b = hex("14000000 03000002 512b056b a4000000 00000080");
        let msgs = split(&b).unwrap();
        assert!(matches!(msgs[0].as_done(), Some(Err(Error::Malformed(_)))));
    }

    #[test]
    fn parses_done() {
        // A completed dump: status 0 (or none at all).
        let ok = hex("14000000 03000002 512b056b a4000000 00000000");
        assert!(matches!(split(&ok).unwrap()[0].as_done(), Some(Ok(()))));
        let bare = hex("10000000 03000002 512b056b a4000000");
        assert!(matches!(split(&bare).unwrap()[0].as_done(), Some(Ok(()))));
        // A dump that failed part-way: -EINTR.
        let failed = hex("14000000 03000002 512b056b a4000000 fcffffff");
        match split(&failed).unwrap()[0].as_done() {
            Some(Err(Error::Kernel(k))) => assert_eq!(k.errno, libc::EINTR),
            other => panic!("{other:?}"),
        }
        // Not a DONE.
        assert!(split(&ok).unwrap()[0].as_ack().is_none());
        let ack =
            hex("24000000 02000001 512b056b a4000000 00000000 4c000000 24000506 512b056b 00000000");
        assert!(split(&ack).unwrap()[0].as_done().is_none());
    }

    // An echoed length near u32::MAX must not overflow the offset of the
    // extended-ack attributes.
    #[test]
    fn huge_echoed_length_is_harmless() {
        let b =
            hex("24000000 02000002 512b056b a4000000 efffffff ffffffff 24000506 512b056b 00000000");
        let ack = split(&b).unwrap()[0].as_ack().unwrap().unwrap();
        assert_eq!(
            ack.result,
            Err(KernelError {
                errno: 17,
                message: None
            })
        );
    }

    #[test]
    fn rejects_truncated() {
        let b = hex("24000000 02000001 512b056b a4000000 00000000");
        assert!(split(&b).is_err());
    }
}
