//! The shared HTTP client: behind every plugin's `http` calls and the host's content downloads.
//!
//! Invariants: every hop of a redirect chain is checked against the caller's allowlist (and
//! credentials are dropped when the origin changes) and, before any socket is opened, against the
//! operator's address policy ([`AddressGuard`]: IP literals here, names in the resolver); bodies
//! are streamed under a size limit and every exchange, redirects and slow bodies included, is
//! bounded in time; a connection reads its socket through one buffer of [`READ_BUFFER_BYTES`],
//! so a body piece is never larger and transport memory is bounded per connection. No proxy is
//! used (not even `HTTP(S)_PROXY`): the guard must see the address actually connected to.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, HeaderName, HeaderValue, LOCATION, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use url::Url;

use super::address::{AddressGuard, AllowedNetwork, PrivateAccess, Refused};
use super::allowlist::{Allowlist, GuardedResolver};
use crate::bindings::http::{HttpError, Method, Request};

/// Bytes a connection reads from its socket at a time, always: hyper's adaptive buffer grows to
/// about 400 KiB per connection, and since a body piece handed out still holds the previous
/// buffer, nearly every read then allocated a fresh one above the allocator's mmap threshold
/// (`allocator.rs`) — page faults on every read and up to 40 MB of buffers at 100 downloads.
/// A fixed 64 KiB stays under that threshold and is reused from the heap.
pub(super) const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The user agent sent when the plugin names none.
const AGENT: &str = concat!("tributary/", env!("CARGO_PKG_VERSION"));

type Transport = Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// Operator settings for outbound HTTP.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest response body handed to a plugin, in bytes.
    pub max_response_bytes: u64,
    /// Time limit when the plugin sets none, in seconds.
    pub default_timeout_seconds: u64,
    /// Upper bound on any per-request time limit, in seconds.
    pub max_timeout_seconds: u64,
    /// Most requests in flight for one `send-all` call.
    pub max_concurrency: u32,
    /// Most requests in one `send-all` call.
    pub max_batch: usize,
    /// Redirect hops followed.
    pub max_redirects: u32,
    /// Non-public networks (loopback, private, link-local, …) plugins and content downloads may
    /// reach anyway: `"10.1.0.0/16"`, `"127.0.0.1"`, `"127.0.0.1:9200"`. Empty by default; only
    /// the operator's file sets it — no connector configuration widens it.
    pub allow_private: Vec<AllowedNetwork>,
    /// Host names answered without DNS, like `/etc/hosts` (split-horizon or air-gapped set-ups,
    /// tests). Their addresses are screened exactly like DNS answers.
    pub static_hosts: BTreeMap<String, Vec<IpAddr>>,
    /// Whether a plugin's allowlist may name non-public literals itself: set by the standalone
    /// CLI (its connectors are the user's own file), never by a configuration file.
    #[serde(skip)]
    pub private_access: PrivateAccess,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_response_bytes: 32 * 1024 * 1024,
            default_timeout_seconds: 60,
            max_timeout_seconds: 600,
            max_concurrency: 128,
            max_batch: 1000,
            max_redirects: 5,
            allow_private: Vec::new(),
            static_hosts: BTreeMap::new(),
            private_access: PrivateAccess::OperatorOnly,
        }
    }
}

impl HttpConfig {
    /// `Ok` under the operator-only policy: a multi-tenant host (the service, the connectors
    /// service) runs tenants' connectors, which may reach non-public addresses only through
    /// `allow_private` — never the CLI's trust in literals its user's configuration names.
    pub fn require_operator_policy(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.private_access == PrivateAccess::OperatorOnly,
            "a multi-tenant host needs the operator-only network policy: non-public addresses \
             are reachable only through [http] allow_private"
        );
        Ok(())
    }
}

/// A complete response held by the host.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Final status (after redirects).
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// The shared HTTP client behind every plugin's `http` and the host's content downloads.
#[derive(Debug)]
pub struct HttpEngine {
    /// Connects anywhere the guard admits without looking at the port.
    client: Transport,
    /// One client per port named by an operator entry with a port: the connector's resolver
    /// sees only the name, so a resolver that knows its port is what lets `10.0.0.5:9200` allow
    /// port 9200 alone. Bounded by the operator's list.
    by_port: BTreeMap<u16, Transport>,
    guard: AddressGuard,
    config: HttpConfig,
}

impl HttpEngine {
    /// Builds the clients (rustls with the webpki roots, HTTP/1.1, no automatic redirects, no
    /// proxy, guarded DNS, a fixed read buffer).
    pub fn new(config: HttpConfig) -> anyhow::Result<Self> {
        let guard = AddressGuard {
            allowed: config.allow_private.clone(),
            access: config.private_access,
        };
        let static_hosts: Arc<BTreeMap<String, Vec<IpAddr>>> = Arc::new(
            config
                .static_hosts
                .iter()
                .map(|(name, ips)| (name.to_ascii_lowercase(), ips.clone()))
                .collect(),
        );
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let build = |port: Option<u16>| -> Transport {
            let mut http = HttpConnector::new_with_resolver(GuardedResolver {
                guard: guard.clone(),
                port,
                static_hosts: static_hosts.clone(),
            });
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(Duration::from_secs(30)));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_timer(TokioTimer::new())
                .http1_read_buf_exact_size(READ_BUFFER_BYTES)
                .build(https)
        };
        let client = build(None);
        let mut by_port = BTreeMap::new();
        for port in config.allow_private.iter().filter_map(|a| a.port) {
            by_port.entry(port).or_insert_with(|| build(Some(port)));
        }
        Ok(Self {
            client,
            by_port,
            guard,
            config,
        })
    }

    /// The operator settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends `request` under `allowlist`, following allowlisted redirects, reading at most
    /// `max_body` bytes of the final body.
    pub async fn execute(
        &self,
        allowlist: &Allowlist,
        request: &Request,
        max_body: u64,
    ) -> Result<Fetched, HttpError> {
        let Streamed {
            status,
            headers,
            body,
        } = self.open(allowlist, request, max_body).await?;
        Ok(Fetched {
            status,
            headers,
            body: body.bytes().await?,
        })
    }

    /// Sends `request` under `allowlist`, following allowlisted redirects, and answers once the
    /// final response's head has arrived: its body is read piece by piece ([`Body::chunk`]), at
    /// most `max_body` bytes of it, within the same time limit as the exchange.
    pub async fn open(
        &self,
        allowlist: &Allowlist,
        request: &Request,
        max_body: u64,
    ) -> Result<Streamed, HttpError> {
        let mut url = Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL `{}`: {e}", request.url)))?;
        let timeout = Duration::from_millis(u64::from(request.timeout_ms.unwrap_or(u32::MAX))).min(
            Duration::from_secs(if request.timeout_ms.is_some() {
                self.config.max_timeout_seconds
            } else {
                self.config.default_timeout_seconds
            }),
        );
        // `timeout` bounds each exchange's head; this deadline bounds redirects and slow bodies
        // too.
        let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(1);
        let mut method = to_http_method(request.method);
        let mut body = request.body.clone().map(Bytes::from);
        let mut headers = request.headers.clone();
        let work = async {
            for _hop in 0..=self.config.max_redirects {
                allowlist.check(&url).map_err(HttpError::Denied)?;
                self.guard
                    .check_literal(&url)
                    .map_err(|refused| HttpError::Denied(refused.to_string()))?;
                let response = self
                    .send_once(&url, &method, &headers, body.clone(), timeout)
                    .await?;
                let status = response.status().as_u16();
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok());
                let (true, Some(location)) =
                    (matches!(status, 301 | 302 | 303 | 307 | 308), location)
                else {
                    return Streamed::new(url.clone(), response, max_body, deadline, timeout);
                };
                let next = url.join(location).map_err(|e| {
                    HttpError::Connection(format!("bad redirect location `{location}`: {e}"))
                })?;
                if next.host_str() != url.host_str()
                    || next.port_or_known_default() != url.port_or_known_default()
                {
                    // Never forward credentials to another origin.
                    headers.retain(|(n, _)| {
                        !n.eq_ignore_ascii_case("authorization")
                            && !n.eq_ignore_ascii_case("cookie")
                    });
                }
                if status == 303
                    || ((status == 301 || status == 302) && method == hyper::Method::POST)
                {
                    method = hyper::Method::GET;
                    body = None;
                }
                url = next;
            }
            Err(HttpError::Connection(format!(
                "more than {} redirects",
                self.config.max_redirects
            )))
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(&url, timeout)),
        }
    }

    async fn send_once(
        &self,
        url: &Url,
        method: &hyper::Method,
        headers: &[(String, String)],
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<hyper::Response<Incoming>, HttpError> {
        let client = url
            .port_or_known_default()
            .and_then(|port| self.by_port.get(&port))
            .unwrap_or(&self.client);
        let uri: hyper::Uri = url
            .as_str()
            .parse()
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL `{url}`: {e}")))?;
        let mut request = hyper::Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri;
        let fields = request.headers_mut();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header `{name}`")))?;
            fields.append(name, value);
        }
        for (name, value) in [(USER_AGENT, AGENT), (ACCEPT, "*/*")] {
            fields
                .entry(name)
                .or_insert(HeaderValue::from_static(value));
        }
        match tokio::time::timeout(timeout, client.request(request)).await {
            Err(_) => Err(timed_out(url, timeout)),
            Ok(Err(e)) => Err(classify(url, &e)),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

fn timed_out(url: &Url, timeout: Duration) -> HttpError {
    HttpError::Timeout(format!(
        "timed out: no complete answer from {} within {timeout:?}",
        url.host_str().unwrap_or_default()
    ))
}

/// A response whose head has arrived and whose body is still to be read.
#[derive(Debug)]
pub struct Streamed {
    /// Final status (after redirects).
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body, not read yet.
    pub body: Body,
}

impl Streamed {
    fn new(
        url: Url,
        response: hyper::Response<Incoming>,
        max_body: u64,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        let declared = hyper::body::Body::size_hint(response.body()).exact();
        if declared.is_some_and(|len| len > max_body) {
            return Err(HttpError::TooLarge(max_body));
        }
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let status = response.status().as_u16();
        Ok(Self {
            status,
            headers,
            body: Body {
                url,
                response: response.into_body(),
                declared,
                max_body,
                read: 0,
                deadline,
                timeout,
            },
        })
    }
}

/// A response body read piece by piece: never more than its size limit, never past the
/// exchange's deadline. Dropping it stops the transfer.
#[derive(Debug)]
pub struct Body {
    response: Incoming,
    url: Url,
    declared: Option<u64>,
    max_body: u64,
    read: u64,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl Body {
    /// The length the server declared (already checked against the limit).
    pub fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    /// The next piece, or `None` at the end; `TooLarge` once the limit is passed.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        loop {
            let next = tokio::time::timeout_at(self.deadline, self.response.frame()).await;
            let frame = match next {
                Err(_) => return Err(timed_out(&self.url, self.timeout)),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(classify(&self.url, &e)),
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers carry no body bytes.
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            self.read = self.read.saturating_add(chunk.len() as u64);
            if self.read > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            return Ok(Some(chunk));
        }
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes, HttpError> {
        // Sized once from the declared length (already checked against the limit): growing by
        // doubling would hold up to twice the body and copy it on every step.
        let declared = self.declared.unwrap_or(0).min(self.max_body);
        let mut body = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Up to about `bytes` bytes of the body's start (for an error message); errors end it.
    pub async fn prefix(mut self, bytes: usize) -> Bytes {
        let mut body = BytesMut::new();
        while body.len() < bytes {
            match self.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(bytes);
        body.freeze()
    }
}

/// What a transport error means for the caller: the guard's refusal (found by type anywhere in
/// the chain) is a denial with the guard's own message, a socket timeout is a timeout, the rest
/// a connection failure naming the host and the whole chain.
fn classify(url: &Url, err: &(dyn std::error::Error + 'static)) -> HttpError {
    let mut chain = String::new();
    let mut timed_out = false;
    let mut source = Some(err);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return HttpError::Denied(refused.to_string());
        }
        timed_out |= s
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let host = url.host_str().unwrap_or_default();
    if timed_out {
        HttpError::Timeout(format!("{host}: {chain}"))
    } else {
        HttpError::Connection(format!("{host}: {chain}"))
    }
}

fn to_http_method(method: Method) -> hyper::Method {
    match method {
        Method::Get => hyper::Method::GET,
        Method::Head => hyper::Method::HEAD,
        Method::Post => hyper::Method::POST,
        Method::Put => hyper::Method::PUT,
        Method::Patch => hyper::Method::PATCH,
        Method::Delete => hyper::Method::DELETE,
    }
}
