//! A received datagram, as `Socket` handles it: `frame::split`, then for
//! every message the `NLMSG_ERROR` and `NLMSG_DONE` decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_fuzz::check_error_decoding;
use plugctl_netlink::frame::split;

fuzz_target!(|data: &[u8]| {
    let Ok(msgs) = split(data) else {
        return;
    };
    for m in &msgs {
        check_error_decoding(m);
        // A message cut out of a datagram frames back to itself.
        let again = split(&m.to_bytes(0)).expect("a message of our own splits");
        assert_eq!(again.as_slice(), std::slice::from_ref(m));
    }
});
