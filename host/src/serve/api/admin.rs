//! Admin routes: plugins (list, upload, activate, roll back) and tenants (create, read, update,
//! delete with everything they own, rotate the token).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::model::{
    ActivateBody, CreatedTenant, ErrorBody, NewTenant, Plugin, PluginList, PluginVersion,
    RejectedPlugin, Tenant, TenantDetail, TenantList, TenantQuotasSet, TenantToken, TenantUpdate,
    TenantUsage, utc,
};
use super::{
    ApiError, ApiResult, App, Caller, JsonArg, OptionalJsonArg, QueryArg, admin, bad, caller,
    json_body, not_found, optional_json_body, query, shown, tenant_scope,
};
use crate::connector::valid_name;
use crate::serve::{new_token, token_hash};

/// The admin routes.
pub(super) fn routes(upload_limit: usize) -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(
            routes!(list_plugins, upload_plugin)
                // The one route whose body may be larger than a JSON route's.
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .routes(routes!(activate_plugin))
        .routes(routes!(roll_back_plugin))
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
        .routes(routes!(rotate_token))
}

/// Loaded plugin versions; the admin also sees refused uploads.
#[utoipa::path(
    get,
    path = "/v1/plugins",
    operation_id = "listPlugins",
    tag = "plugins",
    summary = "Loaded plugin versions (the admin also sees refused uploads)",
    security(("bearer" = [])),
    responses((status = 200, description = "Every loaded version", body = PluginList)),
)]
async fn list_plugins(State(app): State<App>, headers: HeaderMap) -> ApiResult<Json<PluginList>> {
    let who = caller(&app, &headers).await?;
    let rejected = (who == Caller::Admin).then(|| {
        app.rejections()
            .into_iter()
            .map(RejectedPlugin::from)
            .collect()
    });
    Ok(Json(PluginList {
        plugins: app.host.plugins().into_iter().map(Plugin::from).collect(),
        rejected,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// Make the new version active (default); `false` keeps the current one active.
    #[serde(default = "yes")]
    #[param(example = false)]
    activate: bool,
}

fn yes() -> bool {
    true
}

/// Uploads a plugin component: compiled, checked and kept; active unless `activate=false`.
#[utoipa::path(
    post,
    path = "/v1/plugins",
    operation_id = "uploadPlugin",
    tag = "plugins",
    summary = "Upload a plugin component (the .wasm bytes)",
    description = "The component is compiled and checked (its WIT world, manifest and \
        configuration schema) before it is kept; a refused one answers 422 saying why and is \
        listed under `rejected`. The body limit is `[service] max_upload_mib`.",
    security(("bearer" = [])),
    params(UploadQuery),
    request_body(
        content = String,
        content_type = "application/wasm",
        description = "A WebAssembly component of the `tributary:connector` world",
    ),
    responses(
        (status = 201, description = "Kept (and active unless `activate=false`)", body = PluginVersion),
        (status = 400, description = "An empty body, or a query that does not parse", body = ErrorBody),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
        (status = 413, description = "Over the upload limit", body = ErrorBody),
        (status = 422, description = "The plugin was refused, and why", body = ErrorBody),
    ),
)]
async fn upload_plugin(
    State(app): State<App>,
    headers: HeaderMap,
    q: QueryArg<UploadQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<PluginVersion>)> {
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
                Json(PluginVersion {
                    name: plugin.manifest.name.clone(),
                    version: plugin.manifest.version.clone(),
                    digest: plugin.digest.clone(),
                    active,
                }),
            ))
        }
        Err(err) => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("plugin refused: {err:#}"),
        )),
    }
}

/// Makes a kept version of a plugin the active one.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/activate",
    operation_id = "activatePlugin",
    tag = "plugins",
    summary = "Make a kept version active",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name", example = "feed")),
    request_body(
        content = ActivateBody,
        example = json!({"version": "0.2.0-next"}),
    ),
    responses(
        (status = 200, description = "Active now", body = PluginVersion),
        (status = 400, description = "No JSON body, or JSON that does not parse", body = ErrorBody),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
        (status = 404, description = "No such plugin or version", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    ),
)]
async fn activate_plugin(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: OptionalJsonArg<ActivateBody>,
) -> ApiResult<Json<PluginVersion>> {
    admin(&app, &headers).await?;
    let Some(body) = optional_json_body(body)? else {
        return Err(bad("body must be {\"version\": \"<version or digest>\"}"));
    };
    let plugin = app
        .activate_plugin(&name, &body.version)
        .await
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, format!("{e:#}")))?;
    Ok(Json(PluginVersion {
        name,
        version: plugin.manifest.version.clone(),
        digest: plugin.digest.clone(),
        active: true,
    }))
}

/// Makes the version before the active one active.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/rollback",
    operation_id = "rollBackPlugin",
    tag = "plugins",
    summary = "Make the version before the active one active",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name", example = "feed")),
    responses(
        (status = 200, description = "The earlier version is active now", body = PluginVersion),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
        (status = 409, description = "No earlier version to go back to (or no such plugin)", body = ErrorBody),
    ),
)]
async fn roll_back_plugin(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginVersion>> {
    admin(&app, &headers).await?;
    let plugin = app
        .roll_back_plugin(&name)
        .await
        .map_err(|e| ApiError(StatusCode::CONFLICT, format!("{e:#}")))?;
    Ok(Json(PluginVersion {
        name,
        version: plugin.manifest.version.clone(),
        digest: plugin.digest.clone(),
        active: true,
    }))
}

/// Every tenant.
#[utoipa::path(
    get,
    path = "/v1/tenants",
    operation_id = "listTenants",
    tag = "tenants",
    summary = "List tenants",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every tenant", body = TenantList),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
    ),
)]
async fn list_tenants(State(app): State<App>, headers: HeaderMap) -> ApiResult<Json<TenantList>> {
    admin(&app, &headers).await?;
    let tenants = app.store.tenants().await?;
    Ok(Json(TenantList {
        tenants: tenants.into_iter().map(Tenant::from).collect(),
    }))
}

/// Creates a tenant and issues its API token.
#[utoipa::path(
    post,
    path = "/v1/tenants",
    operation_id = "createTenant",
    tag = "tenants",
    summary = "Create a tenant; the answer holds its API token, shown once",
    security(("bearer" = [])),
    request_body(
        content = NewTenant,
        example = json!({"id": "globex", "quotas": {"max_connectors": 5, "max_documents": 100000}}),
    ),
    responses(
        (status = 201, description = "Created, with its token", body = CreatedTenant),
        (status = 400, description = "An invalid id or quota, or JSON that does not parse", body = ErrorBody),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
        (status = 409, description = "The tenant exists", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    ),
)]
async fn create_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    body: JsonArg<NewTenant>,
) -> ApiResult<(StatusCode, Json<CreatedTenant>)> {
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
        Json(CreatedTenant {
            id: body.id,
            token,
            quotas: body.quotas,
        }),
    ))
}

/// A tenant's quotas and usage.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}",
    operation_id = "getTenant",
    tag = "tenants",
    summary = "A tenant's quotas and usage (the admin, or that tenant)",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id", example = "acme")),
    responses(
        (status = 200, description = "The tenant", body = TenantDetail),
        (status = 404, description = "No such tenant, or not this caller's", body = ErrorBody),
    ),
)]
async fn get_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult<Json<TenantDetail>> {
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
    Ok(Json(TenantDetail {
        id: record.id,
        quotas: record.quotas,
        effective_quotas: effective,
        usage: TenantUsage {
            connectors,
            storage_bytes: storage,
            jobs_running: running,
            jobs_queued: queued,
        },
        created_at: utc(record.created_at),
    }))
}

/// Replaces a tenant's quotas.
#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}",
    operation_id = "updateTenant",
    tag = "tenants",
    summary = "Replace a tenant's quotas",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id", example = "acme")),
    request_body(
        content = TenantUpdate,
        example = json!({"quotas": {"max_connectors": 10, "max_concurrent_syncs": 2}}),
    ),
    responses(
        (status = 200, description = "The quotas now", body = TenantQuotasSet),
        (status = 400, description = "An invalid quota, or JSON that does not parse", body = ErrorBody),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    ),
)]
async fn update_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: JsonArg<TenantUpdate>,
) -> ApiResult<Json<TenantQuotasSet>> {
    admin(&app, &headers).await?;
    let body = json_body(body)?;
    body.quotas.check().map_err(|e| bad(format!("{e:#}")))?;
    if !app.store.set_quotas(&tenant, &body.quotas).await? {
        return Err(not_found());
    }
    Ok(Json(TenantQuotasSet {
        id: tenant,
        quotas: body.quotas,
    }))
}

/// Deletes a tenant with everything it owns.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}",
    operation_id = "deleteTenant",
    tag = "tenants",
    summary = "Delete a tenant with its connectors, jobs, plugin state and indexes",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id", example = "initech")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
)]
async fn delete_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&app, &headers).await?;
    if app.delete_tenant(&tenant).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

/// Issues a new API token for a tenant; the old one stops working.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/token",
    operation_id = "rotateTenantToken",
    tag = "tenants",
    summary = "Issue a new API token (the old one stops working)",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id", example = "acme")),
    responses(
        (status = 200, description = "The new token, shown once", body = TenantToken),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
)]
async fn rotate_token(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult<Json<TenantToken>> {
    admin(&app, &headers).await?;
    let token = new_token()?;
    if !app.store.set_token(&tenant, token_hash(&token)).await? {
        return Err(not_found());
    }
    Ok(Json(TenantToken { id: tenant, token }))
}
