//! The Box plugin where a migration from Elastic's connector meets a deliberate difference
//! (issue 14): document-level security that fails closed.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tributary_fakes::Fault;
use tributary_fakes::boxapi::{BoxItem, Collaborator, FakeBox, Tree};
use tributary_host::SyncKind;
use tributary_host::sink::SinkDocument;

use crate::boxes::{assert_documents, assert_permissions, busy_folder, free, id_of};
use crate::support::host_with;

fn forbidden() -> Fault {
    Fault::Respond {
        status: 403,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: r#"{"type": "error", "status": 403, "code": "access_denied_insufficient_permissions", "message": "Access denied - insufficient permission"}"#
            .into(),
    }
}

/// The access list of every document, asserting none is missing or empty (both mean public).
fn access_lists(docs: &BTreeMap<String, SinkDocument>) -> BTreeMap<String, Vec<String>> {
    docs.iter()
        .map(|(id, doc)| {
            let acl: Vec<String> = doc
                .fields
                .get("_allow_access_control")
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("{id} has no _allow_access_control"))
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            assert!(!acl.is_empty(), "{id} is public");
            (id.clone(), acl)
        })
        .collect()
}

/// A folder whose collaborations cannot be listed is withheld (not indexed for its owner and
/// inherited collaborators only, and never for everyone); the report counts it; its contents
/// are indexed with the identities that could be read; once readable, it is indexed again.
#[tokio::test]
async fn unreadable_collaborations_withhold_the_item() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(
        vec![free(&fake, json!({"use_document_level_security": true}))],
        |_| {},
    )
    .await;
    let design = id_of(&fake, "/Design Reviews");
    fake.faults().add(
        &format!("/folders/{design}/collaborations"),
        10_000,
        forbidden(),
    );
    let report = t.sync_ok("box", SyncKind::Full).await;
    let docs = t.documents("box").await;
    let expected: Vec<BoxItem> = fake
        .items()
        .into_iter()
        .filter(|i| i.id != design)
        .collect();
    assert!(
        expected
            .iter()
            .any(|i| i.path.starts_with("/Design Reviews/"))
    );
    assert_documents(&docs, &expected);
    access_lists(&docs);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with("box: 1 item(s) withheld")),
        "{:?}",
        report.warnings
    );

    fake.faults().clear();
    let report = t.sync_ok("box", SyncKind::Full).await;
    let docs = t.documents("box").await;
    assert_documents(&docs, &fake.items());
    assert_permissions(&fake, &docs);
    assert!(!report.warnings.iter().any(|w| w.contains("withheld")));
}

/// Box roles decide who may read: an `uploader` collaborator can add files but not see them,
/// so gains no access; a `viewer uploader` can.
#[tokio::test]
async fn uploader_only_collaborators_get_no_read_access() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(
        vec![free(&fake, json!({"use_document_level_security": true}))],
        |_| {},
    )
    .await;
    t.sync_ok("box", SyncKind::Full).await;
    let folder = busy_folder(&fake, 3);
    let below = |docs: &BTreeMap<String, SinkDocument>| -> BTreeMap<String, Vec<String>> {
        access_lists(docs)
            .into_iter()
            .filter(|(id, _)| {
                let path = docs[id].fields["path"].as_str().unwrap_or_default();
                *id == folder.id || path.starts_with(&format!("{}/", folder.path))
            })
            .collect()
    };
    let before = below(&t.documents("box").await);
    assert!(before.len() >= 3);
    let alan = fake.users()[2].id.clone();
    let alan_id = format!("user_id:{alan}");
    assert!(before.values().all(|acl| !acl.contains(&alan_id)));

    fake.add_collaboration_with_role(&folder.id, Collaborator::User(alan.clone()), "uploader")
        .unwrap();
    t.sync_ok("box", SyncKind::Incremental).await;
    assert_eq!(below(&t.documents("box").await), before);
    t.sync_ok("box", SyncKind::Full).await;
    assert_eq!(below(&t.documents("box").await), before);

    // A role that can see content does grant it.
    let group = fake
        .groups()
        .into_iter()
        .map(|g| g.id)
        .find(|g| {
            let g = format!("group:{g}");
            before.values().all(|acl| !acl.contains(&g))
        })
        .expect("a group without access");
    fake.add_collaboration_with_role(
        &folder.id,
        Collaborator::Group(group.clone()),
        "viewer uploader",
    )
    .unwrap();
    t.sync_ok("box", SyncKind::Incremental).await;
    let after = below(&t.documents("box").await);
    assert_eq!(after.len(), before.len());
    let group = format!("group:{group}");
    assert!(
        after
            .values()
            .all(|acl| acl.contains(&group) && !acl.contains(&alan_id)),
        "{after:?}"
    );
}

/// A full sync does not need events: when `GET /events?stream_position=now` fails (here a
/// 404 as from a Box-compatible gateway), the full sync still indexes everything and says so
/// in its report; the next incremental sync lists everything like a full one, and stores
/// positions again, so the one after reads events.
#[tokio::test]
async fn a_refused_event_position_does_not_fail_the_full_sync() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(vec![free(&fake, json!({}))], |_| {}).await;
    fake.faults().add(
        "/events",
        10_000,
        Fault::Respond {
            status: 404,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body:
                r#"{"type": "error", "status": 404, "code": "not_found", "message": "Not Found"}"#
                    .into(),
        },
    );
    let report = t.sync_ok("box", SyncKind::Full).await;
    assert_documents(&t.documents("box").await, &fake.items());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("event stream position could not be read")),
        "{:?}",
        report.warnings
    );

    // Events work again: the next incremental sync is a full listing (its change is found by
    // listing, not by an event it never had a position for).
    fake.faults().clear();
    let created = fake
        .create_file("0", "after.txt", "made between syncs")
        .unwrap();
    fake.faults().reset_log();
    t.sync_ok("box", SyncKind::Incremental).await;
    let folders = fake
        .items()
        .iter()
        .filter(|i| i.kind == tributary_fakes::boxapi::ItemKind::Folder)
        .count();
    assert!(fake.faults().count("/items") > folders, "listed everything");
    let docs = t.documents("box").await;
    assert!(docs.contains_key(&created));
    assert_documents(&docs, &fake.items());

    // …and it stored positions: the following incremental sync reads events, lists nothing.
    let edited = fake.create_file("0", "later.txt", "made after").unwrap();
    fake.faults().reset_log();
    t.sync_ok("box", SyncKind::Incremental).await;
    assert!(fake.faults().count("/events") > 0);
    assert!(fake.faults().count("/items") < folders);
    assert!(t.documents("box").await.contains_key(&edited));
}

/// Box accepts an invitation of a managed user at once and reports only
/// `COLLAB_INVITE_COLLABORATOR`: the next incremental sync grants the new collaborator access
/// to the folder and everything below it.
#[tokio::test]
async fn an_invitation_accepted_at_once_grants_access_incrementally() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(
        vec![free(&fake, json!({"use_document_level_security": true}))],
        |_| {},
    )
    .await;
    t.sync_ok("box", SyncKind::Full).await;
    let folder = busy_folder(&fake, 3);
    let alan = fake.users()[2].id.clone();
    let alan_id = format!("user_id:{alan}");
    let below = |docs: &BTreeMap<String, SinkDocument>| -> BTreeMap<String, Vec<String>> {
        access_lists(docs)
            .into_iter()
            .filter(|(id, _)| {
                let path = docs[id].fields["path"].as_str().unwrap_or_default();
                *id == folder.id || path.starts_with(&format!("{}/", folder.path))
            })
            .collect()
    };
    assert!(
        below(&t.documents("box").await)
            .values()
            .all(|acl| !acl.contains(&alan_id))
    );
    fake.invite_collaborator(&folder.id, Collaborator::User(alan.clone()), "viewer")
        .unwrap();
    t.sync_ok("box", SyncKind::Incremental).await;
    let after = below(&t.documents("box").await);
    assert!(after.len() >= 3);
    assert!(
        after.values().all(|acl| acl.contains(&alan_id)),
        "{after:?}"
    );
}

/// Event positions belong to the signed-in Box user, not to the client id: after the refresh
/// token is replaced by one of another user (same app), the next incremental sync lists that
/// user's tree instead of reading the old user's event stream from the old position.
#[tokio::test]
async fn positions_belong_to_the_signed_in_user() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(vec![free(&fake, json!({}))], |_| {}).await;
    t.sync_ok("box", SyncKind::Full).await;
    let grace = fake.users()[1].id.clone();
    let token = fake.authorize_as(&grace).unwrap();
    let t = t
        .restart_with(|config| {
            config.connectors[0]
                .config
                .insert("refresh_token".into(), json!(token));
        })
        .await;
    fake.faults().reset_log();
    let report = t.sync_ok("box", SyncKind::Incremental).await;
    assert!(fake.faults().count("/items") > 0, "listed Grace's tree");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("signed-in user or the configuration changed")),
        "{:?}",
        report.warnings
    );
    let docs = t.documents("box").await;
    for item in fake.items_for_user(&grace).unwrap() {
        assert!(docs.contains_key(&item.id), "{} {}", item.id, item.path);
    }
}

/// One folder Box refuses (403) no longer fails the whole sync: it is skipped with a named,
/// counted error under Elastic's error limits, and what was indexed from it before stays —
/// neither the host (vanished documents) nor the plugin's map (pruning) drops it. Once it can be
/// read again, the next full sync lists it and removes what really vanished there.
#[tokio::test]
async fn a_forbidden_folder_is_skipped_and_its_documents_are_kept() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(vec![free(&fake, json!({}))], |_| {}).await;
    t.sync_ok("box", SyncKind::Full).await;
    let before = t.documents("box").await;
    let design = id_of(&fake, "/Design Reviews");
    let inside: Vec<BoxItem> = fake
        .items()
        .into_iter()
        .filter(|i| i.path.starts_with("/Design Reviews/"))
        .collect();
    assert!(inside.len() >= 2, "the folder has contents");
    // Elsewhere, a real change: it must still be applied.
    let gone_elsewhere = fake
        .items()
        .into_iter()
        .find(|i| {
            i.kind == tributary_fakes::boxapi::ItemKind::File
                && !i.path.starts_with("/Design Reviews/")
        })
        .unwrap();
    fake.delete_permanently(&gone_elsewhere.id).unwrap();
    // And inside the refused folder, a deletion the sync cannot see yet.
    let gone_inside = inside
        .iter()
        .find(|i| i.kind == tributary_fakes::boxapi::ItemKind::File)
        .unwrap()
        .clone();
    fake.delete_permanently(&gone_inside.id).unwrap();
    fake.faults()
        .add(&format!("/folders/{design}/items"), 10_000, forbidden());

    let report = t.sync_ok("box", SyncKind::Full).await;
    let docs = t.documents("box").await;
    for item in &inside {
        assert!(docs.contains_key(&item.id), "{} kept", item.path);
    }
    assert!(
        !docs.contains_key(&gone_elsewhere.id),
        "changes elsewhere still apply"
    );
    assert_eq!(report.counts.deleted, 1, "{report:?}");
    assert_eq!(report.counts.kept, inside.len() as u64, "{report:?}");
    let skipped: Vec<&String> = report
        .warnings
        .iter()
        .filter(|w| w.contains("1 part(s) skipped under the error budget"))
        .collect();
    assert_eq!(skipped.len(), 1, "{:?}", report.warnings);
    assert!(
        skipped[0].contains(&format!("folder {design}")) && skipped[0].contains("403"),
        "{skipped:?}"
    );
    assert_eq!(docs.len(), before.len() - 1);

    // Readable again: the next full sync lists it and the deletion inside is applied.
    fake.faults().clear();
    let report = t.sync_ok("box", SyncKind::Full).await;
    assert_eq!(report.counts.kept, 0);
    let docs = t.documents("box").await;
    assert!(!docs.contains_key(&gone_inside.id));
    assert_documents(&docs, &fake.items());
}

/// A source that refuses everything still fails the sync, naming the budget rule, and deletes
/// nothing.
#[tokio::test]
async fn refusing_every_folder_exhausts_the_error_budget_and_deletes_nothing() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(vec![free(&fake, json!({}))], |_| {}).await;
    // Every folder but the top refuses: with more than 10 folders at the top, more than 10
    // fail in a row once the top is listed.
    for n in 0..12 {
        fake.create_folder("0", &format!("extra {n}")).unwrap();
    }
    t.sync_ok("box", SyncKind::Full).await;
    let before = t.documents("box").await;
    for item in fake.items() {
        if item.kind == tributary_fakes::boxapi::ItemKind::Folder {
            fake.faults()
                .add(&format!("/folders/{}/items", item.id), 10_000, forbidden());
        }
    }
    let report = t.sync("box", SyncKind::Full).await;
    assert_eq!(
        report.status,
        tributary_host::JobStatus::Failed,
        "{report:?}"
    );
    let error = report.error.unwrap();
    assert!(
        error.message.contains("more than 10 errors in a row"),
        "{error:?}"
    );
    assert_eq!(report.counts.deleted, 0);
    assert_eq!(t.documents("box").await.len(), before.len());
}

/// An enterprise crawl where one user cannot be impersonated (`As-User` refused): that user's
/// view is skipped with a named error, their documents stay, the other users' views are synced.
#[tokio::test]
async fn a_user_who_cannot_be_impersonated_is_skipped_and_their_documents_are_kept() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(vec![crate::boxes::enterprise(&fake, json!({}))], |_| {}).await;
    t.sync_ok("box", SyncKind::Full).await;
    let before = t.documents("box").await;
    // The first view's top listing is refused; a new file of another user must still arrive.
    let users = fake.users();
    let first = &users[0];
    let other = users
        .iter()
        .find(|u| u.id != first.id && !u.service_account)
        .unwrap();
    let added = fake
        .create_file_as(&other.id, "0", "fresh.txt", "new while one view is closed")
        .unwrap();
    fake.faults().add("/folders/0/items", 1, forbidden());

    let report = t.sync_ok("box", SyncKind::Full).await;
    let docs = t.documents("box").await;
    for id in before.keys() {
        assert!(docs.contains_key(id), "{id} kept");
    }
    assert!(docs.contains_key(&added), "other views are synced");
    assert_eq!(report.counts.deleted, 0, "{report:?}");
    assert!(report.counts.kept > 0, "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("part(s) skipped") && w.contains("the files of user")),
        "{:?}",
        report.warnings
    );
}

/// Box keeps the `changes` stream for 21 days: an incremental sync whose stored position is
/// older lists everything instead of trusting events that may be gone, and says so; its fresh
/// positions make the next incremental sync read events again.
#[tokio::test]
async fn a_stream_position_older_than_box_keeps_events_falls_back_to_listing() {
    let fake = FakeBox::start(Tree::small()).await.unwrap();
    let t = host_with(vec![free(&fake, json!({}))], |_| {}).await;
    t.sync_ok("box", SyncKind::Full).await;
    let at = t.state("box", "positions_at").await.expect("positions_at");
    let now = at["me"].as_i64().unwrap();
    // A change Box's stream no longer holds (as if made 30 days ago), then a month passes.
    let created = fake
        .create_file("0", "old change.txt", "made long ago")
        .unwrap();
    t.set_state("box", "positions_at", &json!({"me": now - 30 * 86_400}))
        .await;
    fake.faults().reset_log();
    let report = t.sync_ok("box", SyncKind::Incremental).await;
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("30 days old") && w.contains("listing everything")),
        "{:?}",
        report.warnings
    );
    assert!(fake.faults().count("/items") > 0, "listed");
    let docs = t.documents("box").await;
    assert!(docs.contains_key(&created));
    assert_documents(&docs, &fake.items());
    // Fresh again: events are read, nothing is listed.
    let later = fake.create_file("0", "later.txt", "recent").unwrap();
    fake.faults().reset_log();
    let report = t.sync_ok("box", SyncKind::Incremental).await;
    assert!(!report.warnings.iter().any(|w| w.contains("days old")));
    assert_eq!(fake.faults().count("/items"), 0);
    assert!(fake.faults().count("/events") > 0);
    assert!(t.documents("box").await.contains_key(&later));
}
