//! Documents per second into the sinks, for several bulk sizes.
//!
//! `cargo bench -p tributary --bench sink` (add `-- <docs>` to change the document count).
//! The Elasticsearch sink writes to the in-process wire-compatible test server, so the figures
//! measure the client side (serialization, bulk batching, concurrency, HTTP) plus that
//! server's JSON handling — not a real cluster's indexing speed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use serde_json::{Value, json};
use tributary_fakes::elasticsearch::FakeElasticsearch;
use tributary_host::sink::elasticsearch::{ElasticsearchConfig, ElasticsearchSink};
use tributary_host::sink::embedded::EmbeddedIndex;
use tributary_host::sink::{IndexRef, Sink, SinkDocument};

fn docs(n: usize) -> Vec<SinkDocument> {
    let body = "The quarterly report shows revenue growth across every region. ".repeat(16);
    (0..n)
        .map(|i| {
            let Value::Object(fields) = json!({
                "id": format!("doc-{i}"), "title": format!("Document {i}"),
                "path": format!("/reports/{i}.pdf"), "size": i * 17,
                "_timestamp": "2024-05-01T10:00:00Z", "_allow_access_control": ["email:ann@example.com"],
            }) else {
                unreachable!()
            };
            SinkDocument {
                id: format!("doc-{i}"),
                connector: "bench".into(),
                version: Some("2024-05-01T10:00:00Z".into()),
                fields,
                body: Some(body.clone()),
            }
        })
        .collect()
}

async fn run(sink: &dyn Sink, index: &str, all: &[SinkDocument], call_size: usize) -> f64 {
    let ix = IndexRef::new("bench", index);
    let started = Instant::now();
    for chunk in all.chunks(call_size) {
        sink.upsert(ix.clone(), chunk.to_vec()).await.unwrap();
    }
    sink.commit(ix).await.unwrap();
    all.len() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let all = docs(n);
    let bytes: usize = all
        .iter()
        .map(|d| {
            serde_json::to_vec(&d.fields).unwrap().len() + d.body.as_ref().map_or(0, String::len)
        })
        .sum();
    println!(
        "{n} documents, {:.1} KiB each on average (upsert calls of max(500, bulk_max_docs) documents)",
        bytes as f64 / n as f64 / 1024.0
    );
    let es = FakeElasticsearch::start().await.unwrap();
    es.set_refresh_interval(None);
    for (bulk_docs, concurrency) in [(100, 5), (500, 1), (500, 5), (2000, 5)] {
        let sink = ElasticsearchSink::new(&ElasticsearchConfig {
            host: es.url(),
            bulk_max_docs: bulk_docs,
            bulk_max_bytes: 16 * 1024 * 1024,
            bulk_concurrency: concurrency,
            ..Default::default()
        })
        .unwrap();
        let index = format!("bench-{bulk_docs}-{concurrency}");
        let rate = run(&sink, &index, &all, bulk_docs.max(500)).await;
        let stats = es.bulk_stats();
        es.reset_bulk_stats();
        println!(
            "elasticsearch (test server)  bulk_max_docs {bulk_docs:>5}  concurrency {concurrency}  {rate:>9.0} docs/s  ({} bulk requests, at most {} at once)",
            stats.requests, stats.max_concurrent
        );
        // A full sync that finds everything vanished: owner-checked deletes (`_mget`, then
        // conditional bulk deletes).
        let ix = IndexRef::new("bench", index.as_str());
        let ids: Vec<String> = all.iter().map(|d| d.id.clone()).collect();
        let started = Instant::now();
        for chunk in ids.chunks(bulk_docs.max(500)) {
            sink.delete(ix.clone(), "bench".into(), chunk.to_vec())
                .await
                .unwrap();
        }
        sink.commit(ix).await.unwrap();
        let rate = n as f64 / started.elapsed().as_secs_f64();
        es.reset_bulk_stats();
        println!(
            "elasticsearch (test server)  bulk_max_docs {bulk_docs:>5}  concurrency {concurrency}  {rate:>9.0} deletes/s"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedIndex::new(dir.path());
    for call_size in [100, 500, 2000] {
        let rate = run(&embedded, &format!("bench-{call_size}"), &all, call_size).await;
        println!(
            "embedded (tantivy)           batch         {call_size:>5}                 {rate:>9.0} docs/s"
        );
    }
}
