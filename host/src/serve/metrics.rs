//! Service counters and their Prometheus text rendering (`GET /metrics`).
//!
//! Labels stay bounded: per status and per plugin version, never per tenant or job (a host with
//! thousands of tenants must not explode a scraper's series count).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::job::CountsSnapshot;
use crate::job::JobStatus;
use crate::plugin::PluginInfo;

/// Counters since the service started.
#[derive(Default)]
pub struct Metrics {
    finished: Mutex<BTreeMap<&'static str, u64>>,
    indexed: AtomicU64,
    deleted: AtomicU64,
    content_failed: AtomicU64,
    activations: AtomicU64,
    requests: AtomicU64,
    denied: AtomicU64,
}

/// Point-in-time values rendered with the counters.
pub struct Gauges {
    /// Tenants.
    pub tenants: usize,
    /// Connectors.
    pub connectors: usize,
    /// Jobs holding a slot.
    pub running: usize,
    /// Jobs waiting.
    pub queued: usize,
    /// Loaded plugin versions.
    pub plugins: Vec<PluginInfo>,
}

impl Metrics {
    /// Counts a finished job.
    pub fn job_finished(&self, status: JobStatus, counts: &CountsSnapshot) {
        if let Ok(mut f) = self.finished.lock() {
            *f.entry(status.as_str()).or_default() += 1;
        }
        self.indexed.fetch_add(counts.indexed, Ordering::Relaxed);
        self.deleted.fetch_add(counts.deleted, Ordering::Relaxed);
        self.content_failed
            .fetch_add(counts.content_failed, Ordering::Relaxed);
    }

    /// Counts a plugin activation (upload, watch, activate, roll back).
    pub fn plugin_activated(&self) {
        self.activations.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an authenticated API request (once per request).
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused for its token or scope (401, 403, or 404 for another tenant's).
    pub fn denied(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "tributary_tenants",
            "gauge",
            "Tenants configured.",
            vec![(String::new(), g.tenants as u64)],
        );
        metric(
            "tributary_connectors",
            "gauge",
            "Connectors configured.",
            vec![(String::new(), g.connectors as u64)],
        );
        metric(
            "tributary_jobs_running",
            "gauge",
            "Sync jobs running.",
            vec![(String::new(), g.running as u64)],
        );
        metric(
            "tributary_jobs_queued",
            "gauge",
            "Sync jobs waiting for a slot.",
            vec![(String::new(), g.queued as u64)],
        );
        let finished = self
            .finished
            .lock()
            .map(|f| {
                f.iter()
                    .map(|(s, n)| (format!("{{status=\"{s}\"}}"), *n))
                    .collect()
            })
            .unwrap_or_default();
        metric(
            "tributary_jobs_finished_total",
            "counter",
            "Sync jobs finished, by outcome.",
            finished,
        );
        metric(
            "tributary_documents_indexed_total",
            "counter",
            "Documents written to the sink by finished jobs.",
            vec![(String::new(), self.indexed.load(Ordering::Relaxed))],
        );
        metric(
            "tributary_documents_deleted_total",
            "counter",
            "Documents deleted by finished jobs.",
            vec![(String::new(), self.deleted.load(Ordering::Relaxed))],
        );
        metric(
            "tributary_content_failures_total",
            "counter",
            "Content downloads or extractions that failed.",
            vec![(String::new(), self.content_failed.load(Ordering::Relaxed))],
        );
        metric(
            "tributary_plugin_activations_total",
            "counter",
            "Plugin versions made active since start.",
            vec![(String::new(), self.activations.load(Ordering::Relaxed))],
        );
        metric(
            "tributary_plugin_info",
            "gauge",
            "Loaded plugin versions (1 = active).",
            g.plugins
                .iter()
                .map(|p| {
                    (
                        format!(
                            "{{name=\"{}\",version=\"{}\",digest=\"{}\"}}",
                            escape(&p.name),
                            escape(&p.version),
                            p.digest
                        ),
                        u64::from(p.active),
                    )
                })
                .collect(),
        );
        metric(
            "tributary_api_requests_total",
            "counter",
            "API requests to routes that need a token.",
            vec![(String::new(), self.requests.load(Ordering::Relaxed))],
        );
        metric(
            "tributary_api_requests_denied_total",
            "counter",
            "API requests refused for authentication or scope.",
            vec![(String::new(), self.denied.load(Ordering::Relaxed))],
        );
        if let Some(rss) = resident_bytes() {
            metric(
                "tributary_process_resident_memory_bytes",
                "gauge",
                "Resident memory of the host process.",
                vec![(String::new(), rss)],
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size of this process (Linux `/proc`), bytes.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
