//! Full, incremental and access-control syncs.
//!
//! **Listing mode** (no advanced rules). A full sync lists `path` recursively
//! (`files/list_folder` + `/continue` while `has_more`), then the files shared with the user
//! (`sharing/list_received_files` + `/continue`, each resolved with
//! `sharing/get_shared_link_metadata`). At the end of a page, once [`CHECKPOINT_EVERY`]
//! documents or [`MAX_PENDING_FETCHES`] downloads went out since the last one, and at the end
//! of each listing, it checkpoints: the host commits those documents (waiting for their
//! downloads) and stores the path map writes of those pages, held in the map's overlay until
//! then. The final checkpoint stores the listing's cursor. An incremental sync continues from
//! that cursor: each page of changes is applied (upserts; deletions through the path map, a
//! folder with its subtree — unless Dropbox says the item still exists: a move whose halves
//! landed on different pages) and checkpointed with the next cursor, so its cost follows the
//! changes and an interrupted run resumes where it stopped. Received files have no change
//! cursor; an incremental run re-lists them (usually few) and applies what differs from the
//! stored versions (`r:<id>`); one the listing also has is marked `listed` and keeps the
//! listing's document. A cursor Dropbox has invalidated (`reset`) or a missing one triggers a
//! rebuild: a full listing in which the plugin deletes what vanished itself (the host only does
//! that for full syncs).
//!
//! **Search mode** (advanced rules). Each rule runs through `files/search_v2` +
//! `files/search/continue_v2`; results are de-duplicated across rules. There is no change
//! cursor for searches, so an incremental run searches again and upserts what differs from the
//! stored versions (`a:<id>`) and deletes what no longer matches.
//!
//! **Document-level security fails closed.** An entry whose access list could not be read is
//! withheld: not indexed, deleted when it was (the host does that after a full sync), its path
//! remembered without a version so the next report of it indexes it again. The job report
//! names the first ones and counts them all.
//!
//! A configuration change that alters what is synced (account, path, team folders, DLS, rules)
//! makes the stored cursor meaningless: incremental syncs then ask for a full sync.
//!
//! Host-side downloads carry the access token valid when the document was emitted. When it
//! expires before the host gets to a download, the checkpoint reports a 401 content failure;
//! the [`Outbox`] has the session refresh the token and upserts those documents again with
//! re-signed requests.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tributary_sdk::docs::Document;
use tributary_sdk::outbox::{Outbox, StateEntry};
use tributary_sdk::tributary::connector::index::ContentFailure;
use tributary_sdk::tributary::connector::storage;
use tributary_sdk::{Error, Result, state};

use crate::api::{ListFolderResult, Metadata, ReceivedFiles, SearchResult, SharedLinkMetadata};
use crate::client::Session;
use crate::dls::Access;
use crate::docs::{self, hash_hex};
use crate::paths::{self, Known, PathMap};
use crate::rules::Rule;
use crate::settings::Settings;
use tributary_sdk::seen::Seen;

/// Where the sync state lives.
const STATE_KEY: &str = "sync";
/// Documents per `upsert` call.
const BATCH: usize = 100;
/// Storage deletions per checkpoint when clearing stale state.
const CLEAR_CHUNK: usize = 5000;
/// Received files per page (Dropbox allows at most 300).
const RECEIVED_PAGE: u64 = 300;
/// A full listing checkpoints at the end of the first page after this many documents (or
/// [`MAX_PENDING_FETCHES`] downloads) since the last one, not after every page: a checkpoint
/// waits for every download in flight and commits, so the download window empties and the
/// index takes a small segment each time. Checkpointing after each page of 2,000 entries (and
/// each 300 received files) made the `sync_memory` bench's Dropbox mix take 7–11 % longer.
const CHECKPOINT_EVERY: usize = 4000;
/// Downloads emitted since the last checkpoint after which one is due: the outbox keeps each
/// of those documents (about 1 KB) to send again if its download's token expires.
const MAX_PENDING_FETCHES: usize = 2000;

/// What the last successful sync left for the next one.
#[derive(Debug, Serialize, Deserialize)]
struct SyncState {
    /// `listing` or `search`.
    mode: String,
    /// Fingerprint of the configuration that decides what is synced.
    scope: String,
    /// The `files/list_folder` cursor (listing mode).
    #[serde(default)]
    cursor: Option<String>,
}

/// Who deletes documents that vanished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A full sync: the host deletes what the run did not produce.
    Full,
    /// An incremental sync that applies changes.
    Incremental,
    /// An incremental sync that has to list everything: the plugin deletes what vanished.
    Rebuild,
}

/// Logs the content failures a checkpoint left (the first 20).
fn report(failures: &[ContentFailure]) {
    for failure in failures.iter().take(20) {
        tributary_sdk::warn!(
            "content of {} not indexed (it is fetched again by the next full sync): {}",
            failure.id,
            failure.message
        );
    }
    if failures.len() > 20 {
        tributary_sdk::warn!("… and {} more content failures", failures.len() - 20);
    }
}

/// Versions of documents that have no change cursor (received files, search results).
struct Tracked {
    prefix: &'static str,
    existing: HashSet<String>,
    seen: HashSet<String>,
    writes: Vec<(String, Option<Vec<u8>>)>,
}

impl Tracked {
    fn load(prefix: &'static str) -> Result<Self> {
        let existing = storage::list_keys(prefix)?
            .into_iter()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_string))
            .collect();
        Ok(Self {
            prefix,
            existing,
            seen: HashSet::new(),
            writes: Vec::new(),
        })
    }

    /// Records `id` at `version`; whether that differs from what was stored.
    fn record(&mut self, id: &str, version: &str) -> Result<bool> {
        self.seen.insert(id.to_string());
        let key = format!("{}{id}", self.prefix);
        let old = if self.existing.contains(id) {
            storage::get(&key)?
        } else {
            None
        };
        let changed = old.as_deref() != Some(version.as_bytes());
        if changed {
            self.writes.push((key, Some(version.as_bytes().to_vec())));
        }
        Ok(changed)
    }

    /// Whether `id` is stored with exactly `version`.
    fn stored_is(&self, id: &str, version: &str) -> Result<bool> {
        if !self.existing.contains(id) {
            return Ok(false);
        }
        Ok(storage::get(&format!("{}{id}", self.prefix))?.as_deref() == Some(version.as_bytes()))
    }

    fn take_writes(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        std::mem::take(&mut self.writes)
    }

    /// Ids stored before but not recorded in this run.
    fn stale(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.existing.difference(&self.seen).cloned().collect();
        ids.sort();
        ids
    }
}

/// One sync run.
pub struct Job {
    settings: Settings,
    session: Session,
    out: Outbox,
    access: Option<Access>,
    scope: String,
    /// Documents withheld because their access list could not be read.
    withheld: u64,
}

impl Job {
    /// Signs in and prepares a run; `rules` are the active advanced rules.
    pub fn start(settings: Settings, rules: Option<&Value>) -> Result<Job> {
        tributary_sdk::docs::set_download_concurrency(settings.concurrent_downloads);
        let session = Session::connect(&settings)?;
        let access = settings
            .dls
            .then(|| Access::new(&session.identity.account_id, settings.include_inherited));
        let scope = hash_hex(
            json!({
                "account": session.identity.account_id,
                "path": settings.path.to_lowercase(),
                "team_folders": settings.team_folders,
                "dls": settings.dls,
                "inherited": settings.dls && settings.include_inherited,
                "rules": rules,
            })
            .to_string()
            .as_bytes(),
        );
        Ok(Job {
            settings,
            session,
            out: Outbox::new(BATCH),
            access,
            scope,
            withheld: 0,
        })
    }

    /// A full sync.
    pub fn full(mut self, rules: Option<&[Rule]>) -> Result<()> {
        match rules {
            Some(rules) => self.search(rules, Mode::Full),
            None => self.listing(Mode::Full),
        }
    }

    /// An incremental sync.
    pub fn incremental(mut self, rules: Option<&[Rule]>) -> Result<()> {
        let stored: Option<SyncState> = state::get_json(STATE_KEY)?;
        let Some(stored) = stored else {
            tributary_sdk::info!("no state from a previous sync: listing everything");
            return match rules {
                Some(rules) => self.search(rules, Mode::Rebuild),
                None => self.listing(Mode::Rebuild),
            };
        };
        if stored.scope != self.scope {
            return Err(Error::Config(
                "the configuration changed what this connector syncs (account, path, team \
                 folders, document level security or advanced rules) since the last full sync: \
                 run a full sync"
                    .into(),
            ));
        }
        match (rules, stored.cursor) {
            (Some(rules), _) => self.search(rules, Mode::Incremental),
            (None, Some(cursor)) => self.changes(cursor),
            (None, None) => self.listing(Mode::Rebuild),
        }
    }

    /// With document-level security, whether the document `id` must be withheld because its
    /// access list (absent from `acl`) could not be read; counts and reports it.
    fn withhold(&mut self, acl: &HashMap<String, Vec<String>>, id: &str, what: &str) -> bool {
        if self.access.is_none() || acl.contains_key(id) {
            return false;
        }
        self.withheld += 1;
        if self.withheld <= 20 {
            tributary_sdk::warn!(
                "{what} ({id}) withheld from the index: its access list could not be read"
            );
        }
        true
    }

    fn finish_log(&self, what: &str) {
        if self.withheld > 0 {
            tributary_sdk::warn!(
                "{} document(s) withheld: their access lists could not be read, and document \
                 level security never indexes a document for everyone by mistake; they are \
                 indexed once their members can be read",
                self.withheld
            );
        }
        tributary_sdk::info!(
            "{what}: {} document(s) emitted, {} deleted",
            self.out.emitted(),
            self.out.deleted()
        );
    }

    fn state_write(&self, mode: &str, cursor: Option<String>) -> Result<StateEntry> {
        let value = SyncState {
            mode: mode.into(),
            scope: self.scope.clone(),
            cursor,
        };
        Ok((STATE_KEY.to_string(), Some(state::encode(&value)?)))
    }

    // ----- listing mode ----------------------------------------------------------------------

    fn list_first(&mut self) -> Result<ListFolderResult> {
        let body = json!({
            "path": self.settings.path,
            "recursive": true,
            "limit": self.settings.page_size,
        });
        match self.session.rpc("files/list_folder", &body)? {
            Ok(page) => Ok(page),
            Err(c) if c.is("path/not_found") => Err(Error::NotFound(format!(
                "`path` (Path to fetch files/folders): {} does not exist in Dropbox",
                self.settings.path_for_humans()
            ))),
            Err(c) if c.is("path/not_folder") => Err(Error::Config(format!(
                "`path` (Path to fetch files/folders): {} is a file, not a folder",
                self.settings.path_for_humans()
            ))),
            Err(c) => Err(c.into_error()),
        }
    }

    /// Lists everything under `path`, then the received files.
    fn listing(&mut self, mode: Mode) -> Result<()> {
        let mut map = PathMap::default();
        // Every path key and id of the listing, as digests (a million-entry account lists a
        // million of each).
        let mut seen_keys = Seen::default();
        let mut seen_ids = Seen::default();
        let mut page = self.list_first()?;
        loop {
            let entries = std::mem::take(&mut page.entries);
            let acl = self.access_lists(&entries)?;
            let mut withheld = Vec::new();
            for entry in &entries {
                if let Some((id, path_lower, dir)) = entry_key(entry)
                    && self.withhold(&acl, id, path_lower.unwrap_or(id))
                {
                    if let Some(path) = path_lower {
                        seen_keys.insert(&paths::key(path));
                        map.set(path, unversioned(id, dir));
                    }
                    seen_ids.insert(id);
                    withheld.push(id.to_string());
                    continue;
                }
                let (document, path_lower, dir) = match entry {
                    Metadata::File(f) => (
                        docs::file_document(
                            &mut self.session,
                            &self.settings,
                            f,
                            acl.get(&f.id).map(Vec::as_slice),
                        )?,
                        f.path_lower.as_deref(),
                        false,
                    ),
                    Metadata::Folder(f) => (
                        docs::folder_document(f, acl.get(&f.id).map(Vec::as_slice)),
                        f.path_lower.as_deref(),
                        true,
                    ),
                    Metadata::Deleted(_) => continue,
                };
                if let Some(path) = path_lower {
                    seen_keys.insert(&paths::key(path));
                    map.set(path, known(&document, dir));
                }
                seen_ids.insert(document.id());
                self.out.emit(document)?;
            }
            if mode != Mode::Full {
                self.out.delete(&withheld)?;
            }
            if !page.has_more || self.checkpoint_due() {
                let writes = map.take_writes()?;
                self.checkpoint(writes)?;
            }
            if !page.has_more {
                break;
            }
            page = match self.session.rpc(
                "files/list_folder/continue",
                &json!({ "cursor": page.cursor }),
            )? {
                Ok(next) => next,
                Err(c) => {
                    return Err(Error::Transient(format!(
                        "Dropbox invalidated the listing while it was read ({}); a later run \
                         starts over",
                        c.summary
                    )));
                }
            };
        }
        let cursor = page.cursor;
        self.received(mode, &mut seen_ids)?;
        // Forget paths that no longer exist; a rebuild also deletes their documents.
        let mut stale = Vec::new();
        for key in paths::stored_keys(paths::PREFIX) {
            let key = key?;
            if !seen_keys.contains(&key) {
                stale.push(key);
            }
        }
        if mode == Mode::Rebuild {
            let mut vanished = Vec::new();
            for key in &stale {
                if let Some(k) = paths::stored(key)?
                    && !seen_ids.contains(&k.id)
                {
                    vanished.push(k.id);
                }
            }
            vanished.sort();
            vanished.dedup();
            self.out.delete(&vanished)?;
        }
        let mut clear = stale;
        clear.extend(storage::list_keys(SEARCH_PREFIX)?);
        let final_state = self.state_write("listing", Some(cursor))?;
        self.clear_then(clear, final_state)?;
        self.finish_log("listing");
        Ok(())
    }

    /// Whether a full listing has emitted enough since its last checkpoint to take one at the
    /// end of this page (see [`CHECKPOINT_EVERY`]).
    fn checkpoint_due(&self) -> bool {
        self.out.since_checkpoint() >= CHECKPOINT_EVERY
            || self.out.pending_fetches() >= MAX_PENDING_FETCHES
    }

    /// Commits everything so far and stores `state`; downloads refused with 401 (the token
    /// expired while they waited) are re-signed with a fresh token and sent again.
    fn checkpoint(&mut self, state: Vec<StateEntry>) -> Result<()> {
        let failures = self.out.checkpoint_with(&mut self.session, state)?;
        report(&failures);
        Ok(())
    }

    /// Deletes storage keys in chunks; the last checkpoint also writes `last`.
    fn clear_then(&mut self, keys: Vec<String>, last: StateEntry) -> Result<()> {
        let mut chunks: Vec<Vec<StateEntry>> = keys
            .chunks(CLEAR_CHUNK)
            .map(|c| c.iter().map(|k| (k.clone(), None)).collect())
            .collect();
        match chunks.last_mut() {
            Some(chunk) => chunk.push(last),
            None => chunks.push(vec![last]),
        }
        for chunk in chunks {
            self.checkpoint(chunk)?;
        }
        Ok(())
    }

    /// Access lists for a page of entries (empty without DLS).
    fn access_lists(&mut self, entries: &[Metadata]) -> Result<HashMap<String, Vec<String>>> {
        let Some(access) = self.access.as_mut() else {
            return Ok(HashMap::new());
        };
        let files: Vec<_> = entries
            .iter()
            .filter_map(|e| match e {
                Metadata::File(f) => Some(f),
                _ => None,
            })
            .collect();
        let folders: Vec<_> = entries
            .iter()
            .filter_map(|e| match e {
                Metadata::Folder(f) => Some(f),
                _ => None,
            })
            .collect();
        access.for_entries(&mut self.session, &files, &folders)
    }

    /// Applies the changes since `cursor`, a page at a time.
    fn changes(&mut self, mut cursor: String) -> Result<()> {
        let mut map = PathMap::default();
        let received: HashSet<String> = storage::list_keys(RECEIVED_PREFIX)?
            .into_iter()
            .filter_map(|k| k.strip_prefix(RECEIVED_PREFIX).map(str::to_string))
            .collect();
        loop {
            let answer = self.session.rpc::<ListFolderResult, _>(
                "files/list_folder/continue",
                &json!({ "cursor": cursor }),
            )?;
            let page = match answer {
                Ok(page) => page,
                Err(c) if c.is("reset") => {
                    tributary_sdk::warn!(
                        "Dropbox reset the change cursor: listing everything again"
                    );
                    return self.listing(Mode::Rebuild);
                }
                Err(c) if c.is("path/not_found") => {
                    return Err(Error::NotFound(format!(
                        "`path` (Path to fetch files/folders): {} does not exist in Dropbox any \
                         more",
                        self.settings.path_for_humans()
                    )));
                }
                Err(c) => return Err(c.into_error()),
            };
            let received_writes = self.apply(&page.entries, &mut map, &received)?;
            let mut writes = map.take_writes()?;
            writes.extend(received_writes);
            writes.push(self.state_write("listing", Some(page.cursor.clone()))?);
            self.checkpoint(writes)?;
            cursor = page.cursor;
            if !page.has_more {
                break;
            }
        }
        self.received(Mode::Incremental, &mut Seen::default())?;
        self.finish_log("changes");
        Ok(())
    }

    /// One page of changes, in Dropbox's order. `received` are the ids tracked as received
    /// files; returns the writes that keep their markers in step with the listing.
    fn apply(
        &mut self,
        entries: &[Metadata],
        map: &mut PathMap,
        received: &HashSet<String>,
    ) -> Result<Vec<StateEntry>> {
        let mut received_writes = Vec::new();
        let acl = self.access_lists(entries)?;
        let upserted: HashSet<&str> = entries
            .iter()
            .filter_map(|e| match e {
                Metadata::File(f) => Some(f.id.as_str()),
                Metadata::Folder(f) => Some(f.id.as_str()),
                Metadata::Deleted(_) => None,
            })
            .collect();
        let mut deleted = Vec::new();
        let mut documents = Vec::new();
        // Deleted paths: the id that was there (if known) and everything removed with it.
        let mut removals: Vec<(Option<String>, Vec<Known>)> = Vec::new();
        for entry in entries {
            if let Some((id, path_lower, dir)) = entry_key(entry)
                && self.withhold(&acl, id, path_lower.unwrap_or(id))
            {
                if let Some(path) = path_lower {
                    map.set(path, unversioned(id, dir));
                }
                deleted.push(id.to_string());
                continue;
            }
            let (document, path_lower, dir) = match entry {
                Metadata::Deleted(d) => {
                    let Some(path) = d.path_lower.as_deref() else {
                        continue;
                    };
                    let top = map.get(path)?.map(|k| k.id);
                    removals.push((top, map.remove_tree(path)?));
                    continue;
                }
                Metadata::File(f) => (
                    docs::file_document(
                        &mut self.session,
                        &self.settings,
                        f,
                        acl.get(&f.id).map(Vec::as_slice),
                    )?,
                    f.path_lower.as_deref(),
                    false,
                ),
                Metadata::Folder(f) => (
                    docs::folder_document(f, acl.get(&f.id).map(Vec::as_slice)),
                    f.path_lower.as_deref(),
                    true,
                ),
            };
            let Some(path) = path_lower else {
                documents.push(document);
                continue;
            };
            let known_now = known(&document, dir);
            // Something else was at this path (deleted and re-created, file ⇄ folder): Dropbox
            // may report only the new entry, so the old one and its subtree go now.
            if map.get(path)?.is_some_and(|k| k.id != known_now.id) {
                for gone in map.remove_tree(path)? {
                    if !upserted.contains(gone.id.as_str()) {
                        deleted.push(gone.id);
                    }
                }
            }
            // Reported again without a change we index (e.g. its folder was shared).
            if map
                .get(path)?
                .is_some_and(|k| k.id == known_now.id && k.version == known_now.version)
            {
                continue;
            }
            map.set(path, known_now);
            documents.push(document);
        }
        // A move is a deletion at the old path plus an entry at the new one, and Dropbox may
        // put the two in different pages (either order). An item whose old path is deleted but
        // that still exists moved: neither it nor what it contains is deleted (their new
        // entries set the map). Only items not re-reported in this page need asking.
        let candidates: Vec<String> = removals
            .iter()
            .filter_map(|(top, _)| top.clone())
            .filter(|id| !upserted.contains(id.as_str()))
            .collect();
        let moved = self.still_exist(&candidates)?;
        for (top, gone) in removals {
            if top.is_some_and(|id| moved.contains(&id)) {
                continue;
            }
            deleted.extend(
                gone.into_iter()
                    .map(|k| k.id)
                    .filter(|id| !upserted.contains(id.as_str())),
            );
        }
        deleted.sort();
        deleted.dedup();
        for id in &deleted {
            // Listed no more: if it is still shared with the user, the received-files pass
            // indexes it in that shape.
            if received.contains(id) {
                received_writes.push((format!("{RECEIVED_PREFIX}{id}"), None));
            }
        }
        self.out.delete(&deleted)?;
        for document in documents {
            // Listed now: the listing's document wins over the received-file shape.
            if received.contains(document.id()) {
                received_writes.push((
                    format!("{RECEIVED_PREFIX}{}", document.id()),
                    Some(LISTED.as_bytes().to_vec()),
                ));
            }
            self.out.emit(document)?;
        }
        Ok(received_writes)
    }

    /// Which of `ids` still exist (under any path), asked side by side. An answer that is
    /// neither the item nor "not found" counts as existing: keeping a document until the next
    /// full sync is better than deleting one that moved.
    fn still_exist(&mut self, ids: &[String]) -> Result<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let bodies: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "path": if id.starts_with("id:") { id.clone() } else { format!("id:{id}") } }))
            .collect();
        let answers = self
            .session
            .rpc_all::<Metadata>("files/get_metadata", &bodies)?;
        let mut alive = HashSet::new();
        for (id, answer) in ids.iter().zip(answers) {
            match answer {
                Ok(Metadata::Deleted(_)) => {}
                Ok(_) => {
                    alive.insert(id.clone());
                }
                Err(c) if c.is("path/not_found") => {}
                Err(c) => {
                    tributary_sdk::warn!(
                        "could not tell whether {id} was moved or deleted ({}): kept until the \
                         next full sync",
                        c.summary
                    );
                    alive.insert(id.clone());
                }
            }
        }
        Ok(alive)
    }

    // ----- files shared with the user ----------------------------------------------------------

    /// Lists the received files; in a full sync all are emitted, otherwise what changed, and
    /// the ones no longer shared are deleted.
    fn received(&mut self, mode: Mode, listed: &mut Seen) -> Result<()> {
        let mut tracked = Tracked::load(RECEIVED_PREFIX)?;
        let limit = self.settings.page_size.min(RECEIVED_PAGE);
        let mut page: ReceivedFiles = self
            .session
            .call("sharing/list_received_files", &json!({ "limit": limit }))?;
        loop {
            // A received file the listing also has is indexed in the listing's shape, once:
            // a listing knows (`listed`), a run of changes reads the marker the listing or an
            // earlier run left.
            let mut shared_only = Vec::new();
            for e in &page.entries {
                let in_listing = if mode == Mode::Incremental {
                    tracked.stored_is(&e.id, LISTED)?
                } else {
                    listed.contains(&e.id)
                };
                if in_listing {
                    tracked.record(&e.id, LISTED)?;
                } else {
                    shared_only.push(e);
                }
            }
            let entries: Vec<_> = shared_only
                .into_iter()
                .filter_map(|e| match &e.preview_url {
                    Some(url) => Some((e.id.clone(), url.clone())),
                    None => {
                        tributary_sdk::warn!("shared file {} has no link: skipped", e.name);
                        None
                    }
                })
                .collect();
            let bodies: Vec<Value> = entries
                .iter()
                .map(|(_, url)| json!({ "url": url }))
                .collect();
            let links = self
                .session
                .rpc_all::<SharedLinkMetadata>("sharing/get_shared_link_metadata", &bodies)?;
            for ((entry_id, _), link) in entries.into_iter().zip(links) {
                let link = match link {
                    Ok(link) => link,
                    Err(c) => {
                        tributary_sdk::warn!("shared file {entry_id} skipped: {}", c.summary);
                        continue;
                    }
                };
                let id = link.id.clone().unwrap_or(entry_id);
                let acl = match self.access.as_mut() {
                    Some(access) => Some(access.for_shared_file(&mut self.session, &id)?),
                    None => None,
                };
                let document = docs::shared_document(
                    &mut self.session,
                    &self.settings,
                    &id,
                    &link,
                    acl.as_deref(),
                )?;
                let version = document.version_marker().unwrap_or_default().to_string();
                let changed = tracked.record(&id, &version)?;
                if changed || mode == Mode::Full {
                    self.out.emit(document)?;
                }
            }
            let next = page.cursor.take().filter(|c| !c.is_empty());
            if next.is_none() || self.checkpoint_due() {
                let writes = tracked.take_writes();
                self.checkpoint(writes)?;
            }
            let Some(cursor) = next else { break };
            page = self.session.call(
                "sharing/list_received_files/continue",
                &json!({ "cursor": cursor }),
            )?;
        }
        self.forget(&tracked, mode)
    }

    /// Removes what `tracked` saw before but not now (documents too, unless the host does it).
    fn forget(&mut self, tracked: &Tracked, mode: Mode) -> Result<()> {
        let stale = tracked.stale();
        if stale.is_empty() {
            return Ok(());
        }
        if mode != Mode::Full {
            self.out.delete(&stale)?;
        }
        let writes = stale
            .iter()
            .map(|id| (format!("{}{id}", tracked.prefix), None))
            .collect();
        self.checkpoint(writes)
    }

    // ----- search mode ---------------------------------------------------------------------------

    fn search(&mut self, rules: &[Rule], mode: Mode) -> Result<()> {
        let mut tracked = Tracked::load(SEARCH_PREFIX)?;
        let mut done: HashSet<String> = HashSet::new();
        for (i, rule) in rules.iter().enumerate() {
            let mut page: SearchResult = match self.session.rpc("files/search_v2", &rule.body)? {
                Ok(page) => page,
                Err(c) if c.is("path/not_found") => {
                    return Err(Error::NotFound(format!(
                        "advanced rule {}: options.path {} does not exist in Dropbox",
                        i + 1,
                        rule.path.as_deref().unwrap_or("/")
                    )));
                }
                Err(c) => return Err(c.into_error()),
            };
            loop {
                let entries: Vec<Metadata> = std::mem::take(&mut page.matches)
                    .into_iter()
                    .filter_map(|m| match m.metadata {
                        crate::api::MetadataV2::Metadata { metadata } => Some(metadata),
                        crate::api::MetadataV2::Other => None,
                    })
                    .filter(|m| match m {
                        Metadata::File(f) => !done.contains(&f.id),
                        Metadata::Folder(f) => !done.contains(&f.id),
                        // `file_status: deleted` finds deleted files: nothing to index.
                        Metadata::Deleted(_) => false,
                    })
                    .collect();
                let acl = self.access_lists(&entries)?;
                for entry in &entries {
                    let document = match entry {
                        Metadata::File(f) => docs::file_document(
                            &mut self.session,
                            &self.settings,
                            f,
                            acl.get(&f.id).map(Vec::as_slice),
                        )?,
                        Metadata::Folder(f) => {
                            docs::folder_document(f, acl.get(&f.id).map(Vec::as_slice))
                        }
                        Metadata::Deleted(_) => continue,
                    };
                    if !done.insert(document.id().to_string()) {
                        continue;
                    }
                    let id = document.id().to_string();
                    if self.withhold(&acl, &id, "advanced-rule result") {
                        continue;
                    }
                    let version = document.version_marker().unwrap_or_default().to_string();
                    let changed = tracked.record(document.id(), &version)?;
                    if changed || mode == Mode::Full {
                        self.out.emit(document)?;
                    }
                }
                let writes = tracked.take_writes();
                self.checkpoint(writes)?;
                match (page.has_more, page.cursor.take()) {
                    (true, Some(cursor)) => {
                        page = self
                            .session
                            .call("files/search/continue_v2", &json!({ "cursor": cursor }))?;
                    }
                    _ => break,
                }
            }
        }
        let stale = tracked.stale();
        if mode != Mode::Full {
            self.out.delete(&stale)?;
        }
        let mut clear: Vec<String> = stale
            .iter()
            .map(|id| format!("{SEARCH_PREFIX}{id}"))
            .collect();
        if mode == Mode::Full {
            // Listing-mode state belongs to another scope now.
            for key in paths::stored_keys(paths::PREFIX) {
                clear.push(key?);
            }
            clear.extend(storage::list_keys(RECEIVED_PREFIX)?);
        }
        let final_state = self.state_write("search", None)?;
        self.clear_then(clear, final_state)?;
        self.finish_log("advanced rules");
        Ok(())
    }
}

/// Versions of received files.
const RECEIVED_PREFIX: &str = "r:";
/// The stored version of a received file that the listing has too (the listing's document is
/// the one indexed).
const LISTED: &str = "listed";
/// Versions of advanced-rule results.
const SEARCH_PREFIX: &str = "a:";

/// The id, lower-case path and folderness of a listed entry (`None` for deletions).
fn entry_key(entry: &Metadata) -> Option<(&str, Option<&str>, bool)> {
    match entry {
        Metadata::File(f) => Some((f.id.as_str(), f.path_lower.as_deref(), false)),
        Metadata::Folder(f) => Some((f.id.as_str(), f.path_lower.as_deref(), true)),
        Metadata::Deleted(_) => None,
    }
}

/// A path's entry with no indexed version (withheld): the next report of it is indexed.
fn unversioned(id: &str, dir: bool) -> Known {
    Known {
        id: id.to_string(),
        dir,
        version: String::new(),
        path: None,
    }
}

fn known(document: &Document, dir: bool) -> Known {
    Known {
        id: document.id().to_string(),
        dir,
        version: document.version_marker().unwrap_or_default().to_string(),
        path: None,
    }
}

/// Writes one access-control document per team member.
pub fn access_control(settings: Settings) -> Result<()> {
    if !settings.dls {
        tributary_sdk::warn!(
            "document level security is off (`use_document_level_security`): no access-control \
             documents"
        );
        return Ok(());
    }
    let mut session = Session::connect(&settings)?;
    crate::dls::require_team(&session)?;
    let mut out = Outbox::access_control(BATCH);
    let count = crate::dls::access_control_documents(&mut session, settings.page_size, |doc| {
        out.emit(doc)
    })?;
    out.checkpoint(Vec::new())?;
    tributary_sdk::info!("access control: {count} member document(s)");
    Ok(())
}
