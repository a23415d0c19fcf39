//! Presenting jobs to people: a live progress line for interactive syncs and a summary.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::{Host, JobReport, JobStatus, SyncKind, SyncOptions};

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

/// A short human summary of a job.
pub fn summary(r: &JobReport) -> String {
    let c = &r.counts;
    let status = match r.status {
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "FAILED",
        JobStatus::Running => "running",
        JobStatus::Queued => "queued",
        JobStatus::Cancelled => "cancelled",
    };
    let mut out = format!(
        "{} sync of {}/{} {status} in {:.1}s ({}@{})\n  received {}, indexed {}, unchanged {}, filtered {}, deleted {}; content: {} extracted, {} skipped, {} failed",
        r.kind,
        r.tenant,
        r.connector,
        r.duration_ms as f64 / 1000.0,
        r.plugin,
        r.plugin_version,
        c.received,
        c.indexed,
        c.unchanged,
        c.filtered,
        c.deleted,
        c.content_extracted,
        c.content_skipped,
        c.content_failed,
    );
    if c.access_control > 0 {
        out.push_str(&format!("; {} access-control documents", c.access_control));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("\n  error: {e}"));
    }
    for w in r.warnings.iter().take(5) {
        out.push_str(&format!("\n  warning: {w}"));
    }
    out
}

/// Prints [`summary`].
pub fn print_report(r: &JobReport) {
    println!("{}", summary(r));
}
