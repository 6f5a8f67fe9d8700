//! nf_tables expressions (the subset plugctl's rule uses), emitted and parsed as
//! `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }` attributes.

use super::consts::*;
use super::wire::{
    attr_be32, attr_bytes, attr_nest, attr_raw_nest, attr_str, check_value, find, get_be32,
    get_str, parse_attrs, req, Attr, AttrBuf,
};
use super::NftError;

/// One nf_tables expression. Registers, keys, bases and ops are the raw uapi numbers
/// (`NFT_REG_1`, `NFT_META_*`, `NFT_PAYLOAD_*`, `NFT_CMP_*` in [`consts`](super::consts)).
///
/// Parsing compares attributes by type, so attribute order inside an expression and the
/// NLA_F_NESTED bit do not matter. An expression whose name is not one of the five below, or
/// that uses attributes/variants not modelled here (payload writes, non-boolean bitwise,
/// verdict immediates, ...), is returned as [`Expr::Other`] rather than as an error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// `[ meta load KEY => reg DREG ]`.
    MetaLoad {
        /// `NFT_META_*` key.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `[ meta set KEY with reg SREG ]`.
    MetaSet {
        /// `NFT_META_*` key.
        key: u32,
        /// Source register.
        sreg: u32,
    },
    /// `[ payload load LEN b @ BASE header + OFFSET => reg DREG ]`.
    Payload {
        /// Destination register.
        dreg: u32,
        /// `NFT_PAYLOAD_*_HEADER`.
        base: u32,
        /// Offset from the base, bytes.
        offset: u32,
        /// Length, bytes.
        len: u32,
    },
    /// `[ bitwise reg DREG = ( reg SREG & MASK ) ^ XOR ]` (NFT_BITWISE_BOOL).
    Bitwise {
        /// Source register.
        sreg: u32,
        /// Destination register.
        dreg: u32,
        /// Operand length, bytes.
        len: u32,
        /// Mask bytes (as stored in the register).
        mask: Vec<u8>,
        /// Xor bytes (as stored in the register).
        xor: Vec<u8>,
    },
    /// `[ cmp OP reg SREG DATA ]`.
    Cmp {
        /// Source register.
        sreg: u32,
        /// `NFT_CMP_*`.
        op: u32,
        /// Value bytes (as stored in the register: packet fields in network order).
        data: Vec<u8>,
    },
    /// `[ immediate reg DREG DATA ]` with a value (not a verdict).
    Immediate {
        /// Destination register.
        dreg: u32,
        /// Value bytes (`meta mark` values are host-order u32).
        data: Vec<u8>,
    },
    /// `[ lookup reg SREG set SET ]`: matches when the key in SREG (and the registers after it,
    /// for a concatenation) is an element of SET. Not inverted.
    Lookup {
        /// Source register of the key.
        sreg: u32,
        /// Set name.
        set: String,
        /// Id of a set created in the same batch (requests only: the kernel's dumps leave it
        /// out).
        set_id: Option<u32>,
    },
    /// Any other expression, kept as its name and the raw payload of `NFTA_EXPR_DATA`.
    Other {
        /// `NFTA_EXPR_NAME`.
        name: String,
        /// The attribute bytes inside `NFTA_EXPR_DATA` (empty if absent).
        data: Vec<u8>,
    },
}

fn data_nest(ty: u16, what: &'static str, value: &[u8]) -> Result<Attr, NftError> {
    check_value(what, value)?;
    attr_nest(ty, &[attr_bytes(NFTA_DATA_VALUE, value)?])
}

/// The value inside a data nest, or `None` if it is not exactly one `NFTA_DATA_VALUE`.
fn data_value(a: &AttrBuf<'_>) -> Result<Option<Vec<u8>>, NftError> {
    let inner = parse_attrs(a.value())?;
    match inner.as_slice() {
        [v] if v.kind() == NFTA_DATA_VALUE => Ok(Some(v.value().to_vec())),
        _ => Ok(None),
    }
}

/// True if every attribute's type is in `known`.
fn only(attrs: &[AttrBuf<'_>], known: &[u16]) -> bool {
    attrs.iter().all(|a| known.contains(&a.kind()))
}

impl Expr {
    /// The `NFTA_EXPR_NAME` of this expression.
    pub fn name(&self) -> &str {
        match self {
            Expr::MetaLoad { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Cmp { .. } => "cmp",
            Expr::Immediate { .. } => "immediate",
            Expr::Lookup { .. } => "lookup",
            Expr::Other { name, .. } => name,
        }
    }

    /// Emit as one `NFTA_LIST_ELEM` attribute, attributes in the order `nft` 1.0.6 sends them
    /// (byte-identical to its requests).
    pub fn to_attr(&self) -> Result<Attr, NftError> {
        let data: Vec<Attr> = match self {
            Expr::MetaLoad { key, dreg } => vec![
                attr_be32(NFTA_META_KEY, *key)?,
                attr_be32(NFTA_META_DREG, *dreg)?,
            ],
            Expr::MetaSet { key, sreg } => vec![
                attr_be32(NFTA_META_KEY, *key)?,
                attr_be32(NFTA_META_SREG, *sreg)?,
            ],
            Expr::Payload {
                dreg,
                base,
                offset,
                len,
            } => vec![
                attr_be32(NFTA_PAYLOAD_DREG, *dreg)?,
                attr_be32(NFTA_PAYLOAD_BASE, *base)?,
                attr_be32(NFTA_PAYLOAD_OFFSET, *offset)?,
                attr_be32(NFTA_PAYLOAD_LEN, *len)?,
            ],
            Expr::Bitwise {
                sreg,
                dreg,
                len,
                mask,
                xor,
            } => vec![
                attr_be32(NFTA_BITWISE_SREG, *sreg)?,
                attr_be32(NFTA_BITWISE_DREG, *dreg)?,
                attr_be32(NFTA_BITWISE_OP, NFT_BITWISE_BOOL)?,
                attr_be32(NFTA_BITWISE_LEN, *len)?,
                data_nest(NFTA_BITWISE_MASK, "bitwise mask", mask)?,
                data_nest(NFTA_BITWISE_XOR, "bitwise xor", xor)?,
            ],
            Expr::Cmp { sreg, op, data } => vec![
                attr_be32(NFTA_CMP_SREG, *sreg)?,
                attr_be32(NFTA_CMP_OP, *op)?,
                data_nest(NFTA_CMP_DATA, "cmp data", data)?,
            ],
            Expr::Immediate { dreg, data } => vec![
                attr_be32(NFTA_IMMEDIATE_DREG, *dreg)?,
                data_nest(NFTA_IMMEDIATE_DATA, "immediate data", data)?,
            ],
            Expr::Lookup { sreg, set, set_id } => {
                let mut v = vec![
                    attr_be32(NFTA_LOOKUP_SREG, *sreg)?,
                    attr_str(NFTA_LOOKUP_SET, set)?,
                ];
                if let Some(id) = set_id {
                    v.push(attr_be32(NFTA_LOOKUP_SET_ID, *id)?);
                }
                v
            }
            Expr::Other { name, data } => {
                let mut elem = vec![attr_str(NFTA_EXPR_NAME, name)?];
                if !data.is_empty() {
                    elem.push(attr_raw_nest(NFTA_EXPR_DATA, data)?);
                }
                return attr_nest(NFTA_LIST_ELEM, &elem);
            }
        };
        attr_nest(
            NFTA_LIST_ELEM,
            &[
                attr_str(NFTA_EXPR_NAME, self.name())?,
                attr_nest(NFTA_EXPR_DATA, &data)?,
            ],
        )
    }

    /// Parse one `NFTA_LIST_ELEM` attribute (as found in a request or a kernel dump).
    pub fn from_attr(elem: &AttrBuf<'_>) -> Result<Expr, NftError> {
        let attrs = parse_attrs(elem.value())?;
        let name = get_str(
            req(&attrs, NFTA_EXPR_NAME, "NFTA_EXPR_NAME")?,
            "NFTA_EXPR_NAME",
        )?;
        let raw = find(&attrs, NFTA_EXPR_DATA)
            .map(|d| d.value())
            .unwrap_or_default();
        let data = parse_attrs(raw)?;
        let parsed = match name.as_str() {
            "meta" => Self::parse_meta(&data)?,
            "payload" => Self::parse_payload(&data)?,
            "bitwise" => Self::parse_bitwise(&data)?,
            "cmp" => Self::parse_cmp(&data)?,
            "immediate" => Self::parse_immediate(&data)?,
            "lookup" => Self::parse_lookup(&data)?,
            _ => None,
        };
        Ok(parsed.unwrap_or_else(|| Expr::Other {
            name,
            data: raw.to_vec(),
        }))
    }

    fn be32(d: &[AttrBuf<'_>], ty: u16, what: &'static str) -> Result<Option<u32>, NftError> {
        find(d, ty).map(|a| get_be32(a, what)).transpose()
    }

    fn parse_meta(d: &[AttrBuf<'_>]) -> Result<Option<Expr>, NftError> {
        if !only(d, &[NFTA_META_KEY, NFTA_META_DREG, NFTA_META_SREG]) {
            return Ok(None);
        }
        let key = Self::be32(d, NFTA_META_KEY, "NFTA_META_KEY")?;
        let dreg = Self::be32(d, NFTA_META_DREG, "NFTA_META_DREG")?;
        let sreg = Self::be32(d, NFTA_META_SREG, "NFTA_META_SREG")?;
        Ok(match (key, dreg, sreg) {
            (Some(key), Some(dreg), None) => Some(Expr::MetaLoad { key, dreg }),
            (Some(key), None, Some(sreg)) => Some(Expr::MetaSet { key, sreg }),
            _ => None,
        })
    }

    fn parse_payload(d: &[AttrBuf<'_>]) -> Result<Option<Expr>, NftError> {
        if !only(
            d,
            &[
                NFTA_PAYLOAD_DREG,
                NFTA_PAYLOAD_BASE,
                NFTA_PAYLOAD_OFFSET,
                NFTA_PAYLOAD_LEN,
            ],
        ) {
            return Ok(None);
        }
        Ok(
            match (
                Self::be32(d, NFTA_PAYLOAD_DREG, "NFTA_PAYLOAD_DREG")?,
                Self::be32(d, NFTA_PAYLOAD_BASE, "NFTA_PAYLOAD_BASE")?,
                Self::be32(d, NFTA_PAYLOAD_OFFSET, "NFTA_PAYLOAD_OFFSET")?,
                Self::be32(d, NFTA_PAYLOAD_LEN, "NFTA_PAYLOAD_LEN")?,
            ) {
                (Some(dreg), Some(base), Some(offset), Some(len)) => Some(Expr::Payload {
                    dreg,
                    base,
                    offset,
                    len,
                }),
                _ => None,
            },
        )
    }

    fn parse_bitwise(d: &[AttrBuf<'_>]) -> Result<Option<Expr>, NftError> {
        if !only(
            d,
            &[
                NFTA_BITWISE_SREG,
                NFTA_BITWISE_DREG,
                NFTA_BITWISE_LEN,
                NFTA_BITWISE_MASK,
                NFTA_BITWISE_XOR,
                NFTA_BITWISE_OP,
            ],
        ) {
            return Ok(None);
        }
        // OP is absent on pre-5.6 kernels; anything but BOOL (shifts) is not modelled.
        if let Some(op) = Self::be32(d, NFTA_BITWISE_OP, "NFTA_BITWISE_OP")? {
            if op != NFT_BITWISE_BOOL {
                return Ok(None);
            }
        }
        let mask = find(d, NFTA_BITWISE_MASK).map(data_value).transpose()?;
        let xor = find(d, NFTA_BITWISE_XOR).map(data_value).transpose()?;
        Ok(
            match (
                Self::be32(d, NFTA_BITWISE_SREG, "NFTA_BITWISE_SREG")?,
                Self::be32(d, NFTA_BITWISE_DREG, "NFTA_BITWISE_DREG")?,
                Self::be32(d, NFTA_BITWISE_LEN, "NFTA_BITWISE_LEN")?,
                mask.flatten(),
                xor.flatten(),
            ) {
                (Some(sreg), Some(dreg), Some(len), Some(mask), Some(xor)) => Some(Expr::Bitwise {
                    sreg,
                    dreg,
                    len,
                    mask,
                    xor,
                }),
                _ => None,
            },
        )
    }

    fn parse_cmp(d: &[AttrBuf<'_>]) -> Result<Option<Expr>, NftError> {
        if !only(d, &[NFTA_CMP_SREG, NFTA_CMP_OP, NFTA_CMP_DATA]) {
            return Ok(None);
        }
        let data = find(d, NFTA_CMP_DATA).map(data_value).transpose()?;
        Ok(
            match (
                Self::be32(d, NFTA_CMP_SREG, "NFTA_CMP_SREG")?,
                Self::be32(d, NFTA_CMP_OP, "NFTA_CMP_OP")?,
                data.flatten(),
            ) {
                (Some(sreg), Some(op), Some(data)) => Some(Expr::Cmp { sreg, op, data }),
                _ => None,
            },
        )
    }

    fn parse_lookup(d: &[AttrBuf<'_>]) -> Result<Option<Expr>, NftError> {
        // A map lookup (DREG) or an inverted one (FLAGS != 0) is not modelled.
        if !only(
            d,
            &[
                NFTA_LOOKUP_SET,
                NFTA_LOOKUP_SREG,
                NFTA_LOOKUP_SET_ID,
                NFTA_LOOKUP_FLAGS,
            ],
        ) || Self::be32(d, NFTA_LOOKUP_FLAGS, "NFTA_LOOKUP_FLAGS")?.unwrap_or(0) != 0
        {
            return Ok(None);
        }
        let set = find(d, NFTA_LOOKUP_SET)
            .map(|a| get_str(a, "NFTA_LOOKUP_SET"))
            .transpose()?;
        Ok(
            match (Self::be32(d, NFTA_LOOKUP_SREG, "NFTA_LOOKUP_SREG")?, set) {
                (Some(sreg), Some(set)) => Some(Expr::Lookup {
                    sreg,
                    set,
                    set_id: Self::be32(d, NFTA_LOOKUP_SET_ID, "NFTA_LOOKUP_SET_ID")?,
                }),
                _ => None,
            },
        )
    }

    fn parse_immediate(d: &[AttrBuf<'_>]) -> Result<Option<Expr>, NftError> {
        if !only(d, &[NFTA_IMMEDIATE_DREG, NFTA_IMMEDIATE_DATA]) {
            return Ok(None);
        }
        // A verdict immediate (`accept`, `jump x`) has NFTA_DATA_VERDICT and yields None here.
        let data = find(d, NFTA_IMMEDIATE_DATA).map(data_value).transpose()?;
        Ok(
            match (
                Self::be32(d, NFTA_IMMEDIATE_DREG, "NFTA_IMMEDIATE_DREG")?,
                data.flatten(),
            ) {
                (Some(dreg), Some(data)) => Some(Expr::Immediate { dreg, data }),
                _ => None,
            },
        )
    }
}

/// Emit `NFTA_RULE_EXPRESSIONS`.
pub(crate) fn expressions_attr(exprs: &[Expr]) -> Result<Attr, NftError> {
    let elems = exprs
        .iter()
        .map(Expr::to_attr)
        .collect::<Result<Vec<_>, _>>()?;
    attr_nest(NFTA_RULE_EXPRESSIONS, &elems)
}

/// Parse the payload of `NFTA_RULE_EXPRESSIONS` (a list of `NFTA_LIST_ELEM`).
pub(crate) fn parse_expressions(bytes: &[u8]) -> Result<Vec<Expr>, NftError> {
    parse_attrs(bytes)?
        .iter()
        .filter(|a| a.kind() == NFTA_LIST_ELEM)
        .map(Expr::from_attr)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::wire::attrs_to_bytes;

    fn round_trip(e: &Expr) -> Expr {
        let attr = e.to_attr().expect("emit");
        // Through bytes, so the parser really runs.
        let bytes = attrs_to_bytes(&[attr]);
        let list = parse_expressions(&bytes).expect("parse");
        assert_eq!(list.len(), 1);
        list.into_iter().next().expect("one expr")
    }

    fn samples() -> Vec<Expr> {
        vec![
            Expr::MetaLoad {
                key: NFT_META_L4PROTO,
                dreg: NFT_REG_1,
            },
            Expr::MetaSet {
                key: NFT_META_MARK,
                sreg: 9,
            },
            Expr::Payload {
                dreg: NFT_REG_1,
                base: NFT_PAYLOAD_TRANSPORT_HEADER,
                offset: 13,
                len: 1,
            },
            Expr::Bitwise {
                sreg: 1,
                dreg: 2,
                len: 1,
                mask: vec![0x12],
                xor: vec![0],
            },
            Expr::Cmp {
                sreg: 1,
                op: NFT_CMP_NEQ,
                data: vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            },
            Expr::Immediate {
                dreg: 1,
                data: 0xdead_beef_u32.to_ne_bytes().to_vec(),
            },
            Expr::Lookup {
                sreg: 1,
                set: "lease4".into(),
                set_id: Some(1),
            },
            Expr::Lookup {
                sreg: 1,
                set: "lease6".into(),
                set_id: None,
            },
            Expr::Other {
                name: "counter".into(),
                data: vec![
                    0x0c, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 7, 0x0c, 0x00, 0x02, 0x00, 0, 0,
                    0, 0, 0, 0, 1, 0,
                ],
            },
            Expr::Other {
                name: "notrack".into(),
                data: vec![],
            },
        ]
    }

    #[test]
    fn expr_round_trip() {
        for e in samples() {
            assert_eq!(round_trip(&e), e);
        }
    }

    #[test]
    fn meta_bytes_match_nft() {
        // docs/netlink-reference.md §7.5 offset 0x00c0: meta load l4proto => reg 1
        let bytes = attrs_to_bytes(&[Expr::MetaLoad {
            key: NFT_META_L4PROTO,
            dreg: 1,
        }
        .to_attr()
        .expect("emit")]);
        assert_eq!(
            bytes,
            [
                0x24, 0x00, 0x01, 0x80, 0x09, 0x00, 0x01, 0x00, b'm', b'e', b't', b'a', 0, 0, 0, 0,
                0x14, 0x00, 0x02, 0x80, 0x08, 0x00, 0x02, 0x00, 0, 0, 0, 0x10, 0x08, 0x00, 0x01,
                0x00, 0, 0, 0, 1
            ]
        );
    }

    #[test]
    fn unmodelled_variants_become_other() {
        // bitwise with a shift op (NFT_BITWISE_LSHIFT = 1)
        let data = attrs_to_bytes(&[
            attr_be32(NFTA_BITWISE_SREG, 1).expect("a"),
            attr_be32(NFTA_BITWISE_DREG, 1).expect("a"),
            attr_be32(NFTA_BITWISE_LEN, 4).expect("a"),
            attr_be32(NFTA_BITWISE_OP, 1).expect("a"),
        ]);
        let e = Expr::Other {
            name: "bitwise".into(),
            data: data.clone(),
        };
        assert_eq!(round_trip(&e), e);
        // immediate with a verdict (accept)
        let verdict = attr_nest(
            NFTA_IMMEDIATE_DATA,
            &[attr_nest(NFTA_DATA_VERDICT, &[attr_be32(1, NF_ACCEPT).expect("a")]).expect("a")],
        )
        .expect("a");
        let data = attrs_to_bytes(&[attr_be32(NFTA_IMMEDIATE_DREG, 0).expect("a"), verdict]);
        let e = Expr::Other {
            name: "immediate".into(),
            data,
        };
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = attrs_to_bytes(&[Expr::Cmp {
            sreg: 1,
            op: 0,
            data: vec![6],
        }
        .to_attr()
        .expect("emit")]);
        // Every truncation and every single-byte corruption must return, never panic.
        for cut in 0..good.len() {
            let _ = parse_expressions(&good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 3, 4, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = parse_expressions(&b);
            }
        }
        // A cmp whose register is 3 bytes long is malformed.
        let bad = attr_nest(
            NFTA_LIST_ELEM,
            &[
                attr_str(NFTA_EXPR_NAME, "cmp").expect("a"),
                attr_nest(
                    NFTA_EXPR_DATA,
                    &[attr_bytes(NFTA_CMP_SREG, &[0, 0, 1]).expect("a")],
                )
                .expect("a"),
            ],
        )
        .expect("a");
        let bad = attrs_to_bytes(&[bad]);
        let bad = AttrBuf::new_checked(&bad[..]).expect("one attribute");
        assert!(matches!(
            Expr::from_attr(&bad),
            Err(NftError::BadLength { .. })
        ));
    }

    #[test]
    fn oversized_values_are_rejected() {
        let e = Expr::Cmp {
            sreg: 1,
            op: 0,
            data: vec![0; 65],
        };
        assert!(matches!(e.to_attr(), Err(NftError::BadLength { .. })));
        let e = Expr::Immediate {
            dreg: 1,
            data: vec![],
        };
        assert!(e.to_attr().is_err());
    }
}
