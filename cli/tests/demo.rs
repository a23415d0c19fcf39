//! The default build's `tributary` binary runs `demo` end to end: fake Dropbox and Box servers,
//! the real plugins, full and incremental syncs into the embedded index, searches.

#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_binary_runs_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-data");
    // Compiled plugins go to the machine-wide cache; the test's own, shared across its runs.
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .current_dir(dir.path())
        .env(
            "TRIBUTARY_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache"),
        )
        .arg("--data-dir")
        .arg(&data)
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for expected in [
        "1. Full syncs",
        "full sync of default/dropbox succeeded",
        "full sync of default/box succeeded",
        "incremental sync of default/dropbox succeeded",
        "incremental sync of default/box succeeded",
        "\"marzipan\": 1 match(es)",
        "Done in",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
}
