//! A received datagram, as `Socket` handles it: `frame::split`, then for
//! every message the `NLMSG_ERROR` and `NLMSG_DONE` decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_netlink::frame::{split, MAX_ERRNO};
use plugctl_netlink::Error;

fuzz_target!(|data: &[u8]| {
    let Ok(msgs) = split(data) else {
        return;
    };
    for m in &msgs {
        if let Some(Ok(ack)) = m.as_ack() {
            if let Err(k) = ack.result {
                assert!((1..=MAX_ERRNO).contains(&k.errno), "{k:?}");
                let _ = k.to_string();
            }
        }
        if let Some(Err(Error::Kernel(k))) = m.as_done() {
            assert!((1..=MAX_ERRNO).contains(&k.errno), "{k:?}");
        }
        // A message cut out of a datagram frames back to itself.
        let again = split(&m.to_bytes(0)).expect("a message of our own splits");
        assert_eq!(again.as_slice(), std::slice::from_ref(m));
    }
});
