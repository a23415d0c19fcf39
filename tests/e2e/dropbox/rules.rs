//! Advanced rules: validation (shape and paths) and syncs of exactly the search results.

use std::collections::BTreeMap;

use serde_json::json;
use tributary_fakes::dropbox::{FakeDropbox, Tree};
use tributary_host::{JobStatus, SyncKind};

use super::{Want, assert_docs, host, in_team_space, spec, want_entry};

/// The documents for the entries whose names are in `names`, with team-space paths (the
/// plugin's default root, as Elastic's).
fn want_named(fake: &FakeDropbox, names: &[&str]) -> BTreeMap<String, Want> {
    let root = fake.root_namespace_id();
    let want: BTreeMap<String, Want> = fake
        .entries_in(&root)
        .iter()
        .filter(|e| names.contains(&e.name.as_str()))
        .map(|e| (e.id.clone(), want_entry(fake, e, Some(&root))))
        .collect();
    assert_eq!(want.len(), names.len(), "{names:?}");
    want
}

#[tokio::test]
async fn advanced_rules_sync_exactly_the_search_results() {
    let tree = Tree::small()
        .with_file(
            "/Rules/zebracorn notes.txt",
            "notes about the zebracorn project",
        )
        .with_file(
            "/Rules/summary.md",
            "the zebracorn appears in this body only",
        )
        .with_file(
            "/Rules/Sub/zebracorn plan.paper",
            "# Plan\n\nzebracorn roadmap for Q3",
        )
        .with_file(
            "/Rules/zebracorn.png",
            vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3],
        )
        .with_file("/Other/zebracorn budget.csv", "item,amount\nzebracorn,12\n");
    let fake = FakeDropbox::start(tree).await.unwrap();
    // Rule paths are relative to the account's root namespace, as in Elastic: the admin's
    // "/Rules" is "/Alex Doe/Rules" in the team space.
    let rules_dir = in_team_space(&fake, "/Rules");
    let mut both = spec("rules", &fake, json!({}));
    both.advanced_rules = Some(json!([
        // One result per page: `files/search/continue_v2` is followed.
        {"query": "zebracorn", "options": {"file_extensions": ["txt", "csv"], "max_results": 1}},
        {"query": "zebracorn",
         "options": {"path": rules_dir, "file_categories": [{".tag": "paper"}],
                     "file_extensions": ["txt"], "max_results": "2"},
         "match_field_options": {"include_highlights": false}}
    ]));
    let mut categories = spec("categories", &fake, json!({}));
    categories.advanced_rules = Some(json!([
        {"query": "zebracorn",
         "options": {"file_categories": [{".tag": "paper"}], "file_extensions": ["txt", "md"]}}
    ]));
    let mut bad_shape = spec("bad-shape", &fake, json!({}));
    bad_shape.advanced_rules = Some(json!([
        {"options": {"file_extensions": []}},
        {"query": "x", "limit": 3}
    ]));
    let mut bad_path = spec("bad-path", &fake, json!({}));
    bad_path.advanced_rules = Some(json!([
        {"query": "x", "options": {"path": "/Nope"}},
        {"query": "y", "options": {"path": rules_dir}}
    ]));
    let t = host(vec![both, categories, bad_shape, bad_path]).await;

    // Only what the rules find: no other entries, no received files, Paper exported as text.
    t.sync_ok("rules", SyncKind::Full).await;
    let docs = t.documents("rules").await;
    assert_docs(
        &docs,
        &want_named(
            &fake,
            &[
                "zebracorn notes.txt",
                "zebracorn budget.csv",
                "zebracorn plan.paper",
            ],
        ),
    );
    assert!(
        docs.values()
            .any(|d| d.body.as_deref() == Some("# Plan\n\nzebracorn roadmap for Q3"))
    );
    // Categories win over extensions.
    t.sync_ok("categories", SyncKind::Full).await;
    assert_docs(
        &t.documents("categories").await,
        &want_named(&fake, &["zebracorn plan.paper"]),
    );

    // Incremental runs search again and apply only the differences.
    fake.add_file("/Other/zebracorn extra.txt", "one more zebracorn file")
        .unwrap();
    fake.delete("/Other/zebracorn budget.csv").unwrap();
    fake.edit_file("/Rules/zebracorn notes.txt", "rewritten zebracorn notes")
        .unwrap();
    fake.faults().reset_log();
    let report = t.sync_ok("rules", SyncKind::Incremental).await;
    assert_docs(
        &t.documents("rules").await,
        &want_named(
            &fake,
            &[
                "zebracorn notes.txt",
                "zebracorn extra.txt",
                "zebracorn plan.paper",
            ],
        ),
    );
    assert_eq!(
        (report.counts.received, report.counts.deleted),
        (2, 1),
        "{report:?}"
    );
    assert_eq!(fake.faults().count("/2/files/download"), 2);
    assert_eq!(fake.faults().count("/2/files/list_folder"), 0);

    // Invalid rules are refused before anything is synced, naming every problem.
    let report = t.sync("bad-shape", SyncKind::Full).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap();
    assert_eq!(error.kind, "config", "{error:?}");
    for words in [
        "rule 1: `query` is required",
        "rule 1: `options.file_extensions`",
        "rule 2: unknown key `limit`",
    ] {
        assert!(error.message.contains(words), "{words}: {error:?}");
    }
    let report = t.sync("bad-path", SyncKind::Full).await;
    let error = report.error.unwrap();
    assert_eq!(error.kind, "config", "{error:?}");
    assert!(
        error
            .message
            .contains("rule 1: options.path `/Nope` does not exist")
            && error.message.contains("Invalid paths '/Nope'.")
            && !error.message.contains("rule 2"),
        "{error:?}"
    );
    assert!(t.documents("bad-shape").await.is_empty());
    assert!(t.documents("bad-path").await.is_empty());
}
