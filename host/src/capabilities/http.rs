//! `http`: outbound requests for plugins, and the same engine for host-side content downloads.
//!
//! Three checks stand between a plugin and the network:
//! 1. the URL's `host[:port]` must be in the plugin's allowlist (derived from its configuration by
//!    its `allowed-hosts` export), else `denied` — and a warning naming plugin and URL is logged;
//! 2. redirects are followed by the host, one hop at a time, and every hop is checked again;
//! 3. a host *name* that resolves to a loopback, private or link-local address is refused after
//!    DNS resolution (so an allowlisted name cannot be pointed at internal services); a plugin that
//!    really must reach such an address has to name the address itself, or the operator sets
//!    `allow_private_networks`.
//!
//! Bodies are streamed with a size limit and every request has a time limit, so a hostile server
//! cannot exhaust memory or hold a job forever.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Deserialize;
use url::Url;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::http::{self, HttpError, Method, Request, Response};

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
    /// Let allowlisted host names resolve to private/loopback addresses.
    pub allow_private_networks: bool,
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
            allow_private_networks: false,
        }
    }
}

/// One allowed `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    host: String,
    port: Option<u16>,
}

/// The hosts one plugin instance may contact.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

impl Allowlist {
    /// Parses `host` / `host:port` / `[v6]:port` entries (a scheme prefix is tolerated).
    pub fn parse(hosts: &[String]) -> Result<Self, String> {
        let mut entries = Vec::new();
        for raw in hosts {
            let trimmed = raw.trim();
            let with_scheme = if trimmed.contains("://") {
                trimmed.to_string()
            } else {
                format!("http://{trimmed}")
            };
            let url = Url::parse(&with_scheme)
                .map_err(|e| format!("allowed host `{raw}` is not a host name: {e}"))?;
            let host = url
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| format!("allowed host `{raw}` has no host"))?;
            if host.contains('*') {
                return Err(format!("allowed host `{raw}`: wildcards are not supported"));
            }
            entries.push(Entry {
                host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
                port: url.port(),
            });
        }
        Ok(Self { entries })
    }

    /// The entries, as given back to operators (`host` or `host:port`).
    pub fn hosts(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| match e.port {
                Some(p) => format!("{}:{p}", e.host),
                None => e.host.clone(),
            })
            .collect()
    }

    /// `Ok` when `url` may be requested. An entry without a port allows the scheme's default port.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "scheme `{}` is not allowed (http and https only)",
                url.scheme()
            ));
        }
        let host = url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            .unwrap_or_default();
        let port = url.port_or_known_default();
        let default_port = url.port().is_none();
        let allowed = self.entries.iter().any(|e| {
            e.host == host
                && match e.port {
                    Some(p) => Some(p) == port,
                    None => default_port,
                }
        });
        if allowed {
            Ok(())
        } else {
            let authority = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            Err(format!(
                "`{authority}` is not in this plugin's allowed hosts [{}]",
                self.hosts().join(", ")
            ))
        }
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, …).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19))) // benchmarking
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

const PRIVATE_MARKER: &str = "resolves only to private or loopback addresses";

/// DNS resolution that drops non-public addresses unless the operator allows them.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = screen(&host, addrs, allow_private)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Keeps the addresses a host name may connect to: public ones, or all when the operator allows
/// private networks or the name is `localhost` (nobody types that by accident).
fn screen(
    host: &str,
    addrs: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let explicit_loopback = host.eq_ignore_ascii_case("localhost");
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| allow_private || explicit_loopback || is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(format!(
            "`{host}` {PRIVATE_MARKER}, which plugins may not reach"
        ));
    }
    Ok(allowed)
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
    client: reqwest::Client,
    config: HttpConfig,
}

impl HttpEngine {
    /// Builds the client (rustls, no automatic redirects, guarded DNS).
    pub fn new(config: HttpConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: config.allow_private_networks,
            }))
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { client, config })
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
        let mut url = Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL `{}`: {e}", request.url)))?;
        let timeout = Duration::from_millis(u64::from(request.timeout_ms.unwrap_or(u32::MAX))).min(
            Duration::from_secs(if request.timeout_ms.is_some() {
                self.config.max_timeout_seconds
            } else {
                self.config.default_timeout_seconds
            }),
        );
        let mut method = to_reqwest_method(request.method);
        let mut body = request.body.clone();
        let mut headers = request.headers.clone();
        let work = async {
            for _hop in 0..=self.config.max_redirects {
                allowlist.check(&url).map_err(HttpError::Denied)?;
                let response = self
                    .send_once(&url, &method, &headers, body.as_ref(), timeout)
                    .await?;
                let status = response.status().as_u16();
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok());
                let (true, Some(location)) =
                    (matches!(status, 301 | 302 | 303 | 307 | 308), location)
                else {
                    return read_body(response, max_body).await;
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
                    || ((status == 301 || status == 302) && method == reqwest::Method::POST)
                {
                    method = reqwest::Method::GET;
                    body = None;
                }
                url = next;
            }
            Err(HttpError::Connection(format!(
                "more than {} redirects",
                self.config.max_redirects
            )))
        };
        // The reqwest timeout covers one exchange; this one bounds redirects and slow bodies too.
        match tokio::time::timeout(timeout + Duration::from_secs(1), work).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(format!(
                "no complete answer from {} within {timeout:?}",
                url.host_str().unwrap_or_default()
            ))),
        }
    }

    async fn send_once(
        &self,
        url: &Url,
        method: &reqwest::Method,
        headers: &[(String, String)],
        body: Option<&Vec<u8>>,
        timeout: Duration,
    ) -> Result<reqwest::Response, HttpError> {
        let mut builder = self
            .client
            .request(method.clone(), url.clone())
            .timeout(timeout);
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name {name:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header `{name}`")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = body {
            builder = builder.body(body.clone());
        }
        builder.send().await.map_err(|e| classify(url, &e))
    }
}

async fn read_body(response: reqwest::Response, max_body: u64) -> Result<Fetched, HttpError> {
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|len| len > max_body) {
        return Err(HttpError::TooLarge(max_body));
    }
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let url = response.url().clone();
    let mut stream = response.bytes_stream();
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| classify(&url, &e))?;
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(HttpError::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status,
        headers,
        body: body.freeze(),
    })
}

fn classify(url: &Url, err: &reqwest::Error) -> HttpError {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let host = url.host_str().unwrap_or_default();
    if chain.contains(PRIVATE_MARKER) {
        HttpError::Denied(chain)
    } else if err.is_timeout() {
        HttpError::Timeout(format!("{host}: {chain}"))
    } else if err.is_builder() || err.is_request() && !err.is_connect() && chain.contains("builder")
    {
        HttpError::InvalidRequest(chain)
    } else {
        HttpError::Connection(format!("{host}: {chain}"))
    }
}

fn to_reqwest_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// The `http` state of one plugin instance.
#[derive(Clone, Debug)]
pub struct HttpCtx {
    engine: Arc<HttpEngine>,
    allowlist: Arc<Allowlist>,
    label: String,
}

impl HttpCtx {
    /// A context that may reach `allowlist` through `engine`; `label` names the plugin in logs.
    pub fn new(engine: Arc<HttpEngine>, allowlist: Allowlist, label: impl Into<String>) -> Self {
        Self {
            engine,
            allowlist: Arc::new(allowlist),
            label: label.into(),
        }
    }

    /// Replaces the allowlist (after `allowed-hosts` answered).
    pub fn set_allowlist(&mut self, allowlist: Allowlist) {
        self.allowlist = Arc::new(allowlist);
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> Arc<Allowlist> {
        self.allowlist.clone()
    }

    /// The shared engine.
    pub fn engine(&self) -> Arc<HttpEngine> {
        self.engine.clone()
    }

    async fn send_logged(&self, request: &Request) -> Result<Response, HttpError> {
        let result = self
            .engine
            .execute(
                &self.allowlist,
                request,
                self.engine.config.max_response_bytes,
            )
            .await;
        if let Err(HttpError::Denied(reason)) = &result {
            tracing::warn!(plugin = %self.label, url = %crate::util::truncate(&request.url, 300), "outbound request refused: {reason}");
        }
        result.map(|f| Response {
            status: f.status,
            headers: f.headers,
            body: f.body.to_vec(),
        })
    }
}

/// Links `http` into a linker whose store data exposes an [`HttpCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HttpCtx,
) -> wasmtime::Result<()> {
    http::add_to_linker::<T, HasSelf<HttpCtx>>(linker, get)
}

impl http::Host for HttpCtx {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, HttpError>> {
        Ok(self.send_logged(&request).await)
    }

    async fn send_all(
        &mut self,
        requests: Vec<Request>,
        concurrency: u32,
    ) -> wasmtime::Result<Vec<Result<Response, HttpError>>> {
        // Guest-controlled: clamp the fan-out and the batch size.
        let limit = concurrency.clamp(1, self.engine.config.max_concurrency) as usize;
        let max_batch = self.engine.config.max_batch;
        let this = &*self;
        let results = futures::stream::iter(requests.into_iter().enumerate())
            .map(|(i, request)| async move {
                if i >= max_batch {
                    Err(HttpError::Refused(format!(
                        "at most {max_batch} requests per send-all call"
                    )))
                } else {
                    this.send_logged(&request).await
                }
            })
            .buffered(limit)
            .collect()
            .await;
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn allowlist_matches_host_and_port() {
        let list = Allowlist::parse(&[
            "api.dropboxapi.com".into(),
            "127.0.0.1:8080".into(),
            "https://Content.Example.com".into(),
        ])
        .unwrap();
        assert!(
            list.check(&url("https://api.dropboxapi.com/2/files"))
                .is_ok()
        );
        assert!(list.check(&url("https://content.example.com/x")).is_ok());
        assert!(list.check(&url("http://127.0.0.1:8080/2/")).is_ok());
        // Another port of an allowed host, a look-alike host, another scheme.
        let err = list.check(&url("http://127.0.0.1:9090/")).unwrap_err();
        assert!(
            err.contains("`127.0.0.1:9090` is not in this plugin's allowed hosts"),
            "{err}"
        );
        assert!(
            list.check(&url("https://api.dropboxapi.com:8443/"))
                .is_err()
        );
        assert!(
            list.check(&url("https://api.dropboxapi.com.evil.net/"))
                .is_err()
        );
        assert!(list.check(&url("file:///etc/passwd")).is_err());
        assert!(Allowlist::parse(&["*.box.com".into()]).is_err());
    }

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "162.125.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    fn request(url: &str) -> Request {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: vec![],
            body: None,
            timeout_ms: Some(5_000),
        }
    }

    #[tokio::test]
    async fn redirects_are_rechecked_and_bodies_bounded() {
        use axum::response::Redirect;
        use axum::routing::get;
        let other = tributary_fakes::FakeServer::start(
            axum::Router::new().route("/secret", get(|| async { "secret" })),
        )
        .await
        .unwrap();
        let target = format!("{}/secret", other.url());
        let server = tributary_fakes::FakeServer::start(
            axum::Router::new()
                .route("/ok", get(|| async { "hello" }))
                .route("/big", get(|| async { "x".repeat(10_000) }))
                .route("/inside", get(|| async { Redirect::temporary("/ok") }))
                .route(
                    "/outside",
                    get(move || async move { Redirect::temporary(&target) }),
                ),
        )
        .await
        .unwrap();
        let engine = HttpEngine::new(HttpConfig::default()).unwrap();
        let allow = Allowlist::parse(&[server.addr().to_string()]).unwrap();
        let ok = engine
            .execute(
                &allow,
                &request(&format!("{}/inside", server.url())),
                1 << 20,
            )
            .await
            .unwrap();
        assert_eq!((ok.status, &ok.body[..]), (200, &b"hello"[..]));
        let denied = engine
            .execute(
                &allow,
                &request(&format!("{}/outside", server.url())),
                1 << 20,
            )
            .await;
        assert!(
            matches!(denied, Err(HttpError::Denied(ref m)) if m.contains(&other.addr().to_string())),
            "{denied:?}"
        );
        let big = engine
            .execute(&allow, &request(&format!("{}/big", server.url())), 100)
            .await;
        assert!(matches!(big, Err(HttpError::TooLarge(100))), "{big:?}");
    }

    #[test]
    fn names_resolving_to_private_addresses_are_screened() {
        let loopback: Vec<SocketAddr> = vec!["127.0.0.1:80".parse().unwrap()];
        let mixed: Vec<SocketAddr> = vec![
            "10.0.0.5:80".parse().unwrap(),
            "8.8.8.8:80".parse().unwrap(),
        ];
        let err = screen("internal.example", loopback.clone(), false).unwrap_err();
        assert!(err.contains("private or loopback"), "{err}");
        assert_eq!(
            screen("localhost", loopback.clone(), false).unwrap(),
            loopback
        );
        assert_eq!(
            screen("internal.example", loopback.clone(), true).unwrap(),
            loopback
        );
        assert_eq!(
            screen("api.example", mixed, false).unwrap(),
            vec!["8.8.8.8:80".parse::<SocketAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn explicit_localhost_is_reachable() {
        let server = tributary_fakes::FakeServer::start(
            axum::Router::new().route("/", axum::routing::get(|| async { "hi" })),
        )
        .await
        .unwrap();
        let port = server.addr().port();
        let engine = HttpEngine::new(HttpConfig::default()).unwrap();
        let allow = Allowlist::parse(&[format!("localhost:{port}")]).unwrap();
        let named = engine
            .execute(&allow, &request(&format!("http://localhost:{port}/")), 1024)
            .await
            .unwrap();
        assert_eq!(&named.body[..], b"hi");
    }
}
