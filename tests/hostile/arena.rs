//! The arena every attack runs in: a host with small limits, a victim tenant syncing the bundled
//! `feed` plugin from a fake feed, and the hostile plugin loaded for the `evil` tenant.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_fakes::feed::FakeFeed;
use tributary_host::ConnectorSpec;
use tributary_host::job::JobError;
use tributary_host::kv::{ConnectorState, Namespace, StorageLimits};
use tributary_host::sink::{IndexRef, SearchRequest};
use tributary_host::{Host, HostConfig, JobReport, JobStatus, SyncKind, SyncOptions};

/// The victim's documents: id → (title, body).
pub const VICTIM_DOCS: [(&str, &str, &str); 3] = [
    ("a", "Alpha", "alpha quarterly revenue"),
    ("b", "Beta", "beta holiday schedule"),
    ("c", "Gamma", "gamma board minutes"),
];
/// A name the host resolves (statically, like `/etc/hosts`) to loopback.
pub const INTERNAL_NAME: &str = "internal.victim.example";
/// Limits of the arena's host.
pub const MEMORY_MIB: u64 = 64;
pub const HOST_CALLS_PER_SECOND: u64 = 2_000;
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024;
pub const MAX_DOCUMENTS: u64 = 100;
pub const MAX_BYTES: u64 = 1024 * 1024;
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
pub const MAX_KEYS: u64 = 200;
pub const HTTP_TIMEOUT_SECONDS: u64 = 2;

/// A connector of the hostile plugin for the `evil` tenant.
pub fn hostile(id: &str, config: Value) -> ConnectorSpec {
    spec("evil", id, "hostile", config)
}

pub fn spec(tenant: &str, id: &str, plugin: &str, config: Value) -> ConnectorSpec {
    let Value::Object(config) = config else {
        panic!("config must be an object");
    };
    ConnectorSpec {
        id: id.into(),
        plugin: plugin.into(),
        tenant: tenant.into(),
        index: None,
        config,
        rules: Vec::new(),
        advanced_rules: None,
        schedule: Default::default(),
    }
}

/// The hostile component's bytes, with its manifest mode rewritten (see `plugins/hostile`).
pub fn hostile_wasm(manifest_mode: &str) -> Vec<u8> {
    let path = tributary_e2e::HOSTILE;
    let mut wasm = std::fs::read(path).unwrap();
    if manifest_mode == "valid" {
        return wasm;
    }
    let marker = pad("valid");
    let positions: Vec<usize> = wasm
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        positions.len(),
        1,
        "the manifest marker occurs exactly once"
    );
    let replacement = pad(manifest_mode);
    wasm[positions[0]..positions[0] + replacement.len()].copy_from_slice(&replacement);
    wasm
}

fn pad(mode: &str) -> Vec<u8> {
    let mut text = format!("hostile-manifest-mode:{mode}");
    assert!(text.len() <= 48);
    while text.len() < 48 {
        text.push('.');
    }
    text.into_bytes()
}

/// A host with one victim connector (`victim/news`, the `feed` plugin) and `attackers`.
pub struct Arena {
    _dir: tempfile::TempDir,
    pub host: Arc<Host>,
    _feed: FakeFeed,
}

impl Arena {
    /// An arena with the (valid) hostile plugin loaded.
    pub async fn new(attackers: Vec<ConnectorSpec>) -> Arena {
        let arena = Self::without_hostile(attackers).await;
        arena
            .host
            .load_plugin(hostile_wasm("valid"), "hostile.wasm")
            .await
            .expect("the hostile plugin loads");
        arena
    }

    /// An arena where no hostile plugin is loaded yet.
    pub async fn without_hostile(attackers: Vec<ConnectorSpec>) -> Arena {
        let feed = FakeFeed::start(None).await.unwrap();
        for (id, title, body) in VICTIM_DOCS {
            feed.upsert(id, title, Some(body));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut connectors = vec![spec(
            "victim",
            "news",
            "feed",
            json!({"base_url": feed.base_url(), "page_size": 2}),
        )];
        connectors.extend(attackers);
        let mut config = HostConfig {
            data_dir: dir.path().join("data"),
            cache_dir: Some(
                std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache"),
            ),
            connectors,
            ..HostConfig::default()
        };
        config.limits.memory_mib = MEMORY_MIB;
        config.limits.cpu_seconds = 2;
        config.limits.wall_seconds = 60;
        config.runtime.pool_instances = 16;
        config.runtime.max_host_calls_per_second = HOST_CALLS_PER_SECOND;
        config.http.max_response_bytes = MAX_RESPONSE_BYTES;
        config.http.default_timeout_seconds = HTTP_TIMEOUT_SECONDS;
        config.http.max_timeout_seconds = HTTP_TIMEOUT_SECONDS;
        // The CLI's policy: a loopback literal the plugin's allowlist names (the fakes) is
        // reachable; a *name* resolving to loopback is not (the SSRF rules of the service, where
        // only the operator's `allow_private` opens loopback, are tested in e2e `ssrf.rs`).
        config.http.private_access = tributary_host::net::PrivateAccess::NamedLiterals;
        config.http.static_hosts = BTreeMap::from([(
            INTERNAL_NAME.to_string(),
            vec!["127.0.0.1".parse().unwrap()],
        )]);
        config.pipeline.max_documents = MAX_DOCUMENTS;
        config.pipeline.max_bytes = MAX_BYTES;
        config.pipeline.max_fields_bytes = MAX_FIELDS_BYTES;
        config.extract.max_input_bytes = MAX_RESPONSE_BYTES;
        config.storage = StorageLimits {
            max_value_bytes: MAX_VALUE_BYTES,
            max_keys: MAX_KEYS,
            max_total_bytes: 256 * 1024,
            ..StorageLimits::default()
        };
        let host = Host::open(config).await.expect("host opens");
        Arena {
            _dir: dir,
            host: Arc::new(host),
            _feed: feed,
        }
    }

    /// Runs the attacker's job `id` (tenant `evil`) while the victim syncs, checks the victim and
    /// that the host still serves, and returns the attacker's report.
    pub async fn attack(&self, id: &str) -> JobReport {
        self.attack_with(id, SyncKind::Full, SyncOptions::default())
            .await
    }

    /// [`Self::attack`] with a sync kind and options.
    pub async fn attack_with(&self, id: &str, kind: SyncKind, options: SyncOptions) -> JobReport {
        let spec = self
            .host
            .config()
            .connector(Some("evil"), id)
            .unwrap()
            .clone();
        self.attack_spec(&spec, kind, options).await
    }

    /// Runs `spec` concurrently with a victim sync; see [`Self::attack`].
    pub async fn attack_spec(
        &self,
        spec: &ConnectorSpec,
        kind: SyncKind,
        options: SyncOptions,
    ) -> JobReport {
        let report = self
            .alongside_victim(async {
                self.host
                    .sync_spec(spec, kind, options)
                    .await
                    .expect("the attack's job is recorded")
            })
            .await;
        let recorded = self
            .host
            .jobs()
            .get(&spec.tenant, &report.id)
            .await
            .unwrap()
            .expect("the failed job is in the job history");
        assert_eq!(recorded.status, report.status);
        report
    }

    /// Runs `attack` while the victim tenant's full sync runs on another task; then checks the
    /// victim's exact documents and that the host still serves (an incremental sync and a search).
    pub async fn alongside_victim<T>(&self, attack: impl Future<Output = T>) -> T {
        let host = self.host.clone();
        let victim = tokio::spawn(async move {
            host.sync(
                Some("victim"),
                "news",
                SyncKind::Full,
                SyncOptions::default(),
            )
            .await
        });
        let outcome = attack.await;
        let report = victim.await.unwrap().unwrap();
        assert_eq!(
            report.status,
            JobStatus::Succeeded,
            "the victim's concurrent sync failed: {:?}",
            report.error
        );
        self.assert_victim_intact().await;
        self.assert_still_serving().await;
        outcome
    }

    /// The victim's index holds exactly its three documents, unchanged.
    pub async fn assert_victim_intact(&self) {
        let index = IndexRef::new("victim", "news");
        let sink = self.host.sink();
        let ids: Vec<String> = sink
            .versions(index.clone(), "news".into())
            .await
            .unwrap()
            .into_ids();
        let docs: BTreeMap<String, (Value, Option<String>)> = sink
            .get(index, "news".into(), ids)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.id, (d.fields["title"].clone(), d.body)))
            .collect();
        let expected: BTreeMap<String, (Value, Option<String>)> = VICTIM_DOCS
            .iter()
            .map(|(id, title, body)| (id.to_string(), (json!(title), Some(body.to_string()))))
            .collect();
        assert_eq!(docs, expected, "the victim's documents changed");
    }

    /// Another victim job and a search succeed after the attack.
    pub async fn assert_still_serving(&self) {
        let report = self
            .host
            .sync(
                Some("victim"),
                "news",
                SyncKind::Incremental,
                SyncOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(report.status, JobStatus::Succeeded, "{:?}", report.error);
        let hits = self
            .host
            .search(
                "victim",
                "news",
                SearchRequest {
                    query: "revenue".into(),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            hits.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
    }

    /// Storage of one connector, as the host sees it.
    pub fn storage(&self, tenant: &str, connector: &str) -> ConnectorState {
        ConnectorState::new(
            self.host.db().clone(),
            Namespace {
                tenant: tenant.into(),
                connector: connector.into(),
            },
            StorageLimits::default(),
        )
    }
}

/// Asserts a failed job with this error kind and a message containing every `needle`, and that
/// the attack did not report a leak.
pub fn assert_failed(report: &JobReport, kind: &str, needles: &[&str]) -> JobError {
    assert_eq!(report.status, JobStatus::Failed, "{report:?}");
    let error = report.error.clone().expect("a failed job has an error");
    eprintln!(
        "{}/{}: {} — {}",
        report.tenant, report.connector, error.kind, error.message
    );
    assert!(
        !error.message.contains("LEAK"),
        "the attack succeeded: {error:?}"
    );
    assert_eq!(error.kind, kind, "{error:?}");
    for needle in needles {
        assert!(
            error.message.contains(needle),
            "`{needle}` missing from {error:?}"
        );
    }
    error
}

/// A raw HTTP/1.1 server on loopback (for what axum will not do: trickle, stream forever).
pub struct RawServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

/// What a [`RawServer`] answers with.
#[derive(Clone, Copy)]
pub enum RawBehaviour {
    /// Accepts and counts connections, answers nothing.
    Silent,
    /// Headers at once, then one body byte every 100 ms, forever.
    Trickle,
    /// A chunked body of 64 KiB chunks, forever, as fast as it can.
    Endless,
}

impl RawServer {
    pub async fn start(behaviour: RawBehaviour) -> RawServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                    match behaviour {
                        RawBehaviour::Silent => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        RawBehaviour::Trickle => {
                            if socket.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            loop {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                if socket.write_all(b"1\r\nx\r\n").await.is_err() {
                                    return;
                                }
                            }
                        }
                        RawBehaviour::Endless => {
                            if socket.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = format!("10000\r\n{}\r\n", "z".repeat(0x10000));
                            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
                        }
                    }
                });
            }
        });
        RawServer { addr, connections }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
