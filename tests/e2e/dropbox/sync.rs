//! Full and incremental syncs of a generated tree, team folders, and typed errors.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;
use tributary_fakes::dropbox::{FakeDropbox, Tree};
use tributary_host::{JobStatus, SyncKind};

use super::{assert_docs, expected_fetches, fetches, host, plan, spec, want_all};

#[tokio::test]
async fn full_sync_indexes_every_entry_and_shared_file_exactly_then_skips_unchanged() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    // A small page size exercises `list_folder/continue`.
    let t = host(vec![spec("dbx", &fake, json!({"page_size": 7}))]).await;

    let report = t.sync_ok("dbx", SyncKind::Full).await;
    let want = want_all(&fake, None);
    // Rooted at the team space as Elastic's connector: the admin's 100 home entries (under
    // "/Alex Doe"), the member folder itself, the team folders and their content, and the
    // 4 received files.
    let root = fake.root_namespace_id();
    let rooted = fake.entries_in(&root);
    assert_eq!(want.len(), rooted.len() + 4);
    assert!(rooted.len() > 100 + 1, "team folders are listed too");
    assert!(
        rooted
            .iter()
            .any(|e| e.path_display == super::in_team_space(&fake, ""))
    );
    let docs = t.documents("dbx").await;
    assert_docs(&docs, &want);
    // Names with quotes, apostrophes and non-ASCII characters got their content too.
    for name in ["\"Quoted\" plan", "O'Brien memo", "Résumé", "会议纪要"] {
        assert!(
            docs.values().any(|d| d.fields["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(name))
                && d.body.is_some()),
            "{name}"
        );
    }
    // Content was fetched exactly for supported files of at most 10 MiB, nothing else.
    assert_eq!(
        fetches(&fake),
        expected_fetches(&rooted, &fake.received_files())
    );
    assert!(fake.entries().iter().any(|e| e.size > super::MAX_SIZE));
    assert_eq!(report.counts.indexed, want.len() as u64);
    assert!(
        fake.faults().count("/2/files/list_folder/continue") >= 14,
        "paginated"
    );
    let state = t.state("dbx", "sync").await.expect("sync state");
    assert_eq!(state["mode"], json!("listing"));
    assert!(state["cursor"].is_string());

    // Nothing changed: a second full sync re-indexes and re-downloads nothing.
    fake.faults().reset_log();
    let report = t.sync_ok("dbx", SyncKind::Full).await;
    assert_eq!(
        (
            report.counts.unchanged,
            report.counts.indexed,
            report.counts.deleted
        ),
        (want.len() as u64, 0, 0)
    );
    assert_eq!(fetches(&fake), (0, 0, 0));
    let again = t.documents("dbx").await;
    assert_eq!(versions(&again), versions(&docs));
}

fn versions(
    docs: &BTreeMap<String, tributary_host::sink::SinkDocument>,
) -> BTreeMap<String, Option<String>> {
    docs.iter()
        .map(|(id, d)| (id.clone(), d.version.clone()))
        .collect()
}

#[tokio::test]
async fn incremental_sync_applies_adds_edits_renames_moves_and_deletions() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({}))]).await;
    t.sync_ok("dbx", SyncKind::Full).await;

    // Two small, disjoint folders with content: one to delete, one to move; files elsewhere.
    let entries = fake.entries();
    let below = |folder: &tributary_fakes::dropbox::Entry| {
        let prefix = format!("{}/", folder.path_lower);
        entries
            .iter()
            .filter(|x| x.path_lower.starts_with(&prefix))
            .count()
    };
    let mut folders: Vec<_> = entries
        .iter()
        .filter(|e| e.is_folder && e.shared_folder_id.is_none() && below(e) >= 2)
        .collect();
    folders.sort_by_key(|f| below(f));
    let doomed = folders[0].clone();
    let moved = folders
        .iter()
        .find(|f| {
            let (a, b) = (
                format!("{}/", f.path_lower),
                format!("{}/", doomed.path_lower),
            );
            !a.starts_with(&b) && !b.starts_with(&a)
        })
        .map(|f| (*f).clone())
        .unwrap();
    let outside = |e: &&tributary_fakes::dropbox::Entry| {
        !e.path_lower.starts_with(&format!("{}/", doomed.path_lower))
            && !e.path_lower.starts_with(&format!("{}/", moved.path_lower))
    };
    let texts: Vec<_> = entries
        .iter()
        .filter(outside)
        .filter(|e| {
            plan(e) == Some("download") && (e.name.ends_with(".txt") || e.name.ends_with(".md"))
        })
        .collect();
    let (edited, renamed, deleted) = (texts[0].clone(), texts[1].clone(), texts[2].clone());

    fake.add_file("/Inbox/new note.txt", "fresh incremental content")
        .unwrap();
    fake.edit_file(&edited.path_display, "edited body, second revision")
        .unwrap();
    let renamed_to = format!("{}/renamed \"file\" é.txt", parent(&renamed.path_display));
    fake.move_entry(&renamed.path_display, &renamed_to).unwrap();
    fake.move_entry(&moved.path_display, "/Inbox/Moved here")
        .unwrap();
    fake.delete(&deleted.path_display).unwrap();
    fake.delete(&doomed.path_display).unwrap();
    let jordan = fake.account_by_email("jordan@globex.example").unwrap();
    fake.add_received_file("Vendor quote.txt", "quote: 12 widgets", &jordan.account_id)
        .unwrap();
    let unshared = fake.received_files()[0].id.clone();
    fake.remove_received_file(&unshared).unwrap();

    fake.faults().reset_log();
    let report = t.sync_ok("dbx", SyncKind::Incremental).await;
    let docs = t.documents("dbx").await;
    let want = want_all(&fake, None);
    assert_docs(&docs, &want);
    assert!(!docs.contains_key(&doomed.id) && !docs.contains_key(&deleted.id));
    assert!(!docs.contains_key(&unshared));
    assert_eq!(
        docs[&renamed.id].fields["file_path"],
        json!(super::in_team_space(&fake, &renamed_to)),
        "renamed in place (same id)"
    );
    assert_eq!(
        docs[&edited.id].body.as_deref(),
        Some("edited body, second revision")
    );

    // Cost follows the changes: no re-listing, and downloads only for what changed.
    let seen = fake.faults().seen();
    assert!(
        !seen.iter().any(|s| s.path == "/2/files/list_folder"),
        "{seen:?}"
    );
    let moved_prefix = "/inbox/moved here/";
    let moved_now: Vec<_> = fake
        .entries()
        .into_iter()
        .filter(|e| e.path_lower.starts_with(moved_prefix))
        .collect();
    let (moved_downloads, moved_exports, _) = expected_fetches(&moved_now, &[]);
    // new note + edited + renamed, plus everything below the moved folder; one new shared file.
    assert_eq!(
        fetches(&fake),
        (3 + moved_downloads, moved_exports, 1),
        "{:?}",
        report.counts
    );
    let doomed_subtree = entries
        .iter()
        .filter(|e| {
            e.path_lower == doomed.path_lower
                || e.path_lower.starts_with(&format!("{}/", doomed.path_lower))
        })
        .count();
    // The doomed subtree, the deleted file and the un-shared file.
    assert_eq!(report.counts.deleted, doomed_subtree as u64 + 2);

    // Nothing changed since: an incremental run emits nothing.
    fake.faults().reset_log();
    let report = t.sync_ok("dbx", SyncKind::Incremental).await;
    assert_eq!(
        (report.counts.received, report.counts.deleted),
        (0, 0),
        "{report:?}"
    );
    assert_eq!(fetches(&fake), (0, 0, 0));

    // The incremental runs produced exactly what a full sync produces: it finds nothing new.
    let report = t.sync_ok("dbx", SyncKind::Full).await;
    assert_eq!(
        (report.counts.indexed, report.counts.deleted),
        (0, 0),
        "{report:?}"
    );
    assert_docs(&t.documents("dbx").await, &want);
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

#[tokio::test]
async fn a_reset_cursor_rebuilds_and_deletes_what_vanished() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({}))]).await;
    t.sync_ok("dbx", SyncKind::Full).await;
    let gone = fake
        .entries()
        .into_iter()
        .find(|e| !e.is_folder && e.path_lower.matches('/').count() == 1)
        .unwrap();
    fake.delete(&gone.path_display).unwrap();
    fake.add_file("/After reset.md", "# after\n\nthe cursor was reset")
        .unwrap();
    fake.reset_cursors();
    let report = t.sync_ok("dbx", SyncKind::Incremental).await;
    assert!(
        report.warnings.iter().any(|w| w.contains("reset")),
        "{:?}",
        report.warnings
    );
    assert_docs(&t.documents("dbx").await, &want_all(&fake, None));
    assert_eq!(report.counts.deleted, 1);
}

#[tokio::test]
async fn deep_paths_beyond_the_storage_key_limit_are_deleted_with_their_folder() {
    // Three 200-character folder names: paths longer than a storage key (512 bytes).
    let deep = format!(
        "/Deep/{a}/{b}/{c}",
        a = "a".repeat(200),
        b = "b".repeat(200),
        c = "ç".repeat(100)
    );
    let tree = Tree::empty()
        .with_file(&format!("{deep}/inner notes.txt"), "deep inside")
        .with_file("/Deep/shallow.txt", "near the top")
        .with_file("/Keep.txt", "kept");
    let fake = FakeDropbox::start(tree).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({}))]).await;
    t.sync_ok("dbx", SyncKind::Full).await;
    assert_docs(&t.documents("dbx").await, &want_all(&fake, None));
    let before = t.documents("dbx").await.len();

    fake.delete(&format!("/Deep/{}", "a".repeat(200))).unwrap();
    let report = t.sync_ok("dbx", SyncKind::Incremental).await;
    // The folder, its two sub-folders and the file, found through the cut keys.
    assert_eq!(report.counts.deleted, 4, "{report:?}");
    assert_eq!(t.documents("dbx").await.len(), before - 4);
    assert_docs(&t.documents("dbx").await, &want_all(&fake, None));
}

#[tokio::test]
async fn team_folders_sync_the_whole_team_space() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let root = fake.root_namespace_id();
    let t = host(vec![
        spec("team", &fake, json!({"include_team_folders": true})),
        spec(
            "team-admin",
            &fake,
            json!({"include_team_folders": true, "refresh_token": fake.team_refresh_token()}),
        ),
    ])
    .await;
    t.sync_ok("team", SyncKind::Full).await;
    let want = want_all(&fake, Some(&root));
    let team_folder_entries = fake
        .entries_in(&root)
        .iter()
        .filter(|e| {
            e.path_lower.starts_with("/engineering") || e.path_lower.starts_with("/company")
        })
        .count();
    assert!(team_folder_entries >= 5, "team folders and their content");
    assert_docs(&t.documents("team").await, &want);

    // A team-linked token acts as the admin (Dropbox-API-Select-User): the same documents.
    t.sync_ok("team-admin", SyncKind::Full).await;
    assert_docs(&t.documents("team-admin").await, &want);

    // Changes inside a team folder arrive incrementally, with team-space paths.
    let engineering = fake.team_folder_namespace_id("Engineering").unwrap();
    let added = fake
        .add_file(
            &format!("ns:{engineering}/Specs/Search API.md"),
            "# Search API\n\nrelevance tuning",
        )
        .unwrap();
    t.sync_ok("team", SyncKind::Incremental).await;
    let docs = t.documents("team").await;
    assert_eq!(
        docs[&added.id].fields["file_path"],
        json!("/Engineering/Specs/Search API.md")
    );
    assert_docs(&docs, &want_all(&fake, Some(&root)));
}

#[tokio::test]
async fn listing_starts_at_the_root_namespace_like_elastic_unless_team_folders_are_off() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![
        spec("default", &fake, json!({})),
        spec("home", &fake, json!({"include_team_folders": false})),
    ])
    .await;
    t.sync_ok("default", SyncKind::Full).await;
    let docs = t.documents("default").await;
    assert_docs(&docs, &want_all(&fake, None));
    // The same file has Elastic's team-space path, so a migrated index keeps its paths.
    let report = fake.entries().into_iter().find(|e| !e.is_folder).unwrap();
    assert_eq!(
        docs[&report.id].fields["file_path"],
        json!(super::in_team_space(&fake, &report.path_display))
    );
    // Off: the member's home folder only, paths relative to it.
    t.sync_ok("home", SyncKind::Full).await;
    let home = t.documents("home").await;
    assert_docs(&home, &super::want_home(&fake));
    assert_eq!(
        home[&report.id].fields["file_path"],
        json!(report.path_display)
    );
    assert!(home.len() < docs.len(), "no team folders at home");
}

#[tokio::test]
async fn bad_credentials_and_paths_fail_with_typed_errors() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let some_file = fake
        .entries_in(&fake.root_namespace_id())
        .into_iter()
        .find(|e| !e.is_folder)
        .unwrap()
        .path_display;
    let t = host(vec![
        spec("secret", &fake, json!({"app_secret": "wrong"})),
        spec("refresh", &fake, json!({"refresh_token": "revoked"})),
        spec("nopath", &fake, json!({"path": "/No such folder"})),
        spec("filepath", &fake, json!({"path": some_file})),
        spec("relative", &fake, json!({"path": "Reports"})),
    ])
    .await;
    let expect = [
        ("secret", "auth", "`app_key` and `app_secret`"),
        ("refresh", "auth", "`refresh_token`"),
        ("nopath", "not_found", "/No such folder"),
        ("filepath", "config", "is a file"),
        ("relative", "config", "must start with `/`"),
    ];
    for (id, kind, words) in expect {
        let report = t.sync(id, SyncKind::Full).await;
        assert_eq!(report.status, JobStatus::Failed, "{id}");
        let error = report.error.unwrap();
        assert_eq!(error.kind, kind, "{id}: {error:?}");
        assert!(error.message.contains(words), "{id}: {error:?}");
        assert!(t.documents(id).await.is_empty());
    }
}

/// A timing run over `Tree::medium()`: 10 000 home entries (about 7 000 with content), then an
/// incremental sync of one change. About a minute in a debug build, so not part of the default
/// run: `cargo test -p tributary-e2e --test e2e medium_tree -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "timing run (about a minute in debug builds)"]
async fn medium_tree_full_sync_timing() {
    let fake = FakeDropbox::start(Tree::medium()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({}))]).await;
    let started = Instant::now();
    let report = t.sync_ok("dbx", SyncKind::Full).await;
    let full = started.elapsed();
    let docs = t.documents("dbx").await;
    assert_eq!(
        docs.len(),
        fake.entries().len() + fake.received_files().len()
    );
    let added = fake.add_file("/Medium/late.txt", "one late file").unwrap();
    let started = Instant::now();
    let incremental = t.sync_ok("dbx", SyncKind::Incremental).await;
    let inc = started.elapsed();
    assert_eq!(
        incremental.counts.received, 2,
        "the file and its new folder"
    );
    assert!(t.documents("dbx").await.contains_key(&added.id));
    eprintln!(
        "Tree::medium(): full sync of {} documents ({} bodies extracted) in {full:.1?}; \
         incremental sync of one change in {inc:.1?}",
        docs.len(),
        report.counts.content_extracted
    );
}

/// A full listing checkpoints by volume, not after every page: each checkpoint waits for every
/// download in flight and commits a segment. With seven entries a page the small tree's
/// listing is 16 pages: per-page checkpoints stamped its indexes 55 times beyond the documents
/// added (commits, and a delete for each document added again), now 8.
#[tokio::test]
async fn a_full_listing_checkpoints_by_volume_not_per_page() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let t = host(vec![spec("dbx", &fake, json!({"page_size": 7}))]).await;
    let report = t.sync_ok("dbx", SyncKind::Full).await;
    assert!(
        fake.faults().count("/2/files/list_folder/continue") >= 14,
        "paginated"
    );
    // tantivy stamps every added document and every commit of an index; a first full sync
    // deletes nothing (the access-control index, empty without DLS, has no stamp).
    let opstamps: u64 = index_metas(t.dir.path())
        .iter()
        .map(|meta| meta["opstamp"].as_u64().expect("an opstamp"))
        .sum();
    let stamps = opstamps - report.counts.indexed;
    assert!(
        stamps <= 10,
        "{stamps} stamps beyond the {} documents added",
        report.counts.indexed
    );
    assert_docs(&t.documents("dbx").await, &want_all(&fake, None));
}

/// The `meta.json` of every index under `root`.
fn index_metas(root: &std::path::Path) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == "meta.json") {
                found.push(serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap());
            }
        }
    }
    found
}
