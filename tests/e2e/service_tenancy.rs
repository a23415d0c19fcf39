//! The service against a hostile tenant (issue 15): what a tenant or connector owns goes with
//! it (documents in every index, plugin state, jobs, tokens), an index change moves the
//! connector's documents, indexes without a tenant stop the service from starting, bodies and
//! fields are bounded, advanced rules are checked on write, the scheduler does not re-read the
//! connectors on every tick, and ids are echoed bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_fakes::elasticsearch::FakeElasticsearch;
use tributary_fakes::feed::FakeFeed;
use tributary_host::HostConfig;
use tributary_host::config::SinkKind;
use tributary_host::serve::Service;

use crate::service::{ADMIN, Svc, items, start};
use crate::support::shared_cache;

/// Waits for the connector's newest job to end; returns it.
async fn newest_job_ended(svc: &Svc, tenant: &str, token: &str, connector: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = svc
            .call(
                "GET",
                &format!("/v1/tenants/{tenant}/jobs?connector={connector}&limit=1"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        if let Some(job) = body["jobs"].as_array().and_then(|j| j.first())
            && matches!(
                job["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        {
            return job.clone();
        }
        assert!(Instant::now() < deadline, "no job ended: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_index(svc: &Svc, token: &str, connector: &str, index: &str, feed: &FakeFeed) {
    let (status, body) = svc
        .call(
            "PUT",
            &format!("/v1/tenants/t/connectors/{connector}"),
            Some(token),
            Some(json!({"plugin": "feed", "index": index, "config": {"base_url": feed.base_url(), "page_size": 10}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn create_in(svc: &Svc, token: &str, connector: &str, index: &str, feed: &FakeFeed) {
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/t/connectors",
            Some(token),
            Some(json!({"id": connector, "plugin": "feed", "index": index, "config": {"base_url": feed.base_url(), "page_size": 10}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The issue's scenario on one sink: a connector moved between indexes keeps one copy of its
/// documents (another connector sharing the old index keeps its own), the quota counts every
/// index, and a tenant deleted and created again sees nothing of the old one.
async fn moves_and_deletes_leave_nothing(svc: &Svc) {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "m", 20, "moving");
    let other_feed = FakeFeed::start(None).await.unwrap();
    items(&other_feed, "k", 5, "moving");
    // 20 + 5 documents; the issue's tenant held 160 under a quota of 50 after four moves.
    let token = svc.tenant("t", json!({"max_documents": 30})).await;
    create_in(svc, &token, "keep", "shared", &other_feed).await;
    create_in(svc, &token, "mover", "shared", &feed).await;
    for c in ["keep", "mover"] {
        let job = svc.sync("t", &token, c, "full").await;
        assert_eq!(svc.wait("t", &token, &job).await["status"], "succeeded");
    }
    assert_eq!(
        svc.search_ids("t", &token, "shared", "moving").await.len(),
        25
    );

    for index in ["one", "two", "three", "four"] {
        put_index(svc, &token, "mover", index, &feed).await;
        // The move queued a full sync into the new index; it fits the quota every time.
        let job = newest_job_ended(svc, "t", &token, "mover").await;
        assert_eq!(job["status"], "succeeded", "{index}: {job}");
        assert_eq!(svc.search_ids("t", &token, index, "moving").await.len(), 20);
    }
    // One copy of the mover's documents (in "four"); the other connector's are where they were.
    let shared = svc.search_ids("t", &token, "shared", "moving").await;
    assert_eq!(shared.len(), 5, "{shared:?}");
    assert!(shared.iter().all(|id| id.starts_with('k')), "{shared:?}");
    for index in ["one", "two", "three"] {
        assert!(
            svc.search_ids("t", &token, index, "moving")
                .await
                .is_empty()
        );
    }
    // The quota counts every index of the tenant, not only the connectors' current ones: five
    // documents left in another index (as a crash in the middle of a move would leave them)
    // bring the tenant to 30, so one more is refused.
    let sink = svc.service.host().sink().clone();
    assert!(sink.tenants().await.unwrap().contains(&"t".to_string()));
    let stray = tributary_host::sink::IndexRef::new("t", "stray");
    let docs: Vec<tributary_host::sink::SinkDocument> = (0..5)
        .map(|i| tributary_host::sink::SinkDocument {
            id: format!("stray{i}"),
            connector: "mover".into(),
            version: Some("1".into()),
            fields: serde_json::Map::new(),
            body: Some("moving".into()),
        })
        .collect();
    sink.upsert(stray.clone(), docs).await.unwrap();
    sink.commit(stray.clone()).await.unwrap();
    items(&feed, "n", 1, "moving");
    let job = svc.sync("t", &token, "mover", "full").await;
    let over = svc.wait("t", &token, &job).await;
    assert_eq!(over["status"], "failed", "{over}");
    assert_eq!(over["error"]["kind"], "quota", "{over}");

    // Deleting a connector deletes its documents wherever they are, and nobody else's.
    let (status, body) = svc
        .call(
            "DELETE",
            "/v1/tenants/t/connectors/mover",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    for index in ["stray", "four", "shared"] {
        let left = sink
            .versions(
                tributary_host::sink::IndexRef::new("t", index),
                "mover".into(),
            )
            .await
            .unwrap();
        assert!(left.is_empty(), "{index}: {left:?}");
    }
    assert_eq!(
        svc.search_ids("t", &token, "shared", "moving").await.len(),
        5
    );
    create_in(svc, &token, "mover", "four", &feed).await;
    let job = svc.sync("t", &token, "mover", "full").await;
    assert_eq!(svc.wait("t", &token, &job).await["status"], "succeeded");

    assert!(!sink.indexes("t".into()).await.unwrap().is_empty());
    assert!(
        !svc.service
            .store()
            .storage_usage("t")
            .await
            .unwrap()
            .is_empty(),
        "the feed plugin keeps state: the test needs some to see it go"
    );

    let (status, body) = svc.call("DELETE", "/v1/tenants/t", Some(ADMIN), None).await;
    assert_eq!(status, 204, "{body}");
    // The old token is dead; everything the tenant owned is gone.
    assert_eq!(
        svc.call("GET", "/v1/tenants/t/connectors", Some(&token), None)
            .await
            .0,
        401
    );
    assert!(sink.indexes("t".into()).await.unwrap().is_empty());
    assert!(!sink.tenants().await.unwrap().contains(&"t".to_string()));

    let token = svc.tenant("t", json!({})).await;
    for index in ["shared", "one", "four"] {
        let (status, body) = svc
            .call(
                "GET",
                &format!("/v1/tenants/t/search?index={index}&q=moving"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 404, "{index}: {body}");
    }
    let (_, connectors) = svc
        .call("GET", "/v1/tenants/t/connectors", Some(&token), None)
        .await;
    assert_eq!(connectors["connectors"], json!([]));
    let (_, jobs) = svc
        .call("GET", "/v1/tenants/t/jobs", Some(&token), None)
        .await;
    assert_eq!(jobs["jobs"], json!([]));
    assert!(
        svc.service
            .store()
            .storage_usage("t")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(svc.service.store().queue().await.unwrap().is_empty());
    // The same connector id starts from nothing: a full sync indexes everything again.
    create_in(svc, &token, "mover", "four", &feed).await;
    let (_, state) = svc
        .call(
            "GET",
            "/v1/tenants/t/connectors/mover/state",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(state["keys"], json!([]), "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tenant_leaves_nothing_and_an_index_change_moves_documents() {
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    moves_and_deletes_leave_nothing(&svc).await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tenant_leaves_nothing_in_elasticsearch() {
    let es = FakeElasticsearch::start().await.unwrap();
    let url = es.url();
    let svc = start(tempfile::tempdir().unwrap(), move |c| {
        c.sink.kind = SinkKind::Elasticsearch;
        c.elasticsearch.host = url;
        c.elasticsearch.retry_backoff_ms = 5;
    })
    .await;
    moves_and_deletes_leave_nothing(&svc).await;
    svc.stop().await;
}

/// A host configuration like `service::start`'s, on `dir`.
fn config_on(dir: &tempfile::TempDir, remove_orphans: bool) -> HostConfig {
    let mut config = HostConfig {
        data_dir: dir.path().join("data"),
        cache_dir: Some(shared_cache()),
        plugins_dir: Some(dir.path().join("plugins")),
        ..HostConfig::default()
    };
    config.service.insert("admin_token".into(), ADMIN.into());
    config.service.insert("tick_ms".into(), 50.into());
    if remove_orphans {
        config
            .service
            .insert("remove_orphan_indexes".into(), true.into());
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_of_an_unknown_tenant_stop_the_start_or_are_removed_when_asked() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "o", 5, "orphan");
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("gone", json!({})).await;
    svc.feed_connector("gone", &token, "docs", &feed).await;
    let job = svc.sync("gone", &token, "docs", "full").await;
    assert_eq!(svc.wait("gone", &token, &job).await["status"], "succeeded");
    let keeper = svc.tenant("kept", json!({})).await;
    svc.feed_connector("kept", &keeper, "docs", &feed).await;
    let job = svc.sync("kept", &keeper, "docs", "full").await;
    assert_eq!(svc.wait("kept", &keeper, &job).await["status"], "succeeded");
    // The records go but the indexes stay: a host stopped between the two steps of a tenant
    // delete, or a database restored from an older copy.
    assert!(svc.service.store().delete_tenant("gone").await.unwrap());
    let dir = svc.stop().await;

    let host = Arc::new(
        tributary_host::Host::open(config_on(&dir, false))
            .await
            .unwrap(),
    );
    let err = match Service::open(host, None).await {
        Ok(_) => panic!("the service started over another tenant's indexes"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("`gone`"), "{err}");
    assert!(!err.contains("`kept`"), "{err}");
    assert!(err.contains("remove_orphan_indexes"), "{err}");

    let host = Arc::new(
        tributary_host::Host::open(config_on(&dir, true))
            .await
            .unwrap(),
    );
    let service = Service::open(host.clone(), None).await.unwrap();
    assert!(host.sink().indexes("gone".into()).await.unwrap().is_empty());
    assert_eq!(
        host.sink().indexes("kept".into()).await.unwrap(),
        vec!["docs".to_string()]
    );
    drop(service);
    drop(host);
    // And the next start is clean without the flag.
    let host = Arc::new(
        tributary_host::Host::open(config_on(&dir, false))
            .await
            .unwrap(),
    );
    Service::open(host, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_fields_and_advanced_rules_are_bounded_and_checked_on_write() {
    let feed = FakeFeed::start(None).await.unwrap();
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("t", json!({})).await;
    let post_raw = |path: &str, body: Vec<u8>, content_type: &str| {
        let request = svc
            .http
            .post(format!("{}{path}", svc.base))
            .bearer_auth(ADMIN)
            .header("content-type", content_type.to_string())
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (status, body)
        }
    };
    // 1.5 MiB: over the JSON limit, well under the 64 MiB upload limit.
    let big = format!(
        r#"{{"id":"x","plugin":"feed","advanced_rules":"{}"}}"#,
        "a".repeat(3 << 19)
    );
    let (status, body) = post_raw(
        "/v1/tenants/t/connectors",
        big.clone().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = post_raw("/v1/plugins", big.into_bytes(), "application/wasm").await;
    assert_eq!(
        status, 422,
        "an upload takes more than a JSON route: {body}"
    );

    let connector = |id: &str, rules: Value| json!({"id": id, "plugin": "feed", "config": {"base_url": feed.base_url()}, "advanced_rules": rules});
    // Too large (under the body limit): 400 naming the field.
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/t/connectors",
            Some(&token),
            Some(connector("big", json!("r".repeat(100_000)))),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("`advanced_rules`"),
        "{body}"
    );
    // A whole record over 256 KiB (under the body limit): 400.
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/t/connectors",
            Some(&token),
            Some(json!({"id": "fat", "plugin": "feed", "config": {"base_url": feed.base_url(), "padding": "p".repeat(300_000)}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 262144"),
        "{body}"
    );
    // The feed plugin has no advanced rules: refused on write, with the plugin's reason.
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/t/connectors",
            Some(&token),
            Some(connector("ruled", json!([{"query": "x"}]))),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("has no advanced rules"),
        "{body}"
    );
    // None at all is fine.
    for (id, rules) in [("plain", Value::Null), ("empty", json!([]))] {
        let (status, body) = svc
            .call(
                "POST",
                "/v1/tenants/t/connectors",
                Some(&token),
                Some(connector(id, rules)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // Nothing refused was stored.
    let (_, listed) = svc
        .call("GET", "/v1/tenants/t/connectors", Some(&token), None)
        .await;
    let ids: Vec<&str> = listed["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["empty", "plain"]);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_reads_connectors_only_when_they_change() {
    let feed = FakeFeed::start(None).await.unwrap();
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("t", json!({})).await;
    for i in 0..4 {
        let (status, body) = svc
            .call(
                "POST",
                "/v1/tenants/t/connectors",
                Some(&token),
                Some(json!({"id": format!("c{i}"), "plugin": "feed", "config": {"base_url": feed.base_url()}, "schedule": {"full_every": "1h"}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // Each schedule is due at once (never run) and queues one job.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, jobs) = svc
            .call("GET", "/v1/tenants/t/jobs", Some(&token), None)
            .await;
        if jobs["jobs"].as_array().unwrap().len() == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let loads = svc.service.schedule_loads();
    // Forty ticks of 50 ms without a change: the connectors table is not read again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(svc.service.schedule_loads(), loads);
    // A write wakes the scheduler: it reads them again, and a new schedule runs without waiting
    // for a tick.
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/t/connectors",
            Some(&token),
            Some(json!({"id": "late", "plugin": "feed", "config": {"base_url": feed.base_url()}, "schedule": {"full_every": "1h"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let job = newest_job_ended(&svc, "t", &token, "late").await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(svc.service.schedule_loads() > loads);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_ids_are_echoed_cut_short() {
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("t", json!({})).await;
    let long = "x".repeat(10_000);
    for (method, path, token, body) in [
        (
            "POST",
            "/v1/tenants".to_string(),
            ADMIN,
            Some(json!({"id": long})),
        ),
        (
            "POST",
            "/v1/tenants/t/connectors".to_string(),
            token.as_str(),
            Some(json!({"id": long, "plugin": "feed"})),
        ),
        (
            "GET",
            format!("/v1/tenants/t/search?index={long}&q=x"),
            token.as_str(),
            None,
        ),
    ] {
        let (status, body) = svc.call(method, &path, Some(token), body).await;
        assert_eq!(status, 400, "{method} {}: {body}", &path[..40]);
        let error = body["error"].as_str().unwrap();
        assert!(error.len() < 400, "{method}: {} bytes", error.len());
        assert!(error.contains(&format!("{}…", "x".repeat(64))), "{error}");
    }
    svc.stop().await;
}
