//! Tenant routes for connectors: create, read, replace, delete, trigger a sync, plugin state.
//! Secrets are write-only here: responses say which are set, never their values.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    ApiError, ApiResult, App, JsonArg, QueryArg, bad, excerpt, job_json, json_body, not_found, ok,
    query, shown, tenant_scope,
};
use crate::connector::rules::RuleSpec;
use crate::connector::schedule::Schedule;
use crate::connector::{ConnectorSpec, valid_name};
use crate::job::JobError;
use crate::job::SyncKind;
use crate::serve::Enqueued;

/// The connector routes.
pub(super) fn routes() -> axum::Router<App> {
    axum::Router::new()
        .route(
            "/v1/tenants/{tenant}/connectors",
            get(list_connectors).post(create_connector),
        )
        .route(
            "/v1/tenants/{tenant}/connectors/{connector}",
            get(get_connector)
                .put(replace_connector)
                .delete(delete_connector),
        )
        .route(
            "/v1/tenants/{tenant}/connectors/{connector}/sync",
            post(trigger_sync),
        )
        .route(
            "/v1/tenants/{tenant}/connectors/{connector}/state",
            get(get_state).delete(clear_state),
        )
}

/// A connector as the API takes it (the tenant comes from the path).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorBody {
    #[serde(default)]
    id: Option<String>,
    plugin: String,
    #[serde(default)]
    index: Option<String>,
    #[serde(default)]
    config: Map<String, Value>,
    #[serde(default)]
    rules: Vec<RuleSpec>,
    #[serde(default)]
    advanced_rules: Option<Value>,
    #[serde(default)]
    schedule: Schedule,
}

#[derive(Deserialize)]
struct PingQuery {
    #[serde(default)]
    ping: bool,
}

/// Keys of the plugin's `sensitive` config fields.
fn secret_keys(app: &App, plugin: &str) -> Vec<String> {
    app.host
        .plugin(plugin)
        .map(|p| {
            p.manifest
                .config
                .iter()
                .filter(|f| f.sensitive)
                .map(|f| f.key.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A connector for responses: secrets replaced by the list of those that are set.
fn redact(app: &App, spec: &ConnectorSpec) -> Value {
    let secrets = secret_keys(app, &spec.plugin);
    let mut config = spec.config.clone();
    let mut set = Vec::new();
    for key in &secrets {
        if config.remove(key).is_some_and(|v| !v.is_null()) {
            set.push(key.clone());
        }
    }
    json!({
        "id": spec.id,
        "plugin": spec.plugin,
        "index": spec.index_name(),
        "config": config,
        "secrets_set": set,
        "rules": spec.rules,
        "advanced_rules": spec.advanced_rules,
        "schedule": spec.schedule,
    })
}

async fn list_connectors(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let list: Vec<Value> = app
        .store
        .connectors(&tenant)
        .await?
        .iter()
        .map(|c| redact(&app, c))
        .collect();
    ok(json!({"connectors": list}))
}

/// Checks a connector the way a job would, without running one: names, schedule, sync rules,
/// the plugin's schema and `validate-config`, and with `ping` its `ping`.
async fn check_connector(app: &App, spec: &ConnectorSpec, ping: bool) -> Result<(), ApiError> {
    for (what, value) in [
        ("connector id", &spec.id),
        ("index", &spec.index_name().to_string()),
    ] {
        if !valid_name(value) {
            return Err(bad(format!(
                "{what} `{}` must be 1-64 letters, digits, `-`, `_` or `.`, not starting with `.`",
                shown(value)
            )));
        }
    }
    let size = serde_json::to_string(spec).map_or(usize::MAX, |s| s.len());
    if size > MAX_CONNECTOR_BYTES {
        return Err(bad(format!(
            "the connector is {size} bytes of JSON; at most {MAX_CONNECTOR_BYTES} are accepted"
        )));
    }
    if let Some(rules) = &spec.advanced_rules {
        let size = rules.to_string().len();
        if size > MAX_ADVANCED_RULES_BYTES {
            return Err(bad(format!(
                "`advanced_rules` is {size} bytes of JSON; at most {MAX_ADVANCED_RULES_BYTES} are accepted"
            )));
        }
    }
    spec.schedule.check().map_err(|e| bad(format!("{e:#}")))?;
    spec.check_url_schemes().map_err(bad)?;
    crate::connector::rules::Rules::compile(&spec.rules)
        .map_err(|e| bad(format!("sync rules: {}", e.join("; "))))?;
    if let Err(e) = app.host.validate_connector(spec, ping).await {
        return Err(validation_error(e));
    }
    // Checked by the plugin now, not first by the job that would fail on them.
    if let Err(e) = app.host.validate_advanced_rules(spec).await {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            excerpt(&format!("{e}")),
        ));
    }
    Ok(())
}

/// The largest `advanced_rules` a connector may hold, as JSON text.
const MAX_ADVANCED_RULES_BYTES: usize = 64 << 10;

/// The largest connector record (config, rules, advanced rules, schedule), as JSON text: every
/// listing reads them all.
const MAX_CONNECTOR_BYTES: usize = 256 << 10;

pub(super) fn validation_error(e: JobError) -> ApiError {
    let status = match e.kind {
        crate::job::JobErrorKind::Config => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    // A plugin's error may quote what the remote answered: only an excerpt reaches the tenant.
    ApiError(status, excerpt(&format!("{e}")))
}

async fn create_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    q: QueryArg<PingQuery>,
    body: JsonArg<ConnectorBody>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let q = query(q)?;
    let body = json_body(body)?;
    let Some(id) = body.id.clone() else {
        return Err(bad("`id` is required"));
    };
    if app.store.connector(&tenant, &id).await?.is_some() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("connector `{}` exists; PUT replaces it", shown(&id)),
        ));
    }
    let spec = spec_from(body, &tenant, &id);
    check_connector(&app, &spec, q.ping).await?;
    let quotas = app.quotas(&tenant).await?;
    app.store
        .put_connector(&spec, quotas.max_connectors)
        .await
        .map_err(|e| ApiError(StatusCode::FORBIDDEN, format!("{e:#}")))?;
    tracing::info!(%tenant, connector = %id, plugin = %spec.plugin, "connector created");
    Ok((StatusCode::CREATED, Json(redact(&app, &spec))).into_response())
}

fn spec_from(body: ConnectorBody, tenant: &str, id: &str) -> ConnectorSpec {
    ConnectorSpec {
        id: id.to_string(),
        plugin: body.plugin,
        tenant: tenant.to_string(),
        index: body.index,
        config: body.config,
        rules: body.rules,
        advanced_rules: body.advanced_rules,
        schedule: body.schedule,
    }
}

async fn get_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    match app.store.connector(&tenant, &connector).await? {
        Some(spec) => ok(redact(&app, &spec)),
        None => Err(not_found()),
    }
}

/// Replaces a connector. Secrets left out of `config` keep their stored values (they are never
/// sent back, so a client cannot echo them); `null` clears one.
async fn replace_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
    q: QueryArg<PingQuery>,
    body: JsonArg<ConnectorBody>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let q = query(q)?;
    let body = json_body(body)?;
    if body.id.as_deref().is_some_and(|id| id != connector) {
        return Err(bad("`id` in the body differs from the path"));
    }
    let Some(old) = app.store.connector(&tenant, &connector).await? else {
        return Err(not_found());
    };
    let mut spec = spec_from(body, &tenant, &connector);
    if spec.plugin == old.plugin {
        for key in secret_keys(&app, &spec.plugin) {
            match spec.config.get(&key) {
                None => {
                    if let Some(v) = old.config.get(&key) {
                        spec.config.insert(key, v.clone());
                    }
                }
                Some(Value::Null) => {
                    spec.config.remove(&key);
                }
                Some(_) => {}
            }
        }
    }
    check_connector(&app, &spec, q.ping).await?;
    if old.index_name() != spec.index_name() {
        // Moving to another index: the old index's documents of this connector are deleted and
        // a full sync fills the new one (see `Service::move_connector`).
        app.move_connector(&old, &spec).await?;
    } else {
        app.store.put_connector(&spec, None).await?;
    }
    tracing::info!(%tenant, %connector, "connector updated");
    ok(redact(&app, &spec))
}

/// Deletes a connector, its queued jobs, its plugin state and its documents.
async fn delete_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    // Its queued jobs are cancelled and a running one is stopped (and waited for) first, so
    // one call removes a connector however many syncs were triggered.
    if !app.delete_connector(&tenant, &connector).await? {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    #[serde(default)]
    kind: Option<SyncKind>,
}

async fn trigger_sync(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
    body: Option<Json<SyncBody>>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let Some(spec) = app.store.connector(&tenant, &connector).await? else {
        return Err(not_found());
    };
    let kind = body.and_then(|Json(b)| b.kind).unwrap_or(SyncKind::Full);
    // 202 with a new job; 200 with the job already waiting for this connector and kind (the
    // trigger merged into it); 429 when the tenant's queue is full.
    match app
        .enqueue(&spec, kind, crate::serve::store::QueueReason::Api)
        .await?
    {
        Enqueued::New(report) => {
            Ok((StatusCode::ACCEPTED, Json(job_json(&report))).into_response())
        }
        Enqueued::Merged(report) => Ok((StatusCode::OK, Json(job_json(&report))).into_response()),
        Enqueued::Full(cap) => Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("the tenant already has {cap} jobs queued; wait for some to finish"),
        )),
    }
}

async fn get_state(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    if app.store.connector(&tenant, &connector).await?.is_none() {
        return Err(not_found());
    }
    let keys = app.store.storage_keys(&tenant, &connector, 1000).await?;
    let usage = app
        .store
        .storage_usage(&tenant)
        .await?
        .into_iter()
        .find(|(c, _, _)| *c == connector)
        .map(|(_, k, b)| json!({"keys": k, "bytes": b}))
        .unwrap_or(json!({"keys": 0, "bytes": 0}));
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|(k, n)| json!({"key": k, "bytes": n}))
        .collect();
    ok(json!({"usage": usage, "keys": keys}))
}

async fn clear_state(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    if app.store.connector(&tenant, &connector).await?.is_none() {
        return Err(not_found());
    }
    let removed = app.store.clear_storage(&tenant, &connector).await?;
    ok(json!({"removed_keys": removed}))
}
