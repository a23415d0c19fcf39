//! The exchange with the cluster: bulk requests in flight, their retries, and answers read as
//! JSON with Elasticsearch's error reason.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail};
use elasticsearch::http::{Method, headers::HeaderMap};
use elasticsearch::{BulkParts, Elasticsearch};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::request_builder::Op;
use super::*;

/// A bulk request in flight and the ids it writes.
pub(super) struct InFlight {
    pub(super) ids: HashSet<String>,
    pub(super) handle: JoinHandle<anyhow::Result<()>>,
}

pub(super) async fn join_all(handles: Vec<JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    let mut first = None;
    for handle in handles {
        let outcome = match handle.await {
            Ok(r) => r,
            Err(e) => Err(anyhow!("bulk task failed: {e}")),
        };
        if let Err(e) = outcome
            && first.is_none()
        {
            first = Some(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub(super) fn error_type(body: &Value) -> Option<&str> {
    body.pointer("/error/type").and_then(Value::as_str)
}

pub(super) fn error_reason(body: &Value) -> String {
    match (
        error_type(body),
        body.pointer("/error/reason").and_then(Value::as_str),
    ) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_string(),
        _ => crate::text::truncate(&body.to_string(), 300).to_string(),
    }
}

/// The JSON body of a successful response, or an error naming what failed and why.
pub async fn read_json(
    response: elasticsearch::http::response::Response,
    what: &str,
) -> anyhow::Result<Value> {
    let status = response.status_code();
    let text = response
        .text()
        .await
        .map_err(|e| anyhow!("{what}: reading the response: {e}"))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        bail!("{what}: HTTP {}: {}", status.as_u16(), error_reason(&body));
    }
    Ok(body)
}

/// Sends one bulk request, retrying the whole request (429/5xx/network) or its rejected items
/// (429/503) with exponential backoff; fails on the first item Elasticsearch refuses for good.
pub(super) async fn send_bulk(
    client: &Elasticsearch,
    config: &ElasticsearchConfig,
    stats: &SinkStats,
    index: &str,
    mut ops: Vec<Op>,
) -> anyhow::Result<()> {
    let mut attempt = 0u32;
    let mut delays = super::retry::delays(config);
    loop {
        let mut lines = Vec::with_capacity(ops.len() * 2);
        for op in &ops {
            lines.push(op.action.clone());
            if let Some(source) = &op.source {
                lines.push(source.clone());
            }
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let sent = client
            .bulk(BulkParts::Index(index))
            .body(lines)
            .send()
            .await;
        let retry_reason = match sent {
            Err(e) => format!("request failed: {e}"),
            Ok(response) => {
                let status = response.status_code();
                let code = status.as_u16();
                if code == 429 || (500..600).contains(&code) {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    format!("HTTP {code}: {}", error_reason(&body))
                } else if !status.is_success() {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let hint = if code == 413 {
                        " (lower `bulk_max_bytes`)"
                    } else {
                        ""
                    };
                    bail!(
                        "bulk request to `{index}` refused: HTTP {code}: {}{hint}",
                        error_reason(&body)
                    );
                } else {
                    let body: Value = response
                        .json()
                        .await
                        .map_err(|e| anyhow!("bulk response from `{index}` unreadable: {e}"))?;
                    let items = body
                        .get("items")
                        .and_then(Value::as_array)
                        .ok_or_else(|| anyhow!("bulk response from `{index}` has no items"))?;
                    if items.len() != ops.len() {
                        bail!(
                            "bulk response from `{index}` has {} items for {} operations",
                            items.len(),
                            ops.len()
                        );
                    }
                    let mut retry = Vec::new();
                    let mut last = String::new();
                    for (op, item) in ops.into_iter().zip(items) {
                        let (kind, result) = match item.as_object().and_then(|o| o.iter().next()) {
                            Some((k, v)) => (k.as_str(), v),
                            None => bail!("bulk response from `{index}`: malformed item {item}"),
                        };
                        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
                        let reason = || match (
                            result.pointer("/error/type").and_then(Value::as_str),
                            result.pointer("/error/reason").and_then(Value::as_str),
                        ) {
                            (Some(t), Some(r)) => format!("{t}: {r}"),
                            (Some(t), None) => t.to_string(),
                            _ => format!("status {status}"),
                        };
                        match status {
                            200..=299 => {
                                if kind == "delete" {
                                    stats.deleted.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    stats.indexed.fetch_add(1, Ordering::Relaxed);
                                    let n = op.source.as_ref().map_or(0, |s| s.len()) as u64;
                                    stats.indexed_bytes.fetch_add(n, Ordering::Relaxed);
                                }
                            }
                            404 if kind == "delete" => {} // already gone
                            // Rewritten since its owner was read (by another connector, say):
                            // no longer the copy this delete was for.
                            409 if kind == "delete" => {}
                            429 | 503 => {
                                last = format!("document `{}`: HTTP {status} {}", op.id, reason());
                                retry.push(op);
                            }
                            _ => bail!(
                                "Elasticsearch refused document `{}` in `{index}` (HTTP {status}): {}",
                                op.id,
                                reason()
                            ),
                        }
                    }
                    if retry.is_empty() {
                        return Ok(());
                    }
                    stats
                        .retried_items
                        .fetch_add(retry.len() as u64, Ordering::Relaxed);
                    ops = retry;
                    last
                }
            }
        };
        if attempt >= config.retries {
            bail!(
                "bulk write to `{index}` still failing after {} attempt(s): {retry_reason}",
                attempt + 1
            );
        }
        tracing::debug!(%index, attempt, "retrying bulk write: {retry_reason}");
        tokio::time::sleep(delays.next().unwrap_or_default()).await;
        attempt += 1;
    }
}

/// Sends a request the typed API has no builder for (kept for the compatibility mode).
pub async fn raw(
    client: &Elasticsearch,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<elasticsearch::http::response::Response> {
    let body = body.map(elasticsearch::http::request::JsonBody::new);
    client
        .send(method, path, HeaderMap::new(), None::<&()>, body, None)
        .await
        .map_err(|e| anyhow!("{path}: {e}"))
}
