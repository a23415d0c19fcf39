//! Server-side request forgery through `tributary serve`: a tenant's connector pointed at the
//! host's own network, in every spelling of a loopback address, by a name that resolves to
//! loopback (DNS rebinding), or at a loopback port the operator did not allow, is refused — on
//! `?ping=true` and in a sync — before any connection: the loopback listener accepts none.
//!
//! Only loopback servers these tests start are ever addressed; the other non-public ranges are
//! refused by the same guard, tested without any network in `host/src/net/tests.rs`.

use serde_json::json;
use tributary_fakes::FakeServer;
use tributary_fakes::feed::FakeFeed;

use crate::service::{ADMIN, start};

/// An "internal service" on loopback that answers anything with a body a tenant must not see.
async fn internal_service() -> FakeServer {
    FakeServer::start(
        axum::Router::new().fallback(|| async { "INTERNAL-SECRET: the admin page of the host" }),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_the_hosts_own_network_in_any_spelling() {
    let internal = internal_service().await;
    let port = internal.addr().port();
    // The operator allows one loopback service (the feed), by address and port.
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert("a", "allowed item", Some("allowed body"));
    let feed_entry = format!("127.0.0.1:{}", feed.base_url().rsplit(':').next().unwrap());
    let svc = start(tempfile::tempdir().unwrap(), |c| {
        c.http.allow_private = vec![feed_entry.parse().unwrap()];
        c.http.static_hosts = [(
            "rebind.example".to_string(),
            vec!["127.0.0.1".parse().unwrap()],
        )]
        .into();
    })
    .await;
    let token = svc.tenant("evil", json!({})).await;

    for (i, host) in [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "0.0.0.0",
        "2130706433",
        "0x7f.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "rebind.example",
    ]
    .into_iter()
    .enumerate()
    {
        let base_url = format!("http://{host}:{port}");
        let config = json!({"base_url": base_url, "page_size": 10});
        // `?ping=true`: refused with the guard's message, not the internal body.
        let (status, body) = svc
            .call(
                "POST",
                "/v1/tenants/evil/connectors?ping=true",
                Some(&token),
                Some(json!({"id": format!("probe{i}"), "plugin": "feed", "config": config})),
            )
            .await;
        let text = body.to_string();
        assert!((400..500).contains(&status), "{host}: {status} {text}");
        assert!(
            text.contains("refused: ") && text.contains("(http.allow_private)"),
            "{host}: {text}"
        );
        assert!(!text.contains("INTERNAL-SECRET"), "{host}: {text}");
        // Created without a ping, its sync fails with the same refusal.
        let id = format!("sync{i}");
        let (status, body) = svc
            .call(
                "POST",
                "/v1/tenants/evil/connectors",
                Some(&token),
                Some(json!({"id": id, "plugin": "feed", "config": config})),
            )
            .await;
        assert_eq!(status, 201, "{host}: {body}");
        let job = svc.sync("evil", &token, &id, "full").await;
        let job = svc.wait("evil", &token, &job).await;
        let text = job.to_string();
        assert_eq!(job["status"], "failed", "{host}: {text}");
        assert!(
            text.contains("refused: ") && text.contains("(http.allow_private)"),
            "{host}: {text}"
        );
        assert!(!text.contains("INTERNAL-SECRET"), "{host}: {text}");
    }
    assert_eq!(
        internal.connections(),
        0,
        "the internal service accepted a connection"
    );

    // The loopback service the operator allowed is reachable, and only it.
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/evil/connectors?ping=true",
            Some(&token),
            Some(
                json!({"id": "allowed", "plugin": "feed", "config": {"base_url": feed.base_url()}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let job = svc.sync("evil", &token, "allowed", "full").await;
    assert_eq!(svc.wait("evil", &token, &job).await["status"], "succeeded");
    assert_eq!(internal.connections(), 0);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_host_must_not_trust_its_plugins_loopback_literals() {
    // The CLI's policy lets a plugin's allowlist name loopback literals; a service refuses to
    // open on such a host, so a tenant can never inherit it.
    let dir = tempfile::tempdir().unwrap();
    let mut config = tributary_host::HostConfig {
        data_dir: dir.path().join("data"),
        cache_dir: Some(crate::support::shared_cache()),
        ..tributary_host::HostConfig::default()
    };
    config.service.insert("admin_token".into(), ADMIN.into());
    config.http.private_access = tributary_host::net::PrivateAccess::NamedLiterals;
    let host = std::sync::Arc::new(tributary_host::Host::open(config).await.unwrap());
    let err = tributary_host::serve::Service::open(host, None)
        .await
        .err()
        .expect("the service refuses the CLI's network policy")
        .to_string();
    assert!(err.contains("[http] allow_private"), "{err}");
}
