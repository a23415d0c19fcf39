//! Injected faults: rate limits, server errors, slow answers and expired tokens (in API calls
//! and in host-side downloads) change nothing in the result; a malformed answer or a listing
//! that keeps failing fails the sync and deletes nothing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tributary_fakes::Fault;
use tributary_fakes::dropbox::{FakeDropbox, Tree};
use tributary_host::{JobStatus, SyncKind};

use super::{assert_docs, host, spec, want_all};

fn expired_token() -> Fault {
    Fault::Respond {
        status: 401,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: r#"{"error_summary": "expired_access_token/", "error": {".tag": "expired_access_token"}}"#
            .into(),
    }
}

#[tokio::test]
async fn faults_and_expired_tokens_leave_the_exact_document_set() {
    let fake = Arc::new(FakeDropbox::start(Tree::small()).await.unwrap());
    let t = host(vec![spec("dbx", &fake, json!({"page_size": 7}))]).await;
    let plan = fake.faults();
    plan.add("/2/files/list_folder", 1, Fault::server_error(500))
        .add_after(
            "/2/files/list_folder/continue",
            2,
            1,
            Fault::too_many_requests(1),
        )
        .add_after("/2/files/list_folder/continue", 5, 1, expired_token())
        .add(
            "/2/sharing/list_received_files",
            1,
            Fault::Delay(Duration::from_millis(500)),
        )
        .add(
            "/2/sharing/get_shared_link_metadata",
            1,
            Fault::server_error(502),
        )
        .add("/2/files/download", 2, Fault::server_error(503))
        // Slow downloads: the access token expires while they wait.
        .add(
            "/2/files/download",
            6,
            Fault::Delay(Duration::from_millis(400)),
        );
    let expirer = {
        let fake = fake.clone();
        tokio::spawn(async move {
            while fake.faults().count("/2/files/download") < 3 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            fake.expire_access_tokens();
        })
    };
    let report = t.sync_ok("dbx", SyncKind::Full).await;
    expirer.await.unwrap();
    assert!(plan.exhausted(), "every fault fired");
    assert_docs(&t.documents("dbx").await, &want_all(&fake, None));
    // One grant to start, one for the scripted 401, one at least after the real expiry.
    assert!(fake.token_grants() >= 3, "{}", fake.token_grants());
    // Downloads refused with 401 were sent again with a fresh token (and every body arrived).
    let (downloads, _, _) = super::fetches(&fake);
    let (needed, _, _) = super::expected_fetches(&fake.entries(), &fake.received_files());
    assert!(
        downloads > needed + 2,
        "{downloads} downloads for {needed} files: {:?}",
        report.counts
    );

    // The same during an incremental sync: changes arrive despite faults.
    let note = fake
        .add_file("/Faults/note.txt", "written during faults")
        .unwrap();
    plan.add("/2/files/list_folder/continue", 1, expired_token())
        .add(
            "/2/files/list_folder/continue",
            1,
            Fault::too_many_requests(1),
        )
        .add("/2/files/download", 1, Fault::server_error(500));
    t.sync_ok("dbx", SyncKind::Incremental).await;
    assert!(plan.exhausted());
    let docs = t.documents("dbx").await;
    assert_eq!(
        docs[&note.id].body.as_deref(),
        Some("written during faults")
    );
    assert_docs(&docs, &want_all(&fake, None));
}

#[tokio::test]
async fn malformed_answers_and_persistent_failures_fail_and_delete_nothing() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({"page_size": 7}))]).await;
    t.sync_ok("dbx", SyncKind::Full).await;
    let before = t.documents("dbx").await;
    let state = t.state("dbx", "sync").await;
    let gone = fake
        .entries()
        .into_iter()
        .find(|e| !e.is_folder && e.path_lower.matches('/').count() == 1)
        .unwrap();
    fake.delete(&gone.path_display).unwrap();

    // A truncated JSON answer in the middle of a full listing.
    fake.faults()
        .add_after("/2/files/list_folder/continue", 3, 1, Fault::MalformedJson);
    let report = t.sync("dbx", SyncKind::Full).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap();
    assert_eq!(error.kind, "protocol", "{error:?}");
    assert!(
        error.message.contains("files/list_folder/continue")
            && error.message.contains("malformed JSON"),
        "{error:?}"
    );
    assert_eq!(
        t.documents("dbx").await.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_eq!(t.state("dbx", "sync").await, state, "cursor untouched");

    // The same in an incremental sync.
    fake.faults()
        .add("/2/files/list_folder/continue", 1, Fault::MalformedJson);
    let report = t.sync("dbx", SyncKind::Incremental).await;
    assert_eq!(report.error.unwrap().kind, "protocol");
    assert_eq!(t.documents("dbx").await.len(), before.len());
    assert_eq!(t.state("dbx", "sync").await, state);

    // A listing that fails on every attempt (1 + retry_count 2) is a transient failure.
    fake.faults()
        .add("/2/files/list_folder/continue", 3, Fault::server_error(503));
    let report = t.sync("dbx", SyncKind::Incremental).await;
    let error = report.error.unwrap();
    assert_eq!(error.kind, "transient", "{error:?}");
    assert!(error.message.contains("HTTP 503"), "{error:?}");
    assert_eq!(t.documents("dbx").await.len(), before.len());

    // Malformed content of an endpoint error (HTTP 409) is a protocol error too.
    fake.faults().add(
        "/2/files/list_folder/continue",
        1,
        Fault::Respond {
            status: 409,
            headers: vec![],
            body: "{\"error_summary\": ".into(),
        },
    );
    let report = t.sync("dbx", SyncKind::Incremental).await;
    assert_eq!(report.error.unwrap().kind, "protocol");

    // Once Dropbox answers properly, the deletion lands.
    let report = t.sync_ok("dbx", SyncKind::Incremental).await;
    assert_eq!(report.counts.deleted, 1);
    let after = t.documents("dbx").await;
    assert!(!after.contains_key(&gone.id));
    assert_docs(&after, &want_all(&fake, None));
}
