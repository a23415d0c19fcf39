//! The fake's own contract, over plain HTTP: the documented status codes and bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};

use super::FakeElasticsearch;

async fn call(method: reqwest::Method, url: String, body: Option<String>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn index_lifecycle_occ_and_near_real_time_search() {
    let es = FakeElasticsearch::start().await.unwrap();
    es.set_refresh_interval(None);
    let url = es.url();
    let (s, root) = call(reqwest::Method::GET, format!("{url}/"), None).await;
    assert_eq!(
        (s, root["version"]["number"].as_str()),
        (200, Some("9.1.0"))
    );

    let mappings = json!({"mappings": {"properties": {"size": {"type": "long"}}}});
    let (s, _) = call(
        reqwest::Method::PUT,
        format!("{url}/docs"),
        Some(mappings.to_string()),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = call(
        reqwest::Method::PUT,
        format!("{url}/docs"),
        Some("{}".into()),
    )
    .await;
    assert_eq!(
        (s, body["error"]["type"].as_str()),
        (400, Some("resource_already_exists_exception"))
    );
    let (s, body) = call(reqwest::Method::PUT, format!("{url}/Docs"), None).await;
    assert_eq!(
        (s, body["error"]["type"].as_str()),
        (400, Some("invalid_index_name_exception"))
    );

    let (s, created) = call(
        reqwest::Method::PUT,
        format!("{url}/docs/_doc/a%2Fb"),
        Some(json!({"title": "Hello world", "size": 3}).to_string()),
    )
    .await;
    assert_eq!((s, created["result"].as_str()), (201, Some("created")));
    assert_eq!(es.document("docs", "a/b").unwrap()["size"], 3);
    // Real-time get, near-real-time search.
    let (s, got) = call(reqwest::Method::GET, format!("{url}/docs/_doc/a%2Fb"), None).await;
    assert_eq!((s, got["_seq_no"].as_u64()), (200, Some(0)));
    let search = json!({"query": {"simple_query_string": {"query": "hello", "fields": ["title"], "default_operator": "and"}}});
    let (_, found) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_search"),
        Some(search.to_string()),
    )
    .await;
    assert_eq!(found["hits"]["total"]["value"], 0, "not refreshed yet");
    call(reqwest::Method::POST, format!("{url}/docs/_refresh"), None).await;
    let (_, found) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_search"),
        Some(search.to_string()),
    )
    .await;
    assert_eq!(found["hits"]["total"]["value"], 1);

    // Optimistic concurrency: a stale seq_no is a 409.
    let patch = json!({"doc": {"title": "Changed"}}).to_string();
    let (s, updated) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_update/a%2Fb?if_seq_no=0&if_primary_term=1"),
        Some(patch.clone()),
    )
    .await;
    assert_eq!((s, updated["result"].as_str()), (200, Some("updated")));
    let (s, conflict) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_update/a%2Fb?if_seq_no=0&if_primary_term=1"),
        Some(patch),
    )
    .await;
    assert_eq!(
        (s, conflict["error"]["type"].as_str()),
        (409, Some("version_conflict_engine_exception"))
    );
    let (s, missing) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_update/nope"),
        Some(json!({"doc": {}}).to_string()),
    )
    .await;
    assert_eq!(
        (s, missing["error"]["type"].as_str()),
        (404, Some("document_missing_exception"))
    );
    // Mapping conflicts are 400s.
    let (s, bad) = call(
        reqwest::Method::PUT,
        format!("{url}/docs/_doc/x"),
        Some(json!({"size": "big"}).to_string()),
    )
    .await;
    assert_eq!(
        (s, bad["error"]["type"].as_str()),
        (400, Some("document_parsing_exception"))
    );
    // Unknown search keys and queries are 400s; missing indexes 404 unless ignored.
    let (s, _) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_search"),
        Some(json!({"aggs": {}}).to_string()),
    )
    .await;
    assert_eq!(s, 400);
    let (s, nf) = call(
        reqwest::Method::POST,
        format!("{url}/nope/_search"),
        Some("{}".into()),
    )
    .await;
    assert_eq!(
        (s, nf["error"]["type"].as_str()),
        (404, Some("index_not_found_exception"))
    );
    let (s, _) = call(
        reqwest::Method::POST,
        format!("{url}/nope/_search?ignore_unavailable=true"),
        Some("{}".into()),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn bulk_items_faults_and_point_in_time_paging() {
    let es = FakeElasticsearch::start().await.unwrap();
    let url = es.url();
    es.reject_items(1);
    es.fail_item("c", 400, "document_parsing_exception", "bad c", 1);
    let body = "{\"index\":{\"_index\":\"docs\",\"_id\":\"a\"}}\n{\"n\":1}\n{\"index\":{\"_index\":\"docs\",\"_id\":\"b\"}}\n{\"n\":2}\n{\"index\":{\"_index\":\"docs\",\"_id\":\"c\"}}\n{\"n\":3}\n{\"delete\":{\"_index\":\"docs\",\"_id\":\"zz\"}}\n";
    let (s, r) = call(
        reqwest::Method::POST,
        format!("{url}/_bulk?refresh=true"),
        Some(body.into()),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(r["errors"], true);
    let statuses: Vec<u64> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i.as_object().unwrap().values().next().unwrap()["status"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, [429, 201, 400, 404]);
    assert_eq!(
        r["items"][0]["index"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    assert_eq!(es.documents("docs").keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(es.auto_created("docs"), Some(true));
    let (s, _) = call(
        reqwest::Method::POST,
        format!("{url}/_bulk"),
        Some("{\"index\":{}}".into()),
    )
    .await;
    assert_eq!(s, 400, "a body without the final newline is refused");

    for i in 0..5 {
        es.put("docs", &format!("p{i}"), json!({"n": i}));
    }
    let (_, pit) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_pit?keep_alive=1m"),
        None,
    )
    .await;
    let pit_id = pit["id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let mut q = json!({"size": 2, "pit": {"id": pit_id, "keep_alive": "1m"}, "sort": [{"_shard_doc": "asc"}], "_source": ["n"]});
        if let Some(a) = &after {
            q["search_after"] = a.clone();
        }
        let (s, page) = call(
            reqwest::Method::POST,
            format!("{url}/_search"),
            Some(q.to_string()),
        )
        .await;
        assert_eq!(s, 200, "{page}");
        let hits = page["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            break;
        }
        for h in &hits {
            seen.push(h["_id"].as_str().unwrap().to_string());
        }
        after = hits.last().map(|h| h["sort"].clone());
    }
    assert_eq!(seen, ["b", "p0", "p1", "p2", "p3", "p4"]);
    let (s, _) = call(
        reqwest::Method::DELETE,
        format!("{url}/_pit"),
        Some(json!({"id": pit_id}).to_string()),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        reqwest::Method::POST,
        format!("{url}/docs/_search"),
        Some(json!({"sort": [{"_shard_doc": "asc"}]}).to_string()),
    )
    .await;
    assert_eq!(s, 400, "_shard_doc needs a point in time");

    // Periodic refresh, evaluated lazily.
    es.set_refresh_interval(Some(Duration::from_millis(50)));
    call(
        reqwest::Method::PUT,
        format!("{url}/docs/_doc/late"),
        Some("{}".into()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (_, c) = call(reqwest::Method::POST, format!("{url}/docs/_count"), None).await;
    assert_eq!(c["count"], 7);
}

#[tokio::test]
async fn authentication_is_enforced_when_configured() {
    let es = FakeElasticsearch::start().await.unwrap();
    es.require_api_key("aWQ6c2VjcmV0");
    let client = reqwest::Client::new();
    let denied = client.get(es.url()).send().await.unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let ok = client
        .get(es.url())
        .header("authorization", "ApiKey aWQ6c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(
        super::base64(b"elastic:changeme"),
        "ZWxhc3RpYzpjaGFuZ2VtZQ=="
    );
}
