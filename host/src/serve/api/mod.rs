//! The service's HTTP API: admin routes (tenants, plugins, metrics) and tenant routes
//! (connectors, jobs, plugin state, search), JSON in and out, described by `/v1/openapi.json`
//! and browsable at `/docs`.
//!
//! Invariants:
//! - the router and the OpenAPI document come from the same `#[utoipa::path]` annotations
//!   (`utoipa_axum::routes!`), so a route cannot exist undocumented or be documented without
//!   existing; every JSON body in or out is a type of [`model`], from which the schemas are
//!   derived. Only the console's static assets and `/docs` itself are routed outside the
//!   document: they are pages, not API;
//! - every error is `{"error": "…"}` with its status, unknown routes and methods included;
//!   a route's annotation lists every status it answers with (401 and 500, which every
//!   authenticated route can answer, are added to each by [`document`]).
//!
//! Authentication is `Authorization: Bearer <token>` (the scheme in any case): the admin token reaches everything; a
//! tenant token reaches only `/v1/tenants/{its id}/…`. A tenant asking for another tenant's
//! anything gets the same `404` as for a tenant that does not exist, so nothing leaks — not even
//! whether the other tenant exists. Secrets (config fields the plugin marks `sensitive`) are
//! write-only: responses list which are set, never their values, and they are never logged.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Service, token_hash};

mod admin;
mod connectors;
mod console;
mod docs;
mod jobs;
mod model;

use model::{ErrorBody, Health, HealthStatus, Load, Role, WhoAmI};

type App = Arc<Service>;

/// The API's routes, the console and `/docs`.
pub fn router(service: Arc<Service>) -> axum::Router {
    let upload_limit = usize::try_from(service.config.max_upload_mib.saturating_mul(1 << 20))
        .unwrap_or(usize::MAX);
    let (api, _) = documented(upload_limit).split_for_parts();
    api.merge(console::assets())
        .merge(docs::routes())
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method".into(),
            )
        })
        // JSON routes take small bodies; only the plugin upload (its own limit) takes more.
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(service)
}

/// Every documented route: the router and the OpenAPI paths, from the handlers' annotations.
fn documented(upload_limit: usize) -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .routes(routes!(whoami))
        .merge(admin::routes(upload_limit))
        .merge(console::routes())
        .merge(connectors::routes())
        .merge(jobs::routes())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tributary service API",
        description = "Tenants, connectors, sync jobs and plugins of a tributary host. \
            Authenticate with `Authorization: Bearer <token>`: the admin token reaches every \
            route, a tenant's token only `/v1/tenants/{its id}/…` and the plugin routes that \
            say so. Another tenant's resources answer 404, as if they did not exist. \
            Errors are `{\"error\": \"…\"}`; times are RFC 3339, UTC.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "service", description = "Health, metrics, this document, the caller"),
        (name = "plugins", description = "Plugin versions: list, upload, activate, roll back, configuration schema"),
        (name = "tenants", description = "Tenants, their quotas and tokens (admin)"),
        (name = "connectors", description = "A tenant's connectors, their syncs and plugin state"),
        (name = "jobs", description = "A tenant's sync jobs"),
        (name = "search", description = "Search and export a tenant's indexes"),
    ),
    components(schemas(ErrorBody)),
)]
struct ApiDoc;

/// The OpenAPI document: [`documented`]'s paths, the bearer scheme, and the 401 and 500 every
/// authenticated route can answer (the caller's token is checked first, and the state
/// database can fail on any of them).
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let mut doc = documented(usize::MAX).into_openapi();
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build(),
            )
            .build()
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The admin token, or a tenant's token (`trb_…`, issued when the tenant \
                     is created or its token rotated)",
                ))
                .build(),
        ),
    );
    components.responses.insert(
        "Unauthorized".into(),
        RefOr::T(error("No `Authorization: Bearer` token, or an unknown one")),
    );
    components.responses.insert(
        "InternalError".into(),
        RefOr::T(error("The host failed (state database, index)")),
    );
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if op.security.is_some() {
                for (status, name) in [("401", "Unauthorized"), ("500", "InternalError")] {
                    op.responses
                        .responses
                        .insert(status.into(), RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
    doc
}

/// [`document`] as JSON, built once.
fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        document()
            .to_json()
            .unwrap_or_else(|e| json!({"error": format!("the document: {e}")}).to_string())
    })
}

/// The largest body a JSON route reads (1 MiB); more is a 413 before any of it is parsed.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// An API error: status and message, as `{"error": "…"}`.
struct ApiError(StatusCode, String);

/// The longest error message a response carries, in characters (a safety net: ids and remote
/// text are bounded where they are quoted already).
const MAX_ERROR_CHARS: usize = 2000;

/// The most of an id (tenant, connector, index, job, plugin name) an error message quotes.
const SHOWN_ID_CHARS: usize = 64;

/// `id` as an error message quotes it: its first [`SHOWN_ID_CHARS`] characters and `…` when it
/// is longer, so a 10 KB id does not come back whole.
fn shown(id: &str) -> String {
    if id.chars().count() <= SHOWN_ID_CHARS {
        return id.to_string();
    }
    let head: String = id.chars().take(SHOWN_ID_CHARS).collect();
    format!("{head}…")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = excerpt_to(&self.1, MAX_ERROR_CHARS);
        let mut response = (self.0, Json(ErrorBody { error: message })).into_response();
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

type ApiResult<T = Response> = Result<T, ApiError>;

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

/// A JSON body, judged (like a query) after authentication; a refusal keeps axum's status —
/// 415 without a JSON content type, 400 for malformed JSON, 422 for JSON of the wrong shape,
/// 413 over the body limit — with the `{"error": …}` body of every other error.
type JsonArg<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn json_body<T>(body: JsonArg<T>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|e| ApiError(e.status(), e.body_text()))
}

/// An optional JSON body: none without a JSON content type; malformed or of the wrong shape,
/// refused as [`json_body`] refuses it (axum's own refusal would be plain text).
type OptionalJsonArg<T> = Result<Option<Json<T>>, axum::extract::rejection::JsonRejection>;

fn optional_json_body<T>(body: OptionalJsonArg<T>) -> Result<Option<T>, ApiError> {
    body.map(|b| b.map(|Json(b)| b))
        .map_err(|e| ApiError(e.status(), e.body_text()))
}

/// The most of a plugin's or remote's error text a tenant is shown, in characters: errors may
/// quote a remote body, which must not come back whole (it can be large, or an internal page).
const ERROR_EXCERPT_CHARS: usize = 300;

/// `text` bounded to [`ERROR_EXCERPT_CHARS`]: wasm backtrace lines dropped, then its start and
/// its end (where the cause usually is), saying how much was left out between them.
fn excerpt(text: &str) -> String {
    excerpt_to(text, ERROR_EXCERPT_CHARS)
}

/// [`excerpt`] to `max` characters.
fn excerpt_to(text: &str, max: usize) -> String {
    let is_frame = |line: &str| {
        line.trim_start().split_once(':').is_some_and(|(n, rest)| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && rest.trim_start().starts_with("0x")
        })
    };
    let text: String = if text.lines().any(is_frame) {
        // A frame line may end with the error chain (`…<wasm function 1>: cause`): kept.
        text.lines()
            .filter_map(|l| {
                if is_frame(l) {
                    l.split_once(">: ").map(|(_, cause)| cause)
                } else {
                    Some(l)
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        text.to_string()
    };
    let total = text.chars().count();
    if total <= max {
        return text;
    }
    let half = max / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(total - half).collect();
    format!(
        "{head} … ({} characters left out) … {tail}",
        total - 2 * half
    )
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
        .and_then(|v| v.trim_start().split_once(' '))
        // The scheme is case-insensitive (RFC 7235 section 2.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
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

// ---- health, metrics, description, the caller ----

/// Liveness with a real check of the state database (a query through the service's connection
/// and the file on disk opened afresh): 503 with `{"error": …}` when it fails.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "service",
    summary = "Liveness, plugin count, running and queued jobs",
    responses(
        (status = 200, description = "The state database answered", body = Health),
        (status = 500, description = "Reading the job queue failed", body = ErrorBody),
        (status = 503, description = "The state database is unavailable", body = ErrorBody),
    ),
)]
async fn health(State(app): State<App>) -> ApiResult<Json<Health>> {
    if let Err(e) = app.store.check_health().await {
        tracing::error!("health check failed: {e:#}");
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state database unavailable: {e:#}"),
        ));
    }
    let (running, queued) = app.load(None).await?;
    Ok(Json(Health {
        status: HealthStatus::Ok,
        plugins: app.host.plugins().len(),
        pooling: app.host.runtime().pooling(),
        jobs: Load { running, queued },
    }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "service",
    summary = "Prometheus metrics",
    description = "Requests, jobs (by outcome, with a duration histogram), queue, tenants, \
        connectors and their last success, plugins, and the process (CPU, memory, files).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 403, description = "A tenant token: this needs the admin token", body = ErrorBody),
    ),
)]
async fn metrics(State(app): State<App>, headers: HeaderMap) -> ApiResult {
    admin(&app, &headers).await?;
    let tenants = app.store.tenants().await?.len();
    let connectors = app.store.all_connectors().await?;
    let (running, queued) = app.load(None).await?;
    // Only connectors that still exist: a deleted one's series disappears.
    let configured: std::collections::HashSet<(&str, &str)> = connectors
        .iter()
        .map(|c| (c.tenant.as_str(), c.id.as_str()))
        .collect();
    let last_success = app
        .host
        .jobs()
        .last_successes()
        .await?
        .into_iter()
        .filter(|(t, c, _)| configured.contains(&(t.as_str(), c.as_str())))
        .collect();
    let text = app.metrics.render(&super::metrics::Gauges {
        tenants,
        connectors: connectors.len(),
        running,
        queued,
        plugins: app.host.plugins(),
        last_success,
    });
    Ok(([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text).into_response())
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "service",
    summary = "This OpenAPI 3.1 document",
    responses(
        (status = 200, description = "The OpenAPI document, generated from the routes", body = Object),
    ),
)]
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

/// Whether a token is the admin's or a tenant's, and which tenant's.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    operation_id = "whoami",
    tag = "service",
    summary = "Who the token belongs to: the admin, or which tenant",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's role and tenant", body = WhoAmI),
    ),
)]
async fn whoami(State(app): State<App>, headers: HeaderMap) -> ApiResult<Json<WhoAmI>> {
    Ok(Json(match caller(&app, &headers).await? {
        Caller::Admin => WhoAmI {
            role: Role::Admin,
            tenant: None,
        },
        Caller::Tenant(tenant) => WhoAmI {
            role: Role::Tenant,
            tenant: Some(tenant),
        },
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_health_and_the_document_are_public() {
        let doc = serde_json::to_value(document()).unwrap();
        let mut public = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("security").is_none() {
                    public.push(format!("{method} {path}"));
                } else {
                    assert_eq!(
                        op["responses"]["401"]["$ref"], "#/components/responses/Unauthorized",
                        "{method} {path}"
                    );
                }
            }
        }
        assert_eq!(public, ["get /health", "get /v1/openapi.json"]);
        let described = &doc["paths"]["/v1/openapi.json"]["get"]["responses"]["200"];
        assert_eq!(
            described["content"]["application/json"]["schema"]["type"],
            "object"
        );
    }

    #[test]
    fn errors_shown_to_tenants_quote_only_an_excerpt() {
        // A remote's long body inside a plugin error (a ping's refusal or a failed job).
        let body = "<html>internal admin page ".repeat(4000);
        let message = format!("feed answered HTTP 500: {body}");
        let shown = excerpt(&message);
        assert!(shown.chars().count() < ERROR_EXCERPT_CHARS + 40, "{shown}");
        assert!(
            shown.starts_with("feed answered HTTP 500: <html>"),
            "{shown}"
        );
        assert!(shown.contains("characters left out"), "{shown}");
        assert!(shown.ends_with("internal admin page "), "{shown}");
        assert_eq!(excerpt("short"), "short");
        // Multi-byte characters are cut on a character boundary.
        assert_eq!(
            excerpt(&"é".repeat(400))
                .chars()
                .filter(|c| *c == 'é')
                .count(),
            ERROR_EXCERPT_CHARS
        );

        let refusal = connectors::validation_error(crate::job::JobError::new(
            crate::job::JobErrorKind::Transient,
            message.clone(),
        ));
        assert!(refusal.1.chars().count() < ERROR_EXCERPT_CHARS + 40);

        let mut report = crate::job::JobReport {
            id: "j".into(),
            tenant: "t".into(),
            connector: "c".into(),
            kind: crate::job::SyncKind::Full,
            plugin: "feed".into(),
            plugin_version: String::new(),
            status: crate::job::JobStatus::Failed,
            counts: Default::default(),
            error: Some(crate::job::JobError::new(
                crate::job::JobErrorKind::Transient,
                message.clone(),
            )),
            warnings: vec![message.clone()],
            started_at: 0,
            finished_at: None,
            duration_ms: 0,
        };
        let shown = serde_json::to_value(model::Job::from(&report)).unwrap();
        let text = shown["error"]["message"].as_str().unwrap();
        assert!(text.chars().count() < ERROR_EXCERPT_CHARS + 40, "{text}");
        let warning = shown["warnings"][0].as_str().unwrap();
        assert!(warning.chars().count() < ERROR_EXCERPT_CHARS + 40);
        report.error = None;
        assert!(serde_json::to_value(model::Job::from(&report)).unwrap()["error"].is_null());
    }
}
