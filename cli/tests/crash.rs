//! Crash safety of the real `tributary serve` binary: SIGKILL in the middle of a large sync, of
//! a sync that rotates an OAuth refresh token, of a stream of storage writes, and of a plugin
//! upload — then a restart on the same data directory must resume the interrupted work from its
//! last commit and end with the exact document set, intact cursors and tokens, and a consistent
//! state database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_fakes::boxapi::{FakeBox, Tree};
use tributary_fakes::faults::Fault;
use tributary_fakes::feed::FakeFeed;

const ADMIN: &str = "crash-test-admin-token-0123456789";

/// The `tributary serve` process.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("tributary.toml");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("crash-compile-cache");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"data\"\nplugins_dir = \"plugins\"\ncache_dir = {cache:?}\n\n[http]\nallow_private = [\"127.0.0.1\"]\n\n[service]\ntick_ms = 50\nmax_concurrent_syncs = 2\n",
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    path
}

impl Server {
    /// Starts the binary and waits for the address it prints.
    fn start(dir: &Path) -> Server {
        let config = write_config(dir);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["--config"])
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TRIBUTARY_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(addr) = line.strip_prefix("tributary serving on ") {
                    let _ = tx.send(addr.trim().to_string());
                    sent = true;
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(240))
            .expect("the server printed its address");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Server { child, base, http }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn setup(&self, tenant: &str, connector: Value) {
        let (status, body) = self
            .call("POST", "/v1/tenants", ADMIN, Some(json!({"id": tenant})))
            .await;
        assert!(status == 201 || status == 409, "{body}");
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/tenants/{tenant}/connectors"),
                ADMIN,
                Some(connector),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn sync(&self, tenant: &str, connector: &str, kind: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/tenants/{tenant}/connectors/{connector}/sync"),
                ADMIN,
                Some(json!({"kind": kind})),
            )
            .await;
        // 200: merged into the job of that connector and kind still queued (e.g. requeued by
        // the restart and not started yet).
        assert!(status == 202 || status == 200, "{status} {body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn job(&self, tenant: &str, id: &str) -> Value {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/tenants/{tenant}/jobs/{id}"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls a job until `done` says so.
    async fn until(
        &self,
        tenant: &str,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let job = self.job(tenant, id).await;
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "waiting for {what}: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finished(&self, tenant: &str, id: &str) -> Value {
        self.until(tenant, id, "the job to end", |j| {
            matches!(
                j["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        })
        .await
    }

    async fn search_ids(&self, tenant: &str, index: &str, q: &str) -> (u64, Vec<String>) {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/tenants/{tenant}/search?index={index}&q={q}&limit=1000"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let ids = body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        (body["total"].as_u64().unwrap(), ids)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn counts(job: &Value, key: &str) -> u64 {
    job["counts"][key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_large_sync_resumes_from_its_last_commit_with_the_exact_documents() {
    let feed = FakeFeed::start(None).await.unwrap();
    for i in 0..400 {
        feed.upsert(
            &format!("doc{i:04}"),
            &format!("crash item {i}"),
            Some("resumable body"),
        );
    }
    feed.faults()
        .add("/items", 100_000, Fault::Delay(Duration::from_millis(100)));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server
        .setup("t", json!({"id": "big", "plugin": "feed", "config": {"base_url": feed.base_url(), "page_size": 10}}))
        .await;
    let job = server.sync("t", "big", "full").await;
    // Past the commit at 100 documents, well before the end.
    let running = server
        .until("t", &job, "150 documents", |j| counts(j, "received") >= 150)
        .await;
    assert_eq!(running["status"], "running");
    server.kill();

    feed.faults().clear();
    let server = Server::start(dir.path());
    let done = server.finished("t", &job).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // The listing continued from its last checkpoint (the page of document 100 or later), not
    // from the start, and nothing indexed by the first run was taken for vanished. The counts
    // total both runs (the first one's up to its last checkpoint): every document once, plus at
    // most a couple of pages listed again from the checkpoint (the second run alone lists at
    // most 310; starting over would make it 500 or more).
    assert!(
        (400..=420).contains(&counts(&done, "received")),
        "the listing started over, or the first run's counts were lost: {done}"
    );
    assert_eq!(counts(&done, "deleted"), 0, "{done}");
    assert!(
        done["warnings"][0]
            .as_str()
            .unwrap()
            .contains("resumed after a host restart"),
        "{done}"
    );
    // Exactly the feed's documents, each once.
    let (total, mut ids) = server.search_ids("t", "big", "crash").await;
    assert_eq!(total, 400);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400);
    // A later full sync finds exactly these documents: nothing missing, nothing extra.
    let again = server.sync("t", "big", "full").await;
    let again = server.finished("t", &again).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(
        (
            counts(&again, "unchanged"),
            counts(&again, "indexed"),
            counts(&again, "deleted")
        ),
        (400, 0, 0),
        "{again}"
    );
    // The cursor survived: an incremental sync picks up only the change.
    feed.upsert("doc0007", "crash item 7 changed", Some("changed body"));
    let inc = server.sync("t", "big", "incremental").await;
    let inc = server.finished("t", &inc).await;
    assert_eq!(inc["status"], "succeeded", "{inc}");
    assert_eq!(counts(&inc, "received"), 1, "{inc}");
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_a_refresh_token_rotation_keeps_the_new_token() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let first_token = fake.refresh_token();
    fake.faults()
        .add("/2.0/", 100_000, Fault::Delay(Duration::from_millis(60)));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server
        .setup(
            "t",
            json!({"id": "box", "plugin": "box", "config": {
                "client_id": fake.client_id(), "client_secret": fake.client_secret(),
                "refresh_token": first_token, "api_base_url": fake.base_url(), "retry_count": 2,
            }}),
        )
        .await;
    let job = server.sync("t", "box", "full").await;
    server
        .until("t", &job, "documents to flow", |j| {
            counts(j, "received") >= 10
        })
        .await;
    // The configured token is dead now: Box rotated it on first use.
    assert_ne!(fake.refresh_token(), first_token);
    server.kill();

    fake.faults().clear();
    let server = Server::start(dir.path());
    let done = server.finished("t", &job).await;
    assert_eq!(
        done["status"], "succeeded",
        "the stored rotated token was lost: {done}"
    );
    // Both runs' counts (a document listed by both counts twice).
    let reached = counts(&done, "indexed") + counts(&done, "unchanged");
    assert!(reached > 10, "{done}");
    // A second full sync finds everything already there: no duplicates, nothing missing.
    let again = server.sync("t", "box", "full").await;
    let again = server.finished("t", &again).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(counts(&again, "indexed"), 0, "{again}");
    assert_eq!(counts(&again, "deleted"), 0, "{again}");
    let total = counts(&again, "unchanged");
    assert!(total > 10 && total <= reached, "{again} after {done}");
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_storage_writes_leaves_a_consistent_database() {
    let feed = FakeFeed::start(None).await.unwrap();
    for i in 0..2_000 {
        feed.upsert(&format!("w{i:05}"), &format!("write item {i}"), None);
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for c in ["a", "b"] {
        server
            .setup("t", json!({"id": c, "plugin": "feed", "config": {"base_url": feed.base_url(), "page_size": 5}}))
            .await;
    }
    // Each round: two syncs committing and checkpointing every 100 documents, killed at a
    // different moment.
    let mut server = Some(server);
    for round in 0..4u64 {
        let s = server.take().unwrap_or_else(|| Server::start(dir.path()));
        s.sync("t", "a", "full").await;
        s.sync("t", "b", "full").await;
        tokio::time::sleep(Duration::from_millis(300 + round * 350)).await;
        s.kill();
        let db = rusqlite::Connection::open(dir.path().join("data/tributary.db")).unwrap();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        // The running totals used for quotas agree with the rows they summarise.
        let mismatched: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM kv_usage u WHERE u.keys != (SELECT COUNT(*) FROM kv WHERE kv.tenant = u.tenant AND kv.connector = u.connector)
                    OR u.bytes != (SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) FROM kv WHERE kv.tenant = u.tenant AND kv.connector = u.connector)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(mismatched, 0, "round {round}");
    }
    // After the last kill, everything queued completes.
    let s = Server::start(dir.path());
    let (_, jobs) = s
        .call("GET", "/v1/tenants/t/jobs?limit=100", ADMIN, None)
        .await;
    for job in jobs["jobs"].as_array().unwrap() {
        let id = job["id"].as_str().unwrap();
        let done = s.finished("t", id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    for index in ["a", "b"] {
        assert_eq!(s.search_ids("t", index, "write").await.0, 2_000);
    }
    s.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_plugin_upload_leaves_one_working_version() {
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert("x", "swap survivor", Some("body"));
    let next = std::fs::read(tributary_e2e::FEED_NEXT).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for delay_ms in [5u64, 150, 600] {
        let server = Server::start(dir.path());
        let request = server
            .http
            .post(format!("{}/v1/plugins", server.base))
            .bearer_auth(ADMIN)
            .body(next.clone())
            .send();
        let upload = tokio::spawn(request);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill();
        let _ = upload.await;

        // Whatever the moment of the kill, the host restarts with exactly one active feed
        // version, and it runs jobs.
        let server = Server::start(dir.path());
        let (_, plugins) = server.call("GET", "/v1/plugins", ADMIN, None).await;
        let active: Vec<&Value> = plugins["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "feed" && p["active"] == true)
            .collect();
        assert_eq!(active.len(), 1, "{plugins}");
        let version = active[0]["version"].as_str().unwrap().to_string();
        assert!(version == "0.1.0" || version == "0.2.0-next", "{version}");
        let tenant = format!("t{delay_ms}");
        server
            .setup(
                &tenant,
                json!({"id": "c", "plugin": "feed", "config": {"base_url": feed.base_url()}}),
            )
            .await;
        let job = server.sync(&tenant, "c", "full").await;
        let job = server.finished(&tenant, &job).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["plugin_version"], version.as_str());
        server.kill();
    }
    // An upload that completes afterwards works as usual.
    let server = Server::start(dir.path());
    let response = server
        .http
        .post(format!("{}/v1/plugins", server.base))
        .bearer_auth(ADMIN)
        .body(next)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    server.kill();
}
