//! The inbox's handling of untrusted bytes (signature header, activity, object, HTML, keys).
//! Seeded from the fediverse corpus: `scripts/fuzz` runs it for a bounded time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn::federation::inbox::parse_untrusted(data);
});
