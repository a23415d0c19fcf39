//! Incremental syncs from Box's event stream (`GET /events?stream_type=changes`), starting at
//! the positions the last sync checkpointed; cost is proportional to the changes.
//!
//! Events only say *which* item changed. Box delivers them at least once and a late duplicate
//! carries the item as it was back then, so events are de-duplicated by `event_id` and the item
//! itself is read again: its current state decides. Per item:
//!
//! - gone (404: trashed, deleted, or no longer shared with the crawled users) → the item and
//!   every descendant the map knows are deleted;
//! - a folder that is new to the index (created, copied, restored, newly shared), moved,
//!   renamed, re-owned, or whose collaborations changed (with document-level security) → it is
//!   listed again with its whole subtree, since its descendants' paths or permissions changed
//!   without events of their own;
//! - anything else → indexed again when its version changed.
//!
//! Collaboration events (`COLLAB_ADD_COLLABORATOR`, `COLLAB_REMOVE_COLLABORATOR`, and
//! `COLLAB_INVITE_COLLABORATOR`, the only event Box sends when it accepts an invitation of a
//! managed user at once) make the item be read again like any change.
//!
//! The folders above a changed item (before and after a move) are read again too: Box sends no
//! event for them, yet their `size` (and possibly `modified_at`) changed.
//!
//! Each page of events ends with a checkpoint storing the new position, the event ids seen
//! recently and the map, atomically with the documents: a crash replays at most one page, and
//! replaying is harmless because current states decide.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::Value;
use tributary_sdk::{Result, state};

use crate::api::{Item, Kind};
use crate::dls;
use crate::docs::structure_key;
use crate::settings::Settings;
use crate::sync::{
    self, EVENT_RETENTION_SECS, Frame, ME, Mode, POSITIONS_AT_KEY, POSITIONS_KEY, SCOPE_KEY, Sync,
    Target, entry, unix_now,
};

/// Recently applied event ids (Box re-delivers events, sometimes pages later).
const SEEN_EVENTS_KEY: &str = "events/seen";
const SEEN_EVENTS: usize = 4096;

/// Event types that change nothing an index holds.
const READ_ONLY: &[&str] = &[
    "ITEM_DOWNLOAD",
    "ITEM_PREVIEW",
    "ITEM_SYNC",
    "ITEM_UNSYNC",
    "COMMENT_CREATE",
    "COMMENT_DELETE",
    "LOCK_CREATE",
    "LOCK_DESTROY",
    "TASK_ASSIGNMENT_CREATE",
    "TASK_ASSIGNMENT_UPDATE",
    "ITEM_SHARED",
    "ITEM_SHARED_CREATE",
    "ITEM_SHARED_UNSHARE",
    "ITEM_SHARED_UPDATE",
];

/// The last [`SEEN_EVENTS`] event ids.
struct Ring {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Ring {
    fn load() -> Result<Ring> {
        let order: VecDeque<String> = state::get_json(SEEN_EVENTS_KEY)?.unwrap_or_default();
        let set = order.iter().cloned().collect();
        Ok(Ring { order, set })
    }

    /// Records `id`; `false` when it was seen already.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        self.set.insert(id.to_string());
        self.order.push_back(id.to_string());
        while self.order.len() > SEEN_EVENTS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// What reading an item again found.
enum Resolved {
    /// Its current state, and whose view it is.
    Found(Item, Option<String>),
    /// Trashed, deleted, or invisible to every candidate view.
    Gone,
    /// Nobody could be asked.
    Unknown,
}

/// The item an event is about: its id, kind and owner.
fn subject(source: &Value) -> Option<(String, Kind, Option<String>)> {
    let kind = source.get("type").and_then(Value::as_str)?;
    if kind == "collaboration" {
        return source.get("item").and_then(subject);
    }
    let kind = Kind::parse(kind)?;
    let id = match source.get("id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let owner = source
        .get("owned_by")
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((id, kind, owner))
}

impl Sync {
    /// Reads the item's current state: from the view it was indexed from first, then from the
    /// other candidates; enterprise crawls prefer the owner's view when the owner is crawled.
    fn resolve(&mut self, target: &Target) -> Result<Resolved> {
        let stored = self.map.get(&target.id)?;
        let kind = stored.as_ref().map(|n| n.kind()).unwrap_or(target.kind);
        let mut viewers: Vec<Option<String>> = Vec::new();
        if let Some(node) = &stored {
            viewers.push(node.u.clone());
        }
        viewers.extend(target.viewers.iter().cloned());
        if self.settings.enterprise() {
            // The service account sees nothing itself: only users' views count.
            viewers.retain(Option::is_some);
            if viewers.is_empty() {
                return Ok(Resolved::Unknown);
            }
        } else {
            viewers = vec![None];
        }
        let mut tried = HashSet::new();
        let dls = self.settings.dls;
        for viewer in viewers {
            if !tried.insert(viewer.clone()) {
                continue;
            }
            let Some(item) = self.api.item(kind, &target.id, viewer.as_deref(), dls)? else {
                continue;
            };
            if let Some(owner) = item.owner()
                && self.crawled.contains(&owner.id)
                && viewer.as_deref() != Some(owner.id.as_str())
                && let Some(own) = self.api.item(kind, &target.id, Some(&owner.id), dls)?
            {
                return Ok(Resolved::Found(own, Some(owner.id)));
            }
            return Ok(Resolved::Found(item, viewer));
        }
        Ok(Resolved::Gone)
    }

    /// Brings one item (and, for a folder whose subtree changed, everything below) up to date.
    fn apply(&mut self, target: Target) -> Result<()> {
        if self.done.contains(&target.id) {
            return Ok(());
        }
        let old_ancestors = self.ancestors_in_map(&target.id)?;
        let stored_viewer = self.map.get(&target.id)?.and_then(|n| n.u);
        let resolved = match self.resolve(&target)? {
            Resolved::Found(item, as_user) => Some((item, as_user)),
            Resolved::Gone => None,
            Resolved::Unknown => {
                tributary_sdk::warn!(
                    "box: no crawled user to read {} {} as; left for the next full sync",
                    target.kind.as_str(),
                    target.id
                );
                return Ok(());
            }
        };
        let (new_ancestors, viewer) = match &resolved {
            Some((item, as_user)) => (
                item.ancestors().into_iter().map(|(id, _)| id).collect(),
                as_user.clone(),
            ),
            None => (
                Vec::new(),
                stored_viewer.or_else(|| target.viewers.first().cloned().flatten()),
            ),
        };
        for id in old_ancestors.into_iter().chain(new_ancestors) {
            if self.dirty.iter().all(|t| t.id != id) {
                self.dirty.push_back(Target {
                    id,
                    kind: Kind::Folder,
                    viewers: vec![viewer.clone()],
                });
            }
        }
        let Some((item, as_user)) = resolved else {
            return self.remove_subtree(&target.id);
        };
        let parent = item.parent_id().unwrap_or_else(|| "0".into());
        let stored = self.map.get(&item.id)?;
        let inherited = self.inherited_acl(&item)?;
        let direct = self.direct_acl(&item, as_user.as_deref())?;
        let withheld = direct.is_none();
        let direct = direct.unwrap_or_default();
        let acl = self.settings.dls.then(|| {
            let own = item
                .owner()
                .map(|o| dls::user_identities(&o))
                .unwrap_or_default();
            dls::merge(&[&inherited, &own, &direct])
        });
        let relist = item.kind == Kind::Folder
            && match &stored {
                None => true,
                Some(node) => {
                    node.s.as_deref() != Some(structure_key(&item).as_str())
                        || node.a != direct
                        || node.u != as_user
                }
            };
        let id = item.id.clone();
        if withheld {
            self.withhold(&item, &parent, as_user.clone())?;
        } else {
            self.index(item, &parent, as_user.clone(), acl, direct.clone())?;
        }
        if relist {
            self.walk(Frame {
                id,
                as_user,
                inherited: dls::merge(&[&inherited, &direct]),
            })?;
        }
        Ok(())
    }

    /// The folders above an indexed item, nearest first, as the map knows them.
    fn ancestors_in_map(&self, id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut current = self.map.get(id)?.map(|n| n.p);
        while let Some(parent) = current {
            if parent == "0" || out.len() >= 256 || out.contains(&parent) {
                break;
            }
            current = self.map.get(&parent)?.map(|n| n.p);
            out.push(parent);
        }
        Ok(out)
    }

    /// Applies `target`, then whatever it queued.
    fn settle(&mut self, target: Target) -> Result<()> {
        self.apply(target)?;
        while let Some(next) = self.queue.pop_front() {
            self.apply(next)?;
        }
        Ok(())
    }

    /// Applies one page of events from `reporter`'s stream.
    fn apply_events(
        &mut self,
        entries: Vec<crate::api::Event>,
        reporter: Option<&str>,
        ring: &mut Ring,
    ) -> Result<(usize, usize)> {
        let mut order: Vec<Target> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut duplicates = 0;
        for event in entries {
            if let Some(event_id) = event.event_id.as_deref()
                && !ring.insert(event_id)
            {
                duplicates += 1;
                continue;
            }
            if event
                .event_type
                .as_deref()
                .is_some_and(|t| READ_ONLY.contains(&t))
            {
                continue;
            }
            let Some((id, kind, owner)) = event.source.as_ref().and_then(subject) else {
                continue;
            };
            let position = *index.entry(id.clone()).or_insert_with(|| {
                order.push(Target {
                    id,
                    kind,
                    viewers: Vec::new(),
                });
                order.len() - 1
            });
            if let Some(target) = order.get_mut(position) {
                for viewer in [
                    owner.filter(|o| self.crawled.contains(o)),
                    reporter.map(str::to_string),
                ] {
                    if viewer.is_some() && !target.viewers.contains(&viewer) {
                        target.viewers.push(viewer);
                    }
                }
            }
        }
        let changed = order.len();
        self.done.clear();
        for target in order {
            self.settle(target)?;
        }
        // Folders above the changes: their sizes moved without events of their own.
        while let Some(folder) = self.dirty.pop_front() {
            self.settle(folder)?;
        }
        Ok((changed, duplicates))
    }
}

/// Applies every change since the stored positions. Without positions from a full sync of
/// this configuration, lists everything instead (vanished documents then wait for the next
/// full sync: only full jobs delete what they did not see).
pub fn incremental(settings: Settings) -> Result<()> {
    let positions: Option<BTreeMap<String, String>> = state::get_json(POSITIONS_KEY)?;
    // State of versions before this key: ages unknown, positions trusted.
    let mut positions_at: BTreeMap<String, i64> =
        state::get_json(POSITIONS_AT_KEY)?.unwrap_or_default();
    let stored: Option<String> = state::get_json(SCOPE_KEY)?;
    let mut sync = Sync::new(settings, Mode::Incremental);
    sync.api.authenticate()?;
    let scope = sync.scope()?;
    let mut positions = match (positions, stored) {
        (Some(p), Some(stored)) if stored == scope => p,
        (_, Some(_)) => {
            tributary_sdk::warn!(
                "box: the signed-in user or the configuration changed since the last full sync \
                 (or it could not read event positions): listing everything instead of reading \
                 events"
            );
            return sync::listing(sync.into_full(), scope, false);
        }
        (_, None) => {
            tributary_sdk::info!(
                "box: no full sync of this configuration has completed yet; listing everything"
            );
            return sync::listing(sync.into_full(), scope, false);
        }
    };
    // A position Box no longer keeps events for would silently skip changes: list instead.
    // (A day of margin: Box's retention is not to the second.)
    let now = unix_now();
    if let Some((stream, at)) = positions_at
        .iter()
        .filter(|(stream, _)| positions.contains_key(*stream))
        .min_by_key(|(_, at)| **at)
        && now - at > EVENT_RETENTION_SECS - 86_400
    {
        tributary_sdk::warn!(
            "box: the stored event position of {} is {} days old and Box keeps the changes \
             stream for 21 days, so events may be gone: listing everything instead of reading \
             events",
            if stream == ME {
                "the account"
            } else {
                stream.as_str()
            },
            (now - at) / 86_400
        );
        return sync::listing(sync.into_full(), scope, false);
    }
    let mut ring = Ring::load()?;
    if sync.settings.enterprise() {
        let views = sync.views()?;
        // Users who joined since: their trees are new to the index.
        for view in views.into_iter().flatten() {
            if let Entry::Vacant(slot) = positions.entry(view.clone()) {
                slot.insert(sync.api.stream_now(Some(&view))?);
                positions_at.insert(view.clone(), unix_now());
                sync.walk(Frame::root(Some(view)))?;
            }
        }
        let crawled = sync.crawled.clone();
        positions.retain(|user, _| crawled.contains(user));
        positions_at.retain(|user, _| crawled.contains(user));
    }
    let (mut changes, mut duplicates) = (0, 0);
    let streams: Vec<String> = positions.keys().cloned().collect();
    for stream in streams {
        let as_user = (stream != ME).then(|| stream.clone());
        while let Some(from) = positions.get(&stream).cloned() {
            let page = sync.api.events(&from, as_user.as_deref())?;
            let empty = page.entries.is_empty();
            let (c, d) = sync.apply_events(page.entries, as_user.as_deref(), &mut ring)?;
            changes += c;
            duplicates += d;
            let advanced = page.next_position != from;
            positions.insert(stream.clone(), page.next_position);
            positions_at.insert(stream.clone(), unix_now());
            sync.checkpoint(vec![
                entry(POSITIONS_KEY, &positions)?,
                entry(POSITIONS_AT_KEY, &positions_at)?,
                entry(SEEN_EVENTS_KEY, &ring.order)?,
            ])?;
            if empty || !advanced {
                break;
            }
        }
    }
    let s = &sync.stats;
    s.report_withheld();
    if let Some(summary) = sync.budget.summary() {
        tributary_sdk::warn!("{summary}");
    }
    tributary_sdk::info!(
        "box: incremental: {changes} changed item(s), {duplicates} duplicate event(s) skipped, \
         {} document(s) emitted, {} unchanged, {} deleted, {} folder(s) listed",
        sync.out.emitted(),
        s.unchanged,
        sync.out.deleted(),
        s.folders
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn subjects_of_item_and_collaboration_events() {
        let file = json!({"type": "file", "id": "12", "owned_by": {"type": "user", "id": "3"}});
        assert_eq!(
            subject(&file),
            Some(("12".to_string(), Kind::File, Some("3".to_string())))
        );
        let collab =
            json!({"type": "collaboration", "id": "5", "item": {"type": "folder", "id": "8"}});
        assert_eq!(
            subject(&collab),
            Some(("8".to_string(), Kind::Folder, None))
        );
        assert_eq!(subject(&json!({"type": "user", "id": "1"})), None);
    }

    #[test]
    fn the_ring_forgets_the_oldest_ids() {
        let mut ring = Ring {
            order: VecDeque::new(),
            set: HashSet::new(),
        };
        assert!(ring.insert("a"));
        assert!(!ring.insert("a"));
        for i in 0..SEEN_EVENTS {
            ring.insert(&i.to_string());
        }
        assert!(ring.insert("a"), "evicted");
        assert_eq!(ring.order.len(), SEEN_EVENTS);
    }
}
