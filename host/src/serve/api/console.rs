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

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{ApiResult, App, caller, not_found, ok};
use crate::bindings::plugin::{ConfigField, FieldKind};

const INDEX_HTML: &str = include_str!("../console/index.html");
const CONSOLE_JS: &str = include_str!("../console/console.js");
const CONSOLE_CSS: &str = include_str!("../console/console.css");

/// Scripts and styles from this origin only; no inline script, no framing, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes.
pub(super) fn routes() -> axum::Router<App> {
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
        .route("/v1/plugins/{name}/schema", get(plugin_schema))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
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
async fn plugin_schema(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    caller(&app, &headers).await?;
    let Ok(plugin) = app.host.plugin(&name) else {
        return Err(not_found());
    };
    let m = &plugin.manifest;
    ok(json!({
        "name": m.name,
        "version": m.version,
        "display_name": m.display_name,
        "features": {
            "incremental_sync": m.features.contains(crate::bindings::plugin::Features::INCREMENTAL_SYNC),
            "access_control_sync": m.features.contains(crate::bindings::plugin::Features::ACCESS_CONTROL_SYNC),
            "advanced_rules": m.features.contains(crate::bindings::plugin::Features::ADVANCED_RULES),
            "document_level_security": m.features.contains(crate::bindings::plugin::Features::DOCUMENT_LEVEL_SECURITY),
        },
        "fields": m.config.iter().map(field_json).collect::<Vec<_>>(),
    }))
}

/// One field as the console draws it; `default` is the plugin's default as JSON.
fn field_json(f: &ConfigField) -> Value {
    let kind = match f.kind {
        FieldKind::Text => "text",
        FieldKind::Textarea => "textarea",
        FieldKind::Integer => "integer",
        FieldKind::Boolean => "boolean",
        FieldKind::List => "list",
        FieldKind::Select => "select",
        FieldKind::Json => "json",
    };
    let default = f
        .default_value
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok());
    json!({
        "key": f.key,
        "label": f.label,
        "tooltip": f.tooltip,
        "kind": kind,
        "options": f.options.iter().map(|o| json!({"value": o.value, "label": o.label})).collect::<Vec<_>>(),
        "default": default,
        "required": f.required,
        "sensitive": f.sensitive,
        "hidden": f.hidden,
        "depends_on": f.depends_on.iter().map(|d| json!({
            "field": d.field,
            // The condition's value as JSON when it parses (`true`, `3`), else as a string.
            "value": serde_json::from_str::<Value>(&d.value).unwrap_or(Value::String(d.value.clone())),
        })).collect::<Vec<_>>(),
        "min": f.min,
        "max": f.max,
    })
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
