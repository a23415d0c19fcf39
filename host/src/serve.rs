//! `tributary serve`: runs each connector's scheduled syncs and answers a small HTTP API
//! (`GET /health`, `GET /plugins`, `GET /search`, `GET /jobs/{tenant}/{connector}`,
//! `POST /sync/{tenant}/{connector}?kind=full|incremental|access_control`).
//!
//! Syncs of one connector never overlap; an incremental schedule starts with a full sync when
//! none has succeeded yet. The API has no authentication yet, so it listens on loopback by
//! default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::config::ConnectorSpec;
use crate::jobs::JobStatus;
use crate::sink::SearchRequest;
use crate::{Host, SyncKind, SyncOptions};

/// One lock per (tenant, connector): syncs of a connector never overlap.
type ConnectorLocks = HashMap<(String, String), Arc<Mutex<()>>>;

#[derive(Clone)]
struct App {
    host: Arc<Host>,
    locks: Arc<ConnectorLocks>,
}

impl App {
    async fn run(&self, spec: &ConnectorSpec, kind: SyncKind) -> anyhow::Result<crate::JobReport> {
        let key = (spec.tenant.clone(), spec.id.clone());
        let lock = self.locks.get(&key).cloned().unwrap_or_default();
        let _guard = lock.lock().await;
        let kind = if kind == SyncKind::Incremental && !self.has_succeeded_full(spec).await {
            SyncKind::Full
        } else {
            kind
        };
        let report = self
            .host
            .sync_spec(spec, kind, SyncOptions::default())
            .await?;
        tracing::info!("{}", crate::report::summary(&report));
        Ok(report)
    }

    async fn has_succeeded_full(&self, spec: &ConnectorSpec) -> bool {
        match self.host.jobs().recent(&spec.tenant, &spec.id, 1000).await {
            Ok(jobs) => jobs
                .iter()
                .any(|j| j.kind == SyncKind::Full && j.status == JobStatus::Succeeded),
            Err(_) => false,
        }
    }
}

/// Serves until interrupted (Ctrl-C).
pub async fn run(host: Arc<Host>, listen: &str) -> anyhow::Result<()> {
    let locks = host
        .config()
        .connectors
        .iter()
        .map(|c| ((c.tenant.clone(), c.id.clone()), Arc::new(Mutex::new(()))))
        .collect();
    let app = App {
        host: host.clone(),
        locks: Arc::new(locks),
    };
    for spec in host.config().connectors.clone() {
        let s = &spec.schedule;
        for (kind, minutes) in [
            (SyncKind::Full, s.full_minutes),
            (SyncKind::Incremental, s.incremental_minutes),
            (SyncKind::AccessControl, s.access_control_minutes),
        ] {
            let Some(minutes) = minutes.filter(|m| *m > 0) else {
                continue;
            };
            let (app, spec) = (app.clone(), spec.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(minutes * 60));
                loop {
                    tick.tick().await;
                    if let Err(err) = app.run(&spec, kind).await {
                        tracing::error!(connector = %spec.id, "scheduled {kind} sync could not run: {err:#}");
                    }
                }
            });
        }
    }
    let router = axum::Router::new()
        .route("/health", get(health))
        .route("/plugins", get(plugins))
        .route("/search", get(search))
        .route("/jobs/{tenant}/{connector}", get(jobs))
        .route("/sync/{tenant}/{connector}", post(trigger))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    eprintln!("tributary serving on http://{}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn health(State(app): State<App>) -> Json<serde_json::Value> {
    Json(
        json!({"status": "ok", "plugins": app.host.plugins().len(), "pooling": app.host.runtime().pooling()}),
    )
}

async fn plugins(State(app): State<App>) -> Json<serde_json::Value> {
    Json(json!(app.host.plugins()))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    index: String,
    #[serde(default = "default_tenant")]
    tenant: String,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default, rename = "as")]
    identity: Option<String>,
}

fn default_tenant() -> String {
    "default".into()
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

async fn search(State(app): State<App>, Query(q): Query<SearchQuery>) -> Response {
    let request = SearchRequest {
        query: q.q,
        limit: q.limit.unwrap_or(10),
        connector: None,
        identities: q.identity.map(|i| vec![i]),
    };
    match app.host.search(&q.tenant, &q.index, request).await {
        Ok(results) => Json(results).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}

async fn jobs(
    State(app): State<App>,
    Path((tenant, connector)): Path<(String, String)>,
) -> Response {
    match app.host.jobs().recent(&tenant, &connector, 50).await {
        Ok(jobs) => Json(jobs).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

#[derive(Deserialize)]
struct TriggerQuery {
    #[serde(default)]
    kind: Option<SyncKind>,
}

async fn trigger(
    State(app): State<App>,
    Path((tenant, connector)): Path<(String, String)>,
    Query(q): Query<TriggerQuery>,
) -> Response {
    let spec = match app.host.config().connector(Some(&tenant), &connector) {
        Ok(spec) => spec.clone(),
        Err(e) => return error(StatusCode::NOT_FOUND, e),
    };
    let kind = q.kind.unwrap_or(SyncKind::Full);
    tokio::spawn(async move {
        if let Err(err) = app.run(&spec, kind).await {
            tracing::error!(connector = %spec.id, "{kind} sync could not run: {err:#}");
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "kind": kind})),
    )
        .into_response()
}
