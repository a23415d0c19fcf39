//! Admin routes: plugins (list, upload, activate, roll back) and tenants (create, read, update,
//! delete with everything they own, rotate the token).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiError, ApiResult, App, Caller, JsonArg, QueryArg, admin, bad, caller, json_body, not_found,
    ok, query, shown, tenant_scope,
};
use crate::connector::valid_name;
use crate::serve::{TenantQuotas, new_token, token_hash};

/// The admin routes.
pub(super) fn routes(upload_limit: usize) -> axum::Router<App> {
    axum::Router::new()
        .route(
            "/v1/plugins",
            get(list_plugins)
                .post(upload_plugin)
                // The one route whose body may be larger than a JSON route's.
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/v1/plugins/{name}/activate", post(activate_plugin))
        .route("/v1/plugins/{name}/rollback", post(roll_back_plugin))
        .route("/v1/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/v1/tenants/{tenant}",
            get(get_tenant).patch(update_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{tenant}/token", post(rotate_token))
}

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
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let q = query(q)?;
    // Over the upload limit: 413, as JSON.
    let body = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
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
    body: JsonArg<NewTenant>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let body = json_body(body)?;
    body.quotas.check().map_err(|e| bad(format!("{e:#}")))?;
    if !valid_name(&body.id) {
        return Err(bad(format!(
            "tenant id `{}` must be 1-64 letters, digits, `-`, `_` or `.`",
            shown(&body.id)
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
    body: JsonArg<TenantUpdate>,
) -> ApiResult {
    admin(&app, &headers).await?;
    let body = json_body(body)?;
    body.quotas.check().map_err(|e| bad(format!("{e:#}")))?;
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
    if app.delete_tenant(&tenant).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found())
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
