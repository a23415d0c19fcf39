//! Tenant routes for jobs (list, read with live counts, cancel) and search.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiError, ApiResult, App, QueryArg, bad, job_json, not_found, ok, query, shown, tenant_scope,
};
use crate::connector::valid_name;
use crate::job::JobStatus;
use crate::sink::{SearchRequest, UnknownIndex};

/// The job and search routes.
pub(super) fn routes() -> axum::Router<App> {
    axum::Router::new()
        .route("/v1/tenants/{tenant}/jobs", get(list_jobs))
        .route("/v1/tenants/{tenant}/jobs/{job}", get(get_job))
        .route("/v1/tenants/{tenant}/jobs/{job}/cancel", post(cancel_job))
        .route("/v1/tenants/{tenant}/search", get(search))
}

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
    let jobs: Vec<serde_json::Value> = jobs.iter().map(job_json).collect();
    ok(json!({"jobs": jobs}))
}

async fn get_job(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, job)): Path<(String, String)>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    match app.job(&tenant, &job).await? {
        Some(report) => ok(job_json(&report)),
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
        return Err(bad(format!(
            "index `{}` is not a valid name",
            shown(&q.index)
        )));
    }
    let request = SearchRequest {
        query: q.q,
        limit: q.limit.unwrap_or(10).clamp(1, 1000),
        connector: None,
        identities: q.identity.map(|i| vec![i]),
    };
    match app.host.search(&tenant, &q.index, request).await {
        Ok(results) => ok(json!(results)),
        Err(e) => match e.downcast_ref::<UnknownIndex>() {
            Some(unknown) => Err(ApiError(StatusCode::NOT_FOUND, unknown.to_string())),
            None => Err(bad(format!("{e:#}"))),
        },
    }
}
