//! `NLMSG_ERROR` (ACK, error, extended-ack message) and `NLMSG_DONE` status
//! decoding on one message: `RawMessage::as_ack` and `RawMessage::as_done`.
//!
//! Input: byte 0 picks the type (even: `NLMSG_ERROR`, odd: `NLMSG_DONE`),
//! bytes 1..3 are `nlmsg_flags` (native order), the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR};
use plugctl_fuzz::{check_error_decoding, message};

fuzz_target!(|data: &[u8]| {
    let Some(([ty, f0, f1], body)) = data.split_first_chunk::<3>() else {
        return;
    };
    let ty = if ty & 1 == 0 { NLMSG_ERROR } else { NLMSG_DONE };
    check_error_decoding(&message(ty, u16::from_ne_bytes([*f0, *f1]), body));
});
