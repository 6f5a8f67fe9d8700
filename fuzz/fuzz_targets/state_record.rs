//! The state record as read from `state_dir` (any bytes a crash, a full
//! disk or another process could leave there): `state::Record::parse`.
//! What parses must write back to bytes that parse to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugctl::state::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Record::parse(data) {
        assert_eq!(Record::parse(&r.to_bytes()).as_ref(), Ok(&r));
    }
});
