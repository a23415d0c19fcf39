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
