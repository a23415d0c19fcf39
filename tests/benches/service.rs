//! The service's figures: plugin instance start time (pooling on and off), hot-swap time from
//! upload to the first job on the new version, and host memory with 1,000 tenants configured
//! and 100 syncs running at once against a local fake feed.
//!
//! `cargo bench -p tributary --bench service` (add `-- <tenants> <concurrent syncs>` to change
//! the 1000 / 100).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary_fakes::faults::Fault;
use tributary_fakes::feed::FakeFeed;
use tributary_host::ConnectorSpec;
use tributary_host::serve::{Service, TenantQuotas};
use tributary_host::{Host, HostConfig, JobStatus, SyncKind, SyncOptions};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rss() -> u64 {
    tributary_host::serve::resident_bytes().unwrap_or(0)
}

fn feed_spec(tenant: &str, id: &str, base_url: &str) -> ConnectorSpec {
    let serde_json::Value::Object(config) = json!({"base_url": base_url, "page_size": 50}) else {
        unreachable!()
    };
    ConnectorSpec {
        id: id.into(),
        plugin: "feed".into(),
        tenant: tenant.into(),
        index: None,
        config,
        rules: Vec::new(),
        advanced_rules: None,
        schedule: Default::default(),
    }
}

fn config(dir: &std::path::Path, pooling: bool, pool: u32) -> HostConfig {
    let mut c = HostConfig {
        data_dir: dir.join("data"),
        // A cold cache per run, as before the machine-wide default.
        cache_dir: Some(dir.join("data/cache")),
        ..HostConfig::default()
    };
    // The fake feed listens on loopback: the operator allows it.
    c.http.allow_private = vec!["127.0.0.1".parse().unwrap()];
    c.runtime.pooling = pooling;
    c.runtime.pool_instances = pool;
    c.service
        .insert("admin_token".into(), "bench-admin-token-0123456789".into());
    c.service.insert("tick_ms".into(), 20.into());
    c
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn instance_start(pooling: bool, base_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::open(config(dir.path(), pooling, 64)).await.unwrap();
    let plugin = host.plugin("feed").unwrap();
    let spec = feed_spec("bench", "feed", base_url);
    let cfg = json!({"base_url": base_url, "page_size": 50, "retry_count": 3, "concurrent_downloads": 10, "use_text_extraction_service": false}).to_string();
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let instance = host
            .instantiate(plugin.clone(), &spec, &cfg, false, &SyncOptions::default())
            .await
            .unwrap();
        times.push(t.elapsed());
        drop(instance);
    }
    println!(
        "instance start (instantiate + allowed-hosts), pooling {}: median {:.0} µs, min {:.0} µs over 200",
        if pooling { "on " } else { "off" },
        median(times.clone()).as_secs_f64() * 1e6,
        times.iter().min().unwrap().as_secs_f64() * 1e6
    );
}

async fn wait(service: &Service, tenant: &str, id: &str) -> tributary_host::JobReport {
    loop {
        let job = service.job(tenant, id).await.unwrap().unwrap();
        if matches!(
            job.status,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        ) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn hot_swap(base_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(Host::open(config(dir.path(), true, 64)).await.unwrap());
    let service = Service::open(host, None).await.unwrap();
    service.start();
    service
        .store()
        .create_tenant("t", None, &TenantQuotas::default())
        .await
        .unwrap();
    let spec = feed_spec("t", "c", base_url);
    service.store().put_connector(&spec, None).await.unwrap();
    let first = service
        .enqueue(
            &spec,
            SyncKind::Full,
            tributary_host::serve::store::QueueReason::Api,
        )
        .await
        .unwrap()
        .into_report()
        .expect("the queue has room");
    wait(&service, "t", &first.id).await;
    let next = std::fs::read(tributary_e2e::FEED_NEXT).unwrap();
    let t = Instant::now();
    service.upload_plugin(next, true).await.unwrap();
    let uploaded = t.elapsed();
    let job = service
        .enqueue(
            &spec,
            SyncKind::Full,
            tributary_host::serve::store::QueueReason::Api,
        )
        .await
        .unwrap()
        .into_report()
        .expect("the queue has room");
    let report = wait(&service, "t", &job.id).await;
    assert_eq!(report.plugin_version, "0.2.0-next");
    let done = t.elapsed();
    println!(
        "hot swap: upload validated + active in {:.0} ms (cold compile, no cache); first job on the new version finished {:.0} ms after the upload began (its own run {} ms)",
        uploaded.as_secs_f64() * 1e3,
        done.as_secs_f64() * 1e3,
        report.duration_ms
    );
    service.stop();
}

async fn many_tenants(tenants: usize, concurrent: usize, base_url: &str, feed: &FakeFeed) {
    let dir = tempfile::tempdir().unwrap();
    let before = rss();
    let mut c = config(dir.path(), true, concurrent as u32 + 8);
    c.service
        .insert("max_concurrent_syncs".into(), (concurrent as i64).into());
    let host = Arc::new(Host::open(c).await.unwrap());
    let service = Service::open(host, None).await.unwrap();
    let opened = rss();
    let t = Instant::now();
    let mut specs = Vec::new();
    for i in 0..tenants {
        let tenant = format!("tenant-{i:04}");
        service
            .store()
            .create_tenant(&tenant, Some(format!("hash-{i}")), &TenantQuotas::default())
            .await
            .unwrap();
        let spec = feed_spec(&tenant, "docs", base_url);
        service.store().put_connector(&spec, None).await.unwrap();
        specs.push(spec);
    }
    let configured = rss();
    println!(
        "{tenants} tenants + connectors configured in {:.2} s; RSS {:.0} MiB before the host, {:.0} MiB host open, {:.0} MiB configured",
        t.elapsed().as_secs_f64(),
        mib(before),
        mib(opened),
        mib(configured)
    );
    // Every listing page waits, so the syncs overlap.
    feed.faults().add(
        "/items",
        1_000_000,
        Fault::Delay(Duration::from_millis(400)),
    );
    service.start();
    let t = Instant::now();
    let mut jobs = Vec::new();
    for spec in specs.iter().take(concurrent) {
        jobs.push(
            service
                .enqueue(
                    spec,
                    SyncKind::Full,
                    tributary_host::serve::store::QueueReason::Api,
                )
                .await
                .unwrap()
                .into_report()
                .expect("the queue has room"),
        );
    }
    let mut peak = 0u64;
    let mut peak_running = 0usize;
    loop {
        let (running, queued) = service.load(None).await.unwrap();
        if running >= peak_running {
            peak_running = running;
            peak = peak.max(rss());
        }
        if running == 0 && queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ok = 0;
    for job in &jobs {
        if wait(&service, &job.tenant, &job.id).await.status == JobStatus::Succeeded {
            ok += 1;
        }
    }
    println!(
        "{concurrent} syncs over {tenants} tenants: {ok} succeeded in {:.1} s, at most {peak_running} at once; peak RSS {:.0} MiB ({:.2} MiB per running sync above the configured host)",
        t.elapsed().as_secs_f64(),
        mib(peak),
        mib(peak.saturating_sub(configured)) / peak_running.max(1) as f64
    );
    service.stop();
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tenants = args.first().copied().unwrap_or(1000);
    let concurrent = args.get(1).copied().unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let feed = FakeFeed::start(None).await.unwrap();
        for i in 0..20 {
            feed.upsert(
                &format!("item-{i}"),
                &format!("Item {i}"),
                Some("Some body text for the bench."),
            );
        }
        let base = feed.base_url();
        instance_start(true, &base).await;
        instance_start(false, &base).await;
        hot_swap(&base).await;
        many_tenants(tenants, concurrent, &base, &feed).await;
    });
}
