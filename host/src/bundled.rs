//! The connector plugins compiled by `build.rs` from `plugins/` and embedded in the binary, so a
//! copied `tributary` binary needs nothing else. Test guests are not here: `tests/build.rs`
//! builds them for tests only.

/// A plugin embedded in the binary.
pub struct Bundled {
    /// The plugin's name (its crate is `plugins/<name>`).
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
    /// SHA-256 of `wasm`, hex, taken by `build.rs`: a load the compile cache answers never
    /// reads `wasm`, so its pages are not made resident.
    pub digest: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
