//! The Elasticsearch sink through the [`Sink`] trait, against the wire-compatible test server
//! (no wasm): the same expectations as the embedded index, plus bulk bounds, backpressure,
//! retries, per-item errors and ordering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tenancy;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_fakes::Fault;
use tributary_fakes::elasticsearch::FakeElasticsearch;

use std::sync::atomic::Ordering;

use super::*;

fn doc(connector: &str, id: &str, version: &str, title: &str, body: &str) -> SinkDocument {
    let Value::Object(fields) = json!({"id": id, "title": title, "path": format!("/docs/{title}"), "_timestamp": "2024-05-01T10:00:00Z", "_allow_access_control": ["email:ann@example.com"]})
    else {
        unreachable!()
    };
    SinkDocument {
        id: id.into(),
        connector: connector.into(),
        version: Some(version.into()),
        fields,
        body: Some(body.into()),
    }
}

async fn fake() -> FakeElasticsearch {
    let es = FakeElasticsearch::start().await.unwrap();
    // Writes become searchable only through explicit refreshes: commit must refresh.
    es.set_refresh_interval(None);
    es
}

fn sink_for(
    es: &FakeElasticsearch,
    tweak: impl FnOnce(&mut ElasticsearchConfig),
) -> ElasticsearchSink {
    let mut config = ElasticsearchConfig {
        host: es.url(),
        retry_backoff_ms: 5,
        ..Default::default()
    };
    tweak(&mut config);
    ElasticsearchSink::new(&config).unwrap()
}

fn search(q: &str) -> SearchRequest {
    SearchRequest {
        query: q.into(),
        limit: 10,
        ..Default::default()
    }
}

#[tokio::test]
async fn upsert_search_versions_delete() {
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    assert_eq!(sink.ping().await.unwrap(), "9.1.0");
    let ix = IndexRef::new("acme", "docs");
    sink.upsert(
        ix.clone(),
        vec![
            doc(
                "a",
                "1",
                "v1",
                "Quarterly revenue",
                "revenue grew in the third quarter",
            ),
            doc(
                "a",
                "2",
                "v1",
                "Holiday plan",
                "the office closes in december",
            ),
            doc("b", "3", "v9", "Other connector", "revenue elsewhere"),
        ],
    )
    .await
    .unwrap();
    sink.commit(ix.clone()).await.unwrap();
    // Created explicitly with mappings, not by dynamic auto-creation, under the tenant's name.
    assert_eq!(es.auto_created("tributary-acme-docs"), Some(false));
    assert!(!es.exists("docs"));
    let mappings = es.mappings("tributary-acme-docs").unwrap();
    assert_eq!(mappings["properties"]["_timestamp"]["type"], "date");
    assert_eq!(mappings["properties"]["body"]["type"], "text");
    // What Elastic's dynamic mapping gives a string, and its DLS template queries.
    assert_eq!(
        mappings["properties"]["_allow_access_control"],
        json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
    );
    assert_eq!(
        mappings["_meta"]["tributary"],
        json!({"tenant": "acme", "index": "docs"})
    );
    // The stored shape: the plugin's fields, the body, our three bookkeeping fields.
    assert_eq!(
        es.document("tributary-acme-docs", "1").unwrap(),
        json!({"id": "1", "title": "Quarterly revenue", "path": "/docs/Quarterly revenue", "_timestamp": "2024-05-01T10:00:00Z", "_allow_access_control": ["email:ann@example.com"], "body": "revenue grew in the third quarter", "_tributary_connector": "a", "_tributary_tenant": "acme", "_tributary_version": "v1"})
    );

    assert_eq!(
        sink.search(ix.clone(), search("revenue"))
            .await
            .unwrap()
            .total,
        2
    );
    let only_a = sink
        .search(
            ix.clone(),
            SearchRequest {
                connector: Some("a".into()),
                ..search("revenue")
            },
        )
        .await
        .unwrap();
    assert_eq!(only_a.hits.len(), 1);
    assert_eq!(only_a.hits[0].title.as_deref(), Some("Quarterly revenue"));
    assert!(
        only_a.hits[0]
            .snippet
            .as_deref()
            .unwrap()
            .contains("<b>revenue</b>")
    );
    assert_eq!(
        sink.search(ix.clone(), search("holiday"))
            .await
            .unwrap()
            .total,
        1
    );
    let denied = sink
        .search(
            ix.clone(),
            SearchRequest {
                identities: Some(vec!["email:bob@example.com".into()]),
                ..search("revenue")
            },
        )
        .await
        .unwrap();
    assert_eq!(denied.total, 0);
    let allowed = sink
        .search(
            ix.clone(),
            SearchRequest {
                identities: Some(vec!["email:ann@example.com".into()]),
                ..search("revenue")
            },
        )
        .await
        .unwrap();
    assert_eq!(allowed.total, 2);

    assert!(
        sink.versions(ix.clone(), "a".into())
            .await
            .unwrap()
            .holds_exactly([("1", Some("v1")), ("2", Some("v1"))])
    );
    sink.upsert(
        ix.clone(),
        vec![doc("a", "1", "v2", "Quarterly revenue", "updated")],
    )
    .await
    .unwrap();
    sink.delete(
        ix.clone(),
        "a".into(),
        vec!["2".into(), "never-existed".into()],
    )
    .await
    .unwrap();
    sink.commit(ix.clone()).await.unwrap();
    assert!(
        sink.versions(ix.clone(), "a".into())
            .await
            .unwrap()
            .holds_exactly([("1", Some("v2"))])
    );
    assert_eq!(
        sink.versions(ix.clone(), "b".into()).await.unwrap().len(),
        1
    );
    let got = sink
        .get(
            ix.clone(),
            "a".into(),
            vec!["1".into(), "missing".into(), "3".into()],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "b's document is not a's");
    assert_eq!(got[0].body.as_deref(), Some("updated"));
    assert_eq!(got[0].version.as_deref(), Some("v2"));
    assert_eq!(got[0].fields["title"], "Quarterly revenue");

    // Nothing indexed yet: empty, not an error; the ACL index gets its own mappings.
    let empty = IndexRef::new("acme", "empty");
    assert!(
        sink.versions(empty.clone(), "a".into())
            .await
            .unwrap()
            .is_empty()
    );
    sink.commit(empty.acl()).await.unwrap();
    sink.upsert(
        ix.acl(),
        vec![doc("a", "email:ann@example.com", "v1", "ann", "")],
    )
    .await
    .unwrap();
    sink.commit(ix.acl()).await.unwrap();
    assert_eq!(
        es.mappings(".search-acl-filter-tributary-acme-docs")
            .unwrap()["properties"]["query"]["enabled"],
        false
    );
}

#[tokio::test]
async fn versions_page_through_a_point_in_time_and_adopt_foreign_documents() {
    let es = fake().await;
    let sink = sink_for(&es, |c| c.bulk_max_docs = 700);
    let ix = IndexRef::new("t", "many");
    let docs: Vec<SinkDocument> = (0..2500)
        .map(|i| doc("c", &format!("d{i:05}"), "v1", "t", "b"))
        .collect();
    sink.upsert(ix.clone(), docs).await.unwrap();
    // A document Elastic's own service wrote: no tributary fields.
    es.put(
        "tributary-t-many",
        "legacy",
        json!({"id": "legacy", "title": "old"}),
    );
    sink.commit(ix.clone()).await.unwrap();
    let versions = sink.versions(ix.clone(), "c".into()).await.unwrap();
    assert_eq!(versions.len(), 2501);
    assert!(
        versions.is_unversioned("legacy"),
        "unknown version: rewritten on the next full sync"
    );
    let mut sizes = es.bulk_stats().sizes;
    sizes.sort_unstable();
    assert_eq!(
        sizes,
        vec![400, 700, 700, 700],
        "concurrent, so in any order"
    );
    assert!(
        es.faults().count("/_pit") >= 2,
        "opened and closed a point in time"
    );
}

#[tokio::test]
async fn bulk_requests_are_bounded_and_a_saturated_sink_makes_the_caller_wait() {
    let es = fake().await;
    es.set_bulk_delay(Some(Duration::from_millis(100)));
    let sink = sink_for(&es, |c| {
        c.bulk_max_docs = 10;
        c.bulk_max_bytes = 4096;
        c.bulk_concurrency = 2;
    });
    let ix = IndexRef::new("t", "bounded");
    let big = "x".repeat(1500);
    let mut docs: Vec<SinkDocument> = (0..60)
        .map(|i| doc("c", &format!("s{i}"), "v1", "t", "b"))
        .collect();
    docs.extend((0..4).map(|i| doc("c", &format!("big{i}"), "v1", "t", &big)));
    let started = Instant::now();
    sink.upsert(ix.clone(), docs).await.unwrap();
    let waited = started.elapsed();
    sink.commit(ix.clone()).await.unwrap();
    let stats = es.bulk_stats();
    assert!(stats.sizes.iter().all(|n| *n <= 10), "{stats:?}");
    assert!(stats.bytes.iter().all(|b| *b <= 4096), "{stats:?}");
    assert_eq!(stats.items, 64);
    assert_eq!(stats.max_concurrent, 2, "bounded, and actually concurrent");
    // 8+ requests of 100 ms, 2 at a time: the call returns only when the last ones got a slot.
    assert!(
        waited >= Duration::from_millis(250),
        "upsert returned after {waited:?}"
    );
    assert_eq!(sink.versions(ix, "c".into()).await.unwrap().len(), 64);
}

#[tokio::test]
async fn rejected_items_and_requests_are_retried_and_nothing_is_lost() {
    let es = fake().await;
    let sink = sink_for(&es, |c| c.bulk_max_docs = 50);
    let ix = IndexRef::new("t", "retry");
    es.reject_items(7);
    es.fail_item(
        "d3",
        503,
        "unavailable_shards_exception",
        "primary shard is not active",
        2,
    );
    es.faults().add("/_bulk", 1, Fault::too_many_requests(0));
    es.faults()
        .add_after("/_bulk", 1, 1, Fault::server_error(502));
    let docs: Vec<SinkDocument> = (0..120)
        .map(|i| doc("c", &format!("d{i}"), "v1", "t", "b"))
        .collect();
    sink.upsert(ix.clone(), docs).await.unwrap();
    sink.commit(ix.clone()).await.unwrap();
    assert_eq!(es.documents("tributary-t-retry").len(), 120);
    assert_eq!(sink.stats().retried_items.load(Ordering::Relaxed), 9);
    assert_eq!(sink.stats().indexed.load(Ordering::Relaxed), 120);
}

#[tokio::test]
async fn a_document_refused_for_good_fails_with_its_id_and_reason() {
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    let ix = IndexRef::new("t", "refused");
    es.fail_item(
        "bad-1",
        400,
        "document_parsing_exception",
        "[1:42] failed to parse field [size] of type [long] in document with id 'bad-1'",
        1,
    );
    let mut docs: Vec<SinkDocument> = (0..5)
        .map(|i| doc("c", &format!("ok{i}"), "v1", "t", "b"))
        .collect();
    docs.push(doc("c", "bad-1", "v1", "t", "b"));
    sink.upsert(ix.clone(), docs).await.unwrap();
    let err = format!("{:#}", sink.commit(ix.clone()).await.unwrap_err());
    assert!(
        err.contains("`bad-1`")
            && err.contains("document_parsing_exception")
            && err.contains("failed to parse field [size]"),
        "{err}"
    );
    // Retries give up too, naming the document.
    es.reject_items(100);
    let short = sink_for(&es, |c| c.retries = 2);
    short
        .upsert(ix.clone(), vec![doc("c", "busy", "v1", "t", "b")])
        .await
        .unwrap();
    let err = format!("{:#}", short.commit(ix.clone()).await.unwrap_err());
    assert!(
        err.contains("after 3 attempt(s)")
            && err.contains("`busy`")
            && err.contains("es_rejected_execution_exception"),
        "{err}"
    );
}

#[tokio::test]
async fn later_writes_of_an_id_never_overtake_earlier_ones() {
    let es = fake().await;
    es.set_bulk_delay(Some(Duration::from_millis(30)));
    let sink = sink_for(&es, |c| c.bulk_concurrency = 5);
    let ix = IndexRef::new("t", "order");
    for round in 0..5 {
        sink.upsert(
            ix.clone(),
            vec![doc("c", "x", &format!("v{round}"), "t", "b")],
        )
        .await
        .unwrap();
        sink.delete(ix.clone(), "c".into(), vec!["y".into()])
            .await
            .unwrap();
        sink.upsert(
            ix.clone(),
            vec![doc("c", "y", &format!("v{round}"), "t", "b")],
        )
        .await
        .unwrap();
    }
    sink.delete(ix.clone(), "c".into(), vec!["x".into()])
        .await
        .unwrap();
    sink.commit(ix.clone()).await.unwrap();
    let versions = sink.versions(ix, "c".into()).await.unwrap();
    assert!(versions.holds_exactly([("y", Some("v4"))]));
}

#[tokio::test]
async fn authentication_and_configuration_errors_are_clear() {
    let es = fake().await;
    es.require_api_key("aWQ6c2VjcmV0");
    let ok = sink_for(&es, |c| c.api_key = Some("aWQ6c2VjcmV0".into()));
    assert_eq!(ok.ping().await.unwrap(), "9.1.0");
    let anonymous = sink_for(&es, |_| {});
    let err = format!("{:#}", anonymous.ping().await.unwrap_err());
    assert!(
        err.contains("HTTP 401") && err.contains("security_exception"),
        "{err}"
    );
    let err = ElasticsearchSink::new(&ElasticsearchConfig {
        api_key: Some("k".into()),
        username: Some("u".into()),
        password: Some("p".into()),
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("not both"), "{err}");
    let err = ElasticsearchSink::new(&ElasticsearchConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("/nonexistent/ca.pem"),
        "{err:#}"
    );
    let basic = FakeElasticsearch::start().await.unwrap();
    basic.require_basic("elastic", "changeme");
    let sink = sink_for(&basic, |c| {
        c.username = Some("elastic".into());
        c.password = Some("changeme".into());
    });
    assert_eq!(sink.ping().await.unwrap(), "9.1.0");
}

#[tokio::test]
async fn answers_every_query_form() {
    use crate::sink::conformance;
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    let ix = IndexRef::new("acme", "files");
    conformance::load(&sink, &ix).await;
    conformance::query_forms(&sink, &ix).await;
    conformance::filters_and_sort(&sink, &ix).await;
    conformance::facets_and_security(&sink, &ix).await;
    conformance::errors(&sink, &ix).await;
    conformance::readme_examples(&sink, &ix).await;
}

#[tokio::test]
async fn pages_twenty_thousand_documents_to_the_end() {
    use crate::sink::conformance;
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    let ix = IndexRef::new("acme", "many");
    sink.upsert(ix.clone(), conformance::many(20_000))
        .await
        .unwrap();
    sink.commit(ix.clone()).await.unwrap();
    let pages = conformance::page_to_the_end(&sink, &ix, 20_000, 4_000).await;
    assert_eq!(pages, 5);
}
