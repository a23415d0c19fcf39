//! Running an axum router on an ephemeral loopback port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::task::JoinHandle;

/// A fake server bound to `127.0.0.1:<ephemeral port>`; stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Binds an ephemeral loopback port and serves `router` on it in the background.
    pub async fn start(router: axum::Router) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding a loopback port for a fake server")?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        // Counted at accept, before any byte is read: "no connection" means no socket at all.
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(%err, "fake server stopped");
            }
        });
        Ok(Self {
            addr,
            connections,
            task,
        })
    }

    /// TCP connections accepted so far (whether or not a request followed).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /oauth2/authorize` of the fake OAuth providers: the user signs in and clicks "Allow" at
/// once. With a `redirect_uri` (which must be loopback: the fakes never send anyone elsewhere)
/// the answer is `302 Found` to `redirect_uri?code=<code>&state=<state>`, like Dropbox and Box;
/// without one, a page showing the code to paste (Dropbox's no-redirect flow). A missing or
/// wrong `client_id` or `response_type` is a 400 page, like the real consent screens.
pub(crate) fn authorize_response(
    query: &[(String, String)],
    client_id: &str,
    code: &str,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("client_id") != Some(client_id) {
        return (StatusCode::BAD_REQUEST, "invalid client_id").into_response();
    }
    if param("response_type") != Some("code") {
        return (StatusCode::BAD_REQUEST, "response_type must be `code`").into_response();
    }
    let Some(redirect) = param("redirect_uri") else {
        return (
            StatusCode::OK,
            format!("Enter this code into your app: {code}"),
        )
            .into_response();
    };
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|p| redirect.starts_with(p));
    if !loopback {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri must be a loopback address",
        )
            .into_response();
    }
    let mut location = format!("{redirect}?code={}", form_encode(code));
    if let Some(state) = param("state") {
        location.push_str(&format!("&state={}", form_encode(state)));
    }
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
