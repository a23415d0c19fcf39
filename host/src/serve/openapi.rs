//! The OpenAPI 3.1 description of the service API (`GET /v1/openapi.json`).
//!
//! Written out by hand from one table of routes, so that the table, the router in `api.rs` and
//! this document are checked against each other by the tests.

use serde_json::{Map, Value, json};

/// `(method, path, who may call it, summary)` for every route.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "get",
        "/health",
        "anyone",
        "Liveness, plugin count, running and queued jobs",
    ),
    ("get", "/metrics", "admin", "Prometheus metrics"),
    ("get", "/v1/openapi.json", "anyone", "This document"),
    (
        "get",
        "/v1/plugins",
        "admin or tenant",
        "Loaded plugin versions (admins also see refused uploads)",
    ),
    (
        "post",
        "/v1/plugins",
        "admin",
        "Upload a plugin component (body: the .wasm bytes; ?activate=false keeps the current version active)",
    ),
    (
        "post",
        "/v1/plugins/{name}/activate",
        "admin",
        "Make a kept version active: {\"version\": \"<version or digest prefix>\"}",
    ),
    (
        "post",
        "/v1/plugins/{name}/rollback",
        "admin",
        "Make the version before the active one active",
    ),
    ("get", "/v1/tenants", "admin", "List tenants"),
    (
        "post",
        "/v1/tenants",
        "admin",
        "Create a tenant {id, quotas}; the response holds its API token, shown once",
    ),
    (
        "get",
        "/v1/tenants/{tenant}",
        "admin or that tenant",
        "A tenant's quotas and usage",
    ),
    (
        "patch",
        "/v1/tenants/{tenant}",
        "admin",
        "Replace a tenant's quotas",
    ),
    (
        "delete",
        "/v1/tenants/{tenant}",
        "admin",
        "Delete a tenant without connectors",
    ),
    (
        "post",
        "/v1/tenants/{tenant}/token",
        "admin",
        "Issue a new API token (the old one stops working)",
    ),
    (
        "get",
        "/v1/tenants/{tenant}/connectors",
        "admin or that tenant",
        "List connectors (secrets never returned)",
    ),
    (
        "post",
        "/v1/tenants/{tenant}/connectors",
        "admin or that tenant",
        "Create a connector (validated by its plugin; ?ping=true also reaches the source)",
    ),
    (
        "get",
        "/v1/tenants/{tenant}/connectors/{connector}",
        "admin or that tenant",
        "One connector (secrets never returned)",
    ),
    (
        "put",
        "/v1/tenants/{tenant}/connectors/{connector}",
        "admin or that tenant",
        "Replace a connector; omitted secrets are kept, null clears one",
    ),
    (
        "delete",
        "/v1/tenants/{tenant}/connectors/{connector}",
        "admin or that tenant",
        "Delete a connector with its state and documents; its queued jobs are cancelled and a running one stopped first",
    ),
    (
        "post",
        "/v1/tenants/{tenant}/connectors/{connector}/sync",
        "admin or that tenant",
        "Queue a sync {kind: full|incremental|access_control}: 202 with a new job, 200 with the job already queued for that connector and kind, 429 when the tenant's queue is full",
    ),
    (
        "get",
        "/v1/tenants/{tenant}/connectors/{connector}/state",
        "admin or that tenant",
        "Plugin state keys and sizes (never values)",
    ),
    (
        "delete",
        "/v1/tenants/{tenant}/connectors/{connector}/state",
        "admin or that tenant",
        "Forget plugin state (cursors); the next incremental sync runs a full one",
    ),
    (
        "get",
        "/v1/tenants/{tenant}/jobs",
        "admin or that tenant",
        "Jobs, newest first (?connector=&status=&limit=)",
    ),
    (
        "get",
        "/v1/tenants/{tenant}/jobs/{job}",
        "admin or that tenant",
        "One job with live counts while it runs",
    ),
    (
        "post",
        "/v1/tenants/{tenant}/jobs/{job}/cancel",
        "admin or that tenant",
        "Cancel a queued job, or stop a running one",
    ),
    (
        "get",
        "/v1/tenants/{tenant}/search",
        "admin or that tenant",
        "Search an index of the tenant (?index=&q=&limit=&as=&sort=field:desc&after=cursor&count=true&filter=field=value&facet=field, filter and facet repeatable); `next` in the answer is the cursor of the next page; a query that does not parse or names an unknown field is a 400 saying why; an index that does not exist is a 404 naming those that do, and is not created",
    ),
    (
        "get",
        "/v1/tenants/{tenant}/export",
        "admin or that tenant",
        "Every matching document of an index as JSON lines, streamed (?index=&q=&filter=&as=&body=true)",
    ),
];

/// The whole document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, who, summary) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let public = *who == "anyone";
        let mut op = json!({
            "summary": summary,
            "description": format!("Who may call: {who}."),
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "400": {"description": "Invalid request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if !public {
            op["security"] = json!([{"bearer": []}]);
            op["responses"]["401"] = json!({"description": "Missing or unknown token"});
            op["responses"]["404"] = json!({"description": "Not found, or not this caller's"});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tributary service API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tenants, connectors, sync jobs and plugins of a tributary host. Authenticate with `Authorization: Bearer <token>`: the admin token, or a tenant's token for that tenant's routes.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "Job": {"type": "object", "properties": {
                    "id": {"type": "string"}, "tenant": {"type": "string"}, "connector": {"type": "string"},
                    "kind": {"enum": ["full", "incremental", "access_control"]},
                    "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
                    "plugin": {"type": "string"}, "plugin_version": {"type": "string"},
                    "counts": {"type": "object"}, "error": {"type": ["object", "null"]},
                }},
                "Quotas": {"type": "object", "properties": {
                    "max_connectors": {"type": "integer"}, "max_concurrent_syncs": {"type": "integer"},
                    "max_documents": {"type": "integer"}, "max_storage_bytes": {"type": "integer"},
                    "memory_mib": {"type": "integer"}, "cpu_seconds": {"type": "integer"}, "wall_seconds": {"type": "integer"},
                }},
            },
        },
        "paths": paths,
    })
}
