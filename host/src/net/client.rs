//! The shared HTTP client: behind every plugin's `http` calls and the host's content downloads.
//!
//! Invariants: every hop of a redirect chain is checked against the caller's allowlist (and
//! credentials are dropped when the origin changes) and, before any socket is opened, against the
//! operator's address policy ([`AddressGuard`]: IP literals here, names in the resolver); bodies
//! are streamed under a size limit and every exchange, redirects and slow bodies included, is
//! bounded in time. No proxy is used (not even `HTTP(S)_PROXY`): the guard must see the address
//! actually connected to.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use url::Url;

use super::address::{AddressGuard, AllowedNetwork, PrivateAccess, Refused};
use super::allowlist::{Allowlist, GuardedResolver};
use crate::bindings::http::{HttpError, Method, Request};

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
    client: reqwest::Client,
    /// One client per port named by an operator entry with a port: reqwest's resolver sees only
    /// the name, so a resolver that knows its port is what lets `10.0.0.5:9200` allow port 9200
    /// alone. Bounded by the operator's list.
    by_port: BTreeMap<u16, reqwest::Client>,
    guard: AddressGuard,
    config: HttpConfig,
}

impl HttpEngine {
    /// Builds the clients (rustls, no automatic redirects, no proxy, guarded DNS).
    pub fn new(config: HttpConfig) -> anyhow::Result<Self> {
        let guard = AddressGuard {
            allowed: config.allow_private.clone(),
            access: config.private_access,
        };
        let static_hosts: BTreeMap<String, Vec<IpAddr>> = config
            .static_hosts
            .iter()
            .map(|(name, ips)| (name.to_ascii_lowercase(), ips.clone()))
            .collect();
        let build = |port: Option<u16>| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver {
                    guard: guard.clone(),
                    port,
                    static_hosts: static_hosts.clone(),
                }))
                .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
        };
        let client = build(None)?;
        let mut by_port = BTreeMap::new();
        for port in config.allow_private.iter().filter_map(|a| a.port) {
            if let std::collections::btree_map::Entry::Vacant(slot) = by_port.entry(port) {
                slot.insert(build(Some(port))?);
            }
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
        // The reqwest timeout covers one exchange; this deadline bounds redirects and slow
        // bodies too.
        let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(1);
        let mut method = to_reqwest_method(request.method);
        let mut body = request.body.clone();
        let mut headers = request.headers.clone();
        let work = async {
            for _hop in 0..=self.config.max_redirects {
                allowlist.check(&url).map_err(HttpError::Denied)?;
                self.guard
                    .check_literal(&url)
                    .map_err(|refused| HttpError::Denied(refused.to_string()))?;
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
                    return Streamed::new(response, max_body, deadline, timeout);
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
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(&url, timeout)),
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
        let client = url
            .port_or_known_default()
            .and_then(|port| self.by_port.get(&port))
            .unwrap_or(&self.client);
        let mut builder = client.request(method.clone(), url.clone()).timeout(timeout);
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

fn timed_out(url: &Url, timeout: Duration) -> HttpError {
    HttpError::Timeout(format!(
        "no complete answer from {} within {timeout:?}",
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
        response: reqwest::Response,
        max_body: u64,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        let declared = response.content_length();
        if declared.is_some_and(|len| len > max_body) {
            return Err(HttpError::TooLarge(max_body));
        }
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        Ok(Self {
            status: response.status().as_u16(),
            headers,
            body: Body {
                url: response.url().clone(),
                response,
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
    response: reqwest::Response,
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
        let next = tokio::time::timeout_at(self.deadline, self.response.chunk()).await;
        let chunk = match next {
            Err(_) => return Err(timed_out(&self.url, self.timeout)),
            Ok(Err(e)) => return Err(classify(&self.url, &e)),
            Ok(Ok(chunk)) => chunk,
        };
        if let Some(chunk) = &chunk {
            self.read = self.read.saturating_add(chunk.len() as u64);
            if self.read > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
        }
        Ok(chunk)
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

fn classify(url: &Url, err: &reqwest::Error) -> HttpError {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        // The resolver's refusal, recognised by type: the guard's own message is the error.
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return HttpError::Denied(refused.to_string());
        }
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let host = url.host_str().unwrap_or_default();
    if err.is_timeout() {
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
