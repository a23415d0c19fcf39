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

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Deserialize;
use url::Url;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::http::{self, HttpError, Method, Request, Response};
use crate::limits::HostCalls;

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
    /// Host names answered without DNS, like `/etc/hosts` (split-horizon or air-gapped set-ups,
    /// tests). Their addresses are screened exactly like DNS answers.
    pub static_hosts: BTreeMap<String, Vec<IpAddr>>,
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
            static_hosts: BTreeMap::new(),
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
            .map(|e| authority(&e.host, e.port))
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
            let authority = authority(&host, url.port());
            Err(format!(
                "`{authority}` is not in this plugin's allowed hosts [{}]",
                self.hosts().join(", ")
            ))
        }
    }
}

/// `host[:port]`, with an IPv6 address in brackets so the result parses again.
fn authority(host: &str, port: Option<u16>) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
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
    static_hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        let fixed: Option<Vec<SocketAddr>> = self
            .static_hosts
            .get(&host.to_ascii_lowercase())
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match fixed {
                Some(addrs) => addrs,
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
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
                static_hosts: config
                    .static_hosts
                    .iter()
                    .map(|(name, ips)| (name.to_ascii_lowercase(), ips.clone()))
                    .collect(),
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
    /// Rate of capability calls (installed by the runtime).
    pub calls: HostCalls,
}

impl HttpCtx {
    /// A context that may reach `allowlist` through `engine`; `label` names the plugin in logs.
    pub fn new(engine: Arc<HttpEngine>, allowlist: Allowlist, label: impl Into<String>) -> Self {
        Self {
            engine,
            allowlist: Arc::new(allowlist),
            label: label.into(),
            calls: HostCalls::default(),
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
            tracing::warn!(plugin = %self.label, url = %crate::text::truncate(&request.url, 300), "outbound request refused: {reason}");
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
        self.calls.charge_or_trap()?;
        Ok(self.send_logged(&request).await)
    }

    async fn send_all(
        &mut self,
        requests: Vec<Request>,
        concurrency: u32,
    ) -> wasmtime::Result<Vec<Result<Response, HttpError>>> {
        self.calls.charge_or_trap()?;
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
        // IPv6 entries are listed in brackets, so the list parses again.
        let v6 = Allowlist::parse(&["[::1]:8080".into(), "[fd00::1]".into()]).unwrap();
        assert_eq!(v6.hosts(), ["[::1]:8080", "[fd00::1]"]);
        assert_eq!(Allowlist::parse(&v6.hosts()).unwrap().hosts(), v6.hosts());
        assert!(v6.check(&url("http://[::1]:8080/")).is_ok());
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

    /// Redirect targets are server-controlled: scheme-relative, backslashed, credentialed,
    /// non-HTTP and malformed locations never reach anything but allowlisted hosts.
    #[tokio::test]
    async fn hostile_redirect_locations_stay_in_the_allowlist() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let other = tributary_fakes::FakeServer::start(axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "secret" }
        }))
        .await
        .unwrap();
        let o = other.addr();
        let server = tributary_fakes::FakeServer::start(axum::Router::new().route(
            "/to",
            axum::routing::get(
                |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| async move {
                    (
                        axum::http::StatusCode::FOUND,
                        [(
                            reqwest::header::LOCATION,
                            q.get("l").cloned().unwrap_or_default(),
                        )],
                    )
                },
            ),
        ))
        .await
        .unwrap();
        let engine = HttpEngine::new(HttpConfig::default()).unwrap();
        let allow = Allowlist::parse(&[server.addr().to_string()]).unwrap();
        for location in [
            format!("//{o}/x"),
            format!("http://{o}/x"),
            format!("http:\\\\{o}\\x"),
            format!("http://{}@{o}/x", server.addr()),
            format!("http://{o}#@{}/x", server.addr()),
            format!("HTTP://{o}/x"),
            "file:///etc/passwd".to_string(),
            "javascript:alert(1)".to_string(),
            "http://[::1".to_string(),
            "http://".to_string(),
        ] {
            let url = format!(
                "{}/to?l={}",
                server.url(),
                url::form_urlencoded::byte_serialize(location.as_bytes()).collect::<String>()
            );
            let outcome = engine.execute(&allow, &request(&url), 1024).await;
            assert!(
                matches!(
                    outcome,
                    Err(HttpError::Denied(_)) | Err(HttpError::Connection(_))
                ),
                "{location}: {outcome:?}"
            );
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "a redirect left the allowlist"
        );
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
    async fn static_hosts_are_screened_like_dns_answers() {
        let server = tributary_fakes::FakeServer::start(
            axum::Router::new().route("/", axum::routing::get(|| async { "internal" })),
        )
        .await
        .unwrap();
        let port = server.addr().port();
        let config = |allow_private_networks| HttpConfig {
            allow_private_networks,
            static_hosts: [("Internal.Example".to_string(), vec![server.addr().ip()])].into(),
            ..HttpConfig::default()
        };
        let allow = Allowlist::parse(&[format!("internal.example:{port}")]).unwrap();
        let url = format!("http://internal.example:{port}/");
        // The name resolves (statically) to loopback: refused after resolution.
        let refused = HttpEngine::new(config(false))
            .unwrap()
            .execute(&allow, &request(&url), 1024)
            .await;
        assert!(
            matches!(refused, Err(HttpError::Denied(ref m)) if m.contains("private or loopback")),
            "{refused:?}"
        );
        // The same mapping is reachable when the operator allows private networks.
        let reached = HttpEngine::new(config(true))
            .unwrap()
            .execute(&allow, &request(&url), 1024)
            .await
            .unwrap();
        assert_eq!(&reached.body[..], b"internal");
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

    /// Property tests: allowlists come from plugins, URLs and redirect targets from plugins and
    /// servers, resolved addresses from DNS.
    mod props {
        use proptest::prelude::*;

        use super::*;

        fn host_name() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,3}",
                "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
                Just("[::1]".to_string()),
            ]
        }

        fn ip() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                any::<[u8; 4]>().prop_map(IpAddr::from),
                any::<[u16; 8]>().prop_map(IpAddr::from),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Parsing any list and checking any URL never panics.
            #[test]
            fn allowlists_never_panic(
                hosts in prop::collection::vec(prop_oneof![".{0,20}", "[a-z*.:\\[\\]0-9/@]{0,20}"], 0..4),
                url in prop_oneof![".{0,30}", "(http|https|ftp)://[a-z.:@0-9\\[\\]]{0,20}/.{0,5}"],
            ) {
                if let Ok(list) = Allowlist::parse(&hosts)
                    && let Ok(url) = Url::parse(&url)
                {
                    let _ = list.check(&url);
                }
            }

            /// What an allowlist accepts survives being listed and parsed again, allows exactly its
            /// own hosts (on the stated port, or the default one) and nothing else.
            #[test]
            fn allowlists_round_trip_and_allow_only_their_hosts(
                entries in prop::collection::vec((host_name(), prop::option::of(1u16..)), 1..4),
                other in "[a-z]{1,8}",
                https in any::<bool>(),
            ) {
                let raw: Vec<String> = entries
                    .iter()
                    .map(|(h, p)| match p {
                        Some(p) => format!("{h}:{p}"),
                        None => h.clone(),
                    })
                    .collect();
                let Ok(list) = Allowlist::parse(&raw) else {
                    return Ok(());
                };
                let again = Allowlist::parse(&list.hosts()).unwrap();
                prop_assert_eq!(again.hosts(), list.hosts());
                let scheme = if https { "https" } else { "http" };
                for entry in &list.entries {
                    let shown = if entry.host.contains(':') {
                        format!("[{}]", entry.host)
                    } else {
                        entry.host.clone()
                    };
                    let url = match entry.port {
                        Some(p) => format!("{scheme}://{shown}:{p}/x"),
                        None => format!("{scheme}://{shown}/x"),
                    };
                    let url = Url::parse(&url).unwrap();
                    // An explicit port that is the scheme's default is dropped by the URL parser.
                    if entry.port.is_none() || url.port().is_some() {
                        prop_assert!(list.check(&url).is_ok(), "{} refused by {:?}", url, list.hosts());
                    }
                }
                let stranger = Url::parse(&format!("{scheme}://{other}.stranger.invalid/")).unwrap();
                prop_assert!(list.check(&stranger).is_err());
                prop_assert!(list.check(&Url::parse("file:///etc/passwd").unwrap()).is_err());
            }

            /// Screening keeps a subset of the addresses: only public ones unless the operator
            /// allows private networks or the name is `localhost`.
            #[test]
            fn screening_keeps_only_public_addresses(
                name in prop_oneof!["[a-z.]{1,12}", Just("localhost".to_string()), Just("LocalHost".to_string())],
                ips in prop::collection::vec(ip(), 0..5),
                allow_private in any::<bool>(),
            ) {
                let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, 443)).collect();
                let explicit = allow_private || name.eq_ignore_ascii_case("localhost");
                match screen(&name, addrs.clone(), allow_private) {
                    Ok(kept) => {
                        prop_assert!(!kept.is_empty());
                        prop_assert!(kept.iter().all(|a| addrs.contains(a)));
                        if !explicit {
                            prop_assert!(kept.iter().all(|a| is_public(a.ip())));
                        }
                    }
                    Err(e) => {
                        prop_assert!(e.contains(PRIVATE_MARKER));
                        prop_assert!(addrs.iter().all(|a| !explicit && !is_public(a.ip())));
                    }
                }
            }
        }
    }
}
