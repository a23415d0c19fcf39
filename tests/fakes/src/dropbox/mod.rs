//! A faithful, in-memory fake of the Dropbox HTTP API v2.
//!
//! A plugin written from Dropbox's public documentation should work against this server
//! unchanged once its three base URLs point here:
//!
//! | Dropbox                                     | fake                          |
//! |---------------------------------------------|-------------------------------|
//! | `https://www.dropbox.com/oauth2/authorize`  | `<base>/oauth2/authorize`     |
//! | `https://api.dropboxapi.com/oauth2/token`   | `<base>/oauth2/token`         |
//! | `https://api.dropboxapi.com/2/<route>`      | `<base>/2/<route>`            |
//! | `https://content.dropboxapi.com/2/<route>`  | `<base>/2/<route>`            |
//!
//! All calls are `POST` (content-download routes also accept `GET`). RPC arguments are a JSON
//! body with `Content-Type: application/json`; content-download routes (`files/download`,
//! `files/export`, `sharing/get_shared_link_file`) take the argument in the `Dropbox-API-Arg`
//! header (or the `arg` query parameter), answer the metadata in `Dropbox-API-Result` (non-ASCII
//! escaped as `\uXXXX`) and the bytes in the body.
//!
//! # The account
//!
//! Every fake is the Dropbox of team "Acme Corp" in the *team space* configuration: the team
//! space root (namespace [`FakeDropbox::root_namespace_id`]) holds the team folders
//! "Engineering" and "Company" and one member folder per member ("/Alex Doe", …). Alex Doe is
//! the admin; [`FakeDropbox::refresh_token`] yields user tokens for Alex, and
//! [`FakeDropbox::team_refresh_token`] yields team tokens that must pick a member with
//! `Dropbox-API-Select-User` (or `-Select-Admin`) on user routes. Without
//! `Dropbox-API-Path-Root`, paths are relative to the member's home folder, so a plain
//! recursive listing of `""` never contains the team folders; with
//! `{".tag": "root", "root": <root_namespace_id>}` the listing shows the team folders and
//! the member's own folder (`/Alex Doe/…`); `{".tag": "namespace_id", …}` roots calls at any
//! namespace the member can reach (a team folder, a shared folder, the home).
//!
//! # Test API
//!
//! Paths given to the mutation methods are in Alex's home (`/Reports/x.txt`) or in a namespace
//! (`ns:<id>/x.txt`, e.g. a team folder). The [`Entry`] they return has paths relative to Alex's
//! home, or to the team space root for content outside it (`/Engineering/x.md`). Every mutation
//! appends to the change log that `files/list_folder/continue` reads and advances the fake clock
//! by a minute:
//!
//! - [`FakeDropbox::add_file`] / [`FakeDropbox::add_folder`]: an upsert for each missing parent
//!   folder, then one for the entry.
//! - [`FakeDropbox::edit_file`]: same id, new `rev`, `size`, `content_hash`, `server_modified`
//!   and `client_modified`; one upsert.
//! - [`FakeDropbox::move_entry`]: a `deleted` entry for the old path, then an upsert for the new
//!   path and for every entry below it (ids and revs are kept).
//! - [`FakeDropbox::delete`]: one `deleted` entry for the path; for a folder it stands for the
//!   whole subtree, as in Dropbox.
//! - [`FakeDropbox::share_folder`]: upserts for the folder and everything below it (their
//!   `sharing_info` changed).
//! - Member, group and received-file changes do not touch the log (Dropbox does not report
//!   permission changes through `list_folder/continue` either).
//!
//! `continue` reports each changed path once, with its current metadata, in the order of its
//! latest change; a path deleted and re-created yields the `deleted` entry first.
//!
//! # Faithful and simplified
//!
//! Faithful: request/response shapes and `.tag` unions of every implemented route; 400 plain
//! text for malformed requests (bad JSON, missing or mistyped fields, wrong `Content-Type`,
//! `"/"` as the root of `list_folder`, the root for `get_metadata`); 401
//! `expired_access_token` / `invalid_access_token`; 409 endpoint errors (`path/not_found`,
//! `path/not_folder`, `path/not_file`, `unsupported_file` for Paper downloads,
//! `non_exportable`, `shared_link_not_found`, `access_error/invalid_file`, `invalid_cursor`,
//! `reset`); 422 `invalid_root` / `no_permission` for `Dropbox-API-Path-Root`; `id:`/`ns:`
//! paths; case-insensitive paths with `path_display` keeping the stored case; recursive
//! listings of a folder start with the folder itself; `limit`/`has_more` pagination; cursors
//! that really reflect later changes; the OAuth token endpoint's error bodies (including
//! `"invalid_client: Invalid client_id or client_secret"`, which Dropbox really sends as the
//! `error` value); `content_hash` computed with Dropbox's 4 MiB block algorithm.
//!
//! Simplified: one team, fixed members and groups; shared folders are mounted only where they
//! were created (not in every member's home); `include_deleted` on an initial listing and
//! media info are ignored; any `list_folder` cursor the fake cannot resume (foreign, stale
//! after [`FakeDropbox::reset_cursors`], or garbage) gets 409 `reset`; search is substring
//! matching over names and text bodies (≤ 10 MiB), categories win over extensions; no ranges,
//! ETags, uploads or writes through the API; lazily generated bodies carry no `content_hash`;
//! access tokens never expire on their own ([`FakeDropbox::expire_access_tokens`] does it).
//!
//! # Routes
//!
//! `users/get_current_account`, `users/get_account`, `check/user`, `check/app`;
//! `files/list_folder` (+ `/continue`, `/get_latest_cursor`, `/longpoll`),
//! `files/get_metadata`, `files/download`, `files/export`, `files/search_v2`,
//! `files/search/continue_v2`; `sharing/list_received_files` (+ `/continue`),
//! `sharing/get_shared_link_metadata`, `sharing/get_shared_link_file`,
//! `sharing/list_file_members` (+ `/continue`, `/batch`), `sharing/list_folder_members`
//! (+ `/continue`), `sharing/get_folder_metadata`; `team/get_info`,
//! `team/token/get_authenticated_admin`, `team/members/list_v2` (+ `/list/continue_v2`, and the
//! v1 pair), `team/groups/list` (+ `/continue`), `team/groups/members/list` (+ `/continue`),
//! `team/team_folder/list` (+ `/continue`).

mod content;
mod files;
mod http;
mod sharing;
mod state;
mod team;
mod tree;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::Context as _;

pub use state::{Access, Account, Entry, Group, Member, Principal, ReceivedFile};
pub use tree::Tree;

use crate::faults::FaultPlan;
use crate::server::FakeServer;
use http::Shared;
use state::{Body, NsKind, State, TEAM_ROOT_NS, TokenKind};

/// A running fake Dropbox; stops when dropped.
pub struct FakeDropbox {
    server: FakeServer,
    shared: Arc<Shared>,
    faults: FaultPlan,
}

impl FakeDropbox {
    /// Builds the state for `tree` and serves it on `127.0.0.1:<ephemeral port>`.
    pub async fn start(tree: Tree) -> anyhow::Result<FakeDropbox> {
        let salt = http::random_token(12);
        let state = tokio::task::spawn_blocking(move || tree::build(&tree, salt))
            .await
            .context("building the fake Dropbox tree")??;
        let shared = Arc::new(Shared {
            state: std::sync::Mutex::new(state),
            changed: tokio::sync::Notify::new(),
            app_key: "fakedbxappkey01".into(),
            app_secret: "fakedbxsecret01".into(),
            refresh_token: "fake-dbx-refresh-user-7Qm2kX9pLwA".into(),
            team_refresh_token: "fake-dbx-refresh-team-3Vn8rT1cZeB".into(),
            auth_code: "fake-dbx-auth-code".into(),
        });
        let faults = FaultPlan::new();
        let server = FakeServer::start(http::router(shared.clone(), faults.clone())).await?;
        Ok(FakeDropbox {
            server,
            shared,
            faults,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Runs a mutation and wakes long-pollers.
    fn mutate<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.shared.changed.notify_waiters();
        out
    }

    // ----- endpoints and credentials -------------------------------------------------------

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.server.url()
    }

    /// `<base>/oauth2/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.server.url())
    }

    /// `<base>/oauth2/authorize`: consents at once (see `server::authorize_response`).
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth2/authorize", self.server.url())
    }

    /// `<base>/2/`: prefix of every RPC and content route.
    pub fn api_url(&self) -> String {
        format!("{}/2/", self.server.url())
    }

    /// The app key (`client_id`).
    pub fn app_key(&self) -> &str {
        &self.shared.app_key
    }

    /// The app secret (`client_secret`).
    pub fn app_secret(&self) -> &str {
        &self.shared.app_secret
    }

    /// A refresh token for the admin's own account (user-linked tokens).
    pub fn refresh_token(&self) -> &str {
        &self.shared.refresh_token
    }

    /// A refresh token for the team (team-linked tokens: team routes, and user routes with
    /// `Dropbox-API-Select-User`).
    pub fn team_refresh_token(&self) -> &str {
        &self.shared.team_refresh_token
    }

    /// An authorization code that `grant_type=authorization_code` accepts (any number of times);
    /// the answer also carries [`FakeDropbox::refresh_token`].
    pub fn authorization_code(&self) -> &str {
        &self.shared.auth_code
    }

    /// The scripted faults applied in front of every route (and the request log).
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// How many access tokens `/oauth2/token` has granted.
    pub fn token_grants(&self) -> usize {
        self.lock().grants
    }

    /// Expires every access token granted so far: they now get 401 `expired_access_token`.
    pub fn expire_access_tokens(&self) {
        let mut s = self.lock();
        let tokens: Vec<_> = s.tokens.drain().collect();
        s.expired.extend(tokens);
    }

    /// Whether the refresh tokens work (`false` makes the token endpoint answer
    /// `invalid_grant`).
    pub fn set_refresh_tokens_valid(&self, valid: bool) {
        self.lock().refresh_valid = valid;
    }

    /// Grants an access token directly (without a token request; not counted).
    pub fn issue_access_token(&self, team: bool) -> String {
        let kind = if team {
            TokenKind::Team
        } else {
            TokenKind::User
        };
        let token = format!(
            "sl.{}.{}",
            if team { "t" } else { "u" },
            http::random_token(140)
        );
        self.lock().tokens.insert(token.clone(), kind);
        token
    }

    /// Invalidates every cursor handed out so far: `list_folder/continue` answers 409 `reset`,
    /// other continuations `invalid_cursor`.
    pub fn reset_cursors(&self) {
        self.lock().epoch += 1;
    }

    // ----- identities ----------------------------------------------------------------------

    /// The admin (Alex Doe), whose home the test paths and user tokens refer to.
    pub fn admin(&self) -> Account {
        let s = self.lock();
        s.accounts
            .get(s.admin_index())
            .cloned()
            .unwrap_or_else(|| Account {
                account_id: String::new(),
                team_member_id: None,
                email: String::new(),
                given_name: String::new(),
                surname: String::new(),
                display_name: String::new(),
                is_admin: true,
                status: String::new(),
                joined_on: String::new(),
                home_namespace_id: None,
                company: None,
            })
    }

    /// Every account: team members first, then external accounts.
    pub fn accounts(&self) -> Vec<Account> {
        self.lock().accounts.clone()
    }

    /// The account with this e-mail address.
    pub fn account_by_email(&self, email: &str) -> Option<Account> {
        self.lock()
            .accounts
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
            .cloned()
    }

    /// The team's groups.
    pub fn groups(&self) -> Vec<Group> {
        self.lock().groups.clone()
    }

    /// The ids of the groups `account_id` belongs to (handy for expected access lists).
    pub fn groups_of(&self, account_id: &str) -> Vec<String> {
        self.lock().groups_of(account_id)
    }

    /// The team space root namespace (`root_info.root_namespace_id`).
    pub fn root_namespace_id(&self) -> String {
        TEAM_ROOT_NS.to_string()
    }

    /// The admin's home namespace (`root_info.home_namespace_id`).
    pub fn home_namespace_id(&self) -> String {
        self.admin().home_namespace_id.unwrap_or_default()
    }

    /// The namespace (= `shared_folder_id` = `team_folder_id`) of a team folder by name.
    pub fn team_folder_namespace_id(&self, name: &str) -> Option<String> {
        self.lock()
            .namespaces
            .iter()
            .find(|(_, n)| n.kind == NsKind::TeamFolder && n.name.eq_ignore_ascii_case(name))
            .map(|(ns, _)| ns.clone())
    }

    /// Adds an active team member with an empty home folder.
    pub fn add_team_member(&self, given_name: &str, surname: &str, email: &str) -> Account {
        self.mutate(|s| {
            let i = s.accounts.len();
            let ns = s.new_ns();
            let display_name = format!("{given_name} {surname}");
            let account = Account {
                account_id: tree::account_id(i),
                team_member_id: Some(format!(
                    "dbmid:AA{}",
                    content::base62(content::mix(i as u64, 0x7EA3), 41)
                )),
                email: email.to_string(),
                given_name: given_name.to_string(),
                surname: surname.to_string(),
                display_name: display_name.clone(),
                is_admin: false,
                status: "active".into(),
                joined_on: content::rfc3339(s.clock),
                home_namespace_id: Some(ns.clone()),
                company: None,
            };
            s.accounts.push(account.clone());
            let key = format!("/{}", display_name.to_lowercase());
            s.mount(
                &ns,
                NsKind::Home(i),
                &key,
                &format!("/{display_name}"),
                &display_name,
            );
            account
        })
    }

    /// Adds an account outside the team (a possible sharer or share recipient).
    pub fn add_external_account(
        &self,
        given_name: &str,
        surname: &str,
        email: &str,
        company: &str,
    ) -> Account {
        self.mutate(|s| {
            let i = s.accounts.len();
            let account = Account {
                account_id: tree::account_id(i),
                team_member_id: None,
                email: email.to_string(),
                given_name: given_name.to_string(),
                surname: surname.to_string(),
                display_name: format!("{given_name} {surname}"),
                is_admin: false,
                status: "active".into(),
                joined_on: content::rfc3339(s.clock),
                home_namespace_id: None,
                company: Some(company.to_string()),
            };
            s.accounts.push(account.clone());
            account
        })
    }

    /// Marks a team member `removed` (hidden from `team/members/list_v2` unless
    /// `include_removed`).
    pub fn remove_team_member(&self, account_id: &str) -> anyhow::Result<()> {
        self.mutate(|s| {
            let i = s
                .account_index(account_id)
                .with_context(|| format!("no account {account_id}"))?;
            if let Some(a) = s.accounts.get_mut(i) {
                a.status = "removed".into();
            }
            Ok(())
        })
    }

    /// Creates a group with these member account ids; returns its `group_id`.
    pub fn add_group(&self, name: &str, account_ids: &[&str]) -> String {
        self.mutate(|s| {
            let id = tree::group_id(s.groups.len() + 100);
            s.groups.push(Group {
                group_id: id.clone(),
                name: name.to_string(),
                members: account_ids.iter().map(|a| a.to_string()).collect(),
            });
            id
        })
    }

    /// Replaces a group's members.
    pub fn set_group_members(&self, group_id: &str, account_ids: &[&str]) -> anyhow::Result<()> {
        self.mutate(|s| {
            let g = s
                .groups
                .iter_mut()
                .find(|g| g.group_id == group_id)
                .with_context(|| format!("no group {group_id}"))?;
            g.members = account_ids.iter().map(|a| a.to_string()).collect();
            Ok(())
        })
    }

    // ----- content -------------------------------------------------------------------------

    fn entry_at(s: &State, key: &str) -> anyhow::Result<Entry> {
        let node = s.nodes.get(key).context("entry vanished")?;
        let view = Self::view_for_key(s, key).context("no view for entry")?;
        Ok(s.entry(&view, key, node))
    }

    /// The admin's home view when `key` is inside it, else the team root view.
    fn view_for_key(s: &State, key: &str) -> Option<state::View> {
        let admin = s.admin_index();
        let home = s.home_view(admin)?;
        if s.visible(&home, key) {
            Some(home)
        } else {
            s.namespace_view(admin, TEAM_ROOT_NS)
        }
    }

    /// Adds a file with these bytes (parents are created). Errors if the path exists.
    pub fn add_file(&self, path: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<Entry> {
        let bytes = bytes.into();
        self.mutate(|s| {
            let size = bytes.len() as u64;
            let key = s.add_file(path, Body::Bytes(Arc::new(bytes)), size, None, true)?;
            Self::entry_at(s, &key)
        })
    }

    /// Adds a file of `size` bytes whose content is generated from its name when downloaded
    /// (never stored): use it for files above 10 MiB.
    pub fn add_generated_file(&self, path: &str, size: u64) -> anyhow::Result<Entry> {
        self.mutate(|s| {
            let name = path.rsplit('/').next().unwrap_or_default();
            let body = Body::Generated {
                seed: content::mix(s.next_id, size),
                flavor: content::Flavor::for_name(name),
            };
            let key = s.add_file(path, body, size, None, true)?;
            Self::entry_at(s, &key)
        })
    }

    /// Replaces a file's bytes: new `rev`, `size` and modification times.
    pub fn edit_file(&self, path: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<Entry> {
        let bytes = bytes.into();
        self.mutate(|s| {
            let key = s.edit_file(path, bytes)?;
            Self::entry_at(s, &key)
        })
    }

    /// Adds a folder (and missing parents); returns the existing folder if there is one.
    pub fn add_folder(&self, path: &str) -> anyhow::Result<Entry> {
        self.mutate(|s| {
            s.tick();
            let key = s.add_folder(path, true)?;
            Self::entry_at(s, &key)
        })
    }

    /// Moves or renames a file or folder (with its subtree); ids and revs are kept.
    pub fn move_entry(&self, from: &str, to: &str) -> anyhow::Result<Entry> {
        self.mutate(|s| {
            s.tick();
            let key = s.move_entry(from, to)?;
            Self::entry_at(s, &key)
        })
    }

    /// Like [`FakeDropbox::move_entry`], but the change log reports the new entries before the
    /// old path's deletion (Dropbox does not promise an order, and may split them across pages).
    pub fn move_entry_deletion_last(&self, from: &str, to: &str) -> anyhow::Result<Entry> {
        self.mutate(|s| {
            s.tick();
            let key = s.move_entry_ordered(from, to, true)?;
            Self::entry_at(s, &key)
        })
    }

    /// Deletes a file or folder (with its subtree).
    pub fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.mutate(|s| s.delete(path))
    }

    /// Replaces whatever is at `path` (a folder with its subtree, or a file) by a new file with
    /// a new id, reported as Dropbox may report it: only the new entry, no `deleted` one.
    pub fn replace_with_file(
        &self,
        path: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> anyhow::Result<Entry> {
        self.mutate(|s| s.delete_logged(path, false))?;
        self.add_file(path, bytes)
    }

    /// Replaces whatever is at `path` by a new, empty folder, reported only as the new entry.
    pub fn replace_with_folder(&self, path: &str) -> anyhow::Result<Entry> {
        self.mutate(|s| s.delete_logged(path, false))?;
        self.add_folder(path)
    }

    /// The current entry at a path.
    pub fn entry(&self, path: &str) -> Option<Entry> {
        let s = self.lock();
        let key = s.test_key(path).ok()?;
        Self::entry_at(&s, &key).ok()
    }

    /// The bytes `files/download` would return (the markdown for Paper docs).
    pub fn file_bytes(&self, path: &str) -> Option<Vec<u8>> {
        let (body, size, name) = {
            let s = self.lock();
            let key = s.test_key(path).ok()?;
            let node = s.nodes.get(&key)?;
            let f = node.file()?;
            (f.body.clone(), f.size, node.name.clone())
        };
        let bytes = body.materialise(size, &name);
        Some(Arc::try_unwrap(bytes).unwrap_or_else(|b| (*b).clone()))
    }

    /// Every file and folder in the admin's home folder — what a recursive `list_folder` of
    /// `""` without `Dropbox-API-Path-Root` returns — in path order.
    pub fn entries(&self) -> Vec<Entry> {
        let s = self.lock();
        match s.home_view(s.admin_index()) {
            Some(view) => s.entries(&view),
            None => Vec::new(),
        }
    }

    /// Every entry the admin sees with the path root set to namespace `ns` (e.g. the team
    /// root: team folders plus `/Alex Doe/…`; or a team folder), paths relative to it.
    pub fn entries_in(&self, ns: &str) -> Vec<Entry> {
        let s = self.lock();
        match s.namespace_view(s.admin_index(), ns) {
            Some(view) => s.entries(&view),
            None => Vec::new(),
        }
    }

    /// Number of changes logged since start.
    pub fn change_count(&self) -> usize {
        self.lock().log.len()
    }

    /// The fake clock (RFC 3339); the next mutation is stamped a minute later.
    pub fn now(&self) -> String {
        content::rfc3339(self.lock().clock)
    }

    // ----- sharing -------------------------------------------------------------------------

    /// Makes a folder a shared folder (owned by its namespace's owner); returns its
    /// `shared_folder_id`. Idempotent.
    pub fn share_folder(&self, path: &str) -> anyhow::Result<String> {
        self.mutate(|s| {
            s.tick();
            s.share_folder(path, true)
        })
    }

    /// Grants `member` access to a shared or team folder.
    pub fn add_folder_member(&self, shared_folder_id: &str, member: Member) -> anyhow::Result<()> {
        self.mutate(|s| {
            let list = s
                .folder_members
                .get_mut(shared_folder_id)
                .with_context(|| format!("{shared_folder_id} is not a shared folder"))?;
            list.retain(|m| m.principal != member.principal);
            list.push(member);
            Ok(())
        })
    }

    /// Revokes a principal's access to a shared or team folder.
    pub fn remove_folder_member(
        &self,
        shared_folder_id: &str,
        principal: &Principal,
    ) -> anyhow::Result<()> {
        self.mutate(|s| {
            let list = s
                .folder_members
                .get_mut(shared_folder_id)
                .with_context(|| format!("{shared_folder_id} is not a shared folder"))?;
            list.retain(|m| m.principal != *principal);
            Ok(())
        })
    }

    /// Shares a single file with `member`.
    pub fn add_file_member(&self, path: &str, member: Member) -> anyhow::Result<()> {
        self.mutate(|s| {
            let key = s.test_key(path)?;
            let id = s
                .nodes
                .get(&key)
                .filter(|n| n.file().is_some())
                .map(|n| n.id.clone())
                .with_context(|| format!("{path:?} is not a file"))?;
            let list = s.file_members.entry(id).or_default();
            list.retain(|m| m.principal != member.principal);
            list.push(member);
            Ok(())
        })
    }

    /// Stops sharing a single file with a principal.
    pub fn remove_file_member(&self, path: &str, principal: &Principal) -> anyhow::Result<()> {
        self.mutate(|s| {
            let key = s.test_key(path)?;
            let id = s
                .nodes
                .get(&key)
                .map(|n| n.id.clone())
                .with_context(|| format!("{path:?} does not exist"))?;
            if let Some(list) = s.file_members.get_mut(&id) {
                list.retain(|m| m.principal != *principal);
            }
            Ok(())
        })
    }

    /// Members of a file as `sharing/list_file_members` reports them:
    /// `(member, is_inherited)`.
    pub fn file_members(&self, path: &str, include_inherited: bool) -> Vec<(Member, bool)> {
        let s = self.lock();
        let Ok(key) = s.test_key(path) else {
            return Vec::new();
        };
        match s.nodes.get(&key) {
            Some(node) => s.file_member_list(&key, node, include_inherited),
            None => Vec::new(),
        }
    }

    /// Members of a shared or team folder.
    pub fn folder_members(&self, shared_folder_id: &str) -> Vec<Member> {
        self.lock().folder_member_list(shared_folder_id)
    }

    /// Adds a file shared with the admin by `owner_account_id` (an external account such as
    /// the one `account_by_email("jordan@globex.example")` returns).
    pub fn add_received_file(
        &self,
        name: &str,
        bytes: impl Into<Vec<u8>>,
        owner_account_id: &str,
    ) -> anyhow::Result<ReceivedFile> {
        let bytes = bytes.into();
        self.mutate(|s| {
            let owner = s
                .account_index(owner_account_id)
                .with_context(|| format!("no account {owner_account_id}"))?;
            let size = bytes.len() as u64;
            let now = s.tick();
            let f = tree::new_received(s, name, Body::Bytes(Arc::new(bytes)), size, owner, now);
            s.received.push(f.clone());
            Ok(f)
        })
    }

    /// Shares the file at `path` (one the admin also sees in the listing, e.g. in a team
    /// folder) with the admin individually, as `owner_account_id`: it is then both listed and a
    /// received file with the same id — Dropbox reports such files in both places.
    pub fn share_listed_file(
        &self,
        path: &str,
        owner_account_id: &str,
    ) -> anyhow::Result<ReceivedFile> {
        self.mutate(|s| {
            let owner = s
                .account_index(owner_account_id)
                .with_context(|| format!("no account {owner_account_id}"))?;
            let key = s.test_key(path)?;
            let (id, name, body, size) = {
                let node = s.nodes.get(&key).with_context(|| format!("no {path:?}"))?;
                let file = node
                    .file()
                    .with_context(|| format!("{path:?} is not a file"))?;
                (
                    node.id.clone(),
                    node.name.clone(),
                    file.body.clone(),
                    file.size,
                )
            };
            let now = s.tick();
            let mut f = tree::new_received(s, &name, body, size, owner, now);
            f.id = id;
            s.received.push(f.clone());
            Ok(f)
        })
    }

    /// Like [`FakeDropbox::add_received_file`], with a body shared with other files (benches).
    pub fn add_received_shared_file(
        &self,
        name: &str,
        bytes: Arc<Vec<u8>>,
        owner_account_id: &str,
    ) -> anyhow::Result<ReceivedFile> {
        self.mutate(|s| {
            let owner = s
                .account_index(owner_account_id)
                .with_context(|| format!("no account {owner_account_id}"))?;
            let size = bytes.len() as u64;
            let now = s.tick();
            let f = tree::new_received(s, name, Body::Bytes(bytes), size, owner, now);
            s.received.push(f.clone());
            Ok(f)
        })
    }

    /// Un-shares a received file.
    pub fn remove_received_file(&self, id: &str) -> anyhow::Result<()> {
        self.mutate(|s| {
            let before = s.received.len();
            s.received.retain(|f| f.id != id);
            anyhow::ensure!(s.received.len() < before, "no received file {id}");
            Ok(())
        })
    }

    /// Files shared with the admin, in `list_received_files` order.
    pub fn received_files(&self) -> Vec<ReceivedFile> {
        self.lock().received.clone()
    }

    /// The bytes of a received file.
    pub fn received_file_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let f = self.lock().received.iter().find(|f| f.id == id).cloned()?;
        let bytes = f.body.materialise(f.size, &f.name);
        Some(Arc::try_unwrap(bytes).unwrap_or_else(|b| (*b).clone()))
    }
}
