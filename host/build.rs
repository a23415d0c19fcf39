//! Builds the plugins in `plugins/` for `wasm32-wasip2` (installing the target when it is
//! missing) and generates `bundled.rs`: connector plugins embedded with `include_bytes!`, test
//! guests as paths.
//!
//! The nested cargo uses its own target directory so it never waits on the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Guests that exist only for tests: built, but not embedded in the binary.
const TEST_GUESTS: &[&str] = &["testbed", "hostile", "feed-next"];

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("host crate has no parent directory")?
        .to_path_buf();
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", plugins.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => root.join("target"),
    }
    .join("wasm-plugins");

    ensure_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--workspace",
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the wasm build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .status()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the plugins in {} failed ({status})",
            plugins.display()
        ));
    }

    let out_dir = target_dir.join(TARGET).join("release");
    let mut bundled = Vec::new();
    let mut tests = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .map_err(|e| format!("reading {}: {e}", out_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    entries.sort();
    for path in entries {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let Some(name) = stem.strip_prefix("tributary_plugin_") else {
            continue;
        };
        let name = name.replace('_', "-");
        if !member_exists(&plugins, &name) {
            continue; // stale artefact of a removed plugin
        }
        if TEST_GUESTS.contains(&name.as_str()) {
            tests.push(format!(
                "    ({name:?}, {:?}),\n",
                path.display().to_string()
            ));
        } else {
            bundled.push(format!(
                "    ({name:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            ));
        }
    }
    let code = format!(
        "/// Connector plugins embedded in the binary: (name, component bytes).\npub const PLUGINS: &[(&str, &[u8])] = &[\n{}];\n/// Test guests: (name, path of the component).\npub const TEST_PLUGINS: &[(&str, &str)] = &[\n{}];\n",
        bundled.concat(),
        tests.concat()
    );
    let out = PathBuf::from(env("OUT_DIR")?).join("bundled.rs");
    std::fs::write(&out, code).map_err(|e| format!("writing {}: {e}", out.display()))
}

fn member_exists(plugins: &Path, name: &str) -> bool {
    plugins.join(name).join("Cargo.toml").exists()
}

fn env(key: &str) -> Result<String, String> {
    std::env::var(key).map_err(|_| format!("{key} is not set"))
}

/// Installs the wasm target with rustup when the toolchain lacks it (RUSTUP_AUTO_INSTALL=0
/// machines never install it implicitly).
fn ensure_target() -> Result<(), String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {rustc}: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        return Ok(());
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| format!("the {TARGET} target is missing and rustup could not run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`rustup target add {TARGET}` failed ({status})"))
    }
}
