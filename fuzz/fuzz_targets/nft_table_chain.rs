//! One `NFT_MSG_NEWTABLE` or `NFT_MSG_NEWCHAIN` reply (the payload after the
//! `nlmsghdr`): `nft::parse_table` and `nft::parse_chain` (with the chain's
//! hook nest) both run on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_netlink::nft::{parse_chain, parse_table};

fuzz_target!(|data: &[u8]| {
    let _ = parse_table(data);
    if let Ok(c) = parse_chain(data) {
        let _ = c.is_plugctl_base_chain();
    }
});
