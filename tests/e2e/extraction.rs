//! Text extraction as plugins see it: host-side downloads extracted natively, bytes a plugin
//! holds, the external extraction service, and hostile content that fails only its document.

use axum::routing::{get, put};
use serde_json::json;
use tributary_fakes::FakeServer;
use tributary_fakes::feed::FakeFeed;
use tributary_host::SyncKind;

use crate::support::{connector, host_with};

async fn with_testbed(
    specs: Vec<tributary_host::ConnectorSpec>,
    tweak: impl FnOnce(&mut tributary_host::HostConfig),
) -> crate::support::TestHost {
    let t = host_with(specs, tweak).await;
    let path = tributary_e2e::TESTBED;
    t.host
        .load_plugin(std::fs::read(path).unwrap(), path)
        .await
        .unwrap();
    t
}

#[tokio::test]
async fn plugins_extract_bytes_they_hold_and_bodies_the_host_fetches() {
    let files = FakeServer::start(
        axum::Router::new().route("/table.csv", get(|| async { "name,city\nAda,London\n" })),
    )
    .await
    .unwrap();
    let host_port = files.addr().to_string();
    let t = with_testbed(
        vec![
            connector("held", "testbed", json!({"mode": "extract", "file_name": "page.html", "target": "<html><head><title>x</title></head><body><p>Hello <b>there</b></p><script>nope()</script></body></html>"})),
            connector("fetched", "testbed", json!({"mode": "fetch-text", "file_name": "table.csv", "allowed_host": host_port, "target": format!("{}/table.csv", files.url())})),
            connector("denied", "testbed", json!({"mode": "fetch-text", "file_name": "table.csv", "target": format!("{}/table.csv", files.url())})),
        ],
        |_| {},
    )
    .await;
    t.sync_ok("held", SyncKind::Full).await;
    assert_eq!(
        t.documents("held").await["extracted"].body.as_deref(),
        Some("Hello there")
    );
    t.sync_ok("fetched", SyncKind::Full).await;
    assert_eq!(
        t.documents("fetched").await["extracted"].body.as_deref(),
        Some("name city\nAda London")
    );
    // fetch-text obeys the allowlist like every other request.
    t.sync_ok("denied", SyncKind::Full).await;
    let error = t.documents("denied").await["extracted"].fields["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("not in this plugin's allowed hosts"),
        "{error}"
    );
}

#[tokio::test]
async fn broken_content_fails_only_its_document() {
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert_with_attachment("good", "Good", "notes.md", b"# Notes\nall fine here");
    feed.upsert_with_attachment(
        "garbage",
        "Garbage",
        "scan.pdf",
        b"\x00\x01\x02 definitely not a PDF",
    );
    feed.upsert_with_attachment(
        "truncated",
        "Truncated",
        "report.docx",
        b"PK\x03\x04\x14\x00truncated zip",
    );
    feed.upsert_with_attachment(
        "photo",
        "Photo",
        "beach.jpg",
        b"\xff\xd8\xff\xe0 jpeg bytes",
    );
    let t = host_with(
        vec![connector(
            "news",
            "feed",
            json!({"base_url": feed.base_url()}),
        )],
        |_| {},
    )
    .await;
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(
        (
            report.counts.indexed,
            report.counts.content_extracted,
            report.counts.content_failed,
            report.counts.content_skipped
        ),
        (4, 1, 2, 1),
        "{report:?}"
    );
    let docs = t.documents("news").await;
    assert_eq!(docs["good"].body.as_deref(), Some("# Notes\nall fine here"));
    for id in ["garbage", "truncated", "photo"] {
        assert_eq!(docs[id].body, None, "{id} is indexed without content");
        assert!(docs[id].fields["title"].is_string());
    }
    // Failed extractions are retried by the next full sync (no version recorded); the
    // unsupported photo is not.
    feed.faults().reset_log();
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(
        (report.counts.unchanged, report.counts.content_failed),
        (2, 2)
    );
}

#[tokio::test]
async fn connectors_can_use_an_external_extraction_service() {
    let service = FakeServer::start(axum::Router::new().route(
        "/extract_text/",
        put(|body: axum::body::Bytes| async move {
            axum::Json(json!({"extracted_text": format!("service saw {} bytes", body.len())}))
        }),
    ))
    .await
    .unwrap();
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert_with_attachment("doc", "Doc", "memo.txt", b"twelve bytes");
    let url = service.url();
    let t = host_with(
        vec![
            connector(
                "via-service",
                "feed",
                json!({"base_url": feed.base_url(), "use_text_extraction_service": true}),
            ),
            connector("local", "feed", json!({"base_url": feed.base_url()})),
        ],
        move |c| c.extract.service_url = Some(url),
    )
    .await;
    t.sync_ok("via-service", SyncKind::Full).await;
    assert_eq!(
        t.documents("via-service").await["doc"].body.as_deref(),
        Some("service saw 12 bytes")
    );
    t.sync_ok("local", SyncKind::Full).await;
    assert_eq!(
        t.documents("local").await["doc"].body.as_deref(),
        Some("twelve bytes")
    );

    // Asking for the service on a host without one is a configuration error, not a silent fallback.
    let t = host_with(
        vec![connector(
            "via-service",
            "feed",
            json!({"base_url": feed.base_url(), "use_text_extraction_service": true}),
        )],
        |_| {},
    )
    .await;
    let report = t.sync("via-service", SyncKind::Full).await;
    let error = report.error.unwrap();
    assert_eq!(error.kind, "config");
    assert!(
        error.message.contains("no `[extract] service_url`"),
        "{error:?}"
    );
}
