//! Support crate for the end-to-end tests (the tests live in `e2e/` and `hostile/`): the paths
//! of the test guests, built by `build.rs` for tests only.

include!(concat!(env!("OUT_DIR"), "/test_guests.rs"));
