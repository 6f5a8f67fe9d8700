//! One `RTM_NEWQDISC` dump entry (the body after the `nlmsghdr`):
//! `tc::parse_qdisc`, with the prio/pfifo/plug option parsers behind it.
//!
//! A qdisc of a kind plugctl builds must survive `tc::new_qdisc` and parse
//! back to the same kind, options, handle and parent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_fuzz::message;
use plugctl_netlink::frame::split;
use plugctl_netlink::tc::{new_qdisc, parse_qdisc, QdiscKind, Write, RTM_NEWQDISC};

fuzz_target!(|data: &[u8]| {
    let Ok(q) = parse_qdisc(&message(RTM_NEWQDISC, 0, data)) else {
        return;
    };
    if matches!(q.kind, QdiscKind::Other { .. }) {
        return;
    }
    let built = new_qdisc(q.ifindex, q.parent, q.handle, &q.kind, Write::Create, 1);
    let msgs = split(&built).expect("our request frames");
    let back = parse_qdisc(&msgs[0]).expect("our request parses");
    assert_eq!(
        (back.ifindex, back.parent, back.handle, &back.kind),
        (q.ifindex, q.parent, q.handle, &q.kind)
    );
});
