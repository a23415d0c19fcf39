//! Tenant routes for connectors: create, read, replace, delete, trigger a sync, plugin state.
//! Secrets are write-only here: responses say which are set, never their values.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    ClearedState, Connector, ConnectorBody, ConnectorList, ConnectorState, ErrorBody, Job,
    StateKey, StateUsage, SyncBody,
};
use super::{
    ApiError, ApiResult, App, JsonArg, OptionalJsonArg, QueryArg, bad, excerpt, json_body,
    not_found, optional_json_body, query, shown, tenant_scope,
};
use crate::connector::{ConnectorSpec, valid_name};
use crate::job::JobError;
use crate::job::SyncKind;
use crate::serve::Enqueued;

/// The connector routes.
pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_connectors, create_connector))
        .routes(routes!(get_connector, replace_connector, delete_connector))
        .routes(routes!(trigger_sync))
        .routes(routes!(get_state, clear_state))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PingQuery {
    /// Also have the plugin reach the source (`ping`) before the connector is saved.
    #[serde(default)]
    #[param(example = false)]
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
fn redact(app: &App, spec: &ConnectorSpec) -> Connector {
    let secrets = secret_keys(app, &spec.plugin);
    let mut config = spec.config.clone();
    let mut set = Vec::new();
    for key in &secrets {
        if config.remove(key).is_some_and(|v| !v.is_null()) {
            set.push(key.clone());
        }
    }
    Connector {
        id: spec.id.clone(),
        plugin: spec.plugin.clone(),
        index: spec.index_name().to_string(),
        config,
        secrets_set: set,
        rules: spec.rules.clone(),
        advanced_rules: spec.advanced_rules.clone(),
        schedule: spec.schedule.clone(),
    }
}

/// A tenant's connectors.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/connectors",
    operation_id = "listConnectors",
    tag = "connectors",
    summary = "List connectors (secrets never returned)",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id", example = "acme")),
    responses(
        (status = 200, description = "The tenant's connectors", body = ConnectorList),
        (status = 404, description = "No such tenant, or not this caller's", body = ErrorBody),
    ),
)]
async fn list_connectors(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult<Json<ConnectorList>> {
    tenant_scope(&app, &headers, &tenant).await?;
    let connectors = app
        .store
        .connectors(&tenant)
        .await?
        .iter()
        .map(|c| redact(&app, c))
        .collect();
    Ok(Json(ConnectorList { connectors }))
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

/// Creates a connector, checked the way a job would check it.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/connectors",
    operation_id = "createConnector",
    tag = "connectors",
    summary = "Create a connector (validated by its plugin; `ping=true` also reaches the source)",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id", example = "acme"), PingQuery),
    request_body(content = ConnectorBody, example = json!({
        "id": "news",
        "plugin": "feed",
        "config": {"base_url": "https://feed.example.com", "page_size": 50},
        "rules": [{"field": "title", "rule": "starts_with", "value": "Draft", "policy": "exclude"}],
        "schedule": {"full_cron": "30 2 * * *"}
    })),
    responses(
        (status = 201, description = "Created", body = Connector),
        (status = 400, description = "An invalid id, index, schedule, rule or configuration, or a body or query that does not parse", body = ErrorBody),
        (status = 403, description = "The tenant's connector quota is used up", body = ErrorBody),
        (status = 404, description = "No such tenant, or not this caller's", body = ErrorBody),
        (status = 409, description = "The connector exists (PUT replaces it)", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape, or the plugin refused the configuration or the advanced rules (or the ping failed)", body = ErrorBody),
    ),
)]
async fn create_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    q: QueryArg<PingQuery>,
    body: JsonArg<ConnectorBody>,
) -> ApiResult<(StatusCode, Json<Connector>)> {
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
    Ok((StatusCode::CREATED, Json(redact(&app, &spec))))
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

/// One connector.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/connectors/{connector}",
    operation_id = "getConnector",
    tag = "connectors",
    summary = "One connector (secrets never returned)",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("connector" = String, Path, description = "Connector id", example = "docs"),
    ),
    responses(
        (status = 200, description = "The connector", body = Connector),
        (status = 404, description = "No such tenant or connector, or not this caller's", body = ErrorBody),
    ),
)]
async fn get_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult<Json<Connector>> {
    tenant_scope(&app, &headers, &tenant).await?;
    match app.store.connector(&tenant, &connector).await? {
        Some(spec) => Ok(Json(redact(&app, &spec))),
        None => Err(not_found()),
    }
}

/// Replaces a connector. Secrets left out of `config` keep their stored values (they are never
/// sent back, so a client cannot echo them); `null` clears one.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/connectors/{connector}",
    operation_id = "replaceConnector",
    tag = "connectors",
    summary = "Replace a connector; omitted secrets are kept, null clears one",
    description = "Moving it to another index deletes its documents from the old one; the \
        next sync fills the new one.",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("connector" = String, Path, description = "Connector id", example = "news"),
        PingQuery,
    ),
    request_body(content = ConnectorBody, example = json!({
        "plugin": "feed",
        "config": {"base_url": "https://feed.example.com", "page_size": 100},
        "schedule": {"full_cron": "0 3 * * 0"}
    })),
    responses(
        (status = 200, description = "Replaced", body = Connector),
        (status = 400, description = "An invalid index, schedule, rule or configuration, an `id` other than the path's, or a body or query that does not parse", body = ErrorBody),
        (status = 404, description = "No such tenant or connector, or not this caller's", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape, or the plugin refused the configuration or the advanced rules (or the ping failed)", body = ErrorBody),
    ),
)]
async fn replace_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
    q: QueryArg<PingQuery>,
    body: JsonArg<ConnectorBody>,
) -> ApiResult<Json<Connector>> {
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
    Ok(Json(redact(&app, &spec)))
}

/// Deletes a connector, its queued jobs, its plugin state and its documents.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/connectors/{connector}",
    operation_id = "deleteConnector",
    tag = "connectors",
    summary = "Delete a connector with its state and documents",
    description = "Its queued jobs are cancelled and a running one is stopped (and waited for) first.",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("connector" = String, Path, description = "Connector id", example = "archive"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such tenant or connector, or not this caller's", body = ErrorBody),
    ),
)]
async fn delete_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    tenant_scope(&app, &headers, &tenant).await?;
    // Its queued jobs are cancelled and a running one is stopped (and waited for) first, so
    // one call removes a connector however many syncs were triggered.
    if !app.delete_connector(&tenant, &connector).await? {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a sync of a connector.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/connectors/{connector}/sync",
    operation_id = "triggerSync",
    tag = "connectors",
    summary = "Queue a sync",
    description = "202 with a new job; 200 with the job already queued for that connector and \
        kind (the trigger merges into it); 429 when the tenant's queue is full. Without a JSON \
        body the sync is `full`.",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("connector" = String, Path, description = "Connector id", example = "docs"),
    ),
    request_body(content = Option<SyncBody>, example = json!({"kind": "incremental"})),
    responses(
        (status = 200, description = "Merged into the job already queued", body = Job),
        (status = 202, description = "Queued", body = Job),
        (status = 400, description = "JSON that does not parse", body = ErrorBody),
        (status = 404, description = "No such tenant or connector, or not this caller's", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (an unknown kind)", body = ErrorBody),
        (status = 429, description = "The tenant's queue is full", body = ErrorBody),
    ),
)]
async fn trigger_sync(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
    body: OptionalJsonArg<SyncBody>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    tenant_scope(&app, &headers, &tenant).await?;
    let body = optional_json_body(body)?;
    let Some(spec) = app.store.connector(&tenant, &connector).await? else {
        return Err(not_found());
    };
    let kind = body.and_then(|b| b.kind).unwrap_or(SyncKind::Full);
    // 202 with a new job; 200 with the job already waiting for this connector and kind (the
    // trigger merged into it); 429 when the tenant's queue is full.
    match app
        .enqueue(&spec, kind, crate::serve::store::QueueReason::Api)
        .await?
    {
        Enqueued::New(report) => Ok((StatusCode::ACCEPTED, Json(Job::from(&report)))),
        Enqueued::Merged(report) => Ok((StatusCode::OK, Json(Job::from(&report)))),
        Enqueued::Full(cap) => Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("the tenant already has {cap} jobs queued; wait for some to finish"),
        )),
    }
}

/// A connector's plugin state: keys and sizes, never values.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/connectors/{connector}/state",
    operation_id = "getConnectorState",
    tag = "connectors",
    summary = "Plugin state keys and sizes (never values)",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("connector" = String, Path, description = "Connector id", example = "docs"),
    ),
    responses(
        (status = 200, description = "Totals and the first 1000 keys", body = ConnectorState),
        (status = 404, description = "No such tenant or connector, or not this caller's", body = ErrorBody),
    ),
)]
async fn get_state(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult<Json<ConnectorState>> {
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
        .map(|(_, keys, bytes)| StateUsage { keys, bytes })
        .unwrap_or(StateUsage { keys: 0, bytes: 0 });
    let keys = keys
        .into_iter()
        .map(|(key, bytes)| StateKey { key, bytes })
        .collect();
    Ok(Json(ConnectorState { usage, keys }))
}

/// Forgets a connector's plugin state.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/connectors/{connector}/state",
    operation_id = "clearConnectorState",
    tag = "connectors",
    summary = "Forget plugin state (cursors); the next incremental sync runs a full one",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("connector" = String, Path, description = "Connector id", example = "docs"),
    ),
    responses(
        (status = 200, description = "What was removed", body = ClearedState),
        (status = 404, description = "No such tenant or connector, or not this caller's", body = ErrorBody),
    ),
)]
async fn clear_state(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, connector)): Path<(String, String)>,
) -> ApiResult<Json<ClearedState>> {
    tenant_scope(&app, &headers, &tenant).await?;
    if app.store.connector(&tenant, &connector).await?.is_none() {
        return Err(not_found());
    }
    let removed = app.store.clear_storage(&tenant, &connector).await?;
    Ok(Json(ClearedState {
        removed_keys: removed,
    }))
}
