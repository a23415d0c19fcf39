//! HTTP for plugins: request building, retries with exponential backoff, `Retry-After`, token
//! refresh on 401, concurrent batches and JSON decoding.
//!
//! Every request goes through the host's `http` capability, which enforces the plugin's allowlist.
//! Retryable outcomes are network errors, timeouts, 429 and 5xx; everything else is returned to the
//! caller as a [`Response`] to interpret (a 409 from Dropbox or a 404 from Box is an answer, not a
//! fault). When retries run out the error says what happened last, so a listing fails loudly
//! instead of silently stopping.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::tributary::connector::http as wit;
pub use crate::tributary::connector::http::Method;
use crate::{Error, Result};

/// An outgoing request.
#[derive(Clone, Debug)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// A per-request time limit in milliseconds (the host's default when absent).
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Adds a header (replacing any header of the same name, case-insensitively).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Sets a header in place (replacing any header of the same name).
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// A JSON body with its content type.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Other(e.to_string()))?;
        self.body = Some(bytes);
        Ok(self.header("Content-Type", "application/json"))
    }

    /// A form-encoded body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let encoded = fields
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.body = Some(encoded.into_bytes());
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }

    /// A raw body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// A per-request time limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        self
    }

    /// The WIT form of this request (for content requests handed to the index).
    pub fn to_wit(&self) -> wit::Request {
        wit::Request {
            method: self.method,
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// A request from its WIT form (e.g. a content request to sign again).
    pub fn from_wit(request: wit::Request) -> Self {
        Self {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout_ms: request.timeout_ms,
        }
    }

    /// `GET http://host/path` — the method as HTTP spells it, the URL as given (its case
    /// matters: paths and ids are case-sensitive) without the query, which may hold secrets.
    fn describe(&self) -> String {
        format!("{} {}", method_name(self.method), strip_query(&self.url))
    }
}

/// A response with the whole body.
#[derive(Clone, Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON; a malformed body is a `Protocol` error naming the problem.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| {
            Error::Protocol(format!(
                "malformed JSON in HTTP {} response ({err}); body starts with {:?}",
                self.status,
                snippet(&self.body)
            ))
        })
    }

    /// A short, printable prefix of the body for error messages.
    pub fn snippet(&self) -> String {
        snippet(&self.body)
    }

    fn from_wit(r: wit::Response) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// Supplies credentials and refreshes them when the source says they expired.
pub trait Auth {
    /// Adds credentials to `request`, obtaining a token first if there is none.
    fn authorize(&mut self, request: &mut Request) -> Result<()>;
    /// Called with a 401 answer. Returns `true` when new credentials were obtained and the request
    /// should be sent again, `false` when the 401 is final.
    fn refresh(&mut self, response: &Response) -> Result<bool>;
}

/// How often and how long to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff delay; doubles on every retry.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; longer waits fail as `RateLimited`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The default policy with `retries` retries.
    pub fn with_retries(retries: u32) -> Self {
        Self {
            retries,
            ..Self::default()
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// What to do after one attempt.
enum Verdict {
    Done(Response),
    Retry { after: Duration, last: Error },
    Fail(Error),
}

/// Sends requests with a [`RetryPolicy`].
#[derive(Clone, Debug, Default)]
pub struct Client {
    policy: RetryPolicy,
}

impl Client {
    /// A client with this retry policy.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Sends `request`, retrying network errors, timeouts, 429 and 5xx. Any other status is
    /// returned as a response.
    pub fn send(&self, request: &Request) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let outcome = wit::send(&request.to_wit());
            match self.judge(request, attempt, outcome) {
                Verdict::Done(response) => return Ok(response),
                Verdict::Fail(err) => return Err(err),
                Verdict::Retry { after, last } => {
                    if attempt >= self.policy.retries {
                        return Err(last);
                    }
                    crate::debug!(
                        "{} failed ({}); retrying in {after:?}",
                        request.describe(),
                        last.describe()
                    );
                    sleep(after);
                    attempt += 1;
                }
            }
        }
    }

    /// Sends with credentials from `auth`; on 401 asks `auth` to refresh and sends once more.
    pub fn send_authed(&self, auth: &mut dyn Auth, request: &Request) -> Result<Response> {
        let mut authed = request.clone();
        auth.authorize(&mut authed)?;
        let response = self.send(&authed)?;
        if response.status != 401 || !auth.refresh(&response)? {
            return Ok(response);
        }
        let mut again = request.clone();
        auth.authorize(&mut again)?;
        self.send(&again)
    }

    /// Sends all requests concurrently (at most `concurrency` at once), retrying the retryable
    /// failures as a smaller batch after a backoff. Results are in request order.
    pub fn send_all(&self, requests: &[Request], concurrency: u32) -> Vec<Result<Response>> {
        let mut results: Vec<Option<Result<Response>>> = requests.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            let batch: Vec<wit::Request> = pending.iter().map(|&i| requests[i].to_wit()).collect();
            let outcomes = wit::send_all(&batch, concurrency.max(1));
            let mut retry = Vec::new();
            let mut wait = Duration::ZERO;
            for (&i, outcome) in pending.iter().zip(outcomes) {
                match self.judge(&requests[i], attempt, outcome) {
                    Verdict::Done(r) => results[i] = Some(Ok(r)),
                    Verdict::Fail(e) => results[i] = Some(Err(e)),
                    Verdict::Retry { after, last } => {
                        if attempt >= self.policy.retries {
                            results[i] = Some(Err(last));
                        } else {
                            wait = wait.max(after);
                            retry.push(i);
                        }
                    }
                }
            }
            if !retry.is_empty() {
                sleep(wait);
            }
            pending = retry;
            attempt += 1;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Other("request was not sent".into()))))
            .collect()
    }

    fn judge(
        &self,
        request: &Request,
        attempt: u32,
        outcome: std::result::Result<wit::Response, wit::HttpError>,
    ) -> Verdict {
        let what = request.describe();
        let backoff = self.policy.backoff(attempt);
        match outcome {
            Ok(raw) => {
                let response = Response::from_wit(raw);
                match response.status {
                    429 | 503 => {
                        let retry_after =
                            response.header("Retry-After").and_then(parse_retry_after);
                        let after = retry_after.unwrap_or(backoff);
                        let message = format!(
                            "{what}: HTTP {} after {} attempt(s): {}",
                            response.status,
                            attempt + 1,
                            response.snippet()
                        );
                        if after > self.policy.max_retry_after {
                            return Verdict::Fail(Error::RateLimited(format!(
                                "{message} (asked to wait {after:?})"
                            )));
                        }
                        let last = if response.status == 429 {
                            Error::RateLimited(message)
                        } else {
                            Error::Transient(message)
                        };
                        Verdict::Retry { after, last }
                    }
                    500..=599 => Verdict::Retry {
                        after: backoff,
                        last: Error::Transient(format!(
                            "{what}: HTTP {} after {} attempt(s): {}",
                            response.status,
                            attempt + 1,
                            response.snippet()
                        )),
                    },
                    _ => Verdict::Done(response),
                }
            }
            Err(wit::HttpError::Timeout(m)) | Err(wit::HttpError::Connection(m)) => {
                Verdict::Retry {
                    after: backoff,
                    last: Error::Transient(format!("{what}: {m} after {} attempt(s)", attempt + 1)),
                }
            }
            Err(wit::HttpError::Denied(m)) => Verdict::Fail(Error::Host(format!("{what}: {m}"))),
            Err(wit::HttpError::Refused(m)) => Verdict::Fail(Error::Host(format!("{what}: {m}"))),
            Err(wit::HttpError::InvalidRequest(m)) => {
                Verdict::Fail(Error::Other(format!("{what}: invalid request: {m}")))
            }
            Err(wit::HttpError::TooLarge(limit)) => Verdict::Fail(Error::Host(format!(
                "{what}: response larger than the host limit of {limit} bytes"
            ))),
        }
    }
}

/// Blocks the plugin for `duration` (the host keeps serving other work meanwhile).
pub fn sleep(duration: Duration) {
    if !duration.is_zero() {
        std::thread::sleep(duration);
    }
}

/// `Retry-After` as delta-seconds (HTTP dates are rare on APIs and treated as absent).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The method as it appears on the wire.
fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    text.replace(['\n', '\r'], " ")
}

/// Percent-encodes a string for URLs and form bodies (RFC 3986 unreserved characters kept).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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

/// Joins a base URL (with or without a trailing slash, possibly with a path) and a route.
pub fn join_url(base: &str, route: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        route.trim_start_matches('/')
    )
}

/// The `host` or `host:port` part of a URL, for `allowed-hosts`.
pub fn host_of(url: &str) -> Result<String> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| Error::Config(format!("`{url}` is not an absolute URL")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(Error::Config(format!("`{url}` has no host")));
    }
    Ok(authority.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn url_helpers() {
        assert_eq!(url_encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(
            join_url("http://h:1/2/", "/files/x"),
            "http://h:1/2/files/x"
        );
        assert_eq!(
            host_of("http://127.0.0.1:8080/2/").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(host_of("https://API.box.com").unwrap(), "api.box.com");
        assert!(host_of("api.box.com").is_err());
    }

    #[test]
    fn a_request_is_described_with_its_method_and_url_as_sent() {
        let request = Request::new(Method::Get, "http://127.0.0.1:8765/Items/AbC?token=secret");
        assert_eq!(request.describe(), "GET http://127.0.0.1:8765/Items/AbC");
        let request = Request::new(Method::Delete, "https://api.box.com/2.0/files/1");
        assert_eq!(request.describe(), "DELETE https://api.box.com/2.0/files/1");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(40), Duration::from_secs(30));
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
