//! The connector plugins compiled by `build.rs` from `plugins/` and embedded in the binary, so a
//! copied `tributary` binary needs nothing else. Test guests are not here: `tests/build.rs`
//! builds them for tests only.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
