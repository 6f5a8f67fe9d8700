//! One `RTM_NEWTFILTER` dump entry (the body after the `nlmsghdr`):
//! `tc::parse_filter`, with the fw option parser behind it.
//!
//! An fw filter with a class id must survive `tc::new_fw_filter` and parse
//! back to the same filter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_fuzz::message;
use plugctl_netlink::frame::split;
use plugctl_netlink::tc::{new_fw_filter, parse_filter, FwFilter, RTM_NEWTFILTER};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = parse_filter(&message(RTM_NEWTFILTER, 0, data)) else {
        return;
    };
    let Some(options) = f.fw else {
        return;
    };
    let fw = FwFilter {
        ifindex: f.ifindex,
        parent: f.parent,
        prio: f.prio,
        protocol: f.protocol,
        mark: f.handle,
        options,
    };
    let msgs = split(&new_fw_filter(&fw, 1)).expect("our request frames");
    let back = parse_filter(&msgs[0]).expect("our request parses");
    assert_eq!(back, f);
});
