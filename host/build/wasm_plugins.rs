//! Building members of the `plugins/` workspace for `wasm32-wasip2`, shared by `host/build.rs`
//! (the product plugins it embeds) and `tests/build.rs` (the test guests).
//!
//! Only the named members are built (`-p`), so a product build never compiles a test guest.
//! The nested cargo uses its own target directory (`<target>/wasm-plugins`) so it never waits on
//! the outer build's lock; both build scripts share it, and with it the compiled SDK.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Builds `members` (directory names under `plugins/`, e.g. `"dropbox"`) in release mode and
/// returns `(name, path of the component)` for each, in the order given. Prints the
/// `rerun-if-changed` lines for everything the build reads.
pub fn build(root: &Path, members: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
    let plugins = root.join("plugins");
    for watched in ["Cargo.toml", "Cargo.lock", "sdk"] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    for member in members {
        println!("cargo:rerun-if-changed={}", plugins.join(member).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => root.join("target"),
    }
    .join("wasm-plugins");

    ensure_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(["build", "--release", "--target", TARGET]);
    for member in members {
        command.args(["-p", &format!("tributary-plugin-{member}")]);
    }
    let status = command
        .arg("--manifest-path")
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
            "building {} in {} failed ({status})",
            members.join(", "),
            plugins.display()
        ));
    }

    let out_dir = target_dir.join(TARGET).join("release");
    members
        .iter()
        .map(|member| {
            let path = out_dir.join(format!(
                "tributary_plugin_{}.wasm",
                member.replace('-', "_")
            ));
            if path.exists() {
                Ok((member.to_string(), path))
            } else {
                Err(format!("{} was not built", path.display()))
            }
        })
        .collect()
}

/// The workspace root: the parent of the crate running the build script.
pub fn workspace_root() -> Result<PathBuf, String> {
    let manifest_dir = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").map_err(|_| "CARGO_MANIFEST_DIR is not set")?,
    );
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "the crate has no parent directory".to_string())
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
