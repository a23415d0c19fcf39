//! Shared helpers for end-to-end tests: a host on a temporary data directory with the bundled
//! plugins, connectors built from JSON, and readers for what ended up in the index.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};
use tributary_host::ConnectorSpec;
use tributary_host::sink::{IndexRef, SinkDocument};
use tributary_host::{Host, HostConfig, JobReport, JobStatus, SyncKind, SyncOptions};

/// A host on its own temporary data directory.
pub struct TestHost {
    /// Keeps the directory alive.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    /// The host.
    pub host: Host,
}

/// A compile cache shared by every test, so each plugin is compiled once per test run.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

/// A connector of the default tenant.
pub fn connector(id: &str, plugin: &str, config: Value) -> ConnectorSpec {
    let config: Map<String, Value> = match config {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    ConnectorSpec {
        id: id.into(),
        plugin: plugin.into(),
        tenant: "default".into(),
        index: None,
        config,
        rules: Vec::new(),
        advanced_rules: None,
        schedule: Default::default(),
    }
}

/// Opens a host with `connectors`; `tweak` may adjust limits before it opens.
pub async fn host_with(
    connectors: Vec<ConnectorSpec>,
    tweak: impl FnOnce(&mut HostConfig),
) -> TestHost {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = HostConfig {
        data_dir: dir.path().join("data"),
        cache_dir: Some(shared_cache()),
        connectors,
        ..HostConfig::default()
    };
    // The fakes listen on loopback: the operator's path to them (also used by the connectors
    // service these tests reopen the host for).
    config.http.allow_private = vec!["127.0.0.1".parse().expect("an address")];
    tweak(&mut config);
    let host = Host::open(config).await.expect("host opens");
    TestHost { dir, host }
}

#[allow(dead_code)] // helpers used by some test modules only
impl TestHost {
    /// Reopens the host on the same data directory (a restart).
    pub async fn restart(self) -> TestHost {
        let TestHost { dir, host } = self;
        let config = host.config().clone();
        drop(host);
        let host = Host::open(config).await.expect("host reopens");
        TestHost { dir, host }
    }

    /// Reopens the host on the same data directory with its configuration changed by `tweak`.
    pub async fn restart_with(self, tweak: impl FnOnce(&mut HostConfig)) -> TestHost {
        let TestHost { dir, host } = self;
        let mut config = host.config().clone();
        drop(host);
        tweak(&mut config);
        let host = Host::open(config).await.expect("host reopens");
        TestHost { dir, host }
    }

    /// Runs a sync and returns its report.
    pub async fn sync(&self, id: &str, kind: SyncKind) -> JobReport {
        self.host
            .sync(None, id, kind, SyncOptions::default())
            .await
            .expect("job recorded")
    }

    /// Runs a sync that must succeed.
    pub async fn sync_ok(&self, id: &str, kind: SyncKind) -> JobReport {
        let report = self.sync(id, kind).await;
        assert_eq!(
            report.status,
            JobStatus::Succeeded,
            "sync of {id} failed: {:?}",
            report.error
        );
        report
    }

    /// Every document of connector `id` in its index, by document id.
    pub async fn documents(&self, id: &str) -> BTreeMap<String, SinkDocument> {
        let spec = self
            .host
            .config()
            .connector(None, id)
            .expect("connector")
            .clone();
        let index = IndexRef::new(spec.tenant.clone(), spec.index_name());
        self.documents_in(index, id).await
    }

    /// Every access-control document of connector `id`.
    pub async fn acl_documents(&self, id: &str) -> BTreeMap<String, SinkDocument> {
        let spec = self
            .host
            .config()
            .connector(None, id)
            .expect("connector")
            .clone();
        let index = IndexRef::new(spec.tenant.clone(), spec.index_name()).acl();
        self.documents_in(index, id).await
    }

    async fn documents_in(
        &self,
        index: IndexRef,
        connector: &str,
    ) -> BTreeMap<String, SinkDocument> {
        let sink = self.host.sink();
        let ids: Vec<String> = sink
            .versions(index.clone(), connector.into())
            .await
            .expect("versions")
            .into_ids();
        sink.get(index, connector.into(), ids)
            .await
            .expect("documents")
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect()
    }

    fn storage(&self, id: &str) -> tributary_host::kv::ConnectorState {
        let spec = self
            .host
            .config()
            .connector(None, id)
            .expect("connector")
            .clone();
        tributary_host::kv::ConnectorState::new(
            self.host.db().clone(),
            tributary_host::kv::Namespace {
                tenant: spec.tenant,
                connector: spec.id,
            },
            Default::default(),
        )
    }

    /// A stored plugin state value of connector `id`, decoded as JSON.
    pub async fn state(&self, id: &str, key: &str) -> Option<Value> {
        let bytes = self.storage(id).get(key.into()).await.expect("storage")?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Overwrites a plugin state value of connector `id` (as if written by an earlier run).
    pub async fn set_state(&self, id: &str, key: &str, value: &Value) {
        let bytes = serde_json::to_vec(value).expect("json");
        self.storage(id)
            .apply(vec![(key.to_string(), Some(bytes))])
            .await
            .expect("storage");
    }
}
