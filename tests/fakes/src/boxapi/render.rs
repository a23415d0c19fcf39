//! JSON representations of users, items and collaborations, following Box's resource shapes.
//!
//! Box has three item representations: *mini* (folder listings without `fields`), *standard*
//! (`GET /files/{id}` without `fields`) and *requested* (`?fields=a,b`: exactly those fields plus
//! `type`, `id` and `etag`). Unknown field names are ignored, as Box does.

use serde_json::{Map, Value, json};

use super::model::{Accessor, Collab, Kind, Node, State, UserKind, View};
use super::util::rfc3339;

/// Which representation to render.
#[derive(Clone, Debug)]
pub(crate) enum Fields {
    Mini,
    Standard,
    /// Standard without `item_collection` (event sources).
    Event,
    Only(Vec<String>),
}

impl Fields {
    /// Parses a `fields=a,b,c` query value; empty means "not given".
    pub(crate) fn parse(raw: Option<&str>, default: Fields) -> Fields {
        match raw {
            Some(list) if !list.trim().is_empty() => Fields::Only(
                list.split(',')
                    .map(|f| f.trim().to_string())
                    .filter(|f| !f.is_empty())
                    .collect(),
            ),
            _ => default,
        }
    }
}

const FILE_MINI: &[&str] = &["sequence_id", "etag", "sha1", "name", "file_version"];
const FOLDER_MINI: &[&str] = &["sequence_id", "etag", "name"];
const FILE_STANDARD: &[&str] = &[
    "file_version",
    "sequence_id",
    "etag",
    "sha1",
    "name",
    "description",
    "size",
    "path_collection",
    "created_at",
    "modified_at",
    "trashed_at",
    "purged_at",
    "content_created_at",
    "content_modified_at",
    "created_by",
    "modified_by",
    "owned_by",
    "shared_link",
    "parent",
    "item_status",
];
const FOLDER_STANDARD: &[&str] = &[
    "sequence_id",
    "etag",
    "name",
    "created_at",
    "modified_at",
    "description",
    "size",
    "path_collection",
    "created_by",
    "modified_by",
    "trashed_at",
    "purged_at",
    "content_created_at",
    "content_modified_at",
    "owned_by",
    "shared_link",
    "folder_upload_email",
    "parent",
    "item_status",
    "item_collection",
];

/// Rendering overrides for event sources of purged items.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) deleted: bool,
}

impl State {
    pub(crate) fn user_mini(&self, user: u32) -> Value {
        match self.users.get(user as usize) {
            Some(u) => json!({"type": "user", "id": u.id, "name": u.name, "login": u.login}),
            None => Value::Null,
        }
    }

    /// The standard user object, or only the requested fields (plus `type` and `id`).
    pub(crate) fn render_user(&self, user: u32, fields: &Fields) -> Value {
        let Some(u) = self.users.get(user as usize) else {
            return Value::Null;
        };
        let used: u64 = self
            .nodes
            .get(&State::root_of(user))
            .map(|root| root.size)
            .unwrap_or(0);
        let mut all = Map::new();
        all.insert("name".into(), json!(u.name));
        all.insert("login".into(), json!(u.login));
        all.insert("created_at".into(), json!(rfc3339(u.created_at)));
        all.insert("modified_at".into(), json!(rfc3339(u.created_at)));
        all.insert("language".into(), json!("en"));
        all.insert("timezone".into(), json!("America/Los_Angeles"));
        all.insert("space_amount".into(), json!(1_099_511_627_776u64));
        all.insert("space_used".into(), json!(used));
        all.insert("max_upload_size".into(), json!(53_687_091_200u64));
        all.insert("status".into(), json!("active"));
        all.insert("job_title".into(), json!(u.job_title));
        all.insert("phone".into(), json!(""));
        all.insert("address".into(), json!(""));
        all.insert(
            "avatar_url".into(),
            json!(format!("https://app.box.com/api/avatar/large/{}", u.id)),
        );
        all.insert("notification_email".into(), Value::Null);
        let mut extra = Map::new();
        extra.insert(
            "enterprise".into(),
            json!({"type": "enterprise", "id": self.enterprise_id, "name": self.enterprise_name}),
        );
        extra.insert(
            "role".into(),
            json!(match u.kind {
                UserKind::ServiceAccount => "admin",
                UserKind::Managed => "user",
            }),
        );
        extra.insert(
            "is_platform_access_only".into(),
            json!(u.kind == UserKind::ServiceAccount),
        );
        extra.insert("is_external_collab_restricted".into(), json!(false));
        extra.insert("my_tags".into(), json!([]));
        let mut out = Map::new();
        out.insert("type".into(), json!("user"));
        out.insert("id".into(), json!(u.id));
        match fields {
            Fields::Only(names) => {
                for name in names {
                    if let Some(value) = all.get(name).or_else(|| extra.get(name)) {
                        out.insert(name.clone(), value.clone());
                    }
                }
            }
            Fields::Mini => {
                out.insert("name".into(), all["name"].clone());
                out.insert("login".into(), all["login"].clone());
            }
            Fields::Standard | Fields::Event => out.extend(all),
        }
        Value::Object(out)
    }

    pub(crate) fn group_mini(&self, group: u32) -> Value {
        match self.groups.get(group as usize) {
            Some(g) => {
                json!({"type": "group", "id": g.id, "name": g.name, "group_type": "managed_group"})
            }
            None => Value::Null,
        }
    }

    pub(crate) fn render_group(&self, group: u32) -> Value {
        match self.groups.get(group as usize) {
            Some(g) => json!({
                "type": "group",
                "id": g.id,
                "name": g.name,
                "group_type": "managed_group",
                "created_at": rfc3339(g.created_at),
                "modified_at": rfc3339(g.created_at),
            }),
            None => Value::Null,
        }
    }

    /// A folder's mini representation from `viewer`'s side (roots are "All Files").
    pub(crate) fn folder_mini(&self, id: u64) -> Value {
        if State::is_root(id) {
            return json!({"type": "folder", "id": "0", "sequence_id": null, "etag": null, "name": "All Files"});
        }
        match self.nodes.get(&id) {
            Some(n) => json!({
                "type": "folder",
                "id": n.id.to_string(),
                "sequence_id": n.sequence.to_string(),
                "etag": n.sequence.to_string(),
                "name": n.name,
            }),
            None => Value::Null,
        }
    }

    /// The item's mini representation (used inside collaborations).
    pub(crate) fn item_mini(&self, id: u64) -> Value {
        match self.nodes.get(&id) {
            Some(n) if n.kind == Kind::File => json!({
                "type": "file",
                "id": n.id.to_string(),
                "sequence_id": n.sequence.to_string(),
                "etag": n.sequence.to_string(),
                "name": n.name,
                "sha1": self.sha1(n),
                "file_version": {"type": "file_version", "id": n.version_id.to_string(), "sha1": self.sha1(n)},
            }),
            Some(_) => self.folder_mini(id),
            None => Value::Null,
        }
    }

    fn path_collection(&self, view: View, id: u64) -> Value {
        if State::is_root(id) {
            return json!({"total_count": 0, "entries": []});
        }
        let mut entries = vec![self.folder_mini(State::root_of(0))];
        entries.extend(
            self.path_ids(view, id)
                .into_iter()
                .map(|f| self.folder_mini(f)),
        );
        json!({"total_count": entries.len(), "entries": entries})
    }

    /// Renders an item for `viewer`. Viewers without access (event recipients that just lost it)
    /// see the owner's perspective.
    pub(crate) fn render_item(
        &self,
        viewer: u32,
        id: u64,
        fields: &Fields,
        overrides: Overrides,
    ) -> Option<Value> {
        let node = self.nodes.get(&id)?;
        let (viewer, view) = match self.view(viewer, id) {
            Some(view) => (viewer, view),
            None => (node.owner, self.view(node.owner, id)?),
        };
        let type_name = match node.kind {
            Kind::File => "file",
            Kind::Folder => "folder",
        };
        let mut out = Map::new();
        out.insert("type".into(), json!(type_name));
        out.insert("id".into(), json!(State::external_id(id)));
        let names: Vec<&str> = match fields {
            Fields::Mini => match node.kind {
                Kind::File => FILE_MINI.to_vec(),
                Kind::Folder => FOLDER_MINI.to_vec(),
            },
            Fields::Standard => match node.kind {
                Kind::File => FILE_STANDARD.to_vec(),
                Kind::Folder => FOLDER_STANDARD.to_vec(),
            },
            Fields::Event => match node.kind {
                Kind::File => FILE_STANDARD.to_vec(),
                Kind::Folder => FOLDER_STANDARD
                    .iter()
                    .copied()
                    .filter(|f| *f != "item_collection")
                    .collect(),
            },
            Fields::Only(list) => {
                // Box always adds `etag` to a `fields` selection.
                let mut names = vec!["etag"];
                names.extend(list.iter().map(String::as_str));
                names
            }
        };
        for name in names {
            if out.contains_key(name) {
                continue;
            }
            if let Some(value) = self.field(viewer, view, node, name, overrides) {
                out.insert(name.to_string(), value);
            }
        }
        Some(Value::Object(out))
    }

    fn field(
        &self,
        viewer: u32,
        view: View,
        node: &Node,
        name: &str,
        overrides: Overrides,
    ) -> Option<Value> {
        let root = State::is_root(node.id);
        let is_file = node.kind == Kind::File;
        let time = |t: i64| if root { Value::Null } else { json!(rfc3339(t)) };
        let value = match name {
            "sequence_id" | "etag" => {
                if root {
                    Value::Null
                } else {
                    json!(node.sequence.to_string())
                }
            }
            "name" => json!(node.name),
            "description" => json!(node.description),
            "size" => json!(node.size),
            "created_at" => time(node.created_at),
            "modified_at" => time(node.modified_at),
            "content_created_at" => time(node.content_created_at),
            "content_modified_at" => time(node.content_modified_at),
            "trashed_at" => match node.trashed_at {
                Some(t) => json!(rfc3339(t)),
                None if overrides.deleted => json!(self.now()),
                None => Value::Null,
            },
            "purged_at" => {
                if overrides.deleted {
                    json!(self.now())
                } else {
                    Value::Null
                }
            }
            "created_by" => self.user_mini(node.created_by),
            "modified_by" => self.user_mini(node.modified_by),
            "owned_by" => self.user_mini(node.owner),
            "parent" => {
                if root {
                    Value::Null
                } else {
                    self.folder_mini(self.visible_parent(viewer, view, node.id))
                }
            }
            "path_collection" => self.path_collection(view, node.id),
            "item_status" => json!(if overrides.deleted {
                "deleted"
            } else if view.trashed {
                "trashed"
            } else {
                "active"
            }),
            "shared_link" => Value::Null,
            "tags" => json!([]),
            "is_externally_owned" => json!(false),
            "has_collaborations" => json!(self.collabs.iter().any(|c| c.item == node.id)),
            "expires_at" => Value::Null,
            "permissions" => json!({
                "can_download": true,
                "can_preview": true,
                "can_upload": true,
                "can_comment": true,
                "can_rename": true,
                "can_delete": true,
                "can_share": true,
                "can_set_share_access": true,
                "can_invite_collaborator": true,
                "can_annotate": false,
                "can_view_annotations_all": true,
                "can_view_annotations_self": true,
            }),
            "extension" if is_file => json!(
                node.name
                    .rsplit_once('.')
                    .map(|(_, ext)| ext)
                    .unwrap_or_default()
            ),
            "sha1" if is_file => json!(self.sha1(node)),
            "file_version" if is_file => json!({
                "type": "file_version",
                "id": node.version_id.to_string(),
                "sha1": self.sha1(node),
            }),
            "version_number" if is_file => json!(node.version.to_string()),
            "comment_count" if is_file => json!(0),
            "lock" if is_file => Value::Null,
            "folder_upload_email" if !is_file => Value::Null,
            "sync_state" if !is_file => json!("not_synced"),
            "item_collection" if !is_file => {
                let keys = self.visible_children(viewer, node.id);
                let entries: Vec<Value> = keys
                    .iter()
                    .take(100)
                    .filter_map(|k| {
                        self.render_item(viewer, k.id, &Fields::Mini, Overrides::default())
                    })
                    .collect();
                json!({
                    "total_count": keys.len(),
                    "entries": entries,
                    "offset": 0,
                    "limit": 100,
                    "order": [{"by": "type", "direction": "ASC"}, {"by": "name", "direction": "ASC"}],
                })
            }
            _ => return None,
        };
        Some(value)
    }

    pub(crate) fn render_collab(&self, collab: &Collab) -> Value {
        let accessible_by = match collab.accessor {
            Accessor::User(u) => self.user_mini(u),
            Accessor::Group(g) => self.group_mini(g),
        };
        let created = rfc3339(collab.created_at);
        json!({
            "type": "collaboration",
            "id": collab.id.to_string(),
            "item": self.item_mini(collab.item),
            "accessible_by": accessible_by,
            "invite_email": null,
            "role": collab.role,
            "expires_at": null,
            "is_access_only": false,
            "status": "accepted",
            "acknowledged_at": created,
            "created_by": self.user_mini(collab.created_by),
            "created_at": created,
            "modified_at": created,
        })
    }
}
