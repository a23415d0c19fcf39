//! The plugin reaching out: host files and environment, raw sockets, hosts outside its
//! allowlist, redirects, private addresses behind names, oversized and trickling responses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::response::Redirect;
use axum::routing::get;
use serde_json::json;
use tributary_fakes::FakeServer;

use crate::arena::{
    Arena, INTERNAL_NAME, MAX_RESPONSE_BYTES, RawBehaviour, RawServer, assert_failed, hostile,
};

/// A server answering `/secret` and counting the requests it got.
async fn counting_server() -> (FakeServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let server = FakeServer::start(axum::Router::new().route(
        "/secret",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "internal secret" }
        }),
    ))
    .await
    .unwrap();
    (server, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_host_files_is_denied() {
    let arena = Arena::new(vec![hostile(
        "files",
        json!({"attack": "read-file", "target": env!("CARGO_MANIFEST_PATH")}),
    )])
    .await;
    let report = arena.attack("files").await;
    assert_failed(&report, "host", &["file access denied", "/etc/passwd"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_is_empty() {
    // The test process has a rich environment (PATH, HOME, CARGO_*); none of it is visible.
    assert!(std::env::vars().count() > 0);
    let arena = Arena::new(vec![hostile("env", json!({"attack": "read-env"}))]).await;
    let report = arena.attack("env").await;
    assert_failed(&report, "host", &["no environment visible"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_sockets_and_dns_are_denied() {
    let listener = RawServer::start(RawBehaviour::Silent).await;
    // A UDP socket on the same port sees nothing either.
    let udp = tokio::net::UdpSocket::bind(listener.addr).await.unwrap();
    let arena = Arena::new(vec![hostile(
        "sockets",
        json!({"attack": "socket", "target": listener.addr.to_string()}),
    )])
    .await;
    let report = arena.attack("sockets").await;
    assert_failed(&report, "host", &["sockets denied", "tcp:", "dns:"]);
    assert_eq!(listener.connections(), 0, "a TCP connection got through");
    let mut buf = [0u8; 64];
    assert!(
        udp.try_recv_from(&mut buf).is_err(),
        "a UDP datagram got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_outside_the_allowlist_are_refused() {
    let (allowed, allowed_hits) = counting_server().await;
    let (other, other_hits) = counting_server().await;
    let arena = Arena::new(vec![hostile(
        "outside",
        json!({
            "attack": "fetch",
            "allowed_hosts": [allowed.addr().to_string()],
            "target": format!("{}/secret", other.url()),
        }),
    )])
    .await;
    let report = arena.attack("outside").await;
    assert_failed(
        &report,
        "host",
        &[
            "Denied",
            &format!("`{}` is not in this plugin's allowed hosts", other.addr()),
        ],
    );
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_out_of_the_allowlist_are_refused() {
    let (other, other_hits) = counting_server().await;
    let target = format!("{}/secret", other.url());
    let bounces = Arc::new(AtomicUsize::new(0));
    let counter = bounces.clone();
    let allowed = FakeServer::start(axum::Router::new().route(
        "/bounce",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Redirect::temporary(&target) }
        }),
    ))
    .await
    .unwrap();
    let arena = Arena::new(vec![hostile(
        "redirect",
        json!({
            "attack": "fetch",
            "allowed_hosts": [allowed.addr().to_string()],
            "target": format!("{}/bounce", allowed.url()),
        }),
    )])
    .await;
    let report = arena.attack("redirect").await;
    assert_failed(
        &report,
        "host",
        &[
            "Denied",
            &format!("`{}` is not in this plugin's allowed hosts", other.addr()),
        ],
    );
    assert_eq!(
        bounces.load(Ordering::SeqCst),
        1,
        "the allowlisted hop was made"
    );
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolving_to_loopback_are_refused_after_resolution() {
    // The plugin allowlists a *name*; the host resolves it to 127.0.0.1, where an internal
    // service listens. Only an address the plugin names itself may be private.
    let (internal, hits) = counting_server().await;
    let port = internal.addr().port();
    let arena = Arena::new(vec![hostile(
        "internal",
        json!({
            "attack": "fetch",
            "allowed_hosts": [format!("{INTERNAL_NAME}:{port}")],
            "target": format!("http://{INTERNAL_NAME}:{port}/secret"),
        }),
    )])
    .await;
    let report = arena.attack("internal").await;
    assert_failed(
        &report,
        "host",
        &[
            "Denied",
            &format!("`{INTERNAL_NAME}` resolves to 127.0.0.1, a loopback address"),
            "(http.allow_private)",
        ],
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal service was reached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_allowlists_are_refused() {
    let arena = Arena::new(vec![hostile(
        "wildcard",
        json!({"attack": "fetch", "allowed_hosts": ["*.example.com"], "target": "http://a.example.com/"}),
    )])
    .await;
    let report = arena.attack("wildcard").await;
    assert_failed(
        &report,
        "config",
        &["allowed hosts are invalid", "wildcards are not supported"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_bodies_over_the_limit_are_cut_off() {
    // The server streams without a length, forever: only the byte limit stops the read.
    let server = RawServer::start(RawBehaviour::Endless).await;
    let arena = Arena::new(vec![hostile(
        "big",
        json!({
            "attack": "fetch",
            "allowed_hosts": [server.addr.to_string()],
            "target": server.url("/huge"),
        }),
    )])
    .await;
    let report = arena.attack("big").await;
    assert_failed(
        &report,
        "host",
        &[&format!("TooLarge({MAX_RESPONSE_BYTES})")],
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_side_downloads_are_bounded_whatever_the_plugin_asks() {
    // `fetch-text` with max-bytes = u64::MAX: the body stays in the host, which caps it.
    let server = RawServer::start(RawBehaviour::Endless).await;
    let arena = Arena::new(vec![hostile(
        "bomb",
        json!({
            "attack": "fetch-text-bomb",
            "allowed_hosts": [server.addr.to_string()],
            "target": server.url("/bomb.txt"),
        }),
    )])
    .await;
    let report = arena.attack("bomb").await;
    assert_failed(
        &report,
        "host",
        &[
            "fetch-text refused",
            &format!("TooLarge({MAX_RESPONSE_BYTES})"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_servers_hit_the_host_side_timeout() {
    // The plugin asks for a time limit of u32::MAX ms; the host clamps it to its maximum.
    let server = RawServer::start(RawBehaviour::Trickle).await;
    let arena = Arena::new(vec![hostile(
        "trickle",
        json!({
            "attack": "trickle",
            "allowed_hosts": [server.addr.to_string()],
            "target": server.url("/slow"),
        }),
    )])
    .await;
    let started = Instant::now();
    let report = arena.attack("trickle").await;
    assert_failed(&report, "host", &["Timeout", "timed out"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the trickle was cut by the host's timeout, not the test's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_downloads_have_a_deadline_retries_included() {
    // A content request with u32::MAX retries and time limit against a trickling server: the
    // host's download (which can outlive the plugin's call) gives up at its own deadline.
    let server = RawServer::start(RawBehaviour::Trickle).await;
    let arena = Arena::new(vec![hostile(
        "slow",
        json!({
            "attack": "content-trickle",
            "allowed_hosts": [server.addr.to_string()],
            "target": server.url("/slow.txt"),
        }),
    )])
    .await;
    let started = Instant::now();
    let report = arena.attack("slow").await;
    assert_failed(
        &report,
        "host",
        &[
            "content not indexed",
            "did not finish within 4 s (retries included)",
        ],
    );
    assert_eq!(report.counts.content_failed, 1);
    assert!(server.connections() >= 1);
    assert!(started.elapsed() < Duration::from_secs(60));
}
