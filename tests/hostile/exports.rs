//! Malformed manifests, and a panic (an abort, in a release-built guest) in every export.

use serde_json::json;
use tributary_host::{SyncKind, SyncOptions};

use crate::arena::{Arena, assert_failed, hostile, hostile_wasm};

/// Loads the hostile component with `mode` as its manifest while the victim syncs; the load must
/// fail with every `needle`, the plugin stays unknown, and its connector's job fails cleanly.
async fn refused_manifest(mode: &str, needles: &[&str]) {
    let arena = Arena::without_hostile(vec![hostile("bad", json!({"attack": "emit"}))]).await;
    let error = arena
        .alongside_victim(async {
            arena
                .host
                .load_plugin(hostile_wasm(mode), &format!("hostile-{mode}.wasm"))
                .await
                .map(|p| p.label())
                .expect_err("the plugin must be refused")
        })
        .await;
    let message = format!("{error:#}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{needle}` missing from {message}"
        );
    }
    assert!(arena.host.plugin("hostile").is_err());
    let report = arena.attack("bad").await;
    assert_failed(&report, "config", &["no plugin named `hostile` is loaded"]);
    // The same component with a valid manifest loads: the refusal was the manifest's doing.
    arena
        .host
        .load_plugin(hostile_wasm("valid"), "hostile.wasm")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_with_a_bad_name_is_refused() {
    refused_manifest(
        "bad-name",
        &[
            "invalid manifest",
            "\"../Hostile Plugin\" must be 1-64 lowercase letters",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_with_duplicate_keys_is_refused() {
    refused_manifest(
        "dup-keys",
        &["invalid manifest", "config key `target` is declared twice"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_with_a_default_that_is_not_json_is_refused() {
    refused_manifest(
        "bad-default",
        &["invalid manifest", "default of `count` is not JSON"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_manifest_is_refused() {
    refused_manifest(
        "panic",
        &["`manifest` failed", "hostile plugin panics in manifest"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_loops_is_stopped() {
    refused_manifest(
        "spin",
        &["`manifest` failed", "exceeded its CPU limit of 2 s"],
    )
    .await;
}

/// A connector whose plugin panics in `export`; advanced rules make the host call
/// `validate-advanced-rules`.
async fn panicking(export: &str, kind: SyncKind) {
    let mut spec = hostile("panics", json!({"attack": "emit", "panic_in": export}));
    if export == "validate-advanced-rules" {
        spec.advanced_rules = Some(json!([{"any": "rule"}]));
    }
    let arena = Arena::new(vec![spec.clone()]).await;
    let report = arena.attack_spec(&spec, kind, SyncOptions::default()).await;
    assert_failed(
        &report,
        "trap",
        &[
            &format!("`{export}`"),
            "wasm trap",
            &format!("hostile plugin panics in {export}"),
        ],
    );
    // The same connector without the panic syncs: the trap was the export's doing.
    let mut calm = spec;
    calm.config.remove("panic_in");
    let report = arena
        .host
        .sync_spec(&calm, kind, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.status,
        tributary_host::JobStatus::Succeeded,
        "{:?}",
        report.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_allowed_hosts_fails_the_job() {
    panicking("allowed-hosts", SyncKind::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_validate_config_fails_the_job() {
    panicking("validate-config", SyncKind::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_full_sync_fails_the_job() {
    panicking("full-sync", SyncKind::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_incremental_sync_fails_the_job() {
    panicking("incremental-sync", SyncKind::Incremental).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_access_control_sync_fails_the_job() {
    panicking("access-control-sync", SyncKind::AccessControl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_validate_advanced_rules_fails_the_job() {
    panicking("validate-advanced-rules", SyncKind::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_ping_fails_the_check() {
    let spec = hostile("pinged", json!({"attack": "emit", "panic_in": "ping"}));
    let arena = Arena::new(vec![spec.clone()]).await;
    let error = arena
        .alongside_victim(arena.host.validate_connector(&spec, true))
        .await
        .expect_err("ping traps");
    assert_eq!(error.kind, "trap", "{error:?}");
    assert!(
        error.message.contains("`ping`") && error.message.contains("hostile plugin panics in ping"),
        "{error:?}"
    );
    // Without `ping` the same connector validates.
    arena.host.validate_connector(&spec, false).await.unwrap();
}
