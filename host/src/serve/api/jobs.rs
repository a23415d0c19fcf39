//! Tenant routes for jobs (list, read with live counts, cancel), search and export.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
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
use crate::sink::{
    Cursor, Filter, IndexRef, InvalidQuery, SearchRequest, Sort, UnknownField, UnknownIndex, pages,
};

/// The job and search routes.
pub(super) fn routes() -> axum::Router<App> {
    axum::Router::new()
        .route("/v1/tenants/{tenant}/jobs", get(list_jobs))
        .route("/v1/tenants/{tenant}/jobs/{job}", get(get_job))
        .route("/v1/tenants/{tenant}/jobs/{job}/cancel", post(cancel_job))
        .route("/v1/tenants/{tenant}/search", get(search))
        .route("/v1/tenants/{tenant}/export", get(export))
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
    /// The query; every document when absent.
    q: Option<String>,
    index: String,
    limit: Option<usize>,
    #[serde(rename = "as")]
    identity: Option<String>,
    sort: Option<String>,
    after: Option<String>,
    #[serde(default)]
    count: bool,
    #[serde(default)]
    body: bool,
}

/// The search a query string asks for; `filter=field=value` and `facet=field` may repeat (read
/// from the raw query, which the typed one cannot hold).
fn search_request(q: SearchQuery, raw: Option<&str>) -> Result<(String, SearchRequest), ApiError> {
    if !valid_name(&q.index) {
        return Err(bad(format!(
            "index `{}` is not a valid name",
            shown(&q.index)
        )));
    }
    let mut filters = Vec::new();
    let mut facets = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "filter" => filters.push(value.parse::<Filter>().map_err(bad)?),
            "facet" => facets.push(value.into_owned()),
            _ => {}
        }
    }
    let sort = q.sort.map(|s| s.parse::<Sort>()).transpose().map_err(bad)?;
    let request = SearchRequest {
        identities: q.identity.map(|i| vec![i]),
        filters,
        facets,
        sort,
        after: q.after.map(Cursor),
        count_only: q.count,
        with_body: q.body,
        ..SearchRequest::new(q.q.unwrap_or_else(|| "*".into()), q.limit.unwrap_or(10))
    };
    Ok((q.index, request))
}

/// A failed search as the API answers it: an unknown index 404, a query that does not parse
/// or names an unknown field 400 with the reason.
fn search_error(e: anyhow::Error) -> ApiError {
    if let Some(unknown) = e.downcast_ref::<UnknownIndex>() {
        return ApiError(StatusCode::NOT_FOUND, unknown.to_string());
    }
    if let Some(invalid) = e.downcast_ref::<InvalidQuery>() {
        return bad(invalid.to_string());
    }
    if let Some(unknown) = e.downcast_ref::<UnknownField>() {
        return bad(unknown.to_string());
    }
    bad(format!("{e:#}"))
}

async fn search(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
    q: QueryArg<SearchQuery>,
) -> ApiResult {
    tenant_scope(&app, &headers, &tenant).await?;
    let (index, request) = search_request(query(q)?, raw.as_deref())?;
    match app.host.search(&tenant, &index, request).await {
        Ok(results) => ok(json!(results)),
        Err(e) => Err(search_error(e)),
    }
}

/// Every matching document of an index as JSON lines (`application/x-ndjson`), streamed a
/// page at a time: `{"id", "connector", "fields"}` (and `body` with `body=true`). The index and
/// query are checked before the first byte, so those errors keep their status.
async fn export(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
    q: QueryArg<SearchQuery>,
) -> ApiResult {
    use futures::StreamExt;
    tenant_scope(&app, &headers, &tenant).await?;
    let (index, mut request) = search_request(query(q)?, raw.as_deref())?;
    let probe = SearchRequest {
        count_only: true,
        ..request.clone()
    };
    app.host
        .search(&tenant, &index, probe)
        .await
        .map_err(search_error)?;
    request.limit = EXPORT_PAGE;
    let lines = pages(
        app.host.sink().clone(),
        IndexRef::new(&tenant, &index),
        request,
    )
    .map(|page| {
        page.map(|hits| {
            let mut out = Vec::new();
            for hit in hits {
                let mut line =
                    json!({"id": hit.id, "connector": hit.connector, "fields": hit.fields});
                if let Some(body) = hit.body {
                    line["body"] = json!(body);
                }
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
            }
            bytes::Bytes::from(out)
        })
        .map_err(|e| std::io::Error::other(format!("{e:#}")))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response())
}

/// Documents per page of an export: the most a page holds, as each page is a pass over the
/// matches.
const EXPORT_PAGE: usize = crate::sink::MAX_PAGE;
