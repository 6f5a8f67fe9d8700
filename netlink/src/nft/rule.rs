//! The rules plugctl installs: mark new TCP connections to the load-balancer addresses.
//! [`LeaseRule`] (today's) marks those whose address \[. port\] is in a set whose elements
//! time out; [`MarkRule`] (before leases) named one address \[and port\] per rule, and is still
//! recognised so that `setup` can replace it.

use std::net::IpAddr;

use super::consts::*;
use super::expr::Expr;

/// What plugctl marks: TCP SYN (SYN set, ACK clear: `tcp flags & (syn|ack) == syn`) to `addr`
/// \[and `tcp dport == port`\] → `meta mark set mark`. For an `inet`-family table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkRule {
    /// Destination address (`ip daddr` / `ip6 daddr`).
    pub addr: IpAddr,
    /// Optional destination port (`tcp dport`).
    pub port: Option<u16>,
    /// The mark to set (`meta mark set`); cls_fw's handle.
    pub mark: u32,
}

fn load(key: u32) -> Expr {
    Expr::MetaLoad {
        key,
        dreg: NFT_REG_1,
    }
}

fn payload(base: u32, offset: u32, len: u32) -> Expr {
    Expr::Payload {
        dreg: NFT_REG_1,
        base,
        offset,
        len,
    }
}

fn eq(data: &[u8]) -> Expr {
    Expr::Cmp {
        sreg: NFT_REG_1,
        op: NFT_CMP_EQ,
        data: data.to_vec(),
    }
}

/// What plugctl marks, leased: TCP SYN to an address \[. port\] that is an element of the set
/// `set` (`ip daddr . tcp dport @set`) → `meta mark set mark`. One rule per address family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseRule {
    /// IPv6 (`ip6 daddr`) rather than IPv4 (`ip daddr`).
    pub ipv6: bool,
    /// The key is address . port (`tcp dport` too).
    pub port: bool,
    /// The set looked up.
    pub set: String,
    /// The mark to set.
    pub mark: u32,
}

/// A rule plugctl recognises in its chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Leased: a set lookup.
    Lease(LeaseRule),
    /// Not leased: one address \[and port\] per rule (plugctl before leases).
    Mark(MarkRule),
}

impl Rule {
    /// The expressions, as [`LeaseRule::expressions`] or [`MarkRule::expressions`].
    pub fn expressions(&self) -> Vec<Expr> {
        self.expressions_with_set_id(None)
    }

    /// The same, a lookup also naming its set by `set_id` (a set created in the same batch).
    pub fn expressions_with_set_id(&self, set_id: Option<u32>) -> Vec<Expr> {
        match self {
            Rule::Lease(r) => r.expressions(set_id),
            Rule::Mark(r) => r.expressions(),
        }
    }

    /// The set it looks up, if any.
    pub fn set(&self) -> Option<&str> {
        match self {
            Rule::Lease(r) => Some(&r.set),
            Rule::Mark(_) => None,
        }
    }

    /// Recognise either kind of rule in a parsed dump.
    pub fn from_expressions(e: &[Expr]) -> Option<Rule> {
        LeaseRule::from_expressions(e)
            .map(Rule::Lease)
            .or_else(|| MarkRule::from_expressions(e).map(Rule::Mark))
    }

    /// nft syntax of the rule.
    pub fn to_nft_syntax(&self) -> String {
        match self {
            Rule::Lease(r) => r.to_nft_syntax(),
            Rule::Mark(r) => r.to_nft_syntax(),
        }
    }
}

/// The expressions every marking rule starts with: `meta l4proto tcp`, `tcp flags & (syn|ack)
/// == syn`, `meta nfproto ipv4|ipv6`.
fn syn_prefix(nfproto: u8) -> Vec<Expr> {
    vec![
        load(NFT_META_L4PROTO),
        eq(&[IPPROTO_TCP]),
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1),
        Expr::Bitwise {
            sreg: NFT_REG_1,
            dreg: NFT_REG_1,
            len: 1,
            mask: vec![TCP_FLAG_SYN | TCP_FLAG_ACK],
            xor: vec![0],
        },
        eq(&[TCP_FLAG_SYN]),
        load(NFT_META_NFPROTO),
        eq(&[nfproto]),
    ]
}

/// `meta mark set MARK`.
fn set_mark(mark: u32) -> [Expr; 2] {
    [
        Expr::Immediate {
            dreg: NFT_REG_1,
            // skb->mark is a CPU integer: host byte order in the register.
            data: mark.to_ne_bytes().to_vec(),
        },
        Expr::MetaSet {
            key: NFT_META_MARK,
            sreg: NFT_REG_1,
        },
    ]
}

impl LeaseRule {
    /// The exact expression list `nft` 1.0.6 emits for
    /// `tcp flags syn / syn,ack ip daddr . tcp dport @SET meta mark set MARK` (`ip6 daddr`,
    /// without `. tcp dport` as configured) in an `inet` table: the address is loaded into
    /// register 1, the port into the register right after it (the 4-byte register 9 after an
    /// IPv4 address; the 16-byte register 2 after an IPv6 one, as nft numbers a register on a
    /// 16-byte boundary), and the lookup reads the key from register 1 on.
    /// `set_id`: see [`Expr::Lookup`].
    pub fn expressions(&self, set_id: Option<u32>) -> Vec<Expr> {
        let (nfproto, offset, len) = if self.ipv6 {
            (NFPROTO_IPV6, 24, 16)
        } else {
            (NFPROTO_IPV4, 16, 4)
        };
        let mut v = syn_prefix(nfproto);
        v.push(payload(NFT_PAYLOAD_NETWORK_HEADER, offset, len));
        if self.port {
            let dreg = if len % 16 == 0 {
                NFT_REG_1 + len / 16
            } else {
                NFT_REG32_00 + len / 4
            };
            v.push(Expr::Payload {
                dreg,
                base: NFT_PAYLOAD_TRANSPORT_HEADER,
                offset: 2,
                len: 2,
            });
        }
        v.push(Expr::Lookup {
            sreg: NFT_REG_1,
            set: self.set.clone(),
            set_id,
        });
        v.extend(set_mark(self.mark));
        v
    }

    /// Recognise a rule built by [`LeaseRule::expressions`] in a parsed dump (the kernel's
    /// lookups carry no set id).
    pub fn from_expressions(e: &[Expr]) -> Option<LeaseRule> {
        let ipv6 = match e.get(6)? {
            Expr::Cmp { data, .. } if data.as_slice() == [NFPROTO_IPV6] => true,
            Expr::Cmp { data, .. } if data.as_slice() == [NFPROTO_IPV4] => false,
            _ => return None,
        };
        let port = match e.len() {
            12 => true,
            11 => false,
            _ => return None,
        };
        let set = match e.get(e.len() - 3)? {
            Expr::Lookup { set, .. } => set.clone(),
            _ => return None,
        };
        let mark = match e.get(e.len() - 2)? {
            Expr::Immediate { data, .. } => {
                u32::from_ne_bytes(<[u8; 4]>::try_from(data.as_slice()).ok()?)
            }
            _ => return None,
        };
        let candidate = LeaseRule {
            ipv6,
            port,
            set,
            mark,
        };
        let normalised: Vec<Expr> = e
            .iter()
            .map(|x| match x {
                Expr::Lookup { sreg, set, .. } => Expr::Lookup {
                    sreg: *sreg,
                    set: set.clone(),
                    set_id: None,
                },
                x => x.clone(),
            })
            .collect();
        (candidate.expressions(None) == normalised).then_some(candidate)
    }

    /// nft syntax of the rule, e.g.
    /// `tcp flags & (syn|ack) == syn ip daddr . tcp dport @lease4 meta mark set 0x00000001`.
    pub fn to_nft_syntax(&self) -> String {
        let addr = if self.ipv6 { "ip6 daddr" } else { "ip daddr" };
        let port = if self.port { " . tcp dport" } else { "" };
        format!(
            "tcp flags & (syn|ack) == syn {addr}{port} @{} meta mark set 0x{:08x}",
            self.set, self.mark
        )
    }
}

impl MarkRule {
    /// The exact expression list `nft` 1.0.6 emits for
    /// `tcp flags & (syn|ack) == syn ip daddr ADDR [tcp dport PORT] meta mark set MARK` in an
    /// `inet` table (docs/netlink-reference.md §7.3, §8; the dport pair verified against a
    /// capture).
    pub fn expressions(&self) -> Vec<Expr> {
        let (nfproto, offset, addr): (u8, u32, Vec<u8>) = match self.addr {
            IpAddr::V4(a) => (NFPROTO_IPV4, 16, a.octets().to_vec()),
            IpAddr::V6(a) => (NFPROTO_IPV6, 24, a.octets().to_vec()),
        };
        let mut v = syn_prefix(nfproto);
        v.push(payload(
            NFT_PAYLOAD_NETWORK_HEADER,
            offset,
            addr.len() as u32,
        ));
        v.push(eq(&addr));
        if let Some(port) = self.port {
            v.push(payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2));
            v.push(eq(&port.to_be_bytes()));
        }
        v.extend(set_mark(self.mark));
        v
    }

    /// Recognise a rule built by [`MarkRule::expressions`] in a parsed dump: `Some` only if
    /// the list is exactly that list for some address/port/mark. Attribute order inside an
    /// expression and the NLA_F_NESTED bit are irrelevant (already normalised by
    /// [`Expr::from_attr`]).
    pub fn from_expressions(e: &[Expr]) -> Option<MarkRule> {
        let addr = match e.get(8)? {
            Expr::Cmp { data, .. } => match data.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(data.as_slice()).ok()?),
                16 => IpAddr::from(<[u8; 16]>::try_from(data.as_slice()).ok()?),
                _ => return None,
            },
            _ => return None,
        };
        let port = match e.len() {
            11 => None,
            13 => match e.get(10)? {
                Expr::Cmp { data, .. } => Some(u16::from_be_bytes(
                    <[u8; 2]>::try_from(data.as_slice()).ok()?,
                )),
                _ => return None,
            },
            _ => return None,
        };
        let mark = match e.get(e.len() - 2)? {
            Expr::Immediate { data, .. } => {
                u32::from_ne_bytes(<[u8; 4]>::try_from(data.as_slice()).ok()?)
            }
            _ => return None,
        };
        let candidate = MarkRule { addr, port, mark };
        (candidate.expressions() == e).then_some(candidate)
    }

    /// nft syntax of the rule, e.g.
    /// `tcp flags & (syn|ack) == syn ip daddr 169.254.255.254 meta mark set 0x00000001`
    /// (`ip6 daddr` for IPv6, `tcp dport 80` after the address when a port is set).
    pub fn to_nft_syntax(&self) -> String {
        let addr = match self.addr {
            IpAddr::V4(a) => format!("ip daddr {a}"),
            IpAddr::V6(a) => format!("ip6 daddr {a}"),
        };
        let port = self
            .port
            .map(|p| format!(" tcp dport {p}"))
            .unwrap_or_default();
        format!(
            "tcp flags & (syn|ack) == syn {addr}{port} meta mark set 0x{:08x}",
            self.mark
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<MarkRule> {
        let v4: IpAddr = "169.254.255.254".parse().expect("v4");
        let v6: IpAddr = "fd00::1".parse().expect("v6");
        vec![
            MarkRule {
                addr: v4,
                port: None,
                mark: 1,
            },
            MarkRule {
                addr: v4,
                port: Some(80),
                mark: 0xdead_beef,
            },
            MarkRule {
                addr: v6,
                port: None,
                mark: 1,
            },
            MarkRule {
                addr: v6,
                port: Some(443),
                mark: 7,
            },
        ]
    }

    #[test]
    fn expressions_round_trip() {
        for r in rules() {
            assert_eq!(MarkRule::from_expressions(&r.expressions()), Some(r));
        }
    }

    #[test]
    fn expressions_round_trip_through_bytes() {
        for r in rules() {
            let attr = crate::nft::expr::expressions_attr(&r.expressions()).expect("emit");
            let bytes = crate::nft::wire::attrs_to_bytes(&[attr]);
            let attrs = crate::nft::wire::parse_attrs(&bytes).expect("parse");
            let exprs = crate::nft::expr::parse_expressions(attrs[0].value()).expect("parse");
            assert_eq!(MarkRule::from_expressions(&exprs), Some(r));
        }
    }

    #[test]
    fn foreign_rules_are_not_recognised() {
        let r = rules()[1];
        let e = r.expressions();
        assert_eq!(MarkRule::from_expressions(&e[..e.len() - 1]), None);
        assert_eq!(MarkRule::from_expressions(&[]), None);
        // saddr instead of daddr
        let mut s = e.clone();
        s[7] = payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
        assert_eq!(MarkRule::from_expressions(&s), None);
        // the iptables --syn mask (fin|syn|rst|ack)
        let mut s = e.clone();
        if let Expr::Bitwise { mask, .. } = &mut s[3] {
            mask[0] = 0x17;
        }
        assert_eq!(MarkRule::from_expressions(&s), None);
        // a counter appended
        let mut s = e;
        s.push(Expr::Other {
            name: "counter".into(),
            data: vec![],
        });
        assert_eq!(MarkRule::from_expressions(&s), None);
    }

    fn lease_rules() -> Vec<LeaseRule> {
        [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .map(|(ipv6, port)| LeaseRule {
                ipv6,
                port,
                set: if ipv6 { "lease6" } else { "lease4" }.into(),
                mark: 0xdead_beef,
            })
            .collect()
    }

    #[test]
    fn lease_expressions_round_trip() {
        for r in lease_rules() {
            assert_eq!(
                LeaseRule::from_expressions(&r.expressions(None)),
                Some(r.clone())
            );
            // A request's set id does not matter.
            assert_eq!(
                LeaseRule::from_expressions(&r.expressions(Some(3))),
                Some(r.clone())
            );
            let rule = Rule::Lease(r.clone());
            assert_eq!(Rule::from_expressions(&rule.expressions()), Some(rule));
            // A lease rule is no mark rule, and the other way round.
            assert_eq!(MarkRule::from_expressions(&r.expressions(None)), None);
        }
        for r in rules() {
            assert_eq!(LeaseRule::from_expressions(&r.expressions()), None);
            assert_eq!(
                Rule::from_expressions(&r.expressions()),
                Some(Rule::Mark(r))
            );
        }
        // Another set's rule, an inverted lookup (kept as Other): not recognised as configured.
        let r = &lease_rules()[1];
        let mut e = r.expressions(None);
        let i = e.len() - 3;
        e[i] = Expr::Other {
            name: "lookup".into(),
            data: vec![],
        };
        assert_eq!(LeaseRule::from_expressions(&e), None);
    }

    #[test]
    fn nft_syntax() {
        assert_eq!(
            lease_rules()[1].to_nft_syntax(),
            "tcp flags & (syn|ack) == syn ip daddr . tcp dport @lease4 meta mark set 0xdeadbeef"
        );
        let r = rules();
        assert_eq!(
            r[0].to_nft_syntax(),
            "tcp flags & (syn|ack) == syn ip daddr 169.254.255.254 meta mark set 0x00000001"
        );
        assert_eq!(
            r[1].to_nft_syntax(),
            "tcp flags & (syn|ack) == syn ip daddr 169.254.255.254 tcp dport 80 meta mark set 0xdeadbeef"
        );
        assert_eq!(
            r[3].to_nft_syntax(),
            "tcp flags & (syn|ack) == syn ip6 daddr fd00::1 tcp dport 443 meta mark set 0x00000007"
        );
    }
}
