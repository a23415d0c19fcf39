//! The fake's in-memory world: users, groups, items, collaborations, tokens and event streams,
//! plus the access rules that decide what each user sees.
//!
//! Ids are Box-style numeric strings. Every user has a private root folder that is `"0"` from that
//! user's point of view; internally roots live above [`ROOT_BASE`] so one map holds every node.
//! A user sees what they own plus everything under an item collaborated with them (directly or
//! through a group); collaborated items that are not already inside another visible item appear
//! at the top of the collaborator's "All Files", exactly like Box's web app shows them.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::content::Content;
use super::util::{CLOCK_START, Rng, mix64, rfc3339};

/// Internal ids at or above this are per-user root folders (external id `"0"`).
pub(crate) const ROOT_BASE: u64 = u64::MAX - 4096;
/// Parent of a root folder.
pub(crate) const NO_PARENT: u64 = u64::MAX;

/// File or folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Folder,
    File,
}

/// Sort key of a folder's child: folders before files, then case-insensitive name, then id
/// (Box lists "type ASC, name ASC" by default).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ChildKey {
    pub(crate) rank: u8,
    pub(crate) lname: String,
    pub(crate) id: u64,
}

/// One file or folder (or a user's root).
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) parent: u64,
    pub(crate) owner: u32,
    pub(crate) created_by: u32,
    pub(crate) modified_by: u32,
    pub(crate) created_at: i64,
    pub(crate) modified_at: i64,
    pub(crate) content_created_at: i64,
    pub(crate) content_modified_at: i64,
    /// `Some` when this item itself was moved to the trash (descendants inherit the status).
    pub(crate) trashed_at: Option<i64>,
    /// Box's `sequence_id` / `etag`: bumped by every change to the item.
    pub(crate) sequence: u64,
    pub(crate) description: String,
    /// Files: the body size. Folders: the sum of their non-trashed children, like Box.
    pub(crate) size: u64,
    /// Content version (1 for the first upload).
    pub(crate) version: u32,
    pub(crate) version_id: u64,
    pub(crate) content: Content,
    pub(crate) children: BTreeSet<ChildKey>,
}

impl Node {
    pub(crate) fn key(&self) -> ChildKey {
        ChildKey {
            rank: match self.kind {
                Kind::Folder => 0,
                Kind::File => 1,
            },
            lname: self.name.to_lowercase(),
            id: self.id,
        }
    }
}

/// Managed user or the application's service account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserKind {
    Managed,
    ServiceAccount,
}

#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) login: String,
    pub(crate) kind: UserKind,
    pub(crate) job_title: String,
    pub(crate) created_at: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) members: Vec<u32>,
    pub(crate) created_at: i64,
}

/// Who a collaboration grants access to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accessor {
    User(u32),
    Group(u32),
}

#[derive(Clone, Debug)]
pub(crate) struct Collab {
    pub(crate) id: u64,
    pub(crate) item: u64,
    pub(crate) accessor: Accessor,
    pub(crate) role: String,
    pub(crate) created_by: u32,
    pub(crate) created_at: i64,
}

/// What an access token stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenGrant {
    /// The user the token authenticates (the service account for enterprise tokens).
    pub(crate) user: u32,
    /// Issued by `client_credentials` for the enterprise: may use `As-User` and admin endpoints.
    pub(crate) enterprise: bool,
}

/// How many token requests the server answered, for assertions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantCounts {
    /// Successful `grant_type=refresh_token` exchanges.
    pub refresh_token: usize,
    /// Successful `grant_type=client_credentials` exchanges.
    pub client_credentials: usize,
    /// Successful `grant_type=authorization_code` exchanges.
    pub authorization_code: usize,
    /// Token requests answered with an OAuth error.
    pub rejected: usize,
}

/// One delivered entry of a user's event stream.
#[derive(Clone, Debug)]
pub(crate) struct StoredEvent {
    pub(crate) position: u64,
    /// Whether the event also belongs to the `changes` stream (downloads do not).
    pub(crate) changes: bool,
    pub(crate) json: Arc<Value>,
}

/// How a user sees one item.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    /// The item shown directly under the user's "All Files": the user's own root when they own
    /// the item, otherwise the highest collaborated ancestor.
    pub(crate) top: u64,
    /// The item or one of its ancestors is in the trash.
    pub(crate) trashed: bool,
}

/// First stream position handed out; Box positions are large opaque integers (kept < 2^53).
const FIRST_POSITION: u64 = 1_152_921_504_606;

/// The whole fake world. Lives behind one mutex in the server.
pub(crate) struct State {
    pub(crate) enterprise_id: String,
    pub(crate) enterprise_name: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// Index 0 is the primary user (owner of the refresh token); the service account is last.
    pub(crate) users: Vec<User>,
    pub(crate) groups: Vec<Group>,
    pub(crate) nodes: HashMap<u64, Node>,
    pub(crate) collabs: Vec<Collab>,
    next_id: u64,
    id_rng: Rng,
    pub(crate) next_collab_id: u64,
    pub(crate) next_version_id: u64,
    /// The fake clock (Unix seconds); advances one minute per mutation.
    pub(crate) clock: i64,
    pub(crate) refresh_token: Option<String>,
    /// The authorization code `grant_type=authorization_code` accepts (once per consent).
    pub(crate) auth_code: String,
    /// The user the refresh token acts as (the primary user unless re-authorized as another).
    pub(crate) refresh_user: u32,
    pub(crate) access_tokens: HashMap<String, TokenGrant>,
    pub(crate) grants: GrantCounts,
    token_counter: u64,
    token_salt: u64,
    /// Per-user event streams, indexed like `users`.
    pub(crate) streams: Vec<Vec<StoredEvent>>,
    pub(crate) pending_duplicates: Vec<Option<StoredEvent>>,
    /// The last stream position handed out.
    pub(crate) position: u64,
    pub(crate) event_counter: u64,
    pub(crate) duplicate_events: bool,
    pub(crate) download_events: bool,
    sha1_cache: RefCell<HashMap<(u64, u32), String>>,
}

impl State {
    /// A world with these users (primary first, service account last) and no items.
    pub(crate) fn new(seed: u64, users: Vec<User>, groups: Vec<Group>) -> Self {
        let salt = mix64(
            seed ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        );
        let mut state = State {
            enterprise_id: "500100".into(),
            enterprise_name: "Tributary Test Enterprise".into(),
            client_id: "tbfakeboxclient0000000000000001a".into(),
            client_secret: "tbFakeBoxSecret00000000000000001".into(),
            streams: vec![Vec::new(); users.len()],
            pending_duplicates: vec![None; users.len()],
            users,
            groups,
            nodes: HashMap::new(),
            collabs: Vec::new(),
            next_id: 1_203_000_000_000 + (seed % 1_000) * 1_000_000,
            id_rng: Rng::new(seed ^ 0x1D5),
            next_collab_id: 48_000_000_000 + seed % 1_000,
            next_version_id: 900_000_000_000,
            clock: CLOCK_START,
            refresh_token: None,
            auth_code: "fake-box-auth-code".into(),
            refresh_user: 0,
            access_tokens: HashMap::new(),
            grants: GrantCounts::default(),
            token_counter: 0,
            token_salt: salt,
            position: FIRST_POSITION,
            event_counter: 0,
            duplicate_events: false,
            download_events: true,
            sha1_cache: RefCell::new(HashMap::new()),
        };
        for index in 0..state.users.len() {
            let root = Self::root_of(index as u32);
            state.nodes.insert(
                root,
                Node {
                    id: root,
                    kind: Kind::Folder,
                    name: "All Files".into(),
                    parent: NO_PARENT,
                    owner: index as u32,
                    created_by: index as u32,
                    modified_by: index as u32,
                    created_at: CLOCK_START,
                    modified_at: CLOCK_START,
                    content_created_at: CLOCK_START,
                    content_modified_at: CLOCK_START,
                    trashed_at: None,
                    sequence: 0,
                    description: String::new(),
                    size: 0,
                    version: 0,
                    version_id: 0,
                    content: Content::None,
                    children: BTreeSet::new(),
                },
            );
        }
        state.refresh_token = Some(state.new_token("r"));
        state
    }

    pub(crate) fn root_of(user: u32) -> u64 {
        ROOT_BASE + u64::from(user)
    }

    pub(crate) fn is_root(id: u64) -> bool {
        (ROOT_BASE..NO_PARENT).contains(&id)
    }

    /// The id a client sees.
    pub(crate) fn external_id(id: u64) -> String {
        if Self::is_root(id) {
            "0".into()
        } else {
            id.to_string()
        }
    }

    /// Resolves a client-supplied id to a node that exists (`"0"` is the viewer's root).
    pub(crate) fn resolve(&self, viewer: u32, external: &str) -> Option<u64> {
        if external == "0" {
            return Some(Self::root_of(viewer));
        }
        // Box ids are plain decimal; reject signs, spaces and leading zeros.
        if external.is_empty()
            || external.starts_with('0')
            || !external.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let id: u64 = external.parse().ok()?;
        (id < ROOT_BASE && self.nodes.contains_key(&id)).then_some(id)
    }

    pub(crate) fn primary(&self) -> u32 {
        0
    }

    pub(crate) fn service_account(&self) -> u32 {
        self.users.len().saturating_sub(1) as u32
    }

    pub(crate) fn user_index(&self, id: &str) -> Option<u32> {
        self.users.iter().position(|u| u.id == id).map(|i| i as u32)
    }

    pub(crate) fn group_index(&self, id: &str) -> Option<u32> {
        self.groups
            .iter()
            .position(|g| g.id == id)
            .map(|i| i as u32)
    }

    pub(crate) fn managed_users(&self) -> impl Iterator<Item = u32> + '_ {
        self.users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.kind == UserKind::Managed)
            .map(|(i, _)| i as u32)
    }

    /// A fresh 32-character token; unpredictable across runs so tokens never leak between fakes.
    pub(crate) fn new_token(&mut self, prefix: &str) -> String {
        self.token_counter += 1;
        let a = mix64(self.token_salt ^ self.token_counter);
        let b = mix64(a ^ self.token_salt.rotate_left(17));
        let mut token = format!("{prefix}{a:016x}{b:016x}");
        token.truncate(32);
        token
    }

    /// A fresh Box-style item id (increasing, with gaps so nobody relies on contiguity).
    pub(crate) fn alloc_id(&mut self) -> u64 {
        self.next_id += 1 + self.id_rng.below(7);
        self.next_id
    }

    pub(crate) fn alloc_version_id(&mut self) -> u64 {
        self.next_version_id += 1 + self.id_rng.below(3);
        self.next_version_id
    }

    /// Advances the fake clock by a minute and returns the new time.
    pub(crate) fn tick(&mut self) -> i64 {
        self.clock += 60;
        self.clock
    }

    /// Whether `parent` already holds an item called `name` (case-insensitive, files and folders
    /// share one namespace), ignoring `except`.
    pub(crate) fn name_taken(&self, parent: u64, name: &str, except: Option<u64>) -> bool {
        let Some(folder) = self.nodes.get(&parent) else {
            return false;
        };
        let lname = name.to_lowercase();
        (0..=1u8).any(|rank| {
            let from = ChildKey {
                rank,
                lname: lname.clone(),
                id: 0,
            };
            let to = ChildKey {
                rank,
                lname: lname.clone(),
                id: u64::MAX,
            };
            folder
                .children
                .range(from..=to)
                .any(|k| Some(k.id) != except)
        })
    }

    /// Inserts a node under `parent` and keeps folder sizes right. No checks, no events.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert_node(
        &mut self,
        parent: u64,
        actor: u32,
        name: String,
        kind: Kind,
        content: Content,
        created_at: i64,
        modified_at: i64,
    ) -> u64 {
        let id = self.alloc_id();
        let owner = self.nodes.get(&parent).map(|p| p.owner).unwrap_or(actor);
        let (version, version_id) = match kind {
            Kind::File => (1, self.alloc_version_id()),
            Kind::Folder => (0, 0),
        };
        let size = content.size();
        let node = Node {
            id,
            kind,
            name,
            parent,
            owner,
            created_by: actor,
            modified_by: actor,
            created_at,
            modified_at,
            content_created_at: created_at,
            content_modified_at: modified_at,
            trashed_at: None,
            sequence: 0,
            description: String::new(),
            size,
            version,
            version_id,
            content,
            children: BTreeSet::new(),
        };
        let key = node.key();
        self.nodes.insert(id, node);
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(key);
        }
        self.adjust_sizes(parent, size as i64);
        id
    }

    /// Adds `delta` to `folder` and its ancestors. Stops after a trashed folder: its own parent
    /// already excludes it from its size.
    pub(crate) fn adjust_sizes(&mut self, folder: u64, delta: i64) {
        if delta == 0 {
            return;
        }
        let mut current = folder;
        while let Some(node) = self.nodes.get_mut(&current) {
            node.size = node.size.saturating_add_signed(delta);
            if node.trashed_at.is_some() {
                break;
            }
            current = node.parent;
        }
    }

    /// Whether `collab` gives `viewer` access.
    pub(crate) fn grants(&self, collab: &Collab, viewer: u32) -> bool {
        match collab.accessor {
            Accessor::User(user) => user == viewer,
            Accessor::Group(group) => self
                .groups
                .get(group as usize)
                .is_some_and(|g| g.members.contains(&viewer)),
        }
    }

    /// How `viewer` sees `id`, or `None` when they have no access.
    pub(crate) fn view(&self, viewer: u32, id: u64) -> Option<View> {
        let node = self.nodes.get(&id)?;
        if Self::is_root(id) {
            return (id == Self::root_of(viewer)).then_some(View {
                top: id,
                trashed: false,
            });
        }
        let mut trashed = false;
        let mut top = None;
        let mut current = id;
        while let Some(n) = self.nodes.get(&current) {
            if Self::is_root(current) {
                break;
            }
            trashed |= n.trashed_at.is_some();
            if self
                .collabs
                .iter()
                .any(|c| c.item == current && self.grants(c, viewer))
            {
                top = Some(current);
            }
            current = n.parent;
        }
        if node.owner == viewer {
            Some(View {
                top: Self::root_of(viewer),
                trashed,
            })
        } else {
            top.map(|top| View { top, trashed })
        }
    }

    /// Every user (service account included) who can see `id`.
    pub(crate) fn viewers(&self, id: u64) -> Vec<u32> {
        (0..self.users.len() as u32)
            .filter(|&u| self.view(u, id).is_some())
            .collect()
    }

    /// Folders between the viewer's "All Files" and `id`, top first (excluding `id`).
    pub(crate) fn path_ids(&self, view: View, id: u64) -> Vec<u64> {
        let mut path = Vec::new();
        if id == view.top {
            return path;
        }
        let mut current = self.nodes.get(&id).map(|n| n.parent).unwrap_or(NO_PARENT);
        while let Some(node) = self.nodes.get(&current) {
            if Self::is_root(current) {
                break;
            }
            path.push(current);
            if current == view.top {
                break;
            }
            current = node.parent;
        }
        path.reverse();
        path
    }

    /// The parent as the viewer sees it (their root for top-level items).
    pub(crate) fn visible_parent(&self, viewer: u32, view: View, id: u64) -> u64 {
        if id == view.top || Self::is_root(id) {
            return Self::root_of(viewer);
        }
        self.nodes
            .get(&id)
            .map(|n| {
                if Self::is_root(n.parent) {
                    Self::root_of(viewer)
                } else {
                    n.parent
                }
            })
            .unwrap_or_else(|| Self::root_of(viewer))
    }

    /// The non-trashed children of `folder` as `viewer` sees them, in Box's default order.
    pub(crate) fn visible_children(&self, viewer: u32, folder: u64) -> Vec<ChildKey> {
        let Some(node) = self.nodes.get(&folder) else {
            return Vec::new();
        };
        let mut keys: Vec<ChildKey> = node
            .children
            .iter()
            .filter(|k| {
                self.nodes
                    .get(&k.id)
                    .is_some_and(|child| child.trashed_at.is_none())
            })
            .cloned()
            .collect();
        if folder == Self::root_of(viewer) {
            // Items shared with the viewer show up at the top of their "All Files".
            let mut shared: Vec<ChildKey> = Vec::new();
            for collab in &self.collabs {
                if !self.grants(collab, viewer) || shared.iter().any(|k| k.id == collab.item) {
                    continue;
                }
                let Some(item) = self.nodes.get(&collab.item) else {
                    continue;
                };
                if item.owner == viewer {
                    continue;
                }
                if let Some(view) = self.view(viewer, collab.item)
                    && view.top == collab.item
                    && !view.trashed
                {
                    shared.push(item.key());
                }
            }
            keys.extend(shared);
            keys.sort();
        }
        keys
    }

    /// The real SHA-1 of a file version, computed once. Big lazily-generated files get a
    /// deterministic stand-in digest so listings never hash hundreds of megabytes.
    pub(crate) fn sha1(&self, node: &Node) -> String {
        if let Content::Big { seed, size } = node.content {
            let a = mix64(seed ^ size);
            let b = mix64(a);
            let c = mix64(b) as u32;
            return format!("{a:016x}{b:016x}{c:08x}");
        }
        let key = (node.id, node.version);
        if let Some(hit) = self.sha1_cache.borrow().get(&key) {
            return hit.clone();
        }
        let digest = node.content.sha1();
        self.sha1_cache.borrow_mut().insert(key, digest.clone());
        digest
    }

    pub(crate) fn now(&self) -> String {
        rfc3339(self.clock)
    }
}
