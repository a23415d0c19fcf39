//! `tributary plugin run <file.wasm|name> --settings '{…}' [--search q]`: the quickest way from a
//! built plugin to its documents — a full sync into a temporary embedded index (deleted
//! afterwards), with live counts, then the documents it produced and, with `--search`, a search
//! over them. Nothing is written to the data directory; compiled components go to the
//! machine-wide compile cache like every other command's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use tributary_host::config::SinkKind;
use tributary_host::sink::{IndexRef, SearchRequest, SearchResults, SinkDocument};
use tributary_host::{
    ConnectorSpec, Host, HostConfig, JobReport, OpenOptions, PluginLoading, SyncKind, SyncOptions,
};

use crate::describe::Target;
use crate::progress::Step;

/// The connector id a run uses.
pub const CONNECTOR: &str = "run";

/// What to run.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// A component file or a loaded plugin's name (see [`Target::parse`]).
    pub target: String,
    /// Connector settings.
    pub settings: Map<String, Value>,
    /// A query to search the synced documents with.
    pub search: Option<String>,
}

/// What a run produced.
pub struct RunOutcome {
    /// The sync job.
    pub report: JobReport,
    /// Every document, by id.
    pub documents: Vec<SinkDocument>,
    /// The search's results, when asked.
    pub search: Option<SearchResults>,
}

/// Parses `--settings` (a JSON object).
pub fn parse_settings(text: Option<&str>) -> anyhow::Result<Map<String, Value>> {
    match text {
        None => Ok(Map::new()),
        Some(text) => {
            match serde_json::from_str::<Value>(text).context("--settings is not JSON")? {
                Value::Object(map) => Ok(map),
                _ => bail!("--settings must be a JSON object"),
            }
        }
    }
}

/// Syncs `request.target` into a temporary index and reads back what it produced. The host
/// settings (limits, HTTP, cache) come from `base`; data and connectors do not.
pub async fn run(base: &HostConfig, request: &RunRequest) -> anyhow::Result<RunOutcome> {
    let tmp = tempfile::Builder::new()
        .prefix("tributary-run-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let mut config = base.clone();
    config.cache_dir = Some(base.cache_dir());
    config.data_dir = tmp.path().to_path_buf();
    config.sink.kind = SinkKind::Embedded;
    config.connectors.clear();
    let target = Target::parse(&request.target);
    let file: Option<PathBuf> = match target {
        Target::File(path) => Some(path.to_path_buf()),
        Target::Name(_) => None,
    };
    if file.is_some() {
        // The file is the plugin under test; other plugins need not be compiled.
        config.plugins_dir = None;
    }
    let plugins = if file.is_some() {
        PluginLoading::None
    } else {
        PluginLoading::All
    };
    // The connector is configured once the plugin's name is known.
    let host_config = config.clone();
    let host = Host::open_with(
        host_config,
        OpenOptions {
            plugins,
            create: true,
            on_compile: Some(crate::progress::compile_hook()),
        },
    )
    .await?;
    let plugin_name = match (&file, target) {
        (Some(path), _) => {
            let wasm =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            host.load_plugin(wasm, &path.display().to_string())
                .await?
                .manifest
                .name
                .clone()
        }
        (None, Target::Name(name)) => host.plugin(name)?.manifest.name.clone(),
        (None, Target::File(_)) => bail!("no component file given"),
    };
    let spec = ConnectorSpec {
        id: CONNECTOR.into(),
        plugin: plugin_name.clone(),
        tenant: "default".into(),
        index: None,
        config: request.settings.clone(),
        rules: Vec::new(),
        advanced_rules: None,
        schedule: Default::default(),
    };
    let step = Arc::new(Step::start(format!("full sync of {plugin_name}: starting")));
    let progress = step.clone();
    let options = SyncOptions {
        on_start: Some(Arc::new(move |counters| {
            let step = progress.clone();
            let label = format!("full sync of {plugin_name}");
            tokio::spawn(async move {
                while !step.is_done() {
                    let c = counters.snapshot();
                    step.update(format!(
                        "{label}: {} received, {} indexed, {} unchanged, {} extracted",
                        c.received, c.indexed, c.unchanged, c.content_extracted
                    ));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        })),
        ..SyncOptions::default()
    };
    let report = host.sync_spec(&spec, SyncKind::Full, options).await?;
    step.finish(&format!(
        "full sync: {} received, {} indexed",
        report.counts.received, report.counts.indexed
    ));
    let index = IndexRef::new(spec.tenant.clone(), spec.index_name());
    let sink = host.sink();
    let existing = sink.indexes(spec.tenant.clone()).await?;
    let documents = if existing.contains(&index.name) {
        let ids: Vec<String> = sink
            .versions(index.clone(), CONNECTOR.into())
            .await?
            .into_ids();
        let mut docs = sink.get(index.clone(), CONNECTOR.into(), ids).await?;
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        docs
    } else {
        Vec::new()
    };
    let search = match &request.search {
        Some(query) if !documents.is_empty() => Some(
            sink.search(index, SearchRequest::new(query.clone(), 10))
                .await?,
        ),
        Some(_) => Some(SearchResults::default()),
        None => None,
    };
    drop(host);
    drop(tmp);
    Ok(RunOutcome {
        report,
        documents,
        search,
    })
}

/// The outcome for people: the job summary, one line per document, the search's hits.
pub fn render(outcome: &RunOutcome) -> String {
    let mut out = format!("{}\n", outcome.report);
    out.push_str(&format!("{} document(s)\n", outcome.documents.len()));
    for doc in &outcome.documents {
        let title = doc
            .fields
            .get("title")
            .or_else(|| doc.fields.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let body = doc
            .body
            .as_deref()
            .map(|b| tributary_host::text::truncate(&b.replace('\n', " "), 60).to_string())
            .unwrap_or_default();
        let line = format!("  {}  {title}  {body}", doc.id);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if let Some(results) = &outcome.search {
        out.push_str(&format!("search: {} match(es)\n", results.total));
        for hit in &results.hits {
            out.push_str(&format!(
                "  {:.2}  {}  [{}]\n",
                hit.score,
                hit.title.as_deref().unwrap_or(&hit.id),
                hit.id
            ));
        }
    }
    out
}
