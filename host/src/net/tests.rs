//! Tests of the allowlist, the address guard and the client.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};

use url::Url;

use super::address::AddressGuard;
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
fn every_non_public_range_is_classified() {
    use AddressClass::*;
    let cases: &[(&str, AddressClass)] = &[
        ("0.0.0.0", Unspecified),
        ("::", Unspecified),
        ("0.1.2.3", ThisNetwork),
        ("0.255.255.255", ThisNetwork),
        ("127.0.0.1", Loopback),
        ("127.255.255.254", Loopback),
        ("::1", Loopback),
        ("10.0.0.1", Private),
        ("10.255.255.255", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("192.168.0.1", Private),
        ("100.64.0.1", SharedCgnat),
        ("100.127.255.255", SharedCgnat),
        ("169.254.169.254", LinkLocal),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("fc00::1", UniqueLocal),
        ("fd12:3456::1", UniqueLocal),
        ("fec0::1", UniqueLocal),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("ff02::1", Multicast),
        ("255.255.255.255", Broadcast),
        ("192.0.2.1", Documentation),
        ("198.51.100.7", Documentation),
        ("203.0.113.9", Documentation),
        ("2001:db8::1", Documentation),
        ("3fff:0fff::1", Documentation),
        ("198.18.0.1", Benchmarking),
        ("198.19.255.255", Benchmarking),
        ("2001:2::1", Benchmarking),
        ("192.0.0.8", IetfProtocol),
        ("2001:10::1", IetfProtocol),
        ("240.0.0.1", Reserved),
        ("254.1.2.3", Reserved),
        ("192.88.99.1", Reserved),
        ("100::1", Reserved),
        ("64:ff9b:1::a00:1", Reserved),
        ("4000::1", Reserved),
        // IPv4 carried in IPv6: classified by the IPv4 address.
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:169.254.169.254", LinkLocal),
        ("::127.0.0.1", Loopback),
        ("::10.0.0.1", Private),
        ("::ffff:0:192.168.1.1", Private),
        ("64:ff9b::127.0.0.1", Loopback),
        ("64:ff9b::a9fe:a9fe", LinkLocal),
        ("2002:7f00:1::1", Loopback),
        ("2002:a00:1::", Private),
        // Teredo: server 65.54.227.120, client !(0x80ff_fffe) = 127.0.0.1.
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", Loopback),
        // Teredo with a public server and client (!0xf7f7_f7f7 = 8.8.8.8).
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", Public),
    ];
    for (ip, class) in cases {
        assert_eq!(classify(ip.parse().unwrap()), *class, "{ip}");
        assert_eq!(is_public(ip.parse().unwrap()), *class == Public, "{ip}");
    }
    for ip in [
        "8.8.8.8",
        "1.1.1.1",
        "162.125.1.1",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ] {
        assert_eq!(classify(ip.parse().unwrap()), Public, "{ip}");
    }
    assert_eq!(
        Loopback.describe(),
        "a loopback address",
        "errors name the class"
    );
}

#[test]
fn operator_entries_parse_and_match() {
    let entry = |s: &str| s.parse::<AllowedNetwork>().unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let net = entry("10.1.0.0/16");
    assert!(net.contains(ip("10.1.2.3"), Some(443)) && net.contains(ip("10.1.2.3"), None));
    assert!(!net.contains(ip("10.2.0.1"), Some(443)));
    // An IPv4-mapped address is the IPv4 address it carries.
    assert!(net.contains(ip("::ffff:10.1.2.3"), Some(80)));
    let one = entry("127.0.0.1:9200");
    assert!(one.contains(ip("127.0.0.1"), Some(9200)));
    assert!(!one.contains(ip("127.0.0.1"), Some(9201)));
    assert!(!one.contains(ip("127.0.0.1"), None));
    assert!(entry("[::1]:8080").contains(ip("::1"), Some(8080)));
    assert!(entry("fd00::/8").contains(ip("fd12::1"), Some(1)));
    // Host bits are dropped; entries print back as written (normalised).
    for (raw, shown) in [
        ("10.1.2.3/16", "10.1.0.0/16"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        (" 127.0.0.1:9200 ", "127.0.0.1:9200"),
        ("[::1]:8080", "[::1]:8080"),
        ("fd00::/8", "fd00::/8"),
    ] {
        assert_eq!(entry(raw).to_string(), shown, "{raw}");
        assert_eq!(entry(shown), entry(raw));
    }
    for bad in [
        "localhost",
        "10.0.0.0/33",
        "127.0.0.1:0",
        "*",
        "",
        "http://127.0.0.1",
    ] {
        let err = bad.parse::<AllowedNetwork>().unwrap_err();
        assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
    }
    // In the configuration file, a bad entry is an error naming it.
    let err = toml::from_str::<HttpConfig>("allow_private = [\"10.0.0.0/8\", \"intranet\"]")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`intranet` is not a network"), "{err}");
    let ok: HttpConfig = toml::from_str("allow_private = [\"10.0.0.0/8\", \"[::1]:80\"]").unwrap();
    assert_eq!(ok.allow_private, [entry("10.0.0.0/8"), entry("[::1]:80")]);
    // The file cannot grant what only the CLI grants.
    assert!(toml::from_str::<HttpConfig>("private_access = \"NamedLiterals\"").is_err());
    assert_eq!(ok.private_access, PrivateAccess::OperatorOnly);
}

/// Every spelling of a non-public address the URL parser accepts is refused by the guard before
/// a socket exists (pure: nothing is sent anywhere).
#[test]
fn ip_literals_are_refused_in_every_spelling() {
    let strict = guard(&[], PrivateAccess::OperatorOnly);
    for (spelling, address, class) in [
        ("http://127.0.0.1/", "127.0.0.1", "a loopback address"),
        ("http://2130706433/", "127.0.0.1", "a loopback address"),
        ("http://0x7f.1/", "127.0.0.1", "a loopback address"),
        ("http://0x7f000001/", "127.0.0.1", "a loopback address"),
        ("http://0177.0.0.1/", "127.0.0.1", "a loopback address"),
        ("http://127.1/", "127.0.0.1", "a loopback address"),
        ("http://[::1]/", "::1", "a loopback address"),
        (
            "http://[::ffff:127.0.0.1]/",
            "::ffff:127.0.0.1",
            "a loopback address",
        ),
        (
            "http://[::ffff:7f00:1]/",
            "::ffff:127.0.0.1",
            "a loopback address",
        ),
        ("http://[::127.0.0.1]/", "::7f00:1", "a loopback address"),
        ("http://0.0.0.0/", "0.0.0.0", "the unspecified address"),
        ("http://0/", "0.0.0.0", "the unspecified address"),
        ("http://[::]/", "::", "the unspecified address"),
        ("http://10.0.0.1/", "10.0.0.1", "a private address"),
        ("http://0xa.1/", "10.0.0.1", "a private address"),
        ("https://172.16.0.1/", "172.16.0.1", "a private address"),
        ("http://192.168.1.1/", "192.168.1.1", "a private address"),
        (
            "http://100.64.0.1/",
            "100.64.0.1",
            "a carrier-grade NAT address",
        ),
        (
            "http://169.254.169.254/",
            "169.254.169.254",
            "a link-local address",
        ),
        (
            "http://2852039166/",
            "169.254.169.254",
            "a link-local address",
        ),
        ("http://[fe80::1]/", "fe80::1", "a link-local address"),
        ("http://[fd00::1]/", "fd00::1", "a unique-local address"),
        ("http://224.0.0.1/", "224.0.0.1", "a multicast address"),
        (
            "http://255.255.255.255/",
            "255.255.255.255",
            "the broadcast address",
        ),
        ("http://192.0.2.1/", "192.0.2.1", "a documentation address"),
        (
            "http://[2001:db8::1]/",
            "2001:db8::1",
            "a documentation address",
        ),
        ("http://198.18.0.1/", "198.18.0.1", "a benchmarking address"),
        ("http://240.0.0.1/", "240.0.0.1", "a reserved address"),
        ("http://192.0.0.1/", "192.0.0.1", "an IETF protocol address"),
        (
            "http://[64:ff9b::7f00:1]/",
            "64:ff9b::7f00:1",
            "a loopback address",
        ),
        (
            "http://[2002:7f00:1::]/",
            "2002:7f00:1::",
            "a loopback address",
        ),
    ] {
        let refused = strict.check_literal(&url(spelling)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "refused: {address} is {class}; the operator has not allowed it \
                 (http.allow_private)"
            ),
            "{spelling}"
        );
    }
    // A name is left to the resolver; a public literal passes.
    assert!(strict.check_literal(&url("http://localhost/")).is_ok());
    assert!(strict.check_literal(&url("https://162.125.1.1/")).is_ok());
    // The operator's entry allows the address in every spelling, on its port only.
    let operator = guard(&["127.0.0.1:8080"], PrivateAccess::OperatorOnly);
    for spelling in [
        "http://127.0.0.1:8080/",
        "http://2130706433:8080/",
        "http://0x7f.1:8080/",
        "http://[::ffff:127.0.0.1]:8080/",
    ] {
        assert!(operator.check_literal(&url(spelling)).is_ok(), "{spelling}");
    }
    assert!(
        operator
            .check_literal(&url("http://127.0.0.1:8081/"))
            .is_err()
    );
    assert!(operator.check_literal(&url("http://127.0.0.1/")).is_err());
    assert!(operator.check_literal(&url("http://[::1]:8080/")).is_err());
    // The CLI trusts a literal its user's allowlist names (the allowlist is checked first).
    let cli = guard(&[], PrivateAccess::NamedLiterals);
    assert!(cli.check_literal(&url("http://127.0.0.1:8080/")).is_ok());
}

/// The engine's settings with the operator allowing the loopback test servers' address.
fn loopback_allowed() -> HttpConfig {
    HttpConfig {
        allow_private: vec!["127.0.0.1".parse().unwrap()],
        ..HttpConfig::default()
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
    let engine = HttpEngine::new(loopback_allowed()).unwrap();
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

/// A body is read through one fixed buffer per connection: however fast the server sends and
/// however many pieces the reader still holds, no piece is larger than the buffer (hyper's
/// adaptive buffer grew to ~400 KiB, each a fresh allocation while the last piece was held).
#[tokio::test]
async fn body_pieces_never_exceed_the_fixed_read_buffer() {
    use axum::routing::get;
    let payload: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let served = bytes::Bytes::from(payload.clone());
    let server = tributary_fakes::FakeServer::start(
        axum::Router::new().route("/big", get(move || async move { served.clone() })),
    )
    .await
    .unwrap();
    let engine = HttpEngine::new(loopback_allowed()).unwrap();
    let allow = Allowlist::parse(&[server.addr().to_string()]).unwrap();
    let mut open = engine
        .open(&allow, &request(&format!("{}/big", server.url())), 16 << 20)
        .await
        .unwrap();
    assert_eq!(open.body.declared_len(), Some(8 << 20));
    let mut held = Vec::new();
    while let Some(piece) = open.body.chunk().await.unwrap() {
        held.push(piece);
        // A slow reader: the socket fills up between reads, so every read could fill any buffer.
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
    let largest = held.iter().map(|p| p.len()).max().unwrap();
    assert!(
        largest <= super::client::READ_BUFFER_BYTES,
        "a piece of {largest} bytes"
    );
    assert_eq!(held.concat(), payload);
}

/// `https` is TLS with the certificate checked against the webpki roots: a loopback server
/// with a self-signed certificate (`testdata/`, made for this test; its key protects nothing)
/// gets a TLS handshake, which the client ends on the certificate, and never a request.
#[tokio::test]
async fn https_checks_the_server_certificate() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(include_bytes!("testdata/self-signed.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/self-signed.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.map(|_| ())
    });
    let engine = HttpEngine::new(loopback_allowed()).unwrap();
    let allow = Allowlist::parse(&[addr.to_string()]).unwrap();
    let result = engine
        .execute(&allow, &request(&format!("https://{addr}/")), 1024)
        .await;
    assert!(
        matches!(result, Err(HttpError::Connection(ref m)) if m.contains("certificate")),
        "{result:?}"
    );
    // The server read a TLS handshake (a plain-text request would not parse as one), and it
    // did not complete.
    let handshake = server.await.unwrap().unwrap_err();
    assert!(
        handshake
            .to_string()
            .to_ascii_lowercase()
            .contains("certificate"),
        "{handshake}"
    );
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
                        axum::http::header::LOCATION,
                        q.get("l").cloned().unwrap_or_default(),
                    )],
                )
            },
        ),
    ))
    .await
    .unwrap();
    let engine = HttpEngine::new(loopback_allowed()).unwrap();
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

fn guard(allowed: &[&str], access: PrivateAccess) -> AddressGuard {
    AddressGuard {
        allowed: allowed.iter().map(|a| a.parse().unwrap()).collect(),
        access,
    }
}

#[test]
fn names_resolving_to_private_addresses_are_screened() {
    let loopback: Vec<SocketAddr> = vec!["127.0.0.1:80".parse().unwrap()];
    let mixed: Vec<SocketAddr> = vec![
        "10.0.0.5:80".parse().unwrap(),
        "8.8.8.8:80".parse().unwrap(),
    ];
    let strict = guard(&[], PrivateAccess::OperatorOnly);
    let err = strict
        .screen("internal.example", loopback.clone(), Some(80))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused: `internal.example` resolves to 127.0.0.1, a loopback address; the operator \
         has not allowed it (http.allow_private)"
    );
    // `localhost` is a name like any other for the service…
    assert!(
        strict
            .screen("localhost", loopback.clone(), Some(80))
            .is_err()
    );
    // …and the user's own choice in the CLI.
    let cli = guard(&[], PrivateAccess::NamedLiterals);
    assert_eq!(
        cli.screen("LocalHost", loopback.clone(), Some(80)).unwrap(),
        loopback
    );
    assert!(
        cli.screen("internal.example", loopback.clone(), Some(80))
            .is_err()
    );
    let operator = guard(&["127.0.0.0/8"], PrivateAccess::OperatorOnly);
    assert_eq!(
        operator
            .screen("internal.example", loopback.clone(), Some(80))
            .unwrap(),
        loopback
    );
    assert_eq!(
        strict.screen("api.example", mixed, Some(80)).unwrap(),
        vec!["8.8.8.8:80".parse::<SocketAddr>().unwrap()]
    );
    // An entry with a port allows that port only; a resolver that does not know its port
    // (`None`) never matches one.
    let one_port = guard(&["127.0.0.1:8080"], PrivateAccess::OperatorOnly);
    assert!(one_port.screen("svc", loopback.clone(), Some(8080)).is_ok());
    assert!(
        one_port
            .screen("svc", loopback.clone(), Some(8081))
            .is_err()
    );
    assert!(one_port.screen("svc", loopback, None).is_err());
}

#[tokio::test]
async fn static_hosts_are_screened_like_dns_answers() {
    let server = counting_server("internal").await;
    let port = server.addr().port();
    let config = |allow_private: &[&str]| HttpConfig {
        allow_private: allow_private.iter().map(|a| a.parse().unwrap()).collect(),
        static_hosts: [("Internal.Example".to_string(), vec![server.addr().ip()])].into(),
        ..HttpConfig::default()
    };
    let allow = Allowlist::parse(&[format!("internal.example:{port}")]).unwrap();
    let url = format!("http://internal.example:{port}/");
    // The name resolves (statically: a rebinding DNS answer) to loopback: refused after
    // resolution, before connecting — also when only another port of it is allowed.
    for operator in [&[][..], &["127.0.0.1:1"][..], &["10.0.0.0/8"][..]] {
        let refused = HttpEngine::new(config(operator))
            .unwrap()
            .execute(&allow, &request(&url), 1024)
            .await;
        assert!(
            matches!(refused, Err(HttpError::Denied(ref m))
                if m.contains("`internal.example` resolves to 127.0.0.1, a loopback address")
                    && m.contains("(http.allow_private)")),
            "{operator:?}: {refused:?}"
        );
    }
    assert_eq!(server.connections(), 0, "a refused name was connected to");
    // The same mapping is reachable when the operator allows that address, or that port of it.
    let allowed_port = format!("127.0.0.1:{port}");
    for operator in [&["127.0.0.0/8"][..], &[allowed_port.as_str()][..]] {
        let reached = HttpEngine::new(config(operator))
            .unwrap()
            .execute(&allow, &request(&url), 1024)
            .await
            .unwrap();
        assert_eq!(&reached.body[..], b"internal");
    }
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn localhost_is_reachable_only_when_the_cli_user_or_the_operator_names_it() {
    let server = counting_server("hi").await;
    let port = server.addr().port();
    let allow = Allowlist::parse(&[format!("localhost:{port}")]).unwrap();
    let url = format!("http://localhost:{port}/");
    let refused = HttpEngine::new(HttpConfig::default())
        .unwrap()
        .execute(&allow, &request(&url), 1024)
        .await;
    assert!(
        matches!(refused, Err(HttpError::Denied(ref m)) if m.contains("`localhost` resolves to")),
        "{refused:?}"
    );
    assert_eq!(server.connections(), 0);
    let cli = HttpEngine::new(HttpConfig {
        private_access: PrivateAccess::NamedLiterals,
        ..HttpConfig::default()
    })
    .unwrap();
    let named = cli.execute(&allow, &request(&url), 1024).await.unwrap();
    assert_eq!(&named.body[..], b"hi");
}

/// A loopback server answering `body` to anything; it counts accepted connections.
async fn counting_server(body: &'static str) -> tributary_fakes::FakeServer {
    tributary_fakes::FakeServer::start(axum::Router::new().fallback(move || async move { body }))
        .await
        .unwrap()
}

/// Through the engine: every spelling of the loopback server's address is refused, and the
/// server accepted no connection — the refusal came before a socket was opened.
#[tokio::test]
async fn loopback_spellings_are_refused_before_connecting() {
    let server = counting_server("internal").await;
    let port = server.addr().port();
    let engine = HttpEngine::new(HttpConfig::default()).unwrap();
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "0.0.0.0",
        "0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::127.0.0.1]",
        "localhost",
    ] {
        let target = format!("http://{host}:{port}/secret");
        let allow = Allowlist::parse(&[format!("{host}:{port}")]).unwrap();
        let refused = engine.execute(&allow, &request(&target), 1024).await;
        assert!(
            matches!(refused, Err(HttpError::Denied(ref m))
                if m.starts_with("refused: ") && m.ends_with("(http.allow_private)")),
            "{host}: {refused:?}"
        );
    }
    assert_eq!(
        server.connections(),
        0,
        "a refused address was connected to"
    );
    // The operator's entry opens exactly that port of it, in any spelling.
    let operator = HttpEngine::new(HttpConfig {
        allow_private: vec![format!("127.0.0.1:{port}").parse().unwrap()],
        ..HttpConfig::default()
    })
    .unwrap();
    let target = format!("http://2130706433:{port}/");
    let allow = Allowlist::parse(&[format!("127.0.0.1:{port}")]).unwrap();
    let reached = operator
        .execute(&allow, &request(&target), 1024)
        .await
        .unwrap();
    assert_eq!(&reached.body[..], b"internal");
    assert_eq!(server.connections(), 1);
}

/// A redirect from a loopback server the operator allows to another loopback port it does not
/// allow — in the plugin's allowlist, so only the address guard stands in the way — is refused
/// before connecting, in any spelling.
#[tokio::test]
async fn redirects_to_addresses_the_operator_did_not_allow_are_refused() {
    use axum::response::Redirect;
    use axum::routing::get;
    let internal = counting_server("internal").await;
    let i = internal.addr().port();
    let front = tributary_fakes::FakeServer::start(
        axum::Router::new()
            .route(
                "/plain",
                get(move || async move { Redirect::temporary(&format!("http://127.0.0.1:{i}/")) }),
            )
            .route(
                "/decimal",
                get(move || async move { Redirect::temporary(&format!("http://2130706433:{i}/")) }),
            )
            .route(
                "/mapped",
                get(move || async move {
                    Redirect::temporary(&format!("http://[::ffff:127.0.0.1]:{i}/"))
                }),
            ),
    )
    .await
    .unwrap();
    let engine = HttpEngine::new(HttpConfig {
        allow_private: vec![
            format!("127.0.0.1:{}", front.addr().port())
                .parse()
                .unwrap(),
        ],
        ..HttpConfig::default()
    })
    .unwrap();
    let allow = Allowlist::parse(&[
        front.addr().to_string(),
        format!("127.0.0.1:{i}"),
        format!("[::ffff:127.0.0.1]:{i}"),
    ])
    .unwrap();
    for path in ["/plain", "/decimal", "/mapped"] {
        let refused = engine
            .execute(&allow, &request(&format!("{}{path}", front.url())), 1024)
            .await;
        assert!(
            matches!(refused, Err(HttpError::Denied(ref m)) if m.contains("is a loopback address")),
            "{path}: {refused:?}"
        );
    }
    assert!(front.connections() >= 1, "the allowed server was reached");
    assert_eq!(
        internal.connections(),
        0,
        "the redirect target was connected to"
    );
}

/// The host's own content downloads (the pipeline's fetches, `extract.fetch-text`) go through
/// the same guard: a content URL at a loopback port the operator did not allow fails at once,
/// without retries and without a connection.
#[tokio::test]
async fn content_downloads_are_guarded_like_plugin_requests() {
    let internal = counting_server("internal").await;
    let port = internal.addr().port();
    let engine = Arc::new(HttpEngine::new(HttpConfig::default()).unwrap());
    for host in ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]"] {
        let allow = Allowlist::parse(&[format!("{host}:{port}")]).unwrap();
        let egress = Egress::with_allowlist(engine.clone(), allow);
        let content = crate::bindings::index::ContentRequest {
            request: request(&format!("http://{host}:{port}/file.pdf")),
            file_name: "file.pdf".into(),
            mime_type: None,
            size: None,
            max_bytes: 1 << 20,
            retries: 10,
        };
        let outcome = download(&egress, &content, 1 << 20, &RetryPolicy::default()).await;
        assert!(
            matches!(outcome, Err(DownloadError::Failed { status: None, ref message })
                if message.starts_with("refused: ") && message.contains("a loopback address")
                    && !message.contains("attempt")),
            "{host}: {outcome:?}"
        );
    }
    assert_eq!(internal.connections(), 0);
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

        /// Screening keeps a subset of the addresses: public ones, those the operator's entries
        /// name (on their port), or all of them for `localhost` in the CLI only.
        #[test]
        fn screening_keeps_only_admitted_addresses(
            name in prop_oneof!["[a-z.]{1,12}", Just("localhost".to_string()), Just("LocalHost".to_string())],
            ips in prop::collection::vec(ip(), 0..5),
            entries in prop::collection::vec((ip(), 0u8..=128, prop::option::of(1u16..4)), 0..3),
            port in prop::option::of(1u16..4),
            cli in any::<bool>(),
        ) {
            let allowed: Vec<AllowedNetwork> = entries
                .iter()
                .filter_map(|(ip, len, port)| {
                    let net = ipnet::IpNet::new(*ip, (*len).min(if ip.is_ipv4() { 32 } else { 128 })).ok()?;
                    Some(AllowedNetwork { net: net.trunc(), port: *port })
                })
                .collect();
            let access = if cli { PrivateAccess::NamedLiterals } else { PrivateAccess::OperatorOnly };
            let guard = AddressGuard { allowed: allowed.clone(), access };
            let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
            let trusted = cli && name.eq_ignore_ascii_case("localhost");
            let admitted = |a: &SocketAddr| {
                is_public(a.ip()) || allowed.iter().any(|e| e.contains(a.ip(), port))
            };
            match guard.screen(&name, addrs.clone(), port) {
                Ok(kept) => {
                    prop_assert!(kept.iter().all(|a| addrs.contains(a)));
                    if !trusted {
                        prop_assert!(kept.iter().all(admitted));
                        prop_assert_eq!(kept.len(), addrs.iter().filter(|a| admitted(a)).count());
                    }
                }
                Err(refused) => {
                    prop_assert!(!trusted);
                    prop_assert!(addrs.iter().all(|a| !admitted(a)));
                    prop_assert!(refused.to_string().contains("(http.allow_private)"));
                    prop_assert!(!is_public(refused.address));
                }
            }
        }
    }
}
