//! Tenant routes for jobs (list, read with live counts, cancel), search and export.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{Cancelled, ErrorBody, ExportLine, Job, JobList, SearchResults};
use super::{ApiError, ApiResult, App, QueryArg, bad, not_found, query, shown, tenant_scope};
use crate::connector::valid_name;
use crate::job::JobStatus;
use crate::sink::{
    Cursor, Filter, IndexRef, InvalidQuery, SearchRequest, Sort, UnknownField, UnknownIndex, pages,
};

/// The job and search routes.
pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
        .routes(routes!(search))
        .routes(routes!(export))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct JobsQuery {
    /// Only this connector's jobs.
    #[param(example = "docs")]
    connector: Option<String>,
    /// Only jobs in this status.
    #[param(example = "succeeded")]
    status: Option<JobStatus>,
    /// At most this many (1-1000, default 50).
    #[param(example = 20, minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A tenant's jobs, newest first, with live counts of running ones.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/jobs",
    operation_id = "listJobs",
    tag = "jobs",
    summary = "Jobs, newest first",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id", example = "acme"), JobsQuery),
    responses(
        (status = 200, description = "The jobs", body = JobList),
        (status = 400, description = "A query that does not parse (an unknown status)", body = ErrorBody),
        (status = 404, description = "No such tenant, or not this caller's", body = ErrorBody),
    ),
)]
async fn list_jobs(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    q: QueryArg<JobsQuery>,
) -> ApiResult<Json<JobList>> {
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
    Ok(Json(JobList {
        jobs: jobs.iter().map(Job::from).collect(),
    }))
}

/// One job, with live counts while it runs.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/jobs/{job}",
    operation_id = "getJob",
    tag = "jobs",
    summary = "One job with live counts while it runs",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("job" = String, Path, description = "Job id", example = "18c3f9a2b4d00000-4d2-0"),
    ),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such tenant or job, or not this caller's", body = ErrorBody),
    ),
)]
async fn get_job(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, job)): Path<(String, String)>,
) -> ApiResult<Json<Job>> {
    tenant_scope(&app, &headers, &tenant).await?;
    match app.job(&tenant, &job).await? {
        Some(report) => Ok(Json(Job::from(&report))),
        None => Err(not_found()),
    }
}

/// Cancels a queued job, or stops a running one at its next call.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/jobs/{job}/cancel",
    operation_id = "cancelJob",
    tag = "jobs",
    summary = "Cancel a queued job, or stop a running one",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        ("job" = String, Path, description = "Job id", example = "18c3f9a2b4d00000-4d2-0"),
    ),
    responses(
        (status = 202, description = "Where the job stands: `cancelled`, `running` (stopping), or how it had ended", body = Cancelled),
        (status = 404, description = "No such tenant or job, or not this caller's", body = ErrorBody),
    ),
)]
async fn cancel_job(
    State(app): State<App>,
    headers: HeaderMap,
    Path((tenant, job)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Cancelled>)> {
    tenant_scope(&app, &headers, &tenant).await?;
    match app.cancel(&tenant, &job).await? {
        Some(status) => Ok((StatusCode::ACCEPTED, Json(Cancelled { id: job, status }))),
        None => Err(not_found()),
    }
}

/// The query of a search or an export. `filter` and `facet` may repeat, so they are read from
/// the raw query string and documented on the routes.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// The query (the search language: words, `"phrases"`, `field:value`, `AND`/`OR`/`NOT`);
    /// every document when absent.
    #[param(example = "report")]
    q: Option<String>,
    /// The index to search (a connector's index; by default its id).
    #[param(example = "docs")]
    index: String,
    /// Hits per page (default 10).
    #[param(example = 5)]
    limit: Option<usize>,
    /// Search as this identity: only documents whose access-control list admits it.
    #[serde(rename = "as")]
    identity: Option<String>,
    /// `field`, `field:asc` or `field:desc`; by relevance when absent.
    sort: Option<String>,
    /// The cursor of the next page (`next` of the previous answer).
    after: Option<String>,
    /// Only count: `total` and facets, no hits.
    #[serde(default)]
    count: bool,
    /// Include each document's extracted text (`body`).
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

/// Searches one of the tenant's indexes.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/search",
    operation_id = "search",
    tag = "search",
    summary = "Search an index of the tenant",
    description = "`next` in the answer is the cursor of the next page. A query that does not \
        parse or names an unknown field is a 400 saying why; an index that does not exist is a \
        404 naming those that do, and is not created.",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        SearchQuery,
        ("filter" = Option<Vec<String>>, Query, description = "`field=value`: only documents whose field holds the value (repeatable)", example = json!(["_connector=docs"])),
        ("facet" = Option<Vec<String>>, Query, description = "Count the matches per value of this field (repeatable)", example = json!(["_connector"])),
    ),
    responses(
        (status = 200, description = "A page of results", body = SearchResults),
        (status = 400, description = "A query, filter, sort or cursor that does not parse, or an unknown field", body = ErrorBody),
        (status = 404, description = "No such tenant or index, or not this caller's", body = ErrorBody),
    ),
)]
async fn search(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
    q: QueryArg<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    tenant_scope(&app, &headers, &tenant).await?;
    let (index, request) = search_request(query(q)?, raw.as_deref())?;
    match app.host.search(&tenant, &index, request).await {
        Ok(results) => Ok(Json(SearchResults::from(results))),
        Err(e) => Err(search_error(e)),
    }
}

/// Every matching document of an index as JSON lines (`application/x-ndjson`), streamed a
/// page at a time. The index and query are checked before the first byte, so those errors
/// keep their status.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/export",
    operation_id = "export",
    tag = "search",
    summary = "Every matching document of an index as JSON lines, streamed",
    description = "One `ExportLine` per line. Takes the search's parameters; `limit`, `after` \
        and `facet` do not apply.",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id", example = "acme"),
        SearchQuery,
        ("filter" = Option<Vec<String>>, Query, description = "`field=value`: only documents whose field holds the value (repeatable)", example = json!(["_connector=docs"])),
    ),
    responses(
        (status = 200, description = "JSON lines, one document each", content_type = "application/x-ndjson", body = ExportLine),
        (status = 400, description = "A query, filter or sort that does not parse, or an unknown field", body = ErrorBody),
        (status = 404, description = "No such tenant or index, or not this caller's", body = ErrorBody),
    ),
)]
async fn export(
    State(app): State<App>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
    q: QueryArg<SearchQuery>,
) -> ApiResult<Response> {
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
        page.and_then(|hits| {
            let mut out = Vec::new();
            for hit in hits {
                let line = ExportLine {
                    id: hit.id,
                    connector: hit.connector,
                    fields: hit.fields,
                    body: hit.body,
                };
                serde_json::to_writer(&mut out, &line)?;
                out.push(b'\n');
            }
            Ok(bytes::Bytes::from(out))
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
