//! Service metrics and their exposition (`GET /metrics`), in the OpenMetrics text format through
//! `prometheus-client` (escaping, `_total` suffixes, histogram buckets and the `# EOF` marker are
//! the crate's, not hand-written).
//!
//! Invariants: labels stay bounded — per status, kind and plugin version, and per connector
//! only for the last-success timestamp (one series per configured connector, which the
//! operator bounds with quotas; deleted connectors drop out at the next scrape) — never per
//! job. The `tributary_*` family names and labels are stable (dashboards and the README refer
//! to them); the standard `process_*` families follow Prometheus' client conventions.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::job::JobReport;
use crate::plugin::PluginInfo;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Counters and histograms since the service started.
pub struct Metrics {
    finished: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    indexed: Counter,
    deleted: Counter,
    content_failed: Counter,
    activations: Counter,
    requests: Counter,
    denied: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            finished: Family::default(),
            durations: Family::new_with_constructor(job_duration_histogram as fn() -> Histogram),
            indexed: Counter::default(),
            deleted: Counter::default(),
            content_failed: Counter::default(),
            activations: Counter::default(),
            requests: Counter::default(),
            denied: Counter::default(),
        }
    }
}

/// Buckets from 0.5 s to about 36 hours (×4 each): syncs range from a ping-sized feed to a
/// full crawl of a large Dropbox team.
fn job_duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 4.0, 10))
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
    /// `(tenant, connector, unix seconds)` of each configured connector's last successful sync.
    pub last_success: Vec<(String, String, i64)>,
}

fn gauge(value: usize) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

impl Metrics {
    /// Counts a finished job: its outcome, its duration by kind and outcome, its documents.
    pub fn job_finished(&self, report: &JobReport) {
        let status = report.status.as_str().to_string();
        self.finished
            .get_or_create(&vec![("status".into(), status.clone())])
            .inc();
        self.durations
            .get_or_create(&vec![
                ("kind".into(), report.kind.as_str().to_string()),
                ("status".into(), status),
            ])
            .observe(report.duration_ms as f64 / 1000.0);
        let counts = &report.counts;
        self.indexed.inc_by(counts.indexed);
        self.deleted.inc_by(counts.deleted);
        self.content_failed.inc_by(counts.content_failed);
    }

    /// Counts a plugin activation (upload, watch, activate, roll back).
    pub fn plugin_activated(&self) {
        self.activations.inc();
    }

    /// Counts an authenticated API request (once per request).
    pub fn request(&self) {
        self.requests.inc();
    }

    /// Counts a request refused for its token or scope (401, 403, or 404 for another tenant's).
    pub fn denied(&self) {
        self.denied.inc();
    }

    /// The OpenMetrics text exposition (see [`CONTENT_TYPE`]).
    pub fn render(&self, g: &Gauges) -> String {
        let mut r = Registry::default();
        r.register("tributary_tenants", "Tenants configured", gauge(g.tenants));
        r.register(
            "tributary_connectors",
            "Connectors configured",
            gauge(g.connectors),
        );
        r.register(
            "tributary_jobs_running",
            "Sync jobs running",
            gauge(g.running),
        );
        r.register(
            "tributary_jobs_queued",
            "Sync jobs waiting for a slot",
            gauge(g.queued),
        );
        // Counters are registered without `_total`: the encoder appends it.
        r.register(
            "tributary_jobs_finished",
            "Sync jobs finished, by outcome",
            self.finished.clone(),
        );
        r.register(
            "tributary_job_duration_seconds",
            "Wall-clock duration of finished sync jobs, by kind and outcome",
            self.durations.clone(),
        );
        r.register(
            "tributary_documents_indexed",
            "Documents written to the sink by finished jobs",
            self.indexed.clone(),
        );
        r.register(
            "tributary_documents_deleted",
            "Documents deleted by finished jobs",
            self.deleted.clone(),
        );
        r.register(
            "tributary_content_failures",
            "Content downloads or extractions that failed",
            self.content_failed.clone(),
        );
        r.register(
            "tributary_plugin_activations",
            "Plugin versions made active since start",
            self.activations.clone(),
        );
        let plugins = Family::<Labels, Gauge>::default();
        for p in &g.plugins {
            plugins
                .get_or_create(&vec![
                    ("name".into(), p.name.clone()),
                    ("version".into(), p.version.clone()),
                    ("digest".into(), p.digest.clone()),
                ])
                .set(i64::from(p.active));
        }
        r.register(
            "tributary_plugin_info",
            "Loaded plugin versions (1 = active)",
            plugins,
        );
        let last = Family::<Labels, Gauge>::default();
        for (tenant, connector, at) in &g.last_success {
            last.get_or_create(&vec![
                ("tenant".into(), tenant.clone()),
                ("connector".into(), connector.clone()),
            ])
            .set(*at);
        }
        r.register(
            "tributary_connector_last_success_timestamp_seconds",
            "When the connector's last successful sync finished, Unix seconds (absent: never)",
            last,
        );
        r.register(
            "tributary_api_requests",
            "API requests to routes that need a token",
            self.requests.clone(),
        );
        r.register(
            "tributary_api_requests_denied",
            "API requests refused for authentication or scope",
            self.denied.clone(),
        );
        let process = ProcessStats::read();
        if let Some(rss) = process.resident_bytes {
            r.register(
                "tributary_process_resident_memory_bytes",
                "Resident memory of the host process (same as process_resident_memory_bytes)",
                gauge_u64(rss),
            );
            r.register(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                gauge_u64(rss),
            );
        }
        if let Some(cpu) = process.cpu_seconds {
            let c = Counter::<f64, AtomicU64>::default();
            c.inc_by(cpu);
            r.register(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                c,
            );
        }
        if let Some(start) = process.start_time_seconds {
            let s = FloatGauge::default();
            s.set(start);
            r.register(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                s,
            );
        }
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would leave a partial text.
        if let Err(e) = encode(&mut out, &r) {
            tracing::error!("metrics encoding failed: {e}");
        }
        out
    }
}

fn gauge_u64(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

/// What `/proc/self` says about this process (Linux); each `None` elsewhere or when unreadable.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    resident_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
}

/// Clock ticks per second in `/proc/<pid>/stat`: `USER_HZ`, fixed at 100 by the kernel's ABI on
/// the architectures we ship (the library denies `unsafe`, so no `sysconf` call).
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let boot = std::fs::read_to_string("/proc/stat").ok();
        let mut stats = stat
            .as_deref()
            .map(|s| parse_stat(s, boot.as_deref()))
            .unwrap_or_default();
        stats.resident_bytes = resident_bytes();
        stats
    }
}

/// CPU time and start time from `/proc/self/stat` (and the boot time from `/proc/stat`).
fn parse_stat(stat: &str, proc_stat: Option<&str>) -> ProcessStats {
    // The command name (field 2) is in parentheses and may hold spaces: fields after it.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return ProcessStats::default();
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15, starttime 22.
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse::<f64>().ok() };
    let cpu_seconds = match (field(14), field(15)) {
        (Some(u), Some(s)) => Some((u + s) / USER_HZ),
        _ => None,
    };
    let boot = proc_stat.and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let start_time_seconds = match (boot, field(22)) {
        (Some(boot), Some(ticks)) => Some(boot + ticks / USER_HZ),
        _ => None,
    };
    ProcessStats {
        resident_bytes: None,
        cpu_seconds,
        start_time_seconds,
    }
}

/// Resident set size of this process (Linux `/proc`), bytes.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::job::{CountsSnapshot, JobStatus, SyncKind};

    fn finished(kind: SyncKind, status: JobStatus, ms: u64, indexed: u64) -> JobReport {
        JobReport {
            id: "j".into(),
            tenant: "t".into(),
            connector: "c".into(),
            kind,
            plugin: "feed".into(),
            plugin_version: "1".into(),
            status,
            counts: CountsSnapshot {
                indexed,
                ..Default::default()
            },
            error: None,
            warnings: vec![],
            started_at: 0,
            finished_at: Some(1),
            duration_ms: ms,
        }
    }

    /// Every line is a comment (`# HELP|TYPE|UNIT|EOF`) or `name{labels} value` with a valid
    /// metric name, balanced quoted labels and a number; the text ends with `# EOF`.
    fn assert_well_formed(text: &str) {
        assert!(text.ends_with("# EOF\n"), "{text}");
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                let word = comment.split(' ').next().unwrap();
                assert!(
                    ["HELP", "TYPE", "UNIT", "EOF"].contains(&word),
                    "bad comment: {line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(
                value.parse::<f64>().is_ok() || value == "+Inf",
                "bad value: {line}"
            );
            let name_end = series.find('{').unwrap_or(series.len());
            let name = &series[..name_end];
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                    && !name.starts_with(|c: char| c.is_ascii_digit()),
                "bad name: {line}"
            );
            if name_end < series.len() {
                let labels = &series[name_end..];
                assert!(labels.ends_with('}'), "bad labels: {line}");
                // Unescaped quotes come in pairs.
                let quotes = labels
                    .char_indices()
                    .filter(|(i, c)| *c == '"' && !labels[..*i].ends_with('\\'))
                    .count();
                assert_eq!(quotes % 2, 0, "unbalanced labels: {line}");
            }
        }
    }

    #[test]
    fn exposition_is_well_formed_and_keeps_every_family() {
        let m = Metrics::default();
        m.job_finished(&finished(SyncKind::Full, JobStatus::Succeeded, 1500, 7));
        m.job_finished(&finished(SyncKind::Incremental, JobStatus::Failed, 100, 0));
        m.request();
        m.denied();
        m.plugin_activated();
        let text = m.render(&Gauges {
            tenants: 2,
            connectors: 3,
            running: 1,
            queued: 4,
            plugins: vec![PluginInfo {
                name: "evil\"name\n".into(),
                version: "1.0.0".into(),
                display_name: String::new(),
                description: String::new(),
                source: String::new(),
                digest: "abcd".into(),
                active: true,
            }],
            last_success: vec![("t".into(), "c".into(), 1_700_000_000)],
        });
        assert_well_formed(&text);
        for line in [
            "tributary_tenants 2\n",
            "tributary_connectors 3\n",
            "tributary_jobs_running 1\n",
            "tributary_jobs_queued 4\n",
            "tributary_jobs_finished_total{status=\"succeeded\"} 1\n",
            "tributary_jobs_finished_total{status=\"failed\"} 1\n",
            "tributary_documents_indexed_total 7\n",
            "tributary_documents_deleted_total 0\n",
            "tributary_content_failures_total 0\n",
            "tributary_plugin_activations_total 1\n",
            "tributary_api_requests_total 1\n",
            "tributary_api_requests_denied_total 1\n",
            // A hostile plugin name is escaped, not breaking the line.
            "tributary_plugin_info{name=\"evil\\\"name\\n\",version=\"1.0.0\",digest=\"abcd\"} 1\n",
            "tributary_connector_last_success_timestamp_seconds{tenant=\"t\",connector=\"c\"} 1700000000\n",
            // 1.5 s falls in the 2 s bucket, not the 0.5 s one.
            "tributary_job_duration_seconds_bucket{le=\"0.5\",kind=\"full\",status=\"succeeded\"} 0\n",
            "tributary_job_duration_seconds_bucket{le=\"2.0\",kind=\"full\",status=\"succeeded\"} 1\n",
            "tributary_job_duration_seconds_count{kind=\"incremental\",status=\"failed\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        for family in [
            "# TYPE tributary_job_duration_seconds histogram",
            "# TYPE process_cpu_seconds counter",
            "# TYPE process_start_time_seconds gauge",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE tributary_process_resident_memory_bytes gauge",
        ] {
            assert!(text.contains(family), "missing {family} in:\n{text}");
        }
    }

    #[test]
    fn process_stats_come_from_proc_stat() {
        // Field 2 holds a space and a parenthesis; utime 250 + stime 150 ticks; start 1000 ticks.
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 8 0 1000 1000000 500";
        let got = parse_stat(stat, Some("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"));
        assert_eq!(got.cpu_seconds, Some(4.0));
        assert_eq!(got.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(parse_stat("garbage", None), ProcessStats::default());
        // The real file parses on Linux, and this process started before now.
        if cfg!(target_os = "linux") {
            let me = ProcessStats::read();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            assert!(me.start_time_seconds.unwrap() <= now + 1.0);
            assert!(me.cpu_seconds.unwrap() >= 0.0);
            assert!(me.resident_bytes.unwrap() > 0);
        }
    }
}
