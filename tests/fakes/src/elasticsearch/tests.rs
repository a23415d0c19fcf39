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
        Some(json!({"suggest": {}}).to_string()),
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

/// Ids of a search answer's hits, sorted.
fn hit_ids(found: &Value) -> Vec<String> {
    let mut ids: Vec<String> = found["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn fields_resolve_through_mappings_and_search_templates_are_evaluated() {
    let es = FakeElasticsearch::start().await.unwrap();
    let url = es.url();
    // Elastic's dynamic mapping of a string: text with a keyword sub-field.
    let mappings = json!({"mappings": {"properties": {
        "acl": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
        "query": {"type": "object", "enabled": false},
    }}});
    call(
        reqwest::Method::PUT,
        format!("{url}/content"),
        Some(mappings.to_string()),
    )
    .await;
    es.put(
        "content",
        "ann",
        json!({"acl": ["email:ann@x.example", "group:g1"]}),
    );
    es.put("content", "bob", json!({"acl": ["email:bob@x.example"]}));
    es.put("content", "public", json!({"title": "no list"}));
    es.put("content", "stored", json!({"query": {"k": "v"}}));
    let search = |body: Value| {
        let url = url.clone();
        async move {
            let (s, found) = call(
                reqwest::Method::POST,
                format!("{url}/content/_search"),
                Some(body.to_string()),
            )
            .await;
            assert_eq!(s, 200, "{found}");
            hit_ids(&found)
        }
    };
    // The keyword sub-field holds the whole identity; the text field only its tokens; a
    // sub-field the mappings lack, and a disabled object, hold nothing.
    assert_eq!(
        search(json!({"query": {"terms": {"acl.keyword": ["group:g1", "email:bob@x.example"]}}}))
            .await,
        vec!["ann", "bob"]
    );
    assert!(
        search(json!({"query": {"term": {"acl": "email:ann@x.example"}}}))
            .await
            .is_empty()
    );
    assert_eq!(
        search(json!({"query": {"term": {"acl": "ann"}}})).await,
        vec!["ann"]
    );
    assert!(
        search(json!({"query": {"terms": {"acl.enum": ["group:g1"]}}}))
            .await
            .is_empty()
    );
    assert!(
        search(json!({"query": {"term": {"query.k": "v"}}}))
            .await
            .is_empty()
    );
    assert_eq!(
        search(json!({"query": {"bool": {"must_not": {"exists": {"field": "acl"}}}}})).await,
        vec!["public", "stored"]
    );
    // A plain keyword mapping has no `.keyword` sub-field: a template querying it matches
    // nothing (tributary's sink mapping before it agreed with Elastic's template).
    call(
        reqwest::Method::PUT,
        format!("{url}/plain"),
        Some(json!({"mappings": {"properties": {"acl": {"type": "keyword"}}}}).to_string()),
    )
    .await;
    es.put("plain", "ann", json!({"acl": ["group:g1"]}));
    let (_, found) = call(
        reqwest::Method::POST,
        format!("{url}/plain/_search"),
        Some(json!({"query": {"terms": {"acl.keyword": ["group:g1"]}}}).to_string()),
    )
    .await;
    assert!(hit_ids(&found).is_empty());
    let (_, found) = call(
        reqwest::Method::POST,
        format!("{url}/plain/_search"),
        Some(json!({"query": {"terms": {"acl": ["group:g1"]}}}).to_string()),
    )
    .await;
    assert_eq!(hit_ids(&found), vec!["ann"]);
    // An index without explicit mappings: `x.keyword` is the dynamic mapping's sub-field.
    es.put("dynamic", "d", json!({"tag": "a:b"}));
    let (_, found) = call(
        reqwest::Method::POST,
        format!("{url}/dynamic/_search"),
        Some(json!({"query": {"term": {"tag.keyword": "a:b"}}}).to_string()),
    )
    .await;
    assert_eq!(hit_ids(&found), vec!["d"]);

    // A search template, rendered with its params, then run.
    let template = json!({
        "source": r#"{"query": {"bool": {"should": [{"bool": {"must_not": {"exists": {"field": "acl"}}}}, {"terms": {"acl.keyword": {{#toJson}}access{{/toJson}}}}]}}}"#,
        "params": {"access": ["email:bob@x.example"]},
    });
    let (s, found) = call(
        reqwest::Method::POST,
        format!("{url}/content/_search/template"),
        Some(template.to_string()),
    )
    .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(hit_ids(&found), vec!["bob", "public", "stored"]);
    let (s, rendered) = call(
        reqwest::Method::POST,
        format!("{url}/_render/template"),
        Some(template.to_string()),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        rendered["template_output"]["query"]["bool"]["should"][1]["terms"]["acl.keyword"],
        json!(["email:bob@x.example"])
    );
    let broken = json!({"source": r#"{"query": {"terms": {"acl.keyword": [1,]}}}"#});
    let (s, body) = call(
        reqwest::Method::POST,
        format!("{url}/content/_search/template"),
        Some(broken.to_string()),
    )
    .await;
    assert_eq!(
        (s, body["error"]["type"].as_str()),
        (400, Some("x_content_parse_exception"))
    );
}

#[tokio::test]
async fn mget_reads_in_real_time_and_bulk_deletes_honour_sequence_numbers() {
    let es = FakeElasticsearch::start().await.unwrap();
    es.set_refresh_interval(None);
    let url = es.url();
    es.put("ix", "a", json!({"owner": "x", "big": "…"}));
    es.put("ix", "b", json!({"owner": "y"}));
    let (s, got) = call(
        reqwest::Method::POST,
        format!("{url}/ix/_mget?_source_includes=owner"),
        Some(json!({"ids": ["a", "b", "gone"]}).to_string()),
    )
    .await;
    assert_eq!(s, 200);
    let docs = got["docs"].as_array().unwrap();
    assert_eq!(docs[0]["_source"], json!({"owner": "x"}));
    assert_eq!(docs[2]["found"], false);
    let (seq_a, seq_b) = (
        docs[0]["_seq_no"].as_u64().unwrap(),
        docs[1]["_seq_no"].as_u64().unwrap(),
    );
    // `b` is rewritten after it was read: its conditional delete is refused, `a`'s goes through.
    es.put("ix", "b", json!({"owner": "z"}));
    let bulk = format!(
        "{}\n{}\n",
        json!({"delete": {"_id": "a", "if_seq_no": seq_a, "if_primary_term": 1}}),
        json!({"delete": {"_id": "b", "if_seq_no": seq_b, "if_primary_term": 1}}),
    );
    let (s, answer) = call(reqwest::Method::POST, format!("{url}/ix/_bulk"), Some(bulk)).await;
    assert_eq!(s, 200);
    assert_eq!(answer["errors"], true);
    assert_eq!(answer["items"][0]["delete"]["status"], 200);
    assert_eq!(answer["items"][1]["delete"]["status"], 409);
    assert_eq!(
        answer["items"][1]["delete"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert!(es.document("ix", "a").is_none());
    assert_eq!(es.document("ix", "b").unwrap()["owner"], "z");
    // A missing index: per-document errors, as Elasticsearch answers.
    let (s, got) = call(
        reqwest::Method::POST,
        format!("{url}/nope/_mget"),
        Some(json!({"ids": ["a"]}).to_string()),
    )
    .await;
    assert_eq!(
        (s, got["docs"][0]["error"]["type"].as_str()),
        (200, Some("index_not_found_exception"))
    );
}
