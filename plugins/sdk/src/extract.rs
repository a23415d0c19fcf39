//! Text extraction by the host, for plugins that need the text itself (most should attach a
//! [`crate::docs::Fetch`] to a document instead and never see the bytes).

use crate::docs::Fetch;
use crate::http::Request;
use crate::tributary::connector::extract;
pub use crate::tributary::connector::extract::ExtractError;

/// Extracts text from bytes the plugin holds (format from the bytes, name and MIME type).
pub fn extract_text(
    body: &[u8],
    file_name: &str,
    mime: Option<&str>,
) -> Result<String, ExtractError> {
    extract::extract_text(body, file_name, mime)
}

/// Has the host download `request` and extract it; only the text enters the plugin.
pub fn fetch_text(request: &Request, fetch: Fetch) -> Result<String, ExtractError> {
    extract::fetch_text(&fetch.content_request(request))
}
