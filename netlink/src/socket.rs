//! A blocking netlink socket for one family, with the three exchanges
//! plugctl needs: a request answered by an ACK, a dump, and an nf_tables
//! batch.
//!
//! The kernel processes a netlink request synchronously inside `sendmsg()`
//! for every family used here, so a blocking socket with a receive timeout
//! is all it takes; there is no background task to keep alive, which makes
//! the release path usable from a signal-handling thread or a forked
//! watchdog.

use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR};
use netlink_sys::{protocols, Socket as SysSocket};

use crate::error::{Error, KernelError};
use crate::frame::{split, RawMessage};

/// Which netlink family a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `NETLINK_ROUTE`: tc qdiscs and filters.
    Route,
    /// `NETLINK_NETFILTER`: nf_tables.
    Netfilter,
    /// `NETLINK_SOCK_DIAG`: listening sockets.
    SockDiag,
}

impl Family {
    fn protocol(self) -> isize {
        match self {
            Family::Route => protocols::NETLINK_ROUTE,
            Family::Netfilter => protocols::NETLINK_NETFILTER,
            Family::SockDiag => protocols::NETLINK_SOCK_DIAG,
        }
    }
}

/// How long to wait for the kernel's answer before giving up. The kernel
/// answers within microseconds; this only guards against a bug on our side.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// The receive buffer: twice the largest dump datagram the kernel builds
/// (`netlink_dump()` caps them at 32 KiB).
const RECV_BUF: usize = 64 * 1024;

/// A bound netlink socket with its own sequence counter.
pub struct Socket {
    sock: SysSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("seq", &self.seq).finish()
    }
}

impl Socket {
    /// Open and bind a socket of `family`, with extended ACKs (error strings)
    /// on and capped ACKs (errors do not echo the whole request).
    pub fn open(family: Family) -> Result<Socket, Error> {
        let mut sock = SysSocket::new(family.protocol())?;
        sock.bind_auto()?;
        // Both are optimisations; old kernels without them still work.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        set_recv_timeout(&sock, RECV_TIMEOUT)?;
        // A seed that differs between processes keeps replies apart in traces.
        let seed = std::process::id().wrapping_mul(1 << 12);
        Ok(Socket {
            sock,
            seq: seed,
            // Capacity only: `recv` writes into the spare capacity, so no
            // 64 KiB of zeroes are written (and faulted in) per socket.
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// The next sequence number (never 0).
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Reserve `n` consecutive sequence numbers and return the first.
    pub fn reserve_seqs(&mut self, n: u32) -> u32 {
        let first = self.next_seq();
        self.seq = self.seq.wrapping_add(n.saturating_sub(1));
        first
    }

    fn send(&self, bytes: &[u8]) -> Result<(), Error> {
        let n = self.sock.send(bytes, 0)?;
        if n != bytes.len() {
            return Err(Error::Malformed(format!(
                "short send: {n} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    fn recv(&mut self, seq: u32, dont_wait: bool) -> Result<Option<Vec<RawMessage>>, Error> {
        let flags = if dont_wait { libc::MSG_DONTWAIT } else { 0 };
        self.buf.clear();
        match self.sock.recv(&mut self.buf, flags) {
            Ok(_) => Ok(Some(split(&self.buf)?)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && dont_wait => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::Timeout {
                seq,
                ms: RECV_TIMEOUT.as_millis() as u64,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Send one request carrying `NLM_F_ACK` and wait for its ACK.
    pub fn request(&mut self, bytes: &[u8], seq: u32) -> Result<(), Error> {
        self.send(bytes)?;
        loop {
            for msg in self.recv(seq, false)?.unwrap_or_default() {
                if msg.seq != seq {
                    continue;
                }
                if let Some(ack) = msg.as_ack() {
                    return ack?.result.map_err(Error::Kernel);
                }
            }
        }
    }

    /// Send a dump request (or a GET carrying `NLM_F_ACK`) and collect every
    /// reply up to `NLMSG_DONE` (or the ACK).
    pub fn dump(&mut self, bytes: &[u8], seq: u32) -> Result<Vec<RawMessage>, Error> {
        self.send(bytes)?;
        let mut out = Vec::new();
        loop {
            for msg in self.recv(seq, false)?.unwrap_or_default() {
                if msg.seq != seq {
                    continue;
                }
                match msg.ty {
                    NLMSG_DONE => {
                        if let Some(done) = msg.as_done() {
                            done?;
                        }
                        return Ok(out);
                    }
                    NLMSG_ERROR => {
                        if let Some(ack) = msg.as_ack() {
                            ack?.result.map_err(Error::Kernel)?;
                        }
                        // An ACK to a dump ends it (no DONE follows).
                        return Ok(out);
                    }
                    // A single GET with NLM_F_ACK answers with one object
                    // and then an ACK, which ends it like DONE ends a dump.
                    _ => out.push(msg),
                }
            }
        }
    }

    /// Send an nf_tables batch whose messages use the sequence numbers
    /// `seqs` (BATCH_BEGIN is `seqs.start()`), and report success only if no
    /// message of it was answered with an error.
    ///
    /// A per-message ACK does not mean the batch committed, and kernels
    /// before ~6.10 do not ACK the batch markers, so the rule is: drain every
    /// reply the batch produced; success ⇔ no `NLMSG_ERROR` with a non-zero
    /// code (docs/netlink-reference.md §7.1).
    pub fn batch(
        &mut self,
        bytes: &[u8],
        seqs: std::ops::RangeInclusive<u32>,
    ) -> Result<(), Error> {
        self.send(bytes)?;
        let mut first_err: Option<KernelError> = None;
        // Everything is queued once sendmsg returned; drain without blocking.
        while let Some(msgs) = self.recv(*seqs.start(), true)? {
            for msg in msgs {
                if !seqs.contains(&msg.seq) {
                    continue;
                }
                if let Some(ack) = msg.as_ack() {
                    if let Err(e) = ack?.result {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(Error::Kernel(e)),
            None => Ok(()),
        }
    }
}

fn set_recv_timeout(sock: &SysSocket, d: Duration) -> Result<(), Error> {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a valid fd owned by `sock`, and a correctly sized timeval.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}
