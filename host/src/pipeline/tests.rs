//! Pipeline tests without wasm: a pipeline driven directly, against the embedded index and a
//! local HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Duration;

use axum::routing::get;
use serde_json::json;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use super::*;
use crate::bindings::http::{Method, Request};
use crate::bindings::index::ContentRequest;
use crate::db::Db;
use crate::extraction::{ExtractConfig, Extractors};
use crate::kv::{Namespace, StorageLimits};
use crate::net::{Allowlist, HttpConfig, HttpEngine};
use crate::sink::embedded::EmbeddedIndex;

struct Fixture {
    _dir: tempfile::TempDir,
    sink: Arc<EmbeddedIndex>,
    deps: PipelineDeps,
    server: tributary_fakes::FakeServer,
    storage: ConnectorState,
    http: Arc<HttpEngine>,
}

async fn fixture() -> Fixture {
    use axum::response::IntoResponse;
    let later_calls = Arc::new(AtomicU64::new(0));
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(EmbeddedIndex::new(dir.path()));
    let server = tributary_fakes::FakeServer::start(
        axum::Router::new()
            .route(
                "/slow.txt",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow body"
                }),
            )
            .route("/fast.txt", get(|| async { "fast body" }))
            .route(
                "/later.txt",
                get(move || {
                    let calls = later_calls.clone();
                    async move {
                        // Box answers 202 + Retry-After while a new upload is processed.
                        if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                            (axum::http::StatusCode::ACCEPTED, [("retry-after", "0")], "")
                                .into_response()
                        } else {
                            "ready now".into_response()
                        }
                    }
                }),
            ),
    )
    .await
    .unwrap();
    let deps = PipelineDeps {
        sink: sink.clone(),
        extract: Arc::new(Extraction::new(
            Arc::new(Extractors::new(&ExtractConfig::default()).unwrap()),
            false,
        )),
        config: PipelineConfig::default(),
    };
    let storage = ConnectorState::new(
        Db::in_memory().unwrap(),
        Namespace {
            tenant: "t".into(),
            connector: "c".into(),
        },
        StorageLimits::default(),
    );
    Fixture {
        _dir: dir,
        sink,
        deps,
        server,
        storage,
        http: Arc::new(
            HttpEngine::new(HttpConfig {
                // The operator's path to the loopback fake.
                allow_private: vec!["127.0.0.1".parse().unwrap()],
                ..HttpConfig::default()
            })
            .unwrap(),
        ),
    }
}

impl Fixture {
    async fn pipeline(&self, kind: SyncKind) -> Pipeline {
        let allow = Allowlist::parse(&[self.server.addr().to_string()]).unwrap();
        self.start(
            kind,
            Egress::with_allowlist(self.http.clone(), allow),
            Arc::default(),
        )
        .await
    }

    async fn start(&self, kind: SyncKind, egress: Egress, cancelled: Arc<AtomicBool>) -> Pipeline {
        let scope = JobScope {
            kind,
            index: IndexRef::new("t", "docs"),
            connector: "c".into(),
            rules: Rules::default(),
            cancelled,
        };
        Pipeline::start(self.deps.clone(), scope, egress, self.storage.clone())
            .await
            .unwrap()
    }

    fn fetch_doc(&self, id: &str, path: &str) -> Document {
        Document {
            id: id.into(),
            timestamp: Some("v1".into()),
            fields: json!({"name": id}).to_string(),
            content: Some(Content::Fetch(ContentRequest {
                request: Request {
                    method: Method::Get,
                    url: format!("{}{path}", self.server.url()),
                    headers: vec![],
                    body: None,
                    timeout_ms: None,
                },
                file_name: "f.txt".into(),
                mime_type: None,
                size: None,
                max_bytes: 1 << 20,
                retries: 0,
            })),
        }
    }

    async fn bodies(&self) -> HashMap<String, Option<String>> {
        let ix = IndexRef::new("t", "docs");
        let ids: Vec<String> = self
            .sink
            .versions(ix.clone(), "c".into())
            .await
            .unwrap()
            .into_keys()
            .collect();
        self.sink
            .get(ix, "c".into(), ids)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.id, d.body))
            .collect()
    }
}

fn text_doc(id: &str, version: &str, body: &str) -> Document {
    Document {
        id: id.into(),
        timestamp: Some(version.into()),
        fields: json!({"name": id}).to_string(),
        content: Some(Content::Text(body.into())),
    }
}

#[tokio::test]
async fn full_sync_skips_unchanged_and_deletes_vanished() {
    let f = fixture().await;
    let mut first = f.pipeline(SyncKind::Full).await;
    first
        .upsert(vec![text_doc("a", "v1", "A"), text_doc("b", "v1", "B")])
        .await
        .unwrap()
        .unwrap();
    first.finish().await.unwrap();

    let mut second = f.pipeline(SyncKind::Full).await;
    second
        .upsert(vec![text_doc("a", "v1", "A"), text_doc("c", "v1", "C")])
        .await
        .unwrap()
        .unwrap();
    let counts = second.finish().await.unwrap();
    assert_eq!(
        (counts.unchanged, counts.indexed, counts.deleted),
        (1, 1, 1)
    );
    let bodies = f.bodies().await;
    assert_eq!(
        bodies
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        ["a", "c"].map(String::from).into()
    );

    // A failed sync deletes nothing.
    let mut failed = f.pipeline(SyncKind::Full).await;
    failed
        .upsert(vec![text_doc("d", "v1", "D")])
        .await
        .unwrap()
        .unwrap();
    failed.abort().await.unwrap();
    assert_eq!(f.bodies().await.len(), 3, "a, c kept and d written");
}

#[tokio::test]
async fn later_operations_win_over_downloads_in_flight() {
    let f = fixture().await;
    let mut p = f.pipeline(SyncKind::Incremental).await;
    // Upsert with a slow download, then delete before it finishes: the document stays gone.
    p.upsert(vec![f.fetch_doc("gone", "/slow.txt")])
        .await
        .unwrap()
        .unwrap();
    p.delete(vec!["gone".into()]).await.unwrap().unwrap();
    // Upsert with a slow download, then replace with text: the text wins.
    p.upsert(vec![f.fetch_doc("replaced", "/slow.txt")])
        .await
        .unwrap()
        .unwrap();
    p.upsert(vec![text_doc("replaced", "v2", "newer")])
        .await
        .unwrap()
        .unwrap();
    p.upsert(vec![f.fetch_doc("fetched", "/fast.txt")])
        .await
        .unwrap()
        .unwrap();
    let mut later = f.fetch_doc("later", "/later.txt");
    if let Some(Content::Fetch(req)) = later.content.as_mut() {
        req.retries = 1;
    }
    p.upsert(vec![later]).await.unwrap().unwrap();
    let failures = p
        .checkpoint(vec![("cursor".into(), Some(b"42".to_vec()))])
        .await
        .unwrap()
        .unwrap();
    assert!(failures.is_empty());
    let bodies = f.bodies().await;
    assert!(!bodies.contains_key("gone"), "{bodies:?}");
    assert_eq!(bodies["replaced"].as_deref(), Some("newer"));
    assert_eq!(bodies["fetched"].as_deref(), Some("fast body"));
    assert_eq!(
        bodies["later"].as_deref(),
        Some("ready now"),
        "202 is retried, not indexed as empty"
    );
    assert_eq!(
        f.storage.get("cursor".into()).await.unwrap(),
        Some(b"42".to_vec())
    );
}

#[tokio::test]
async fn bad_documents_and_cancellation_are_reported() {
    let f = fixture().await;
    let mut p = f.pipeline(SyncKind::Full).await;
    let bad = Document {
        id: "x".into(),
        timestamp: None,
        fields: "[1, 2]".into(),
        content: None,
    };
    let err = p
        .upsert(vec![text_doc("ok", "v1", "fine"), bad])
        .await
        .unwrap()
        .unwrap_err();
    match err {
        IndexError::InvalidDocument(m) => {
            assert!(m.contains("document 1") && m.contains("JSON object"), "{m}")
        }
        other => panic!("unexpected {other:?}"),
    }
    p.finish().await.unwrap();
    assert!(
        f.bodies().await.is_empty(),
        "nothing of a rejected call is indexed"
    );

    let cancel = Arc::new(AtomicBool::new(false));
    let mut p = f
        .start(SyncKind::Full, Egress::new(f.http.clone()), cancel.clone())
        .await;
    cancel.store(true, Ordering::Relaxed);
    assert!(matches!(
        p.upsert(vec![text_doc("a", "v", "b")]).await.unwrap(),
        Err(IndexError::Cancelled)
    ));
}

#[tokio::test]
async fn content_failures_come_back_at_checkpoint() {
    let f = fixture().await;
    let mut p = f.pipeline(SyncKind::Full).await;
    p.upsert(vec![f.fetch_doc("missing", "/nope.txt")])
        .await
        .unwrap()
        .unwrap();
    let failures = p.checkpoint(vec![]).await.unwrap().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (failures[0].id.as_str(), failures[0].status),
        ("missing", Some(404))
    );
    let counts = p.finish().await.unwrap();
    assert_eq!(counts.content_failed, 1);
    // Indexed without body and without version, so the next full sync fetches it again.
    let versions = f
        .sink
        .versions(IndexRef::new("t", "docs"), "c".into())
        .await
        .unwrap();
    assert_eq!(versions["missing"], None);
}
