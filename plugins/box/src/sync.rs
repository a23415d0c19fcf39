//! Listing Box into the index: the folder walker shared by full syncs and by incremental syncs
//! (which re-walk a folder whose subtree changed), indexing with version checks, deletions of
//! whole subtrees, and checkpoints (through the SDK's [`Outbox`], which re-sends downloads
//! refused because a token expired).
//!
//! A full sync takes the event stream position(s) *first*, then walks every tree from folder
//! `"0"` (free: the user's; enterprise: every managed user's, with `As-User`), and checkpoints
//! the positions last: a change made while the listing ran is replayed by the next incremental
//! sync. Reading a position is best-effort: a full sync does not need events, so when Box (or a
//! Box-compatible gateway, or a token without the events scope) refuses, the sync goes on, the
//! job report says so, and no positions are stored — the next incremental sync lists everything
//! as a full one does. Any listing that fails after retries fails the sync, so the host deletes nothing — a
//! folder is never silently dropped. A folder that vanishes between being listed and being
//! opened is gone for real and skipped.
//!
//! With document-level security, an item whose collaborations cannot be read is withheld: not
//! indexed (deleted when it was), kept in the map without a version so the next pass that can
//! read them indexes it, and counted in the job report. Its subtree is still listed: what it
//! contains inherits every identity that *could* be read, a subset of who may really see it.
//!
//! Enterprise crawls index each item once, from its owner's view: an item owned by another
//! crawled user is skipped (with its subtree: Box gives a folder's contents to the folder's
//! owner) because the owner's own crawl reaches it. Items owned by someone outside the crawl
//! are indexed from the first crawled user who sees them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use tributary_sdk::budget::ErrorBudget;
use tributary_sdk::docs::{self, Document, Fetch};
use tributary_sdk::outbox::{Outbox, StateEntry};
use tributary_sdk::{Result, state};

use crate::api::{Api, Item, Kind, Listing, User};
use crate::dls;
use crate::docs::{build, structure_key, wants_content};
use crate::settings::Settings;
use crate::tree::{Node, NodeMap};

/// Stream positions per crawled user (`"me"` for a free account).
pub const POSITIONS_KEY: &str = "positions";
/// When each stream's position was last known current (Unix seconds, by the same keys as
/// [`POSITIONS_KEY`]): Box keeps the `changes` stream for [`EVENT_RETENTION_SECS`], so an older
/// position may have missed events.
pub const POSITIONS_AT_KEY: &str = "positions_at";
/// Box's retention of the `changes` event stream: 21 days.
pub const EVENT_RETENTION_SECS: i64 = 21 * 86_400;

/// Unix seconds now (WASI wall clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// [`Settings::scope`] of the configuration the stored state belongs to.
pub const SCOPE_KEY: &str = "scope";
/// The free account's key in the positions map.
pub const ME: &str = "me";

/// Checkpoint after this many documents (or [`MAX_PENDING_FETCHES`] downloads).
const CHECKPOINT_EVERY: usize = 2000;
const MAX_PENDING_FETCHES: usize = 500;

/// Full syncs confirm everything; incremental syncs compare with the map.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Incremental,
}

/// A folder to list: its id, whose view (enterprise `As-User`), and the collaborator identities
/// its contents inherit from it and the folders above.
pub struct Frame {
    pub id: String,
    pub as_user: Option<String>,
    pub inherited: Vec<String>,
}

impl Frame {
    pub fn root(as_user: Option<String>) -> Frame {
        Frame {
            id: "0".into(),
            as_user,
            inherited: Vec::new(),
        }
    }
}

/// An item an incremental sync must look at again, and whose views may show it.
pub struct Target {
    pub id: String,
    pub kind: Kind,
    pub viewers: Vec<Option<String>>,
}

/// Counts for the job log (emitted and deleted documents are counted by the outbox).
#[derive(Default)]
pub struct Stats {
    pub folders: u64,
    pub unchanged: u64,
    /// Items withheld because their collaborations could not be read.
    pub withheld: u64,
}

impl Stats {
    /// Reports the withheld items in the job report, if any.
    pub fn report_withheld(&self) {
        if self.withheld > 0 {
            tributary_sdk::warn!(
                "box: {} item(s) withheld: their collaborations could not be read, and \
                 document-level security never indexes an item for more people than it knows; \
                 they are indexed once their collaborations can be read",
                self.withheld
            );
        }
    }
}

/// One running sync.
pub struct Sync {
    pub settings: Settings,
    pub api: Api,
    pub map: NodeMap,
    mode: Mode,
    pub out: Outbox,
    /// Full mode: every id indexed so far → its parent (dedupe across trees; map pruning).
    seen: HashMap<String, String>,
    /// Enterprise: the users whose trees are crawled.
    pub crawled: HashSet<String>,
    /// Incremental: items to look at again (children that vanished from a re-listed folder).
    pub queue: VecDeque<Target>,
    /// Incremental: items already settled in this round (a re-walk may reach them twice).
    pub done: HashSet<String>,
    /// Incremental: folders above changed items, to read again after the changes.
    pub dirty: VecDeque<Target>,
    /// Direct collaborator identities of folders, read from the map (incremental, DLS).
    acl_cache: HashMap<String, Vec<String>>,
    pub stats: Stats,
    /// Folders and views that could not be listed, skipped under Elastic's error limits.
    pub budget: ErrorBudget,
}

impl Sync {
    pub fn new(settings: Settings, mode: Mode) -> Sync {
        docs::set_download_concurrency(settings.concurrent_downloads);
        Sync {
            api: Api::new(&settings),
            settings,
            map: NodeMap::default(),
            mode,
            out: Outbox::new(100),
            seen: HashMap::new(),
            crawled: HashSet::new(),
            queue: VecDeque::new(),
            done: HashSet::new(),
            dirty: VecDeque::new(),
            acl_cache: HashMap::new(),
            stats: Stats::default(),
            budget: ErrorBudget::default(),
        }
    }

    /// The views to crawl: the free account's own, or every managed user's.
    pub fn views(&mut self) -> Result<Vec<Option<String>>> {
        if !self.settings.enterprise() {
            return Ok(vec![None]);
        }
        let users: Vec<User> = self.api.users()?;
        self.crawled = users.iter().map(|u| u.id.clone()).collect();
        tributary_sdk::info!("box: crawling {} managed user(s)", users.len());
        Ok(users.into_iter().map(|u| Some(u.id)).collect())
    }

    /// Lists `start` and everything below it.
    pub fn walk(&mut self, start: Frame) -> Result<()> {
        let mut stack = vec![start];
        while let Some(frame) = stack.pop() {
            self.stats.folders += 1;
            let mut marker: Option<String> = None;
            let mut listed = HashSet::new();
            let mut complete = true;
            loop {
                let listed_page = self.api.folder_page(
                    &frame.id,
                    marker.as_deref(),
                    frame.as_user.as_deref(),
                    self.settings.dls,
                );
                let page = match listed_page {
                    Ok(Listing::Page(page)) => {
                        self.budget.ok();
                        page
                    }
                    Ok(Listing::Gone) => {
                        tributary_sdk::info!(
                            "box: folder {} vanished while it was being listed",
                            frame.id
                        );
                        if self.mode == Mode::Incremental {
                            self.queue.push_back(Target {
                                id: frame.id.clone(),
                                kind: Kind::Folder,
                                viewers: vec![frame.as_user.clone()],
                            });
                        }
                        complete = false;
                        break;
                    }
                    // A token Box rejects (401 after a refresh) fails everything: no skipping.
                    Err(e @ tributary_sdk::Error::Auth(_)) => return Err(e),
                    Ok(Listing::Forbidden(e)) | Err(e) => {
                        let what = match (&frame.as_user, frame.id.as_str()) {
                            (Some(user), "0") => format!("box: the files of user {user}"),
                            (Some(user), id) => format!("box: folder {id} (as user {user})"),
                            (None, id) => format!("box: folder {id}"),
                        };
                        self.budget.skip(&what, e)?;
                        self.spare(&frame)?;
                        complete = false;
                        break;
                    }
                };
                for item in page.entries {
                    listed.insert(item.id.clone());
                    if let Some(child) = self.visit(item, &frame)? {
                        stack.push(child);
                    }
                }
                match page.next_marker {
                    Some(next) => marker = Some(next),
                    None => break,
                }
            }
            // "0" is every user's top: its links in the map mix several views.
            if self.mode == Mode::Incremental && complete && frame.id != "0" {
                self.reconcile(&frame, &listed)?;
            }
        }
        Ok(())
    }

    /// Indexes one listed entry; returns the frame to list when it is a folder.
    fn visit(&mut self, item: Item, frame: &Frame) -> Result<Option<Frame>> {
        let owner = item.owner();
        if let Some(owner) = &owner
            && self.crawled.contains(&owner.id)
            && frame.as_user.as_deref() != Some(owner.id.as_str())
        {
            return Ok(None); // the owner's own crawl indexes it
        }
        if self.mode == Mode::Full && self.seen.contains_key(&item.id) {
            return Ok(None); // reached from another tree already
        }
        let direct = self.direct_acl(&item, frame.as_user.as_deref())?;
        let is_folder = item.kind == Kind::Folder;
        let id = item.id.clone();
        let Some(direct) = direct else {
            self.withhold(&item, &frame.id, frame.as_user.clone())?;
            return Ok(is_folder.then(|| Frame {
                id,
                as_user: frame.as_user.clone(),
                inherited: frame.inherited.clone(),
            }));
        };
        let acl = self.settings.dls.then(|| {
            let own = owner.as_ref().map(dls::user_identities).unwrap_or_default();
            dls::merge(&[&frame.inherited, &own, &direct])
        });
        self.index(item, &frame.id, frame.as_user.clone(), acl, direct.clone())?;
        Ok(is_folder.then(|| Frame {
            id,
            as_user: frame.as_user.clone(),
            inherited: dls::merge(&[&frame.inherited, &direct]),
        }))
    }

    /// Identities of the item's own collaborations (document-level security only; Box says
    /// whether there are any, so items without collaborations cost no call); `None` when they
    /// cannot be listed, and the item must be withheld.
    pub fn direct_acl(
        &mut self,
        item: &Item,
        as_user: Option<&str>,
    ) -> Result<Option<Vec<String>>> {
        if !self.settings.dls || !item.has_collaborations() {
            return Ok(Some(Vec::new()));
        }
        Ok(self
            .api
            .collaborations(item.kind, &item.id, as_user)?
            .map(|collaborations| dls::collaborator_identities(&collaborations)))
    }

    /// Keeps an item out of the index because its access list is unknown: recorded in the map
    /// without a version (so a later pass indexes it, and subtree deletions still find it),
    /// deleted from the index (a full sync leaves that to the host), counted and reported.
    pub fn withhold(&mut self, item: &Item, parent: &str, as_user: Option<String>) -> Result<()> {
        self.stats.withheld += 1;
        if self.stats.withheld <= 20 {
            tributary_sdk::warn!(
                "box: {} {} ({}) withheld from the index: its collaborations cannot be listed",
                item.kind.as_str(),
                item.id,
                crate::docs::path(item)
            );
        }
        let node = Node {
            p: parent.to_string(),
            k: item.kind.as_str().to_string(),
            v: String::new(),
            u: as_user,
            s: (item.kind == Kind::Folder).then(|| structure_key(item)),
            a: Vec::new(),
        };
        if item.kind == Kind::Folder {
            self.acl_cache.insert(item.id.clone(), Vec::new());
        }
        match self.mode {
            Mode::Full => {
                self.seen.insert(item.id.clone(), parent.to_string());
                self.map.put_fresh(&item.id, &node);
                Ok(())
            }
            Mode::Incremental => {
                self.done.insert(item.id.clone());
                let stored = self.map.get(&item.id)?;
                self.map.put(&item.id, &node, stored.as_ref());
                self.out.delete(std::slice::from_ref(&item.id))
            }
        }
    }

    /// Identities inherited from the folders above an item (incremental: from the map).
    pub fn inherited_acl(&mut self, item: &Item) -> Result<Vec<String>> {
        if !self.settings.dls {
            return Ok(Vec::new());
        }
        let mut all = Vec::new();
        for (id, _) in item.ancestors() {
            if !self.acl_cache.contains_key(&id) {
                let direct = self.map.get(&id)?.map(|n| n.a).unwrap_or_default();
                self.acl_cache.insert(id.clone(), direct);
            }
            if let Some(direct) = self.acl_cache.get(&id) {
                all.extend(direct.iter().cloned());
            }
        }
        Ok(dls::merge(&[&all]))
    }

    /// Indexes an item under `parent` (unless an incremental sync finds it current) and records
    /// it in the map.
    pub fn index(
        &mut self,
        item: Item,
        parent: &str,
        as_user: Option<String>,
        acl: Option<Vec<String>>,
        direct: Vec<String>,
    ) -> Result<()> {
        let (doc, version) = build(&item, acl.as_deref());
        let node = Node {
            p: parent.to_string(),
            k: item.kind.as_str().to_string(),
            v: version,
            u: as_user.clone(),
            s: (item.kind == Kind::Folder).then(|| structure_key(&item)),
            a: direct,
        };
        if item.kind == Kind::Folder {
            self.acl_cache.insert(item.id.clone(), node.a.clone());
        }
        match self.mode {
            Mode::Full => {
                self.seen.insert(item.id.clone(), parent.to_string());
                self.map.put_fresh(&item.id, &node);
                self.emit(doc, &item, as_user)?;
            }
            Mode::Incremental => {
                self.done.insert(item.id.clone());
                let stored = self.map.get(&item.id)?;
                let current = stored.as_ref().is_some_and(|s| s.v == node.v);
                self.map.put(&item.id, &node, stored.as_ref());
                if current {
                    self.stats.unchanged += 1;
                } else {
                    self.emit(doc, &item, as_user)?;
                }
            }
        }
        // Bounded memory, and progress that survives a crash, on any size of listing.
        if self.out.since_checkpoint() >= CHECKPOINT_EVERY
            || self.out.pending_fetches() >= MAX_PENDING_FETCHES
            || self.map.buffered() >= 4 * CHECKPOINT_EVERY
        {
            self.checkpoint(Vec::new())?;
        }
        Ok(())
    }

    fn emit(&mut self, doc: Document, item: &Item, as_user: Option<String>) -> Result<()> {
        let doc = if wants_content(item, &self.settings) {
            let request = self.api.content_request(&item.id, as_user.as_deref())?;
            let fetch = Fetch::new(item.name(), item.size(), self.settings.content_limit())
                .retries(self.settings.retry_count);
            doc.fetch(&request, fetch)
        } else {
            doc
        };
        self.out.emit(doc)
    }

    /// A folder (or a user's whole view, for `"0"`) could not be listed: everything the map
    /// knows below it stays — in the map (pruning spares it) and in the index (the host's
    /// vanished-document deletion spares it) — until a later sync can list it again.
    fn spare(&mut self, frame: &Frame) -> Result<()> {
        let mut below = Vec::new();
        if frame.id == "0" {
            // Every view's top is "0": take only the tops of this view.
            for child in self.map.children("0")? {
                let Some(node) = self.map.get(&child)? else {
                    continue;
                };
                if node.p != "0" || node.u != frame.as_user {
                    continue;
                }
                below.extend(self.map.descendants(&child)?);
                below.push((child, node));
            }
        } else {
            below = self.map.descendants(&frame.id)?;
        }
        let ids: Vec<String> = below.iter().map(|(id, _)| id.clone()).collect();
        if self.mode == Mode::Full {
            for (id, node) in below {
                self.seen.entry(id).or_insert(node.p);
            }
        }
        self.out.keep(&ids)
    }

    /// Removes an item and everything the map knows below it, from the index and the map.
    pub fn remove_subtree(&mut self, id: &str) -> Result<()> {
        let mut ids = vec![id.to_string()];
        if let Some(node) = self.map.get(id)? {
            for (child, child_node) in self.map.descendants(id)? {
                self.map.remove(&child, &child_node);
                ids.push(child);
            }
            self.map.remove(id, &node);
        }
        for id in &ids {
            self.done.insert(id.clone());
        }
        self.out.delete(&ids)
    }

    /// After re-listing a folder: children the map had there but the listing did not show moved
    /// away or were removed; look at each again.
    fn reconcile(&mut self, frame: &Frame, listed: &HashSet<String>) -> Result<()> {
        for child in self.map.children(&frame.id)? {
            if listed.contains(&child) || self.done.contains(&child) {
                continue;
            }
            let Some(node) = self.map.get(&child)? else {
                continue;
            };
            if node.p != frame.id {
                continue;
            }
            self.queue.push_back(Target {
                id: child,
                kind: node.kind(),
                viewers: vec![frame.as_user.clone()],
            });
        }
        Ok(())
    }

    /// Waits for the host to commit everything emitted so far, then stores the map's buffered
    /// writes and `extra` atomically. Downloads refused with 401 (the access token expired while
    /// they waited) are re-sent with a fresh token by the outbox; other failures are logged and
    /// left for the next sync (their version is cleared).
    pub fn checkpoint(&mut self, extra: Vec<StateEntry>) -> Result<()> {
        let mut entries = self.map.take_writes();
        entries.extend(extra);
        loop {
            for failure in self.out.checkpoint_with(&mut self.api, entries)? {
                tributary_sdk::warn!(
                    "box: content of {} not indexed: {}",
                    failure.id,
                    failure.message
                );
                self.map.mark_stale(&failure.id)?;
            }
            if !self.map.has_writes() {
                return Ok(());
            }
            entries = self.map.take_writes();
        }
    }

    /// Map deletions for everything a completed full listing did not see.
    pub fn prune(&self) -> Result<Vec<StateEntry>> {
        self.map.prune(&self.seen)
    }
}

impl Sync {
    /// What the stored state belongs to: the configuration's [`Settings::scope`] plus, for a
    /// free account, the signed-in user — a refresh token of another Box user (same client id)
    /// reads another user's tree and event stream, so the old positions mean nothing.
    pub fn scope(&mut self) -> Result<String> {
        let mut scope = self.settings.scope();
        if !self.settings.enterprise() {
            scope.push_str(&format!("|user={}", self.api.me()?.id));
        }
        Ok(scope)
    }

    /// Turns an incremental run into a full listing (no positions to read events from).
    pub fn into_full(mut self) -> Sync {
        self.mode = Mode::Full;
        self
    }
}

/// Encodes a state value for a checkpoint.
pub fn entry<T: serde::Serialize>(key: &str, value: &T) -> Result<StateEntry> {
    Ok((key.to_string(), Some(state::encode(value)?)))
}

/// A full listing. `prune` is off when an incremental job falls back to listing everything (the
/// host deletes vanished documents only after full jobs, so the map keeps them too).
pub fn full(settings: Settings, prune: bool) -> Result<()> {
    let mut sync = Sync::new(settings, Mode::Full);
    sync.api.authenticate()?;
    let scope = sync.scope()?;
    listing(sync, scope, prune)
}

/// The full listing of a signed-in [`Sync`] in full mode; stores `scope` with the positions.
pub fn listing(mut sync: Sync, scope: String, prune: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let views = sync.views()?;
    // Positions before the listing: whatever changes while it runs is replayed next time.
    let mut positions = BTreeMap::new();
    let mut positions_at: BTreeMap<String, i64> = BTreeMap::new();
    let mut unknown = 0usize;
    for view in &views {
        match sync.api.stream_now(view.as_deref()) {
            Ok(position) => {
                let key = view.clone().unwrap_or_else(|| ME.into());
                positions_at.insert(key.clone(), unix_now());
                positions.insert(key, position);
            }
            // A cancelled job or a host limit stops the sync.
            Err(e @ tributary_sdk::Error::Host(_)) => return Err(e),
            Err(e) => {
                unknown += 1;
                if unknown == 1 {
                    tributary_sdk::warn!(
                        "box: the event stream position could not be read ({}); the full sync \
                         goes on, and the next incremental sync lists everything instead of \
                         reading events",
                        e.describe()
                    );
                }
            }
        }
    }
    for view in views {
        sync.walk(Frame::root(view))?;
    }
    let mut extra = if prune { sync.prune()? } else { Vec::new() };
    if unknown == 0 {
        extra.push(entry(POSITIONS_KEY, &positions)?);
        extra.push(entry(POSITIONS_AT_KEY, &positions_at)?);
    } else {
        extra.push((POSITIONS_KEY.to_string(), None));
        extra.push((POSITIONS_AT_KEY.to_string(), None));
    }
    extra.push(entry(SCOPE_KEY, &scope)?);
    sync.checkpoint(extra)?;
    let s = &sync.stats;
    s.report_withheld();
    if let Some(summary) = sync.budget.summary() {
        tributary_sdk::warn!("{summary}");
    }
    tributary_sdk::info!(
        "box: full listing in {:?}: {} folder(s) listed, {} document(s) emitted, {} download(s) \
         re-sent",
        started.elapsed(),
        s.folders,
        sync.out.emitted(),
        sync.out.refetched()
    );
    Ok(())
}
