//! The `tributary` command line.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use tributary::config::SinkKind;
use tributary::report::{print_report, sync_with_progress};
use tributary::sink::SearchRequest;
use tributary::{Host, HostConfig, JobStatus, SyncKind};

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
    /// Search an index.
    Search {
        /// Query: terms, "phrases", AND / OR / NOT, field:value.
        query: String,
        /// Index (default: every index of the tenant's connectors).
        #[arg(long)]
        index: Option<String>,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Most hits.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Only documents this identity may see (document-level security), e.g. `email:ann@example.com`.
        #[arg(long = "as")]
        identities: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    /// Write, build and check plugins (`plugin new|build|check`).
    Plugin {
        #[command(subcommand)]
        command: tributary::scaffold::PluginCommand,
    },
    /// Run the multi-tenant service: admin and tenant HTTP API (/v1/openapi.json describes
    /// it), job queue, schedules, plugin hot swap, /metrics.
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

#[derive(Clone, Copy, ValueEnum)]
enum SinkArg {
    Embedded,
    Elasticsearch,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Full,
    Incremental,
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli)) {
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

/// `tributary connectors-service --config config.yml`: the global `--config` names Elastic's
/// config.yml here, so host settings come from `--host-config` (or defaults).
async fn connectors_service(
    cli: &Cli,
    host_config: Option<&PathBuf>,
    once: bool,
) -> anyhow::Result<()> {
    use tributary::connectors_service::{ConnectorsService, config::ServiceConfig};
    let path = cli
        .config
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("pass Elastic's config.yml with --config"))?;
    let service_config = ServiceConfig::load(path)?;
    let mut config = match host_config {
        Some(p) => HostConfig::load(p)?,
        None => HostConfig::default(),
    };
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    config.sink.kind = SinkKind::Elasticsearch;
    config.elasticsearch = service_config.elasticsearch.clone();
    if let Some(max) = service_config.service.max_file_download_size {
        config.pipeline.max_download_bytes = max;
    }
    if let Some(n) = service_config.concurrent_downloads {
        config.pipeline.default_download_concurrency = n.max(1);
    }
    if let Some(url) = &service_config.extraction_service {
        config.extract.service_url = Some(url.clone());
    }
    let host = Arc::new(Host::open(config).await?);
    let hostname = std::env::var("HOSTNAME").unwrap_or_else(|_| "tributary".into());
    let service = ConnectorsService::new(host, service_config, &hostname)?;
    if once {
        for job in service.poll_once().await? {
            let outcome = job.await?;
            println!("{} {}", outcome.job_id, outcome.status.unwrap_or_default());
        }
        return Ok(());
    }
    service
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    if let Command::ConnectorsService { host_config, once } = &cli.command {
        connectors_service(&cli, host_config.as_ref(), *once).await?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let config = load_config(&cli)?;
    match cli.command {
        Command::Demo => {
            tributary::demo::run(&config.data_dir).await?;
        }
        Command::Plugins => {
            let host = Host::open(config).await?;
            println!(
                "{:<12} {:<10} {:<7} {:<14} SOURCE",
                "NAME", "VERSION", "ACTIVE", "DIGEST"
            );
            for p in host.plugins() {
                println!(
                    "{:<12} {:<10} {:<7} {:<14} {}",
                    p.name,
                    p.version,
                    if p.active { "yes" } else { "" },
                    p.digest,
                    p.source
                );
            }
        }
        Command::Connectors { ping } => {
            let host = Host::open(config).await?;
            let specs = host.config().connectors.clone();
            if specs.is_empty() {
                println!("no connectors configured (add [[connectors]] to tributary.toml)");
            }
            let mut ok = true;
            for spec in &specs {
                match host.validate_connector(spec, ping).await {
                    Ok(()) => println!(
                        "{}/{} ({}) → index {}: configuration ok{}",
                        spec.tenant,
                        spec.id,
                        spec.plugin,
                        spec.index_name(),
                        if ping { ", source reachable" } else { "" }
                    ),
                    Err(e) => {
                        ok = false;
                        println!("{}/{} ({}): {e}", spec.tenant, spec.id, spec.plugin);
                    }
                }
            }
            if !ok {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::Sync {
            connector,
            kind,
            tenant,
        } => {
            let host = Host::open(config).await?;
            let report =
                sync_with_progress(&host, tenant.as_deref(), &connector, kind.into()).await?;
            print_report(&report);
            if report.status != JobStatus::Succeeded {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::Search {
            query,
            index,
            tenant,
            limit,
            identities,
            json,
        } => {
            let host = Host::open(config).await?;
            let indexes: Vec<String> = match index {
                Some(i) => vec![i],
                None => {
                    let mut all: Vec<String> = host
                        .config()
                        .connectors
                        .iter()
                        .filter(|c| c.tenant == tenant)
                        .map(|c| c.index_name().to_string())
                        .collect();
                    all.dedup();
                    all
                }
            };
            anyhow::ensure!(
                !indexes.is_empty(),
                "no index to search: pass --index or configure connectors"
            );
            for index in indexes {
                let request = SearchRequest {
                    query: query.clone(),
                    limit,
                    connector: None,
                    identities: (!identities.is_empty()).then(|| identities.clone()),
                };
                let results = host.search(&tenant, &index, request).await?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({"index": index, "results": results})
                        )?
                    );
                } else {
                    println!("{index}: {} match(es)", results.total);
                    for hit in results.hits {
                        println!(
                            "  {:.2}  {}  [{}]",
                            hit.score,
                            hit.title.as_deref().unwrap_or(&hit.id),
                            hit.id
                        );
                        if let Some(snippet) = hit.snippet {
                            println!(
                                "        {}",
                                snippet
                                    .replace("<b>", "\x1b[1m")
                                    .replace("</b>", "\x1b[0m")
                                    .replace('\n', " ")
                            );
                        }
                    }
                }
            }
        }
        Command::Jobs {
            connector,
            tenant,
            limit,
        } => {
            let host = Host::open(config).await?;
            for job in host.jobs().recent(&tenant, &connector, limit).await? {
                println!(
                    "{}  {:<14} {:<10} {}@{}  indexed {} deleted {} unchanged {}  {}",
                    job.id,
                    job.kind.to_string(),
                    format!("{:?}", job.status).to_lowercase(),
                    job.plugin,
                    job.plugin_version,
                    job.counts.indexed,
                    job.counts.deleted,
                    job.counts.unchanged,
                    job.error.map(|e| e.to_string()).unwrap_or_default()
                );
            }
        }
        Command::ConnectorsService { .. } => {}
        Command::Plugin { command } => {
            tributary::scaffold::run(command, config).await?;
        }
        Command::Serve {
            listen,
            admin_token,
        } => {
            let host = Arc::new(Host::open(config).await?);
            let service = tributary::service::Service::open(host, admin_token).await?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
            // Printed (and flushed) before serving: tests and scripts read the address here.
            eprintln!("tributary serving on http://{}", listener.local_addr()?);
            tributary::service::serve(service, listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
