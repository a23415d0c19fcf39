//! `sharing/*` endpoints: files shared with the user (received files and their shared links)
//! and the member lists used for document-level security.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{ApiError, Ctx, Payload, Reply, decode_cursor, encode_cursor};
use super::state::{Lookup, Member, NsKind, ReceivedFile, State};

fn invalid_cursor() -> ApiError {
    ApiError::tag("invalid_cursor")
}

// ----- received files ------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct OffsetCursor {
    m: usize,
    off: usize,
    lim: usize,
}

const RECEIVED_CURSOR: &str = "rf";

/// Received files belong to the admin (the account the fake's files were shared with).
fn received_for(state: &State, member: usize) -> &[ReceivedFile] {
    if member == state.admin_index() {
        &state.received
    } else {
        &[]
    }
}

fn received_json(state: &State, f: &ReceivedFile) -> Value {
    let owner = state
        .account_index(&f.owner_account_id)
        .and_then(|i| state.accounts.get(i));
    let mut v = json!({
        "access_type": {".tag": f.access.tag()},
        "id": f.id,
        "name": f.name,
        "owner_display_names": owner.map(|o| vec![o.display_name.clone()]).unwrap_or_default(),
        "policy": {
            "acl_update_policy": {".tag": "owner"},
            "shared_link_policy": {".tag": "anyone"},
            "member_policy": {".tag": "anyone"},
            "resolved_member_policy": {".tag": "anyone"},
            "viewer_info_policy": {".tag": "enabled"},
        },
        "preview_url": f.preview_url,
        "time_invited": f.time_invited,
        "permissions": [],
    });
    if let (Some(company), Some(obj)) = (owner.and_then(|o| o.company.as_ref()), v.as_object_mut())
    {
        obj.insert(
            "owner_team".into(),
            json!({"id": format!("dbtid:{}", company.to_lowercase()), "name": company}),
        );
    }
    v
}

fn received_page(state: &State, mut c: OffsetCursor) -> Value {
    let all = received_for(state, c.m);
    let entries: Vec<Value> = all
        .iter()
        .skip(c.off)
        .take(c.lim)
        .map(|f| received_json(state, f))
        .collect();
    c.off = c.off.saturating_add(c.lim);
    let mut out = json!({ "entries": entries });
    // The cursor is only present while more entries remain.
    if c.off < all.len()
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert(
            "cursor".into(),
            json!(encode_cursor(state, RECEIVED_CURSOR, c)),
        );
    }
    out
}

pub(crate) fn list_received_files(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let lim = ctx.args.uint_or("limit", 100, 1, 300)? as usize;
    ctx.args.opt_list("actions")?;
    let c = OffsetCursor {
        m: ctx.member,
        off: 0,
        lim,
    };
    Ok(Reply::Json(received_page(state, c)))
}

pub(crate) fn list_received_files_continue(
    state: &mut State,
    ctx: &Ctx,
) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: OffsetCursor =
        decode_cursor(state, RECEIVED_CURSOR, cursor).ok_or_else(invalid_cursor)?;
    Ok(Reply::Json(received_page(state, c)))
}

/// The received file a shared link points at (`/scl/fi/<token>/…` or `/s/<token>/…`).
fn by_link<'s>(state: &'s State, member: usize, url: &str) -> Option<&'s ReceivedFile> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let token = path
        .split_once("/scl/fi/")
        .or_else(|| path.split_once("/s/"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))?;
    received_for(state, member)
        .iter()
        .find(|f| !token.is_empty() && f.link_token == token)
}

fn link_metadata(f: &ReceivedFile) -> Value {
    json!({
        ".tag": "file",
        "url": f.preview_url,
        "id": f.id,
        "name": f.name,
        "link_permissions": {
            "can_revoke": false,
            "resolved_visibility": {".tag": "public"},
            "revoke_failure_reason": {".tag": "owner_only"},
            "can_allow_download": false,
            "can_disallow_download": false,
            "allow_comments": true,
            "allow_download": true,
            "effective_audience": {".tag": "public"},
            "link_access_level": {".tag": "viewer"},
        },
        "client_modified": f.client_modified,
        "server_modified": f.server_modified,
        "rev": f.rev,
        "size": f.size,
    })
}

pub(crate) fn get_shared_link_metadata(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let url = ctx.args.req_str("url")?;
    ctx.args.opt_str("path")?;
    ctx.args.opt_str("link_password")?;
    let f =
        by_link(state, ctx.member, url).ok_or_else(|| ApiError::tag("shared_link_not_found"))?;
    Ok(Reply::Json(link_metadata(f)))
}

pub(crate) fn get_shared_link_file(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let url = ctx.args.req_str("url")?;
    if ctx.args.opt_str("path")?.is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::tag("shared_link_is_directory"));
    }
    let f =
        by_link(state, ctx.member, url).ok_or_else(|| ApiError::tag("shared_link_not_found"))?;
    Ok(Reply::Content {
        result: link_metadata(f),
        body: Payload::from_body(&f.body, f.size, &f.name),
    })
}

// ----- file members --------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct FileMembersCursor {
    m: usize,
    id: String,
    inh: bool,
    off: usize,
    lim: usize,
}

const FILE_MEMBERS_CURSOR: &str = "fm";

/// The file behind `file` (an id or a path), or the `SharingFileAccessError` tag.
fn file_key(state: &State, ctx: &Ctx, file: &str) -> Result<String, &'static str> {
    let key = match state.resolve(&ctx.view, file) {
        Ok(k) => k,
        Err(Lookup::Malformed(_)) | Err(Lookup::NotFound) => return Err("invalid_file"),
    };
    match state.nodes.get(&key) {
        None => Err("invalid_file"),
        Some(n) if n.file().is_none() => Err("is_folder"),
        Some(_) => Ok(key),
    }
}

fn file_members_page(state: &State, mut c: FileMembersCursor) -> Result<Value, ApiError> {
    let key = state.by_id.get(&c.id).ok_or_else(invalid_cursor)?;
    let node = state.nodes.get(key).ok_or_else(invalid_cursor)?;
    let all = state.file_member_list(key, node, c.inh);
    let page: Vec<(Member, bool)> = all.iter().skip(c.off).take(c.lim).cloned().collect();
    let (users, groups, invitees) = state.members_json(&page, c.m, true);
    c.off = c.off.saturating_add(c.lim);
    let mut out = json!({"users": users, "groups": groups, "invitees": invitees});
    if c.off < all.len()
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert(
            "cursor".into(),
            json!(encode_cursor(state, FILE_MEMBERS_CURSOR, c)),
        );
    }
    Ok(out)
}

pub(crate) fn list_file_members(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let file = ctx.args.req_str("file")?;
    let inh = ctx.args.bool_or("include_inherited", true)?;
    let lim = ctx.args.uint_or("limit", 100, 1, 300)? as usize;
    ctx.args.opt_list("actions")?;
    let key = file_key(state, ctx, file).map_err(|tag| ApiError::nested("access_error", tag))?;
    let id = state
        .nodes
        .get(&key)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let c = FileMembersCursor {
        m: ctx.member,
        id,
        inh,
        off: 0,
        lim,
    };
    Ok(Reply::Json(file_members_page(state, c)?))
}

pub(crate) fn list_file_members_continue(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: FileMembersCursor =
        decode_cursor(state, FILE_MEMBERS_CURSOR, cursor).ok_or_else(invalid_cursor)?;
    Ok(Reply::Json(file_members_page(state, c)?))
}

pub(crate) fn list_file_members_batch(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let files = ctx.args.str_list("files")?;
    if ctx.args.opt_list("files")?.is_none() {
        return Err(ApiError::bad(
            "request body: missing required field 'files'",
        ));
    }
    if files.len() > 100 {
        return Err(ApiError::bad(
            "request body: files: list has more than 100 items",
        ));
    }
    let lim = ctx.args.uint_or("limit", 10, 0, 20)? as usize;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let result = match file_key(state, ctx, file) {
            Err(tag) => json!({".tag": "access_error", "access_error": {".tag": tag}}),
            Ok(key) => match state.nodes.get(&key) {
                None => json!({".tag": "access_error", "access_error": {".tag": "invalid_file"}}),
                Some(node) => {
                    // The batch route never includes inherited members.
                    let all = state.file_member_list(&key, node, false);
                    let page: Vec<(Member, bool)> = all.iter().take(lim).cloned().collect();
                    let (users, groups, invitees) = state.members_json(&page, ctx.member, true);
                    json!({
                        ".tag": "result",
                        "members": {"users": users, "groups": groups, "invitees": invitees},
                        "member_count": all.len(),
                    })
                }
            },
        };
        out.push(json!({"file": file, "result": result}));
    }
    Ok(Reply::Json(Value::Array(out)))
}

// ----- folder members ------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct FolderMembersCursor {
    m: usize,
    ns: String,
    off: usize,
    lim: usize,
}

const FOLDER_MEMBERS_CURSOR: &str = "dm";

/// Checks that `ns` is a shared or team folder the member may inspect.
fn shared_folder(state: &State, member: usize, ns: &str) -> Result<(), ApiError> {
    let Some(info) = state.namespaces.get(ns) else {
        return Err(ApiError::nested("access_error", "invalid_id"));
    };
    if !matches!(info.kind, NsKind::Shared | NsKind::TeamFolder) {
        return Err(ApiError::nested("access_error", "invalid_id"));
    }
    let is_admin = state.accounts.get(member).is_some_and(|a| a.is_admin);
    if !is_admin && !state.can_access_ns(member, ns) {
        return Err(ApiError::nested("access_error", "not_a_member"));
    }
    Ok(())
}

fn folder_members_page(state: &State, mut c: FolderMembersCursor) -> Value {
    let all: Vec<(Member, bool)> = state
        .folder_member_list(&c.ns)
        .into_iter()
        .map(|m| (m, false))
        .collect();
    let page: Vec<(Member, bool)> = all.iter().skip(c.off).take(c.lim).cloned().collect();
    let (users, groups, invitees) = state.members_json(&page, c.m, false);
    c.off = c.off.saturating_add(c.lim);
    let mut out = json!({"users": users, "groups": groups, "invitees": invitees});
    if c.off < all.len()
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert(
            "cursor".into(),
            json!(encode_cursor(state, FOLDER_MEMBERS_CURSOR, c)),
        );
    }
    out
}

pub(crate) fn list_folder_members(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let ns = ctx.args.req_str("shared_folder_id")?;
    let lim = ctx.args.uint_or("limit", 1000, 1, 1000)? as usize;
    ctx.args.opt_list("actions")?;
    shared_folder(state, ctx.member, ns)?;
    let c = FolderMembersCursor {
        m: ctx.member,
        ns: ns.to_string(),
        off: 0,
        lim,
    };
    Ok(Reply::Json(folder_members_page(state, c)))
}

pub(crate) fn list_folder_members_continue(
    state: &mut State,
    ctx: &Ctx,
) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: FolderMembersCursor =
        decode_cursor(state, FOLDER_MEMBERS_CURSOR, cursor).ok_or_else(invalid_cursor)?;
    if !state.namespaces.contains_key(&c.ns) {
        return Err(invalid_cursor());
    }
    Ok(Reply::Json(folder_members_page(state, c)))
}

pub(crate) fn get_folder_metadata(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let ns = ctx.args.req_str("shared_folder_id")?;
    ctx.args.opt_list("actions")?;
    shared_folder(state, ctx.member, ns)?;
    let Some(info) = state.namespaces.get(ns) else {
        return Err(ApiError::nested("access_error", "invalid_id"));
    };
    let node = state.nodes.get(&info.mount);
    let access = state
        .folder_access(ctx.member, ns)
        .map(|a| a.tag())
        .unwrap_or("editor");
    let is_team = info.kind == NsKind::TeamFolder;
    let mut v = json!({
        "access_type": {".tag": access},
        "is_inside_team_folder": state.parent_shared_folder(&info.mount).is_some_and(|p| {
            state.namespaces.get(&p).is_some_and(|n| n.kind == NsKind::TeamFolder)
        }),
        "is_team_folder": is_team,
        "name": info.name,
        "policy": {
            "acl_update_policy": {".tag": "editors"},
            "shared_link_policy": {".tag": "anyone"},
            "member_policy": {".tag": "anyone"},
            "resolved_member_policy": {".tag": "anyone"},
        },
        "preview_url": format!("https://www.dropbox.com/scl/fo/{ns}/shared"),
        "shared_folder_id": ns,
        "time_invited": "2024-01-15T10:00:00Z",
        "permissions": [],
        "access_inheritance": {".tag": "inherit"},
        "owner_team": {"id": super::state::TEAM_ID, "name": super::state::TEAM_NAME},
    });
    if let (Some(node), Some(obj)) = (node, v.as_object_mut()) {
        obj.insert("folder_id".into(), json!(node.id));
        if let Some((lower, display)) = state.rel(&ctx.view, &info.mount, &node.display) {
            obj.insert("path_lower".into(), json!(lower));
            obj.insert("path_display".into(), json!(display));
        }
        if let Some(parent) = state.parent_shared_folder(&info.mount) {
            obj.insert("parent_shared_folder_id".into(), json!(parent));
        }
    }
    Ok(Reply::Json(v))
}
