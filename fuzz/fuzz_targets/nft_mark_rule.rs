//! `MarkRule::from_expressions`, on expression lists near the ones it must
//! recognise: the fuzzer's bytes choose a rule (address, port, mark), take
//! its `MarkRule::expressions()` and apply a few edits (remove, insert,
//! replace, swap, change one field). Random wire bytes almost never parse
//! into eleven or thirteen expressions, so `nft_rule` and `nft_expr` rarely
//! get this far.
//!
//! The unedited list must be recognised as its rule; any list recognised
//! must be exactly the expressions of the rule recognised.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use plugctl_netlink::nft::{Expr, MarkRule};

fn rule(u: &mut Unstructured<'_>) -> Result<MarkRule> {
    let addr = if u.arbitrary()? {
        IpAddr::from(u.arbitrary::<[u8; 16]>()?)
    } else {
        IpAddr::from(u.arbitrary::<[u8; 4]>()?)
    };
    Ok(MarkRule {
        addr,
        port: u.arbitrary()?,
        mark: u.arbitrary()?,
    })
}

/// Register, key, base, offset or length: mostly small, as in real rules.
fn small(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(if u.ratio(7, 8)? {
        u.int_in_range(0..=20)?
    } else {
        u.arbitrary()?
    })
}

fn bytes(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=17)?;
    u.bytes(n).map(<[u8]>::to_vec)
}

fn expr(u: &mut Unstructured<'_>) -> Result<Expr> {
    Ok(match u.int_in_range(0..=6)? {
        0 => Expr::MetaLoad {
            key: small(u)?,
            dreg: small(u)?,
        },
        1 => Expr::MetaSet {
            key: small(u)?,
            sreg: small(u)?,
        },
        2 => Expr::Payload {
            dreg: small(u)?,
            base: small(u)?,
            offset: small(u)?,
            len: small(u)?,
        },
        3 => Expr::Bitwise {
            sreg: small(u)?,
            dreg: small(u)?,
            len: small(u)?,
            mask: bytes(u)?,
            xor: bytes(u)?,
        },
        4 => Expr::Cmp {
            sreg: small(u)?,
            op: small(u)?,
            data: bytes(u)?,
        },
        5 => Expr::Immediate {
            dreg: small(u)?,
            data: bytes(u)?,
        },
        _ => Expr::Other {
            name: u.arbitrary()?,
            data: bytes(u)?,
        },
    })
}

/// Change one number or one byte of `e`.
fn tweak(u: &mut Unstructured<'_>, e: &mut Expr) -> Result<()> {
    let v = small(u)?;
    let mut fields: Vec<&mut u32> = Vec::new();
    let mut data: Vec<&mut Vec<u8>> = Vec::new();
    match e {
        Expr::MetaLoad { key, dreg } => fields.extend([key, dreg]),
        Expr::MetaSet { key, sreg } => fields.extend([key, sreg]),
        Expr::Payload {
            dreg,
            base,
            offset,
            len,
        } => fields.extend([dreg, base, offset, len]),
        Expr::Bitwise {
            sreg,
            dreg,
            len,
            mask,
            xor,
        } => {
            fields.extend([sreg, dreg, len]);
            data.extend([mask, xor]);
        }
        Expr::Cmp { sreg, op, data: d } => {
            fields.extend([sreg, op]);
            data.push(d);
        }
        Expr::Immediate { dreg, data: d } => {
            fields.push(dreg);
            data.push(d);
        }
        Expr::Lookup { sreg, .. } => fields.push(sreg),
        Expr::Other { data: d, .. } => data.push(d),
    }
    let n = fields.len() + data.len();
    let i = u.choose_index(n)?;
    if i < fields.len() {
        *fields[i] = v;
    } else {
        let d = &mut data[i - fields.len()];
        match u.int_in_range(0..=2)? {
            0 if !d.is_empty() => {
                let j = u.choose_index(d.len())?;
                d[j] = v as u8;
            }
            1 => d.push(v as u8),
            _ => {
                d.pop();
            }
        }
    }
    Ok(())
}

fn edit(u: &mut Unstructured<'_>, exprs: &mut Vec<Expr>) -> Result<()> {
    let n = exprs.len();
    match u.int_in_range(0..=4)? {
        0 if n > 0 => {
            exprs.remove(u.choose_index(n)?);
        }
        1 => {
            let i = u.int_in_range(0..=n)?;
            exprs.insert(i, expr(u)?);
        }
        2 if n > 0 => {
            let i = u.choose_index(n)?;
            exprs[i] = expr(u)?;
        }
        3 if n > 1 => {
            let (i, j) = (u.choose_index(n)?, u.choose_index(n)?);
            exprs.swap(i, j);
        }
        _ if n > 0 => {
            let i = u.choose_index(n)?;
            tweak(u, &mut exprs[i])?;
        }
        _ => {}
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(r) = rule(&mut u) else {
        return;
    };
    let mut exprs = r.expressions();
    let edits = u.int_in_range(0..=4u8).unwrap_or(0);
    if edits == 0 {
        assert_eq!(MarkRule::from_expressions(&exprs), Some(r));
        return;
    }
    for _ in 0..edits {
        if edit(&mut u, &mut exprs).is_err() {
            break;
        }
    }
    if let Some(found) = MarkRule::from_expressions(&exprs) {
        assert_eq!(found.expressions(), exprs);
    }
});
