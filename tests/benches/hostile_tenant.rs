//! Issue 15, item 6: what a tenant with huge connector records costs everybody else. Four
//! connectors holding 15 MB of `advanced_rules` each are written straight into the store (the
//! API now refuses them: records are at most 256 KiB), then, with the scheduler ticking every
//! 50 ms, another tenant's requests are timed and the process's CPU time and peak memory
//! measured over the same window. (The issue measured, with the scheduler re-reading and
//! parsing every connector on every tick: 2 ms → 3 s per request, 410 → 805 MB.)
//!
//! `cargo bench -p tributary-e2e --bench hostile_tenant` (add `-- <MB per connector>` to change
//! the 15).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary_host::serve::{Service, TenantQuotas, serve};
use tributary_host::{ConnectorSpec, Host, HostConfig};

const ADMIN: &str = "bench-admin-token-0123456789";

/// User + system CPU time of this process, seconds (`/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process, MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mb: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig {
        data_dir: dir.path().join("data"),
        ..HostConfig::default()
    };
    config.service.insert("admin_token".into(), ADMIN.into());
    config.service.insert("tick_ms".into(), 50.into());
    let host = Arc::new(Host::open(config).await.unwrap());
    let service = Service::open(host, None).await.unwrap();
    let store = service.store();
    for tenant in ["big", "small"] {
        store
            .create_tenant(tenant, None, &TenantQuotas::default())
            .await
            .unwrap();
    }
    let rules = "r".repeat(mb << 20);
    for i in 0..4 {
        let spec: ConnectorSpec = serde_json::from_value(json!({
            "id": format!("huge{i}"), "tenant": "big", "plugin": "feed",
            "config": {"base_url": "http://127.0.0.1:9/"},
            "advanced_rules": rules,
            // Scheduled, so the scheduler has to look at them.
            "schedule": {"full_every": "30d"},
        }))
        .unwrap();
        store.put_connector(&spec, None).await.unwrap();
    }
    drop(rules);
    let token = "bench-small-tenant-token-0123456789";
    store
        .set_token("small", tributary_host::serve::token_hash(token))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(service.clone(), listener, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();
    // Let the scheduler read the plan once (and queue the four first syncs, which fail fast:
    // nothing listens on port 9).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let cpu = cpu_seconds();
    let window = Instant::now();
    let mut times = Vec::new();
    while window.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        let response = http
            .get(format!("{base}/v1/tenants/small/connectors"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.bytes().await.unwrap();
        times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = window.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "4 connectors × {mb} MB advanced_rules of tenant `big`, scheduler tick 50 ms, {:.0} s:",
        elapsed
    );
    println!(
        "  tenant `small` GET …/connectors: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  process CPU {:.2} s over {:.0} s ({:.0}% of one core); peak RSS {:.0} MiB; connectors read by the scheduler {} time(s)",
        cpu,
        elapsed,
        100.0 * cpu / elapsed,
        peak_rss_mib(),
        service.schedule_loads()
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
