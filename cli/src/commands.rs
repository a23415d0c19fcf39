//! The commands: each opens the host it needs, runs, and prints its result for people (or JSON
//! with `search --json`).

use std::path::PathBuf;
use std::sync::Arc;

use tributary_host::config::SinkKind;
use tributary_host::net::PrivateAccess;
use tributary_host::serve::{Service, serve};
use tributary_host::{Host, HostConfig, JobStatus, OpenOptions, PluginLoading};

use crate::report::{print_jobs, print_report, sync_with_progress};
use crate::search::{ExportArgs, SearchArgs};
use crate::{Cli, Command, load_config};

/// `tributary connectors-service --config config.yml`: the global `--config` names Elastic's
/// config.yml here, so host settings come from `--host-config` (or defaults).
async fn connectors_service(
    cli: &Cli,
    host_config: Option<&PathBuf>,
    once: bool,
) -> anyhow::Result<()> {
    use tributary_host::elastic_compat::{CompatConfig, ConnectorsService};
    let path = cli
        .config
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("pass Elastic's config.yml with --config"))?;
    let service_config = CompatConfig::load(path)?;
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

/// Opens the host a command needs: `create` for commands that write state, `plugins` for those
/// that run or inspect plugins (a first compile shows a progress line). Reads never create the
/// data directory.
async fn open(config: HostConfig, create: bool, plugins: PluginLoading) -> anyhow::Result<Host> {
    Host::open_with(
        config,
        OpenOptions {
            plugins,
            create,
            on_compile: Some(tributary_cli::progress::compile_hook()),
        },
    )
    .await
}

/// Runs the command `cli` names; the exit code reports failed syncs and invalid connectors.
pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    if let Command::ConnectorsService { host_config, once } = &cli.command {
        connectors_service(&cli, host_config.as_ref(), *once).await?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let mut config = load_config(&cli)?;
    if !matches!(cli.command, Command::Serve { .. }) {
        // The standalone commands run the user's own connectors: a loopback or private address
        // their configuration names literally is their choice. `serve` runs tenants' connectors,
        // which reach non-public addresses only through the operator's `[http] allow_private`.
        config.http.private_access = PrivateAccess::NamedLiterals;
    }
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo => {
            crate::demo::run(&config.data_dir).await?;
        }
        #[cfg(not(feature = "demo"))]
        Command::Demo => {
            anyhow::bail!("this tributary was built without the `demo` feature");
        }
        Command::Plugins => {
            let host = open(config, false, PluginLoading::All).await?;
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
            // A ping may rotate credentials (Box refresh tokens are single-use): the plugin's
            // new token must be stored, so a ping opens the state for writing.
            let host = open(config, ping, PluginLoading::All).await?;
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
                        // A configuration problem: show what the plugin accepts.
                        if e.kind == tributary_host::job::JobErrorKind::Config
                            && let Ok(plugin) = host.plugin(&spec.plugin)
                        {
                            println!("\n{}", tributary_cli::describe::render(&plugin.manifest));
                        }
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
            let host = open(config, true, PluginLoading::All).await?;
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
            filters,
            sort,
            after,
            count,
            facets,
            identities,
            json,
        } => {
            let host = open(config, false, PluginLoading::None).await?;
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
                    all.sort();
                    all.dedup();
                    all
                }
            };
            anyhow::ensure!(
                !indexes.is_empty(),
                "no index to search: pass --index or configure connectors"
            );
            let args = SearchArgs {
                query: query.unwrap_or_else(|| "*".into()),
                indexes,
                tenant,
                limit,
                filters,
                sort,
                after,
                count,
                facets,
                identities,
                json,
            };
            crate::search::search(&host, args).await?;
        }
        Command::Export {
            index,
            format: crate::ExportFormat::Jsonl,
            tenant,
            query,
            filters,
            body,
            identities,
        } => {
            let host = open(config, false, PluginLoading::None).await?;
            let args = ExportArgs {
                index,
                tenant,
                query,
                filters,
                body,
                identities,
            };
            crate::search::export(&host, args).await?;
        }
        Command::Jobs {
            connector,
            tenant,
            limit,
        } => {
            let host = open(config, false, PluginLoading::None).await?;
            let jobs = host.jobs().recent(&tenant, &connector, limit).await?;
            if jobs.is_empty() {
                // An unknown connector is an error (with the configured ones named); a known
                // one without jobs yet says so.
                host.config().connector(Some(&tenant), &connector)?;
                println!("no jobs yet for connector `{connector}` of tenant `{tenant}`");
            } else {
                print_jobs(&jobs);
            }
        }
        Command::ConnectorsService { .. } => {}
        Command::Auth { provider, args } => {
            let file = tributary_cli::auth::config_file(cli.config.as_ref());
            tributary_cli::auth::run(provider, &args, &file).await?;
        }
        Command::Plugin { command } => {
            tributary_cli::scaffold::run(command, config).await?;
        }
        Command::Serve {
            listen,
            admin_token,
        } => {
            let host = Arc::new(Host::open(config).await?);
            let service = Service::open(host, admin_token).await?;
            if let Some(path) = service.generated_admin_token() {
                eprintln!("admin token written to {}", path.display());
            }
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
            // Printed (and flushed) before serving: tests and scripts read the address here.
            eprintln!("tributary serving on http://{}", listener.local_addr()?);
            serve(service, listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
