//! A property test over every route the service describes (`/v1/openapi.json`, read from the
//! running service, so the test follows the document whoever writes it): random path
//! parameters (very long, unicode, `..`, `%2e%2e`, encoded slashes and NULs), query strings,
//! headers, tokens (none, wrong, another tenant's, the tenant's own, the admin's) and bodies
//! (JSON of any shape, bytes, nothing), sent as raw HTTP/1.1 over loopback so no client
//! normalises the path first.
//!
//! Properties: never a 5xx (the database is not broken here), never a dropped connection (a
//! panic in a handler), the service still healthy at the end; and a refused request (4xx), or
//! any GET, changes no state — tenants, tokens, connectors, queue, jobs, plugin state, indexes
//! and plugins are compared before and after.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_fakes::feed::FakeFeed;
use tributary_host::serve::token_hash;

use crate::service::{ADMIN, Svc, start};

const ACME: &str = "trb_fuzz-token-of-tenant-acme-0000000000";
const RIVAL: &str = "trb_fuzz-token-of-tenant-rival-000000000";

/// One request.
#[derive(Clone, Debug)]
struct Case {
    method: String,
    path: String,
    query: String,
    auth: Option<String>,
    content_type: Option<String>,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A path parameter: the fixture's names most of the time (so requests get past the 404s),
/// else something hostile.
fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just("acme".to_string()),
        2 => Just("rival".to_string()),
        6 => Just("docs".to_string()),
        1 => Just("feed".to_string()),
        1 => Just("..".to_string()),
        1 => Just("%2e%2e".to_string()),
        1 => Just("%2E%2E%2F%2E%2E".to_string()),
        1 => Just("a%2Fb".to_string()),
        1 => Just("%00".to_string()),
        1 => Just("%C3%A9%F0%9F%A6%80".to_string()),
        1 => Just("%FF%FE".to_string()),
        1 => (1usize..12_000).prop_map(|n| "x".repeat(n)),
        2 => "[a-zA-Z0-9._-]{1,80}",
        1 => any::<String>().prop_map(|s| encode(&s)),
    ]
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just("?ping=true".to_string()),
        1 => Just("?ping=maybe".to_string()),
        1 => Just("?activate=false".to_string()),
        1 => Just("?limit=-1&status=nope".to_string()),
        1 => Just("?limit=99999999999999999999999".to_string()),
        1 => Just("?index=docs&q=item".to_string()),
        1 => Just("?index=..&q=%00".to_string()),
        1 => Just("?index=%2e%2e%2fother&q=x&as=%FF".to_string()),
        1 => "[a-z=&%0-9]{0,40}".prop_map(|q| format!("?{q}")),
    ]
}

fn auth() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some("Bearer wrong-token".to_string())),
        1 => Just(Some("Bearer ".to_string())),
        1 => Just(Some(format!("Basic {ADMIN}"))),
        6 => Just(Some(format!("Bearer {ACME}"))),
        2 => Just(Some(format!("bearer {RIVAL}"))),
        5 => Just(Some(format!("Bearer {ADMIN}"))),
        1 => "[ -~]{0,60}".prop_map(Some),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        Just(json!("feed")),
        Just(json!("1s")),
        Just(json!("* * * * *")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("plugin".to_string()),
                    Just("index".to_string()),
                    Just("config".to_string()),
                    Just("rules".to_string()),
                    Just("advanced_rules".to_string()),
                    Just("schedule".to_string()),
                    Just("quotas".to_string()),
                    Just("kind".to_string()),
                    Just("version".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body(feed_url: String) -> impl Strategy<Value = Vec<u8>> {
    let connector = (param(), prop::option::of(param()), any::<bool>()).prop_map(
        move |(id, index, scheduled)| {
            let mut c = json!({"id": id, "plugin": "feed", "config": {"base_url": feed_url}});
            if let Some(index) = index {
                c["index"] = json!(index);
            }
            if scheduled {
                c["schedule"] = json!({"full_every": "1h"});
            }
            c.to_string().into_bytes()
        },
    );
    prop_oneof![
        2 => Just(Vec::new()),
        // Bodies the routes accept, so that requests get through as well as get refused.
        3 => connector,
        1 => "[a-z]{1,8}".prop_map(|id| json!({"id": id}).to_string().into_bytes()),
        1 => Just(json!({"quotas": {"max_documents": 5}}).to_string().into_bytes()),
        1 => prop::sample::select(vec!["full", "incremental", "access_control"])
            .prop_map(|k| json!({"kind": k}).to_string().into_bytes()),
        4 => json_value().prop_map(|v| v.to_string().into_bytes()),
        // Shapes the routes take, with hostile values.
        2 => (param(), json_value()).prop_map(|(id, v)| json!({"id": id, "plugin": "feed", "config": {"base_url": v}}).to_string().into_bytes()),
        1 => (param(), json_value()).prop_map(|(id, q)| json!({"id": id, "quotas": q}).to_string().into_bytes()),
        1 => json_value().prop_map(|k| json!({"kind": k}).to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..2000),
        1 => Just(b"{".to_vec()),
        1 => Just(b"\0asm\x0d\0\x01\0".to_vec()),
    ]
}

fn case(routes: Vec<(String, String)>, feed_url: String) -> impl Strategy<Value = Case> {
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    (
        prop::sample::select(routes),
        prop::option::weighted(0.08, prop::sample::select(methods.to_vec())),
        prop::collection::vec(param(), 3),
        query(),
        auth(),
        prop::option::weighted(
            0.9,
            prop_oneof![
                4 => Just("application/json".to_string()),
                1 => Just("application/json; charset=utf-8".to_string()),
                1 => Just("text/plain".to_string()),
                1 => Just("application/wasm".to_string()),
                1 => "[ -~]{0,30}",
            ],
        ),
        prop::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,60}"), 0..3),
        body(feed_url),
    )
        .prop_map(
            |((method, template), other, params, query, auth, content_type, extra, body)| {
                let mut path = String::new();
                let mut params = params.into_iter();
                for segment in template.split('/').skip(1) {
                    path.push('/');
                    if segment.starts_with('{') {
                        path.push_str(&params.next().unwrap_or_default());
                    } else {
                        path.push_str(segment);
                    }
                }
                Case {
                    method: other.map(str::to_string).unwrap_or(method),
                    path,
                    query,
                    auth,
                    content_type,
                    extra,
                    body,
                }
            },
        )
}

/// Sends `case` as raw HTTP/1.1; the status and body, or why there was no answer.
async fn send(addr: &str, case: &Case) -> Result<(u16, String), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        case.method,
        case.path,
        case.query,
        case.body.len()
    );
    if let Some(auth) = &case.auth {
        head.push_str(&format!("authorization: {auth}\r\n"));
    }
    if let Some(ct) = &case.content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    for (name, value) in &case.extra {
        // Never a second framing header: the request must stay one request.
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "content-length" | "transfer-encoding" | "host" | "connection"
        ) {
            head.push_str(&format!("x-{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(&case.body);
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut response))
        .await
        .map_err(|_| "no answer within 60 s".to_string())?
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", &text[..text.len().min(200)]))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The fixture every case starts from: tenants `acme` and `rival` with known tokens, and a
/// feed connector `docs` of `acme`.
async fn fixture(svc: &Svc, feed: &FakeFeed) {
    let store = svc.service.store();
    for (id, token) in [("acme", ACME), ("rival", RIVAL)] {
        if store.tenant(id).await.unwrap().is_none() {
            store
                .create_tenant(id, None, &Default::default())
                .await
                .unwrap();
        }
        store.set_token(id, token_hash(token)).await.unwrap();
    }
    if store.connector("acme", "docs").await.unwrap().is_none() {
        let spec: tributary_host::ConnectorSpec = serde_json::from_value(json!({
            "id": "docs", "tenant": "acme", "plugin": "feed",
            "config": {"base_url": feed.base_url()},
        }))
        .unwrap();
        store.put_connector(&spec, None).await.unwrap();
    }
}

/// Waits until no job is queued or running, so background work cannot change the state
/// between the two snapshots of a case.
async fn idle(svc: &Svc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !svc.service.running().is_empty()
        || !svc.service.store().queue().await.unwrap().is_empty()
    {
        assert!(Instant::now() < deadline, "jobs never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The state once background work has settled: the scheduler may queue a due job just after
/// `idle` returns (the fixture's connectors are due at once), so a snapshot counts only when
/// nothing ran or was queued while it was taken and the next one agrees.
async fn settled(svc: &Svc) -> Value {
    for _ in 0..50 {
        idle(svc).await;
        let first = snapshot(svc).await;
        idle(svc).await;
        if snapshot(svc).await == first {
            return first;
        }
    }
    panic!("the service's state never settled");
}

/// Everything a request could change.
async fn snapshot(svc: &Svc) -> Value {
    let store = svc.service.store();
    let host = svc.service.host();
    let mut tenants = Vec::new();
    let mut ids: Vec<String> = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    ids.extend(host.sink().tenants().await.unwrap());
    ids.sort();
    ids.dedup();
    for id in ids {
        let record = store.tenant(&id).await.unwrap();
        let jobs: Vec<Value> = host
            .jobs()
            .list(&id, None, None, 1000)
            .await
            .unwrap()
            .iter()
            .map(|j| json!([j.id, j.status, j.counts]))
            .collect();
        tenants.push(json!({
            "id": id,
            "record": record.map(|t| json!([t.quotas, t.has_token])),
            "connectors": serde_json::to_value(store.connectors(&id).await.unwrap()).unwrap(),
            "storage": store.storage_usage(&id).await.unwrap(),
            "jobs": jobs,
            "indexes": host.sink().indexes(id.clone()).await.unwrap(),
        }));
    }
    let queue: Vec<String> = store
        .queue()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.job_id)
        .collect();
    let uploads: Vec<String> = store
        .uploads()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.digest)
        .collect();
    let mut tokens = Vec::new();
    for token in [ACME, RIVAL] {
        tokens.push(store.tenant_by_token(&token_hash(token)).await.unwrap());
    }
    json!({
        "tenants": tenants,
        "tokens": tokens,
        "queue": queue,
        "uploads": uploads,
        "active": store.active_plugins().await.unwrap(),
        "plugins": serde_json::to_value(host.plugins()).unwrap(),
    })
}

#[test]
fn no_request_to_any_described_route_is_a_5xx_or_changes_state_when_refused() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (svc, feed) = rt.block_on(async {
        let feed = FakeFeed::start(None).await.unwrap();
        crate::service::items(&feed, "f", 3, "item");
        let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
        (svc, feed)
    });
    let addr = svc.base.trim_start_matches("http://").to_string();
    let (status, doc) = rt.block_on(svc.call("GET", "/v1/openapi.json", None, None));
    assert_eq!(status, 200, "{doc}");
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert!(routes.len() > 15, "{routes:?}");

    let cases: u32 = std::env::var("TRIBUTARY_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let (refused, accepted) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&case(routes, feed.base_url()), |case| {
        rt.block_on(async {
            fixture(&svc, &feed).await;
            let before = settled(&svc).await;
            let (status, body) = send(&addr, &case)
                .await
                .map_err(|e| TestCaseError::fail(format!("{case:?}: {e}")))?;
            prop_assert!(status < 500, "{case:?} answered {status}: {body}");
            *statuses.borrow_mut().entry(status).or_default() += 1;
            if (400..500).contains(&status) || case.method == "GET" {
                // Whatever a refused request or a read set going must not have happened.
                let after = settled(&svc).await;
                prop_assert_eq!(&before, &after, "{:?} answered {}: {}", case, status, body);
                refused.set(refused.get() + 1);
            } else {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The properties were exercised on both sides.
    let (refused, accepted) = (refused.get(), accepted.get());
    eprintln!(
        "{cases} requests: {refused} refused or reads (state compared), {accepted} accepted; by status: {:?}",
        statuses.borrow()
    );
    assert!(refused > cases / 4, "{refused} refused of {cases}");
    assert!(accepted > 0, "no request was accepted");
    let (status, body) = rt.block_on(svc.call("GET", "/health", None, None));
    assert_eq!(status, 200, "{body}");
    rt.block_on(svc.stop());
}
