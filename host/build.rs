//! Builds the product plugins (`plugins/{dropbox,box,feed}`) for `wasm32-wasip2` (installing the
//! target when it is missing) and generates `bundled.rs`, which embeds them with
//! `include_bytes!` so a copied binary needs nothing else. Test guests are built by
//! `tests/build.rs`, never here.

#[path = "build/wasm_plugins.rs"]
mod wasm_plugins;

use std::path::PathBuf;

/// The connector plugins shipped inside the binary.
const PRODUCT_PLUGINS: &[&str] = &["dropbox", "box", "feed"];

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let root = wasm_plugins::workspace_root()?;
    println!("cargo:rerun-if-changed=build/wasm_plugins.rs");
    let built = wasm_plugins::build(&root, PRODUCT_PLUGINS)?;
    let entries: String = built
        .iter()
        .map(|(name, path)| {
            format!(
                "    ({name:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            )
        })
        .collect();
    let code = format!(
        "/// Connector plugins embedded in the binary: (name, component bytes).\npub const PLUGINS: &[(&str, &[u8])] = &[\n{entries}];\n"
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|_| "OUT_DIR is not set")?)
        .join("bundled.rs");
    std::fs::write(&out, code).map_err(|e| format!("writing {}: {e}", out.display()))
}
