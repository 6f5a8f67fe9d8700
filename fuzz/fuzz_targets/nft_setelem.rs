//! One `NFT_MSG_NEWSETELEM` dump message (the payload after the
//! `nlmsghdr`), as `plugctl status` reads the lease: `nft::parse_setelems`,
//! then each element's key as an address [. port] of every key kind; a key
//! that parses is the key of what it parsed to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_netlink::nft::{parse_setelems, SetKey};

fuzz_target!(|data: &[u8]| {
    let Ok(d) = parse_setelems(data) else {
        return;
    };
    for e in &d.elems {
        for ipv6 in [false, true] {
            for port in [false, true] {
                let k = SetKey { ipv6, port };
                if let Some((addr, p)) = k.parse_element(&e.key) {
                    let again = k.element(addr, p).expect("a parsed key builds");
                    // The port's padding is not compared: the kernel's is zero.
                    assert_eq!(
                        again[..again.len() - 2 * port as usize],
                        e.key[..again.len() - 2 * port as usize]
                    );
                }
            }
        }
    }
});
