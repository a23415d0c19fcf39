//! The service's HTTP API: admin routes (tenants, plugins, metrics) and tenant routes
//! (connectors, jobs, plugin state, search), JSON in and out, described by `/v1/openapi.json`.
//!
//! Authentication is `Authorization: Bearer <token>`: the admin token reaches everything; a
//! tenant token reaches only `/v1/tenants/{its id}/…`. A tenant asking for another tenant's
//! anything gets the same `404` as for a tenant that does not exist, so nothing leaks — not even
//! whether the other tenant exists. Secrets (config fields the plugin marks `sensitive`) are
//! write-only: responses list which are set, never their values, and they are never logged.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Service, TenantQuotas, new_token, token_hash};
use crate::config::{ConnectorSpec, Schedule, valid_name};
use crate::job::SyncKind;
use crate::job::{JobError, JobStatus};
use crate::rules::RuleSpec;
use crate::sink::SearchRequest;

type App = Arc<Service>;

/// The API's routes.
pub fn router(service: Arc<Service>) -> axum::Router {
    let upload_limit = usize::try_from(service.config.max_upload_mib.saturating_mul(1 << 20))
        .unwrap_or(usize::MAX);
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/plugins", get(list_plugins).post(upload_plugin))
        .route("/v1/plugins/{name}/activate", post(activate_plugin))
        .route("/v1/plugins/{name}/rollback", post(roll_back_plugin))
        .route("/v1/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/v1/tenants/{tenant}",
            get(get_tenant).patch(update_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{tenant}/token", post(rotate_token))
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
        .route("/v1/tenants/{tenant}/jobs", get(list_jobs))
        .route("/v1/tenants/{tenant}/jobs/{job}", get(get_job))
        .route("/v1/tenants/{tenant}/jobs/{job}/cancel", post(cancel_job))
        .route("/v1/tenants/{tenant}/search", get(search))
        .layer(DefaultBodyLimit::max(upload_limit))
        .with_state(service)
}

/// An API error: status and message, as `{"error": "…"}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("API request failed: {e:#}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

type ApiResult = Result<Response, ApiError>;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not found".into())
}

/// A query string, judged only after the caller is authenticated (so a request without a valid
/// token learns nothing but 401).
type QueryArg<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: QueryArg<T>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| bad(e.body_text()))
}

fn ok(value: Value) -> ApiResult {
    Ok(Json(value).into_response())
}

/// Who is calling.
#[derive(Debug, PartialEq, Eq)]
enum Caller {
    Admin,
    Tenant(String),
}

async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    app.metrics.request();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        app.metrics.denied();
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>`".into(),
        ));
    };
    let hash = token_hash(token);
    if hash == app.admin_hash {
        return Ok(Caller::Admin);
    }
    match app.store.tenant_by_token(&hash).await? {
        Some(tenant) => Ok(Caller::Tenant(tenant)),
        None => {
            app.metrics.denied();
            Err(ApiError(StatusCode::UNAUTHORIZED, "unknown token".into()))
        }
    }
}

async fn admin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    match caller(app, headers).await? {
        Caller::Admin => Ok(()),
        Caller::Tenant(_) => {
            app.metrics.denied();
            Err(ApiError(
                StatusCode::FORBIDDEN,
                "this needs the admin token".into(),
            ))
        }
    }
}

/// The caller may act on `tenant`, and `tenant` exists; otherwise the same 404 either way.
async fn tenant_scope(app: &App, headers: &HeaderMap, tenant: &str) -> Result<Caller, ApiError> {
    let who = caller(app, headers).await?;
    let allowed = match &who {
        Caller::Admin => true,
        Caller::Tenant(own) => own == tenant,
    };
    if !allowed {
        app.metrics.denied();
        return Err(not_found());
    }
    if app.store.tenant(tenant).await?.is_none() {
        return Err(not_found());
    }
    Ok(who)
}

// ---- health, metrics, description ----

async fn health(State(app): State<App>) -> ApiResult {
    let (running, queued) = app.load(None).await?;
    ok(json!({
        "status": "ok",
        "plugins": app.host.plugins().len(),
        "pooling": app.host.runtime().pooling(),
        "jobs": {"running": running, "queued": queued},
    }))
}

async fn metrics(State(app): State<App>, headers: HeaderMap) -> ApiResult {
    admin(&app, &headers).await?;
    let tenants = app.store.tenants().await?.len();
    let connectors = app.store.all_connectors().await?.len();
    let (running, queued) = app.load(None).await?;
    let text = app.metrics.render(&super::metrics::Gauges {
        tenants,
        connectors,
        running,
        queued,
        plugins: app.host.plugins(),
    });
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn openapi() -> ApiResult {
    ok(super::openapi::document())
}

// ---- plugins ----

async fn list_plugins(State(app): State<App>, headers: HeaderMap) -> ApiResult {
    let who = caller(&app, &headers).await?;
    let mut body = json!({"plugins": app.host.plugins()});
    if who == Caller::Admin {
        body["rejected"] = json!(app.rejections());
    }
    ok(body)
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default = "yes")]
    activate: bool,
}

fn yes() -> bool {
    true
}

async fn upload_plugin(
    State(app): State<App>,
    headers: HeaderMap,
    q: QueryArg<UploadQuery>,
    body: Bytes,
) -> ApiResult {
    admin(&app, &headers).await?;
    let q = query(q)?;
    if body.is_empty() {
        return Err(bad("the request body must be the plugin's .wasm component"));
    }
    match app.upload_plugin(body.to_vec(), q.activate).await {
        Ok(plugin) => {
            let active = app
                .host
                .plugin(&plugin.manifest.name)
                .is_ok_and(|p| p.digest == plugin.digest);
            Ok((
                StatusCode::CREATED,
                Json(json!({
                    "name": plugin.manifest.name,
                    "version": plugin.manifest.version,
                    "digest": plugin.digest,
                    "active": active,
                })),
            )
                .into_response())
        }
        Err(err) => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("plugin refused: {err:#}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    /// A version string or a digest prefix (8+ hex digits).
    version: String,
}

async fn activate_plugin(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Option<Json<ActivateBody>>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let Some(Json(body)) = body else {
        return Err(bad("body must be {\"version\": \"<version or digest>\"}"));
    };
    let plugin = app
        .activate_plugin(&name, &body.version)
        .await
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, format!("{e:#}")))?;
    ok(
        json!({"name": name, "version": plugin.manifest.version, "digest": plugin.digest, "active": true}),
    )
}

async fn roll_back_plugin(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let plugin = app
        .roll_back_plugin(&name)
        .await
        .map_err(|e| ApiError(StatusCode::CONFLICT, format!("{e:#}")))?;
    ok(
        json!({"name": name, "version": plugin.manifest.version, "digest": plugin.digest, "active": true}),
    )
}

// ---- tenants ----

async fn list_tenants(State(app): State<App>, headers: HeaderMap) -> ApiResult {
    admin(&app, &headers).await?;
    ok(json!({"tenants": app.store.tenants().await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: String,
    #[serde(default)]
    quotas: TenantQuotas,
}

async fn create_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<NewTenant>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
    if !valid_name(&body.id) {
        return Err(bad(format!(
            "tenant id `{}` must be 1-64 letters, digits, `-`, `_` or `.`",
            body.id
        )));
    }
    let token = new_token()?;
    if !app
        .store
        .create_tenant(&body.id, Some(token_hash(&token)), &body.quotas)
        .await?
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("tenant `{}` exists", body.id),
        ));
    }
    tracing::info!(tenant = %body.id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": body.id, "token": token, "quotas": body.quotas})),
    )
        .into_response())
}

async fn get_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let Some(record) = app.store.tenant(&tenant).await? else {
        return Err(not_found());
    };
    let effective = app.quotas(&tenant).await?;
    let storage: u64 = app
        .store
        .storage_usage(&tenant)
        .await?
        .iter()
        .map(|(_, _, b)| b)
        .sum();
    let connectors = app.store.connectors(&tenant).await?.len();
    let (running, queued) = app.load(Some(&tenant)).await?;
    ok(json!({
        "id": record.id,
        "quotas": record.quotas,
        "effective_quotas": effective,
        "usage": {"connectors": connectors, "storage_bytes": storage, "jobs_running": running, "jobs_queued": queued},
        "created_at": record.created_at,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantUpdate {
    quotas: TenantQuotas,
}

async fn update_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: Result<Json<TenantUpdate>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
    if !app.store.set_quotas(&tenant, &body.quotas).await? {
        return Err(not_found());
    }
    ok(json!({"id": tenant, "quotas": body.quotas}))
}

async fn delete_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult {
    admin(&app, &headers).await?;
    match app.store.delete_tenant(&tenant).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(not_found()),
        Err(e) => Err(ApiError(StatusCode::CONFLICT, format!("{e:#}"))),
    }
}

async fn rotate_token(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let token = new_token()?;
    if !app.store.set_token(&tenant, token_hash(&token)).await? {
        return Err(not_found());
    }
    ok(json!({"id": tenant, "token": token}))
}

// ---- connectors ----

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
                "{what} `{value}` must be 1-64 letters, digits, `-`, `_` or `.`, not starting with `.`"
            )));
        }
    }
    spec.schedule.check().map_err(|e| bad(format!("{e:#}")))?;
    crate::rules::Rules::compile(&spec.rules)
        .map_err(|e| bad(format!("sync rules: {}", e.join("; "))))?;
    if let Err(e) = app.host.validate_connector(spec, ping).await {
        return Err(validation_error(e));
    }
    Ok(())
}

fn validation_error(e: JobError) -> ApiError {
    let status = match e.kind {
        crate::job::JobErrorKind::Config => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError(status, format!("{e}"))
}

async fn create_connector(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    q: QueryArg<PingQuery>,
    body: Result<Json<ConnectorBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let q = query(q)?;
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
    let Some(id) = body.id.clone() else {
        return Err(bad("`id` is required"));
    };
    if app.store.connector(&tenant, &id).await?.is_some() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("connector `{id}` exists; PUT replaces it"),
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
    body: Result<Json<ConnectorBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let q = query(q)?;
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
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
    app.store.put_connector(&spec, None).await?;
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
    let Some(spec) = app.store.connector(&tenant, &connector).await? else {
        return Err(not_found());
    };
    if app
        .running()
        .iter()
        .any(|(_, t, c, _)| *t == tenant && *c == connector)
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("connector `{connector}` has a running job; cancel it first"),
        ));
    }
    app.store.delete_connector(&tenant, &connector).await?;
    let index = crate::sink::IndexRef::new(tenant.clone(), spec.index_name());
    let sink = app.host.sink();
    for target in [index.clone(), index.acl()] {
        let ids: Vec<String> = sink
            .versions(target.clone(), connector.clone())
            .await?
            .into_keys()
            .collect();
        for chunk in ids.chunks(1000) {
            sink.delete(target.clone(), connector.clone(), chunk.to_vec())
                .await?;
        }
        sink.commit(target).await?;
    }
    tracing::info!(%tenant, %connector, "connector deleted");
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
    let report = app.enqueue(&spec, kind, "api").await?;
    Ok((StatusCode::ACCEPTED, Json(json!(report))).into_response())
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

// ---- jobs ----

#[derive(Deserialize)]
struct JobsQuery {
    connector: Option<String>,
    status: Option<JobStatus>,
    limit: Option<usize>,
}

async fn list_jobs(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    q: QueryArg<JobsQuery>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let mut jobs = app
        .host
        .jobs()
        .list(&tenant, q.connector.as_deref(), q.status, limit)
        .await?;
    for job in &mut jobs {
        app.overlay(job);
    }
    ok(json!({"jobs": jobs}))
}

async fn get_job(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, job)): Path<(String, String)>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    match app.job(&tenant, &job).await? {
        Some(report) => ok(json!(report)),
        None => Err(not_found()),
    }
}

async fn cancel_job(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, job)): Path<(String, String)>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    match app.cancel(&tenant, &job).await? {
        Some(status) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": job, "status": status})),
        )
            .into_response()),
        None => Err(not_found()),
    }
}

// ---- search ----

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    index: String,
    limit: Option<usize>,
    #[serde(rename = "as")]
    identity: Option<String>,
}

async fn search(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    q: QueryArg<SearchQuery>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let q = query(q)?;
    if !valid_name(&q.index) {
        return Err(bad(format!("index `{}` is not a valid name", q.index)));
    }
    let request = SearchRequest {
        query: q.q,
        limit: q.limit.unwrap_or(10).clamp(1, 1000),
        connector: None,
        identities: q.identity.map(|i| vec![i]),
    };
    match app.host.search(&tenant, &q.index, request).await {
        Ok(results) => ok(json!(results)),
        Err(e) => Err(bad(format!("{e:#}"))),
    }
}
