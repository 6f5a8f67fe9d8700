//! One `SOCK_DIAG_BY_FAMILY` dump entry (the body after the `nlmsghdr`):
//! `diag::parse_listener` (address, port, inode, cookie, accept queue and
//! backlog).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_fuzz::message;
use plugctl_netlink::diag::{parse_listener, SOCK_DIAG_BY_FAMILY};

fuzz_target!(|data: &[u8]| {
    let _ = parse_listener(&message(SOCK_DIAG_BY_FAMILY, 0, data));
});
