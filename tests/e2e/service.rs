//! The multi-tenant service over real HTTP: tenant isolation, plugin hot swap under a stream of
//! jobs, refused uploads, restart with pending and running jobs, fairness, quotas, cancellation,
//! and the API description matching the router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tributary_fakes::faults::Fault;
use tributary_fakes::feed::FakeFeed;
use tributary_host::HostConfig;
use tributary_host::serve::{Service, serve};

use crate::support::shared_cache;

pub(crate) const ADMIN: &str = "admin-token-for-the-service-tests";

/// A service on a temporary data directory, serving on a loopback port.
pub(crate) struct Svc {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub(crate) async fn start(dir: tempfile::TempDir, tweak: impl FnOnce(&mut HostConfig)) -> Svc {
    let mut config = HostConfig {
        data_dir: dir.path().join("data"),
        cache_dir: Some(shared_cache()),
        plugins_dir: Some(dir.path().join("plugins")),
        ..HostConfig::default()
    };
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    // Tenants' connectors reach the loopback fakes because the operator allows it.
    config.http.allow_private = vec!["127.0.0.1".parse().unwrap()];
    config.service.insert("admin_token".into(), ADMIN.into());
    config.service.insert("tick_ms".into(), 50.into());
    config
        .service
        .insert("plugin_watch_seconds".into(), 1.into());
    tweak(&mut config);
    let host = Arc::new(tributary_host::Host::open(config).await.unwrap());
    let service = Service::open(host, None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(service.clone(), listener, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    Svc {
        dir,
        base,
        http,
        service,
        stop: Some(tx),
        task,
    }
}

impl Svc {
    /// `(status, JSON body)` of a request; `token` goes in as a bearer token.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call_text(method, path, token, body).await;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub(crate) async fn call_text(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub(crate) async fn upload(&self, wasm: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/plugins", self.base))
            .bearer_auth(ADMIN)
            .body(wasm)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Creates a tenant; returns its token.
    pub(crate) async fn tenant(&self, id: &str, quotas: Value) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/v1/tenants",
                Some(ADMIN),
                Some(json!({"id": id, "quotas": quotas})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Creates a feed connector of `tenant`.
    pub(crate) async fn feed_connector(
        &self,
        tenant: &str,
        token: &str,
        id: &str,
        feed: &FakeFeed,
    ) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/tenants/{tenant}/connectors"),
                Some(token),
                Some(json!({"id": id, "plugin": "feed", "config": {"base_url": feed.base_url(), "page_size": 10}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Queues a sync; returns the job id.
    pub(crate) async fn sync(
        &self,
        tenant: &str,
        token: &str,
        connector: &str,
        kind: &str,
    ) -> String {
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/tenants/{tenant}/connectors/{connector}/sync"),
                Some(token),
                Some(json!({"kind": kind})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "queued");
        body["id"].as_str().unwrap().to_string()
    }

    pub(crate) async fn job(&self, tenant: &str, token: &str, id: &str) -> Value {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/tenants/{tenant}/jobs/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until a job has ended; returns its record.
    pub(crate) async fn wait(&self, tenant: &str, token: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let job = self.job(tenant, token, id).await;
            if matches!(
                job["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not end: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn search_ids(
        &self,
        tenant: &str,
        token: &str,
        index: &str,
        q: &str,
    ) -> Vec<String> {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/tenants/{tenant}/search?index={index}&q={q}&limit=1000"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut ids: Vec<String> = body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Stops the service the way a shutdown does (running jobs stay queued) and hands back the
    /// data directory once every part of the host is gone.
    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Arc::strong_count(&self.service) > 1 {
            assert!(Instant::now() < deadline, "service still referenced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(self.service);
        self.dir
    }
}

pub(crate) fn items(feed: &FakeFeed, prefix: &str, n: usize, word: &str) {
    for i in 0..n {
        feed.upsert(
            &format!("{prefix}{i:03}"),
            &format!("{word} item {i}"),
            Some(&format!("{word} body {i}")),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_with_the_same_connector_names_cannot_see_each_other() {
    let feed_a = FakeFeed::start(Some("secret-of-acme")).await.unwrap();
    items(&feed_a, "a", 3, "apples");
    let feed_b = FakeFeed::start(Some("secret-of-globex")).await.unwrap();
    items(&feed_b, "b", 2, "bananas");
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let ta = svc.tenant("acme", json!({})).await;
    let tb = svc.tenant("globex", json!({})).await;

    for (tenant, token, feed, secret) in [
        ("acme", &ta, &feed_a, "secret-of-acme"),
        ("globex", &tb, &feed_b, "secret-of-globex"),
    ] {
        let (status, body) = svc
            .call(
                "POST",
                &format!("/v1/tenants/{tenant}/connectors"),
                Some(token),
                Some(json!({"id": "docs", "plugin": "feed", "config": {"base_url": feed.base_url(), "api_token": secret}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["secrets_set"], json!(["api_token"]));
        assert!(!body.to_string().contains(secret), "secret echoed: {body}");
    }
    let job_a = svc.sync("acme", &ta, "docs", "full").await;
    let job_b = svc.sync("globex", &tb, "docs", "full").await;
    assert_eq!(svc.wait("acme", &ta, &job_a).await["status"], "succeeded");
    assert_eq!(svc.wait("globex", &tb, &job_b).await["status"], "succeeded");

    // Each tenant finds its own documents, under the same index name, and nothing else.
    assert_eq!(
        svc.search_ids("acme", &ta, "docs", "apples").await,
        ["a000", "a001", "a002"]
    );
    assert!(
        svc.search_ids("acme", &ta, "docs", "bananas")
            .await
            .is_empty()
    );
    assert_eq!(
        svc.search_ids("globex", &tb, "docs", "bananas").await,
        ["b000", "b001"]
    );

    // globex's token on anything of acme's: the same 404 as for a tenant that does not exist.
    let (_, missing) = svc
        .call_text("GET", "/v1/tenants/nobody/connectors", Some(&tb), None)
        .await;
    for (method, path) in [
        ("GET", "/v1/tenants/acme".to_string()),
        ("GET", "/v1/tenants/acme/connectors".to_string()),
        ("GET", "/v1/tenants/acme/connectors/docs".to_string()),
        ("PUT", "/v1/tenants/acme/connectors/docs".to_string()),
        ("DELETE", "/v1/tenants/acme/connectors/docs".to_string()),
        ("POST", "/v1/tenants/acme/connectors/docs/sync".to_string()),
        ("GET", "/v1/tenants/acme/connectors/docs/state".to_string()),
        (
            "DELETE",
            "/v1/tenants/acme/connectors/docs/state".to_string(),
        ),
        ("GET", "/v1/tenants/acme/jobs".to_string()),
        ("GET", format!("/v1/tenants/acme/jobs/{job_a}")),
        ("POST", format!("/v1/tenants/acme/jobs/{job_a}/cancel")),
        (
            "GET",
            "/v1/tenants/acme/search?index=docs&q=apples".to_string(),
        ),
    ] {
        let body = (method == "PUT").then(|| json!({"plugin": "feed", "config": {}}));
        let (status, text) = svc.call_text(method, &path, Some(&tb), body).await;
        assert_eq!((status, &text), (404, &missing), "{method} {path}");
    }
    // …and acme's job id under globex's own path is not found either.
    let (status, _) = svc
        .call(
            "GET",
            &format!("/v1/tenants/globex/jobs/{job_a}"),
            Some(&tb),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // Nothing of acme's was changed by those attempts.
    let (status, connector) = svc
        .call("GET", "/v1/tenants/acme/connectors/docs", Some(&ta), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(connector["config"]["base_url"], feed_a.base_url());
    let (_, jobs) = svc
        .call("GET", "/v1/tenants/acme/jobs", Some(&ta), None)
        .await;
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs.iter().all(|j| j["tenant"] == "acme"));

    // Admin routes refuse tenant tokens; no token or an unknown one is 401.
    for (method, path) in [
        ("GET", "/v1/tenants"),
        ("POST", "/v1/plugins"),
        ("POST", "/v1/tenants/acme/token"),
        ("GET", "/metrics"),
    ] {
        let (status, _) = svc.call(method, path, Some(&tb), None).await;
        assert_eq!(status, 403, "{method} {path}");
    }
    assert_eq!(svc.call("GET", "/v1/tenants/acme", None, None).await.0, 401);
    // …before anything else is judged, even a malformed query.
    assert_eq!(
        svc.call("GET", "/v1/tenants/acme/search?limit=x", None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        svc.call("GET", "/v1/tenants/acme/jobs?status=bogus", Some(&tb), None)
            .await
            .0,
        404
    );
    assert_eq!(
        svc.call("GET", "/v1/tenants/acme", Some("trb_not-a-token"), None)
            .await
            .0,
        401
    );

    // Secrets are write-only: never returned, kept when a PUT leaves them out.
    let (_, text) = svc
        .call_text("GET", "/v1/tenants/acme/connectors", Some(&ta), None)
        .await;
    assert!(!text.contains("secret-of-acme"), "{text}");
    let (status, body) = svc
        .call(
            "PUT",
            "/v1/tenants/acme/connectors/docs",
            Some(&ta),
            Some(json!({"plugin": "feed", "config": {"base_url": feed_a.base_url(), "page_size": 2}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["secrets_set"], json!(["api_token"]));
    feed_a.upsert("a003", "apples item 3", Some("apples body 3"));
    let job = svc.sync("acme", &ta, "docs", "incremental").await;
    let job = svc.wait("acme", &ta, &job).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["counts"]["indexed"], 1, "{job}");

    // Plugin state: key names and sizes, never values.
    let (status, state) = svc
        .call(
            "GET",
            "/v1/tenants/acme/connectors/docs/state",
            Some(&ta),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = state["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"cursor"), "{state}");
    assert!(state["keys"][0].get("value").is_none());

    // The admin sees both tenants.
    let (_, tenants) = svc.call("GET", "/v1/tenants", Some(ADMIN), None).await;
    assert_eq!(tenants["tenants"].as_array().unwrap().len(), 2);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_swap_under_a_stream_of_jobs_loses_none_and_each_reports_its_version() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "i", 5, "swap");
    // Slow listings keep jobs overlapping the swap.
    feed.faults()
        .add("/items", 1000, Fault::Delay(Duration::from_millis(60)));
    let svc = start(tempfile::tempdir().unwrap(), |c| {
        c.service.insert("max_concurrent_syncs".into(), 3.into());
        c.service.insert(
            "tenant_defaults".into(),
            toml::Table::from_iter([("max_concurrent_syncs".to_string(), 3.into())]).into(),
        );
    })
    .await;
    let token = svc.tenant("t", json!({})).await;
    // One connector per job: triggers of a connector that already has a job waiting merge
    // into it, and this test counts jobs.
    for i in 0..15 {
        svc.feed_connector("t", &token, &format!("c{i}"), &feed)
            .await;
    }
    let next = std::fs::read(tributary_e2e::FEED_NEXT).unwrap();

    // A broken upload is refused with the reason; the service keeps serving the old version.
    let (status, body) = svc.upload(b"\0asm not really".to_vec()).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{body}"
    );
    let mut truncated = next.clone();
    truncated.truncate(next.len() / 2);
    assert_eq!(svc.upload(truncated).await.0, 422);
    let (_, plugins) = svc.call("GET", "/v1/plugins", Some(ADMIN), None).await;
    assert_eq!(
        plugins["rejected"].as_array().unwrap().len(),
        2,
        "{plugins}"
    );
    let active: Vec<&Value> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "feed" && p["active"] == true)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["version"], "0.1.0");

    let mut before = Vec::new();
    for i in 0..9 {
        before.push(svc.sync("t", &token, &format!("c{i}"), "full").await);
    }
    let (status, body) = svc.upload(next).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], "0.2.0-next");
    assert_eq!(body["active"], true);
    let mut after = Vec::new();
    for i in 0..6 {
        after.push(svc.sync("t", &token, &format!("c{}", 9 + i), "full").await);
    }
    let mut versions = std::collections::BTreeMap::<String, usize>::new();
    for id in before.iter().chain(&after) {
        let job = svc.wait("t", &token, id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        *versions
            .entry(job["plugin_version"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for id in &after {
        let job = svc.job("t", &token, id).await;
        assert_eq!(
            job["plugin_version"], "0.2.0-next",
            "queued after the swap: {job}"
        );
    }
    assert!(
        versions.get("0.1.0").is_some_and(|n| *n >= 1),
        "{versions:?}"
    );
    // Exactly the jobs submitted: none lost, none duplicated.
    let (_, jobs) = svc
        .call("GET", "/v1/tenants/t/jobs?limit=1000", Some(&token), None)
        .await;
    let mut ids: Vec<String> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut submitted: Vec<String> = before.iter().chain(&after).cloned().collect();
    submitted.sort();
    assert_eq!(ids, submitted);

    // Roll back, then forward again by version: the next job follows each choice.
    let (status, body) = svc
        .call("POST", "/v1/plugins/feed/rollback", Some(ADMIN), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "0.1.0");
    let job = svc.sync("t", &token, "c0", "full").await;
    assert_eq!(svc.wait("t", &token, &job).await["plugin_version"], "0.1.0");
    let (status, _) = svc
        .call(
            "POST",
            "/v1/plugins/feed/activate",
            Some(ADMIN),
            Some(json!({"version": "0.2.0-next"})),
        )
        .await;
    assert_eq!(status, 200);
    let job = svc.sync("t", &token, "c0", "full").await;
    assert_eq!(
        svc.wait("t", &token, &job).await["plugin_version"],
        "0.2.0-next"
    );
    let (status, _) = svc
        .call(
            "POST",
            "/v1/plugins/feed/activate",
            Some(ADMIN),
            Some(json!({"version": "9.9.9"})),
        )
        .await;
    assert_eq!(status, 404);

    // The choice survives a restart; the kept upload is restored from disk.
    let dir = svc.stop().await;
    let svc = start(dir, |_| {}).await;
    let (_, plugins) = svc.call("GET", "/v1/plugins", Some(ADMIN), None).await;
    let active: Vec<&Value> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "feed" && p["active"] == true)
        .collect();
    assert_eq!(active[0]["version"], "0.2.0-next", "{plugins}");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_dropped_into_the_plugins_directory_is_checked_then_activated() {
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let plugins_dir = svc.dir.path().join("plugins");
    std::fs::write(plugins_dir.join("broken.wasm"), b"not wasm at all").unwrap();
    let next = std::fs::read(tributary_e2e::FEED_NEXT).unwrap();
    std::fs::write(plugins_dir.join("feed-next.wasm"), next).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, plugins) = svc.call("GET", "/v1/plugins", Some(ADMIN), None).await;
        let active_next =
            plugins["plugins"].as_array().unwrap().iter().any(|p| {
                p["name"] == "feed" && p["version"] == "0.2.0-next" && p["active"] == true
            });
        let rejected = plugins["rejected"].as_array().unwrap();
        if active_next && !rejected.is_empty() {
            assert!(
                rejected[0]["source"]
                    .as_str()
                    .unwrap()
                    .ends_with("broken.wasm"),
                "{plugins}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not picked up: {plugins}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(svc.call("GET", "/health", None, None).await.0, 200);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_running_job_from_its_commits_and_runs_the_pending_ones() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "r", 300, "restart");
    // 30 pages of 10, each slow: the first job is still listing when the host stops.
    feed.faults()
        .add("/items", 10_000, Fault::Delay(Duration::from_millis(150)));
    let svc = start(tempfile::tempdir().unwrap(), |c| {
        c.service.insert("max_concurrent_syncs".into(), 1.into());
    })
    .await;
    let token = svc.tenant("t", json!({})).await;
    for c in ["first", "second", "third"] {
        svc.feed_connector("t", &token, c, &feed).await;
    }
    let jobs = [
        svc.sync("t", &token, "first", "full").await,
        svc.sync("t", &token, "second", "full").await,
        svc.sync("t", &token, "third", "incremental").await,
    ];
    // Wait until the first job has committed its first 100 documents.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = svc.job("t", &token, &jobs[0]).await;
        if job["counts"]["received"].as_u64().unwrap_or(0) >= 120 {
            assert_eq!(job["status"], "running");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "first job never got going: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = svc.stop().await;
    feed.faults().clear();

    let svc = start(dir, |c| {
        c.service.insert("max_concurrent_syncs".into(), 1.into());
    })
    .await;
    let first = svc.wait("t", &token, &jobs[0]).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert!(
        first["warnings"][0]
            .as_str()
            .unwrap()
            .contains("resumed after a host restart"),
        "{first}"
    );
    // The listing continued from its last checkpoint instead of starting over, nothing the
    // first run indexed was deleted as vanished, and the counts total both runs: the first
    // run's up to its last checkpoint, the second's from there: every item received once, plus
    // at most a page or two re-listed from the checkpoint (the second run alone lists at most
    // 210). Documents the first run wrote after its last checkpoint count as unchanged.
    let count = |name: &str| first["counts"][name].as_u64().unwrap();
    assert!(
        (300..=320).contains(&count("received")),
        "the listing started over, or the first run's counts were lost: {first}"
    );
    assert_eq!(
        count("indexed") + count("unchanged"),
        count("received"),
        "{first}"
    );
    assert_eq!(first["counts"]["deleted"], 0, "{first}");
    for id in &jobs[1..] {
        let job = svc.wait("t", &token, id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            job["kind"], "full",
            "an incremental without a full runs a full: {job}"
        );
    }
    // Exactly the three jobs, and every connector holds exactly the feed's documents.
    let (_, listed) = svc
        .call("GET", "/v1/tenants/t/jobs?limit=100", Some(&token), None)
        .await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 3);
    for index in ["first", "second", "third"] {
        assert_eq!(
            svc.search_ids("t", &token, index, "restart").await.len(),
            300
        );
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_many_queued_jobs_does_not_starve_another() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "f", 3, "fair");
    feed.faults()
        .add("/items", 10_000, Fault::Delay(Duration::from_millis(300)));
    let svc = start(tempfile::tempdir().unwrap(), |c| {
        c.service.insert("max_concurrent_syncs".into(), 2.into());
        c.service.insert(
            "tenant_defaults".into(),
            toml::Table::from_iter([("max_concurrent_syncs".to_string(), 2.into())]).into(),
        );
    })
    .await;
    let big = svc.tenant("big", json!({})).await;
    let small = svc.tenant("small", json!({})).await;
    for i in 0..6 {
        svc.feed_connector("big", &big, &format!("c{i}"), &feed)
            .await;
    }
    svc.feed_connector("small", &small, "only", &feed).await;
    let mut big_jobs = Vec::new();
    for i in 0..6 {
        big_jobs.push(svc.sync("big", &big, &format!("c{i}"), "full").await);
    }
    let small_job = svc.sync("small", &small, "only", "full").await;
    // When the small tenant's job gets a slot, the big tenant must still have queued work:
    // first-come-first-served would have run all six of its jobs first.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = svc.job("small", &small, &small_job).await;
        if job["status"] != "queued" {
            let (_, queued) = svc
                .call(
                    "GET",
                    "/v1/tenants/big/jobs?status=queued",
                    Some(&big),
                    None,
                )
                .await;
            let waiting = queued["jobs"].as_array().unwrap().len();
            assert!(
                waiting >= 2,
                "the small tenant waited for the big one: {waiting} left"
            );
            break;
        }
        assert!(Instant::now() < deadline, "small job never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for id in &big_jobs {
        assert_eq!(svc.wait("big", &big, id).await["status"], "succeeded");
    }
    assert_eq!(
        svc.wait("small", &small, &small_job).await["status"],
        "succeeded"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_unknown_indexes_is_a_404_naming_those_that_exist_and_creates_nothing() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "s", 3, "sought");
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("acme", json!({})).await;
    let tenant_dir = svc.dir.path().join("data/index/acme");
    let search = |index: String| {
        let svc = &svc;
        let token = &token;
        async move {
            svc.call(
                "GET",
                &format!("/v1/tenants/acme/search?index={index}&q=sought"),
                Some(token),
                None,
            )
            .await
        }
    };
    for i in 0..300 {
        let (status, body) = search(format!("nope{i}")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(
            body["error"],
            format!("no index `nope{i}`: tenant `acme` has no indexes yet")
        );
    }
    assert!(!tenant_dir.exists(), "a search created {tenant_dir:?}");

    svc.feed_connector("acme", &token, "docs", &feed).await;
    let job = svc.sync("acme", &token, "docs", "full").await;
    assert_eq!(svc.wait("acme", &token, &job).await["status"], "succeeded");
    assert_eq!(
        svc.search_ids("acme", &token, "docs", "sought").await.len(),
        3
    );
    for i in 0..300 {
        let (status, body) = search(format!("nope{i}")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(
            body["error"],
            format!("no index `nope{i}`; the indexes of tenant `acme` are: docs")
        );
    }
    // Only what the sync wrote: the index and its access-control index.
    let mut on_disk: Vec<_> = std::fs::read_dir(&tenant_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, vec![".search-acl-filter-docs", "docs"]);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_and_zero_quotas_are_a_400_naming_the_field() {
    let feed = FakeFeed::start(None).await.unwrap();
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("acme", json!({})).await;
    for (schedule, field) in [
        (
            json!({"full_minutes": 18446744073709551615u64}),
            "full_minutes",
        ),
        (json!({"full_minutes": 0}), "full_minutes"),
        (
            json!({"incremental_minutes": 9007199254740993u64}),
            "incremental_minutes",
        ),
        (
            json!({"access_control_every": "18446744073709551615d"}),
            "access_control_every",
        ),
        (json!({"incremental_every": "0m"}), "incremental_every"),
        (json!({"full_cron": "59/4294967295 * * * *"}), "full_cron"),
        (
            json!({"access_control_cron": "* */99999999999 * * *"}),
            "access_control_cron",
        ),
    ] {
        let (status, body) = svc
            .call(
                "POST",
                "/v1/tenants/acme/connectors",
                Some(&token),
                Some(json!({"id": "docs", "plugin": "feed", "config": {"base_url": feed.base_url()}, "schedule": schedule})),
            )
            .await;
        assert_eq!(status, 400, "{schedule}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{schedule}: {body}"
        );
    }
    // Nothing was created by the refusals.
    let (_, list) = svc
        .call("GET", "/v1/tenants/acme/connectors", Some(&token), None)
        .await;
    assert_eq!(list["connectors"], json!([]), "{list}");

    for field in [
        "memory_mib",
        "cpu_seconds",
        "wall_seconds",
        "max_concurrent_syncs",
    ] {
        let (status, body) = svc
            .call(
                "POST",
                "/v1/tenants",
                Some(ADMIN),
                Some(json!({"id": format!("zero-{field}"), "quotas": {field: 0}})),
            )
            .await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{field}: {body}"
        );
        let (status, body) = svc
            .call(
                "PATCH",
                "/v1/tenants/acme",
                Some(ADMIN),
                Some(json!({"quotas": {field: 0}})),
            )
            .await;
        assert_eq!(status, 400, "{field}: {body}");
    }
    let (status, body) = svc
        .call("GET", "/v1/tenants/zero-cpu_seconds", Some(ADMIN), None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, acme) = svc.call("GET", "/v1/tenants/acme", Some(ADMIN), None).await;
    assert_eq!(acme["quotas"], json!({}), "{acme}");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_its_status_and_bearer_is_any_case() {
    let feed = FakeFeed::start(None).await.unwrap();
    let svc = start(tempfile::tempdir().unwrap(), |c| {
        c.service.insert("max_upload_mib".into(), 1.into());
    })
    .await;
    let token = svc.tenant("acme", json!({})).await;
    let raw = |method: &str, path: &str, auth: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut request = svc
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", svc.base),
            )
            .header("authorization", auth.to_string())
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let label = format!("{method} {path}");
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{label}: not JSON: {text:?}"));
            assert!(body["error"].is_string(), "{label}: {body}");
            status
        }
    };
    let admin = format!("Bearer {ADMIN}");
    let json_ct = Some("application/json");
    let big = vec![b' '; 2 << 20];
    for (method, path, content_type, body, status) in [
        ("POST", "/v1/tenants", json_ct, b"{".to_vec(), 400),
        (
            "POST",
            "/v1/tenants",
            Some("text/plain"),
            br#"{"id":"x"}"#.to_vec(),
            415,
        ),
        ("POST", "/v1/tenants", None, br#"{"id":"x"}"#.to_vec(), 415),
        ("POST", "/v1/tenants", json_ct, br#"{"id":5}"#.to_vec(), 422),
        ("POST", "/v1/tenants", json_ct, big.clone(), 413),
        ("POST", "/v1/plugins", None, big, 413),
        ("GET", "/no/such/route", None, Vec::new(), 404),
        ("DELETE", "/health", None, Vec::new(), 405),
        (
            "GET",
            "/v1/tenants/acme/search?index=nope&q=x",
            None,
            Vec::new(),
            404,
        ),
    ] {
        assert_eq!(
            raw(method, path, &admin, content_type, body).await,
            status,
            "{method} {path}"
        );
    }
    // RFC 7235: the scheme is case-insensitive.
    for auth in [format!("bearer {ADMIN}"), format!("BEARER {ADMIN}")] {
        let response = svc
            .http
            .get(format!("{}/v1/tenants", svc.base))
            .header("authorization", auth.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{auth}");
    }
    assert_eq!(
        raw(
            "GET",
            "/v1/tenants",
            &format!("Basic {ADMIN}"),
            None,
            Vec::new()
        )
        .await,
        401
    );

    // Connector URLs other than http(s) are refused at creation, naming the setting.
    for url in [
        "file:///etc/passwd".to_string(),
        "gopher://127.0.0.1:25/".to_string(),
        "ftp://example.com/feed".to_string(),
    ] {
        let (status, body) = svc
            .call(
                "POST",
                "/v1/tenants/acme/connectors",
                Some(&token),
                Some(json!({"id": "docs", "plugin": "feed", "config": {"base_url": url}})),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("`base_url`"),
            "{url}: {body}"
        );
    }
    svc.feed_connector("acme", &token, "docs", &feed).await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_fail_the_tenants_own_job_and_nothing_else() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "q", 25, "quota");
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let tight = svc
        .tenant("tight", json!({"max_documents": 20, "max_connectors": 1}))
        .await;
    let roomy = svc.tenant("roomy", json!({})).await;
    svc.feed_connector("tight", &tight, "docs", &feed).await;
    svc.feed_connector("roomy", &roomy, "docs", &feed).await;
    // One connector is the tight tenant's limit.
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/tight/connectors",
            Some(&tight),
            Some(json!({"id": "more", "plugin": "feed", "config": {"base_url": feed.base_url()}})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("quota is 1"),
        "{body}"
    );

    let over = svc.sync("tight", &tight, "docs", "full").await;
    let fine = svc.sync("roomy", &roomy, "docs", "full").await;
    let over = svc.wait("tight", &tight, &over).await;
    assert_eq!(over["status"], "failed", "{over}");
    assert_eq!(over["error"]["kind"], "quota", "{over}");
    assert!(
        over["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may keep 20 documents"),
        "{over}"
    );
    let fine = svc.wait("roomy", &roomy, &fine).await;
    assert_eq!(fine["status"], "succeeded", "{fine}");
    assert_eq!(
        svc.search_ids("roomy", &roomy, "docs", "quota").await.len(),
        25
    );
    assert!(svc.search_ids("tight", &tight, "docs", "quota").await.len() <= 20);

    // Bad connector configuration is refused up front, naming the problem.
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/roomy/connectors",
            Some(&roomy),
            Some(json!({"id": "bad", "plugin": "feed", "config": {"page_size": 0}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("base_url"),
        "{body}"
    );
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/roomy/connectors",
            Some(&roomy),
            Some(json!({"id": "bad", "plugin": "feed", "config": {"base_url": feed.base_url()}, "schedule": {"full_every": "soon"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("full_every"),
        "{body}"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_run_jobs_and_queued_jobs_can_be_cancelled() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "s", 2, "scheduled");
    let svc = start(tempfile::tempdir().unwrap(), |c| {
        c.service.insert("max_concurrent_syncs".into(), 1.into());
    })
    .await;
    let token = svc.tenant("t", json!({})).await;
    let (status, body) = svc
        .call(
            "POST",
            "/v1/tenants/t/connectors",
            Some(&token),
            Some(json!({"id": "timed", "plugin": "feed", "config": {"base_url": feed.base_url()}, "schedule": {"incremental_every": "1s"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The schedule queues syncs by itself; the first one runs as a full sync.
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs = loop {
        let (_, jobs) = svc
            .call(
                "GET",
                "/v1/tenants/t/jobs?status=succeeded",
                Some(&token),
                None,
            )
            .await;
        let jobs = jobs["jobs"].as_array().unwrap().clone();
        if jobs.len() >= 2 {
            break jobs;
        }
        assert!(Instant::now() < deadline, "schedule did not run: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: Vec<&str> = jobs
        .iter()
        .rev()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "full", "{kinds:?}");
    assert!(kinds[1..].contains(&"incremental"), "{kinds:?}");

    // Cancel a job that is still waiting behind a slow one.
    svc.feed_connector("t", &token, "slow", &feed).await;
    svc.feed_connector("t", &token, "waiting", &feed).await;
    feed.faults()
        .add("/items", 10_000, Fault::Delay(Duration::from_millis(500)));
    let slow = svc.sync("t", &token, "slow", "full").await;
    let waiting = svc.sync("t", &token, "waiting", "full").await;
    let (status, body) = svc
        .call(
            "POST",
            &format!("/v1/tenants/t/jobs/{waiting}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let cancelled = svc.wait("t", &token, &waiting).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // The running one stops at its next index call when cancelled.
    svc.call(
        "POST",
        &format!("/v1/tenants/t/jobs/{slow}/cancel"),
        Some(&token),
        None,
    )
    .await;
    let slow = svc.wait("t", &token, &slow).await;
    assert!(
        matches!(slow["status"].as_str(), Some("cancelled" | "succeeded")),
        "{slow}"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_described_route_exists_and_metrics_are_served() {
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let (status, doc) = svc.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{tenant}", "nobody")
                .replace("{connector}", "c")
                .replace("{job}", "j")
                .replace("{name}", "feed");
            let (status, text) = svc
                .call_text(&method.to_uppercase(), &concrete, Some(ADMIN), None)
                .await;
            // A route that does not exist answers 404 with an empty body or 405.
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !(status == 404 && text.is_empty()),
                "{method} {path} has no route"
            );
        }
    }
    // One more request with an unknown token: every request counts once, refusals apart.
    let protected = paths
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .filter(|op| op.get("security").is_some())
        .count();
    assert_eq!(
        svc.call("GET", "/v1/tenants", Some("trb_unknown"), None)
            .await
            .0,
        401
    );
    let (status, text) = svc.call_text("GET", "/metrics", Some(ADMIN), None).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!("tributary_api_requests_total {}\n", protected + 2)),
        "{text}"
    );
    assert!(
        text.contains("tributary_api_requests_denied_total 1\n"),
        "{text}"
    );
    for metric in [
        "tributary_jobs_running 0",
        "tributary_tenants 0",
        "tributary_plugin_info{name=\"feed\"",
        "tributary_api_requests_total",
    ] {
        assert!(text.contains(metric), "{metric} missing:\n{text}");
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_triggers_merge_the_queue_is_capped_and_delete_cancels_jobs() {
    let feed = FakeFeed::start(None).await.unwrap();
    items(&feed, "q", 100, "queued");
    feed.faults()
        .add("/items", 10_000, Fault::Delay(Duration::from_millis(400)));
    let svc = start(tempfile::tempdir().unwrap(), |c| {
        c.service.insert("max_concurrent_syncs".into(), 1.into());
        c.service.insert("max_queued_per_tenant".into(), 3.into());
    })
    .await;
    let token = svc.tenant("t", json!({})).await;
    for id in ["a", "b", "c", "d"] {
        svc.feed_connector("t", &token, id, &feed).await;
    }
    let trigger = |connector: &'static str| {
        let svc = &svc;
        let token = token.clone();
        async move {
            svc.call(
                "POST",
                &format!("/v1/tenants/t/connectors/{connector}/sync"),
                Some(&token),
                Some(json!({"kind": "full"})),
            )
            .await
        }
    };
    // The first job of `a` runs (slowly); a second trigger queues one more.
    let (status, first) = trigger("a").await;
    assert_eq!(status, 202, "{first}");
    let first = first["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.job("t", &token, &first).await["status"] != "running" {
        assert!(Instant::now() < deadline, "first job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, second) = trigger("a").await;
    assert_eq!(status, 202, "{second}");
    let second = second["id"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    // Every further trigger while that one waits merges into it: 200 with its id.
    for _ in 0..50 {
        let (status, body) = trigger("a").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], second.as_str(), "{body}");
        assert_eq!(body["status"], "queued", "{body}");
    }
    // The tenant's queue holds three waiting jobs; a fourth connector's trigger is refused.
    assert_eq!(trigger("b").await.0, 202);
    assert_eq!(trigger("c").await.0, 202);
    let (status, body) = trigger("d").await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("queued"), "{body}");
    let (_, queued) = svc
        .call(
            "GET",
            "/v1/tenants/t/jobs?status=queued",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(queued["jobs"].as_array().unwrap().len(), 3, "{queued}");

    // One DELETE removes `a` although it has a running and a queued job: both end.
    let (status, body) = svc
        .call("DELETE", "/v1/tenants/t/connectors/a", Some(&token), None)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = svc
        .call("GET", "/v1/tenants/t/connectors/a", Some(&token), None)
        .await;
    assert_eq!(status, 404);
    assert!(
        !svc.service
            .running()
            .iter()
            .any(|(_, t, c, _)| t == "t" && c == "a"),
        "a job of the deleted connector still runs"
    );
    for id in [&first, &second] {
        let job = svc.wait("t", &token, id).await;
        assert_eq!(job["status"], "cancelled", "{job}");
    }
    // With room again, `d` queues.
    assert_eq!(trigger("d").await.0, 202);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_health_fails_when_the_database_file_is_deleted_or_overwritten() {
    for damage in ["delete", "overwrite", "replace"] {
        let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
        svc.tenant("t", json!({})).await;
        let (status, body) = svc.call("GET", "/health", None, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "ok");
        let db = svc.dir.path().join("data").join("tributary.db");
        match damage {
            "delete" => std::fs::remove_file(&db).unwrap(),
            "overwrite" => std::fs::write(&db, vec![b'x'; 8192]).unwrap(),
            _ => {
                // A valid but different database put in its place.
                let copy = svc.dir.path().join("other.db");
                std::fs::copy(&db, &copy).unwrap();
                std::fs::rename(&copy, &db).unwrap();
            }
        }
        let (status, body) = svc.call("GET", "/health", None, None).await;
        assert_eq!(status, 503, "{damage}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("database"),
            "{damage}: {body}"
        );
        svc.stop().await;
    }
}

/// `s` escaped for a query string.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_sorts_pages_counts_facets_refuses_bad_queries_and_exports() {
    use tributary_host::sink::embedded::EmbeddedIndex;
    use tributary_host::sink::{IndexRef, Sink, SinkDocument};
    // The tenant exists first: the service refuses to start on indexes of unknown tenants.
    let svc = start(tempfile::tempdir().unwrap(), |_| {}).await;
    let token = svc.tenant("acme", json!({})).await;
    {
        let sink = EmbeddedIndex::new(svc.dir.path().join("data/index"));
        let ix = IndexRef::new("acme", "files");
        let docs = [
            ("1", "Contacts.json", "File", 79, "2024-02-10T08:00:00Z"),
            (
                "2",
                "Quarterly revenue.pdf",
                "File",
                2_500_000,
                "2024-05-01T10:00:00Z",
            ),
            ("3", "Reports", "Folder", 0, "2023-12-01T00:00:00Z"),
            (
                "4",
                "Holiday plan.docx",
                "File",
                12_000,
                "2024-07-15T12:00:00Z",
            ),
        ]
        .map(|(id, name, kind, size, ts)| {
            let Value::Object(fields) =
                json!({"id": id, "name": name, "type": kind, "size": size, "_timestamp": ts})
            else {
                unreachable!()
            };
            SinkDocument {
                id: id.into(),
                connector: "c".into(),
                version: None,
                fields,
                body: Some(format!("the text of {name}")),
            }
        });
        sink.upsert(ix.clone(), docs.to_vec()).await.unwrap();
        sink.commit(ix).await.unwrap();
    }

    let get = |query: String| {
        let svc = &svc;
        let token = token.clone();
        async move {
            svc.call(
                "GET",
                &format!("/v1/tenants/acme/search?index=files&{query}"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, body) = get(format!("q={}", enc("type:File AND size:>1000"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 2);
    let (_, body) = get(format!(
        "filter={}&filter={}",
        enc("type=File"),
        enc("size=79")
    ))
    .await;
    assert_eq!(ids(&body), ["1"], "{body}");
    // Sorted pages: the cursor of one page starts the next.
    let (_, first) = get(format!("sort={}&limit=2", enc("_timestamp:desc"))).await;
    assert_eq!(ids(&first), ["4", "2"], "{first}");
    let next = first["next"].as_str().unwrap();
    let (_, second) = get(format!(
        "sort={}&limit=2&after={next}",
        enc("_timestamp:desc")
    ))
    .await;
    assert_eq!(ids(&second), ["1", "3"], "{second}");
    assert!(second["next"].is_null(), "{second}");
    let (_, count) = get(format!("q={}&count=true&facet=type", enc("type:File"))).await;
    assert_eq!(count["total"], 3, "{count}");
    assert_eq!(count["hits"], json!([]));
    assert_eq!(
        count["facets"]["type"],
        json!([{"value": "File", "count": 3}])
    );
    // A query that does not parse, an unknown field, a bad sort: 400s saying why.
    let (status, body) = get(format!("q={}", enc("foo AND ("))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("position"),
        "{body}"
    );
    let (status, body) = get(format!("q={}", enc("nope:x"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `nope`"),
        "{body}"
    );
    let (status, _) = get(format!("sort={}", enc("size:sideways"))).await;
    assert_eq!(status, 400);
    // The export streams every document as a JSON line; the body only when asked.
    let (status, text) = svc
        .call_text(
            "GET",
            "/v1/tenants/acme/export?index=files",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut exported: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    exported.sort();
    assert_eq!(exported, ["1", "2", "3", "4"]);
    assert!(
        lines
            .iter()
            .all(|l| l.get("body").is_none() && l["fields"]["type"].is_string())
    );
    let (_, text) = svc
        .call_text(
            "GET",
            &format!(
                "/v1/tenants/acme/export?index=files&body=true&filter={}",
                enc("type=Folder")
            ),
            Some(&token),
            None,
        )
        .await;
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["body"], "the text of Reports", "{text}");
    let (status, _) = svc
        .call_text(
            "GET",
            "/v1/tenants/acme/export?index=nope",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    svc.stop().await;
}
