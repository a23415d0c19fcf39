//! The service's HTTP API: admin routes (tenants, plugins, metrics) and tenant routes
//! (connectors, jobs, plugin state, search), JSON in and out, described by `/v1/openapi.json`.
//!
//! Every error is `{"error": "…"}` with its status, unknown routes and methods included.
//!
//! Authentication is `Authorization: Bearer <token>` (the scheme in any case): the admin token reaches everything; a
//! tenant token reaches only `/v1/tenants/{its id}/…`. A tenant asking for another tenant's
//! anything gets the same `404` as for a tenant that does not exist, so nothing leaks — not even
//! whether the other tenant exists. Secrets (config fields the plugin marks `sensitive`) are
//! write-only: responses list which are set, never their values, and they are never logged.

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Service, token_hash};

mod admin;
mod connectors;
mod console;
mod jobs;

type App = Arc<Service>;

/// The API's routes.
pub fn router(service: Arc<Service>) -> axum::Router {
    let upload_limit = usize::try_from(service.config.max_upload_mib.saturating_mul(1 << 20))
        .unwrap_or(usize::MAX);
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .merge(console::routes())
        .merge(admin::routes(upload_limit))
        .merge(connectors::routes())
        .merge(jobs::routes())
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
        let mut response = (self.0, Json(json!({"error": message}))).into_response();
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

/// A JSON body, judged (like a query) after authentication; a refusal keeps axum's status —
/// 415 without a JSON content type, 400 for malformed JSON, 422 for JSON of the wrong shape,
/// 413 over the body limit — with the `{"error": …}` body of every other error.
type JsonArg<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn json_body<T>(body: JsonArg<T>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
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

/// A job record as the API shows it: warnings and the error message bounded by [`excerpt`].
fn job_json(report: &crate::job::JobReport) -> Value {
    let mut report = report.clone();
    if let Some(e) = report.error.as_mut() {
        e.message = excerpt(&e.message);
    }
    for w in &mut report.warnings {
        *w = excerpt(w);
    }
    json!(report)
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

// ---- health, metrics, description ----

/// Liveness with a real check of the state database (a query through the service's connection
/// and the file on disk opened afresh): 503 with `{"error": …}` when it fails.
async fn health(State(app): State<App>) -> ApiResult {
    if let Err(e) = app.store.check_health().await {
        tracing::error!("health check failed: {e:#}");
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state database unavailable: {e:#}"),
        ));
    }
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

async fn openapi() -> ApiResult {
    ok(super::openapi::document())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        let shown = job_json(&report);
        let text = shown["error"]["message"].as_str().unwrap();
        assert!(text.chars().count() < ERROR_EXCERPT_CHARS + 40, "{text}");
        let warning = shown["warnings"][0].as_str().unwrap();
        assert!(warning.chars().count() < ERROR_EXCERPT_CHARS + 40);
        report.error = None;
        assert!(job_json(&report)["error"].is_null());
    }
}
