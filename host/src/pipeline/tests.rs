//! Pipeline tests without wasm: a pipeline driven directly, against the embedded index and a
//! local HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Duration;

use axum::routing::get;
use serde_json::json;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use futures::StreamExt;
use futures::future::BoxFuture;

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
    /// Bytes of `/huge.html` the server has handed to the connection.
    served: Arc<AtomicU64>,
    /// Requests of `/held.txt` being answered now, and the most at once.
    held: Arc<(AtomicUsize, AtomicUsize)>,
    sink: Arc<EmbeddedIndex>,
    deps: PipelineDeps,
    server: tributary_fakes::FakeServer,
    storage: ConnectorState,
    http: Arc<HttpEngine>,
}

async fn fixture() -> Fixture {
    use axum::response::IntoResponse;
    let later_calls = Arc::new(AtomicU64::new(0));
    let held = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let held_route = held.clone();
    let held_text = held.clone();
    let served = Arc::new(AtomicU64::new(0));
    let served_route = served.clone();
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
                "/huge.html",
                get(move || {
                    // 64 MiB of HTML, produced a piece at a time and counted as handed over.
                    let served = served_route.clone();
                    let pieces = futures::stream::iter(0..1024).map(move |_| {
                        let piece = "<p>the same words again and again</p>\n".repeat(1724);
                        served.fetch_add(piece.len() as u64, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(piece)
                    });
                    async move { axum::body::Body::from_stream(pieces) }
                }),
            )
            .route(
                "/late-pdf.txt",
                get(|| async {
                    // A PDF's first 70,000 bytes at once, the other 30,000 80 ms later.
                    let mut head = b"%PDF-1.4\n".to_vec();
                    head.resize(70_000, b'x');
                    let pieces = futures::stream::iter([head, vec![b'x'; 30_000]]).then(
                        |piece| async move {
                            if piece.len() == 30_000 {
                                tokio::time::sleep(Duration::from_millis(80)).await;
                            }
                            Ok::<_, std::convert::Infallible>(piece)
                        },
                    );
                    axum::body::Body::from_stream(pieces)
                }),
            )
            .route(
                "/held-text.txt",
                get(move || held_for(held_text.clone(), b"words ".to_vec())),
            )
            .route(
                "/held.txt",
                get(move || {
                    let held = held_route.clone();
                    async move {
                        let now = held.0.fetch_add(1, Ordering::SeqCst) + 1;
                        held.1.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(60)).await;
                        held.0.fetch_sub(1, Ordering::SeqCst);
                        "x".repeat(1000)
                    }
                }),
            )
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
        download_budget: DownloadBudget::new(1 << 30),
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
        served,
        held,
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

/// 100,000 bytes starting with `start`, answered after 60 ms; `held` counts the answers being
/// made now and the most at once.
async fn held_for(held: Arc<(AtomicUsize, AtomicUsize)>, start: Vec<u8>) -> Vec<u8> {
    let now = held.0.fetch_add(1, Ordering::SeqCst) + 1;
    held.1.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(60)).await;
    held.0.fetch_sub(1, Ordering::SeqCst);
    let mut body = start;
    body.resize(100_000, b'x');
    body
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
            .into_ids();
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
    assert!(versions.is_unversioned("missing"));
}

/// A sink that records the documents and bytes of every upsert batch, then passes it on.
struct Recording {
    inner: Arc<dyn Sink>,
    batches: Mutex<Vec<(usize, usize)>>,
}

impl Sink for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }
    fn upsert(
        &self,
        index: IndexRef,
        docs: Vec<SinkDocument>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        let bytes = docs.iter().map(batch::weight).sum();
        self.batches.lock().unwrap().push((docs.len(), bytes));
        self.inner.upsert(index, docs)
    }
    fn delete(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        self.inner.delete(index, connector, ids)
    }
    fn commit(&self, index: IndexRef) -> BoxFuture<'_, anyhow::Result<()>> {
        self.inner.commit(index)
    }
    fn versions(
        &self,
        index: IndexRef,
        connector: String,
    ) -> BoxFuture<'_, anyhow::Result<crate::sink::Versions>> {
        self.inner.versions(index, connector)
    }
    fn search(
        &self,
        index: IndexRef,
        request: crate::sink::SearchRequest,
    ) -> BoxFuture<'_, anyhow::Result<crate::sink::SearchResults>> {
        self.inner.search(index, request)
    }
    fn indexes(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        self.inner.indexes(tenant)
    }
    fn drop_tenant(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<()>> {
        self.inner.drop_tenant(tenant)
    }
    fn tenants(&self) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        self.inner.tenants()
    }
    fn get(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<SinkDocument>>> {
        self.inner.get(index, connector, ids)
    }
}

#[tokio::test]
async fn batches_are_written_at_the_byte_budget_as_well_as_the_count() {
    let mut f = fixture().await;
    let recording = Arc::new(Recording {
        inner: f.sink.clone(),
        batches: Mutex::default(),
    });
    f.deps.sink = recording.clone();
    f.deps.config.batch_bytes = 10_000;
    f.deps.config.default_download_concurrency = 8;
    let mut p = f.pipeline(SyncKind::Full).await;
    // One call: 20 text bodies of 3,000 bytes, then 20 downloads of 1,000 bytes that finish
    // while the call is still running — far under the 500-document count, far over 10,000 bytes.
    let body = "y".repeat(3000);
    let texts: Vec<Document> = (0..20)
        .map(|i| text_doc(&format!("t{i}"), "v1", &body))
        .collect();
    p.upsert(texts).await.unwrap().unwrap();
    let fetches: Vec<Document> = (0..20)
        .map(|i| f.fetch_doc(&format!("f{i}"), "/held.txt"))
        .collect();
    p.upsert(fetches).await.unwrap().unwrap();
    let counts = p.finish().await.unwrap();
    assert_eq!(counts.indexed, 40);
    let batches = recording.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().map(|b| b.0).sum::<usize>(), 40);
    // A batch is written as soon as it reaches the budget: at most the budget plus one document.
    let largest = batches.iter().map(|b| b.1).max().unwrap();
    assert!(largest < 10_000 + 3_100, "{batches:?}");
    assert!(batches.len() >= 6, "{batches:?}");
    let bodies = f.bodies().await;
    assert_eq!(bodies["t7"].as_deref(), Some(body.as_str()));
    assert_eq!(bodies["f7"].as_deref().map(str::len), Some(1000));
}

fn sized(mut doc: Document, size: Option<u64>, max_bytes: u64) -> Document {
    if let Some(Content::Fetch(req)) = doc.content.as_mut() {
        req.size = size;
        req.max_bytes = max_bytes;
    }
    doc
}

#[tokio::test]
async fn downloads_in_flight_are_bounded_in_bytes_not_only_in_number() {
    let mut f = fixture().await;
    f.deps.config.max_download_bytes_in_flight = 2_500;
    let mut p = f.pipeline(SyncKind::Full).await;
    p.set_concurrency(10);
    // Declared 1,000 bytes each: two fit in the budget at once, whatever the concurrency.
    let docs: Vec<Document> = (0..8)
        .map(|i| {
            sized(
                f.fetch_doc(&format!("d{i}"), "/held.txt"),
                Some(1000),
                1 << 20,
            )
        })
        .collect();
    p.upsert(docs).await.unwrap().unwrap();
    p.checkpoint(vec![]).await.unwrap().unwrap();
    assert_eq!(
        f.held.1.load(Ordering::SeqCst),
        2,
        "two downloads at a time"
    );
    assert_eq!(
        p.downloads.budget().available(),
        2_500,
        "every reservation returned"
    );

    // No declared size: the download limit is reserved (here more than the whole budget), so
    // such downloads run one at a time and still complete.
    f.held.1.store(0, Ordering::SeqCst);
    let docs: Vec<Document> = (0..4)
        .map(|i| sized(f.fetch_doc(&format!("u{i}"), "/held.txt"), None, 1 << 20))
        .collect();
    p.upsert(docs).await.unwrap().unwrap();
    let counts = p.finish().await.unwrap();
    assert_eq!(f.held.1.load(Ordering::SeqCst), 1, "one at a time");
    assert_eq!(counts.content_extracted, 12);
    let bodies = f.bodies().await;
    assert!(
        (0..8)
            .map(|i| format!("d{i}"))
            .chain((0..4).map(|i| format!("u{i}")))
            .all(|id| bodies[&id].as_deref().map(str::len) == Some(1000)),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn finished_downloads_hold_their_text_until_the_pipeline_takes_them() {
    let mut f = fixture().await;
    f.deps.config.max_download_bytes_in_flight = 2_500;
    let mut p = f.pipeline(SyncKind::Full).await;
    p.set_concurrency(10);
    let docs: Vec<Document> = (0..4)
        .map(|i| {
            sized(
                f.fetch_doc(&format!("d{i}"), "/held.txt"),
                Some(1000),
                1 << 20,
            )
        })
        .collect();
    p.upsert(docs).await.unwrap().unwrap();
    // The plugin is busy elsewhere: nothing takes the finished downloads. Their 1,000 bytes
    // of text each stay counted, so the other two cannot start (the next one waits, holding
    // the 500 left). Released at extraction instead, all four would be done by now.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        p.downloads.budget().available() < 1000,
        "two texts held: {} bytes free",
        p.downloads.budget().available()
    );
    assert_eq!(f.held.0.load(Ordering::SeqCst), 0, "none running");
    let counts = p.finish().await.unwrap();
    assert_eq!(counts.content_extracted, 4);
    assert_eq!(p.downloads.budget().available(), 2_500);
}

#[tokio::test]
async fn the_host_budget_bounds_downloads_of_all_jobs_together() {
    let mut f = fixture().await;
    f.deps.download_budget = DownloadBudget::new(2_500);
    let (mut a, mut b) = (
        f.pipeline(SyncKind::Full).await,
        f.pipeline(SyncKind::Incremental).await,
    );
    a.set_concurrency(10);
    b.set_concurrency(10);
    let docs = |prefix: &str| -> Vec<Document> {
        (0..4)
            .map(|i| {
                sized(
                    f.fetch_doc(&format!("{prefix}{i}"), "/held.txt"),
                    Some(1000),
                    1 << 20,
                )
            })
            .collect()
    };
    a.upsert(docs("a")).await.unwrap().unwrap();
    b.upsert(docs("b")).await.unwrap().unwrap();
    let (ca, cb) = tokio::join!(a.finish(), b.finish());
    assert_eq!(
        (ca.unwrap().content_extracted, cb.unwrap().content_extracted),
        (4, 4)
    );
    assert_eq!(
        f.held.1.load(Ordering::SeqCst),
        2,
        "two downloads at a time across both jobs"
    );
    assert_eq!(f.deps.download_budget.available(), 2_500);
}

#[tokio::test]
async fn a_streamed_body_is_read_only_until_its_text_is_full() {
    let mut f = fixture().await;
    f.deps.config.max_body_bytes = 100_000;
    let mut p = f.pipeline(SyncKind::Full).await;
    let doc = sized(f.fetch_doc("huge", "/huge.html"), None, 100 << 20);
    let Some(Content::Fetch(req)) = doc.content.clone() else {
        unreachable!()
    };
    let doc = Document {
        content: Some(Content::Fetch(ContentRequest {
            file_name: "huge.html".into(),
            ..req
        })),
        ..doc
    };
    p.upsert(vec![doc]).await.unwrap().unwrap();
    let counts = p.finish().await.unwrap();
    assert_eq!(counts.content_extracted, 1);
    let body = f.bodies().await.remove("huge").flatten().unwrap();
    assert!(body.starts_with("the same words again and again\n\nthe same"));
    assert!(
        body.len() <= 100_000 && body.len() > 99_000,
        "{}",
        body.len()
    );
    // Read whole, all 64 MiB would have been handed over; streamed, reading stopped once the
    // text was full (what the server wrote ahead into socket buffers is all that follows).
    let served = f.served.load(Ordering::SeqCst);
    assert!(served < 16 << 20, "the server handed over {served} bytes");
}

#[tokio::test]
async fn a_body_whose_head_needs_whole_reading_reserves_the_whole_size() {
    let mut f = fixture().await;
    // Room for two streamed text bodies of 100,000 bytes (each holds its 64 KiB head and at most
    // 1,000 bytes of text), but for one whole body only.
    f.deps.config.max_body_bytes = 1_000;
    f.deps.config.max_download_bytes_in_flight = 150_000;
    let mut p = f.pipeline(SyncKind::Full).await;
    p.set_concurrency(10);
    let docs = |prefix: &str, path: &str| -> Vec<Document> {
        (0..4)
            .map(|i| {
                sized(
                    f.fetch_doc(&format!("{prefix}{i}"), path),
                    Some(100_000),
                    1 << 20,
                )
            })
            .collect()
    };
    p.upsert(docs("t", "/held-text.txt"))
        .await
        .unwrap()
        .unwrap();
    p.checkpoint(vec![]).await.unwrap().unwrap();
    assert_eq!(f.held.1.load(Ordering::SeqCst), 2, "two streamed at a time");

    // Named `.txt` but a PDF: reserved as a streamed body (66,536 bytes), then, once the head
    // shows the format, as the whole body (100,000 bytes) before the rest is read.
    let budget = p.downloads.budget().clone();
    assert_eq!(
        budget.largest(),
        66_536,
        "streamed bodies hold their head and text"
    );
    p.upsert(docs("p", "/late-pdf.txt")).await.unwrap().unwrap();
    p.checkpoint(vec![]).await.unwrap().unwrap();
    assert_eq!(
        budget.largest(),
        100_000,
        "a body read whole reserves its whole size"
    );
    assert_eq!(budget.available(), 150_000, "every share returned");
    p.finish().await.unwrap();
    let bodies = f.bodies().await;
    assert_eq!(bodies["t0"].as_deref().map(str::len), Some(1_000));
}
