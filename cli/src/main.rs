//! The `tributary` command line: argument parsing, logging and configuration loading here;
//! each command in `commands.rs`; the progress line and job summaries in `report.rs`; the demo
//! (feature `demo`) in `demo.rs`; plugin scaffolding in the library (`tributary_cli::scaffold`).

mod commands;
#[cfg(feature = "demo")]
mod demo;
mod report;
mod search;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tributary_host::config::SinkKind;
use tributary_host::sink::{Filter, Sort};
use tributary_host::{HostConfig, SyncKind};

/// Sync content sources into a search index through sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(name = "tributary", version, about)]
struct Cli {
    /// Configuration file (default: ./tributary.toml when it exists).
    #[arg(long, short, global = true, env = "TRIBUTARY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration file).
    #[arg(long, global = true, env = "TRIBUTARY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where documents go; overrides `[sink] kind` of the configuration file.
    #[arg(long, global = true, value_enum, env = "TRIBUTARY_SINK")]
    sink: Option<SinkArg>,
    /// Log filter, e.g. `info`, `debug`, `tributary=debug,plugin=trace`.
    #[arg(long, global = true, env = "TRIBUTARY_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start bundled fake Dropbox and Box servers, sync both through the real plugins into the
    /// embedded index, apply changes, sync incrementally and search. Needs no credentials.
    /// (Only in builds with the default `demo` feature.)
    Demo,
    /// List loaded plugins and their versions.
    Plugins,
    /// List configured connectors and check each configuration with its plugin.
    Connectors {
        /// Also call each source with the configured credentials (the plugin's `ping`).
        #[arg(long)]
        ping: bool,
    },
    /// Run a sync job.
    Sync {
        /// Connector id.
        connector: String,
        /// Kind of sync.
        #[arg(long, short, value_enum, default_value = "full")]
        kind: Kind,
        /// Tenant of the connector (when ids repeat across tenants).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Search an index (the query language: README, "Searching").
    Search {
        /// Query: words, "phrases", pre*, field:value, field:>n, field:[a TO b], AND / OR /
        /// NOT; `*` (the default) matches every document.
        query: Option<String>,
        /// Index (default: every index of the tenant's connectors).
        #[arg(long)]
        index: Option<String>,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Most hits per page (page on with --after).
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Only documents whose field holds exactly this value, e.g. `type=File` (repeatable).
        #[arg(long = "filter", value_name = "FIELD=VALUE")]
        filters: Vec<Filter>,
        /// Order: `_score` (default), or a field with `:asc`/`:desc`, e.g. `_timestamp:desc`.
        #[arg(long, value_name = "FIELD[:asc|:desc]")]
        sort: Option<Sort>,
        /// The next page: the cursor printed after the previous one.
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
        /// Print only the number of matches.
        #[arg(long)]
        count: bool,
        /// Count matches per value of this field, e.g. `type`, `file_extension`, `_connector`
        /// (repeatable).
        #[arg(long = "facet", value_name = "FIELD")]
        facets: Vec<String>,
        /// Only documents this identity may see (document-level security), e.g. `email:ann@example.com`.
        #[arg(long = "as")]
        identities: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print every document of an index, one JSON object a line: exactly what was indexed.
    Export {
        /// Index.
        index: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Only the documents matching this query.
        #[arg(long, default_value = "*")]
        query: String,
        /// Only documents whose field holds exactly this value (repeatable).
        #[arg(long = "filter", value_name = "FIELD=VALUE")]
        filters: Vec<Filter>,
        /// Include each document's extracted text (`body`).
        #[arg(long)]
        body: bool,
        /// Only documents this identity may see.
        #[arg(long = "as")]
        identities: Vec<String>,
    },
    /// Show the recent jobs of a connector.
    Jobs {
        /// Connector id.
        connector: String,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// How many.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Act as Elastic's connectors service: `--config` names its config.yml; the pending sync
    /// jobs of the connectors it lists are claimed from Elasticsearch and run by the plugins.
    ConnectorsService {
        /// A tributary.toml for host settings (data_dir, limits); optional.
        #[arg(long)]
        host_config: Option<PathBuf>,
        /// Run one polling round, wait for the jobs it started, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Get a refresh token for the Dropbox or Box plugin (OAuth authorization-code flow); see
    /// docs/credentials.md for creating the app.
    Auth {
        /// The provider.
        #[arg(value_enum)]
        provider: tributary_cli::auth::Provider,
        #[command(flatten)]
        args: tributary_cli::auth::AuthArgs,
    },
    /// Write, build, check, describe and try plugins (`plugin new|build|check|describe|run`).
    Plugin {
        #[command(subcommand)]
        command: tributary_cli::scaffold::PluginCommand,
    },
    /// Run the multi-tenant service: admin and tenant HTTP API (/v1/openapi.json describes
    /// it, /docs browses it), web console at /, job queue, schedules, plugin hot swap, /metrics.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: String,
        /// Admin API token (default: `[service] admin_token`, else one generated into
        /// <data_dir>/admin-token).
        #[arg(long, env = "TRIBUTARY_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

/// `tributary export --format`.
#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// One JSON object a line.
    Jsonl,
}

#[derive(Clone, Copy, ValueEnum)]
enum SinkArg {
    Embedded,
    Elasticsearch,
}

/// A sync kind on the command line, spelled as the service API and job reports spell it
/// (`access_control`; `access-control` is still accepted).
#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Full,
    Incremental,
    #[value(name = "access_control", alias = "access-control")]
    AccessControl,
}

impl From<Kind> for SyncKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Full => SyncKind::Full,
            Kind::Incremental => SyncKind::Incremental,
            Kind::AccessControl => SyncKind::AccessControl,
        }
    }
}

/// The command line, with the global options that mean nothing to `plugin new` (which only
/// writes files) hidden from its help.
fn command_line() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    command.build();
    command.mut_subcommand("plugin", |plugin| {
        plugin.mut_subcommand("new", |new| {
            ["config", "data_dir", "sink"]
                .into_iter()
                .fold(new, |new, id| new.mut_arg(id, |a| a.hide(true)))
        })
    })
}

fn main() -> std::process::ExitCode {
    use clap::FromArgMatches;
    // Before any thread starts.
    tributary_host::allocator::tune();
    let cli = match Cli::from_arg_matches(&command_line().get_matches()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    init_logging(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(cli: &Cli) -> anyhow::Result<HostConfig> {
    let mut config = match &cli.config {
        Some(path) => HostConfig::load(path)?,
        None if PathBuf::from("tributary.toml").exists() => {
            HostConfig::load(&PathBuf::from("tributary.toml"))?
        }
        None => HostConfig::default(),
    };
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(sink) = cli.sink {
        config.sink.kind = match sink {
            SinkArg::Embedded => SinkKind::Embedded,
            SinkArg::Elasticsearch => SinkKind::Elasticsearch,
        };
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn plugin_new_help_lists_only_what_it_uses() {
        let mut command = super::command_line();
        let new = command
            .find_subcommand_mut("plugin")
            .unwrap()
            .find_subcommand_mut("new")
            .unwrap();
        let help = new.render_help().to_string();
        assert!(help.contains("--lang"), "{help}");
        for hidden in ["--sink", "--data-dir", "--config"] {
            assert!(!help.contains(hidden), "{hidden} in:\n{help}");
        }
        // Still listed where they mean something.
        let help = command
            .find_subcommand_mut("sync")
            .unwrap()
            .render_help()
            .to_string();
        assert!(help.contains("--data-dir"), "{help}");
    }

    #[test]
    fn sync_kinds_are_spelled_as_the_api_spells_them() {
        use clap::ValueEnum;
        for kind in super::Kind::value_variants() {
            let name = kind.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(name, tributary_host::SyncKind::from(*kind).as_str());
        }
        assert_eq!(
            super::Kind::value_variants().len(),
            tributary_host::SyncKind::ALL.len()
        );
    }
}
