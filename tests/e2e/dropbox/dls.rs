//! Document-level security: `_allow_access_control` on every document (both modes of
//! `include_inherited_users_and_groups`) and one access-control document per team member.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tributary_fakes::dropbox::{Access, FakeDropbox, Member, Tree};
use tributary_host::{JobStatus, SyncKind};

use super::{Want, assert_docs, host, identity, spec, want_all};

/// The documents with the access lists the fake's sharing state implies.
pub(super) fn want_with_access(fake: &FakeDropbox, inherited: bool) -> BTreeMap<String, Want> {
    let me = format!("user_id:{}", fake.admin().account_id);
    let finish = |ids: Vec<String>, add_me: bool| {
        let mut set: BTreeSet<String> = ids.into_iter().collect();
        if add_me {
            set.insert(me.clone());
        }
        Some(set.into_iter().collect::<Vec<_>>())
    };
    let mut want = want_all(fake, None);
    let root = fake.root_namespace_id();
    for e in fake.entries_in(&root) {
        let acl = if e.is_folder {
            match e
                .shared_folder_id
                .clone()
                .or(e.parent_shared_folder_id.clone())
            {
                Some(sf) => finish(
                    fake.folder_members(&sf).iter().map(identity).collect(),
                    !inherited,
                ),
                None => finish(Vec::new(), true),
            }
        } else {
            finish(
                fake.file_members(&format!("ns:{root}{}", e.path_display), inherited)
                    .iter()
                    .map(|(m, _)| identity(m))
                    .collect(),
                !inherited,
            )
        };
        want.get_mut(&e.id).unwrap().acl = acl;
    }
    for f in fake.received_files() {
        want.get_mut(&f.id).unwrap().acl = finish(Vec::new(), true);
    }
    want
}

#[tokio::test]
async fn dls_access_lists_and_access_control_documents() {
    let fake = FakeDropbox::start(Tree::small()).await.unwrap();
    let team = |extra: serde_json::Value| {
        let mut base = json!({
            "refresh_token": fake.team_refresh_token(),
            "use_document_level_security": true,
        });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    let t = host(vec![
        spec("dls", &fake, team(json!({}))),
        spec(
            "dls-inherited",
            &fake,
            team(json!({"include_inherited_users_and_groups": true})),
        ),
        spec(
            "dls-user-token",
            &fake,
            json!({"use_document_level_security": true}),
        ),
    ])
    .await;

    t.sync_ok("dls", SyncKind::Full).await;
    assert_docs(&t.documents("dls").await, &want_with_access(&fake, false));
    t.sync_ok("dls-inherited", SyncKind::Full).await;
    let inherited = t.documents("dls-inherited").await;
    assert_docs(&inherited, &want_with_access(&fake, true));
    // The shared folder's members reach its files only with inherited members on.
    let bob = format!(
        "user_id:{}",
        fake.account_by_email("bob.smith@acme.example")
            .unwrap()
            .account_id
    );
    let in_shared = fake
        .entries()
        .into_iter()
        .find(|e| !e.is_folder && e.path_lower.starts_with("/shared with bob/"))
        .unwrap();
    assert!(
        inherited[&in_shared.id].fields["_allow_access_control"]
            .as_array()
            .unwrap()
            .contains(&json!(bob))
    );
    // Batched listings were used without inherited members (50 files per call).
    let batches = fake.faults().count("/2/sharing/list_file_members/batch");
    let files = fake
        .entries_in(&fake.root_namespace_id())
        .iter()
        .filter(|e| !e.is_folder)
        .count();
    assert_eq!(batches, files.div_ceil(50));

    // One access-control document per active team member, Elastic's shape.
    t.sync_ok("dls", SyncKind::AccessControl).await;
    let acl = t.acl_documents("dls").await;
    let members: Vec<_> = fake
        .accounts()
        .into_iter()
        .filter(|a| a.team_member_id.is_some() && a.status == "active")
        .collect();
    assert_eq!(
        acl.keys().cloned().collect::<BTreeSet<_>>(),
        members
            .iter()
            .map(|m| m.email.clone())
            .collect::<BTreeSet<_>>()
    );
    for m in &members {
        let doc = &acl[&m.email];
        let mut access: BTreeSet<String> = [
            format!("email:{}", m.email),
            format!("user:{}", m.display_name),
            format!("user_id:{}", m.account_id),
        ]
        .into();
        access.extend(
            fake.groups_of(&m.account_id)
                .iter()
                .map(|g| format!("group:{g}")),
        );
        assert_eq!(
            doc.fields["identity"],
            json!({
                "email": format!("email:{}", m.email),
                "username": format!("user:{}", m.display_name),
                "user_id": format!("user_id:{}", m.account_id),
            })
        );
        assert_eq!(doc.fields["status"], json!("active"));
        assert_eq!(doc.fields["created_at"], json!(m.joined_on));
        assert_eq!(
            doc.fields["query"]["template"]["params"]["access_control"],
            json!(access.into_iter().collect::<Vec<_>>())
        );
        // What the template selects is proven by evaluating it against stored documents:
        // `elasticsearch::dropbox_access_control_templates_show_each_member_exactly_their_documents`.
    }

    // A permission change re-indexes exactly the affected document at the next full sync.
    let private = fake
        .entries()
        .into_iter()
        .find(|e| !e.is_folder && e.parent_shared_folder_id.is_none() && e.size > 0)
        .unwrap();
    fake.add_file_member(
        &private.path_display,
        Member::email("auditor@example.com", Access::Viewer),
    )
    .unwrap();
    let report = t.sync_ok("dls", SyncKind::Full).await;
    assert_eq!(report.counts.indexed, 1, "{report:?}");
    let docs = t.documents("dls").await;
    assert!(
        docs[&private.id].fields["_allow_access_control"]
            .as_array()
            .unwrap()
            .contains(&json!("email:auditor@example.com"))
    );
    assert_docs(&docs, &want_with_access(&fake, false));

    // A member who leaves loses their access-control document.
    let carol = fake.account_by_email("carol.jones@acme.example").unwrap();
    fake.remove_team_member(&carol.account_id).unwrap();
    t.sync_ok("dls", SyncKind::AccessControl).await;
    let acl = t.acl_documents("dls").await;
    assert!(!acl.contains_key(&carol.email) && acl.len() == members.len() - 1);

    // Team member listings need a team-linked token: a clear configuration error.
    let report = t.sync("dls-user-token", SyncKind::AccessControl).await;
    assert_eq!(report.status, JobStatus::Failed);
    let error = report.error.unwrap();
    assert_eq!(error.kind, "config");
    assert!(error.message.contains("team-linked"), "{error:?}");
}
