//! The service's OpenAPI document, held to the OpenAPI 3.1 schema and to the service itself.
//!
//! The document `/v1/openapi.json` serves must validate against the official OpenAPI 3.1 JSON
//! Schema (vendored in `openapi/`). Then every operation it describes is sent its documented
//! example — path and query parameters and request body as the annotations give them —
//! through the real service over loopback, against a fixture that makes the examples mean
//! something (tenant `acme` with the feed connector `docs` synced from a fake feed, the
//! connector and tenant the delete examples remove, the job the job examples name). Each answer
//! must be a success the operation declares, with a body that validates against the schema it
//! declares for that status and media type; sent without a token, each authenticated operation
//! must answer a 401 it declares, with the `Error` body. Object schemas are checked closed
//! (no properties the document does not name), so a field a handler adds without its type
//! saying so fails here too.
//!
//! The examples reach no network: connectors they create point at `feed.example.com` but are
//! never synced (no `ping`, cron schedules only, none due while the test runs).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tributary_fakes::feed::FakeFeed;
use tributary_host::job::{JobReport, JobStatus, SyncKind};

use crate::service::{ADMIN, Svc, items, start};

/// The official OpenAPI 3.1 schema (2022-10-07); source and licence in `openapi/README.md`.
const OAS_31_SCHEMA: &str = include_str!("openapi/oas-3.1-schema.json");

/// The job id the job operations' examples name.
const EXAMPLE_JOB: &str = "18c3f9a2b4d00000-4d2-0";

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// One documented operation.
struct Operation {
    method: String,
    path: String,
    id: String,
    op: Value,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                METHODS.contains(&method.as_str()),
                "{method} {path}: a method this test does not send"
            );
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                .to_string();
            out.push(Operation {
                method: method.clone(),
                path: path.clone(),
                id,
                op: op.clone(),
            });
        }
    }
    // Deletes last, so they do not take away what the other examples use.
    out.sort_by_key(|o| o.method == "delete");
    out
}

/// A validator for `schema`, whose `$ref`s point into the document's components. Object
/// schemas without `additionalProperties` are closed first (see the module docs).
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut components = doc["components"].clone();
    close(&mut components);
    let mut root = match schema {
        Value::Object(_) => schema.clone(),
        other => json!({"allOf": [other]}),
    };
    close(&mut root);
    root["components"] = components;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

fn close(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for value in map.values_mut() {
                close(value);
            }
        }
        Value::Array(list) => list.iter_mut().for_each(close),
        _ => {}
    }
}

fn check(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let validator = validator(doc, schema);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {instance} does not match {schema}:\n{}",
        errors.join("\n")
    );
}

/// A response object, `$ref`s to `components/responses` followed.
fn response<'a>(doc: &'a Value, op: &'a Value, status: u16) -> Option<&'a Value> {
    let r = op["responses"].get(status.to_string())?;
    Some(match r.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("unexpected response $ref {reference}"));
            &doc["components"]["responses"][name]
        }
        None => r,
    })
}

/// The example request of an operation: its URL path and query, and its body.
fn example_request(op: &Operation) -> (String, Option<(String, Vec<u8>)>) {
    let mut path = op.path.clone();
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    {
        let mut query = url.query_pairs_mut();
        for param in op.op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            let example = param.get("example");
            match param["in"].as_str().unwrap() {
                "path" => {
                    let example = example.and_then(Value::as_str).unwrap_or_else(|| {
                        panic!("{}: path parameter {name} has no example", op.id)
                    });
                    path = path.replace(&format!("{{{name}}}"), example);
                }
                "query" => {
                    let Some(example) = example else {
                        assert_ne!(
                            param["required"], true,
                            "{}: required query parameter {name} has no example",
                            op.id
                        );
                        continue;
                    };
                    let values = match example {
                        Value::Array(values) => values.clone(),
                        one => vec![one.clone()],
                    };
                    for value in values {
                        let text = match value {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        query.append_pair(name, &text);
                    }
                }
                other => panic!("{}: parameter {name} in {other}", op.id),
            }
        }
    }
    if let Some(q) = url.query().filter(|q| !q.is_empty()) {
        path = format!("{path}?{q}");
    }
    let body = op.op.get("requestBody").map(|body| {
        let content = body["content"].as_object().unwrap();
        assert_eq!(content.len(), 1, "{}: one media type per body", op.id);
        let (media, content) = content.iter().next().unwrap();
        match media.as_str() {
            "application/json" => {
                let example = content
                    .get("example")
                    .unwrap_or_else(|| panic!("{}: the JSON body has no example", op.id));
                (media.clone(), serde_json::to_vec(example).unwrap())
            }
            // A component cannot be an example in an annotation: the test sends a real one
            // (the feed plugin's code under another version).
            "application/wasm" => (
                media.clone(),
                std::fs::read(tributary_e2e::FEED_NEXT).unwrap(),
            ),
            other => panic!("{}: a {other} body", op.id),
        }
    });
    (path, body)
}

/// Sends a request; returns status, the content type's essence, and the body.
async fn send(
    svc: &Svc,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&(String, Vec<u8>)>,
) -> (u16, String, String) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = svc.http.request(method, format!("{}{path}", svc.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some((media, bytes)) = body {
        request = request
            .header("content-type", media.as_str())
            .body(bytes.clone());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default();
    (status, media, response.text().await.unwrap())
}

/// Checks an answer against what the operation declares for its status.
fn check_answer(doc: &Value, op: &Operation, status: u16, media: &str, text: &str) {
    let what = format!("{} {} {} answered {status}", op.id, op.method, op.path);
    let declared = response(doc, &op.op, status)
        .unwrap_or_else(|| panic!("{what}, which it does not declare: {text}"));
    let Some(content) = declared.get("content").and_then(Value::as_object) else {
        assert!(
            text.is_empty(),
            "{what} with a body it does not declare: {text}"
        );
        return;
    };
    let (declared_media, schema) = content
        .iter()
        .find(|(m, _)| m.split(';').next().unwrap_or_default().trim() == media)
        .map(|(m, c)| (m.as_str(), &c["schema"]))
        .unwrap_or_else(|| panic!("{what} as {media:?}, not as {:?}", content.keys()));
    match declared_media {
        "application/json" => {
            let body: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("{what} with JSON that does not parse ({e}): {text}"));
            check(doc, schema, &body, &what);
        }
        "application/x-ndjson" => {
            let mut lines = 0;
            for line in text.lines() {
                let body: Value = serde_json::from_str(line).unwrap();
                check(doc, schema, &body, &what);
                lines += 1;
            }
            assert!(lines > 0, "{what} with no lines");
        }
        m if m.starts_with("text/") || m.starts_with("application/openmetrics-text") => {
            check(doc, schema, &Value::String(text.to_string()), &what);
        }
        other => panic!("{what}: a {other} answer this test cannot check"),
    }
}

/// The fixture the examples name.
async fn fixture(svc: &Svc, feed: &FakeFeed) {
    let token = svc.tenant("acme", json!({})).await;
    svc.tenant("initech", json!({})).await;
    svc.feed_connector("acme", &token, "docs", feed).await;
    svc.feed_connector("acme", &token, "archive", feed).await;
    let job = svc.sync("acme", &token, "docs", "full").await;
    assert_eq!(svc.wait("acme", &token, &job).await["status"], "succeeded");
    // The job the job examples name: a finished record, as the host keeps them.
    let mut example = JobReport {
        id: EXAMPLE_JOB.into(),
        tenant: "acme".into(),
        connector: "docs".into(),
        kind: SyncKind::Full,
        plugin: "feed".into(),
        plugin_version: "0.1.0".into(),
        status: JobStatus::Succeeded,
        counts: Default::default(),
        error: None,
        warnings: vec![],
        started_at: 1_777_629_600,
        finished_at: Some(1_777_629_661),
        duration_ms: 61_000,
    };
    example.counts.indexed = 5;
    svc.service.host().jobs().save(&example).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_31_and_every_operation_answers_its_example_as_documented() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "doc", 5, "report");
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;

    let (status, media, text) = send(&svc, "get", "/v1/openapi.json", None, None).await;
    assert_eq!((status, media.as_str()), (200, "application/json"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let oas: Value = serde_json::from_str(OAS_31_SCHEMA).unwrap();
    let errors: Vec<String> = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&oas)
        .unwrap()
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not OpenAPI 3.1:\n{}", errors.join("\n"));
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]})
    );
    // The kinds are spelled as the CLI spells them (`tributary sync --kind`).
    assert_eq!(
        doc["components"]["schemas"]["SyncKind"]["enum"],
        json!(["full", "incremental", "access_control"])
    );

    let ops = operations(&doc);
    let ids: BTreeSet<&str> = ops.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids.len(), ops.len(), "operationIds repeat: {ids:?}");
    // Every route of the service (the console's assets and `/docs` are pages, not API).
    assert_eq!(ops.len(), 28, "{ids:?}");

    fixture(&svc, &feed).await;
    let mut exercised = BTreeSet::new();
    for op in &ops {
        let secured = op.op.get("security").is_some();
        let (path, body) = example_request(op);
        if let Some((media, bytes)) = &body
            && media == "application/json"
        {
            let schema = &op.op["requestBody"]["content"][media]["schema"];
            let example: Value = serde_json::from_slice(bytes).unwrap();
            check(&doc, schema, &example, &format!("{}'s example body", op.id));
        }
        if secured {
            let (status, media, text) = send(&svc, &op.method, &path, None, body.as_ref()).await;
            assert_eq!(status, 401, "{} without a token: {text}", op.id);
            check_answer(&doc, op, status, &media, &text);
        }
        let token = secured.then_some(ADMIN);
        let (status, media, text) = send(&svc, &op.method, &path, token, body.as_ref()).await;
        assert!(
            (200..300).contains(&status),
            "{} {path}: its example answered {status}: {text}",
            op.id
        );
        check_answer(&doc, op, status, &media, &text);
        exercised.insert(op.id.as_str());
    }
    assert_eq!(exercised, ids);

    // The examples did what they say.
    let (status, _, text) = send(
        &svc,
        "get",
        "/v1/tenants/acme/connectors/archive",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 404, "{text}");
    let (status, _, _) = send(&svc, "get", "/v1/tenants/initech", Some(ADMIN), None).await;
    assert_eq!(status, 404);
    let (status, _, text) = send(
        &svc,
        "get",
        "/v1/tenants/acme/connectors/news",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let news: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(news["schedule"]["full_cron"], "0 3 * * 0", "{news}");
    // Nothing synced the example connector (it would have reached out of loopback).
    let (_, _, text) = send(
        &svc,
        "get",
        "/v1/tenants/acme/jobs?connector=news",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"jobs": []})
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_tokens_tenant_and_times_are_rfc3339() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "doc", 2, "report");
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("acme", json!({})).await;
    let (status, who) = svc.call("GET", "/v1/whoami", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(who, json!({"role": "tenant", "tenant": "acme"}));
    let (status, who) = svc.call("GET", "/v1/whoami", Some(ADMIN), None).await;
    assert_eq!(status, 200);
    assert_eq!(who, json!({"role": "admin", "tenant": null}));
    let (status, who) = svc
        .call("GET", "/v1/whoami", Some("trb_unknown"), None)
        .await;
    assert_eq!(status, 401, "{who}");

    svc.feed_connector("acme", &token, "docs", &feed).await;
    let job = svc.sync("acme", &token, "docs", "access_control").await;
    let job = svc.wait("acme", &token, &job).await;
    assert_eq!(job["kind"], "access_control");
    for time in [&job["started_at"], &job["finished_at"]] {
        let text = time.as_str().unwrap_or_else(|| panic!("{job}"));
        assert!(
            text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
            "not RFC 3339 UTC: {text}"
        );
    }
    let (_, tenant) = svc
        .call("GET", "/v1/tenants/acme", Some(&token), None)
        .await;
    assert!(
        tenant["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{tenant}"
    );
    svc.stop().await;
}
