//! Listening TCP sockets over NETLINK_SOCK_DIAG (`ss -ltn`), for the
//! observed hand-over: which sockets listen on a port, told apart by
//! cookie (and inode, which `/proc/PID/fd` names), with their accept queue.
//! Framing and structs are `netlink-packet-sock-diag`'s.

use std::net::IpAddr;

use netlink_packet_core::{Parseable, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;

use crate::error::Error;
use crate::frame::RawMessage;

/// `SOCK_DIAG_BY_FAMILY`.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;

/// One listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listener {
    /// Local address (`0.0.0.0` / `::` for a wildcard bind).
    pub addr: IpAddr,
    /// Local port.
    pub port: u16,
    /// Socket inode (`/proc/PID/fd/N -> socket:[inode]`).
    pub inode: u32,
    /// Socket cookie (`idiag_cookie`): unique for the kernel's uptime,
    /// never reused, unlike an inode number.
    pub cookie: u64,
    /// For a listener: connections in the accept queue (`idiag_rqueue`).
    pub rqueue: u32,
    /// For a listener: the accept queue's limit, the backlog
    /// (`idiag_wqueue`).
    pub wqueue: u32,
}

/// A dump request for every TCP socket in state LISTEN of one family
/// (`AF_INET` or `AF_INET6`; a `[::]` socket that also accepts IPv4 is
/// only in the IPv6 dump).
pub fn listeners_request(ipv6: bool, seq: u32) -> Vec<u8> {
    let mut socket_id = if ipv6 {
        SocketId::new_v6()
    } else {
        SocketId::new_v4()
    };
    // INET_DIAG_NOCOOKIE: ignored in dumps, and what `ss` sends.
    socket_id.cookie = [0xff; 8];
    let req = InetRequest {
        family: if ipv6 { AF_INET6 } else { AF_INET },
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::LISTEN,
        socket_id,
    };
    crate::frame::serialize(
        SockDiagMessage::InetRequest(req),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    )
}

/// Parse one `SOCK_DIAG_BY_FAMILY` reply.
pub fn parse_listener(msg: &RawMessage) -> Result<Listener, Error> {
    let body = msg.body_of(SOCK_DIAG_BY_FAMILY, "SOCK_DIAG_BY_FAMILY")?;
    let r = InetResponse::parse(body).map_err(|e| Error::Malformed(e.to_string()))?;
    let c = r.header.socket_id.cookie;
    // Two host-order u32s, low word first (`sock_diag_save_cookie`).
    let low = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    let high = u32::from_ne_bytes([c[4], c[5], c[6], c[7]]);
    Ok(Listener {
        addr: r.header.socket_id.source_address,
        port: r.header.socket_id.source_port,
        inode: r.header.inode,
        cookie: u64::from(high) << 32 | u64::from(low),
        rqueue: r.header.recv_queue,
        wqueue: r.header.send_queue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::split;
    use crate::tc::tests::hex;

    // docs/netlink-reference.md Appendix A, "sock_diag v4 LISTEN dump (seq=40)"
    // and "v6 (seq=42)": hand-built, accepted by 6.1 and 6.18; the same
    // request as `ss -ltn` (iproute2 6.1) minus its CLOSE state bit.
    #[test]
    fn listen_dump_requests() {
        let v4 = hex("480000001400010328000000000000000206000000040000000000000000000000000000000000000000000000000000
                      00000000000000000000000000000000ffffffffffffffff");
        assert_eq!(listeners_request(false, 40), v4);
        let v6 = hex("48000000140001032a000000000000000a06000000040000000000000000000000000000000000000000000000000000
                      00000000000000000000000000000000ffffffffffffffff");
        assert_eq!(listeners_request(true, 42), v6);
    }

    // [CAPTURED tool + kernel] `ss -ltnH 'sport = :8080'` on 6.1 with a
    // listener on 169.254.255.254:8080 (docs/netlink-reference.md §10.2).
    #[test]
    fn parses_listener() {
        let b = hex("7c000000 14000200 40e20100 bd000000
            020a0000 1f900000 a9fefffe 00000000 00000000 00000000
            00000000 00000000 00000000 00000000 00000000
            18000000 00000000 00000000 00000000 05000000 00000000 0e290000
            05000800 00000000 08000f00 00000000 0c001500 01000000 00000000 06001600 52000000");
        let l = parse_listener(&split(&b).unwrap()[0]).unwrap();
        assert_eq!(l.addr, "169.254.255.254".parse::<IpAddr>().unwrap());
        assert_eq!((l.port, l.inode), (8080, 10510));
        // idiag_cookie 0x18, an empty accept queue, backlog 5 (ss's Send-Q).
        assert_eq!((l.cookie, l.rqueue, l.wqueue), (0x18, 0, 5));
    }
}
