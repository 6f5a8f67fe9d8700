//! One `NFT_MSG_NEWSET` reply (the payload after the `nlmsghdr`), as
//! `plugctl setup` and `status` read a lease set: `nft::parse_set`, then
//! the comparison with every lease set plugctl could want.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_netlink::nft::{parse_set, SetKey, SetSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = parse_set(data) else {
        return;
    };
    for ipv6 in [false, true] {
        for port in [false, true] {
            let want = SetSpec {
                name: s.name.clone(),
                key: SetKey { ipv6, port },
            };
            if want.matches(&s) {
                assert_eq!(s.key_len, want.key.key_len());
                let _ = want.to_nft_syntax();
            }
        }
    }
});
