//! `tributary demo`: the whole path on one machine with no credentials and no internet.
//!
//! Starts the bundled fake Dropbox and Box servers (`tributary-fakes`), configures one connector
//! for each with the *real* plugins, runs full syncs into the embedded index, changes files at
//! both sources, runs incremental syncs (which fetch only the changes), and searches. The data
//! goes to `<data_dir>/demo`, recreated on every run; compiled plugins are cached in the
//! machine-wide compile cache, so the second run starts faster.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Map, Value, json};
use tributary_fakes::boxapi::{self, FakeBox};
use tributary_fakes::dropbox::{self, FakeDropbox};

use tributary_host::sink::SearchRequest;
use tributary_host::text::truncate;
use tributary_host::{ConnectorSpec, Host, HostConfig, JobStatus, SyncKind};

use crate::report::sync_with_progress;

/// A word that appears only in the files the demo adds, to show incremental syncs at work.
const NEW_WORD: &str = "marzipan";

fn spec(id: &str, plugin: &str, config: Value) -> ConnectorSpec {
    let config: Map<String, Value> = match config {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    ConnectorSpec {
        id: id.into(),
        plugin: plugin.into(),
        tenant: "default".into(),
        index: None,
        config,
        rules: Vec::new(),
        advanced_rules: None,
        schedule: Default::default(),
    }
}

/// The connector configurations pointing the real plugins at the fakes.
fn demo_connectors(dropbox: &FakeDropbox, boxes: &FakeBox) -> Vec<ConnectorSpec> {
    vec![
        spec(
            "dropbox",
            "dropbox",
            json!({
                "app_key": dropbox.app_key(),
                "app_secret": dropbox.app_secret(),
                "refresh_token": dropbox.refresh_token(),
                "api_base_url": dropbox.api_url(),
                "content_base_url": dropbox.api_url(),
                "oauth_base_url": dropbox.base_url(),
            }),
        ),
        spec(
            "box",
            "box",
            json!({
                "is_enterprise": "box_free",
                "client_id": boxes.client_id(),
                "client_secret": boxes.client_secret(),
                "refresh_token": boxes.refresh_token(),
                "api_base_url": boxes.base_url(),
            }),
        ),
    ]
}

/// Runs the demo with its data under `data_dir`.
pub async fn run(data_dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    println!(
        "tributary demo: fake Dropbox and Box servers on this machine, the real plugins, the embedded index.\n"
    );
    let dropbox = FakeDropbox::start(dropbox::Tree::demo())
        .await
        .context("starting the fake Dropbox")?;
    let boxes = FakeBox::start(boxapi::Tree::demo())
        .await
        .context("starting the fake Box")?;
    println!(
        "fake Dropbox at {}  ·  fake Box at {}",
        dropbox.base_url(),
        boxes.base_url()
    );

    let demo_dir = data_dir.join("demo");
    if demo_dir.exists() {
        std::fs::remove_dir_all(&demo_dir)
            .with_context(|| format!("clearing {}", demo_dir.display()))?;
    }
    let mut config = HostConfig {
        data_dir: demo_dir.clone(),
        connectors: demo_connectors(&dropbox, &boxes),
        ..HostConfig::default()
    };
    // The demo's connectors name its own loopback fakes: the CLI's policy for the user's config.
    config.http.private_access = tributary_host::net::PrivateAccess::NamedLiterals;
    let host = Host::open_with(
        config,
        tributary_host::OpenOptions {
            create: true,
            on_compile: Some(tributary_cli::progress::compile_hook()),
            ..Default::default()
        },
    )
    .await?;
    println!(
        "data directory {} (recreated on every run)\n",
        demo_dir.display()
    );

    println!("1. Full syncs");
    for id in ["dropbox", "box"] {
        sync_and_print(&host, id, SyncKind::Full).await?;
    }

    println!("\n2. Changes at the sources");
    dropbox.add_file(
        "/Notes/Holiday baking.md",
        format!(
            "# Holiday baking\nThis year: {NEW_WORD} stollen and lebkuchen for the whole team.\n"
        ),
    )?;
    dropbox.edit_file(
        "/Reports/Q3 quarterly revenue.txt",
        "Q3 quarterly revenue report (restated)\n\nRevenue for the third quarter was restated to 4.4 million euros after late invoices.\n",
    )?;
    dropbox.delete("/Notes/Reading list.txt")?;
    println!(
        "   Dropbox: added /Notes/Holiday baking.md, edited /Reports/Q3 quarterly revenue.txt, deleted /Notes/Reading list.txt"
    );
    let notes = boxes
        .find_path("/Notes")
        .context("the demo Box tree has /Notes")?;
    boxes.create_file(
        &notes,
        "Office party menu.md",
        format!("# Office party\nDessert: {NEW_WORD} cake.\n"),
    )?;
    let nda = boxes
        .find_path("/Contracts/Globex NDA (signed).txt")
        .context("the demo Box tree has the Globex NDA")?;
    boxes.trash(&nda)?;
    println!(
        "   Box: added /Notes/Office party menu.md, trashed /Contracts/Globex NDA (signed).txt"
    );

    println!("\n3. Incremental syncs (only the changes are fetched)");
    for id in ["dropbox", "box"] {
        sync_and_print(&host, id, SyncKind::Incremental).await?;
    }

    println!("\n4. Searches");
    for query in [
        "quarterly revenue",
        "master services agreement",
        NEW_WORD,
        "Globex",
    ] {
        for index in ["dropbox", "box"] {
            let results = host
                .search(
                    "default",
                    index,
                    SearchRequest {
                        query: query.into(),
                        limit: 3,
                        ..Default::default()
                    },
                )
                .await?;
            println!("   {index:>7} │ {query:?}: {} match(es)", results.total);
            for hit in results.hits {
                let title = hit.title.as_deref().unwrap_or(&hit.id);
                let path = hit
                    .fields
                    .get("file_path")
                    .or_else(|| hit.fields.get("path"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                println!("           │   {title}  {path}");
                if let Some(snippet) = hit.snippet {
                    let plain = snippet
                        .replace("<b>", "«")
                        .replace("</b>", "»")
                        .replace('\n', " ");
                    println!("           │     {}", truncate(&plain, 110));
                }
            }
        }
    }
    println!(
        "\nDone in {:.1}s. Try `cargo run -- search <words> --index dropbox --data-dir {}`.",
        started.elapsed().as_secs_f64(),
        demo_dir.display()
    );
    println!(
        "For real accounts, write a tributary.toml (see README.md) and run `tributary sync <connector>`."
    );
    Ok(())
}

async fn sync_and_print(host: &Host, id: &str, kind: SyncKind) -> anyhow::Result<()> {
    let report = sync_with_progress(host, None, id, kind).await?;
    for line in report.to_string().lines() {
        println!("   {line}");
    }
    anyhow::ensure!(
        report.status == JobStatus::Succeeded,
        "the demo's {kind} sync of {id} failed"
    );
    Ok(())
}
