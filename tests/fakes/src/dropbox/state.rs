//! The in-memory Dropbox behind the fake: one global tree, a change log, accounts and sharing.
//!
//! Every namespace (the team space root, each member's home folder, team folders, shared
//! folders) is a folder mounted somewhere in one global tree whose root is the team space root,
//! exactly like Dropbox's team-space layout. A request's *view* (chosen by the acting member and
//! the `Dropbox-API-Path-Root` header) is a subtree of that tree; paths in requests and responses
//! are relative to the view's root. Keys of the tree are global lower-case paths (`/alex doe/x`),
//! so a subtree is a contiguous key range of the `BTreeMap`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::{Value, json};

use super::content::{self, Flavor, base62, mix};

/// The team space root namespace (`root_namespace_id` of every member).
pub(crate) const TEAM_ROOT_NS: &str = "1000000001";

/// Name of the team in `get_current_account` and `team/get_info`.
pub(crate) const TEAM_NAME: &str = "Acme Corp";
pub(crate) const TEAM_ID: &str = "dbtid:AAC2hZfO2cQpvbTk4WXQ5DMmAkvsUgOxm1A";

/// Files above this size are generated lazily and never hashed ahead of a download.
pub(crate) const LAZY_LIMIT: u64 = 10 * 1024 * 1024;

/// What a member may do with a shared item (Dropbox's `AccessLevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// `traverse`: may only see the folder's path.
    Traverse,
    /// `viewer_no_comment`.
    ViewerNoComment,
    /// `viewer`.
    Viewer,
    /// `editor`.
    Editor,
    /// `owner`.
    Owner,
}

impl Access {
    /// The `.tag` Dropbox uses for this level.
    pub fn tag(self) -> &'static str {
        match self {
            Access::Traverse => "traverse",
            Access::ViewerNoComment => "viewer_no_comment",
            Access::Viewer => "viewer",
            Access::Editor => "editor",
            Access::Owner => "owner",
        }
    }
}

/// Who a share is granted to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A Dropbox account (`dbid:…`), on the team or external.
    Account(String),
    /// An e-mail address: an existing account with that address, or else a pending invitee.
    Email(String),
    /// A team group (`g:…`).
    Group(String),
}

/// One grant on a shared folder or file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Who.
    pub principal: Principal,
    /// With which access level.
    pub access: Access,
}

impl Member {
    /// A grant to an account id.
    pub fn account(account_id: &str, access: Access) -> Self {
        Member {
            principal: Principal::Account(account_id.to_string()),
            access,
        }
    }

    /// A grant to an e-mail address (an invitee unless an account has that address).
    pub fn email(email: &str, access: Access) -> Self {
        Member {
            principal: Principal::Email(email.to_string()),
            access,
        }
    }

    /// A grant to a group id.
    pub fn group(group_id: &str, access: Access) -> Self {
        Member {
            principal: Principal::Group(group_id.to_string()),
            access,
        }
    }
}

/// A Dropbox account: a team member (with `team_member_id`) or an external account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// `dbid:…`.
    pub account_id: String,
    /// `dbmid:…` for team members.
    pub team_member_id: Option<String>,
    /// E-mail address.
    pub email: String,
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// `name.display_name`.
    pub display_name: String,
    /// Team admin (the owner of the team-linked refresh token).
    pub is_admin: bool,
    /// `active`, `invited`, `suspended` or `removed`.
    pub status: String,
    /// RFC 3339 `joined_on`.
    pub joined_on: String,
    /// The member's home namespace (team members only).
    pub home_namespace_id: Option<String>,
    /// Company name shown for external sharers.
    pub company: Option<String>,
}

/// A team group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// `g:…`.
    pub group_id: String,
    /// Display name.
    pub name: String,
    /// Account ids of its members.
    pub members: Vec<String>,
}

/// A file shared with the acting user by someone else (`sharing/list_received_files`).
#[derive(Clone, Debug)]
pub struct ReceivedFile {
    /// `id:…`.
    pub id: String,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The shared link (`preview_url`), resolvable with `sharing/get_shared_link_metadata`.
    pub preview_url: String,
    /// RFC 3339.
    pub server_modified: String,
    /// RFC 3339.
    pub client_modified: String,
    /// RFC 3339 `time_invited`.
    pub time_invited: String,
    /// Revision.
    pub rev: String,
    /// Account id of the sharer.
    pub owner_account_id: String,
    /// Access granted to the acting user.
    pub access: Access,
    pub(crate) body: Body,
    pub(crate) link_token: String,
}

/// A file or folder as a plain client sees it; see `FakeDropbox::entries`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `id:…`.
    pub id: String,
    /// Last path component.
    pub name: String,
    /// Path relative to the view root (the member's home for `entries()`).
    pub path_display: String,
    /// Lower-case `path_display`.
    pub path_lower: String,
    /// Folder or file.
    pub is_folder: bool,
    /// Bytes (0 for folders).
    pub size: u64,
    /// RFC 3339, files only.
    pub server_modified: Option<String>,
    /// RFC 3339, files only.
    pub client_modified: Option<String>,
    /// Revision, files only.
    pub rev: Option<String>,
    /// A Dropbox Paper document (`.paper`, exported rather than downloaded).
    pub is_paper: bool,
    /// Whether `files/download` works (false for Paper).
    pub is_downloadable: bool,
    /// Folders that are shared folders or team folders.
    pub shared_folder_id: Option<String>,
    /// The closest enclosing shared folder or team folder.
    pub parent_shared_folder_id: Option<String>,
    /// `content_hash` when the fake reports one (bodies it stores; not lazily generated ones).
    pub content_hash: Option<String>,
}

/// Where a file's bytes come from.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Bytes(Arc<Vec<u8>>),
    /// Derived on demand from the seed; the size lives in the node.
    Generated {
        seed: u64,
        flavor: Flavor,
    },
}

impl Body {
    pub(crate) fn materialise(&self, size: u64, name: &str) -> Arc<Vec<u8>> {
        match self {
            Body::Bytes(b) => b.clone(),
            Body::Generated { seed, flavor } => {
                Arc::new(content::generate(*flavor, *seed, size, name))
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FileNode {
    pub size: u64,
    pub rev: String,
    pub server_modified: i64,
    pub client_modified: i64,
    pub body: Body,
    pub hash: Option<String>,
    pub modified_by: String,
}

#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    /// `ns` is set when a namespace is mounted here (home, team folder, shared folder).
    Folder {
        ns: Option<String>,
    },
    File(FileNode),
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub id: String,
    pub name: String,
    /// Global display path.
    pub display: String,
    pub kind: NodeKind,
}

impl Node {
    pub(crate) fn is_paper(&self) -> bool {
        matches!(self.kind, NodeKind::File(_)) && content::extension(&self.name) == "paper"
    }

    pub(crate) fn file(&self) -> Option<&FileNode> {
        match &self.kind {
            NodeKind::File(f) => Some(f),
            NodeKind::Folder { .. } => None,
        }
    }

    pub(crate) fn mount(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Folder { ns } => ns.as_deref(),
            NodeKind::File(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NsKind {
    TeamRoot,
    Home(usize),
    TeamFolder,
    Shared,
}

#[derive(Clone, Debug)]
pub(crate) struct Namespace {
    pub kind: NsKind,
    /// Global lower-case path of the mount folder ("" for the team root).
    pub mount: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub(crate) enum ChangeKind {
    Upsert,
    Deleted { display: String, name: String },
}

#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// A request's window on the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    /// Index of the acting account.
    pub member: usize,
    /// Global lower-case path of the root ("" for the team space root).
    pub root: String,
    pub root_display: String,
    pub team_root: bool,
}

/// Why a path could not be resolved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Does not match Dropbox's path pattern: a 400.
    Malformed(String),
    /// `path/not_found`.
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    User,
    Team,
}

/// Everything the fake knows. Guarded by one mutex in `Shared`.
pub(crate) struct State {
    pub nodes: BTreeMap<String, Node>,
    pub by_id: HashMap<String, String>,
    pub log: Vec<Change>,
    pub last_change: HashMap<String, usize>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub accounts: Vec<Account>,
    pub groups: Vec<Group>,
    pub folder_members: HashMap<String, Vec<Member>>,
    pub file_members: HashMap<String, Vec<Member>>,
    pub received: Vec<ReceivedFile>,
    pub tokens: HashMap<String, TokenKind>,
    pub expired: HashMap<String, TokenKind>,
    pub grants: usize,
    pub refresh_valid: bool,
    pub clock: i64,
    pub next_id: u64,
    pub next_rev: u64,
    pub next_ns: u64,
    /// Bumped by `reset_cursors`; cursors from an older epoch get `reset`.
    pub epoch: u64,
    /// Random per server, so a cursor from another fake instance is refused.
    pub salt: String,
}

/// Parent of a global key ("" for top level).
pub(crate) fn parent_key(key: &str) -> &str {
    key.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// All keys strictly below `key` start with this.
pub(crate) fn child_prefix(key: &str) -> String {
    format!("{key}/")
}

impl State {
    pub(crate) fn new(salt: String, clock: i64) -> Self {
        State {
            nodes: BTreeMap::new(),
            by_id: HashMap::new(),
            log: Vec::new(),
            last_change: HashMap::new(),
            namespaces: BTreeMap::new(),
            accounts: Vec::new(),
            groups: Vec::new(),
            folder_members: HashMap::new(),
            file_members: HashMap::new(),
            received: Vec::new(),
            tokens: HashMap::new(),
            expired: HashMap::new(),
            grants: 0,
            refresh_valid: true,
            clock,
            next_id: 0,
            next_rev: 0,
            next_ns: 200,
            epoch: 0,
            salt,
        }
    }

    // ----- identifiers and time ------------------------------------------------------------

    pub(crate) fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("id:{}", base62(mix(self.next_id, 0x1D), 22))
    }

    pub(crate) fn new_rev(&mut self) -> String {
        self.next_rev += 1;
        format!("{:015x}", 0x05f3_a100_0000_u64 + self.next_rev)
    }

    pub(crate) fn new_ns(&mut self) -> String {
        self.next_ns += 1;
        format!("{}", 1_000_000_000 + self.next_ns)
    }

    /// Advances the fake clock by a minute and returns it: each mutation gets a later stamp.
    pub(crate) fn tick(&mut self) -> i64 {
        self.clock += 60;
        self.clock
    }

    // ----- accounts and access -------------------------------------------------------------

    pub(crate) fn account_index(&self, account_id: &str) -> Option<usize> {
        self.accounts
            .iter()
            .position(|a| a.account_id == account_id)
    }

    pub(crate) fn member_by_team_id(&self, team_member_id: &str) -> Option<usize> {
        self.accounts
            .iter()
            .position(|a| a.team_member_id.as_deref() == Some(team_member_id))
    }

    pub(crate) fn admin_index(&self) -> usize {
        self.accounts.iter().position(|a| a.is_admin).unwrap_or(0)
    }

    pub(crate) fn groups_of(&self, account_id: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == account_id))
            .map(|g| g.group_id.clone())
            .collect()
    }

    fn grants_member(&self, grant: &Member, member: usize) -> bool {
        let Some(account) = self.accounts.get(member) else {
            return false;
        };
        match &grant.principal {
            Principal::Account(id) => *id == account.account_id,
            Principal::Email(email) => email.eq_ignore_ascii_case(&account.email),
            Principal::Group(gid) => self
                .groups
                .iter()
                .any(|g| g.group_id == *gid && g.members.contains(&account.account_id)),
        }
    }

    /// The best access `member` has to shared/team folder `ns` through its member list.
    pub(crate) fn folder_access(&self, member: usize, ns: &str) -> Option<Access> {
        self.folder_members
            .get(ns)?
            .iter()
            .filter(|m| self.grants_member(m, member))
            .map(|m| m.access)
            .max()
    }

    pub(crate) fn can_access_ns(&self, member: usize, ns: &str) -> bool {
        let Some(info) = self.namespaces.get(ns) else {
            return false;
        };
        let is_admin = self.accounts.get(member).is_some_and(|a| a.is_admin);
        match info.kind {
            NsKind::TeamRoot => true,
            NsKind::Home(owner) => owner == member,
            NsKind::TeamFolder => is_admin || self.folder_access(member, ns).is_some(),
            NsKind::Shared => self.folder_access(member, ns).is_some(),
        }
    }

    /// Whether `member` can reach `key` through any namespace on its ancestor chain.
    pub(crate) fn accessible(&self, member: usize, key: &str) -> bool {
        let mut saw_mount = false;
        let mut end = 0;
        while end < key.len() {
            end = key[end + 1..]
                .find('/')
                .map(|i| i + end + 1)
                .unwrap_or(key.len());
            if let Some(ns) = self.nodes.get(&key[..end]).and_then(Node::mount) {
                saw_mount = true;
                if self.can_access_ns(member, ns) {
                    return true;
                }
            }
        }
        !saw_mount
    }

    /// Whether `key` shows up in `view` (strictly below its root, and reachable).
    pub(crate) fn visible(&self, view: &View, key: &str) -> bool {
        if view.team_root {
            if !key.starts_with('/') {
                return false;
            }
            let top_end = key[1..].find('/').map(|i| i + 1).unwrap_or(key.len());
            match self.nodes.get(&key[..top_end]).and_then(Node::mount) {
                Some(ns) => self.can_access_ns(view.member, ns),
                None => true,
            }
        } else {
            key.len() > view.root.len()
                && key.starts_with(&view.root)
                && key.as_bytes().get(view.root.len()) == Some(&b'/')
        }
    }

    /// `(path_lower, path_display)` relative to the view, when visible there.
    pub(crate) fn rel(&self, view: &View, key: &str, display: &str) -> Option<(String, String)> {
        if !self.visible(view, key) {
            return None;
        }
        let lower = key.get(view.root.len()..)?.to_string();
        let display = display.get(view.root_display.len()..)?.to_string();
        Some((lower, display))
    }

    /// The view of `member`'s home folder (no `Dropbox-API-Path-Root`, or `{".tag": "home"}`).
    pub(crate) fn home_view(&self, member: usize) -> Option<View> {
        let ns = self.accounts.get(member)?.home_namespace_id.as_deref()?;
        self.namespace_view(member, ns)
    }

    /// The view rooted at namespace `ns` (no access check).
    pub(crate) fn namespace_view(&self, member: usize, ns: &str) -> Option<View> {
        let info = self.namespaces.get(ns)?;
        if info.kind == NsKind::TeamRoot {
            return Some(View {
                member,
                root: String::new(),
                root_display: String::new(),
                team_root: true,
            });
        }
        let node = self.nodes.get(&info.mount)?;
        Some(View {
            member,
            root: info.mount.clone(),
            root_display: node.display.clone(),
            team_root: false,
        })
    }

    // ----- path resolution -----------------------------------------------------------------

    /// Resolves a request path (`""`, `/a/b`, `id:…[/rest]`, `ns:…[/rest]`) to a global key.
    /// The key may not exist; "" (or the view root) means the view's root folder.
    pub(crate) fn resolve(&self, view: &View, path: &str) -> Result<String, Lookup> {
        if path.is_empty() {
            return Ok(view.root.clone());
        }
        let (base, rest) = if path.starts_with('/') {
            (view.root.clone(), path)
        } else if let Some(id_path) = path.strip_prefix("id:") {
            let (id, rest) = match id_path.find('/') {
                Some(i) => (&id_path[..i], &id_path[i..]),
                None => (id_path, ""),
            };
            let key = self
                .by_id
                .get(&format!("id:{id}"))
                .ok_or(Lookup::NotFound)?;
            if !self.accessible(view.member, key) {
                return Err(Lookup::NotFound);
            }
            (key.clone(), rest)
        } else if let Some(ns_path) = path.strip_prefix("ns:") {
            let (ns, rest) = match ns_path.find('/') {
                Some(i) => (&ns_path[..i], &ns_path[i..]),
                None => (ns_path, ""),
            };
            if ns.is_empty() || !ns.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Lookup::Malformed(format!(
                    "'{path}' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)'"
                )));
            }
            if !self.can_access_ns(view.member, ns) {
                return Err(Lookup::NotFound);
            }
            let info = self.namespaces.get(ns).ok_or(Lookup::NotFound)?;
            (info.mount.clone(), rest)
        } else {
            return Err(Lookup::Malformed(format!(
                "'{path}' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)'"
            )));
        };
        let rest = rest.trim_end_matches('/');
        if rest
            .split('/')
            .skip(1)
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Lookup::NotFound);
        }
        let key = format!("{base}{}", rest.to_lowercase());
        if key != view.root && !self.visible(view, &key) && !self.accessible(view.member, &key) {
            return Err(Lookup::NotFound);
        }
        Ok(key)
    }

    // ----- metadata ------------------------------------------------------------------------

    /// The closest strict ancestor that is a team or shared folder.
    pub(crate) fn parent_shared_folder(&self, key: &str) -> Option<String> {
        let mut k = parent_key(key);
        while !k.is_empty() {
            if let Some(ns) = self.nodes.get(k).and_then(Node::mount)
                && matches!(
                    self.namespaces.get(ns).map(|n| n.kind),
                    Some(NsKind::TeamFolder | NsKind::Shared)
                )
            {
                return Some(ns.to_string());
            }
            k = parent_key(k);
        }
        None
    }

    fn shared_ns_of(&self, node: &Node) -> Option<String> {
        let ns = node.mount()?;
        matches!(
            self.namespaces.get(ns).map(|n| n.kind),
            Some(NsKind::TeamFolder | NsKind::Shared)
        )
        .then(|| ns.to_string())
    }

    fn read_only(&self, member: usize, ns: &str) -> bool {
        let is_admin = self.accounts.get(member).is_some_and(|a| a.is_admin);
        match self.folder_access(member, ns) {
            Some(a) => a < Access::Editor,
            None => !is_admin,
        }
    }

    /// Dropbox `Metadata` for the node at `key`; `tagged` adds `.tag` (unions) — the
    /// `Dropbox-API-Result` of a download is the bare `FileMetadata` struct.
    pub(crate) fn metadata(&self, view: &View, key: &str, node: &Node, tagged: bool) -> Value {
        let mut m = serde_json::Map::new();
        let paths = self.rel(view, key, &node.display);
        let parent_shared = self.parent_shared_folder(key);
        match &node.kind {
            NodeKind::File(f) => {
                if tagged {
                    m.insert(".tag".into(), json!("file"));
                }
                m.insert("name".into(), json!(node.name));
                m.insert("id".into(), json!(node.id));
                m.insert(
                    "client_modified".into(),
                    json!(content::rfc3339(f.client_modified)),
                );
                m.insert(
                    "server_modified".into(),
                    json!(content::rfc3339(f.server_modified)),
                );
                m.insert("rev".into(), json!(f.rev));
                m.insert("size".into(), json!(f.size));
                if let Some((lower, display)) = paths {
                    m.insert("path_lower".into(), json!(lower));
                    m.insert("path_display".into(), json!(display));
                }
                let paper = node.is_paper();
                m.insert("is_downloadable".into(), json!(!paper));
                if paper {
                    m.insert(
                        "export_info".into(),
                        json!({"export_as": "markdown", "export_options": ["markdown", "html", "plain_text"]}),
                    );
                }
                if let Some(ns) = &parent_shared {
                    m.insert("parent_shared_folder_id".into(), json!(ns));
                    m.insert(
                        "sharing_info".into(),
                        json!({
                            "read_only": self.read_only(view.member, ns),
                            "parent_shared_folder_id": ns,
                            "modified_by": f.modified_by,
                        }),
                    );
                }
                if self
                    .file_members
                    .get(&node.id)
                    .is_some_and(|m| !m.is_empty())
                {
                    m.insert("has_explicit_shared_members".into(), json!(true));
                }
                if let Some(hash) = &f.hash {
                    m.insert("content_hash".into(), json!(hash));
                }
            }
            NodeKind::Folder { .. } => {
                if tagged {
                    m.insert(".tag".into(), json!("folder"));
                }
                m.insert("name".into(), json!(node.name));
                m.insert("id".into(), json!(node.id));
                if let Some((lower, display)) = paths {
                    m.insert("path_lower".into(), json!(lower));
                    m.insert("path_display".into(), json!(display));
                }
                let own = self.shared_ns_of(node);
                if let Some(ns) = &own {
                    m.insert("shared_folder_id".into(), json!(ns));
                }
                if let Some(ns) = &parent_shared {
                    m.insert("parent_shared_folder_id".into(), json!(ns));
                }
                if own.is_some() || parent_shared.is_some() {
                    let mut info = serde_json::Map::new();
                    let governing = own.as_ref().or(parent_shared.as_ref());
                    info.insert(
                        "read_only".into(),
                        json!(governing.is_some_and(|ns| self.read_only(view.member, ns))),
                    );
                    if let Some(ns) = &own {
                        info.insert("shared_folder_id".into(), json!(ns));
                    }
                    if let Some(ns) = &parent_shared {
                        info.insert("parent_shared_folder_id".into(), json!(ns));
                    }
                    info.insert("traverse_only".into(), json!(false));
                    info.insert("no_access".into(), json!(false));
                    m.insert("sharing_info".into(), Value::Object(info));
                }
            }
        }
        Value::Object(m)
    }

    /// A public [`Entry`] for the node at `key` as seen from `view`.
    pub(crate) fn entry(&self, view: &View, key: &str, node: &Node) -> Entry {
        let (path_lower, path_display) = self
            .rel(view, key, &node.display)
            .unwrap_or_else(|| (key.to_string(), node.display.clone()));
        let file = node.file();
        Entry {
            id: node.id.clone(),
            name: node.name.clone(),
            path_display,
            path_lower,
            is_folder: file.is_none(),
            size: file.map(|f| f.size).unwrap_or(0),
            server_modified: file.map(|f| content::rfc3339(f.server_modified)),
            client_modified: file.map(|f| content::rfc3339(f.client_modified)),
            rev: file.map(|f| f.rev.clone()),
            is_paper: node.is_paper(),
            is_downloadable: file.is_some() && !node.is_paper(),
            shared_folder_id: self.shared_ns_of(node),
            parent_shared_folder_id: self.parent_shared_folder(key),
            content_hash: file.and_then(|f| f.hash.clone()),
        }
    }

    /// Every node visible in `view`, in key order.
    pub(crate) fn entries(&self, view: &View) -> Vec<Entry> {
        let prefix = child_prefix(&view.root);
        self.nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| self.visible(view, k))
            .map(|(k, n)| self.entry(view, k, n))
            .collect()
    }

    // ----- mutations -----------------------------------------------------------------------

    pub(crate) fn record(&mut self, path: &str, kind: ChangeKind) {
        self.last_change.insert(path.to_string(), self.log.len());
        self.log.push(Change {
            path: path.to_string(),
            kind,
        });
    }

    /// Turns a test path (`/a/b` in the admin's home, or `ns:<id>/a/b`) into
    /// `(mount key, mount display, rest)`.
    pub(crate) fn test_base<'p>(&self, path: &'p str) -> anyhow::Result<(String, String, &'p str)> {
        let (ns, rest) = if let Some(ns_path) = path.strip_prefix("ns:") {
            match ns_path.find('/') {
                Some(i) => (ns_path[..i].to_string(), &ns_path[i..]),
                None => (ns_path.to_string(), ""),
            }
        } else if path.starts_with('/') || path.is_empty() {
            let admin = self.admin_index();
            let ns = self
                .accounts
                .get(admin)
                .and_then(|a| a.home_namespace_id.clone())
                .ok_or_else(|| anyhow::anyhow!("no home namespace"))?;
            (ns, path)
        } else {
            anyhow::bail!("path {path:?} must start with '/' or 'ns:<id>'");
        };
        let info = self
            .namespaces
            .get(&ns)
            .ok_or_else(|| anyhow::anyhow!("unknown namespace {ns}"))?;
        let display = if info.mount.is_empty() {
            String::new()
        } else {
            self.nodes
                .get(&info.mount)
                .map(|n| n.display.clone())
                .unwrap_or_default()
        };
        if rest
            .split('/')
            .skip(1)
            .any(|c| c.is_empty() || c == "." || c == "..")
            || (!rest.is_empty() && !rest.starts_with('/'))
        {
            anyhow::bail!("malformed path {path:?}");
        }
        Ok((info.mount.clone(), display, rest))
    }

    /// Resolves a test path to the global key of an existing node.
    pub(crate) fn test_key(&self, path: &str) -> anyhow::Result<String> {
        let (mount, _, rest) = self.test_base(path)?;
        let key = format!("{mount}{}", rest.to_lowercase());
        if !self.nodes.contains_key(&key) {
            anyhow::bail!("{path:?} does not exist");
        }
        Ok(key)
    }

    /// Finds or creates (logging each creation) the folders leading to `path`'s parent;
    /// returns `(key, display, name)` for `path` itself.
    pub(crate) fn prepare_parent(
        &mut self,
        path: &str,
        log: bool,
    ) -> anyhow::Result<(String, String, String)> {
        let (mut key, mut display, rest) = self.test_base(path)?;
        // Fast path (tree generation): the parent already exists.
        if let Some((parent_rest, name)) = rest.rsplit_once('/')
            && !name.is_empty()
        {
            let parent = format!("{key}{}", parent_rest.to_lowercase());
            let parent_display = if parent_rest.is_empty() {
                Some(display.clone())
            } else {
                self.nodes
                    .get(&parent)
                    .filter(|n| n.file().is_none())
                    .map(|n| n.display.clone())
            };
            if let Some(parent_display) = parent_display {
                return Ok((
                    format!("{parent}/{}", name.to_lowercase()),
                    format!("{parent_display}/{name}"),
                    name.to_string(),
                ));
            }
        }
        let components: Vec<&str> = rest.split('/').skip(1).collect();
        let Some((name, parents)) = components.split_last() else {
            anyhow::bail!("{path:?} names a namespace root");
        };
        for comp in parents {
            let child = format!("{key}/{}", comp.to_lowercase());
            match self.nodes.get(&child) {
                Some(node) if node.file().is_some() => {
                    anyhow::bail!("{} is a file", node.display)
                }
                Some(node) => display = node.display.clone(),
                None => {
                    display = format!("{display}/{comp}");
                    let node = Node {
                        id: self.new_id(),
                        name: comp.to_string(),
                        display: display.clone(),
                        kind: NodeKind::Folder { ns: None },
                    };
                    self.by_id.insert(node.id.clone(), child.clone());
                    self.nodes.insert(child.clone(), node);
                    if log {
                        self.record(&child, ChangeKind::Upsert);
                    }
                }
            }
            key = child;
        }
        Ok((
            format!("{key}/{}", name.to_lowercase()),
            format!("{display}/{name}"),
            name.to_string(),
        ))
    }

    pub(crate) fn add_folder(&mut self, path: &str, log: bool) -> anyhow::Result<String> {
        let (key, display, name) = self.prepare_parent(path, log)?;
        if let Some(existing) = self.nodes.get(&key) {
            if existing.file().is_some() {
                anyhow::bail!("{} is a file", existing.display);
            }
            return Ok(key);
        }
        let node = Node {
            id: self.new_id(),
            name,
            display,
            kind: NodeKind::Folder { ns: None },
        };
        self.by_id.insert(node.id.clone(), key.clone());
        self.nodes.insert(key.clone(), node);
        if log {
            self.record(&key, ChangeKind::Upsert);
        }
        Ok(key)
    }

    /// Adds a file (error if the path exists); `modified` of `None` uses the clock.
    pub(crate) fn add_file(
        &mut self,
        path: &str,
        body: Body,
        size: u64,
        modified: Option<i64>,
        log: bool,
    ) -> anyhow::Result<String> {
        let (key, display, name) = self.prepare_parent(path, log)?;
        if self.nodes.contains_key(&key) {
            anyhow::bail!("{display} already exists");
        }
        let server_modified = match modified {
            Some(t) => t,
            None => self.tick(),
        };
        let hash = match &body {
            Body::Bytes(bytes) => Some(content::content_hash(bytes)),
            Body::Generated { .. } => None,
        };
        let modified_by = self.owner_for_test_path(path, &key);
        let node = Node {
            id: self.new_id(),
            name,
            display,
            kind: NodeKind::File(FileNode {
                size,
                rev: self.new_rev(),
                server_modified,
                // Client clocks run a little behind the server in this fake.
                client_modified: server_modified - 37,
                body,
                hash,
                modified_by,
            }),
        };
        self.by_id.insert(node.id.clone(), key.clone());
        self.nodes.insert(key.clone(), node);
        if log {
            self.record(&key, ChangeKind::Upsert);
        }
        Ok(key)
    }

    /// [`State::owner_account_of`] without walking the tree when the path names its namespace
    /// (tree generation adds 100 000 files through here).
    pub(crate) fn owner_for_test_path(&self, path: &str, key: &str) -> String {
        let ns = match path.strip_prefix("ns:") {
            Some(rest) => rest.split('/').next().map(str::to_string),
            None => self
                .accounts
                .get(self.admin_index())
                .and_then(|a| a.home_namespace_id.clone()),
        };
        match ns.and_then(|ns| self.namespaces.get(&ns)).map(|n| n.kind) {
            Some(NsKind::Home(owner)) => self
                .accounts
                .get(owner)
                .map(|a| a.account_id.clone())
                .unwrap_or_default(),
            Some(NsKind::TeamFolder) => self
                .accounts
                .get(self.admin_index())
                .map(|a| a.account_id.clone())
                .unwrap_or_default(),
            _ => self.owner_account_of(key),
        }
    }

    /// The account that owns the namespace `key` lives in (the admin for team content).
    fn owner_account_of(&self, key: &str) -> String {
        let mut k = key;
        loop {
            if let Some(ns) = self.nodes.get(k).and_then(Node::mount)
                && let Some(NsKind::Home(owner)) = self.namespaces.get(ns).map(|n| n.kind)
                && let Some(a) = self.accounts.get(owner)
            {
                return a.account_id.clone();
            }
            if k.is_empty() {
                break;
            }
            k = parent_key(k);
        }
        self.accounts
            .get(self.admin_index())
            .map(|a| a.account_id.clone())
            .unwrap_or_default()
    }

    pub(crate) fn edit_file(&mut self, path: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
        let key = self.test_key(path)?;
        let now = self.tick();
        let rev = self.new_rev();
        let Some(NodeKind::File(f)) = self.nodes.get_mut(&key).map(|n| &mut n.kind) else {
            anyhow::bail!("{path:?} is a folder");
        };
        f.size = bytes.len() as u64;
        f.hash = Some(content::content_hash(&bytes));
        f.body = Body::Bytes(Arc::new(bytes));
        f.rev = rev;
        f.server_modified = now;
        f.client_modified = now - 37;
        self.record(&key, ChangeKind::Upsert);
        Ok(key)
    }

    /// Keys of `key` and everything below it, in order.
    pub(crate) fn subtree(&self, key: &str) -> Vec<String> {
        let prefix = child_prefix(key);
        let mut keys = vec![key.to_string()];
        keys.extend(
            self.nodes
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone()),
        );
        keys
    }

    fn is_namespace_root(&self, key: &str) -> bool {
        self.nodes
            .get(key)
            .and_then(Node::mount)
            .and_then(|ns| self.namespaces.get(ns))
            .is_some_and(|n| matches!(n.kind, NsKind::Home(_) | NsKind::TeamFolder))
    }

    pub(crate) fn move_entry(&mut self, from: &str, to: &str) -> anyhow::Result<String> {
        self.move_entry_ordered(from, to, false)
    }

    /// A move whose change-log entries put the new entries first and the old path's deletion
    /// last (`deletion_last`), as Dropbox may report them across pages.
    pub(crate) fn move_entry_ordered(
        &mut self,
        from: &str,
        to: &str,
        deletion_last: bool,
    ) -> anyhow::Result<String> {
        let from_key = self.test_key(from)?;
        if self.is_namespace_root(&from_key) {
            anyhow::bail!("{from:?} is a home or team folder and cannot move");
        }
        let (to_key, to_display, to_name) = self.prepare_parent(to, true)?;
        if self.nodes.contains_key(&to_key) && to_key != from_key {
            anyhow::bail!("{to:?} already exists");
        }
        if to_key.starts_with(&child_prefix(&from_key)) {
            anyhow::bail!("cannot move {from:?} into itself");
        }
        let keys = self.subtree(&from_key);
        let mut moved = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Some(node) = self.nodes.remove(k) {
                moved.push((k.clone(), node));
            }
        }
        let Some((_, root_node)) = moved.first() else {
            anyhow::bail!("{from:?} vanished");
        };
        let old_display_len = root_node.display.len();
        let deletion = ChangeKind::Deleted {
            display: root_node.display.clone(),
            name: root_node.name.clone(),
        };
        let deletion = if deletion_last {
            Some(deletion)
        } else {
            self.record(&from_key, deletion);
            None
        };
        for (i, (old_key, mut node)) in moved.into_iter().enumerate() {
            let new_key = format!("{to_key}{}", &old_key[from_key.len()..]);
            node.display = format!(
                "{to_display}{}",
                node.display.get(old_display_len..).unwrap_or("")
            );
            if i == 0 {
                node.name = to_name.clone();
            }
            if let Some(ns) = node.mount()
                && let Some(info) = self.namespaces.get_mut(ns)
            {
                info.mount = new_key.clone();
            }
            self.by_id.insert(node.id.clone(), new_key.clone());
            self.nodes.insert(new_key.clone(), node);
            self.record(&new_key, ChangeKind::Upsert);
        }
        if let Some(deletion) = deletion {
            self.record(&from_key, deletion);
        }
        Ok(to_key)
    }

    pub(crate) fn delete(&mut self, path: &str) -> anyhow::Result<()> {
        self.delete_logged(path, true)
    }

    /// Deletes a file or folder (with its subtree); `log` off leaves no `deleted` entry, as when
    /// Dropbox collapses a deletion and a re-creation at the same path into the new entry.
    pub(crate) fn delete_logged(&mut self, path: &str, log: bool) -> anyhow::Result<()> {
        let key = self.test_key(path)?;
        if self.is_namespace_root(&key) {
            anyhow::bail!("{path:?} is a home or team folder and cannot be deleted");
        }
        let mut root = None;
        for k in self.subtree(&key) {
            if let Some(node) = self.nodes.remove(&k) {
                self.by_id.remove(&node.id);
                self.file_members.remove(&node.id);
                if let Some(ns) = node.mount() {
                    self.namespaces.remove(ns);
                    self.folder_members.remove(ns);
                }
                if root.is_none() {
                    root = Some(node);
                }
            }
        }
        if let Some(node) = root.filter(|_| log) {
            // One deleted entry for a folder stands for its whole subtree, as in Dropbox.
            self.record(
                &key,
                ChangeKind::Deleted {
                    display: node.display,
                    name: node.name,
                },
            );
        }
        self.tick();
        Ok(())
    }

    /// Makes the folder at `path` a shared folder owned by its namespace owner.
    pub(crate) fn share_folder(&mut self, path: &str, log: bool) -> anyhow::Result<String> {
        let key = self.test_key(path)?;
        match self.nodes.get(&key).map(|n| &n.kind) {
            Some(NodeKind::Folder { ns: Some(ns) }) => return Ok(ns.clone()),
            Some(NodeKind::Folder { ns: None }) => {}
            _ => anyhow::bail!("{path:?} is not a folder"),
        }
        let owner = self.owner_account_of(parent_key(&key));
        let ns = self.new_ns();
        let name = self
            .nodes
            .get(&key)
            .map(|n| n.name.clone())
            .unwrap_or_default();
        if let Some(node) = self.nodes.get_mut(&key) {
            node.kind = NodeKind::Folder {
                ns: Some(ns.clone()),
            };
        }
        self.namespaces.insert(
            ns.clone(),
            Namespace {
                kind: NsKind::Shared,
                mount: key.clone(),
                name,
            },
        );
        self.folder_members
            .insert(ns.clone(), vec![Member::account(&owner, Access::Owner)]);
        if log {
            // Sharing changes `sharing_info` of the folder and everything inside it.
            for k in self.subtree(&key) {
                self.record(&k, ChangeKind::Upsert);
            }
        }
        Ok(ns)
    }

    /// Creates a folder mounted as namespace `ns` at global `key`.
    pub(crate) fn mount(&mut self, ns: &str, kind: NsKind, key: &str, display: &str, name: &str) {
        let node = Node {
            id: self.new_id(),
            name: name.to_string(),
            display: display.to_string(),
            kind: NodeKind::Folder {
                ns: Some(ns.to_string()),
            },
        };
        self.by_id.insert(node.id.clone(), key.to_string());
        self.nodes.insert(key.to_string(), node);
        self.namespaces.insert(
            ns.to_string(),
            Namespace {
                kind,
                mount: key.to_string(),
                name: name.to_string(),
            },
        );
    }

    // ----- sharing -------------------------------------------------------------------------

    /// The principal resolved against known accounts: `Email` of an existing account becomes
    /// that account.
    pub(crate) fn normalise(&self, principal: &Principal) -> Principal {
        match principal {
            Principal::Email(email) => self
                .accounts
                .iter()
                .find(|a| a.email.eq_ignore_ascii_case(email))
                .map(|a| Principal::Account(a.account_id.clone()))
                .unwrap_or_else(|| principal.clone()),
            other => other.clone(),
        }
    }

    /// Members of a file: `(member, is_inherited)`, users first, then groups, then invitees.
    pub(crate) fn file_member_list(
        &self,
        key: &str,
        node: &Node,
        include_inherited: bool,
    ) -> Vec<(Member, bool)> {
        let mut list: Vec<(Member, bool)> = Vec::new();
        let push = |m: Member, inherited: bool, list: &mut Vec<(Member, bool)>| {
            let principal = self.normalise(&m.principal);
            match list.iter_mut().find(|(x, _)| x.principal == principal) {
                Some((existing, was_inherited)) => {
                    if !inherited {
                        *was_inherited = false;
                    }
                    existing.access = existing.access.max(m.access);
                }
                None => list.push((
                    Member {
                        principal,
                        access: m.access,
                    },
                    inherited,
                )),
            }
        };
        match self.parent_shared_folder(key) {
            None => {
                push(
                    Member::account(&self.owner_account_of(key), Access::Owner),
                    false,
                    &mut list,
                );
            }
            Some(ns) if include_inherited => {
                for m in self.folder_members.get(&ns).cloned().unwrap_or_default() {
                    push(m, true, &mut list);
                }
            }
            Some(_) => {}
        }
        for m in self.file_members.get(&node.id).cloned().unwrap_or_default() {
            push(m, false, &mut list);
        }
        let rank = |p: &Principal| match p {
            Principal::Account(_) => 0,
            Principal::Group(_) => 1,
            Principal::Email(_) => 2,
        };
        list.sort_by_key(|(m, _)| rank(&m.principal));
        list
    }

    /// Members of a shared folder, users first, then groups, then invitees.
    pub(crate) fn folder_member_list(&self, ns: &str) -> Vec<Member> {
        let mut list: Vec<Member> = self
            .folder_members
            .get(ns)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|m| Member {
                principal: self.normalise(&m.principal),
                access: m.access,
            })
            .collect();
        let rank = |p: &Principal| match p {
            Principal::Account(_) => 0,
            Principal::Group(_) => 1,
            Principal::Email(_) => 2,
        };
        list.sort_by_key(|m| rank(&m.principal));
        list
    }

    /// `{account_id, email, display_name, same_team, team_member_id?}`.
    pub(crate) fn user_info(&self, account_id: &str) -> Value {
        match self
            .account_index(account_id)
            .and_then(|i| self.accounts.get(i))
        {
            Some(a) => {
                let mut v = json!({
                    "account_id": a.account_id,
                    "email": a.email,
                    "display_name": a.display_name,
                    "same_team": a.team_member_id.is_some(),
                });
                if let (Some(id), Some(obj)) = (&a.team_member_id, v.as_object_mut()) {
                    obj.insert("team_member_id".into(), json!(id));
                }
                v
            }
            None => json!({
                "account_id": account_id,
                "email": "",
                "display_name": "",
                "same_team": false,
            }),
        }
    }

    pub(crate) fn group_info(&self, group_id: &str, member: usize) -> Value {
        let group = self.groups.iter().find(|g| g.group_id == group_id);
        let account = self.accounts.get(member).map(|a| a.account_id.as_str());
        json!({
            "group_name": group.map(|g| g.name.as_str()).unwrap_or(""),
            "group_id": group_id,
            "group_management_type": {".tag": "company_managed"},
            "group_type": {".tag": "team"},
            "is_member": group.is_some_and(|g| account.is_some_and(|a| g.members.iter().any(|m| m == a))),
            "is_owner": false,
            "same_team": true,
            "member_count": group.map(|g| g.members.len()).unwrap_or(0),
        })
    }

    /// Splits members into Dropbox's `{users, groups, invitees}` shape.
    pub(crate) fn members_json(
        &self,
        members: &[(Member, bool)],
        member: usize,
        file_style: bool,
    ) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
        let (mut users, mut groups, mut invitees) = (Vec::new(), Vec::new(), Vec::new());
        for (m, inherited) in members {
            let access = json!({".tag": m.access.tag()});
            match &m.principal {
                Principal::Account(id) => {
                    let mut v = json!({
                        "access_type": access,
                        "user": self.user_info(id),
                        "permissions": [],
                        "is_inherited": inherited,
                    });
                    if file_style && let Some(obj) = v.as_object_mut() {
                        obj.insert("platform_type".into(), json!({".tag": "web"}));
                    }
                    users.push(v);
                }
                Principal::Group(gid) => groups.push(json!({
                    "access_type": access,
                    "group": self.group_info(gid, member),
                    "permissions": [],
                    "is_inherited": inherited,
                })),
                Principal::Email(email) => invitees.push(json!({
                    "access_type": access,
                    "invitee": {".tag": "email", "email": email},
                    "permissions": [],
                    "is_inherited": inherited,
                })),
            }
        }
        (users, groups, invitees)
    }

    // ----- accounts JSON -------------------------------------------------------------------

    pub(crate) fn name_json(a: &Account) -> Value {
        let initials: String = [&a.given_name, &a.surname]
            .iter()
            .filter_map(|s| s.chars().next())
            .collect();
        json!({
            "abbreviated_name": initials,
            "display_name": a.display_name,
            "familiar_name": a.given_name,
            "given_name": a.given_name,
            "surname": a.surname,
        })
    }

    /// `TeamMemberProfile`.
    pub(crate) fn member_profile(&self, index: usize) -> Value {
        let Some(a) = self.accounts.get(index) else {
            return Value::Null;
        };
        json!({
            "team_member_id": a.team_member_id,
            "account_id": a.account_id,
            "email": a.email,
            "email_verified": true,
            "secondary_emails": [],
            "status": {".tag": a.status},
            "name": Self::name_json(a),
            "membership_type": {".tag": "full"},
            "joined_on": a.joined_on,
            "groups": self.groups_of(&a.account_id),
            "member_folder_id": a.home_namespace_id,
            "root_folder_id": TEAM_ROOT_NS,
        })
    }

    /// `FullAccount` of a team member.
    pub(crate) fn full_account(&self, index: usize) -> Value {
        let Some(a) = self.accounts.get(index) else {
            return Value::Null;
        };
        let home = a.home_namespace_id.clone().unwrap_or_default();
        let home_path = self
            .namespaces
            .get(&home)
            .and_then(|n| self.nodes.get(&n.mount))
            .map(|n| n.display.clone())
            .unwrap_or_default();
        json!({
            "account_id": a.account_id,
            "name": Self::name_json(a),
            "email": a.email,
            "email_verified": true,
            "disabled": false,
            "locale": "en",
            "referral_link": format!("https://db.tt/{}", base62(mix(index as u64, 0xDB), 8)),
            "is_paired": false,
            "account_type": {".tag": "business"},
            "root_info": {
                ".tag": "team",
                "root_namespace_id": TEAM_ROOT_NS,
                "home_namespace_id": home,
                "home_path": home_path,
            },
            "country": "US",
            "team": {
                "id": TEAM_ID,
                "name": TEAM_NAME,
                "sharing_policies": {
                    "shared_folder_member_policy": {".tag": "anyone"},
                    "shared_folder_join_policy": {".tag": "from_anyone"},
                    "shared_link_create_policy": {".tag": "default_public"},
                },
                "office_addin_policy": {".tag": "disabled"},
            },
            "team_member_id": a.team_member_id,
        })
    }

    /// `BasicAccount`.
    pub(crate) fn basic_account(&self, index: usize, viewer: usize) -> Value {
        let Some(a) = self.accounts.get(index) else {
            return Value::Null;
        };
        let teammate = a.team_member_id.is_some()
            && self
                .accounts
                .get(viewer)
                .is_some_and(|v| v.team_member_id.is_some());
        let mut v = json!({
            "account_id": a.account_id,
            "name": Self::name_json(a),
            "email": a.email,
            "email_verified": true,
            "disabled": false,
            "is_teammate": teammate,
        });
        if teammate && let (Some(id), Some(obj)) = (&a.team_member_id, v.as_object_mut()) {
            obj.insert("team_member_id".into(), json!(id));
        }
        v
    }
}
