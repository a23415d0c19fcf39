//! A faithful, in-memory fake of the public Box API (`api.box.com`), for end-to-end tests and
//! `tributary demo`.
//!
//! # URL layout
//!
//! Everything is served from one loopback origin, [`FakeBox::base_url`] (`http://127.0.0.1:PORT`):
//!
//! | Route | Box equivalent |
//! |---|---|
//! | `GET /oauth2/authorize` | `https://account.box.com/api/oauth2/authorize` (consents at once) |
//! | `POST /oauth2/token` | `https://api.box.com/oauth2/token` (form body) |
//! | `GET /2.0/users/me`, `/2.0/users`, `/2.0/users/{id}`, `/2.0/users/{id}/memberships` | same |
//! | `GET /2.0/groups`, `/2.0/groups/{id}/memberships` | same |
//! | `GET /2.0/folders/{id}`, `/items`, `/collaborations`, `/trash` | same |
//! | `GET /2.0/files/{id}`, `/content`, `/collaborations`, `/trash` | same |
//! | `GET /2.0/events` | same (user stream: `all`, `changes`, `sync`) |
//! | `GET /dl/{token}` | `dl.boxcloud.com` download URLs |
//!
//! `GET /2.0/files/{id}/content` answers **302 Found** with `Location: <base>/dl/{token}`, like
//! Box's redirect to `dl.boxcloud.com`. The download URL is pre-signed (no `Authorization`
//! needed) and on the same host and port as the API, so an HTTP client that re-checks redirects
//! against an allowlist of the base URL's host:port lets it through.
//!
//! # Authentication
//!
//! - `grant_type=refresh_token` (+ `client_id`, `client_secret`): acts as the primary user (Ada).
//!   Refresh tokens **rotate**: each exchange returns a new one and the presented one is dead at
//!   once (reuse → 400 `invalid_grant` "Invalid refresh token"). Wrong client → 400
//!   `invalid_client`.
//! - `grant_type=client_credentials`, `box_subject_type=enterprise`, `box_subject_id=<enterprise>`:
//!   acts as the app's service account, which owns nothing, may list users and groups, and may
//!   send `As-User: <user id>` to act as any managed user. (`box_subject_type=user` also works.)
//!   A wrong subject → 400 `invalid_grant` "Grant credentials are invalid".
//! - Unknown or expired access tokens → 401, empty body,
//!   `WWW-Authenticate: Bearer realm="Service", error="invalid_token", ...`.
//!
//! # Events
//!
//! The user event stream starts empty (the generated tree is "older than the retention
//! window"). Each test mutation appends one event to the stream of every user who could see the
//! item before or after the change; see [`FakeBox`]'s methods for which event each emits.
//! Downloads add `ITEM_DOWNLOAD` for the owner to the `all` stream only (never to `changes`), as
//! Box documents; [`FakeBox::enable_download_events`] turns that off.
//!
//! # Fidelity
//!
//! Faithful: URL layout, OAuth shapes and errors, refresh-token rotation, `As-User`, folder
//! listings (offset pagination with `total_count`, max `limit` 1000, max `offset` 10 000,
//! `usemarker`/`next_marker`, `sort`/`direction`, default order type-then-name), `fields`
//! selection (`type`, `id`, `etag` plus what was asked; mini and standard representations
//! otherwise), Box error JSON, 404 `trashed` vs `not_found`, the 302 download redirect, real
//! SHA-1s, folder sizes, event shapes and positions, at-least-once delivery (optional),
//! direct-only collaboration listings, and `GET /users` with offsets or `usemarker`/`marker`.
//!
//! Simplified:
//! - no write API over HTTP (uploads, `PUT`/`POST`/`DELETE` on items): tests mutate through
//!   [`FakeBox`] methods;
//! - access tokens never expire on their own (`expires_in` is advisory): use
//!   [`FakeBox::expire_access_tokens`];
//! - the event stream starts empty; no long-polling (`OPTIONS /events`), no `admin_logs`;
//! - a permanent deletion emits `ITEM_TRASH` with `item_status: "deleted"` (Box does not
//!   document a purge event for the user stream);
//! - collaborations are always `accepted` and roles are labels: anyone who can see an item can
//!   list and download it;
//! - files over 10 MiB from generated trees report a stand-in `sha1` (hashing them on every
//!   listing would be too slow); their bytes are still exact when downloaded;
//! - timestamps use a fixed `-08:00` offset; the clock moves one minute per mutation;
//! - no shared links, metadata, web links, version history, search or `If-None-Match`.

mod content;
mod demo;
mod http;
mod model;
mod mutate;
mod render;
mod tree;
mod util;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::{Context, anyhow};
use serde_json::json;

use crate::faults::{Fault, FaultPlan};
use crate::server::FakeServer;
use content::Content;
use http::Shared;
use model::{Accessor, Kind, State, UserKind};

pub use model::GrantCounts;
pub use tree::Tree;

/// File or folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A file.
    File,
    /// A folder.
    Folder,
}

/// An item as a correct sync should see it (expectation helper).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxItem {
    /// Box id (decimal string).
    pub id: String,
    /// File or folder.
    pub kind: ItemKind,
    /// Name.
    pub name: String,
    /// Bytes (folders: total of their non-trashed contents, like Box).
    pub size: u64,
    /// `modified_at` exactly as the API renders it.
    pub modified_at: String,
    /// `/`-separated path from the viewer's "All Files", e.g. `/Contracts/Acme.txt`.
    pub path: String,
    /// Parent id as the viewer sees it (`"0"` at the top).
    pub parent_id: String,
    /// Owner's user id.
    pub owner_id: String,
    /// `sequence_id` / `etag`.
    pub sequence_id: String,
    /// Content version (files; 0 for folders).
    pub version: u32,
}

/// Who may see an item (owner included, collaborations inherited from ancestors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Owner's user id.
    pub owner: String,
    /// Every user id with access, sorted (owner included; groups expanded).
    pub users: Vec<String>,
    /// Group ids collaborated on the item or an ancestor, sorted.
    pub groups: Vec<String>,
}

/// The other side of a collaboration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collaborator {
    /// A user id.
    User(String),
    /// A group id.
    Group(String),
}

/// A user of the fake enterprise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxUser {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Login (email).
    pub login: String,
    /// The app's service account (not listed by `GET /users`).
    pub service_account: bool,
}

/// A group of the fake enterprise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxGroup {
    /// Group id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Member user ids.
    pub member_ids: Vec<String>,
}

/// A Box-shaped `429 Too Many Requests` with `Retry-After`, for [`FaultPlan::add`].
pub fn rate_limited(retry_after_secs: u64) -> Fault {
    Fault::Respond {
        status: 429,
        headers: vec![
            ("Retry-After".into(), retry_after_secs.to_string()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: json!({
            "type": "error",
            "status": 429,
            "code": "rate_limit_exceeded",
            "help_url": "http://developers.box.com/docs/#errors",
            "message": "Request rate limit exceeded, please try again later",
            "request_id": "fakeratelimit",
        })
        .to_string(),
    }
}

/// A Box-shaped 5xx (`internal_server_error`, or `unavailable` for 503), for [`FaultPlan::add`].
pub fn server_error(status: u16) -> Fault {
    let code = if status == 503 {
        "unavailable"
    } else {
        "internal_server_error"
    };
    Fault::Respond {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: json!({
            "type": "error",
            "status": status,
            "code": code,
            "help_url": "http://developers.box.com/docs/#errors",
            "message": "Internal Server Error",
            "request_id": "fakeservererror",
        })
        .to_string(),
    }
}

/// A running fake Box. Stops when dropped.
pub struct FakeBox {
    server: FakeServer,
    shared: Arc<Shared>,
    faults: FaultPlan,
}

impl std::fmt::Debug for FakeBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBox")
            .field("base_url", &self.base_url())
            .finish()
    }
}

impl FakeBox {
    /// Serves `tree` on `127.0.0.1:<ephemeral port>`, with a [`FaultPlan`] around every route.
    pub async fn start(tree: Tree) -> anyhow::Result<FakeBox> {
        let faults = FaultPlan::new();
        let shared = Arc::new(Shared::new(tree.state));
        let server = FakeServer::start(http::router(shared.clone(), faults.clone())).await?;
        // Only fails if already set, which cannot happen for a fresh `Shared`.
        let _ = shared.base_url.set(server.url());
        Ok(FakeBox {
            server,
            shared,
            faults,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.shared.lock())
    }

    fn mutate<T>(&self, f: impl FnOnce(&mut State) -> Result<T, String>) -> anyhow::Result<T> {
        self.with(f).map_err(|e| anyhow!("fake Box: {e}"))
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): the API is under `/2.0`, OAuth under `/oauth2`.
    pub fn base_url(&self) -> String {
        self.server.url()
    }

    /// `<base>/oauth2/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.base_url())
    }

    /// `<base>/oauth2/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth2/authorize", self.base_url())
    }

    /// The authorization code the token endpoint accepts next (each is good once).
    pub fn authorization_code(&self) -> String {
        self.with(|st| st.auth_code.clone())
    }

    /// `<base>/2.0`.
    pub fn api_url(&self) -> String {
        format!("{}/2.0", self.base_url())
    }

    /// The app's client id.
    pub fn client_id(&self) -> String {
        self.with(|st| st.client_id.clone())
    }

    /// The app's client secret.
    pub fn client_secret(&self) -> String {
        self.with(|st| st.client_secret.clone())
    }

    /// The currently valid refresh token of the primary user (rotates on every use; empty after
    /// [`FakeBox::revoke_refresh_token`]).
    pub fn refresh_token(&self) -> String {
        self.with(|st| st.refresh_token.clone().unwrap_or_default())
    }

    /// Revokes the refresh token, as if the user removed the app: every exchange now fails with
    /// `invalid_grant` until [`FakeBox::reauthorize`].
    pub fn revoke_refresh_token(&self) {
        self.with(|st| st.refresh_token = None);
    }

    /// Issues a fresh refresh token (the user authorized the app again) and returns it.
    pub fn reauthorize(&self) -> String {
        self.with(|st| {
            let token = st.new_token("r");
            st.refresh_token = Some(token.clone());
            token
        })
    }

    /// Issues a fresh refresh token acting as another user (someone else authorized the app
    /// with the same client id) and returns it.
    pub fn authorize_as(&self, user_id: &str) -> anyhow::Result<String> {
        self.with(|st| {
            let user = st
                .user_index(user_id)
                .ok_or_else(|| anyhow!("no user {user_id}"))?;
            st.refresh_user = user;
            let token = st.new_token("r");
            st.refresh_token = Some(token.clone());
            Ok(token)
        })
    }

    /// The enterprise id for `client_credentials` with `box_subject_type=enterprise`.
    pub fn enterprise_id(&self) -> String {
        self.with(|st| st.enterprise_id.clone())
    }

    /// The primary user (owner of the refresh token; "free account" user).
    pub fn primary_user_id(&self) -> String {
        self.with(|st| st.users.first().map(|u| u.id.clone()).unwrap_or_default())
    }

    /// The service account that enterprise tokens authenticate as.
    pub fn service_account_id(&self) -> String {
        self.with(|st| {
            let sa = st.service_account();
            st.users
                .get(sa as usize)
                .map(|u| u.id.clone())
                .unwrap_or_default()
        })
    }

    /// Every user, service account last.
    pub fn users(&self) -> Vec<BoxUser> {
        self.with(|st| {
            st.users
                .iter()
                .map(|u| BoxUser {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    login: u.login.clone(),
                    service_account: u.kind == UserKind::ServiceAccount,
                })
                .collect()
        })
    }

    /// Every group with its members.
    pub fn groups(&self) -> Vec<BoxGroup> {
        self.with(|st| {
            st.groups
                .iter()
                .map(|g| BoxGroup {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    member_ids: g
                        .members
                        .iter()
                        .filter_map(|&m| st.users.get(m as usize).map(|u| u.id.clone()))
                        .collect(),
                })
                .collect()
        })
    }

    /// The fault plan wrapped around every route (it also logs every request).
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// How many token grants succeeded or were rejected.
    pub fn grants(&self) -> GrantCounts {
        self.with(|st| st.grants)
    }

    /// Invalidates every access token: the next API call gets 401 `invalid_token`.
    pub fn expire_access_tokens(&self) {
        self.with(|st| st.access_tokens.clear());
    }

    /// While on, every event is delivered a second time (same `event_id`, stale `source`) right
    /// after the next event for the same user; turning it off delivers the pending copies.
    pub fn enable_duplicate_events(&self, on: bool) {
        self.with(|st| st.set_duplicates(on));
    }

    /// Whether `GET /files/{id}/content` adds `ITEM_DOWNLOAD` to the owner's `all` stream
    /// (default on, like Box).
    pub fn enable_download_events(&self, on: bool) {
        self.with(|st| st.download_events = on);
    }

    /// The latest stream position (what `stream_position=now` returns).
    pub fn stream_position(&self) -> u64 {
        self.with(|st| st.position)
    }

    fn user(st: &State, user_id: &str) -> Result<u32, String> {
        st.user_index(user_id)
            .ok_or_else(|| format!("no user with id {user_id:?}"))
    }

    fn item(st: &State, id: &str) -> Result<u64, String> {
        if id == "0" {
            return Err("the root folder \"0\" cannot be changed".into());
        }
        st.node_id(0, id)
    }

    fn actor_for_parent(st: &State, parent: &str) -> u32 {
        match st.resolve(st.primary(), parent) {
            Some(id) => st.actor_for(id),
            None => st.primary(),
        }
    }

    /// Uploads a file into `parent` (`"0"` = the primary user's root); emits `ITEM_UPLOAD`.
    pub fn create_file(
        &self,
        parent: &str,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> anyhow::Result<String> {
        let content = Content::Bytes(Arc::from(bytes.into()));
        self.mutate(|st| {
            let actor = Self::actor_for_parent(st, parent);
            st.create(actor, parent, name, Kind::File, content)
        })
        .map(|id| id.to_string())
    }

    /// Like [`FakeBox::create_file`], with bytes shared with other files: thousands of files of
    /// a bench cost one body in memory.
    pub fn create_shared_file(
        &self,
        parent: &str,
        name: &str,
        bytes: Arc<[u8]>,
    ) -> anyhow::Result<String> {
        let content = Content::Bytes(bytes);
        self.mutate(|st| {
            let actor = Self::actor_for_parent(st, parent);
            st.create(actor, parent, name, Kind::File, content)
        })
        .map(|id| id.to_string())
    }

    /// Like [`FakeBox::create_file`] but as `user_id` (`"0"` is that user's root).
    pub fn create_file_as(
        &self,
        user_id: &str,
        parent: &str,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> anyhow::Result<String> {
        let content = Content::Bytes(Arc::from(bytes.into()));
        self.mutate(|st| {
            let actor = Self::user(st, user_id)?;
            st.create(actor, parent, name, Kind::File, content)
        })
        .map(|id| id.to_string())
    }

    /// Creates a folder in `parent` (`"0"` = the primary user's root); emits `ITEM_CREATE`.
    pub fn create_folder(&self, parent: &str, name: &str) -> anyhow::Result<String> {
        self.mutate(|st| {
            let actor = Self::actor_for_parent(st, parent);
            st.create(actor, parent, name, Kind::Folder, Content::None)
        })
        .map(|id| id.to_string())
    }

    /// Like [`FakeBox::create_folder`] but as `user_id` (`"0"` is that user's root).
    pub fn create_folder_as(
        &self,
        user_id: &str,
        parent: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        self.mutate(|st| {
            let actor = Self::user(st, user_id)?;
            st.create(actor, parent, name, Kind::Folder, Content::None)
        })
        .map(|id| id.to_string())
    }

    /// Uploads a new version (new `sha1`, `file_version`, `sequence_id`/`etag`, `modified_at`);
    /// emits `ITEM_UPLOAD`.
    pub fn edit_file(&self, id: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        let bytes = bytes.into();
        self.mutate(|st| {
            let id = Self::item(st, id)?;
            st.edit(id, bytes)
        })
    }

    /// Renames a file or folder; emits `ITEM_RENAME`.
    pub fn rename(&self, id: &str, new_name: &str) -> anyhow::Result<()> {
        self.mutate(|st| {
            let id = Self::item(st, id)?;
            st.rename(id, new_name)
        })
    }

    /// Moves an item under `new_parent` (`"0"` = the root of the item's owner); emits
    /// `ITEM_MOVE` to users who saw it before or after. Moving into a folder owned by someone
    /// else transfers ownership of the subtree, like Box.
    pub fn move_item(&self, id: &str, new_parent: &str) -> anyhow::Result<()> {
        self.mutate(|st| {
            let id = Self::item(st, id)?;
            st.move_item(id, new_parent)
        })
    }

    /// Copies an item (folders recursively) under `new_parent` (`"0"` = the owner's root);
    /// emits `ITEM_COPY` for the copy and returns its id.
    pub fn copy_item(&self, id: &str, new_parent: &str) -> anyhow::Result<String> {
        self.mutate(|st| {
            let id = Self::item(st, id)?;
            st.copy_item(id, new_parent)
        })
        .map(|id| id.to_string())
    }

    /// Moves an item (and its subtree) to the trash; emits `ITEM_TRASH` with
    /// `source.item_status == "trashed"`. Trashed items vanish from listings and answer 404
    /// `trashed`.
    pub fn trash(&self, id: &str) -> anyhow::Result<()> {
        self.mutate(|st| {
            let id = Self::item(st, id)?;
            st.trash(id)
        })
    }

    /// Restores a trashed item; emits `ITEM_UNDELETE_VIA_TRASH`.
    pub fn restore(&self, id: &str) -> anyhow::Result<()> {
        self.mutate(|st| {
            let id = Self::item(st, id)?;
            st.restore(id)
        })
    }

    /// Purges an item and its subtree (whether or not it was trashed first); emits `ITEM_TRASH`
    /// with `source.item_status == "deleted"`. Afterwards the ids answer 404 `not_found`.
    pub fn delete_permanently(&self, id: &str) -> anyhow::Result<()> {
        self.mutate(|st| {
            let id = Self::item(st, id)?;
            st.delete_permanently(id)
        })
    }

    /// Adds an accepted `editor` collaboration on a file or folder; emits
    /// `COLLAB_ADD_COLLABORATOR`. Returns the collaboration id.
    pub fn add_collaboration(&self, item_id: &str, with: Collaborator) -> anyhow::Result<String> {
        self.add_collaboration_with_role(item_id, with, "editor")
    }

    /// Like [`FakeBox::add_collaboration`] with a Box role (`viewer`, `editor`, `co-owner`, …).
    pub fn add_collaboration_with_role(
        &self,
        item_id: &str,
        with: Collaborator,
        role: &str,
    ) -> anyhow::Result<String> {
        self.mutate(|st| {
            let id = Self::item(st, item_id)?;
            let accessor = match &with {
                Collaborator::User(user) => Accessor::User(Self::user(st, user)?),
                Collaborator::Group(group) => Accessor::Group(
                    st.group_index(group)
                        .ok_or_else(|| format!("no group with id {group:?}"))?,
                ),
            };
            st.add_collab(id, accessor, role)
        })
        .map(|id| id.to_string())
    }

    /// Invites a managed user or group, which Box accepts at once: the collaboration is active
    /// and the only event is `COLLAB_INVITE_COLLABORATOR` (no `COLLAB_ADD_COLLABORATOR`).
    pub fn invite_collaborator(
        &self,
        item_id: &str,
        with: Collaborator,
        role: &str,
    ) -> anyhow::Result<String> {
        self.mutate(|st| {
            let id = Self::item(st, item_id)?;
            let accessor = match &with {
                Collaborator::User(user) => Accessor::User(Self::user(st, user)?),
                Collaborator::Group(group) => Accessor::Group(
                    st.group_index(group)
                        .ok_or_else(|| format!("no group with id {group:?}"))?,
                ),
            };
            st.add_collab_as(id, accessor, role, "COLLAB_INVITE_COLLABORATOR")
        })
        .map(|id| id.to_string())
    }

    /// Removes a collaboration; emits `COLLAB_REMOVE_COLLABORATOR`.
    pub fn remove_collaboration(&self, collaboration_id: &str) -> anyhow::Result<()> {
        let id: u64 = collaboration_id
            .parse()
            .with_context(|| format!("bad collaboration id {collaboration_id:?}"))?;
        self.mutate(|st| st.remove_collab(id))
    }

    /// Every non-trashed item the primary user reaches from "All Files" (shared items included).
    pub fn items(&self) -> Vec<BoxItem> {
        self.with(|st| st.items_for(st.primary()))
    }

    /// Every non-trashed item `user_id` reaches from their "All Files".
    pub fn items_for_user(&self, user_id: &str) -> anyhow::Result<Vec<BoxItem>> {
        self.mutate(|st| Ok(st.items_for(Self::user(st, user_id)?)))
    }

    /// The union over all managed users, each id once (path from the owner's side when the
    /// owner is one of them), sorted by id: what an enterprise crawl with `As-User` must find.
    pub fn items_for_enterprise(&self) -> Vec<BoxItem> {
        self.with(|st| {
            let mut by_id = std::collections::BTreeMap::new();
            let users: Vec<u32> = st.managed_users().collect();
            for user in users {
                let user_id = st
                    .users
                    .get(user as usize)
                    .map(|u| u.id.clone())
                    .unwrap_or_default();
                for item in st.items_for(user) {
                    let owned = item.owner_id == user_id;
                    if owned || !by_id.contains_key(&item.id) {
                        by_id.insert(item.id.clone(), item);
                    }
                }
            }
            let mut items: Vec<BoxItem> = by_id.into_values().collect();
            items.sort_by_key(|i| i.id.parse::<u64>().unwrap_or(0));
            items
        })
    }

    /// The id of the item at `path` in the primary user's view (e.g. `/Contracts/Acme.txt`).
    pub fn find_path(&self, path: &str) -> Option<String> {
        self.items()
            .into_iter()
            .find(|i| i.path == path)
            .map(|i| i.id)
    }

    /// The bytes a download of file `id` returns (allocates big files).
    pub fn file_content(&self, id: &str) -> Option<Vec<u8>> {
        let content = self.with(|st| {
            let id = st.resolve(0, id)?;
            st.nodes
                .get(&id)
                .filter(|n| n.kind == Kind::File)
                .map(|n| n.content.clone())
        })?;
        Some(content.bytes())
    }

    /// Effective access to an item (document-level security expectations).
    pub fn access(&self, id: &str) -> Option<Access> {
        self.with(|st| st.resolve(0, id).and_then(|id| st.access_of(id)))
    }

    /// A human-readable summary of the credentials and users (for `tributary demo`).
    pub fn describe(&self) -> String {
        let users = self
            .users()
            .into_iter()
            .map(|u| {
                let role = if u.service_account {
                    " (service account)"
                } else {
                    ""
                };
                format!("  {} {} <{}>{role}", u.id, u.name, u.login)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let base = self.base_url();
        [
            format!("Fake Box at {base}"),
            format!("  token URL:     {base}/oauth2/token"),
            format!("  API base:      {base}/2.0"),
            format!("  client id:     {}", self.client_id()),
            format!("  client secret: {}", self.client_secret()),
            format!(
                "  refresh token: {} (rotates on every use)",
                self.refresh_token()
            ),
            format!("  enterprise id: {}", self.enterprise_id()),
            format!("Users:\n{users}"),
        ]
        .join("\n")
    }
}
