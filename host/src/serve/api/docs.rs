//! `/docs`: Swagger UI over `/v1/openapi.json`, to read the API and try it with a token.
//!
//! Invariants: its assets are embedded in the binary (utoipa-swagger-ui's `vendored` feature:
//! no download at build time, no CDN at run time), so the page works offline; it reads the
//! same document `/v1/openapi.json` serves (it is pointed at that URL, not given a copy); every
//! answer under `/docs` carries a Content-Security-Policy that allows scripts from this origin
//! only. Swagger UI sets inline `style` attributes, so styles (and only styles) may be inline
//! here — the console's stricter policy stays as it is.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::App;

/// Scripts from this origin only; inline styles (Swagger UI needs them); no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `/docs` (redirecting to `/docs/`) and its assets.
pub(super) fn routes() -> axum::Router<App> {
    let config = Config::new(["/v1/openapi.json"])
        .display_operation_id(true)
        // No "valid" badge: it would send the document to an outside validator.
        .validator_url("none")
        .try_it_out_enabled(true);
    axum::Router::from(SwaggerUi::new("/docs").config(config))
        .layer(axum::middleware::map_response(secure))
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
