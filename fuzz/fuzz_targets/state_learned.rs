//! What reloads learned, as read from `state_dir` (any bytes a crash, a
//! full disk or another process could leave there):
//! `state::Learned::parse`. What parses must write back to bytes that parse
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl::state::Learned;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = Learned::parse(data) {
        assert_eq!(Learned::parse(&l.to_bytes()).as_ref(), Ok(&l));
    }
});
