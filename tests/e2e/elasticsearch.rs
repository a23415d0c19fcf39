//! The Elasticsearch sink and the Elastic connectors compatibility mode, end to end: the real
//! feed plugin in the real host, writing to the wire-compatible test server
//! (`tributary_fakes::elasticsearch`).
//!
//! Documents in `.elastic-connectors` / `.elastic-connectors-sync-jobs` are written here the way
//! Kibana and Elastic's `SyncJobIndex.create` write them (see `connector_doc` and `job_doc`).
//!
//! `real_cluster_when_es_url_is_set` is opt-in (`--ignored`) and runs against the real cluster
//! named by `ES_URL` (with `ES_API_KEY` or `ES_USERNAME`/`ES_PASSWORD` when it needs credentials).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tributary_fakes::Fault;
use tributary_fakes::elasticsearch::FakeElasticsearch;
use tributary_fakes::feed::FakeFeed;
use tributary_host::config::SinkKind;
use tributary_host::elastic_compat::CompatConfig;
use tributary_host::elastic_compat::ConnectorsService;
use tributary_host::elastic_compat::protocol::iso_now;
use tributary_host::{JobStatus, SyncKind};

use crate::support::{TestHost, connector, host_with};

async fn es_host(
    es: &FakeElasticsearch,
    connectors: Vec<tributary_host::ConnectorSpec>,
) -> TestHost {
    let url = es.url();
    host_with(connectors, move |c| {
        c.sink.kind = SinkKind::Elasticsearch;
        c.elasticsearch.host = url;
        c.elasticsearch.retry_backoff_ms = 5;
    })
    .await
}

fn feed_spec(feed: &FakeFeed, index: &str) -> tributary_host::ConnectorSpec {
    let mut spec = connector(
        "news",
        "feed",
        json!({"base_url": feed.base_url(), "api_token": "s3cret", "page_size": 2, "retry_count": 1}),
    );
    spec.index = Some(index.into());
    spec
}

/// What the sink stores for a feed item (fields from the plugin, body, bookkeeping).
fn stored(id: &str, title: &str, ts: &str, body: &str) -> Value {
    json!({
        "id": id, "title": title, "type": "item", "_timestamp": ts,
        "body": body, "_tributary_connector": "news", "_tributary_tenant": "default",
        "_tributary_version": ts,
    })
}

#[tokio::test]
async fn a_feed_syncs_into_elasticsearch_and_vanished_documents_are_deleted() {
    let es = FakeElasticsearch::start().await.unwrap();
    es.set_refresh_interval(None);
    let feed = FakeFeed::start(Some("s3cret")).await.unwrap();
    feed.upsert("a", "Alpha", Some("the first quarterly report"));
    feed.upsert("b", "Beta", Some("holiday schedule"));
    feed.upsert_with_attachment(
        "c",
        "Gamma",
        "minutes.html",
        b"<html><body><p>Board minutes: revenue up</p></body></html>",
    );
    let t = es_host(&es, vec![feed_spec(&feed, "news-index")]).await;
    assert_eq!(t.host.sink().kind(), "elasticsearch");

    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(
        (report.counts.indexed, report.counts.content_extracted),
        (3, 1)
    );
    let docs = es.documents("tributary-default-news-index");
    assert_eq!(docs.len(), 3);
    assert_eq!(
        docs["a"],
        stored(
            "a",
            "Alpha",
            "2024-01-01T00:01:00Z",
            "the first quarterly report"
        )
    );
    assert_eq!(
        docs["b"],
        stored("b", "Beta", "2024-01-01T00:02:00Z", "holiday schedule")
    );
    let mut gamma = stored(
        "c",
        "Gamma",
        "2024-01-01T00:03:00Z",
        "Board minutes: revenue up",
    );
    gamma["attachment"] = json!("minutes.html");
    assert_eq!(docs["c"], gamma);
    assert_eq!(
        es.auto_created("tributary-default-news-index"),
        Some(false),
        "created with mappings"
    );
    // Searchable through the host (the sink refreshed at commit).
    let hits = t
        .host
        .search(
            "default",
            "news-index",
            tributary_host::sink::SearchRequest {
                query: "revenue".into(),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        hits.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert!(
        hits.hits[0]
            .snippet
            .as_deref()
            .unwrap()
            .contains("<b>revenue</b>")
    );

    // A second full sync: unchanged documents are skipped (no bulk write at all), a vanished
    // one is deleted, a changed one rewritten.
    feed.delete("a");
    feed.upsert("b", "Beta", Some("holiday schedule, revised"));
    es.reset_bulk_stats();
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(
        (
            report.counts.unchanged,
            report.counts.indexed,
            report.counts.deleted
        ),
        (1, 1, 1)
    );
    let docs = es.documents("tributary-default-news-index");
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["b", "c"]);
    assert_eq!(docs["b"]["body"], "holiday schedule, revised");
    assert_eq!(es.bulk_stats().items, 2, "one index and one delete");
}

#[tokio::test]
async fn rejected_bulk_items_are_retried_and_nothing_is_lost() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(Some("s3cret")).await.unwrap();
    for i in 0..40 {
        feed.upsert(&format!("item-{i:02}"), &format!("Item {i}"), Some("text"));
    }
    let t = es_host(&es, vec![feed_spec(&feed, "retried")]).await;
    // The write queue is full for a while: 25 items answered 429, and one whole request 503.
    es.reject_items(25);
    es.faults().add("/_bulk", 1, Fault::server_error(503));
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(report.counts.indexed, 40);
    assert_eq!(es.documents("tributary-default-retried").len(), 40);
    assert_eq!(t.documents("news").await.len(), 40);
}

#[tokio::test]
async fn a_document_elasticsearch_refuses_fails_the_job_with_its_id_and_reason() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(Some("s3cret")).await.unwrap();
    feed.upsert("good", "Good", Some("fine"));
    feed.upsert("bad", "Bad", Some("boom"));
    let t = es_host(&es, vec![feed_spec(&feed, "refusing")]).await;
    es.fail_item(
        "bad",
        400,
        "document_parsing_exception",
        "[1:15] failed to parse field [title] of type [long] in document with id 'bad'",
        1,
    );
    let report = t.sync("news", SyncKind::Full).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap().to_string();
    assert!(
        error.contains("`bad`")
            && error.contains("document_parsing_exception")
            && error.contains("failed to parse field [title]"),
        "{error}"
    );
    assert!(
        es.documents("tributary-default-refusing")
            .contains_key("good"),
        "the rest was written"
    );
}

// ---------------------------------------------------------------------------------------------
// Compatibility mode

/// A connector document as Kibana / `PUT _connector/<id>` + configuration updates leave it.
fn connector_doc(index: &str, service_type: &str, configuration: Value, rules: Value) -> Value {
    let active = json!({
        "rules": rules,
        "advanced_snippet": {"value": {}, "created_at": "2024-05-01T10:00:00.000Z", "updated_at": "2024-05-01T10:00:00.000Z"},
        "validation": {"state": "valid", "errors": []},
    });
    json!({
        "index_name": index, "service_type": service_type, "name": "test connector",
        "is_native": false, "status": "configured", "error": null, "language": null,
        "configuration": configuration,
        "filtering": [{"domain": "DEFAULT", "active": active, "draft": active}],
        "scheduling": {"full": {"enabled": false, "interval": "0 0 0 * * ?"}},
        "pipeline": {"name": "search-default-ingestion", "extract_binary_content": true, "reduce_whitespace": true, "run_ml_inference": false},
        "last_seen": null, "last_synced": null, "last_sync_status": null, "last_sync_error": null,
        "last_access_control_sync_status": null, "sync_cursor": null, "deleted": false,
    })
}

/// A pending job as `SyncJobIndex.create` writes it (a snapshot of the connector).
fn job_doc(connector_id: &str, connector: &Value, job_type: &str) -> Value {
    let index = connector["index_name"].as_str().unwrap();
    let index = if job_type == "access_control" {
        format!(".search-acl-filter-{index}")
    } else {
        index.to_string()
    };
    json!({
        "connector": {
            "id": connector_id,
            "filtering": connector["filtering"][0]["active"],
            "index_name": index,
            "language": null,
            "pipeline": connector["pipeline"],
            "service_type": connector["service_type"],
            "configuration": connector["configuration"],
        },
        "trigger_method": "on_demand", "job_type": job_type, "status": "pending",
        "indexed_document_count": 0, "indexed_document_volume": 0, "deleted_document_count": 0,
        "created_at": iso_now(), "last_seen": iso_now(),
    })
}

fn feed_configuration(feed: &FakeFeed, token: &str) -> Value {
    json!({
        "base_url": {"label": "Base URL", "order": 1, "type": "str", "required": true, "sensitive": false, "display": "textbox", "value": feed.base_url(), "default_value": null, "depends_on": [], "validations": [], "options": [], "ui_restrictions": [], "tooltip": null},
        "api_token": {"label": "Token", "order": 2, "type": "str", "required": false, "sensitive": true, "display": "textbox", "value": token},
        "page_size": {"label": "Page size", "order": 3, "type": "int", "display": "numeric", "value": 2},
        "retry_count": {"label": "Retries", "order": 4, "type": "int", "display": "numeric", "value": "1"},
        "use_text_extraction_service": {"label": "Use the extraction service", "type": "bool", "display": "toggle", "value": false},
    })
}

fn service_config(es: &FakeElasticsearch, connectors: &[(&str, &str)]) -> CompatConfig {
    let mut yml = format!(
        "elasticsearch.host: {}\nelasticsearch.api_key: c2VydmljZTprZXk=\nelasticsearch.bulk.retry_interval: 0.01\nservice.idling: 0.1\nservice.heartbeat: 300\nconnectors:\n",
        es.url()
    );
    for (id, st) in connectors {
        yml.push_str(&format!(
            "  - connector_id: {id}\n    service_type: {st}\n    api_key: Y29ubmVjdG9yOmtleQ==\n"
        ));
    }
    CompatConfig::parse(&yml, &|_| None).unwrap()
}

async fn service(
    es: &FakeElasticsearch,
    connectors: &[(&str, &str)],
    hostname: &str,
) -> (TestHost, ConnectorsService) {
    let t = es_host(es, vec![]).await;
    let host = Arc::new(
        tributary_host::Host::open(t.host.config().clone())
            .await
            .unwrap(),
    );
    let service = ConnectorsService::new(host, service_config(es, connectors), hostname).unwrap();
    (t, service)
}

#[tokio::test]
async fn a_pending_job_is_claimed_run_and_reported() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(Some("s3cret")).await.unwrap();
    feed.upsert("a", "Alpha", Some("report"));
    feed.upsert("b", "Draft notes", Some("draft"));
    feed.upsert("c", "Gamma", Some("minutes"));
    let rules = json!([
        {"id": "DEFAULT", "order": 1, "field": "_", "rule": "regex", "value": ".*", "policy": "include", "created_at": "2024-05-01T10:00:00.000Z", "updated_at": "2024-05-01T10:00:00.000Z"},
        {"id": "no-drafts", "order": 0, "field": "title", "rule": "starts_with", "value": "Draft", "policy": "exclude", "created_at": "2024-05-01T10:00:00.000Z", "updated_at": "2024-05-01T10:00:00.000Z"},
    ]);
    let connector = connector_doc(
        "search-feed",
        "feed",
        feed_configuration(&feed, "s3cret"),
        rules,
    );
    es.put(".elastic-connectors", "feed-1", connector.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "job-1",
        job_doc("feed-1", &connector, "full"),
    );
    let (_t, svc) = service(&es, &[("feed-1", "feed")], "worker-a").await;
    es.require_api_keys(&["c2VydmljZTprZXk=", "Y29ubmVjdG9yOmtleQ=="]);
    let started = svc.poll_once().await.unwrap();
    assert_eq!(started.len(), 1);
    let outcome = started.into_iter().next().unwrap().await.unwrap();
    assert_eq!(outcome.status.as_deref(), Some("completed"), "{outcome:?}");
    // Protocol documents with the service's key; content with the connector's own key, as
    // Elastic's `_override_es_config`.
    let log = es.auth_log();
    let key_of = |what: &str| -> Vec<Option<String>> {
        log.iter()
            .filter(|(p, _)| p.contains(what))
            .map(|(_, k)| k.clone())
            .collect()
    };
    assert!(
        key_of("/search-feed/_bulk")
            .iter()
            .all(|k| k.as_deref() == Some("Y29ubmVjdG9yOmtleQ=="))
    );
    assert!(!key_of("/search-feed/_bulk").is_empty());
    assert!(
        key_of("/.elastic-connectors")
            .iter()
            .all(|k| k.as_deref() == Some("c2VydmljZTprZXk="))
    );

    let job = es
        .document(".elastic-connectors-sync-jobs", "job-1")
        .unwrap();
    assert_eq!(job["status"], "completed");
    assert_eq!(job["error"], Value::Null);
    assert_eq!(job["worker_hostname"], "worker-a");
    assert_eq!(
        (
            job["indexed_document_count"].as_u64(),
            job["deleted_document_count"].as_u64(),
            job["total_document_count"].as_u64()
        ),
        (Some(2), Some(0), Some(2))
    );
    for field in ["started_at", "completed_at", "last_seen"] {
        assert!(
            job[field].as_str().is_some_and(|s| s.ends_with("+00:00")),
            "{field}: {job}"
        );
    }
    assert_eq!(
        es.documents("search-feed").keys().collect::<Vec<_>>(),
        ["a", "c"],
        "the basic rule excluded the draft"
    );
    let connector = es.document(".elastic-connectors", "feed-1").unwrap();
    assert_eq!(connector["last_sync_status"], "completed");
    assert_eq!(connector["status"], "connected");
    assert_eq!(connector["last_indexed_document_count"], 2);
    assert!(connector["last_seen"].is_string(), "heartbeat");
    // The plugin's stored state travels in `sync_cursor`, for whichever host runs the next job.
    let cursor: Value = serde_json::from_str(
        connector["sync_cursor"]["tributary_state"]["cursor"]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(cursor["state"], json!(feed.cursor()), "{connector}");
    // Nothing left to claim.
    assert!(svc.poll_once().await.unwrap().is_empty());

    // An incremental job continues from the stored cursor; a failing one reports its error.
    feed.upsert("d", "Delta", Some("new"));
    let connector = es.document(".elastic-connectors", "feed-1").unwrap();
    es.put(
        ".elastic-connectors-sync-jobs",
        "job-2",
        job_doc("feed-1", &connector, "incremental"),
    );
    // Another host, with no local state, runs it: the cursor comes from the connector document.
    let (_tb, other) = service(&es, &[("feed-1", "feed")], "worker-b").await;
    feed.faults().reset_log();
    let outcome = other.poll_once().await.unwrap().remove(0).await.unwrap();
    assert_eq!(outcome.status.as_deref(), Some("completed"));
    let listed = feed.faults().seen();
    assert!(
        listed
            .iter()
            .filter(|r| r.path.starts_with("/items"))
            .all(|r| r.path.contains("since=")),
        "{listed:?}"
    );
    assert_eq!(
        es.document(".elastic-connectors-sync-jobs", "job-2")
            .unwrap()["indexed_document_count"],
        1
    );
    assert!(es.documents("search-feed").contains_key("d"));

    let mut broken = connector_doc(
        "search-feed",
        "feed",
        feed_configuration(&feed, "wrong-token"),
        json!([]),
    );
    broken["last_sync_status"] = json!("completed");
    es.put(".elastic-connectors", "feed-1", broken.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "job-3",
        job_doc("feed-1", &broken, "full"),
    );
    let outcome = svc.poll_once().await.unwrap().remove(0).await.unwrap();
    assert_eq!(outcome.status.as_deref(), Some("error"));
    let job = es
        .document(".elastic-connectors-sync-jobs", "job-3")
        .unwrap();
    assert_eq!(job["status"], "error");
    assert!(
        job["error"].as_str().unwrap().contains("auth error"),
        "{job}"
    );
    let connector = es.document(".elastic-connectors", "feed-1").unwrap();
    assert_eq!(
        (
            connector["last_sync_status"].as_str(),
            connector["status"].as_str()
        ),
        (Some("error"), Some("error"))
    );
    assert_eq!(
        es.documents("search-feed").len(),
        3,
        "a failed sync deletes nothing"
    );
}

#[tokio::test]
async fn a_cancel_request_stops_the_job() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(None).await.unwrap();
    for i in 0..30 {
        feed.upsert(&format!("item-{i:02}"), "Item", Some("text"));
    }
    // A slow source: every page takes 150 ms.
    feed.faults()
        .add("/items", 100, Fault::Delay(Duration::from_millis(150)));
    let connector = connector_doc(
        "search-slow",
        "feed",
        feed_configuration(&feed, ""),
        json!([]),
    );
    es.put(".elastic-connectors", "slow", connector.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "job-c",
        job_doc("slow", &connector, "full"),
    );
    let (_t, svc) = service(&es, &[("slow", "feed")], "worker-a").await;
    let task = svc.poll_once().await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // What `POST _connector/_sync_job/job-c/_cancel` does to a running job.
    assert!(es.update(
        ".elastic-connectors-sync-jobs",
        "job-c",
        json!({"status": "canceling", "cancelation_requested_at": iso_now()})
    ));
    let outcome = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status.as_deref(), Some("canceled"), "{outcome:?}");
    let job = es
        .document(".elastic-connectors-sync-jobs", "job-c")
        .unwrap();
    assert_eq!(job["status"], "canceled");
    assert!(job["canceled_at"].is_string() && job["completed_at"].is_string());
    assert_eq!(
        es.document(".elastic-connectors", "slow").unwrap()["last_sync_status"],
        "canceled"
    );
    assert!(
        es.documents("search-slow").len() < 30,
        "stopped before the end"
    );
}

#[tokio::test]
async fn two_hosts_racing_for_one_pending_job_run_it_once() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert("a", "Alpha", Some("x"));
    let connector = connector_doc(
        "search-race",
        "feed",
        feed_configuration(&feed, ""),
        json!([]),
    );
    es.put(".elastic-connectors", "race", connector.clone());
    let (_ta, a) = service(&es, &[("race", "feed")], "host-a").await;
    let (_tb, b) = service(&es, &[("race", "feed")], "host-b").await;
    for round in 0..5 {
        let id = format!("job-{round}");
        es.put(
            ".elastic-connectors-sync-jobs",
            &id,
            job_doc("race", &connector, "full"),
        );
        let (ra, rb) = tokio::join!(a.poll_once(), b.poll_once());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            ra.len() + rb.len(),
            1,
            "round {round}: exactly one host runs the job"
        );
        for task in ra.into_iter().chain(rb) {
            assert_eq!(task.await.unwrap().status.as_deref(), Some("completed"));
        }
        let job = es.document(".elastic-connectors-sync-jobs", &id).unwrap();
        assert_eq!(job["status"], "completed");
        assert!(matches!(
            job["worker_hostname"].as_str(),
            Some("host-a" | "host-b")
        ));
    }
    // A job another worker already runs (the connector says in_progress) is left alone.
    let mut busy = es.document(".elastic-connectors", "race").unwrap();
    busy["last_sync_status"] = json!("in_progress");
    es.put(".elastic-connectors", "race", busy);
    es.put(
        ".elastic-connectors-sync-jobs",
        "job-x",
        job_doc("race", &connector, "full"),
    );
    assert!(a.poll_once().await.unwrap().is_empty());
    assert_eq!(
        es.document(".elastic-connectors-sync-jobs", "job-x")
            .unwrap()["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_job_nobody_heartbeats_is_failed() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(None).await.unwrap();
    let connector = connector_doc(
        "search-idle",
        "feed",
        feed_configuration(&feed, ""),
        json!([]),
    );
    es.put(".elastic-connectors", "idle", connector.clone());
    let mut job = job_doc("idle", &connector, "full");
    job["status"] = json!("in_progress");
    job["last_seen"] = json!("2024-01-01T00:00:00.000000+00:00");
    es.put(".elastic-connectors-sync-jobs", "job-idle", job);
    let (_t, svc) = service(&es, &[("idle", "feed")], "worker").await;
    assert!(svc.poll_once().await.unwrap().is_empty());
    let job = es
        .document(".elastic-connectors-sync-jobs", "job-idle")
        .unwrap();
    assert_eq!(job["status"], "error");
    assert_eq!(
        job["error"],
        "The job has not seen any update for some time."
    );
    assert_eq!(
        es.document(".elastic-connectors", "idle").unwrap()["last_sync_status"],
        "error"
    );
}

/// Unix seconds of the next UTC midnight after now.
fn next_midnight() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 86_400 + 1) * 86_400
}

#[tokio::test]
async fn scheduling_creates_each_due_job_once_across_hosts_and_one_open_job_per_kind() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(Some("s3cret")).await.unwrap();
    feed.upsert("a", "Alpha", Some("report"));
    let mut connector = connector_doc(
        "search-sched",
        "feed",
        feed_configuration(&feed, "s3cret"),
        json!([]),
    );
    // Elastic's Quartz form; incremental and access control are enabled in `scheduling` but
    // the connector's features and configuration do not allow them, so Elastic skips them.
    connector["scheduling"] = json!({
        "full": {"enabled": true, "interval": "0 0 0 * * ?"},
        "incremental": {"enabled": true, "interval": "0 * * * * ?"},
        "access_control": {"enabled": true, "interval": "0 * * * * ?"},
    });
    es.put(".elastic-connectors", "sched", connector);
    let (_ta, a) = service(&es, &[("sched", "feed")], "worker-a").await;
    let (_tb, b) = service(&es, &[("sched", "feed")], "worker-b").await;
    let midnight = next_midnight();
    let jobs = || es.documents(".elastic-connectors-sync-jobs");

    // Not yet due.
    assert!(a.schedule_due(midnight - 1).await.unwrap().is_empty());
    assert!(jobs().is_empty());
    // Both hosts wake after midnight: one job between them.
    let made = a.schedule_due(midnight + 5).await.unwrap();
    let made_b = b.schedule_due(midnight + 6).await.unwrap();
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made_b.is_empty(), "{made_b:?}");
    assert_eq!((made[0].kind, made[0].due), (SyncKind::Full, midnight));
    let all = jobs();
    assert_eq!(all.len(), 1);
    let job = all.values().next().unwrap();
    assert_eq!(job["trigger_method"], "scheduled");
    assert_eq!(job["job_type"], "full");
    assert_eq!(job["status"], "pending");
    assert_eq!(job["connector"]["id"], "sched");
    assert_eq!(job["connector"]["index_name"], "search-sched");
    assert_eq!(job["connector"]["service_type"], "feed");
    assert_eq!(
        job["connector"]["configuration"]["api_token"]["value"],
        "s3cret"
    );
    let stored = es.document(".elastic-connectors", "sched").unwrap();
    let scheduled_at = stored["last_sync_scheduled_at"].as_str().unwrap();
    assert_eq!(
        tributary_host::elastic_compat::protocol::parse_iso(scheduled_at),
        Some(midnight)
    );

    // The next midnight comes while that job is still pending: no second job.
    assert!(
        a.schedule_due(midnight + 86_400 + 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(jobs().len(), 1);

    // The scheduled job runs like any other.
    let outcome = run_one(&a).await;
    assert_eq!(outcome.status.as_deref(), Some("completed"), "{outcome:?}");
    // Once it is done, the following due time makes a new one.
    let made = a.schedule_due(midnight + 2 * 86_400 + 5).await.unwrap();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].due, midnight + 2 * 86_400);
    assert_eq!(jobs().len(), 2);
}

#[tokio::test]
async fn scheduling_honours_features_dls_and_refuses_bad_intervals_per_connector() {
    let es = FakeElasticsearch::start().await.unwrap();
    let feed = FakeFeed::start(None).await.unwrap();
    let mut on = connector_doc(
        "search-on",
        "feed",
        feed_configuration(&feed, ""),
        json!([]),
    );
    on["features"] = json!({"incremental_sync": {"enabled": true}});
    on["configuration"]["use_document_level_security"] =
        json!({"label": "DLS", "type": "bool", "display": "toggle", "value": true});
    // Quartz day of week 1 is Sunday; `?` in day of month.
    on["scheduling"] = json!({
        "full": {"enabled": false, "interval": "0 0 0 * * ?"},
        "incremental": {"enabled": true, "interval": "0 0 12 ? * 1"},
        "access_control": {"enabled": true, "interval": "0 0 0 * * ?"},
    });
    let mut bad = on.clone();
    bad["index_name"] = json!("search-bad");
    bad["scheduling"] = json!({"full": {"enabled": true, "interval": "0 0 25 * * ?"}});
    let mut unconfigured = on.clone();
    unconfigured["status"] = json!("needs_configuration");
    es.put(".elastic-connectors", "on", on);
    es.put(".elastic-connectors", "bad", bad);
    es.put(".elastic-connectors", "fresh", unconfigured);
    let (_t, svc) = service(
        &es,
        &[("bad", "feed"), ("on", "feed"), ("fresh", "feed")],
        "worker",
    )
    .await;
    // A window of eight days holds a Sunday noon and a midnight.
    let start = next_midnight() + 60;
    let made = svc.schedule_due(start + 8 * 86_400).await.unwrap();
    let mut kinds: Vec<(String, SyncKind)> = made
        .iter()
        .map(|s| (s.connector_id.clone(), s.kind))
        .collect();
    kinds.sort_by_key(|(c, k)| (c.clone(), k.to_string()));
    assert_eq!(
        kinds,
        vec![
            ("on".to_string(), SyncKind::AccessControl),
            ("on".to_string(), SyncKind::Incremental),
        ]
    );
    let acl = made
        .iter()
        .find(|s| s.kind == SyncKind::AccessControl)
        .unwrap();
    let job = es
        .document(".elastic-connectors-sync-jobs", &acl.job_id)
        .unwrap();
    assert_eq!(
        job["connector"]["index_name"],
        ".search-acl-filter-search-on"
    );
    assert_eq!(job["job_type"], "access_control");
    let incremental = made
        .iter()
        .find(|s| s.kind == SyncKind::Incremental)
        .unwrap();
    // The first due time after the window opened (now): a Sunday, 12:00 UTC.
    let days = incremental.due.div_euclid(86_400);
    assert_eq!((days + 4).rem_euclid(7), 0, "a Sunday");
    assert_eq!(incremental.due.rem_euclid(86_400), 12 * 3600);
    let connector = es.document(".elastic-connectors", "on").unwrap();
    assert!(connector["last_incremental_sync_scheduled_at"].is_string());
    assert!(connector["last_access_control_sync_scheduled_at"].is_string());
    assert!(connector["last_sync_scheduled_at"].is_null());
    // The connector with an hour of 25 got nothing and stopped no one.
    assert!(es.document(".elastic-connectors", "bad").unwrap()["last_sync_scheduled_at"].is_null());
}

// ---------------------------------------------------------------------------------------------
// A real cluster

#[tokio::test]
#[ignore = "opt-in: needs a real cluster; ES_URL=… cargo test -p tributary-e2e real_cluster -- --ignored"]
async fn real_cluster_when_es_url_is_set() {
    let url = std::env::var("ES_URL")
        .expect("ES_URL must name a real Elasticsearch cluster (with ES_API_KEY or ES_USERNAME/ES_PASSWORD)");
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert("a", "Alpha", Some("the first quarterly report"));
    feed.upsert("b", "Beta", Some("holiday schedule"));
    let index = format!("tributary-e2e-{}", std::process::id());
    let mut spec = connector(
        "news",
        "feed",
        json!({"base_url": feed.base_url(), "page_size": 1}),
    );
    spec.index = Some(index.clone());
    let t = host_with(vec![spec], |c| {
        c.sink.kind = SinkKind::Elasticsearch;
        c.elasticsearch.host = url.clone();
        c.elasticsearch.api_key = std::env::var("ES_API_KEY").ok();
        c.elasticsearch.username = std::env::var("ES_USERNAME").ok();
        c.elasticsearch.password = std::env::var("ES_PASSWORD").ok();
        c.elasticsearch.ca_file = std::env::var("ES_CA_FILE").ok().map(Into::into);
    })
    .await;
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(report.counts.indexed, 2);
    let docs = t.documents("news").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        docs["a"].body.as_deref(),
        Some("the first quarterly report")
    );
    let hits = t
        .host
        .search(
            "default",
            &index,
            tributary_host::sink::SearchRequest {
                query: "quarterly".into(),
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hits.hits.first().map(|h| h.id.as_str()), Some("a"));
    feed.delete("a");
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(report.counts.deleted, 1);
    assert_eq!(t.documents("news").await.keys().collect::<Vec<_>>(), ["b"]);
    println!("ran against {url}: index tributary-default-{index} (left in place for inspection)");
}

// ---------------------------------------------------------------------------------------------
// Dropbox and Box through the compatibility mode

/// A plugin configuration as Elastic's `configuration` object (`{key: {label, type, value}}`).
fn elastic_configuration(config: Value) -> Value {
    let mut out = serde_json::Map::new();
    for (key, value) in config.as_object().unwrap() {
        let kind = match value {
            Value::Bool(_) => "bool",
            Value::Number(_) => "int",
            _ => "str",
        };
        out.insert(key.clone(), json!({"label": key, "type": kind, "display": "textbox", "required": false, "sensitive": false, "value": value}));
    }
    Value::Object(out)
}

/// Everything of `connector` in `index`, read back through an Elasticsearch sink.
async fn es_documents(
    es: &FakeElasticsearch,
    index: &str,
    connector: &str,
) -> std::collections::BTreeMap<String, tributary_host::sink::SinkDocument> {
    use tributary_host::sink::Sink;
    let sink = tributary_host::sink::elasticsearch::ElasticsearchSink::new(
        &tributary_host::sink::elasticsearch::ElasticsearchConfig {
            host: es.url(),
            // Elastic's index names, as the compatibility mode writes them.
            index_pattern: "{index}".into(),
            single_tenant: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ix = tributary_host::sink::IndexRef::new("default", index);
    let ids: Vec<String> = sink
        .versions(ix.clone(), connector.into())
        .await
        .unwrap()
        .into_ids();
    sink.get(ix, connector.into(), ids)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect()
}

async fn run_one(svc: &ConnectorsService) -> tributary_host::elastic_compat::JobOutcome {
    let mut started = svc.poll_once().await.unwrap();
    assert_eq!(started.len(), 1, "one job started");
    started.remove(0).await.unwrap()
}

#[tokio::test]
async fn dropbox_jobs_index_the_exact_documents_and_access_control_documents() {
    use tributary_fakes::dropbox::{FakeDropbox, Tree};
    let es = FakeElasticsearch::start().await.unwrap();
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let content = connector_doc(
        "search-dropbox",
        "dropbox",
        elastic_configuration(crate::dropbox::config(&fake, json!({}))),
        json!([]),
    );
    es.put(".elastic-connectors", "dbx", content.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "dbx-full",
        job_doc("dbx", &content, "full"),
    );
    let (_t, svc) = service(&es, &[("dbx", "dropbox"), ("dbx-dls", "dropbox")], "worker").await;
    let outcome = run_one(&svc).await;
    assert_eq!(outcome.status.as_deref(), Some("completed"), "{outcome:?}");
    let want = crate::dropbox::want_all(&fake, None);
    crate::dropbox::assert_docs(&es_documents(&es, "search-dropbox", "dbx").await, &want);
    let job = es
        .document(".elastic-connectors-sync-jobs", "dbx-full")
        .unwrap();
    let n = want.len() as u64;
    assert_eq!(
        (
            job["status"].as_str(),
            job["indexed_document_count"].as_u64(),
            job["deleted_document_count"].as_u64(),
            job["total_document_count"].as_u64()
        ),
        (Some("completed"), Some(n), Some(0), Some(n)),
        "{job}"
    );

    // Access control: one document per active team member in `.search-acl-filter-<index>`.
    let dls_config = crate::dropbox::config(
        &fake,
        json!({"refresh_token": fake.team_refresh_token(), "use_document_level_security": true}),
    );
    let dls = connector_doc(
        "search-dropbox-dls",
        "dropbox",
        elastic_configuration(dls_config),
        json!([]),
    );
    es.put(".elastic-connectors", "dbx-dls", dls.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "dbx-acl",
        job_doc("dbx-dls", &dls, "access_control"),
    );
    let outcome = run_one(&svc).await;
    assert_eq!(outcome.status.as_deref(), Some("completed"), "{outcome:?}");
    let members: Vec<_> = fake
        .accounts()
        .into_iter()
        .filter(|a| a.team_member_id.is_some() && a.status == "active")
        .collect();
    let acl = es_documents(&es, ".search-acl-filter-search-dropbox-dls", "dbx-dls").await;
    assert_eq!(
        acl.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        members.iter().map(|m| m.email.clone()).collect()
    );
    for m in &members {
        assert_eq!(
            acl[&m.email].fields["identity"]["email"],
            json!(format!("email:{}", m.email))
        );
    }
    let job = es
        .document(".elastic-connectors-sync-jobs", "dbx-acl")
        .unwrap();
    assert_eq!(
        (
            job["status"].as_str(),
            job["indexed_document_count"].as_u64(),
            job["total_document_count"].as_u64()
        ),
        (
            Some("completed"),
            Some(members.len() as u64),
            Some(members.len() as u64)
        ),
        "{job}"
    );
    assert_eq!(
        es.document(".elastic-connectors", "dbx-dls").unwrap()["last_access_control_sync_status"],
        "completed"
    );
    assert_eq!(
        es.mappings(".search-acl-filter-search-dropbox-dls")
            .unwrap()["properties"]["query"]["enabled"],
        false
    );
}

#[tokio::test]
async fn box_jobs_index_what_the_embedded_index_holds() {
    use tributary_fakes::boxapi::{FakeBox, Tree};
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    // Enterprise (client credentials): both hosts can authenticate without rotating a token.
    let config = json!({
        "is_enterprise": "box_enterprise", "client_id": fake.client_id(), "client_secret": fake.client_secret(),
        "enterprise_id": fake.enterprise_id(), "api_base_url": fake.base_url(), "retry_count": 2,
        "use_document_level_security": true,
    });
    // The reference: the Box suite asserts these exact documents for the embedded index.
    let reference = host_with(vec![connector("box", "box", config.clone())], |_| {}).await;
    reference.sync_ok("box", SyncKind::Full).await;
    reference.sync_ok("box", SyncKind::AccessControl).await;
    let want = reference.documents("box").await;
    let want_acl = reference.acl_documents("box").await;
    assert!(!want.is_empty() && !want_acl.is_empty());

    let es = FakeElasticsearch::start().await.unwrap();
    let doc = connector_doc(
        "search-box",
        "box",
        elastic_configuration(config),
        json!([]),
    );
    es.put(".elastic-connectors", "box", doc.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "box-full",
        job_doc("box", &doc, "full"),
    );
    es.put(
        ".elastic-connectors-sync-jobs",
        "box-acl",
        job_doc("box", &doc, "access_control"),
    );
    let (_t, svc) = service(&es, &[("box", "box")], "worker").await;
    // A content slot and an access-control slot: both jobs start in one round.
    let started = svc.poll_once().await.unwrap();
    assert_eq!(started.len(), 2);
    for task in started {
        assert_eq!(task.await.unwrap().status.as_deref(), Some("completed"));
    }
    let strip = |docs: std::collections::BTreeMap<String, tributary_host::sink::SinkDocument>| -> Vec<(String, Value, Option<String>, Option<String>)> {
        docs.into_values().map(|d| (d.id, Value::Object(d.fields), d.body, d.version)).collect()
    };
    assert_eq!(
        strip(es_documents(&es, "search-box", "box").await),
        strip(want.clone())
    );
    assert_eq!(
        strip(es_documents(&es, ".search-acl-filter-search-box", "box").await),
        strip(want_acl.clone())
    );
    let full = es
        .document(".elastic-connectors-sync-jobs", "box-full")
        .unwrap();
    assert_eq!(
        (
            full["status"].as_str(),
            full["indexed_document_count"].as_u64(),
            full["total_document_count"].as_u64()
        ),
        (
            Some("completed"),
            Some(want.len() as u64),
            Some(want.len() as u64)
        ),
        "{full}"
    );
    let acl = es
        .document(".elastic-connectors-sync-jobs", "box-acl")
        .unwrap();
    assert_eq!(
        (
            acl["status"].as_str(),
            acl["indexed_document_count"].as_u64()
        ),
        (Some("completed"), Some(want_acl.len() as u64)),
        "{acl}"
    );
    let connector = es.document(".elastic-connectors", "box").unwrap();
    assert_eq!(
        (
            connector["last_sync_status"].as_str(),
            connector["last_access_control_sync_status"].as_str()
        ),
        (Some("completed"), Some("completed"))
    );
}

/// Issue 14 item 12: `sync_cursor` carries cursors only. A Box refresh token rotated by a job
/// that saves no cursor (here a failed one) is not overwritten by the older token from the
/// connector document before the next incremental job, and no token ever reaches the cluster.
#[tokio::test]
async fn tokens_stay_home_and_a_rotated_box_token_survives_the_next_incremental_job() {
    use tributary_fakes::boxapi::{FakeBox, Tree, server_error};
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let configured = fake.refresh_token();
    let config = json!({
        "client_id": fake.client_id(), "client_secret": fake.client_secret(),
        "refresh_token": configured, "api_base_url": fake.base_url(), "retry_count": 2,
    });
    let es = FakeElasticsearch::start().await.unwrap();
    let doc = connector_doc(
        "search-box",
        "box",
        elastic_configuration(config),
        json!([]),
    );
    es.put(".elastic-connectors", "box", doc.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "j-full",
        job_doc("box", &doc, "full"),
    );
    let (_t, svc) = service(&es, &[("box", "box")], "worker").await;
    assert_eq!(run_one(&svc).await.status.as_deref(), Some("completed"));
    let mut tokens = vec![configured.clone(), fake.refresh_token()];
    assert_ne!(tokens[0], tokens[1], "the full job rotated the token");
    let assert_no_token = |tokens: &[String]| {
        let connector = es.document(".elastic-connectors", "box").unwrap();
        let cursor = connector["sync_cursor"].to_string();
        for token in tokens {
            assert!(!cursor.contains(token.as_str()), "token in {cursor}");
        }
        let state = connector["sync_cursor"]["tributary_state"]
            .as_object()
            .unwrap();
        // The event position travels; the token and the node maps stay home.
        assert_eq!(
            state.keys().map(String::as_str).collect::<Vec<_>>(),
            ["positions", "positions_at", "scope"],
            "{cursor}"
        );
        assert!(cursor.len() < 64 * 1024);
    };
    assert_no_token(&tokens);

    // An incremental job rotates the token (access tokens expired), then fails: it saves no
    // cursor, so the connector document's cursor is older than the stored token.
    fake.expire_access_tokens();
    fake.faults().add("/events", 10, server_error(500));
    let connector = es.document(".elastic-connectors", "box").unwrap();
    es.put(
        ".elastic-connectors-sync-jobs",
        "j-failing",
        job_doc("box", &connector, "incremental"),
    );
    assert_eq!(run_one(&svc).await.status.as_deref(), Some("error"));
    tokens.push(fake.refresh_token());
    assert_ne!(tokens[1], tokens[2], "the failed job rotated the token");
    fake.faults().clear();

    // The next incremental job still authenticates with the newest token.
    fake.create_file("0", "after-rotation.txt", "still here")
        .unwrap();
    fake.expire_access_tokens();
    let connector = es.document(".elastic-connectors", "box").unwrap();
    es.put(
        ".elastic-connectors-sync-jobs",
        "j-next",
        job_doc("box", &connector, "incremental"),
    );
    let outcome = run_one(&svc).await;
    assert_eq!(outcome.status.as_deref(), Some("completed"), "{outcome:?}");
    assert_eq!(fake.grants().rejected, 0, "no used token was presented");
    tokens.push(fake.refresh_token());
    assert_no_token(&tokens);
    assert!(
        es.documents("search-box")
            .values()
            .any(|d| d["name"] == "after-rotation.txt"),
        "the incremental job indexed the new file"
    );
}

/// Issue 14 item 14: a connector document from Elastic with numbers our schema refuses runs
/// with the nearest allowed values, and the job document says so.
#[tokio::test]
async fn migrated_out_of_range_numbers_are_clamped_with_a_warning() {
    use tributary_fakes::boxapi::{FakeBox, Tree};
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let config = json!({
        "is_enterprise": "box_enterprise", "client_id": fake.client_id(), "client_secret": fake.client_secret(),
        "enterprise_id": fake.enterprise_id(), "api_base_url": fake.base_url(),
        "retry_count": 20, "concurrent_downloads": 2000,
    });
    let es = FakeElasticsearch::start().await.unwrap();
    let mut configuration = elastic_configuration(config);
    // Elastic stores numbers typed in Kibana as they were typed, sometimes as text.
    configuration["concurrent_downloads"]["value"] = json!("2000");
    let doc = connector_doc("search-box", "box", configuration, json!([]));
    es.put(".elastic-connectors", "box", doc.clone());
    es.put(
        ".elastic-connectors-sync-jobs",
        "j-full",
        job_doc("box", &doc, "full"),
    );
    let (_t, svc) = service(&es, &[("box", "box")], "worker").await;
    let outcome = run_one(&svc).await;
    assert_eq!(outcome.status.as_deref(), Some("completed"), "{outcome:?}");
    assert!(!es.documents("search-box").is_empty());
    let job = es
        .document(".elastic-connectors-sync-jobs", "j-full")
        .unwrap();
    let warnings: Vec<&str> = job["metadata"]["tributary_warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("{job}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`retry_count`") && w.contains("20") && w.contains("using 10")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("`concurrent_downloads`")
            && w.contains("2000")
            && w.contains("using 100")),
        "{warnings:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Document-level security: the access-control query templates, evaluated

/// Renders every access-control document's query template for its identity, as Elastic's
/// document-level security does, runs it against the content index `content` of the fake
/// cluster, and checks that each identity sees exactly the documents whose
/// `_allow_access_control` holds one of its identities, plus those without a list.
async fn assert_templates_select_exactly(es: &FakeElasticsearch, content: &str) {
    use std::collections::BTreeSet;
    // A document without an access list: public, for everyone.
    es.put(
        content,
        "public-note",
        json!({"id": "public-note", "name": "Public note"}),
    );
    let docs = es.documents(content);
    let acl = es.documents(&format!(".search-acl-filter-{content}"));
    assert!(!acl.is_empty(), "no access-control documents");
    let client = reqwest::Client::new();
    let (mut restricted, mut granted) = (false, false);
    for (who, acl_doc) in &acl {
        let template = &acl_doc["query"]["template"];
        let identities: BTreeSet<&str> = template["params"]["access_control"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let want: BTreeSet<String> = docs
            .iter()
            .filter(|(_, d)| match d.get("_allow_access_control") {
                None => true,
                Some(list) => list
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| identities.contains(i.as_str().unwrap())),
            })
            .map(|(id, _)| id.clone())
            .collect();
        let source = template["source"].as_str().unwrap();
        let body = json!({
            "source": format!(r#"{{"size": 10000, "_source": false, "query": {source}}}"#),
            "params": template["params"],
        });
        let response = client
            .post(format!("{}/{content}/_search/template", es.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let found: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{who}: {found}");
        let got: BTreeSet<String> = found["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "{who} ({identities:?})");
        assert!(got.contains("public-note"), "{who}");
        restricted |= got.len() < docs.len();
        granted |= got.len() > 1;
    }
    assert!(
        restricted && granted,
        "the tree must give some identities access to listed documents and deny others some"
    );
}

#[tokio::test]
async fn dropbox_access_control_templates_show_each_member_exactly_their_documents() {
    use tributary_fakes::dropbox::{FakeDropbox, Tree};
    let es = FakeElasticsearch::start().await.unwrap();
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let spec = crate::dropbox::spec(
        "dbx",
        &fake,
        json!({"refresh_token": fake.team_refresh_token(), "use_document_level_security": true}),
    );
    let t = es_host(&es, vec![spec]).await;
    t.sync_ok("dbx", SyncKind::Full).await;
    t.sync_ok("dbx", SyncKind::AccessControl).await;
    assert_templates_select_exactly(&es, "tributary-default-dbx").await;
}

#[tokio::test]
async fn box_access_control_templates_show_each_user_exactly_their_documents() {
    use tributary_fakes::boxapi::{FakeBox, Tree};
    let es = FakeElasticsearch::start().await.unwrap();
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let spec = connector(
        "box",
        "box",
        json!({
            "is_enterprise": "box_enterprise", "client_id": fake.client_id(),
            "client_secret": fake.client_secret(), "enterprise_id": fake.enterprise_id(),
            "api_base_url": fake.base_url(), "retry_count": 2,
            "use_document_level_security": true,
        }),
    );
    let t = es_host(&es, vec![spec]).await;
    t.sync_ok("box", SyncKind::Full).await;
    t.sync_ok("box", SyncKind::AccessControl).await;
    assert_templates_select_exactly(&es, "tributary-default-box").await;
}

// ---------------------------------------------------------------------------------------------
// Tenants on a shared cluster

#[tokio::test]
async fn two_tenants_with_the_same_index_name_never_cross() {
    let es = FakeElasticsearch::start().await.unwrap();
    let (acme_feed, globex_feed) = (
        FakeFeed::start(Some("s3cret")).await.unwrap(),
        FakeFeed::start(Some("s3cret")).await.unwrap(),
    );
    acme_feed.upsert("1", "Anvil", Some("anvils for sale"));
    acme_feed.upsert("2", "Rocket", Some("rockets for sale"));
    globex_feed.upsert("1", "Globe", Some("globes for sale"));
    globex_feed.upsert("3", "Dome", Some("domes for sale"));
    // Same connector id, same index name, overlapping document ids.
    let mut acme = feed_spec(&acme_feed, "docs");
    acme.tenant = "acme".into();
    let mut globex = feed_spec(&globex_feed, "docs");
    globex.tenant = "globex".into();
    let t = es_host(&es, vec![acme, globex]).await;
    let sync = |tenant: &'static str| {
        let host = &t.host;
        async move {
            let report = host
                .sync(
                    Some(tenant),
                    "news",
                    SyncKind::Full,
                    tributary_host::SyncOptions::default(),
                )
                .await
                .unwrap();
            assert_eq!(report.status, JobStatus::Succeeded, "{report:?}");
            report
        }
    };
    sync("acme").await;
    sync("globex").await;
    let ids = |index: &str| es.documents(index).into_keys().collect::<Vec<_>>();
    assert_eq!(ids("tributary-acme-docs"), ["1", "2"]);
    assert_eq!(ids("tributary-globex-docs"), ["1", "3"]);
    let search = |tenant: &'static str| {
        let host = &t.host;
        async move {
            let found = host
                .search(
                    tenant,
                    "docs",
                    tributary_host::sink::SearchRequest {
                        query: "sale".into(),
                        limit: 10,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let mut titles: Vec<String> = found.hits.into_iter().filter_map(|h| h.title).collect();
            titles.sort();
            titles
        }
    };
    assert_eq!(search("acme").await, ["Anvil", "Rocket"]);
    assert_eq!(search("globex").await, ["Dome", "Globe"]);
    // `1` vanishes from acme's feed: its full sync deletes acme's `1`, not globex's.
    acme_feed.delete("1");
    let report = sync("acme").await;
    assert_eq!(report.counts.deleted, 1);
    assert_eq!(ids("tributary-acme-docs"), ["2"]);
    assert_eq!(ids("tributary-globex-docs"), ["1", "3"]);
    assert_eq!(search("acme").await, ["Rocket"]);
    assert_eq!(search("globex").await, ["Dome", "Globe"]);
    let report = sync("globex").await;
    assert_eq!(
        (report.counts.unchanged, report.counts.deleted),
        (2, 0),
        "{report:?}"
    );
}
