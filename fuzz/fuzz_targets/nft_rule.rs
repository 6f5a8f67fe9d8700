//! One `NFT_MSG_NEWRULE` dump entry (the payload after the `nlmsghdr`):
//! `nft::parse_rule` (nfgenmsg, attributes, every expression), then
//! `MarkRule::from_expressions` on what it found, as `plugctl status` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_netlink::nft::{parse_rule, MarkRule};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = parse_rule(data) else {
        return;
    };
    if let Some(m) = MarkRule::from_expressions(&r.exprs) {
        assert_eq!(m.expressions(), r.exprs);
        let _ = m.to_nft_syntax();
    }
});
