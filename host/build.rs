//! Builds the product plugins (`plugins/{dropbox,box,feed}`) for `wasm32-wasip2` (installing the
//! target when it is missing) and generates `bundled.rs`, which embeds them with
//! `include_bytes!` (each with its SHA-256) so a copied binary needs nothing else. Test guests
//! are built by `tests/build.rs`, never here.

#[path = "build/wasm_plugins.rs"]
mod wasm_plugins;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

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
    let mut entries = String::new();
    for (name, path) in &built {
        // The digest is taken here so that loading a plugin the compile cache holds never
        // reads its embedded bytes (they would stay resident for the life of the process).
        let wasm = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let digest: String = Sha256::digest(&wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        entries.push_str(&format!(
            "    Bundled {{ name: {name:?}, wasm: include_bytes!({:?}), digest: {digest:?} }},\n",
            path.display().to_string()
        ));
    }
    let code = format!(
        "/// Connector plugins embedded in the binary.\npub const PLUGINS: &[Bundled] = &[\n{entries}];\n"
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|_| "OUT_DIR is not set")?)
        .join("bundled.rs");
    std::fs::write(&out, code).map_err(|e| format!("writing {}: {e}", out.display()))
}
