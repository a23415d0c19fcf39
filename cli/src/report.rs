//! Presenting jobs to people: a live progress line for interactive syncs (the only user of
//! indicatif) and the job summary.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use tributary_host::{Host, JobReport, SyncKind, SyncOptions};

/// Runs a sync, drawing a live progress line when stderr is a terminal.
pub async fn sync_with_progress(
    host: &Host,
    tenant: Option<&str>,
    connector: &str,
    kind: SyncKind,
) -> anyhow::Result<JobReport> {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .context("progress style")?,
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("{kind} sync of {connector}: starting"));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let progress_bar = bar.clone();
    let label = format!("{kind} sync of {connector}");
    let options = SyncOptions {
        on_start: Some(Arc::new(move |counters| {
            let bar = progress_bar.clone();
            let label = label.clone();
            tokio::spawn(async move {
                while !bar.is_finished() {
                    let c = counters.snapshot();
                    bar.set_message(format!(
                        "{label}: {} received, {} indexed, {} unchanged, {} extracted",
                        c.received, c.indexed, c.unchanged, c.content_extracted
                    ));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        })),
        ..SyncOptions::default()
    };
    let report = host.sync(tenant, connector, kind, options).await;
    bar.finish_and_clear();
    report
}

/// Prints a job's summary (its `Display`).
pub fn print_report(r: &JobReport) {
    println!("{r}");
}

/// Prints jobs as a table: id, kind, status, start (UTC), duration, plugin, counts, error.
pub fn print_jobs(jobs: &[JobReport]) {
    println!(
        "{:<26} {:<14} {:<10} {:<20} {:>9}  {:<20} RESULT",
        "JOB", "KIND", "STATUS", "STARTED (UTC)", "DURATION", "PLUGIN"
    );
    for job in jobs {
        println!(
            "{:<26} {:<14} {:<10} {:<20} {:>9}  {:<20} indexed {} deleted {} unchanged {}{}",
            job.id,
            job.kind.to_string(),
            job.status.to_string(),
            utc(job.started_at),
            duration(job.duration_ms),
            format!("{}@{}", job.plugin, job.plugin_version),
            job.counts.indexed,
            job.counts.deleted,
            job.counts.unchanged,
            job.error
                .as_ref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        );
    }
}

/// `YYYY-MM-DD HH:MM:SS` of Unix seconds, UTC.
fn utc(secs: i64) -> String {
    let (y, m, d) = tributary_host::clock::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `1.2s`, `3m04s`, `2h05m`.
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_704_153_661), "2024-01-02 00:01:01");
        assert_eq!(duration(1_234), "1.2s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(7_500_000), "2h05m");
    }
}
