//! The one rule plugctl installs: mark new TCP connections to the load-balancer address.

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
        let mut v = vec![
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
            payload(NFT_PAYLOAD_NETWORK_HEADER, offset, addr.len() as u32),
            eq(&addr),
        ];
        if let Some(port) = self.port {
            v.push(payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2));
            v.push(eq(&port.to_be_bytes()));
        }
        v.push(Expr::Immediate {
            dreg: NFT_REG_1,
            // skb->mark is a CPU integer: host byte order in the register.
            data: self.mark.to_ne_bytes().to_vec(),
        });
        v.push(Expr::MetaSet {
            key: NFT_META_MARK,
            sreg: NFT_REG_1,
        });
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

    #[test]
    fn nft_syntax() {
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
