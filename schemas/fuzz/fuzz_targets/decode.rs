//! Any bytes given to the decoder give an event or a typed error, never a panic, a hang or
//! an allocation bomb.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cruxlog_schemas::decode(data);
    let _ = cruxlog_schemas::codec::decode_envelope(data);
});
