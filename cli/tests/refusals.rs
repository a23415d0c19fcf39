//! The binary refuses bad input cleanly: an error line and exit status 1, never a panic
//! (status 101 and a backtrace), and nothing created on disk by a refused read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn tributary(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .env(
            "TRIBUTARY_CACHE_DIR",
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache"),
        )
        .env_remove("TRIBUTARY_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

/// Exit status 1 with `needle` on stderr, and no panic.
fn refused(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains(needle), "no `{needle}` in:\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn searching_an_unknown_index_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for name in ["nope", "other"] {
        let output = tributary(
            dir.path(),
            &[
                "--data-dir",
                data.to_str().unwrap(),
                "search",
                "--index",
                name,
                "anything",
            ],
        );
        refused(
            &output,
            &format!("no index `{name}`: tenant `default` has no indexes yet"),
        );
    }
    assert!(!data.join("index/default").exists());
}

#[test]
fn a_bad_schedule_in_the_configuration_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    for (schedule, field) in [
        ("full_cron = \"59/4294967295 * * * *\"", "full_cron"),
        (
            "incremental_minutes = 18446744073709551615",
            "incremental_minutes",
        ),
        ("full_minutes = 0", "full_minutes"),
        (
            "access_control_every = \"99999999999999999999d\"",
            "access_control_every",
        ),
    ] {
        let config = dir.path().join("tributary.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"data\"\n[[connectors]]\nid = \"docs\"\nplugin = \"feed\"\n[connectors.schedule]\n{schedule}\n"
            ),
        )
        .unwrap();
        let output = tributary(dir.path(), &["connectors"]);
        refused(&output, &format!("`{field}`"));
    }
}
