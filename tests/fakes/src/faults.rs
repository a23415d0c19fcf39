//! Scripted fault injection shared by every fake server.
//!
//! A [`FaultPlan`] is a list of rules; each rule matches requests whose path contains a string,
//! lets `skip` matching requests through, then applies its [`Fault`] to the next `times` ones.
//! The plan also records every request it sees, so tests can assert what a plugin really called.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What to do to a matched request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status, headers and body instead of the real handler.
    Respond {
        /// HTTP status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: String,
    },
    /// Wait this long, then run the real handler (a slow server, or a client timeout when longer
    /// than the client's limit).
    Delay(Duration),
    /// Answer 200 with a truncated JSON document.
    MalformedJson,
}

impl Fault {
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Fault::Respond {
            status: 429,
            headers: vec![("Retry-After".into(), retry_after_secs.to_string())],
            body:
                r#"{"error_summary": "too_many_requests/", "error": {".tag": "too_many_requests"}}"#
                    .into(),
        }
    }

    /// A bare server error with the given 5xx status.
    pub fn server_error(status: u16) -> Self {
        Fault::Respond {
            status,
            headers: Vec::new(),
            body: "internal server error".into(),
        }
    }
}

#[derive(Clone, Debug)]
struct Rule {
    path_contains: String,
    skip: u32,
    times: u32,
    fault: Fault,
}

/// A request the fake server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Whether a fault was applied instead of (or before) the real handler.
    pub faulted: bool,
}

#[derive(Default, Debug)]
struct Inner {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// A shared, mutable list of fault rules plus a log of requests.
#[derive(Clone, Default, Debug)]
pub struct FaultPlan {
    inner: Arc<Mutex<Inner>>,
}

impl FaultPlan {
    /// An empty plan: every request reaches the real handler.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a test thread panicked; the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `fault` to the next `times` requests whose path contains `path_contains`.
    pub fn add(&self, path_contains: &str, times: u32, fault: Fault) -> &Self {
        self.add_after(path_contains, 0, times, fault)
    }

    /// Like [`FaultPlan::add`], but first lets `skip` matching requests through untouched.
    pub fn add_after(&self, path_contains: &str, skip: u32, times: u32, fault: Fault) -> &Self {
        self.lock().rules.push(Rule {
            path_contains: path_contains.to_string(),
            skip,
            times,
            fault,
        });
        self
    }

    /// Removes every rule that has not fired yet.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Every request seen so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// How many requests had a path containing `path_contains`.
    pub fn count(&self, path_contains: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.path.contains(path_contains))
            .count()
    }

    /// Forgets the request log (rules stay).
    pub fn reset_log(&self) {
        self.lock().seen.clear();
    }

    /// Whether every rule has fired all its `times`.
    pub fn exhausted(&self) -> bool {
        self.lock().rules.iter().all(|r| r.times == 0)
    }

    fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let mut chosen = None;
        for rule in inner.rules.iter_mut() {
            if rule.times == 0 || !path.contains(&rule.path_contains) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            rule.times -= 1;
            chosen = Some(rule.fault.clone());
            break;
        }
        inner.seen.push(Seen {
            method: method.to_string(),
            path: path.to_string(),
            faulted: chosen.is_some(),
        });
        chosen
    }

    /// The axum middleware: `router.layer(axum::middleware::from_fn_with_state(plan, FaultPlan::middleware))`.
    pub async fn middleware(
        State(plan): State<FaultPlan>,
        request: Request,
        next: Next,
    ) -> Response {
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        match plan.take(request.method().as_str(), &path) {
            None => next.run(request).await,
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                next.run(request).await
            }
            Some(Fault::MalformedJson) => (
                StatusCode::OK,
                [("content-type", "application/json")],
                r#"{"entries": [{"name": "trunc"#,
            )
                .into_response(),
            Some(Fault::Respond {
                status,
                headers,
                body,
            }) => {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::try_from(name.as_str()),
                        HeaderValue::try_from(value.as_str()),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
                response
            }
        }
    }
}
