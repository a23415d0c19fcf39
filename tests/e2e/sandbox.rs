//! The sandbox through a real misbehaving component: allowlist, CPU and memory limits, WASI
//! isolation — each failing only its own job, with a clear error, while the host keeps serving.

use serde_json::json;
use tributary_fakes::feed::FakeFeed;
use tributary_host::{JobStatus, SyncKind};

use crate::support::{connector, host_with};

fn testbed(id: &str, config: serde_json::Value) -> tributary_host::ConnectorSpec {
    connector(id, "testbed", config)
}

async fn testbed_host(
    extra: Vec<tributary_host::ConnectorSpec>,
    tweak: impl FnOnce(&mut tributary_host::HostConfig),
) -> crate::support::TestHost {
    let t = host_with(extra, tweak).await;
    let path = tributary_e2e::TESTBED;
    t.host
        .load_plugin(std::fs::read(path).unwrap(), path)
        .await
        .unwrap();
    t
}

#[tokio::test]
async fn requests_outside_the_allowlist_are_refused() {
    let allowed = FakeFeed::start(None).await.unwrap();
    let other = FakeFeed::start(None).await.unwrap();
    let allowed_host = allowed.base_url().trim_start_matches("http://").to_string();
    let t = testbed_host(
        vec![
            testbed("outside", json!({"mode": "fetch", "allowed_host": allowed_host, "target": format!("{}/items", other.base_url())})),
            testbed("inside", json!({"mode": "fetch", "allowed_host": allowed_host, "target": format!("{}/items", allowed.base_url())})),
        ],
        |_| {},
    )
    .await;
    let report = t.sync("outside", SyncKind::Full).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap();
    assert_eq!(error.kind, "host");
    assert!(
        error
            .message
            .contains("is not in this plugin's allowed hosts"),
        "{error:?}"
    );
    assert_eq!(
        other.faults().seen().len(),
        0,
        "nothing reached the other server"
    );
    // The allowed one is reached (the testbed then reports what it got).
    let report = t.sync("inside", SyncKind::Full).await;
    assert!(
        report
            .error
            .unwrap()
            .message
            .contains("fetch unexpectedly got HTTP 200")
    );
    assert_eq!(allowed.faults().count("/items"), 1);
}

#[tokio::test]
async fn cpu_and_memory_limits_stop_the_plugin_not_the_host() {
    let feed = FakeFeed::start(None).await.unwrap();
    feed.upsert("x", "still works", Some("after the bad plugins"));
    let t = testbed_host(
        vec![
            testbed("spin", json!({"mode": "spin"})),
            testbed("hog", json!({"mode": "alloc"})),
            connector("news", "feed", json!({"base_url": feed.base_url()})),
        ],
        |c| {
            c.limits.cpu_seconds = 1;
            c.limits.memory_mib = 64;
        },
    )
    .await;
    let started = std::time::Instant::now();
    let report = t.sync("spin", SyncKind::Full).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap();
    assert_eq!(error.kind, "limit");
    assert!(
        error.message.contains("exceeded its CPU limit of 1 s"),
        "{error:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    let report = t.sync("hog", SyncKind::Full).await;
    let error = report.error.unwrap();
    assert_eq!(error.kind, "limit");
    assert!(
        error
            .message
            .contains("exceeded its memory limit of 64 MiB"),
        "{error:?}"
    );

    // The host is unharmed: a well-behaved connector still syncs.
    t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(t.documents("news").await.len(), 1);
}

#[tokio::test]
async fn plugins_see_no_host_files_or_environment() {
    // SAFETY of the test: the variable is set before the host starts any plugin.
    let t = testbed_host(
        vec![
            testbed(
                "file",
                json!({"mode": "read-file", "target": "/etc/passwd"}),
            ),
            testbed("env", json!({"mode": "read-env"})),
            testbed("trap", json!({"mode": "trap"})),
        ],
        |_| {},
    )
    .await;
    let error = t.sync("file", SyncKind::Full).await.error.unwrap();
    assert!(error.message.contains("file access denied"), "{error:?}");
    let error = t.sync("env", SyncKind::Full).await.error.unwrap();
    assert!(
        error.message.contains("no environment visible"),
        "{error:?}"
    );
    let error = t.sync("trap", SyncKind::Full).await.error.unwrap();
    assert_eq!(error.kind, "trap", "{error:?}");
}
