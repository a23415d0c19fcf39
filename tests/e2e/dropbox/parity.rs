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
