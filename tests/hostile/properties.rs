//! Property tests with the real plugins: arbitrary API answers fed to the `feed` plugin (what a
//! source's server controls) and arbitrary advanced rules fed to the `dropbox` plugin (what an API
//! user controls). Whatever they are, the plugin either does its job exactly or fails with a typed
//! error; it never traps, and the host never falls over.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};
use tributary_fakes::FakeServer;
use tributary_fakes::feed::FakeFeed;
use tributary_host::sink::IndexRef;
use tributary_host::{JobStatus, SyncKind, SyncOptions};

use crate::arena::{Arena, spec};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,8}",
                    Just("id".to_string()),
                    Just("items".to_string())
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Feed items: unique ids, then any title and body text (control characters, quotes, emoji…).
fn items() -> impl Strategy<Value = BTreeMap<String, (String, Option<String>)>> {
    prop::collection::btree_map(
        "[a-z0-9]{1,10}",
        (
            prop_oneof![".{0,30}", "[\\x00-\\x1f\"\\\\]{0,4}"],
            prop::option::of(".{1,40}"),
        ),
        0..12,
    )
}

/// Every item a fake feed serves is indexed exactly, whatever its text.
#[test]
fn feed_items_reach_the_index_exactly() {
    let rt = runtime();
    let arena = rt.block_on(Arena::without_hostile(Vec::new()));
    let mut runner = TestRunner::new(Config::with_cases(24));
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&items(), |items| {
            let id = format!(
                "feed-{}",
                case.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let docs = rt.block_on(async {
                let feed = FakeFeed::start(None).await.unwrap();
                for (item, (title, body)) in &items {
                    feed.upsert(item, title, body.as_deref());
                }
                let connector = spec(
                    "props",
                    &id,
                    "feed",
                    json!({"base_url": feed.base_url(), "page_size": 5}),
                );
                let report = arena
                    .host
                    .sync_spec(&connector, SyncKind::Full, SyncOptions::default())
                    .await
                    .unwrap();
                assert_eq!(report.status, JobStatus::Succeeded, "{:?}", report.error);
                let sink = arena.host.sink();
                let index = IndexRef::new("props", id.as_str());
                let ids = sink
                    .versions(index.clone(), id.clone())
                    .await
                    .unwrap()
                    .into_ids();
                sink.get(index, id.clone(), ids).await.unwrap()
            });
            let got: BTreeMap<String, (String, Option<String>)> = docs
                .into_iter()
                .map(|d| {
                    let title = d.fields["title"].as_str().unwrap_or_default().to_string();
                    (d.id, (title, d.body))
                })
                .collect();
            prop_assert_eq!(got, items);
            Ok(())
        })
        .unwrap();
}

/// What the fake feed answers to `/items`.
#[derive(Clone, Debug)]
enum Answer {
    /// A well-formed page with these items: the sync must succeed.
    Valid(Vec<(String, String)>),
    /// Anything else: a status, a content type and a body.
    Garbage(u16, &'static str, Vec<u8>),
}

fn answer() -> impl Strategy<Value = Answer> {
    let valid = prop::collection::btree_map("[a-z0-9]{1,8}", ".{0,20}", 0..5)
        .prop_map(|m| Answer::Valid(m.into_iter().collect()));
    let status = prop_oneof![
        Just(200u16),
        Just(400),
        Just(401),
        Just(404),
        Just(429),
        Just(500)
    ];
    let body = prop_oneof![
        // Bytes, JSON of the wrong shape, the right shape with wrong types, truncated JSON.
        prop::collection::vec(any::<u8>(), 0..64),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), json_value(), json_value(), json_value()).prop_map(
            |(id, title, next, cursor)| {
                json!({"items": [{"id": id, "title": title, "updated_at": "2024-01-01T00:00:00Z"}],
                   "next_page_token": next, "cursor": cursor})
                .to_string()
                .into_bytes()
            }
        ),
        (json_value(), 0usize..40).prop_map(|(v, cut)| {
            let text = json!({"items": [v], "cursor": "1"}).to_string();
            text.as_bytes()[..cut.min(text.len())].to_vec()
        }),
    ];
    let content_type = prop_oneof![Just("application/json"), Just("text/html")];
    prop_oneof![
        1 => valid,
        4 => (status, content_type, body).prop_map(|(s, c, b)| Answer::Garbage(s, c, b)),
    ]
}

/// Whatever a source's server answers, the plugin succeeds on a valid page and otherwise fails
/// with its own typed error: never a trap, a limit or a hang.
#[test]
fn arbitrary_feed_answers_fail_cleanly() {
    let rt = runtime();
    let arena = rt.block_on(Arena::without_hostile(Vec::new()));
    let served: Arc<Mutex<(u16, &'static str, Vec<u8>)>> =
        Arc::new(Mutex::new((200, "application/json", Vec::new())));
    let state = served.clone();
    let server = rt
        .block_on(FakeServer::start(axum::Router::new().route(
            "/items",
            get(move || {
                let (status, content_type, body) = state.lock().unwrap().clone();
                async move {
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [(header::CONTENT_TYPE, content_type)],
                        body,
                    )
                        .into_response()
                }
            }),
        )))
        .unwrap();
    let mut runner = TestRunner::new(Config::with_cases(48));
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&answer(), |answer| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (status, content_type, body) = match &answer {
                Answer::Valid(items) => {
                    let items: Vec<Value> = items
                        .iter()
                        .map(|(id, title)| {
                            json!({"id": id, "title": title, "updated_at": "2024-01-01T00:00:00Z"})
                        })
                        .collect();
                    let page = json!({"items": items, "next_page_token": null, "cursor": "7"});
                    (200, "application/json", page.to_string().into_bytes())
                }
                Answer::Garbage(s, c, b) => (*s, *c, b.clone()),
            };
            *served.lock().unwrap() = (status, content_type, body);
            let connector = spec(
                "props",
                &format!("answers-{case}"),
                "feed",
                json!({"base_url": server.url(), "retry_count": 0}),
            );
            let report = rt
                .block_on(
                    arena
                        .host
                        .sync_spec(&connector, SyncKind::Full, SyncOptions::default()),
                )
                .unwrap();
            match (&answer, report.status) {
                (Answer::Valid(items), status) => {
                    prop_assert_eq!(status, JobStatus::Succeeded, "{:?}", report.error);
                    prop_assert_eq!(report.counts.indexed, items.len() as u64);
                }
                (Answer::Garbage(..), JobStatus::Succeeded) => {}
                (Answer::Garbage(..), _) => {
                    let error = report.error.clone().unwrap();
                    prop_assert!(
                        !["trap", "limit", "timeout"].contains(&error.kind.as_str()),
                        "{:?} for {:?}",
                        error,
                        answer
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    // The host still serves.
    let report = rt.block_on(arena.host.sync(
        Some("victim"),
        "news",
        SyncKind::Full,
        SyncOptions::default(),
    ));
    assert_eq!(report.unwrap().status, JobStatus::Succeeded);
}

/// Advanced rules for the Dropbox plugin: its vocabulary, with values of any type, and anything
/// else. (`options.path` is left out: checking it calls Dropbox.)
fn advanced_rules() -> impl Strategy<Value = Value> {
    let option = prop_oneof![
        Just("max_results"),
        Just("order_by"),
        Just("file_status"),
        Just("account_id"),
        Just("file_extensions"),
        Just("file_categories"),
        Just("filename_only"),
        Just("bogus"),
    ];
    let options = prop::collection::btree_map(option, json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    let key = prop_oneof![
        Just("query"),
        Just("options"),
        Just("match_field_options"),
        Just("extra")
    ];
    let rule = prop::collection::btree_map(
        key,
        prop_oneof![json_value(), options, ".{0,10}".prop_map(Value::String)],
        0..4,
    )
    .prop_map(|m| {
        Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Map<_, _>>(),
        )
    });
    prop_oneof![
        4 => prop::collection::vec(rule, 0..4).prop_map(Value::Array),
        1 => json_value(),
    ]
}

/// Whatever the rules are, `validate-advanced-rules` answers: accepted rules have the shape the
/// plugin documents, refusals name rules that exist. It never traps.
#[test]
fn dropbox_advanced_rules_are_validated_without_trapping() {
    let rt = runtime();
    let arena = rt.block_on(Arena::without_hostile(Vec::new()));
    let plugin = arena.host.plugin("dropbox").unwrap();
    let raw = json!({
        "app_key": "key",
        "app_secret": "secret",
        "refresh_token": "token",
        "api_base_url": "http://127.0.0.1:9",
        "content_base_url": "http://127.0.0.1:9",
        "oauth_base_url": "http://127.0.0.1:9",
        "retry_count": 0,
    });
    let connector = spec("props", "dropbox", "dropbox", raw.clone());
    let config = Value::Object(
        tributary_host::connector::schema::resolve(
            &plugin.manifest.config,
            raw.as_object().unwrap(),
        )
        .unwrap(),
    )
    .to_string();
    let mut runner = TestRunner::new(Config::with_cases(128));
    runner
        .run(&advanced_rules(), |rules| {
            let verdict = rt.block_on(async {
                let mut instance = arena
                    .host
                    .instantiate(
                        plugin.clone(),
                        &connector,
                        &config,
                        false,
                        &SyncOptions::default(),
                    )
                    .await
                    .unwrap();
                instance
                    .bindings
                    .tributary_connector_plugin()
                    .call_validate_advanced_rules(&mut instance.store, &config, &rules.to_string())
                    .await
            });
            let verdict = verdict
                .map_err(|trap| TestCaseError::fail(format!("trapped on {rules}: {trap:#}")))?;
            match verdict {
                Ok(()) => {
                    let items = rules.as_array();
                    prop_assert!(items.is_some(), "accepted a non-array: {}", rules);
                    for item in items.unwrap() {
                        prop_assert!(
                            item.get("query").is_some_and(Value::is_string),
                            "accepted a rule without a query: {}",
                            rules
                        );
                        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
                        prop_assert!(
                            keys.iter()
                                .all(|k| ["query", "options", "match_field_options"]
                                    .contains(&k.as_str())),
                            "accepted unknown keys: {}",
                            rules
                        );
                    }
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    let len = rules.as_array().map_or(0, Vec::len);
                    for e in errors {
                        prop_assert!(!e.message.is_empty());
                        prop_assert!(e.rule.is_none_or(|i| (i as usize) < len), "{:?}", e);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
