//! Document-level security: who may see a Box item, and one access-control document per user.
//!
//! An item is visible to its owner and to every accepted collaborator (user or group) on the
//! item or on any folder above it — Box collaborations inherit downwards. Identities use
//! Elastic's prefixes, so search applications built for Elastic's connectors keep working:
//! `user_id:<id>`, `email:<login>`, `group:<id>`.
//!
//! Fails closed: only collaborations whose role can see content grant access (an `uploader`
//! can add files but not see them), and an item whose collaborations cannot be read is withheld
//! from the index (see `sync`), never indexed with a partial or empty list.

use std::collections::BTreeSet;

use serde_json::json;
use tributary_sdk::docs::Document;
use tributary_sdk::outbox::Outbox;
use tributary_sdk::{Error, Result};

use crate::api::{Api, Collaboration, User};
use crate::docs::fnv64;
use crate::settings::Settings;

/// Elastic's search-time filter (its `connectors/access_control.py` template): documents
/// without `_allow_access_control` are public, the others need one of the user's identities in
/// the field's `keyword` sub-field (what Elastic's dynamic mapping, and tributary's sink
/// mapping, give it).
const DLS_QUERY: &str = r#"{"bool": {"should": [{"bool": {"must_not": {"exists": {"field": "_allow_access_control"}}}}, {"terms": {"_allow_access_control.keyword": {{#toJson}}access_control{{/toJson}}}}]}}"#;

/// A user's identities (`user_id:…`, `email:…`).
pub fn user_identities(user: &User) -> Vec<String> {
    let mut out = vec![format!("user_id:{}", user.id)];
    if let Some(login) = user.login.as_deref().filter(|l| !l.is_empty()) {
        out.push(format!("email:{login}"));
    }
    out
}

/// Box collaboration roles that may see an item's content (all but `uploader`, which may only
/// add files). An unknown or missing role grants nothing.
const READING_ROLES: &[&str] = &[
    "editor",
    "viewer",
    "previewer",
    "previewer uploader",
    "viewer uploader",
    "co-owner",
    "owner",
];

/// Identities granted by an item's own collaborations (accepted ones only: a pending invite
/// grants nothing yet; roles that cannot see content grant nothing).
pub fn collaborator_identities(collaborations: &[Collaboration]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for collab in collaborations {
        if collab.status.as_deref().is_some_and(|s| s != "accepted") {
            continue;
        }
        let role = collab.role.as_deref().unwrap_or_default();
        if !READING_ROLES.contains(&role.to_ascii_lowercase().as_str()) {
            continue;
        }
        let Some(who) = &collab.accessible_by else {
            continue;
        };
        match who.kind.as_str() {
            "group" => {
                out.insert(format!("group:{}", who.id));
            }
            _ => {
                out.insert(format!("user_id:{}", who.id));
                if let Some(login) = who.login.as_deref().filter(|l| !l.is_empty()) {
                    out.insert(format!("email:{login}"));
                }
            }
        }
    }
    out.into_iter().collect()
}

/// The sorted union of identity lists.
pub fn merge(lists: &[&[String]]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|l| l.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The access-control document of one user: Elastic's shape (`identity` plus a search
/// template restricted to the user's identities and groups).
fn acl_document(user: &User, groups: &[String]) -> Document {
    let email = user.login.as_deref().filter(|l| !l.is_empty());
    let mut access: Vec<String> = user_identities(user);
    if let Some(name) = user.name.as_deref().filter(|n| !n.is_empty()) {
        access.push(format!("user:{name}"));
    }
    access.extend(groups.iter().map(|g| format!("group:{g}")));
    let fields = json!({
        "identity": {
            "user_id": format!("user_id:{}", user.id),
            "email": email.map(|e| format!("email:{e}")),
            "username": user.name.as_deref().map(|n| format!("user:{n}")),
        },
        "created_at": user.created_at,
        "query": {"template": {"params": {"access_control": access}, "source": DLS_QUERY}},
    });
    let version = format!("{:016x}", fnv64(fields.to_string().as_bytes()));
    let id = email.map(str::to_string).unwrap_or_else(|| user.id.clone());
    let serde_json::Value::Object(fields) = fields else {
        return Document::new(id);
    };
    Document::new(id).timestamp(version).fields_from(fields)
}

/// Writes one access-control document per user: every managed user of an enterprise, or the
/// account's own user. Users that vanished are removed by the host.
pub fn access_control_sync(settings: &Settings) -> Result<()> {
    if !settings.dls {
        return Err(Error::Config(
            "`use_document_level_security` is off: turn it on to sync access control".into(),
        ));
    }
    let mut api = Api::new(settings);
    let users = if settings.enterprise() {
        api.users()?
    } else {
        vec![api.me()?]
    };
    let mut out = Outbox::access_control(100);
    for user in &users {
        let groups = api.group_ids(&user.id)?;
        out.emit(acl_document(user, &groups))?;
    }
    out.checkpoint(Vec::new())?;
    tributary_sdk::info!("box: {} access-control document(s)", users.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepted_collaborations_grant_users_and_groups() {
        let collaborations: Vec<Collaboration> = serde_json::from_value(json!([
            {"status": "accepted", "role": "editor", "accessible_by": {"type": "user", "id": "1", "login": "a@x"}},
            {"status": "accepted", "role": "viewer uploader", "accessible_by": {"type": "group", "id": "9", "name": "G"}},
            {"status": "pending", "role": "viewer", "accessible_by": {"type": "user", "id": "2", "login": "b@x"}},
            {"status": "pending", "role": "viewer", "accessible_by": null, "invite_email": "c@x"},
            {"status": "accepted", "role": "uploader", "accessible_by": {"type": "user", "id": "3", "login": "u@x"}},
            {"status": "accepted", "accessible_by": {"type": "user", "id": "4", "login": "n@x"}},
        ]))
        .unwrap();
        assert_eq!(
            collaborator_identities(&collaborations),
            vec!["email:a@x", "group:9", "user_id:1"]
        );
        let merged = merge(&[&["b".to_string(), "a".to_string()], &["a".to_string()]]);
        assert_eq!(merged, vec!["a", "b"]);
    }

    #[test]
    fn access_control_documents_have_elastics_shape() {
        let user = User {
            id: "7".into(),
            name: Some("Ada".into()),
            login: Some("ada@x".into()),
            created_at: None,
        };
        let doc = acl_document(&user, &["9".to_string()]).into_wit();
        assert_eq!(doc.id, "ada@x");
        let fields: serde_json::Value = serde_json::from_str(&doc.fields).unwrap();
        assert_eq!(fields["identity"]["user_id"], "user_id:7");
        assert_eq!(
            fields["query"]["template"]["params"]["access_control"],
            json!(["user_id:7", "email:ada@x", "user:Ada", "group:9"])
        );
    }
}
