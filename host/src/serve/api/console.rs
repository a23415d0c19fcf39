//! The web console: one HTML page, one JS module and one stylesheet embedded in the binary and
//! served at `/` and `/console/…`, and the one route the console needs beyond the JSON API: a
//! plugin's configuration schema (`GET /v1/plugins/{name}/schema`), from which it draws forms.
//!
//! Invariants: the assets are static (no templating, so nothing from a request or the database
//! is ever written into a page); every asset goes out with a Content-Security-Policy allowing
//! scripts only from this origin and no inline script, so a value that slipped past the
//! console's text-only rendering still cannot run. The console holds its token in
//! `sessionStorage` and calls the JSON API like any other client — it has no privileges of
//! its own, and the static assets need no token (they carry no data).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    ErrorBody, FieldDependency, FieldKind, FieldOption, PluginFeatures, PluginSchema, SchemaField,
};
use super::{ApiResult, App, caller, not_found};
use crate::bindings::plugin::{ConfigField, Features};

const INDEX_HTML: &str = include_str!("../console/index.html");
const CONSOLE_JS: &str = include_str!("../console/console.js");
const CONSOLE_CSS: &str = include_str!("../console/console.css");

/// Scripts and styles from this origin only; no inline script, no framing, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The console's API route, documented with the others.
pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(plugin_schema))
}

/// The console's static assets. They are pages, not API, so the OpenAPI document leaves them
/// out (as it leaves out `/docs`).
pub(super) fn assets() -> axum::Router<App> {
    axum::Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(CONSOLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css; charset=utf-8") }),
        )
}

/// Headers every console asset carries: its CSP, no sniffing, revalidated on every load.
pub(super) fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The active version's configuration schema and features: any valid token (a tenant needs it
/// to create a connector; it holds no tenant data).
#[utoipa::path(
    get,
    path = "/v1/plugins/{name}/schema",
    operation_id = "getPluginSchema",
    tag = "plugins",
    summary = "The active version's configuration schema and features (any token)",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name", example = "feed")),
    responses(
        (status = 200, description = "Fields in the plugin's order", body = PluginSchema),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ),
)]
async fn plugin_schema(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginSchema>> {
    caller(&app, &headers).await?;
    let Ok(plugin) = app.host.plugin(&name) else {
        return Err(not_found());
    };
    let m = &plugin.manifest;
    Ok(Json(PluginSchema {
        name: m.name.clone(),
        version: m.version.clone(),
        display_name: m.display_name.clone(),
        features: PluginFeatures {
            incremental_sync: m.features.contains(Features::INCREMENTAL_SYNC),
            access_control_sync: m.features.contains(Features::ACCESS_CONTROL_SYNC),
            advanced_rules: m.features.contains(Features::ADVANCED_RULES),
            document_level_security: m.features.contains(Features::DOCUMENT_LEVEL_SECURITY),
        },
        fields: m.config.iter().map(field).collect(),
    }))
}

/// One field as clients draw it; `default` is the plugin's default as JSON.
fn field(f: &ConfigField) -> SchemaField {
    use crate::bindings::plugin::FieldKind as Wit;
    let kind = match f.kind {
        Wit::Text => FieldKind::Text,
        Wit::Textarea => FieldKind::Textarea,
        Wit::Integer => FieldKind::Integer,
        Wit::Boolean => FieldKind::Boolean,
        Wit::List => FieldKind::List,
        Wit::Select => FieldKind::Select,
        Wit::Json => FieldKind::Json,
    };
    SchemaField {
        key: f.key.clone(),
        label: f.label.clone(),
        tooltip: f.tooltip.clone(),
        kind,
        options: f
            .options
            .iter()
            .map(|o| FieldOption {
                value: o.value.clone(),
                label: o.label.clone(),
            })
            .collect(),
        default: f
            .default_value
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok()),
        required: f.required,
        sensitive: f.sensitive,
        hidden: f.hidden,
        depends_on: f
            .depends_on
            .iter()
            .map(|d| FieldDependency {
                field: d.field.clone(),
                // The condition's value as JSON when it parses (`true`, `3`), else as a string.
                value: serde_json::from_str::<Value>(&d.value)
                    .unwrap_or(Value::String(d.value.clone())),
            })
            .collect(),
        min: f.min,
        max: f.max,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn assets_are_embedded_and_reference_each_other() {
        assert!(INDEX_HTML.contains("/console/console.js"));
        assert!(INDEX_HTML.contains("/console/console.css"));
        // No inline script: the CSP would block it, and the page must work under it.
        assert!(!INDEX_HTML.contains("<script>"));
        // API data is written as text, never parsed as HTML.
        assert!(!CONSOLE_JS.contains("innerHTML"));
        assert!(!CONSOLE_JS.contains("outerHTML"));
        assert!(!CONSOLE_JS.contains("insertAdjacentHTML"));
        assert!(!CONSOLE_JS.contains("document.write"));
        // No CDN: every URL the page loads is on this origin.
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
    }

    #[test]
    fn assets_carry_a_script_policy() {
        let response = asset(INDEX_HTML, "text/html; charset=utf-8");
        let csp = response
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
