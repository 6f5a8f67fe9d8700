//! One `NFT_MSG_NEWRULE` dump entry (the payload after the `nlmsghdr`):
//! `nft::parse_rule` (nfgenmsg, attributes, every expression), then
//! `Rule::from_expressions` on what it found (a leased lookup rule or an
//! older mark rule), as `plugctl status` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_netlink::nft::{parse_rule, Expr, Rule};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = parse_rule(data) else {
        return;
    };
    if let Some(m) = Rule::from_expressions(&r.exprs) {
        // What it recognised is what it would build (a lookup's set id,
        // absent from dumps, aside).
        let strip = |e: &[Expr]| -> Vec<Expr> {
            e.iter()
                .map(|x| match x {
                    Expr::Lookup { sreg, set, .. } => Expr::Lookup {
                        sreg: *sreg,
                        set: set.clone(),
                        set_id: None,
                    },
                    x => x.clone(),
                })
                .collect()
        };
        assert_eq!(m.expressions(), strip(&r.exprs));
        let _ = m.to_nft_syntax();
    }
});
