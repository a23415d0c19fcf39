//! The example feed plugin through the host: full and incremental syncs, stored cursors,
//! content downloaded and extracted by the host, and failures that delete nothing.

use serde_json::json;
use tributary_fakes::Fault;
use tributary_fakes::feed::FakeFeed;
use tributary_host::{JobStatus, SyncKind};

use crate::support::{connector, host_with};

fn feed_connector(feed: &FakeFeed) -> tributary_host::ConnectorSpec {
    connector(
        "news",
        "feed",
        json!({"base_url": feed.base_url(), "api_token": "s3cret", "page_size": 2, "retry_count": 1}),
    )
}

#[tokio::test]
async fn full_then_incremental_sync_uses_the_stored_cursor() {
    let feed = FakeFeed::start(Some("s3cret")).await.unwrap();
    feed.upsert("a", "Alpha", Some("the first quarterly report"));
    feed.upsert("b", "Beta", Some("holiday schedule"));
    feed.upsert_with_attachment("c", "Gamma", "minutes.html", b"<html><head><style>x{}</style></head><body><p>Board minutes: revenue up</p><script>var hidden=1</script></body></html>");
    let t = host_with(vec![feed_connector(&feed)], |_| {}).await;

    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(
        (
            report.counts.received,
            report.counts.indexed,
            report.counts.content_extracted
        ),
        (3, 3, 1)
    );
    let docs = t.documents("news").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(
        docs["a"].body.as_deref(),
        Some("the first quarterly report")
    );
    assert_eq!(
        docs["c"].body.as_deref(),
        Some("Board minutes: revenue up"),
        "visible HTML text only"
    );
    assert_eq!(docs["c"].fields["title"], json!("Gamma"));
    assert_eq!(
        t.state("news", "cursor").await,
        Some(json!({"version": 1, "state": feed.cursor()}))
    );

    // The index is searchable.
    let hits = t
        .host
        .search(
            "default",
            "news",
            tributary_host::sink::SearchRequest {
                query: "revenue".into(),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        hits.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["c"]
    );

    // Changes: one edit, one deletion, one addition. The incremental run asks only for them.
    feed.upsert("b", "Beta", Some("holiday schedule, revised"));
    feed.delete("a");
    feed.upsert("d", "Delta", Some("new hire onboarding"));
    feed.faults().reset_log();
    let report = t.sync_ok("news", SyncKind::Incremental).await;
    assert_eq!((report.counts.received, report.counts.deleted), (2, 1));
    let docs = t.documents("news").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["b", "c", "d"]);
    assert_eq!(docs["b"].body.as_deref(), Some("holiday schedule, revised"));
    assert_eq!(
        t.state("news", "cursor").await,
        Some(json!({"version": 1, "state": feed.cursor()}))
    );
    let requests = feed.faults().seen();
    assert!(
        requests
            .iter()
            .all(|r| !r.path.starts_with("/items") || r.path.contains("since=")),
        "{requests:?}"
    );

    // A second full sync skips unchanged documents and downloads nothing again.
    feed.faults().reset_log();
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(
        (
            report.counts.unchanged,
            report.counts.indexed,
            report.counts.deleted
        ),
        (3, 0, 0)
    );
    assert_eq!(feed.faults().count("/files/"), 0);
}

#[tokio::test]
async fn a_listing_that_fails_after_retries_fails_the_sync_and_deletes_nothing() {
    let feed = FakeFeed::start(None).await.unwrap();
    for i in 0..5 {
        feed.upsert(&format!("item-{i}"), &format!("Item {i}"), Some("text"));
    }
    let t = host_with(vec![feed_connector(&feed)], |_| {}).await;
    t.sync_ok("news", SyncKind::Full).await;
    let cursor = t.state("news", "cursor").await;

    feed.delete("item-0");
    // The second page fails on every attempt (1 try + 1 retry).
    feed.faults()
        .add_after("/items", 1, 2, Fault::server_error(503));
    let report = t.sync("news", SyncKind::Full).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap();
    assert_eq!(error.kind, "transient", "{error:?}");
    assert!(error.message.contains("HTTP 503"), "{error:?}");
    assert_eq!(t.documents("news").await.len(), 5, "nothing deleted");
    assert_eq!(t.state("news", "cursor").await, cursor, "cursor untouched");

    // Transient faults within the retry budget are absorbed; the deletion then lands.
    feed.faults().add("/items", 1, Fault::too_many_requests(1));
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(report.counts.deleted, 1);
    assert_eq!(t.documents("news").await.len(), 4);
}

#[tokio::test]
async fn sync_rules_exclude_documents_before_download() {
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert("keep", "Keep me", Some("x"));
    feed.upsert_with_attachment("drop", "Draft notes", "draft.txt", b"secret draft");
    let mut spec = feed_connector(&feed);
    spec.rules = serde_json::from_value(
        json!([{"field": "title", "rule": "starts_with", "value": "Draft", "policy": "exclude"}]),
    )
    .unwrap();
    let t = host_with(vec![spec], |_| {}).await;
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(report.counts.filtered, 1);
    assert_eq!(
        t.documents("news").await.keys().collect::<Vec<_>>(),
        ["keep"]
    );
    assert_eq!(
        feed.faults().count("/files/"),
        0,
        "excluded content is never downloaded"
    );
}

#[tokio::test]
async fn connectors_are_validated_and_pinged() {
    let feed = FakeFeed::start(Some("s3cret")).await.unwrap();
    let good = feed_connector(&feed);
    let mut wrong_token = feed_connector(&feed);
    wrong_token.id = "wrong".into();
    wrong_token.config.insert("api_token".into(), json!("nope"));
    let mut typo = feed_connector(&feed);
    typo.id = "typo".into();
    typo.config.insert("page_sise".into(), json!(5));
    let t = host_with(
        vec![good.clone(), wrong_token.clone(), typo.clone()],
        |_| {},
    )
    .await;
    t.host.validate_connector(&good, true).await.unwrap();
    // The configuration is fine; only pinging the source shows the token is wrong.
    t.host
        .validate_connector(&wrong_token, false)
        .await
        .unwrap();
    let error = t
        .host
        .validate_connector(&wrong_token, true)
        .await
        .unwrap_err();
    assert!(error.message.contains("401"), "{error:?}");
    let error = t.host.validate_connector(&typo, false).await.unwrap_err();
    assert_eq!(error.kind, "config");
    assert!(
        error.message.contains("unknown setting `page_sise`"),
        "{error:?}"
    );
}
