//! The tc option parsers on their own (`TCA_OPTIONS` payloads):
//! `PrioOptions::parse`, `FifoOptions::parse`, `PlugOptions::parse` (and
//! `PlugAction::from_code`), `FwOptions::parse`, and the text parser of tc
//! handles (`Handle::from_str`, for configuration). What parses must come
//! back unchanged through the matching `to_bytes` / `to_string`.
//!
//! Input: byte 0 picks the parser, the rest is its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl_netlink::tc::{FifoOptions, FwOptions, Handle, PlugAction, PlugOptions, PrioOptions};

fuzz_target!(|data: &[u8]| {
    let Some((which, b)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Some(o) = PrioOptions::parse(b) {
                assert_eq!(PrioOptions::parse(&o.to_bytes()), Some(o));
            }
        }
        1 => {
            if let Some(o) = FifoOptions::parse(b) {
                assert_eq!(FifoOptions::parse(&o.to_bytes()), Some(o));
            }
        }
        2 => {
            if let Some(o) = PlugOptions::parse(b) {
                assert_eq!(PlugOptions::parse(&o.to_bytes()), Some(o));
            }
            if let Some(code) = b.first_chunk::<4>().map(|c| i32::from_ne_bytes(*c)) {
                if let Some(a) = PlugAction::from_code(code) {
                    assert_eq!(a.code(), code);
                }
            }
        }
        3 => {
            if let Some(o) = FwOptions::parse(b) {
                assert_eq!(FwOptions::parse(&o.to_bytes()), Some(o));
            }
        }
        _ => {
            if let Ok(h) = String::from_utf8_lossy(b).parse::<Handle>() {
                assert_eq!(h.to_string().parse::<Handle>(), Ok(h));
            }
        }
    }
});
