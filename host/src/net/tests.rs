//! Tests of the allowlist, the address guard and the client.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};

use url::Url;

use super::allowlist::{PRIVATE_MARKER, screen};
use super::*;
use crate::bindings::http::{HttpError, Method, Request};

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn allowlist_matches_host_and_port() {
    let list = Allowlist::parse(&[
        "api.dropboxapi.com".into(),
        "127.0.0.1:8080".into(),
        "https://Content.Example.com".into(),
    ])
    .unwrap();
    assert!(
        list.check(&url("https://api.dropboxapi.com/2/files"))
            .is_ok()
    );
    assert!(list.check(&url("https://content.example.com/x")).is_ok());
    assert!(list.check(&url("http://127.0.0.1:8080/2/")).is_ok());
    // Another port of an allowed host, a look-alike host, another scheme.
    let err = list.check(&url("http://127.0.0.1:9090/")).unwrap_err();
    assert!(
        err.contains("`127.0.0.1:9090` is not in this plugin's allowed hosts"),
        "{err}"
    );
    assert!(
        list.check(&url("https://api.dropboxapi.com:8443/"))
            .is_err()
    );
    assert!(
        list.check(&url("https://api.dropboxapi.com.evil.net/"))
            .is_err()
    );
    assert!(list.check(&url("file:///etc/passwd")).is_err());
    assert!(Allowlist::parse(&["*.box.com".into()]).is_err());
    // IPv6 entries are listed in brackets, so the list parses again.
    let v6 = Allowlist::parse(&["[::1]:8080".into(), "[fd00::1]".into()]).unwrap();
    assert_eq!(v6.hosts(), ["[::1]:8080", "[fd00::1]"]);
    assert_eq!(Allowlist::parse(&v6.hosts()).unwrap().hosts(), v6.hosts());
    assert!(v6.check(&url("http://[::1]:8080/")).is_ok());
}

#[test]
fn private_addresses_are_not_public() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ] {
        assert!(!is_public(ip.parse().unwrap()), "{ip}");
    }
    for ip in ["8.8.8.8", "2606:4700::1111", "162.125.1.1"] {
        assert!(is_public(ip.parse().unwrap()), "{ip}");
    }
}

fn request(url: &str) -> Request {
    Request {
        method: Method::Get,
        url: url.into(),
        headers: vec![],
        body: None,
        timeout_ms: Some(5_000),
    }
}

#[tokio::test]
async fn redirects_are_rechecked_and_bodies_bounded() {
    use axum::response::Redirect;
    use axum::routing::get;
    let other = tributary_fakes::FakeServer::start(
        axum::Router::new().route("/secret", get(|| async { "secret" })),
    )
    .await
    .unwrap();
    let target = format!("{}/secret", other.url());
    let server = tributary_fakes::FakeServer::start(
        axum::Router::new()
            .route("/ok", get(|| async { "hello" }))
            .route("/big", get(|| async { "x".repeat(10_000) }))
            .route("/inside", get(|| async { Redirect::temporary("/ok") }))
            .route(
                "/outside",
                get(move || async move { Redirect::temporary(&target) }),
            ),
    )
    .await
    .unwrap();
    let engine = HttpEngine::new(HttpConfig::default()).unwrap();
    let allow = Allowlist::parse(&[server.addr().to_string()]).unwrap();
    let ok = engine
        .execute(
            &allow,
            &request(&format!("{}/inside", server.url())),
            1 << 20,
        )
        .await
        .unwrap();
    assert_eq!((ok.status, &ok.body[..]), (200, &b"hello"[..]));
    let denied = engine
        .execute(
            &allow,
            &request(&format!("{}/outside", server.url())),
            1 << 20,
        )
        .await;
    assert!(
        matches!(denied, Err(HttpError::Denied(ref m)) if m.contains(&other.addr().to_string())),
        "{denied:?}"
    );
    let big = engine
        .execute(&allow, &request(&format!("{}/big", server.url())), 100)
        .await;
    assert!(matches!(big, Err(HttpError::TooLarge(100))), "{big:?}");
}

/// Redirect targets are server-controlled: scheme-relative, backslashed, credentialed,
/// non-HTTP and malformed locations never reach anything but allowlisted hosts.
#[tokio::test]
async fn hostile_redirect_locations_stay_in_the_allowlist() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let other = tributary_fakes::FakeServer::start(axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "secret" }
    }))
    .await
    .unwrap();
    let o = other.addr();
    let server = tributary_fakes::FakeServer::start(axum::Router::new().route(
        "/to",
        axum::routing::get(
            |axum::extract::Query(q): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| async move {
                (
                    axum::http::StatusCode::FOUND,
                    [(
                        reqwest::header::LOCATION,
                        q.get("l").cloned().unwrap_or_default(),
                    )],
                )
            },
        ),
    ))
    .await
    .unwrap();
    let engine = HttpEngine::new(HttpConfig::default()).unwrap();
    let allow = Allowlist::parse(&[server.addr().to_string()]).unwrap();
    for location in [
        format!("//{o}/x"),
        format!("http://{o}/x"),
        format!("http:\\\\{o}\\x"),
        format!("http://{}@{o}/x", server.addr()),
        format!("http://{o}#@{}/x", server.addr()),
        format!("HTTP://{o}/x"),
        "file:///etc/passwd".to_string(),
        "javascript:alert(1)".to_string(),
        "http://[::1".to_string(),
        "http://".to_string(),
    ] {
        let url = format!(
            "{}/to?l={}",
            server.url(),
            url::form_urlencoded::byte_serialize(location.as_bytes()).collect::<String>()
        );
        let outcome = engine.execute(&allow, &request(&url), 1024).await;
        assert!(
            matches!(
                outcome,
                Err(HttpError::Denied(_)) | Err(HttpError::Connection(_))
            ),
            "{location}: {outcome:?}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a redirect left the allowlist"
    );
}

#[test]
fn names_resolving_to_private_addresses_are_screened() {
    let loopback: Vec<SocketAddr> = vec!["127.0.0.1:80".parse().unwrap()];
    let mixed: Vec<SocketAddr> = vec![
        "10.0.0.5:80".parse().unwrap(),
        "8.8.8.8:80".parse().unwrap(),
    ];
    let err = screen("internal.example", loopback.clone(), false).unwrap_err();
    assert!(err.contains("private or loopback"), "{err}");
    assert_eq!(
        screen("localhost", loopback.clone(), false).unwrap(),
        loopback
    );
    assert_eq!(
        screen("internal.example", loopback.clone(), true).unwrap(),
        loopback
    );
    assert_eq!(
        screen("api.example", mixed, false).unwrap(),
        vec!["8.8.8.8:80".parse::<SocketAddr>().unwrap()]
    );
}

#[tokio::test]
async fn static_hosts_are_screened_like_dns_answers() {
    let server = tributary_fakes::FakeServer::start(
        axum::Router::new().route("/", axum::routing::get(|| async { "internal" })),
    )
    .await
    .unwrap();
    let port = server.addr().port();
    let config = |allow_private_networks| HttpConfig {
        allow_private_networks,
        static_hosts: [("Internal.Example".to_string(), vec![server.addr().ip()])].into(),
        ..HttpConfig::default()
    };
    let allow = Allowlist::parse(&[format!("internal.example:{port}")]).unwrap();
    let url = format!("http://internal.example:{port}/");
    // The name resolves (statically) to loopback: refused after resolution.
    let refused = HttpEngine::new(config(false))
        .unwrap()
        .execute(&allow, &request(&url), 1024)
        .await;
    assert!(
        matches!(refused, Err(HttpError::Denied(ref m)) if m.contains("private or loopback")),
        "{refused:?}"
    );
    // The same mapping is reachable when the operator allows private networks.
    let reached = HttpEngine::new(config(true))
        .unwrap()
        .execute(&allow, &request(&url), 1024)
        .await
        .unwrap();
    assert_eq!(&reached.body[..], b"internal");
}

#[tokio::test]
async fn explicit_localhost_is_reachable() {
    let server = tributary_fakes::FakeServer::start(
        axum::Router::new().route("/", axum::routing::get(|| async { "hi" })),
    )
    .await
    .unwrap();
    let port = server.addr().port();
    let engine = HttpEngine::new(HttpConfig::default()).unwrap();
    let allow = Allowlist::parse(&[format!("localhost:{port}")]).unwrap();
    let named = engine
        .execute(&allow, &request(&format!("http://localhost:{port}/")), 1024)
        .await
        .unwrap();
    assert_eq!(&named.body[..], b"hi");
}

/// Property tests: allowlists come from plugins, URLs and redirect targets from plugins and
/// servers, resolved addresses from DNS.
mod props {
    use proptest::prelude::*;

    use super::*;

    fn host_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,3}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            Just("[::1]".to_string()),
        ]
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u16; 8]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Parsing any list and checking any URL never panics.
        #[test]
        fn allowlists_never_panic(
            hosts in prop::collection::vec(prop_oneof![".{0,20}", "[a-z*.:\\[\\]0-9/@]{0,20}"], 0..4),
            url in prop_oneof![".{0,30}", "(http|https|ftp)://[a-z.:@0-9\\[\\]]{0,20}/.{0,5}"],
        ) {
            if let Ok(list) = Allowlist::parse(&hosts)
                && let Ok(url) = Url::parse(&url)
            {
                let _ = list.check(&url);
            }
        }

        /// What an allowlist accepts survives being listed and parsed again, allows exactly its
        /// own hosts (on the stated port, or the default one) and nothing else.
        #[test]
        fn allowlists_round_trip_and_allow_only_their_hosts(
            entries in prop::collection::vec((host_name(), prop::option::of(1u16..)), 1..4),
            other in "[a-z]{1,8}",
            https in any::<bool>(),
        ) {
            let raw: Vec<String> = entries
                .iter()
                .map(|(h, p)| match p {
                    Some(p) => format!("{h}:{p}"),
                    None => h.clone(),
                })
                .collect();
            let Ok(list) = Allowlist::parse(&raw) else {
                return Ok(());
            };
            let again = Allowlist::parse(&list.hosts()).unwrap();
            prop_assert_eq!(again.hosts(), list.hosts());
            let scheme = if https { "https" } else { "http" };
            for entry in &list.entries {
                let shown = if entry.host.contains(':') {
                    format!("[{}]", entry.host)
                } else {
                    entry.host.clone()
                };
                let url = match entry.port {
                    Some(p) => format!("{scheme}://{shown}:{p}/x"),
                    None => format!("{scheme}://{shown}/x"),
                };
                let url = Url::parse(&url).unwrap();
                // An explicit port that is the scheme's default is dropped by the URL parser.
                if entry.port.is_none() || url.port().is_some() {
                    prop_assert!(list.check(&url).is_ok(), "{} refused by {:?}", url, list.hosts());
                }
            }
            let stranger = Url::parse(&format!("{scheme}://{other}.stranger.invalid/")).unwrap();
            prop_assert!(list.check(&stranger).is_err());
            prop_assert!(list.check(&Url::parse("file:///etc/passwd").unwrap()).is_err());
        }

        /// Screening keeps a subset of the addresses: only public ones unless the operator
        /// allows private networks or the name is `localhost`.
        #[test]
        fn screening_keeps_only_public_addresses(
            name in prop_oneof!["[a-z.]{1,12}", Just("localhost".to_string()), Just("LocalHost".to_string())],
            ips in prop::collection::vec(ip(), 0..5),
            allow_private in any::<bool>(),
        ) {
            let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, 443)).collect();
            let explicit = allow_private || name.eq_ignore_ascii_case("localhost");
            match screen(&name, addrs.clone(), allow_private) {
                Ok(kept) => {
                    prop_assert!(!kept.is_empty());
                    prop_assert!(kept.iter().all(|a| addrs.contains(a)));
                    if !explicit {
                        prop_assert!(kept.iter().all(|a| is_public(a.ip())));
                    }
                }
                Err(e) => {
                    prop_assert!(e.contains(PRIVATE_MARKER));
                    prop_assert!(addrs.iter().all(|a| !explicit && !is_public(a.ip())));
                }
            }
        }
    }
}
