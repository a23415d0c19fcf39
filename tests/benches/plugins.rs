//! Plugins in Rust, JavaScript and Python through the same host: component size, compile time
//! (cold, and from the compile cache), instantiation time, and host time per document of a full
//! sync against a local fake.
//!
//! ```sh
//! plugins/build-foreign.sh            # once: the JavaScript and Python components
//! cargo bench -p tributary-e2e --bench plugins [-- DOCS]   # DOCS per sync, default 2000
//! ```
//!
//! Rust is `plugins/feed` and Python `plugins/py-jsonapi` against the same fake JSON API
//! (`FakeFeed`, pages of 500); JavaScript is `plugins/js-rss` against `FakeRss` (one feed document
//! listing every entry). "Host time per document" is the wall time of a whole full sync (plugin
//! listing, host pipeline, index commit) divided by the documents indexed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_fakes::feed::FakeFeed;
use tributary_fakes::rss::FakeRss;
use tributary_host::ConnectorSpec;
use tributary_host::plugin::{Engines, InstanceSetup, Runtime};
use tributary_host::{Host, HostConfig, JobStatus, SyncKind, SyncOptions};

struct Row {
    lang: &'static str,
    plugin: &'static str,
    size: usize,
    cold: Duration,
    cached: Duration,
    instantiate: Duration,
    per_doc: Duration,
    docs: u64,
}

fn foreign(name: &str) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/build-foreign.sh");
    let output = std::process::Command::new("bash")
        .arg(script)
        .arg(name)
        .output()
        .expect("running plugins/build-foreign.sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn spec(id: &str, plugin: &str, config: Value) -> ConnectorSpec {
    ConnectorSpec {
        id: id.into(),
        plugin: plugin.into(),
        tenant: "default".into(),
        index: None,
        config: match config {
            Value::Object(m) => m,
            _ => Default::default(),
        },
        rules: Vec::new(),
        advanced_rules: None,
        schedule: Default::default(),
    }
}

/// Compile cold (empty cache) and cached, then instantiate `rounds` times; medians.
async fn runtime_figures(wasm: &[u8], rounds: usize) -> (Duration, Duration, Duration) {
    let config = HostConfig::default();
    let cache = tempfile::tempdir().unwrap();
    let runtime = Arc::new(
        Runtime::new(
            config.limits.clone(),
            &config.runtime,
            Some(cache.path().to_path_buf()),
        )
        .unwrap(),
    );
    let started = Instant::now();
    let component = runtime.compile(wasm).unwrap();
    let cold = started.elapsed();
    let mut cached = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        runtime.compile(wasm).unwrap();
        cached.push(started.elapsed());
    }
    let pre = runtime.pre(&component).unwrap();
    let engines = Engines::new(
        runtime.clone(),
        &config.http,
        &config.extract,
        config.storage.clone(),
        config.pipeline.download_retry(),
    )
    .unwrap();
    let scratch = tributary_host::db::Db::in_memory().unwrap();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let setup = InstanceSetup {
            label: "bench".into(),
            namespace: tributary_host::kv::Namespace {
                tenant: "bench".into(),
                connector: "bench".into(),
            },
            db: &scratch,
            use_service: false,
            storage: None,
            limits: None,
        };
        let started = Instant::now();
        engines.instantiate(&pre, setup).await.unwrap();
        times.push(started.elapsed());
    }
    (cold, median(cached), median(times))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn sync_time(wasm: Vec<u8>, plugin: &str, config: Value, docs: u64, data: &Path) -> Duration {
    let mut host_config = HostConfig {
        data_dir: data.join(plugin),
        cache_dir: Some(data.join("cache")),
        connectors: vec![spec("bench", plugin, config)],
        ..HostConfig::default()
    };
    // The fakes listen on loopback: the operator allows it.
    host_config.http.allow_private = vec!["127.0.0.1".parse().unwrap()];
    let host = Host::open(host_config).await.unwrap();
    host.load_plugin(wasm, plugin).await.unwrap();
    let started = Instant::now();
    let report = host
        .sync(None, "bench", SyncKind::Full, SyncOptions::default())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.status, JobStatus::Succeeded, "{:?}", report.error);
    assert_eq!(report.counts.indexed, docs, "{plugin}");
    elapsed
}

#[tokio::main]
async fn main() {
    let docs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let data = tempfile::tempdir().unwrap();
    let body =
        "Quarterly numbers are in: revenue grew, costs fell, and the board approved the plan.";

    let api = FakeFeed::start(None).await.unwrap();
    let site = FakeRss::start().await.unwrap();
    site.set_window(docs as usize);
    for i in 0..docs {
        api.upsert(&format!("item-{i:05}"), &format!("Item {i}"), Some(body));
        site.publish(
            &format!("entry-{i:05}"),
            &format!("Entry {i}"),
            &format!("<p>{body}</p>"),
        );
    }
    let feed_config = json!({"base_url": api.base_url(), "page_size": 500});

    let rust = tributary_host::bundled::PLUGINS
        .iter()
        .find(|b| b.name == "feed")
        .map(|b| b.wasm.to_vec())
        .expect("the feed plugin is bundled");
    let cases: Vec<(&'static str, &'static str, Vec<u8>, Value)> = vec![
        ("Rust", "feed", rust, feed_config.clone()),
        (
            "JavaScript",
            "rss",
            foreign("js-rss"),
            json!({"feed_url": site.rss_url()}),
        ),
        ("Python", "jsonapi", foreign("py-jsonapi"), feed_config),
    ];
    let mut rows = Vec::new();
    for (lang, plugin, wasm, config) in cases {
        eprintln!("bench: {lang} ({plugin}, {} bytes)…", wasm.len());
        let (cold, cached, instantiate) = runtime_figures(&wasm, 20).await;
        let size = wasm.len();
        let elapsed = sync_time(wasm, plugin, config, docs, data.path()).await;
        rows.push(Row {
            lang,
            plugin,
            size,
            cold,
            cached,
            instantiate,
            per_doc: elapsed / u32::try_from(docs).unwrap_or(u32::MAX).max(1),
            docs,
        });
    }

    println!(
        "\n{:<11} {:<8} {:>10} {:>14} {:>14} {:>13} {:>14}",
        "language",
        "plugin",
        "size",
        "compile cold",
        "compile cached",
        "instantiate",
        "host/document"
    );
    for r in &rows {
        println!(
            "{:<11} {:<8} {:>8.1}MB {:>12.2} s {:>11.1} ms {:>10.2} ms {:>11.1} µs",
            r.lang,
            r.plugin,
            r.size as f64 / 1e6,
            r.cold.as_secs_f64(),
            r.cached.as_secs_f64() * 1e3,
            r.instantiate.as_secs_f64() * 1e3,
            r.per_doc.as_secs_f64() * 1e6,
        );
    }
    println!(
        "({} documents per full sync; compile cached = loading the compile cache; instantiate = fresh store + instantiation, median of 20)",
        rows.first().map(|r| r.docs).unwrap_or(docs)
    );
}
