//! Plugins written in JavaScript (`plugins/js-rss`, componentized with jco) and Python
//! (`plugins/py-jsonapi`, componentized with componentize-py), loaded at runtime and synced
//! through the same host as the Rust plugins: exact documents and cursors after full and
//! incremental syncs.
//!
//! The components come from `plugins/build-foreign.sh`, which installs the pinned tools and
//! caches both tools and components outside the clone (`test.sh` runs it first; here it is a
//! no-op unless a source changed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};
use tributary_fakes::Fault;
use tributary_fakes::feed::FakeFeed;
use tributary_fakes::rss::FakeRss;
use tributary_host::{JobStatus, SyncKind};

use crate::support::{TestHost, connector, host_with};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Runs `plugins/build-foreign.sh args…` (serialised within this process; the script also locks
/// across processes) and returns its last line of output.
pub fn build_foreign(args: &[&str]) -> String {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let output = std::process::Command::new("bash")
        .arg(repo_root().join("plugins/build-foreign.sh"))
        .args(args)
        .output()
        .expect("running plugins/build-foreign.sh");
    assert!(
        output.status.success(),
        "plugins/build-foreign.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// The built component of a foreign plugin (`js-rss`, `py-jsonapi`), built once per test run.
pub fn component(name: &str) -> (PathBuf, Vec<u8>) {
    static BUILT: OnceLock<Mutex<BTreeMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let path = {
        let mut map = built.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| PathBuf::from(build_foreign(&[name])))
            .clone()
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, bytes)
}

async fn host_with_foreign(name: &str, specs: Vec<tributary_host::ConnectorSpec>) -> TestHost {
    let (path, wasm) = component(name);
    let t = host_with(specs, |_| {}).await;
    t.host
        .load_plugin(wasm, &path.display().to_string())
        .await
        .unwrap_or_else(|e| panic!("{name} loads: {e:#}"));
    t
}

fn fields(doc: &tributary_host::sink::SinkDocument) -> Value {
    Value::Object(doc.fields.clone())
}

#[tokio::test]
async fn javascript_rss_plugin_syncs_full_then_incrementally_by_date_and_guid() {
    let site = FakeRss::start().await.unwrap();
    site.publish_at(
        "post1",
        "Quarterly results",
        "<p>Revenue <b>up</b> 12%</p>",
        1,
    );
    site.publish_at("p2", "Holiday & schedule", "Offices closed on Friday", 2);
    site.categorize("p2", "office");
    let t = host_with_foreign(
        "js-rss",
        vec![
            connector(
                "news",
                "rss",
                json!({"feed_url": site.rss_url(), "retry_count": 2}),
            ),
            connector("atom", "rss", json!({"feed_url": site.atom_url()})),
        ],
    )
    .await;
    let plugin = t.host.plugin("rss").unwrap();
    assert_eq!(plugin.manifest.display_name, "RSS / Atom feed");

    // A 429 with Retry-After is absorbed by the plugin's own retry loop.
    site.faults()
        .add("/feed.xml", 1, Fault::too_many_requests(0));
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!((report.counts.received, report.counts.indexed), (2, 2));
    let docs = t.documents("news").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["p2", "post1"]);
    let base = site.base_url();
    assert_eq!(
        fields(&docs["post1"]),
        json!({
            "id": "post1", "_timestamp": "2024-01-01T00:01:00Z", "title": "Quarterly results",
            "url": format!("{base}/posts/post1"), "published": "2024-01-01T00:01:00Z",
            "categories": [], "feed": "Fake News", "type": "entry",
        })
    );
    assert_eq!(docs["post1"].body.as_deref(), Some("Revenue up 12%"));
    assert_eq!(docs["p2"].fields["title"], json!("Holiday & schedule"));
    assert_eq!(docs["p2"].fields["categories"], json!(["office"]));
    assert_eq!(docs["p2"].body.as_deref(), Some("Offices closed on Friday"));
    assert_eq!(docs["p2"].version.as_deref(), Some("2024-01-01T00:02:00Z"));
    assert_eq!(
        t.state("news", "cursor").await,
        Some(json!({"version": 1, "state": {
            "newest": "2024-01-01T00:02:00Z", "guids": ["p2"], "etag": site.etag(),
        }}))
    );

    // Nothing changed: one conditional request, answered 304, nothing indexed.
    site.faults().reset_log();
    let report = t.sync_ok("news", SyncKind::Incremental).await;
    assert_eq!(report.counts.received, 0);
    assert_eq!(site.faults().count("/feed.xml"), 1);

    // A new entry at the cursor's own date (a tie), one later, and an edit: only they arrive.
    site.publish_at("p3", "Same minute", "tied with p2", 2);
    site.publish_at("p4", "Board minutes", "<ul><li>hiring</li></ul>", 5);
    site.publish_at("post1", "Quarterly results (revised)", "Revenue up 13%", 6);
    let report = t.sync_ok("news", SyncKind::Incremental).await;
    assert_eq!((report.counts.received, report.counts.deleted), (3, 0));
    let docs = t.documents("news").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["p2", "p3", "p4", "post1"]);
    assert_eq!(docs["post1"].body.as_deref(), Some("Revenue up 13%"));
    assert_eq!(
        docs["post1"].fields["title"],
        json!("Quarterly results (revised)")
    );
    assert_eq!(docs["p4"].body.as_deref(), Some("hiring"));
    assert_eq!(
        t.state("news", "cursor").await,
        Some(json!({"version": 1, "state": {
            "newest": "2024-01-01T00:06:00Z", "guids": ["post1"], "etag": site.etag(),
        }}))
    );

    // The same entries as Atom, through the same plugin.
    let report = t.sync_ok("atom", SyncKind::Full).await;
    assert_eq!(report.counts.indexed, 4);
    let atom = t.documents("atom").await;
    assert_eq!(atom.keys().collect::<Vec<_>>(), ["p2", "p3", "p4", "post1"]);
    for (id, doc) in &atom {
        assert_eq!(doc.body, docs[id].body, "{id}");
        assert_eq!(doc.fields["title"], docs[id].fields["title"], "{id}");
        assert_eq!(doc.version, docs[id].version, "{id}");
    }

    // A full sync mirrors the feed's window: entries that fell out of it are deleted.
    site.set_window(2);
    let report = t.sync_ok("news", SyncKind::Full).await;
    assert_eq!(report.counts.deleted, 2);
    assert_eq!(
        t.documents("news").await.keys().collect::<Vec<_>>(),
        ["p4", "post1"]
    );

    // A feed that keeps failing fails the job with the plugin's typed error; nothing deleted.
    site.faults().add("/feed.xml", 3, Fault::server_error(503));
    let report = t.sync("news", SyncKind::Full).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap();
    assert_eq!(error.kind, "transient", "{error:?}");
    assert!(
        error.message.contains("HTTP 503 after 3 attempt(s)"),
        "{error:?}"
    );
    assert_eq!(t.documents("news").await.len(), 2);
}

#[tokio::test]
async fn python_json_api_plugin_syncs_pages_cursors_tombstones_and_attachments() {
    let api = FakeFeed::start(Some("py-token")).await.unwrap();
    api.upsert("a", "Alpha", Some("the first quarterly report"));
    api.upsert("b", "Beta", Some("holiday schedule"));
    api.upsert_with_attachment(
        "c",
        "Gamma",
        "minutes.html",
        b"<html><body><p>Board minutes: revenue up</p><script>x=1</script></body></html>",
    );
    let t = host_with_foreign(
        "py-jsonapi",
        vec![connector(
            "api",
            "jsonapi",
            json!({"base_url": api.base_url(), "api_token": "py-token", "page_size": 2, "retry_count": 1}),
        )],
    )
    .await;

    api.faults().add("/items", 1, Fault::server_error(502));
    let report = t.sync_ok("api", SyncKind::Full).await;
    assert_eq!(
        (
            report.counts.received,
            report.counts.indexed,
            report.counts.content_extracted
        ),
        (3, 3, 1)
    );
    let docs = t.documents("api").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(
        fields(&docs["a"]),
        json!({"id": "a", "_timestamp": "2024-01-01T00:01:00Z", "title": "Alpha", "type": "item"})
    );
    assert_eq!(
        docs["a"].body.as_deref(),
        Some("the first quarterly report")
    );
    assert_eq!(docs["c"].body.as_deref(), Some("Board minutes: revenue up"));
    assert_eq!(docs["c"].fields["attachment"], json!("minutes.html"));
    assert_eq!(
        t.state("api", "cursor").await,
        Some(json!({"version": 1, "state": api.cursor()}))
    );
    // Two pages of two, each asked with the token; the first one twice (the 502).
    assert_eq!(api.faults().count("/items"), 3);

    api.upsert("b", "Beta", Some("holiday schedule, revised"));
    api.delete("a");
    api.upsert("d", "Delta", Some("new hire onboarding"));
    api.faults().reset_log();
    let report = t.sync_ok("api", SyncKind::Incremental).await;
    assert_eq!((report.counts.received, report.counts.deleted), (2, 1));
    let docs = t.documents("api").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["b", "c", "d"]);
    assert_eq!(docs["b"].body.as_deref(), Some("holiday schedule, revised"));
    assert_eq!(docs["d"].version.as_deref(), Some("2024-01-01T00:06:00Z"));
    assert_eq!(
        t.state("api", "cursor").await,
        Some(json!({"version": 1, "state": api.cursor()}))
    );
    assert!(
        api.faults()
            .seen()
            .iter()
            .all(|r| !r.path.starts_with("/items") || r.path.contains("since=")),
        "incremental asks only for changes"
    );

    // A wrong token is the plugin's typed `auth` error.
    let mut bad = t.host.config().connector(None, "api").unwrap().clone();
    bad.config.insert("api_token".into(), json!("wrong"));
    let report = t
        .host
        .sync_spec(&bad, SyncKind::Full, Default::default())
        .await
        .unwrap();
    let error = report.error.unwrap();
    assert_eq!(error.kind, "auth", "{error:?}");
    assert!(error.message.contains("HTTP 401"), "{error:?}");
    assert_eq!(t.documents("api").await.len(), 3, "nothing deleted");
}
