//! `team/*` endpoints (team-linked tokens only): members, groups, team folders and the
//! authenticated admin.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{ApiError, Ctx, Reply, decode_cursor, encode_cursor};
use super::state::{NsKind, State, TEAM_ID, TEAM_NAME};

#[derive(Serialize, Deserialize)]
struct TeamCursor {
    off: usize,
    lim: usize,
    /// include_removed (members) or the group id (group members).
    #[serde(default)]
    rm: bool,
    #[serde(default)]
    group: Option<String>,
}

fn invalid_cursor() -> ApiError {
    ApiError::tag("invalid_cursor")
}

/// `{<key>: page, cursor, has_more}` — team listings always return a cursor.
fn page(state: &State, kind: &str, key: &str, all: Vec<Value>, mut c: TeamCursor) -> Value {
    let items: Vec<Value> = all.iter().skip(c.off).take(c.lim).cloned().collect();
    c.off = c.off.saturating_add(c.lim);
    let has_more = c.off < all.len();
    let mut m = serde_json::Map::new();
    m.insert(key.into(), Value::Array(items));
    m.insert("cursor".into(), json!(encode_cursor(state, kind, c)));
    m.insert("has_more".into(), json!(has_more));
    Value::Object(m)
}

pub(crate) fn get_info(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    ctx.args.none()?;
    let members = state
        .accounts
        .iter()
        .filter(|a| a.team_member_id.is_some() && a.status != "removed")
        .count();
    Ok(Reply::Json(json!({
        "name": TEAM_NAME,
        "team_id": TEAM_ID,
        "num_licensed_users": 10,
        "num_provisioned_users": members,
        "num_used_licenses": members,
        "policies": {
            "sharing": {
                "shared_folder_member_policy": {".tag": "anyone"},
                "shared_folder_join_policy": {".tag": "from_anyone"},
                "shared_link_create_policy": {".tag": "default_public"},
            },
            "emm_state": {".tag": "disabled"},
            "office_addins": {".tag": "disabled"},
        },
    })))
}

pub(crate) fn get_authenticated_admin(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    ctx.args.none()?;
    let admin = state.admin_index();
    Ok(Reply::Json(
        json!({ "admin_profile": state.member_profile(admin) }),
    ))
}

fn member_indices(state: &State, include_removed: bool) -> Vec<usize> {
    state
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.team_member_id.is_some() && (include_removed || a.status != "removed"))
        .map(|(i, _)| i)
        .collect()
}

fn members_v2(state: &State, include_removed: bool) -> Vec<Value> {
    member_indices(state, include_removed)
        .into_iter()
        .map(|i| {
            let is_admin = state.accounts.get(i).is_some_and(|a| a.is_admin);
            let roles = if is_admin {
                json!([{"role_id": "pid_dbtmr:admin", "name": "Team", "description": "Can manage everything in the team"}])
            } else {
                json!([])
            };
            json!({"profile": state.member_profile(i), "roles": roles})
        })
        .collect()
}

fn members_v1(state: &State, include_removed: bool) -> Vec<Value> {
    member_indices(state, include_removed)
        .into_iter()
        .map(|i| {
            let role = if state.accounts.get(i).is_some_and(|a| a.is_admin) {
                "team_admin"
            } else {
                "member_only"
            };
            json!({"profile": state.member_profile(i), "role": {".tag": role}})
        })
        .collect()
}

const MEMBERS_V2: &str = "m2";
const MEMBERS_V1: &str = "m1";

pub(crate) fn members_list_v2(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let lim = ctx.args.uint_or("limit", 1000, 1, 1000)? as usize;
    let rm = ctx.args.bool_or("include_removed", false)?;
    let all = members_v2(state, rm);
    let c = TeamCursor {
        off: 0,
        lim,
        rm,
        group: None,
    };
    Ok(Reply::Json(page(state, MEMBERS_V2, "members", all, c)))
}

pub(crate) fn members_list_continue_v2(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: TeamCursor = decode_cursor(state, MEMBERS_V2, cursor).ok_or_else(invalid_cursor)?;
    let all = members_v2(state, c.rm);
    Ok(Reply::Json(page(state, MEMBERS_V2, "members", all, c)))
}

pub(crate) fn members_list_v1(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let lim = ctx.args.uint_or("limit", 1000, 1, 1000)? as usize;
    let rm = ctx.args.bool_or("include_removed", false)?;
    let all = members_v1(state, rm);
    let c = TeamCursor {
        off: 0,
        lim,
        rm,
        group: None,
    };
    Ok(Reply::Json(page(state, MEMBERS_V1, "members", all, c)))
}

pub(crate) fn members_list_continue_v1(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: TeamCursor = decode_cursor(state, MEMBERS_V1, cursor).ok_or_else(invalid_cursor)?;
    let all = members_v1(state, c.rm);
    Ok(Reply::Json(page(state, MEMBERS_V1, "members", all, c)))
}

fn groups(state: &State) -> Vec<Value> {
    state
        .groups
        .iter()
        .map(|g| {
            json!({
                "group_name": g.name,
                "group_id": g.group_id,
                "group_management_type": {".tag": "company_managed"},
                "member_count": g.members.len(),
            })
        })
        .collect()
}

const GROUPS: &str = "gl";

pub(crate) fn groups_list(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let lim = ctx.args.uint_or("limit", 1000, 1, 1000)? as usize;
    let all = groups(state);
    let c = TeamCursor {
        off: 0,
        lim,
        rm: false,
        group: None,
    };
    Ok(Reply::Json(page(state, GROUPS, "groups", all, c)))
}

pub(crate) fn groups_list_continue(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: TeamCursor = decode_cursor(state, GROUPS, cursor).ok_or_else(invalid_cursor)?;
    let all = groups(state);
    Ok(Reply::Json(page(state, GROUPS, "groups", all, c)))
}

/// `MemberProfile` (a subset of `TeamMemberProfile`) with `access_type` for each member.
fn group_members(state: &State, group_id: &str) -> Option<Vec<Value>> {
    let group = state.groups.iter().find(|g| g.group_id == group_id)?;
    Some(
        group
            .members
            .iter()
            .filter_map(|id| state.account_index(id))
            .map(|i| {
                let mut profile = state.member_profile(i);
                if let Some(obj) = profile.as_object_mut() {
                    obj.remove("groups");
                    obj.remove("member_folder_id");
                    obj.remove("root_folder_id");
                }
                json!({"profile": profile, "access_type": {".tag": "member"}})
            })
            .collect(),
    )
}

const GROUP_MEMBERS: &str = "gm";

pub(crate) fn group_members_list(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let group = ctx.args.sub("group")?;
    let group_id = match ctx.args.opt_tag("group")? {
        Some("group_id") => group.req_str("group_id")?.to_string(),
        Some("group_external_id") => {
            return Err(ApiError::tag("group_not_found"));
        }
        _ => {
            return Err(ApiError::bad(
                "request body: missing required field 'group'",
            ));
        }
    };
    let lim = ctx.args.uint_or("limit", 1000, 1, 1000)? as usize;
    let all = group_members(state, &group_id).ok_or_else(|| ApiError::tag("group_not_found"))?;
    let c = TeamCursor {
        off: 0,
        lim,
        rm: false,
        group: Some(group_id),
    };
    Ok(Reply::Json(page(state, GROUP_MEMBERS, "members", all, c)))
}

pub(crate) fn group_members_list_continue(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: TeamCursor = decode_cursor(state, GROUP_MEMBERS, cursor).ok_or_else(invalid_cursor)?;
    let all = c
        .group
        .as_deref()
        .and_then(|g| group_members(state, g))
        .ok_or_else(invalid_cursor)?;
    Ok(Reply::Json(page(state, GROUP_MEMBERS, "members", all, c)))
}

fn team_folders(state: &State) -> Vec<Value> {
    state
        .namespaces
        .iter()
        .filter(|(_, n)| n.kind == NsKind::TeamFolder)
        .map(|(ns, n)| {
            json!({
                "team_folder_id": ns,
                "name": n.name,
                "status": {".tag": "active"},
                "is_team_shared_dropbox": false,
                "sync_setting": {".tag": "default"},
                "content_sync_settings": [],
            })
        })
        .collect()
}

const TEAM_FOLDERS: &str = "tf";

pub(crate) fn team_folder_list(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let lim = ctx.args.uint_or("limit", 1000, 1, 1000)? as usize;
    let all = team_folders(state);
    let c = TeamCursor {
        off: 0,
        lim,
        rm: false,
        group: None,
    };
    Ok(Reply::Json(page(
        state,
        TEAM_FOLDERS,
        "team_folders",
        all,
        c,
    )))
}

pub(crate) fn team_folder_list_continue(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: TeamCursor = decode_cursor(state, TEAM_FOLDERS, cursor).ok_or_else(invalid_cursor)?;
    let all = team_folders(state);
    Ok(Reply::Json(page(
        state,
        TEAM_FOLDERS,
        "team_folders",
        all,
        c,
    )))
}
