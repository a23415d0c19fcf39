//! A hostile plugin: the attacks of `tests/hostile/`, one per `attack` setting, against every
//! capability the host offers and every limit it enforces.
//!
//! `attack` picks what `full-sync` (and `incremental-sync`) does; `panic_in` names an export that
//! panics (aborts) as soon as it is called. The manifest itself is picked by [`MANIFEST_MODE`],
//! which the tests rewrite in the component's bytes (same length) to produce components with a
//! malformed, panicking or looping `manifest` export.
//!
//! An attack that *succeeds* returns `other("LEAK: …")` (or `Ok`), so a test that sees the
//! sandbox fail cannot pass by accident.

use std::time::Duration;

use serde_json::{Value, json};
use tributary_sdk::config::Config;
use tributary_sdk::docs::Document;
use tributary_sdk::outbox::Outbox;
use tributary_sdk::tributary::connector::{extract, http, index, log, storage};
use tributary_sdk::{
    ConfigField, Error, Features, FieldKind, Manifest, Plugin, Result, RuleError, SyncRequest,
};

struct Hostile;

/// Which manifest to return: `hostile-manifest-mode:<mode>` padded with dots to 48 bytes. The
/// tests replace it in the component bytes; `black_box` keeps it a real byte array in memory.
static MANIFEST_MODE: [u8; 48] = *b"hostile-manifest-mode:valid.....................";

fn manifest_mode() -> String {
    let bytes: &[u8; 48] = std::hint::black_box(&MANIFEST_MODE);
    String::from_utf8_lossy(bytes)
        .trim_start_matches("hostile-manifest-mode:")
        .trim_end_matches('.')
        .to_string()
}

fn field(key: &str, kind: FieldKind) -> ConfigField {
    tributary_sdk::schema::bare(key, key, kind)
}

/// Panics (the release profile aborts) when `panic_in` names `export`.
#[allow(clippy::panic)]
fn maybe_panic(config: &str, export: &str) {
    let named = serde_json::from_str::<Value>(config).ok().and_then(|c| {
        c.get("panic_in")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    if named.as_deref() == Some(export) {
        panic!("hostile plugin panics in {export}");
    }
}

fn leak(what: impl std::fmt::Display) -> Error {
    Error::Other(format!("LEAK: {what}"))
}

/// Recursion without locals in linear memory: exhausts the engine's own (native) wasm stack.
#[inline(never)]
fn dive(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    // `black_box` keeps the call out of tail position (no loop conversion).
    std::hint::black_box(dive(depth + 1)).wrapping_add(depth)
}

/// Recursion with a large frame in linear memory: exhausts the guest's shadow stack first.
#[inline(never)]
fn recurse(depth: u64, trail: &mut [u64; 16]) -> u64 {
    trail[(depth % 16) as usize] = depth;
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let mut local = [depth; 32];
    std::hint::black_box(&mut local);
    recurse(depth + 1, trail).wrapping_add(local[(depth % 32) as usize])
}

fn raw_request(url: &str, timeout_ms: Option<u32>) -> http::Request {
    http::Request {
        method: http::Method::Get,
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout_ms,
    }
}

/// One GET through the host, with the host's error variant in the message.
fn fetch(url: &str, timeout_ms: Option<u32>) -> Result<()> {
    match http::send(&raw_request(url, timeout_ms)) {
        Ok(response) => Err(leak(format!(
            "got HTTP {} with {} bytes from {url}",
            response.status,
            response.body.len()
        ))),
        Err(e) => Err(Error::Host(format!("http refused: {e:?}"))),
    }
}

fn doc(id: &str, fields: String, text: Option<String>) -> index::Document {
    index::Document {
        id: id.into(),
        timestamp: Some("2024-01-01T00:00:00Z".into()),
        fields,
        content: text.map(index::Content::Text),
    }
}

fn upsert(docs: &[index::Document]) -> Result<()> {
    index::upsert(docs).map_err(|e| Error::Host(format!("upsert refused: {e:?}")))
}

fn attack(request: &SyncRequest) -> Result<()> {
    let config = Config::parse(&request.config)?;
    let target = config.opt_str("target").unwrap_or_default().to_string();
    let count = config.u64_or("count", 3);
    let size = config.u64_or("size", 0) as usize;
    match config.str("attack")? {
        // Well-behaved: `count` documents (the control case).
        "emit" => {
            let mut out = Outbox::new(50);
            for i in 0..count {
                out.emit(
                    Document::new(format!("doc-{i}"))
                        .timestamp("2024-01-01T00:00:00Z")
                        .field("title", format!("hostile document {i}"))
                        .text(format!("body {i}")),
                )?;
            }
            out.flush()
        }
        "read-file" => {
            let mut seen = Vec::new();
            for path in [target.as_str(), "/etc/passwd", "/proc/self/environ", "."] {
                match std::fs::read(path) {
                    Ok(bytes) => return Err(leak(format!("read {path}: {} bytes", bytes.len()))),
                    Err(e) => seen.push(format!("{path}: {e}")),
                }
            }
            if let Ok(entries) = std::fs::read_dir("/") {
                return Err(leak(format!("listed / ({} entries)", entries.count())));
            }
            Err(Error::Host(format!(
                "file access denied: {}",
                seen.join("; ")
            )))
        }
        "read-env" => {
            let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            let args: Vec<String> = std::env::args().collect();
            if !vars.is_empty() || !args.is_empty() {
                return Err(leak(format!("environment {vars:?}, arguments {args:?}")));
            }
            Err(Error::Host("no environment visible".into()))
        }
        "socket" => {
            let mut refused = Vec::new();
            match std::net::TcpStream::connect(&target) {
                Ok(_) => return Err(leak(format!("TCP connection to {target}"))),
                Err(e) => refused.push(format!("tcp: {e}")),
            }
            match std::net::UdpSocket::bind("0.0.0.0:0") {
                Ok(socket) => match socket.send_to(b"hello", &target) {
                    Ok(n) => return Err(leak(format!("sent {n} UDP bytes to {target}"))),
                    Err(e) => refused.push(format!("udp send: {e}")),
                },
                Err(e) => refused.push(format!("udp: {e}")),
            }
            match std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)) {
                Ok(addrs) => {
                    let addrs: Vec<_> = addrs.collect();
                    if !addrs.is_empty() {
                        return Err(leak(format!("resolved localhost to {addrs:?}")));
                    }
                }
                Err(e) => refused.push(format!("dns: {e}")),
            }
            Err(Error::Host(format!(
                "sockets denied: {}",
                refused.join("; ")
            )))
        }
        "fetch" => fetch(&target, Some(10_000)),
        // Asks for the longest time limit there is from a server that never finishes.
        "trickle" => fetch(&target, Some(u32::MAX)),
        "spin" => {
            let mut x: u64 = 1;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "recurse" => Err(leak(format!("recursion returned {}", dive(0)))),
        "recurse-frames" => {
            let mut trail = [0u64; 16];
            let depth = recurse(0, &mut trail);
            Err(leak(format!("recursion returned {depth}")))
        }
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1024 * 1024]);
                std::hint::black_box(&hoard);
            }
        }
        "huge-alloc" => {
            let block = vec![7u8; size];
            std::hint::black_box(&block);
            Err(leak(format!("allocated {} bytes at once", block.len())))
        }
        // A document whose text is `size` bytes (1 GB in the test): built in guest memory first.
        "giant-doc" => {
            let text = "x".repeat(size);
            upsert(&[doc(
                "giant",
                json!({"title": "giant"}).to_string(),
                Some(text),
            )])?;
            Err(leak(format!("indexed a document of {size} bytes")))
        }
        // `count` small documents in batches of 10; `size` bytes of text each.
        "doc-flood" | "doc-flood-ignoring-errors" => {
            let ignore = config.str("attack")? == "doc-flood-ignoring-errors";
            let mut refused = None;
            let ids: Vec<String> = (0..count).map(|i| format!("flood-{i}")).collect();
            for chunk in ids.chunks(10) {
                let batch: Vec<index::Document> = chunk
                    .iter()
                    .map(|id| doc(id, json!({"title": id}).to_string(), Some("y".repeat(size))))
                    .collect();
                if let Err(e) = upsert(&batch) {
                    if !ignore {
                        return Err(e);
                    }
                    refused.get_or_insert(e);
                }
            }
            // Ignoring the refusal: pretend everything went fine.
            Ok(())
        }
        "storage-value-bomb" => {
            storage::set("bomb", &vec![0u8; size])
                .map_err(|e| Error::Host(format!("storage refused: {e:?}")))?;
            Err(leak(format!("stored a value of {size} bytes")))
        }
        "storage-key-bomb" => {
            for i in 0..count {
                storage::set(&format!("key-{i:08}"), b"x")
                    .map_err(|e| Error::Host(format!("storage refused key {i}: {e:?}")))?;
            }
            Err(leak(format!("stored {count} keys")))
        }
        "storage-escape" => storage_escape(&target),
        "id-escape" => id_escape(&target),
        "invalid-utf8" => invalid_utf8(),
        "oversized-id" => {
            let id = "i".repeat(size);
            upsert(&[doc(&id, "{}".into(), None)])?;
            Err(leak(format!("indexed an id of {size} bytes")))
        }
        "oversized-fields" => {
            let fields = json!({"title": "big", "pad": "p".repeat(size)}).to_string();
            upsert(&[doc("big-fields", fields, None)])?;
            Err(leak(format!("indexed {size} bytes of fields")))
        }
        "deep-json" => {
            let fields = format!("{{\"nested\": {}{}}}", "[".repeat(size), "]".repeat(size));
            upsert(&[doc("deep", fields, None)])?;
            Err(leak(format!("indexed fields nested {size} deep")))
        }
        "host-call-flood" => {
            let mut calls: u64 = 0;
            loop {
                log::log(log::Level::Trace, "flood");
                calls += 1;
                if calls == u64::MAX {
                    return Err(leak("the host never refused"));
                }
            }
        }
        "hang" => {
            std::thread::sleep(Duration::from_secs(24 * 3600));
            Err(leak("slept a whole day"))
        }
        "fetch-text-bomb" => {
            let content = index::ContentRequest {
                request: raw_request(&target, Some(30_000)),
                file_name: "bomb.txt".into(),
                mime_type: Some("text/plain".into()),
                size: None,
                max_bytes: u64::MAX,
                retries: 0,
            };
            match extract::fetch_text(&content) {
                Ok(text) => Err(leak(format!("extracted {} bytes", text.len()))),
                Err(e) => Err(Error::Host(format!("fetch-text refused: {e:?}"))),
            }
        }
        // A document whose content the host downloads from a server that never finishes, with
        // every retry and the longest time limit a plugin can ask for.
        "content-trickle" => {
            let content = index::ContentRequest {
                request: raw_request(&target, Some(u32::MAX)),
                file_name: "slow.txt".into(),
                mime_type: Some("text/plain".into()),
                size: None,
                max_bytes: 1024 * 1024,
                retries: u32::MAX,
            };
            index::upsert(&[index::Document {
                id: "slow".into(),
                timestamp: None,
                fields: "{}".into(),
                content: Some(index::Content::Fetch(content)),
            }])
            .map_err(|e| Error::Host(format!("upsert refused: {e:?}")))?;
            let failures = index::checkpoint(&[])
                .map_err(|e| Error::Host(format!("checkpoint refused: {e:?}")))?;
            match failures.first() {
                Some(f) => Err(Error::Host(format!("content not indexed: {}", f.message))),
                None => Err(leak("the never-ending download completed")),
            }
        }
        other => Err(Error::Config(format!("unknown attack `{other}`"))),
    }
}

/// Keys that try to leave the connector's namespace: traversal, separators, other tenants'
/// names, prefix tricks. `target` is the victim's key (`tenant/connector/key`).
fn storage_escape(target: &str) -> Result<()> {
    let parts: Vec<&str> = target.split('/').collect();
    let key = parts.last().copied().unwrap_or("secret");
    let mut crafted: Vec<String> = vec![
        key.to_string(),
        target.to_string(),
        format!("../{target}"),
        format!("../../{target}"),
        format!("/{target}"),
        format!(
            "{}\u{1f}{}\u{1f}{key}",
            parts[0],
            parts.get(1).unwrap_or(&"")
        ),
        format!("{}|{}|{key}", parts[0], parts.get(1).unwrap_or(&"")),
        format!("%/{key}"),
        format!("' OR '1'='1' --{key}"),
    ];
    crafted.extend(parts.iter().map(|p| p.to_string()));
    for k in &crafted {
        if let Ok(Some(v)) = storage::get(k) {
            return Err(leak(format!("read {} bytes through key {k:?}", v.len())));
        }
        // Overwrites land in our own namespace, if anywhere.
        let _ = storage::set(k, b"overwritten by the hostile plugin");
        let _ = storage::delete(k);
    }
    for prefix in ["", "%", "_", "..", "/", "\u{10FFFF}"] {
        let keys =
            storage::list_keys(prefix).map_err(|e| Error::Host(format!("list refused: {e:?}")))?;
        if let Some(foreign) = keys.iter().find(|k| !crafted.contains(k)) {
            return Err(leak(format!("listed a foreign key {foreign:?}")));
        }
    }
    storage::set_many(&[
        ("ours".into(), Some(b"fine".to_vec())),
        (format!("{key}\0"), Some(b"nul".to_vec())),
    ])
    .map_err(|e| Error::Host(format!("storage refused: {e:?}")))?;
    Err(leak("a key with NUL was stored"))
}

/// Document ids aimed at the victim's documents: its exact ids, traversal, the embedded index's
/// key separator; then deletes of the victim's ids.
fn id_escape(target: &str) -> Result<()> {
    let victims: Vec<String> = target.split(',').map(str::to_string).collect();
    let mut crafted = Vec::new();
    for v in &victims {
        crafted.push(v.clone());
        crafted.push(format!("../victim/news/{v}"));
        crafted.push(format!("news/{v}"));
    }
    let docs: Vec<index::Document> = crafted
        .iter()
        .map(|id| {
            doc(
                id,
                json!({"title": "planted by the hostile plugin"}).to_string(),
                Some("planted".into()),
            )
        })
        .collect();
    upsert(&docs)?;
    index::delete(&victims).map_err(|e| Error::Host(format!("delete refused: {e:?}")))?;
    index::checkpoint(&[]).map_err(|e| Error::Host(format!("checkpoint refused: {e:?}")))?;
    // The separator the embedded index puts between connector and id.
    let forged: Vec<String> = victims.iter().map(|v| format!("news\u{1f}{v}")).collect();
    index::delete(&forged).map_err(|e| Error::Host(format!("delete refused: {e:?}")))?;
    upsert(&[doc(&forged[0], "{}".into(), None)])?;
    Err(leak("ids with control characters were accepted"))
}

/// Hands the host a string that is not UTF-8, which no safe Rust can build.
#[allow(unsafe_code)]
fn invalid_utf8() -> Result<()> {
    let bytes = vec![0x66, 0x6f, 0xff, 0xfe, 0x80];
    // SAFETY: deliberately not upheld: the string is only handed to the host, whose canonical-ABI
    // lifting must reject it; this code never reads it as `str`.
    let id = unsafe { String::from_utf8_unchecked(bytes) };
    upsert(&[doc(&id, "{}".into(), None)])?;
    Err(leak("the host accepted an id that is not UTF-8"))
}

impl Plugin for Hostile {
    fn manifest() -> Manifest {
        let mode = manifest_mode();
        let mut manifest = Manifest {
            name: "hostile".into(),
            display_name: "Hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Attacks the host on purpose (sandbox tests)".into(),
            config: vec![
                ConfigField {
                    required: true,
                    ..field("attack", FieldKind::Text)
                },
                field("target", FieldKind::Text),
                field("allowed_hosts", FieldKind::List),
                field("panic_in", FieldKind::Text),
                ConfigField {
                    default_value: Some("3".into()),
                    ..field("count", FieldKind::Integer)
                },
                ConfigField {
                    default_value: Some("0".into()),
                    ..field("size", FieldKind::Integer)
                },
            ],
            features: Features::INCREMENTAL_SYNC
                | Features::ACCESS_CONTROL_SYNC
                | Features::ADVANCED_RULES,
        };
        match mode.as_str() {
            "bad-name" => manifest.name = "../Hostile Plugin".into(),
            "dup-keys" => manifest.config.push(field("target", FieldKind::Integer)),
            "bad-default" => {
                manifest.config[4].default_value = Some("three, or so".into());
            }
            "panic" => maybe_panic(r#"{"panic_in": "manifest"}"#, "manifest"),
            "spin" => {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            _ => {}
        }
        manifest
    }

    fn allowed_hosts(config: String) -> Result<Vec<String>> {
        maybe_panic(&config, "allowed-hosts");
        Ok(Config::parse(&config)?.list("allowed_hosts"))
    }

    fn validate_config(config: String) -> Result<()> {
        maybe_panic(&config, "validate-config");
        Ok(())
    }

    fn ping(config: String) -> Result<()> {
        maybe_panic(&config, "ping");
        Ok(())
    }

    fn full_sync(request: SyncRequest) -> Result<()> {
        maybe_panic(&request.config, "full-sync");
        attack(&request)
    }

    fn incremental_sync(request: SyncRequest) -> Result<()> {
        maybe_panic(&request.config, "incremental-sync");
        attack(&request)
    }

    fn access_control_sync(request: SyncRequest) -> Result<()> {
        maybe_panic(&request.config, "access-control-sync");
        let mut out = Outbox::access_control(10);
        out.emit(Document::new("user-1").field("identity", json!({"email": "u@example.com"})))?;
        out.flush()
    }

    fn validate_advanced_rules(config: String, _rules: String) -> Result<(), Vec<RuleError>> {
        maybe_panic(&config, "validate-advanced-rules");
        Ok(())
    }
}

tributary_sdk::export_connector!(Hostile);
