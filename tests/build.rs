//! Builds the test guests (`plugins/{testbed,hostile,feed-next}`) for `wasm32-wasip2` and writes
//! their paths as constants that `src/lib.rs` includes — wasmtime's test-programs-artifacts
//! pattern: only a test build compiles them, and no build-machine path reaches the product.

#[path = "../host/build/wasm_plugins.rs"]
mod wasm_plugins;

use std::path::PathBuf;

/// Test guests, and the constant each path is exposed as.
const TEST_GUESTS: &[(&str, &str)] = &[
    ("testbed", "TESTBED"),
    ("hostile", "HOSTILE"),
    ("feed-next", "FEED_NEXT"),
];

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let root = wasm_plugins::workspace_root()?;
    println!("cargo:rerun-if-changed=../host/build/wasm_plugins.rs");
    let members: Vec<&str> = TEST_GUESTS.iter().map(|(member, _)| *member).collect();
    let built = wasm_plugins::build(&root, &members)?;
    let code: String = built
        .iter()
        .zip(TEST_GUESTS)
        .map(|((name, path), (_, constant))| {
            format!(
                "/// Path of the `{name}` test guest component (`plugins/{name}`).\npub const {constant}: &str = {:?};\n",
                path.display().to_string()
            )
        })
        .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|_| "OUT_DIR is not set")?)
        .join("test_guests.rs");
    std::fs::write(&out, code).map_err(|e| format!("writing {}: {e}", out.display()))
}
