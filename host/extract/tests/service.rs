//! The external extraction service client against a tiny local axum server that
//! speaks Elastic's data-extraction-service protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use tributary_extract::service::ServiceClient;
use tributary_extract::{ExtractError, Format, Limits};

/// Echoes the body back as `extracted_text` (prefixed with the content type), or
/// misbehaves when the body asks it to.
async fn extract_text(headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let text = String::from_utf8_lossy(&body).into_owned();
    match text.as_str() {
        "fail" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"error":"parse_error","message":"Tika could not parse it"}"#.into(),
        ),
        "crash" => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>".into()),
        "garbage" => (StatusCode::OK, "not json".into()),
        "missing" => (StatusCode::OK, r#"{"_meta":{}}"#.into()),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, r#"{"extracted_text":"late"}"#.into())
        }
        _ => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let reply = serde_json::json!({
                "extracted_text": format!("[{ct}]   {text}  "),
                "_meta": {"X-ELASTIC:service": "tika"},
            });
            (StatusCode::OK, reply.to_string())
        }
    }
}

async fn server() -> String {
    let app = Router::new().route("/extract_text/", put(extract_text));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test]
async fn extracts_through_the_service() {
    let client = ServiceClient::new(&server().await).unwrap();
    assert!(client.endpoint().ends_with("/extract_text/"));
    let out = client
        .extract(
            "Hello\n\n\nservice".into(),
            "doc.pdf",
            Some("application/pdf"),
            &Limits::default(),
        )
        .await
        .unwrap();
    // normalised like local extraction
    assert_eq!(out.text, "[application/pdf] Hello\n\nservice");
    assert_eq!(out.format, Format::Pdf);
    assert!(!out.truncated);
    let out = client
        .extract(
            "x".repeat(100).into(),
            "a.bin",
            None,
            &Limits::default().with_max_output_bytes(20),
        )
        .await
        .unwrap();
    assert!(out.truncated && out.text.len() <= 20);
}

#[tokio::test]
async fn service_errors_are_clear() {
    let client = ServiceClient::new(&server().await).unwrap();
    let limits = Limits::default();
    let err = |r: Result<_, ExtractError>| match r {
        Err(ExtractError::Failed(m)) => m,
        other => panic!("expected Failed, got {other:?}"),
    };
    assert_eq!(
        err(client.extract("fail".into(), "a.pdf", None, &limits).await),
        "extraction service: HTTP 422 Unprocessable Entity: parse_error: Tika could not parse it"
    );
    assert_eq!(
        err(client.extract("crash".into(), "a.pdf", None, &limits).await),
        "extraction service: HTTP 502 Bad Gateway: <html>bad gateway</html>"
    );
    assert!(
        err(client
            .extract("garbage".into(), "a.pdf", None, &limits)
            .await)
        .starts_with("extraction service: invalid JSON reply: ")
    );
    assert_eq!(
        err(client
            .extract("missing".into(), "a.pdf", None, &limits)
            .await),
        "extraction service: reply has no extracted_text"
    );
    // too large: refused before sending
    assert_eq!(
        client
            .extract(
                vec![0u8; 11].into(),
                "a.pdf",
                None,
                &limits.clone().with_max_input_bytes(10)
            )
            .await,
        Err(ExtractError::TooLarge {
            size: 11,
            limit: 10
        })
    );
    // time limit
    let slow = limits.with_timeout(Duration::from_millis(200));
    assert_eq!(
        client.extract("slow".into(), "a.pdf", None, &slow).await,
        Err(ExtractError::TimedOut(Duration::from_millis(200)))
    );
    // nothing listening
    let dead = ServiceClient::new("http://127.0.0.1:9").unwrap();
    assert!(
        err(dead
            .extract("x".into(), "a.pdf", None, &Limits::default())
            .await)
        .starts_with("extraction service: request failed")
    );
}
