//! nf_tables expressions: the input is the content of
//! `NFTA_RULE_EXPRESSIONS` (a list of `NFTA_LIST_ELEM`), put into an
//! otherwise well-formed rule and parsed with `nft::parse_rule`
//! (`Expr::from_attr` for each element), then `MarkRule::from_expressions`.
//!
//! Every expression that parses and can be emitted again (`Expr::to_attr`)
//! must parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_fuzz::{attr_bytes, rule_payload};
use plugctl_netlink::nft::{parse_rule, MarkRule};

fuzz_target!(|data: &[u8]| {
    let Some(payload) = rule_payload(data) else {
        return;
    };
    let Ok(r) = parse_rule(&payload) else {
        return;
    };
    let _ = MarkRule::from_expressions(&r.exprs);
    for e in &r.exprs {
        let Ok(attr) = e.to_attr() else {
            continue;
        };
        let Some(again) = rule_payload(&attr_bytes(&attr)) else {
            continue;
        };
        let back = parse_rule(&again).expect("our expression parses");
        assert_eq!(back.exprs.as_slice(), std::slice::from_ref(e));
    }
});
