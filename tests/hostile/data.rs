//! The plugin's data attacking the host: quotas, storage bombs, keys and ids crafted to reach
//! other tenants and connectors, invalid UTF-8, oversized and pathological fields.

use serde_json::json;
use tributary_host::sink::IndexRef;
use tributary_host::{JobStatus, SyncKind, SyncOptions};

use crate::arena::{
    Arena, MAX_BYTES, MAX_DOCUMENTS, MAX_FIELDS_BYTES, MAX_KEYS, MAX_VALUE_BYTES, assert_failed,
    hostile, spec,
};

async fn ids_of(arena: &Arena, tenant: &str, index: &str, connector: &str) -> Vec<String> {
    let mut ids: Vec<String> = arena
        .host
        .sink()
        .versions(IndexRef::new(tenant, index), connector.into())
        .await
        .unwrap()
        .into_ids();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_documents_than_the_quota_are_refused() {
    let arena = Arena::new(vec![hostile(
        "flood",
        json!({"attack": "doc-flood", "count": 500}),
    )])
    .await;
    let report = arena.attack("flood").await;
    assert_failed(
        &report,
        "host",
        &[
            "QuotaExceeded",
            &format!("the job would write 110 documents; its quota is {MAX_DOCUMENTS}"),
        ],
    );
    assert_eq!(report.counts.received, MAX_DOCUMENTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_bytes_than_the_quota_are_refused() {
    let arena = Arena::new(vec![hostile(
        "bytes",
        json!({"attack": "doc-flood", "count": 60, "size": 60_000}),
    )])
    .await;
    let report = arena.attack("bytes").await;
    assert_failed(
        &report,
        "host",
        &["QuotaExceeded", &format!("its quota is {MAX_BYTES} bytes")],
    );
    assert!(report.counts.received < 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_ignoring_the_quota_still_fails_and_deletes_nothing() {
    let arena = Arena::new(vec![hostile(
        "sneaky",
        json!({"attack": "emit", "count": 5}),
    )])
    .await;
    // A first, honest full sync indexes doc-0..doc-4.
    let honest = arena
        .host
        .config()
        .connector(Some("evil"), "sneaky")
        .unwrap()
        .clone();
    let report = arena
        .host
        .sync_spec(&honest, SyncKind::Full, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(report.status, JobStatus::Succeeded, "{:?}", report.error);
    // Then the same connector floods past its quota, swallows the refusal and returns Ok: a
    // full sync that "succeeded" would delete doc-0..doc-4 as vanished.
    let sneaky = hostile(
        "sneaky",
        json!({"attack": "doc-flood-ignoring-errors", "count": 500}),
    );
    let report = arena
        .attack_spec(&sneaky, SyncKind::Full, SyncOptions::default())
        .await;
    assert_failed(
        &report,
        "host",
        &[
            "index quota exceeded",
            &format!("its quota is {MAX_DOCUMENTS}"),
        ],
    );
    assert_eq!(report.counts.deleted, 0);
    let ids = ids_of(&arena, "evil", "sneaky", "sneaky").await;
    for i in 0..5 {
        assert!(ids.contains(&format!("doc-{i}")), "doc-{i} was deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_value_bomb_is_refused() {
    let arena = Arena::new(vec![hostile(
        "value",
        json!({"attack": "storage-value-bomb", "size": 1 << 20}),
    )])
    .await;
    let report = arena.attack("value").await;
    assert_failed(
        &report,
        "host",
        &["TooLarge", &format!("the limit is {MAX_VALUE_BYTES}")],
    );
    assert_eq!(
        arena
            .storage("evil", "value")
            .get("bomb".into())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_key_count_bomb_is_refused() {
    let arena = Arena::new(vec![hostile(
        "keys",
        json!({"attack": "storage-key-bomb", "count": 5000}),
    )])
    .await;
    let report = arena.attack("keys").await;
    assert_failed(
        &report,
        "host",
        &[
            &format!("storage refused key {MAX_KEYS}"),
            "QuotaExceeded",
            &format!("the limits are {MAX_KEYS} keys"),
        ],
    );
    let keys = arena
        .storage("evil", "keys")
        .list_keys(String::new())
        .await
        .unwrap();
    assert_eq!(keys.len() as u64, MAX_KEYS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_storage_keys_stay_in_their_namespace() {
    // The attacker is `evil/news`: the same connector id as the victim, in another tenant; its
    // tenant also has a second connector with a secret.
    let arena = Arena::new(vec![
        hostile(
            "news",
            json!({"attack": "storage-escape", "target": "victim/news/secret"}),
        ),
        hostile("other", json!({"attack": "emit"})),
    ])
    .await;
    let victim = arena.storage("victim", "news");
    let sibling = arena.storage("evil", "other");
    victim
        .apply(vec![("secret".into(), Some(b"victim secret".to_vec()))])
        .await
        .unwrap();
    sibling
        .apply(vec![("secret".into(), Some(b"sibling secret".to_vec()))])
        .await
        .unwrap();
    let report = arena.attack("news").await;
    assert_failed(
        &report,
        "host",
        &["storage refused", "InvalidKey", "keys may not contain NUL"],
    );
    assert_eq!(
        victim.get("secret".into()).await.unwrap(),
        Some(b"victim secret".to_vec())
    );
    assert_eq!(
        sibling.get("secret".into()).await.unwrap(),
        Some(b"sibling secret".to_vec())
    );
    assert_eq!(sibling.list_keys(String::new()).await.unwrap(), ["secret"]);
    let victim_keys = victim.list_keys(String::new()).await.unwrap();
    assert!(
        victim_keys.contains(&"secret".to_string()),
        "{victim_keys:?}"
    );
    for key in victim_keys {
        let value = victim.get(key.clone()).await.unwrap().unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&value).contains("hostile"),
            "the victim's `{key}` was overwritten"
        );
    }
    // The attacker's own namespace holds nothing it tried to plant (the NUL batch was atomic).
    assert!(
        arena
            .storage("evil", "news")
            .list_keys(String::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_document_ids_stay_in_their_connector() {
    // Two attackers aim at the victim's ids `a`, `b`, `c`: `evil/news` (another tenant, same
    // connector id and index name) and `victim/intruder`, which the operator let share the
    // victim's index. Both plant and delete the victim's ids, then forge the embedded index's
    // connector/id separator.
    let mut intruder = spec(
        "victim",
        "intruder",
        "hostile",
        json!({"attack": "id-escape", "target": "a,b,c"}),
    );
    intruder.index = Some("news".into());
    let arena = Arena::new(vec![
        hostile("news", json!({"attack": "id-escape", "target": "a,b,c"})),
        intruder.clone(),
    ])
    .await;
    for attacker in [
        arena
            .host
            .config()
            .connector(Some("evil"), "news")
            .unwrap()
            .clone(),
        intruder,
    ] {
        let report = arena
            .attack_spec(&attacker, SyncKind::Full, SyncOptions::default())
            .await;
        assert_failed(
            &report,
            "host",
            &["delete refused", "id contains control characters"],
        );
    }
    // What the attackers planted stays theirs: the `evil` index, and the intruder's own
    // documents in the shared index (the victim's three are checked by the arena).
    assert_eq!(
        ids_of(&arena, "evil", "news", "news").await,
        [
            "../victim/news/a",
            "../victim/news/b",
            "../victim/news/c",
            "news/a",
            "news/b",
            "news/c"
        ]
    );
    assert_eq!(ids_of(&arena, "victim", "news", "intruder").await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_that_are_not_utf8_are_rejected_at_the_boundary() {
    let arena = Arena::new(vec![hostile("utf8", json!({"attack": "invalid-utf8"}))]).await;
    let report = arena.attack("utf8").await;
    let error = assert_failed(&report, "trap", &["full-sync"]);
    assert!(error.message.to_lowercase().contains("utf-8"), "{error:?}");
    assert_eq!(report.counts.received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_ids_are_rejected() {
    let arena = Arena::new(vec![hostile(
        "long-id",
        json!({"attack": "oversized-id", "size": 100_000}),
    )])
    .await;
    let report = arena.attack("long-id").await;
    assert_failed(
        &report,
        "host",
        &["InvalidDocument", "id must be 1 to 512 bytes, got 100000"],
    );
    assert_eq!(report.counts.received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_fields_are_rejected() {
    let arena = Arena::new(vec![hostile(
        "fat",
        json!({"attack": "oversized-fields", "size": 200_000}),
    )])
    .await;
    let report = arena.attack("fat").await;
    assert_failed(
        &report,
        "host",
        &[
            "InvalidDocument",
            &format!("the limit is {MAX_FIELDS_BYTES}"),
        ],
    );
    assert_eq!(report.counts.received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_fields_are_rejected_without_recursing() {
    let arena = Arena::new(vec![hostile(
        "deep",
        json!({"attack": "deep-json", "size": 20_000}),
    )])
    .await;
    let report = arena.attack("deep").await;
    assert_failed(
        &report,
        "host",
        &["InvalidDocument", "recursion limit exceeded"],
    );
}
