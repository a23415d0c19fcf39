//! Parity with Elastic's Dropbox connector where it matters for a migration (issue 14), and
//! the places where tributary is deliberately stricter: document-level security that fails
//! closed.

use serde_json::{Value, json};
use tributary_fakes::Fault;
use tributary_fakes::dropbox::{FakeDropbox, Tree};
use tributary_host::SyncKind;

use super::dls::want_with_access;
use super::{assert_docs, host, spec, want_all};

/// A 409 `access_error` as Dropbox answers a member listing the caller may not read.
fn no_permission() -> Fault {
    Fault::Respond {
        status: 409,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: r#"{"error_summary": "access_error/no_permission/..", "error": {".tag": "access_error", "access_error": {".tag": "no_permission"}}}"#
            .into(),
    }
}

/// Document-level security fails closed: an entry whose member list could not be read is
/// withheld (never indexed without a list or with an empty one, which both mean "everyone"),
/// the job report says how many, and once the members can be read it is indexed again.
#[tokio::test]
async fn unreadable_member_lists_withhold_documents_instead_of_publishing_them() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec(
        "dls",
        &fake,
        json!({
            "refresh_token": fake.team_refresh_token(),
            "use_document_level_security": true,
            "include_inherited_users_and_groups": true,
        }),
    )])
    .await;
    // Every shared folder's member list, and one file's, cannot be read (files shared with the
    // admin are not asked first: the listing comes before them).
    fake.faults()
        .add("/2/sharing/list_folder_members", 10_000, no_permission())
        .add("/2/sharing/list_file_members", 1, no_permission());
    let report = t.sync_ok("dls", SyncKind::Full).await;
    let docs = t.documents("dls").await;
    for (id, doc) in &docs {
        let acl = doc.fields.get("_allow_access_control");
        assert!(
            acl.and_then(Value::as_array).is_some_and(|a| !a.is_empty()),
            "{id} {:?} is public: _allow_access_control = {acl:?}",
            doc.fields.get("file_path")
        );
    }
    let in_shared_folders: Vec<String> = fake
        .entries_in(&fake.root_namespace_id())
        .into_iter()
        .filter(|e| {
            e.is_folder && (e.shared_folder_id.is_some() || e.parent_shared_folder_id.is_some())
        })
        .map(|e| e.id)
        .collect();
    assert!(!in_shared_folders.is_empty());
    for id in &in_shared_folders {
        assert!(!docs.contains_key(id), "folder {id} withheld");
    }
    let want = want_with_access(&fake, true);
    let missing: Vec<_> = want
        .iter()
        .filter(|(id, _)| !docs.contains_key(*id) && !in_shared_folders.contains(id))
        .map(|(id, w)| (id, w.kind.clone(), w.file_path.clone()))
        .collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    let withheld = in_shared_folders.len() + 1;
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with(&format!("{withheld} document(s) withheld"))),
        "{:?}",
        report.warnings
    );

    // Readable again: the next full sync indexes every document with its real list.
    fake.faults().clear();
    let report = t.sync_ok("dls", SyncKind::Full).await;
    assert_docs(&t.documents("dls").await, &want);
    assert!(
        !report.warnings.iter().any(|w| w.contains("withheld")),
        "{:?}",
        report.warnings
    );
}

/// With document-level security on, advanced rules are ignored (DLS wins, as in Elastic's
/// connector): the sync lists everything with access lists, searches nothing, and the job
/// report names the ignored rules.
#[tokio::test]
async fn advanced_rules_are_ignored_with_document_level_security() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let mut dls = spec(
        "dls-rules",
        &fake,
        json!({
            "refresh_token": fake.team_refresh_token(),
            "use_document_level_security": true,
        }),
    );
    dls.advanced_rules = Some(json!([
        {"query": "budget"},
        {"query": "roadmap", "options": {"file_extensions": ["md"]}},
    ]));
    let t = host(vec![dls]).await;
    for kind in [SyncKind::Full, SyncKind::Incremental] {
        let report = t.sync_ok("dls-rules", kind).await;
        assert_docs(
            &t.documents("dls-rules").await,
            &want_with_access(&fake, false),
        );
        assert!(
            report.warnings.iter().any(|w| w
                .starts_with("advanced rules ignored because document level security is on")
                && w.contains(r#"rule 1 (query "budget"), rule 2 (query "roadmap")"#)),
            "{kind:?}: {:?}",
            report.warnings
        );
    }
    assert_eq!(fake.faults().count("/2/files/search"), 0);
}

/// Something replaced at the same path (deleted and re-created, file ⇄ folder), reported by
/// Dropbox as the new entry only, takes the old document — and a replaced folder's whole
/// subtree — out of the index at the next incremental sync.
#[tokio::test]
async fn an_entry_replaced_at_the_same_path_leaves_nothing_behind() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({}))]).await;
    t.sync_ok("dbx", SyncKind::Full).await;
    let entries = fake.entries();
    let below = |folder: &str, path: &str| path.starts_with(&format!("{folder}/"));
    let folder = entries
        .iter()
        .find(|e| {
            e.is_folder
                && e.shared_folder_id.is_none()
                && e.parent_shared_folder_id.is_none()
                && entries
                    .iter()
                    .filter(|c| below(&e.path_lower, &c.path_lower))
                    .count()
                    >= 2
        })
        .expect("a folder with a subtree")
        .clone();
    let file = entries
        .iter()
        .find(|e| {
            !e.is_folder
                && e.parent_shared_folder_id.is_none()
                && !below(&folder.path_lower, &e.path_lower)
        })
        .expect("a file elsewhere")
        .clone();
    let new_file = fake
        .replace_with_file(&folder.path_display, "a file where a folder was")
        .unwrap();
    let new_folder = fake.replace_with_folder(&file.path_display).unwrap();
    assert!(new_file.id != folder.id && new_folder.id != file.id);
    t.sync_ok("dbx", SyncKind::Incremental).await;
    let docs = t.documents("dbx").await;
    assert!(!docs.contains_key(&folder.id) && !docs.contains_key(&file.id));
    assert_docs(&docs, &want_all(&fake, None));
}

/// A move reported as the new entry first and the old path's deletion later — on another page
/// (page size 1) — keeps the moved file and folder (with their contents) indexed at their new
/// paths; a real deletion in the same run still deletes.
#[tokio::test]
async fn a_move_whose_deletion_comes_a_page_later_keeps_the_moved_items() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({"page_size": 1}))]).await;
    t.sync_ok("dbx", SyncKind::Full).await;
    let entries = fake.entries();
    let file = entries
        .iter()
        .find(|e| !e.is_folder && e.parent_shared_folder_id.is_none())
        .unwrap()
        .clone();
    let folder = entries
        .iter()
        .find(|e| {
            e.is_folder
                && e.shared_folder_id.is_none()
                && e.parent_shared_folder_id.is_none()
                && !file.path_lower.starts_with(&format!("{}/", e.path_lower))
                && entries
                    .iter()
                    .any(|c| c.path_lower.starts_with(&format!("{}/", e.path_lower)))
        })
        .unwrap()
        .clone();
    let inside: Vec<String> = entries
        .iter()
        .filter(|c| c.path_lower.starts_with(&format!("{}/", folder.path_lower)))
        .map(|c| c.id.clone())
        .collect();
    let doomed = entries
        .iter()
        .find(|e| {
            !e.is_folder
                && e.id != file.id
                && e.parent_shared_folder_id.is_none()
                && !e.path_lower.starts_with(&format!("{}/", folder.path_lower))
        })
        .unwrap()
        .clone();
    fake.move_entry_deletion_last(&file.path_display, "/Moved file.txt")
        .unwrap();
    fake.move_entry_deletion_last(&folder.path_display, "/Moved folder")
        .unwrap();
    fake.delete(&doomed.path_display).unwrap();

    let report = t.sync_ok("dbx", SyncKind::Incremental).await;
    let docs = t.documents("dbx").await;
    assert!(docs.contains_key(&file.id), "moved file kept");
    assert_eq!(
        docs[&file.id].fields["file_path"],
        json!(super::in_team_space(&fake, "/Moved file.txt"))
    );
    assert!(docs.contains_key(&folder.id), "moved folder kept");
    for id in &inside {
        assert!(docs.contains_key(id), "{id} inside the moved folder kept");
    }
    assert!(
        !docs.contains_key(&doomed.id),
        "a real deletion still applies"
    );
    assert_eq!(report.counts.deleted, 1, "{report:?}");
    assert_docs(&docs, &want_all(&fake, None));
}

/// A file the listing has and that is also shared with the user individually is indexed once,
/// in the listing's shape, and stays so across incremental syncs; when it leaves the listing
/// but is still shared, it is indexed as a shared file.
#[tokio::test]
async fn a_file_both_listed_and_shared_keeps_the_listing_shape() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({}))]).await;
    let listed = fake
        .entries()
        .into_iter()
        .find(|e| !e.is_folder && e.parent_shared_folder_id.is_none() && !e.is_paper)
        .unwrap();
    let jordan = fake.account_by_email("jordan@globex.example").unwrap();
    fake.share_listed_file(&listed.path_display, &jordan.account_id)
        .unwrap();
    let shape = |docs: &std::collections::BTreeMap<String, tributary_host::sink::SinkDocument>| {
        let doc = &docs[&listed.id];
        (
            doc.fields.get("file_path").cloned(),
            doc.fields.get("url").cloned(),
        )
    };
    t.sync_ok("dbx", SyncKind::Full).await;
    let first = shape(&t.documents("dbx").await);
    assert_eq!(
        first.0,
        Some(json!(super::in_team_space(&fake, &listed.path_display)))
    );
    assert_eq!(first.1, None, "listing shape: no shared-link url");
    for _ in 0..2 {
        let report = t.sync_ok("dbx", SyncKind::Incremental).await;
        assert_eq!(shape(&t.documents("dbx").await), first, "no flip");
        assert_eq!(report.counts.indexed, 0, "{report:?}");
    }
    // Out of the listing, still shared: the shared-file shape.
    fake.delete(&listed.path_display).unwrap();
    t.sync_ok("dbx", SyncKind::Incremental).await;
    let docs = t.documents("dbx").await;
    let (path, url) = shape(&docs);
    assert_eq!(path, None, "{docs:?}");
    assert!(url.is_some());
}
