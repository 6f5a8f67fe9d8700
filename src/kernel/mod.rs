//! The seam between plugctl's logic and the kernel: every netlink exchange
//! plugctl makes goes through [`Kernel`]. [`NetlinkKernel`] speaks to the
//! real kernel; tests substitute a fake that records calls, so the
//! orchestration (ordering, idempotence, rollback) is testable without one.

use std::ffi::CString;

use plugctl_netlink::diag::{self, Listener};
use plugctl_netlink::nft::{self, DumpedSet, Rule, Ruleset, SetElem, SetKeys};
use plugctl_netlink::tc::{self, Filter, FwFilter, Handle, Qdisc, QdiscKind, Write as TcWrite};
use plugctl_netlink::{Error as NlError, Family, Socket};

/// What plugctl asks of the kernel.
pub trait Kernel {
    /// Index of `device`, `None` if there is no such device.
    fn ifindex(&mut self, device: &str) -> Result<Option<i32>, NlError>;
    /// The qdiscs of device `ifindex` (default ones included, handle 0).
    fn qdiscs(&mut self, ifindex: i32) -> Result<Vec<Qdisc>, NlError>;
    /// The filters attached to qdisc `parent` of device `ifindex`.
    fn filters(&mut self, ifindex: i32, parent: Handle) -> Result<Vec<Filter>, NlError>;
    /// Create or change a qdisc.
    fn new_qdisc(
        &mut self,
        ifindex: i32,
        parent: Handle,
        handle: Handle,
        kind: &QdiscKind,
        how: TcWrite,
    ) -> Result<(), NlError>;
    /// Delete a qdisc (and whatever hangs below it).
    fn del_qdisc(&mut self, ifindex: i32, parent: Handle, handle: Handle) -> Result<(), NlError>;
    /// Add an fw filter.
    fn new_filter(&mut self, f: &FwFilter) -> Result<(), NlError>;
    /// Delete an fw filter.
    fn del_filter(&mut self, f: &FwFilter) -> Result<(), NlError>;
    /// Atomically (re)install the nf_tables table with exactly these rules.
    fn nft_install(&mut self, ruleset: &Ruleset<'_>) -> Result<(), NlError>;
    /// Delete the nf_tables table (and its chain and rules).
    fn nft_delete(&mut self, table: &str) -> Result<(), NlError>;
    /// The mark rules found in `table`'s chain `chain`; `None` if the table
    /// does not exist. Rules plugctl does not recognise are returned as `None`
    /// entries so that a comparison sees them.
    fn nft_rules(&mut self, table: &str, chain: &str)
        -> Result<Option<Vec<Option<Rule>>>, NlError>;
    /// The set `set` of `table`; `None` if it (or the table) does not exist.
    fn nft_set(&mut self, table: &str, set: &str) -> Result<Option<DumpedSet>, NlError>;
    /// The elements of `set` in `table`; `None` if it does not exist.
    fn nft_set_elems(&mut self, table: &str, set: &str) -> Result<Option<Vec<SetElem>>, NlError>;
    /// In one batch: renew the lease of these elements to `timeout_ms` from
    /// now (`Some`), or remove them (`None`); whether they were there or not.
    fn nft_lease(
        &mut self,
        table: &str,
        sets: &[SetKeys<'_>],
        timeout_ms: Option<u64>,
    ) -> Result<(), NlError>;
    /// Every listening TCP socket (IPv4 and IPv6).
    fn listeners(&mut self) -> Result<Vec<Listener>, NlError>;
}

/// The real kernel, over one rtnetlink and one nfnetlink socket (opened on
/// first use, so commands that need only one never open the other).
#[derive(Debug, Default)]
pub struct NetlinkKernel {
    route: Option<Socket>,
    netfilter: Option<Socket>,
    sock_diag: Option<Socket>,
}

impl NetlinkKernel {
    /// A kernel handle; sockets open lazily.
    pub fn new() -> NetlinkKernel {
        NetlinkKernel::default()
    }

    fn route(&mut self) -> Result<&mut Socket, NlError> {
        if self.route.is_none() {
            self.route = Some(Socket::open(Family::Route)?);
        }
        Ok(self.route.as_mut().expect("just opened"))
    }

    fn netfilter(&mut self) -> Result<&mut Socket, NlError> {
        if self.netfilter.is_none() {
            self.netfilter = Some(Socket::open(Family::Netfilter)?);
        }
        Ok(self.netfilter.as_mut().expect("just opened"))
    }

    fn tc_request(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> Result<(), NlError> {
        let sock = self.route()?;
        let seq = sock.next_seq();
        sock.request(&build(seq), seq)
    }
}

impl Kernel for NetlinkKernel {
    fn ifindex(&mut self, device: &str) -> Result<Option<i32>, NlError> {
        let Ok(name) = CString::new(device) else {
            return Ok(None);
        };
        // SAFETY: a valid NUL-terminated string.
        let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
        Ok((idx != 0).then_some(idx as i32))
    }

    fn qdiscs(&mut self, ifindex: i32) -> Result<Vec<Qdisc>, NlError> {
        let sock = self.route()?;
        let seq = sock.next_seq();
        let msgs = sock.dump(&tc::dump_qdiscs(seq), seq)?;
        let mut out = Vec::new();
        for m in msgs.iter().filter(|m| m.ty == tc::RTM_NEWQDISC) {
            let q = tc::parse_qdisc(m)?;
            // The kernel ignores the ifindex of a qdisc dump.
            if q.ifindex == ifindex {
                out.push(q);
            }
        }
        Ok(out)
    }

    fn filters(&mut self, ifindex: i32, parent: Handle) -> Result<Vec<Filter>, NlError> {
        let sock = self.route()?;
        let seq = sock.next_seq();
        let msgs = sock.dump(&tc::dump_filters(ifindex, parent, seq), seq)?;
        msgs.iter()
            .filter(|m| m.ty == tc::RTM_NEWTFILTER)
            .map(tc::parse_filter)
            .collect()
    }

    fn new_qdisc(
        &mut self,
        ifindex: i32,
        parent: Handle,
        handle: Handle,
        kind: &QdiscKind,
        how: TcWrite,
    ) -> Result<(), NlError> {
        self.tc_request(|seq| tc::new_qdisc(ifindex, parent, handle, kind, how, seq))
    }

    fn del_qdisc(&mut self, ifindex: i32, parent: Handle, handle: Handle) -> Result<(), NlError> {
        self.tc_request(|seq| tc::del_qdisc(ifindex, parent, handle, seq))
    }

    fn new_filter(&mut self, f: &FwFilter) -> Result<(), NlError> {
        self.tc_request(|seq| tc::new_fw_filter(f, seq))
    }

    fn del_filter(&mut self, f: &FwFilter) -> Result<(), NlError> {
        self.tc_request(|seq| tc::del_fw_filter(f, seq))
    }

    fn nft_install(&mut self, ruleset: &Ruleset<'_>) -> Result<(), NlError> {
        let sock = self.netfilter()?;
        // BEGIN, NEWTABLE, DELTABLE, NEWTABLE, the sets, NEWCHAIN, the rules, END.
        let first = sock.reserve_seqs(ruleset.install_len());
        let batch = nft::install_batch(ruleset, first)?;
        sock.batch(&batch.bytes, batch.seqs.clone())
    }

    fn nft_delete(&mut self, table: &str) -> Result<(), NlError> {
        let sock = self.netfilter()?;
        let first = sock.reserve_seqs(3);
        let batch = nft::delete_batch(table, first)?;
        sock.batch(&batch.bytes, batch.seqs.clone())
    }

    fn nft_rules(
        &mut self,
        table: &str,
        chain: &str,
    ) -> Result<Option<Vec<Option<Rule>>>, NlError> {
        let sock = self.netfilter()?;
        let seq = sock.next_seq();
        let msgs = match sock.dump(&nft::get_rules_request(table, seq)?, seq) {
            Ok(m) => m,
            Err(NlError::Kernel(k)) if k.errno == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut rules = Vec::new();
        for m in msgs.iter().filter(|m| m.ty == nft::consts::NFT_MSG_NEWRULE) {
            let r = nft::parse_rule(&m.payload)?;
            if r.table == table && r.chain == chain {
                rules.push(Rule::from_expressions(&r.exprs));
            }
        }
        // An empty dump of an existing table is possible; tell the two apart.
        if rules.is_empty() && !self.nft_table_exists(table)? {
            return Ok(None);
        }
        Ok(Some(rules))
    }

    fn nft_set(&mut self, table: &str, set: &str) -> Result<Option<DumpedSet>, NlError> {
        let sock = self.netfilter()?;
        let seq = sock.next_seq();
        let msgs = match sock.dump(&nft::get_set_request(table, set, seq)?, seq) {
            Ok(m) => m,
            Err(NlError::Kernel(k)) if k.errno == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        };
        for m in msgs.iter().filter(|m| m.ty == nft::consts::NFT_MSG_NEWSET) {
            let s = nft::parse_set(&m.payload)?;
            if s.table == table && s.name == set {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    fn nft_set_elems(&mut self, table: &str, set: &str) -> Result<Option<Vec<SetElem>>, NlError> {
        let sock = self.netfilter()?;
        let seq = sock.next_seq();
        let msgs = match sock.dump(&nft::get_setelems_request(table, set, seq)?, seq) {
            Ok(m) => m,
            Err(NlError::Kernel(k)) if k.errno == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for m in msgs
            .iter()
            .filter(|m| m.ty == nft::consts::NFT_MSG_NEWSETELEM)
        {
            let d = nft::parse_setelems(&m.payload)?;
            if d.table == table && d.set == set {
                out.extend(d.elems);
            }
        }
        Ok(Some(out))
    }

    fn nft_lease(
        &mut self,
        table: &str,
        sets: &[SetKeys<'_>],
        timeout_ms: Option<u64>,
    ) -> Result<(), NlError> {
        let sock = self.netfilter()?;
        let first = sock.reserve_seqs(nft::lease_batch_len(sets, timeout_ms.is_some()));
        let batch = match timeout_ms {
            Some(t) => nft::renew_lease_batch(table, sets, t, first)?,
            None => nft::end_lease_batch(table, sets, first)?,
        };
        sock.batch(&batch.bytes, batch.seqs.clone())
    }

    fn listeners(&mut self) -> Result<Vec<Listener>, NlError> {
        let sock = self.sock_diag()?;
        let mut out = Vec::new();
        for ipv6 in [false, true] {
            let seq = sock.next_seq();
            for m in sock.dump(&diag::listeners_request(ipv6, seq), seq)? {
                if m.ty == diag::SOCK_DIAG_BY_FAMILY {
                    out.push(diag::parse_listener(&m)?);
                }
            }
        }
        Ok(out)
    }
}

impl NetlinkKernel {
    fn sock_diag(&mut self) -> Result<&mut Socket, NlError> {
        if self.sock_diag.is_none() {
            self.sock_diag = Some(Socket::open(Family::SockDiag)?);
        }
        Ok(self.sock_diag.as_mut().expect("just opened"))
    }

    fn nft_table_exists(&mut self, table: &str) -> Result<bool, NlError> {
        let sock = self.netfilter()?;
        let seq = sock.next_seq();
        match sock.dump(&nft::get_table_request(table, seq)?, seq) {
            Ok(msgs) => Ok(!msgs.is_empty()),
            Err(NlError::Kernel(k)) if k.errno == libc::ENOENT => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
pub(crate) mod fake;

/// Whether this thread has CAP_NET_ADMIN in its effective set. Everything
/// plugctl changes, and the nf_tables dump `status` needs, requires it.
pub fn has_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    has_capability(CAP_NET_ADMIN)
}

/// Does this thread have capability `bit` (see capabilities(7)) in its
/// effective set? One capget(2); false if it fails.
pub fn has_capability(bit: u32) -> bool {
    /// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two 32-bit words.
    const VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: VERSION_3,
        // 0: the calling thread.
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget reads the header and, for version 3, writes two Data
    // structs; both outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    };
    rc == 0 && bit < 64 && data[(bit / 32) as usize].effective & (1 << (bit % 32)) != 0
}

#[cfg(test)]
mod caps_tests {
    /// capget agrees with what the kernel shows in `CapEff`, bit by bit,
    /// whatever this test runs with (root, or a user without capabilities).
    #[test]
    fn capget_agrees_with_cap_eff() {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        for bit in 0..64 {
            assert_eq!(
                super::has_capability(bit),
                eff & (1 << bit) != 0,
                "bit {bit}, CapEff {eff:x}"
            );
        }
        assert!(!super::has_capability(64));
    }
}
