//! Plugins compiled by `build.rs` from `plugins/`: the connectors embedded in the binary (so a
//! copied `tributary` binary needs nothing else), and test guests, available by path to tests.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The path of a test guest built with the host (e.g. `"testbed"`), for tests.
pub fn test_plugin(name: &str) -> Option<&'static str> {
    TEST_PLUGINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
}
