//! Mutations (what tests do "in the Box web app") and the user event streams they feed.
//!
//! Every mutation advances the fake clock by one minute, bumps the item's `sequence_id`/`etag`
//! and appends one event to the stream of every user who could see the item before or after
//! the change. Event sources are rendered at emission time, so a re-delivered duplicate carries
//! the item as it was then, which is exactly what makes Box's at-least-once delivery dangerous.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::content::Content;
use super::model::{Accessor, Collab, Kind, Node, State, StoredEvent};
use super::render::{Fields, Overrides};
use super::util::{mix64, rfc3339};
use super::{Access, BoxItem, ItemKind};

pub(crate) type MutResult<T> = Result<T, String>;

/// Box's naming rules: 1–255 bytes, no `/` or `\`, no control characters, no trailing space,
/// not `.` or `..`.
pub(crate) fn validate_name(name: &str) -> MutResult<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("invalid name {name:?}: must be 1-255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(format!("invalid name {name:?}"));
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err(format!(
            "invalid name {name:?}: no slashes or control characters"
        ));
    }
    if name.ends_with(' ') || name.starts_with(' ') {
        return Err(format!(
            "invalid name {name:?}: no leading or trailing spaces"
        ));
    }
    Ok(())
}

impl State {
    /// Parses an id given by a test (`"0"` is `user`'s root).
    pub(crate) fn node_id(&self, user: u32, external: &str) -> MutResult<u64> {
        self.resolve(user, external)
            .ok_or_else(|| format!("no item with id {external:?}"))
    }

    fn node(&self, id: u64) -> MutResult<&Node> {
        self.nodes
            .get(&id)
            .ok_or_else(|| format!("no item with id {id}"))
    }

    /// Whether the item or one of its ancestors is in the trash.
    pub(crate) fn effectively_trashed(&self, id: u64) -> bool {
        let mut current = id;
        while let Some(node) = self.nodes.get(&current) {
            if node.trashed_at.is_some() {
                return true;
            }
            current = node.parent;
        }
        false
    }

    /// Who performs a test mutation on `item`: the primary user when they can see it (the usual
    /// free-account case), otherwise the owner.
    pub(crate) fn actor_for(&self, item: u64) -> u32 {
        if self.view(self.primary(), item).is_some() {
            self.primary()
        } else {
            self.nodes.get(&item).map(|n| n.owner).unwrap_or(0)
        }
    }

    fn active_item(&self, id: u64) -> MutResult<&Node> {
        let node = self.node(id)?;
        if State::is_root(id) {
            return Err("the root folder cannot be changed".into());
        }
        if self.effectively_trashed(id) {
            return Err(format!("item {id} is in the trash"));
        }
        Ok(node)
    }

    fn writable_folder(&self, actor: u32, id: u64) -> MutResult<()> {
        let node = self.node(id)?;
        if node.kind != Kind::Folder {
            return Err(format!("item {id} is not a folder"));
        }
        if self.effectively_trashed(id) {
            return Err(format!("folder {id} is in the trash"));
        }
        if self.view(actor, id).is_none() {
            return Err(format!(
                "user {} cannot see folder {id}",
                self.users
                    .get(actor as usize)
                    .map(|u| u.id.as_str())
                    .unwrap_or("?")
            ));
        }
        Ok(())
    }

    fn bump(&mut self, id: u64, now: i64, actor: u32) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.sequence += 1;
            node.modified_at = now;
            node.modified_by = actor;
        }
    }

    fn union(mut a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
        for user in b {
            if !a.contains(&user) {
                a.push(user);
            }
        }
        a
    }

    /// Creates a file or folder; emits `ITEM_UPLOAD` (files) or `ITEM_CREATE` (folders).
    pub(crate) fn create(
        &mut self,
        actor: u32,
        parent_external: &str,
        name: &str,
        kind: Kind,
        content: Content,
    ) -> MutResult<u64> {
        let parent = self.node_id(actor, parent_external)?;
        self.writable_folder(actor, parent)?;
        validate_name(name)?;
        if self.name_taken(parent, name, None) {
            return Err(format!(
                "an item named {name:?} already exists in folder {parent_external}"
            ));
        }
        let now = self.tick();
        let id = self.insert_node(parent, actor, name.to_string(), kind, content, now, now);
        let event = match kind {
            Kind::File => "ITEM_UPLOAD",
            Kind::Folder => "ITEM_CREATE",
        };
        let recipients = self.viewers(id);
        self.emit(
            event,
            id,
            actor,
            &recipients,
            Overrides::default(),
            Value::Null,
            true,
        );
        Ok(id)
    }

    /// Uploads a new version; emits `ITEM_UPLOAD`.
    pub(crate) fn edit(&mut self, id: u64, bytes: Vec<u8>) -> MutResult<()> {
        let node = self.active_item(id)?;
        if node.kind != Kind::File {
            return Err(format!("item {id} is not a file"));
        }
        let (parent, old_size) = (node.parent, node.size);
        let actor = self.actor_for(id);
        let now = self.tick();
        let version_id = self.alloc_version_id();
        let new_size = bytes.len() as u64;
        if let Some(node) = self.nodes.get_mut(&id) {
            node.content = Content::Bytes(Arc::from(bytes));
            node.size = new_size;
            node.version += 1;
            node.version_id = version_id;
            node.content_modified_at = now;
        }
        self.bump(id, now, actor);
        self.adjust_sizes(parent, new_size as i64 - old_size as i64);
        let recipients = self.viewers(id);
        self.emit(
            "ITEM_UPLOAD",
            id,
            actor,
            &recipients,
            Overrides::default(),
            Value::Null,
            true,
        );
        Ok(())
    }

    /// Renames in place; emits `ITEM_RENAME`.
    pub(crate) fn rename(&mut self, id: u64, new_name: &str) -> MutResult<()> {
        let node = self.active_item(id)?;
        validate_name(new_name)?;
        let parent = node.parent;
        if self.name_taken(parent, new_name, Some(id)) {
            return Err(format!("an item named {new_name:?} already exists there"));
        }
        let actor = self.actor_for(id);
        let now = self.tick();
        self.relink(id, parent, |node| node.name = new_name.to_string());
        self.bump(id, now, actor);
        let recipients = self.viewers(id);
        self.emit(
            "ITEM_RENAME",
            id,
            actor,
            &recipients,
            Overrides::default(),
            Value::Null,
            true,
        );
        Ok(())
    }

    /// Detaches `id` from `parent`'s child index, applies `change`, and re-attaches it under the
    /// node's (possibly new) parent, so the sorted index stays right.
    fn relink(&mut self, id: u64, parent: u64, change: impl FnOnce(&mut Node)) {
        let Some(old_key) = self.nodes.get(&id).map(Node::key) else {
            return;
        };
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.remove(&old_key);
        }
        let Some((new_parent, new_key)) = self.nodes.get_mut(&id).map(|node| {
            change(node);
            (node.parent, node.key())
        }) else {
            return;
        };
        if let Some(p) = self.nodes.get_mut(&new_parent) {
            p.children.insert(new_key);
        }
    }

    fn subtree(&self, id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(current) = stack.pop() {
            out.push(current);
            if let Some(node) = self.nodes.get(&current) {
                stack.extend(node.children.iter().map(|k| k.id));
            }
        }
        out
    }

    /// Resolves a move/copy target; `"0"` is the root of the item's owner.
    fn destination(&self, actor: u32, id: u64, new_parent_external: &str) -> MutResult<u64> {
        let owner = self.node(id)?.owner;
        let new_parent = self.node_id(owner, new_parent_external)?;
        let writer = if self.view(actor, new_parent).is_some() {
            actor
        } else {
            owner
        };
        self.writable_folder(writer, new_parent)?;
        let mut current = new_parent;
        while let Some(node) = self.nodes.get(&current) {
            if current == id {
                return Err("cannot move or copy a folder into itself".into());
            }
            current = node.parent;
        }
        Ok(new_parent)
    }

    /// Moves an item (and its subtree) to another folder; emits `ITEM_MOVE` to everyone who saw
    /// it before or after. Moving into someone else's folder transfers ownership, like Box.
    pub(crate) fn move_item(&mut self, id: u64, new_parent_external: &str) -> MutResult<()> {
        let node = self.active_item(id)?;
        let (old_parent, size, name) = (node.parent, node.size, node.name.clone());
        let actor = self.actor_for(id);
        let new_parent = self.destination(actor, id, new_parent_external)?;
        if new_parent == old_parent {
            return Ok(());
        }
        if self.name_taken(new_parent, &name, Some(id)) {
            return Err(format!(
                "an item named {name:?} already exists in the destination"
            ));
        }
        let before = self.viewers(id);
        let now = self.tick();
        self.adjust_sizes(old_parent, -(size as i64));
        self.relink(id, old_parent, |node| node.parent = new_parent);
        self.adjust_sizes(new_parent, size as i64);
        let new_owner = self.nodes.get(&new_parent).map(|p| p.owner);
        if let Some(owner) = new_owner {
            for member in self.subtree(id) {
                if let Some(n) = self.nodes.get_mut(&member) {
                    n.owner = owner;
                }
            }
        }
        self.bump(id, now, actor);
        let recipients = Self::union(before, self.viewers(id));
        self.emit(
            "ITEM_MOVE",
            id,
            actor,
            &recipients,
            Overrides::default(),
            Value::Null,
            true,
        );
        Ok(())
    }

    /// Copies an item (folders deeply, trashed children skipped); emits `ITEM_COPY` for the copy.
    pub(crate) fn copy_item(&mut self, id: u64, new_parent_external: &str) -> MutResult<u64> {
        let name = self.active_item(id)?.name.clone();
        let actor = self.actor_for(id);
        let new_parent = self.destination(actor, id, new_parent_external)?;
        if self.name_taken(new_parent, &name, None) {
            return Err(format!(
                "an item named {name:?} already exists in the destination"
            ));
        }
        let now = self.tick();
        let copy = self.copy_subtree(id, new_parent, actor, now);
        let recipients = self.viewers(copy);
        self.emit(
            "ITEM_COPY",
            copy,
            actor,
            &recipients,
            Overrides::default(),
            Value::Null,
            true,
        );
        Ok(copy)
    }

    fn copy_subtree(&mut self, source: u64, new_parent: u64, actor: u32, now: i64) -> u64 {
        let Some(src) = self.nodes.get(&source).cloned() else {
            return 0;
        };
        let copy = self.insert_node(
            new_parent,
            actor,
            src.name.clone(),
            src.kind,
            src.content.clone(),
            now,
            now,
        );
        if let Some(node) = self.nodes.get_mut(&copy) {
            node.description = src.description.clone();
            node.content_created_at = src.content_created_at;
            node.content_modified_at = src.content_modified_at;
        }
        let children: Vec<u64> = src
            .children
            .iter()
            .map(|k| k.id)
            .filter(|child| {
                self.nodes
                    .get(child)
                    .is_some_and(|n| n.trashed_at.is_none())
            })
            .collect();
        for child in children {
            self.copy_subtree(child, copy, actor, now);
        }
        copy
    }

    /// Moves an item to the trash (its subtree goes with it); emits `ITEM_TRASH` with
    /// `item_status: "trashed"`.
    pub(crate) fn trash(&mut self, id: u64) -> MutResult<()> {
        let node = self.active_item(id)?;
        let (parent, size) = (node.parent, node.size);
        let actor = self.actor_for(id);
        let recipients = self.viewers(id);
        let now = self.tick();
        self.adjust_sizes(parent, -(size as i64));
        if let Some(node) = self.nodes.get_mut(&id) {
            node.trashed_at = Some(now);
            node.sequence += 1;
        }
        self.emit(
            "ITEM_TRASH",
            id,
            actor,
            &recipients,
            Overrides::default(),
            Value::Null,
            true,
        );
        Ok(())
    }

    /// Restores a trashed item to its old folder (or to the owner's root when that folder is
    /// gone or trashed); emits `ITEM_UNDELETE_VIA_TRASH`.
    pub(crate) fn restore(&mut self, id: u64) -> MutResult<()> {
        let node = self.node(id)?;
        if node.trashed_at.is_none() {
            return Err(format!("item {id} is not in the trash"));
        }
        let (old_parent, owner, size, name) =
            (node.parent, node.owner, node.size, node.name.clone());
        let target =
            if self.nodes.contains_key(&old_parent) && !self.effectively_trashed(old_parent) {
                old_parent
            } else {
                State::root_of(owner)
            };
        if self.name_taken(target, &name, Some(id)) {
            return Err(format!(
                "an item named {name:?} already exists where it would be restored"
            ));
        }
        let actor = self.actor_for(id);
        self.tick();
        self.relink(id, old_parent, |node| {
            node.parent = target;
            node.trashed_at = None;
            node.sequence += 1;
        });
        self.adjust_sizes(target, size as i64);
        let recipients = self.viewers(id);
        self.emit(
            "ITEM_UNDELETE_VIA_TRASH",
            id,
            actor,
            &recipients,
            Overrides::default(),
            Value::Null,
            true,
        );
        Ok(())
    }

    /// Purges an item (active or trashed) and its subtree. Emits `ITEM_TRASH` whose source has
    /// `item_status: "deleted"`; afterwards every id in the subtree answers 404.
    pub(crate) fn delete_permanently(&mut self, id: u64) -> MutResult<()> {
        let node = self.node(id)?;
        if State::is_root(id) {
            return Err("the root folder cannot be deleted".into());
        }
        let (parent, size, directly_trashed) = (node.parent, node.size, node.trashed_at.is_some());
        let actor = self.actor_for(id);
        let recipients = self.viewers(id);
        self.tick();
        self.emit(
            "ITEM_TRASH",
            id,
            actor,
            &recipients,
            Overrides { deleted: true },
            Value::Null,
            true,
        );
        if !directly_trashed {
            self.adjust_sizes(parent, -(size as i64));
        }
        if let Some(key) = self.nodes.get(&id).map(Node::key)
            && let Some(p) = self.nodes.get_mut(&parent)
        {
            p.children.remove(&key);
        }
        let doomed: HashSet<u64> = self.subtree(id).into_iter().collect();
        for member in &doomed {
            self.nodes.remove(member);
        }
        self.collabs.retain(|c| !doomed.contains(&c.item));
        Ok(())
    }

    /// Adds an accepted collaboration; emits `COLLAB_ADD_COLLABORATOR` (source: the item).
    pub(crate) fn add_collab(&mut self, id: u64, accessor: Accessor, role: &str) -> MutResult<u64> {
        self.add_collab_as(id, accessor, role, "COLLAB_ADD_COLLABORATOR")
    }

    /// Adds an accepted collaboration and emits `event` for it (source: the item).
    pub(crate) fn add_collab_as(
        &mut self,
        id: u64,
        accessor: Accessor,
        role: &str,
        event: &str,
    ) -> MutResult<u64> {
        let node = self.active_item(id)?;
        let owner = node.owner;
        match accessor {
            Accessor::User(user) if user == owner => {
                return Err("the owner cannot be added as a collaborator".into());
            }
            Accessor::User(user) if user as usize >= self.users.len() => {
                return Err("no such user".into());
            }
            Accessor::Group(group) if group as usize >= self.groups.len() => {
                return Err("no such group".into());
            }
            _ => {}
        }
        if self
            .collabs
            .iter()
            .any(|c| c.item == id && c.accessor == accessor)
        {
            return Err("this collaboration already exists".into());
        }
        let before = self.viewers(id);
        let now = self.tick();
        self.next_collab_id += 1 + (mix64(self.next_collab_id) % 5);
        let collab = Collab {
            id: self.next_collab_id,
            item: id,
            accessor,
            role: role.to_string(),
            created_by: owner,
            created_at: now,
        };
        let details = json!({
            "collaboration_id": collab.id.to_string(),
            "role": role,
            "accessible_by": match accessor {
                Accessor::User(u) => self.user_mini(u),
                Accessor::Group(g) => self.group_mini(g),
            },
        });
        let collab_id = collab.id;
        self.collabs.push(collab);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.sequence += 1;
        }
        let recipients = Self::union(before, self.viewers(id));
        self.emit(
            event,
            id,
            owner,
            &recipients,
            Overrides::default(),
            details,
            true,
        );
        Ok(collab_id)
    }

    /// Removes a collaboration; emits `COLLAB_REMOVE_COLLABORATOR` to everyone who could see the
    /// item before.
    pub(crate) fn remove_collab(&mut self, collab_id: u64) -> MutResult<()> {
        let index = self
            .collabs
            .iter()
            .position(|c| c.id == collab_id)
            .ok_or_else(|| format!("no collaboration {collab_id}"))?;
        let item = self.collabs[index].item;
        let owner = self.nodes.get(&item).map(|n| n.owner).unwrap_or(0);
        let before = self.viewers(item);
        self.tick();
        let details = json!({"collaboration_id": collab_id.to_string()});
        self.collabs.remove(index);
        if let Some(node) = self.nodes.get_mut(&item) {
            node.sequence += 1;
        }
        self.emit(
            "COLLAB_REMOVE_COLLABORATOR",
            item,
            owner,
            &before,
            Overrides::default(),
            details,
            true,
        );
        Ok(())
    }

    /// Box tells the content owner about downloads, in the `all` stream only.
    pub(crate) fn record_download(&mut self, id: u64, downloader: u32) {
        if !self.download_events {
            return;
        }
        let Some(owner) = self.nodes.get(&id).map(|n| n.owner) else {
            return;
        };
        self.emit(
            "ITEM_DOWNLOAD",
            id,
            downloader,
            &[owner],
            Overrides::default(),
            Value::Null,
            false,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        event_type: &str,
        item: u64,
        actor: u32,
        recipients: &[u32],
        overrides: Overrides,
        details: Value,
        changes: bool,
    ) {
        self.event_counter += 1;
        let a = mix64(self.event_counter ^ 0xE5E7);
        let b = mix64(a ^ self.event_counter);
        let event_id = format!("{a:016x}{b:016x}{:08x}", (a ^ b) as u32);
        let when = rfc3339(self.clock);
        for &recipient in recipients {
            let source = self
                .render_item(recipient, item, &Fields::Event, overrides)
                .unwrap_or(Value::Null);
            let json = json!({
                "type": "event",
                "event_id": event_id,
                "event_type": event_type,
                "created_at": when,
                "recorded_at": when,
                "created_by": self.user_mini(actor),
                "session_id": null,
                "source": source,
                "additional_details": details,
            });
            self.push_event(recipient, changes, Arc::new(json));
        }
    }

    /// Appends to a user's stream. With duplicates on, each event is delivered a second time
    /// right after the *next* event for that user, so the copy arrives late and stale.
    fn push_event(&mut self, user: u32, changes: bool, json: Arc<Value>) {
        let Some(stream) = self.streams.get_mut(user as usize) else {
            return;
        };
        self.position += 1;
        let event = StoredEvent {
            position: self.position,
            changes,
            json,
        };
        stream.push(event.clone());
        if self.duplicate_events {
            let previous = self
                .pending_duplicates
                .get_mut(user as usize)
                .and_then(|slot| slot.replace(event));
            if let Some(previous) = previous {
                self.position += 1;
                let position = self.position;
                if let Some(stream) = self.streams.get_mut(user as usize) {
                    stream.push(StoredEvent {
                        position,
                        ..previous
                    });
                }
            }
        }
    }

    /// Turns duplicate delivery on or off; turning it off delivers the pending copies.
    pub(crate) fn set_duplicates(&mut self, on: bool) {
        if !on {
            for user in 0..self.pending_duplicates.len() {
                if let Some(previous) = self.pending_duplicates[user].take() {
                    self.position += 1;
                    let position = self.position;
                    if let Some(stream) = self.streams.get_mut(user) {
                        stream.push(StoredEvent {
                            position,
                            ..previous
                        });
                    }
                }
            }
        }
        self.duplicate_events = on;
    }

    /// Every non-trashed item `viewer` can reach from their "All Files", depth first.
    pub(crate) fn items_for(&self, viewer: u32) -> Vec<BoxItem> {
        let mut out = Vec::new();
        let root = State::root_of(viewer);
        let mut stack: Vec<(u64, u64, String)> = self
            .visible_children(viewer, root)
            .into_iter()
            .rev()
            .map(|k| (k.id, root, String::from("/")))
            .collect();
        while let Some((id, parent, prefix)) = stack.pop() {
            let Some(node) = self.nodes.get(&id) else {
                continue;
            };
            let path = format!("{prefix}{}", node.name);
            if node.kind == Kind::Folder {
                let child_prefix = format!("{path}/");
                let children = self.visible_children(viewer, id);
                stack.extend(
                    children
                        .into_iter()
                        .rev()
                        .map(|k| (k.id, id, child_prefix.clone())),
                );
            }
            out.push(BoxItem {
                id: id.to_string(),
                kind: match node.kind {
                    Kind::File => ItemKind::File,
                    Kind::Folder => ItemKind::Folder,
                },
                name: node.name.clone(),
                size: node.size,
                modified_at: rfc3339(node.modified_at),
                path,
                parent_id: State::external_id(parent),
                owner_id: self
                    .users
                    .get(node.owner as usize)
                    .map(|u| u.id.clone())
                    .unwrap_or_default(),
                sequence_id: node.sequence.to_string(),
                version: node.version,
            });
        }
        out
    }

    /// Effective access to an item, for document-level-security assertions.
    pub(crate) fn access_of(&self, id: u64) -> Option<Access> {
        let node = self.nodes.get(&id)?;
        let mut users: Vec<String> = self
            .viewers(id)
            .into_iter()
            .filter_map(|u| self.users.get(u as usize).map(|u| u.id.clone()))
            .collect();
        users.sort();
        let mut groups = Vec::new();
        let mut current = id;
        while let Some(n) = self.nodes.get(&current) {
            for collab in self.collabs.iter().filter(|c| c.item == current) {
                if let Accessor::Group(g) = collab.accessor
                    && let Some(group) = self.groups.get(g as usize)
                    && !groups.contains(&group.id)
                {
                    groups.push(group.id.clone());
                }
            }
            current = n.parent;
        }
        groups.sort();
        Some(Access {
            owner: self.users.get(node.owner as usize)?.id.clone(),
            users,
            groups,
        })
    }
}
