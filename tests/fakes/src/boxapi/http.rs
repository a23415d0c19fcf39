//! Box's REST surface on top of [`State`]: OAuth, users, folders, files, downloads, events,
//! collaborations and groups.
//!
//! Every handler parses its inputs by hand so bad client input gets a Box-shaped error
//! (`{"type": "error", "status": 400, "code": "bad_request", "context_info": {...}}`) instead of
//! a panic or an axum plain-text rejection.

// Handlers return `Result<_, Response>` so `?` can bail out with a finished Box error; one
// response per request, so boxing it to shrink the `Err` variant would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::model::{ChildKey, Kind, State, TokenGrant, UserKind};
use super::render::{Fields, Overrides};
use super::util::{hex, mix64, rfc3339, unhex};
use crate::faults::FaultPlan;

/// Shared between the handlers and [`super::FakeBox`].
pub(crate) struct Shared {
    state: Mutex<State>,
    /// `http://127.0.0.1:PORT`, set once the listener is bound; used for download redirects.
    pub(crate) base_url: OnceLock<String>,
    dl_secret: u64,
    request_counter: AtomicU64,
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        let dl_secret = mix64(state.position ^ state.next_version_id ^ 0xD0_0D);
        Self {
            state: Mutex::new(state),
            base_url: OnceLock::new(),
            dl_secret: mix64(dl_secret ^ std::process::id() as u64),
            request_counter: AtomicU64::new(1),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a test thread panicked; the state is still consistent
        // enough for the remaining assertions.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        let mut id = format!("{:016x}", mix64(n ^ self.dl_secret));
        id.truncate(14);
        id
    }

    fn dl_signature(&self, id: u64, version: u32) -> u64 {
        mix64(self.dl_secret ^ mix64(id) ^ u64::from(version))
    }
}

type App = Arc<Shared>;
type Params = HashMap<String, String>;
type Reply = Result<Response, Response>;
type QueryIn = Result<Query<Vec<(String, String)>>, QueryRejection>;
type PathIn = Result<Path<String>, PathRejection>;

/// The router, with `faults` wrapped around every route.
pub(crate) fn router(shared: Arc<Shared>, faults: FaultPlan) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/authorize", get(authorize))
        .route("/2.0/users/me", get(users_me))
        .route("/2.0/users", get(list_users))
        .route("/2.0/users/{id}", get(get_user))
        .route("/2.0/users/{id}/memberships", get(user_memberships))
        .route("/2.0/groups", get(list_groups))
        .route("/2.0/groups/{id}/memberships", get(group_memberships))
        .route("/2.0/folders/{id}", get(get_folder))
        .route("/2.0/folders/{id}/items", get(folder_items))
        .route(
            "/2.0/folders/{id}/collaborations",
            get(folder_collaborations),
        )
        .route("/2.0/folders/{id}/trash", get(trashed_folder))
        .route("/2.0/files/{id}", get(get_file))
        .route("/2.0/files/{id}/content", get(file_content))
        .route("/2.0/files/{id}/collaborations", get(file_collaborations))
        .route("/2.0/files/{id}/trash", get(trashed_file))
        .route("/2.0/events", get(events))
        .route("/dl/{token}", get(download))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(
            faults,
            FaultPlan::middleware,
        ))
}

// ---------------------------------------------------------------------------------------------
// Responses

fn ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

fn box_error(
    shared: &Shared,
    status: StatusCode,
    code: &str,
    message: &str,
    context_info: Option<Value>,
) -> Response {
    let mut body = json!({
        "type": "error",
        "status": status.as_u16(),
        "code": code,
        "help_url": "http://developers.box.com/docs/#errors",
        "message": message,
        "request_id": shared.request_id(),
    });
    if let (Some(context), Some(map)) = (context_info, body.as_object_mut()) {
        map.insert("context_info".into(), context);
    }
    (status, axum::Json(body)).into_response()
}

fn bad_param(shared: &Shared, name: &str, value: &str, why: &str) -> Response {
    box_error(
        shared,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "Bad Request",
        Some(json!({"errors": [{
            "reason": "invalid_parameter",
            "name": name,
            "message": format!("Invalid value '{value}'. {why}"),
        }]})),
    )
}

fn not_found(shared: &Shared, what: &str) -> Response {
    box_error(
        shared,
        StatusCode::NOT_FOUND,
        "not_found",
        "Not Found",
        Some(json!({"errors": [{
            "reason": "invalid_parameter",
            "name": "item",
            "message": format!("Invalid value '{what}'. 'item' with value '{what}' not found"),
        }]})),
    )
}

fn forbidden(shared: &Shared) -> Response {
    box_error(
        shared,
        StatusCode::FORBIDDEN,
        "access_denied_insufficient_permissions",
        "Access denied - insufficient permission",
        None,
    )
}

/// Box answers 401 with an empty body and the reason in `WWW-Authenticate`.
fn unauthorized(token_given: bool) -> Response {
    let challenge = if token_given {
        r#"Bearer realm="Service", error="invalid_token", error_description="The access token provided is invalid.""#
    } else {
        r#"Bearer realm="Service""#
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "",
    )
        .into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn finish(reply: Reply) -> Response {
    reply.unwrap_or_else(|err| err)
}

// ---------------------------------------------------------------------------------------------
// Request parsing

fn params(shared: &Shared, query: QueryIn) -> Result<Params, Response> {
    match query {
        Ok(Query(pairs)) => Ok(pairs.into_iter().collect()),
        Err(rejection) => Err(bad_param(
            shared,
            "query",
            &rejection.body_text(),
            "Malformed query string.",
        )),
    }
}

fn path_id(shared: &Shared, path: PathIn) -> Result<String, Response> {
    path.map(|Path(id)| id)
        .map_err(|rejection| bad_param(shared, "id", &rejection.body_text(), "Malformed path."))
}

/// `limit`: default `default`, values above `max` are clamped (Box does the same).
fn limit(shared: &Shared, p: &Params, default: usize, max: usize) -> Result<usize, Response> {
    match p.get("limit") {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok((n as usize).min(max)),
            _ => Err(bad_param(
                shared,
                "limit",
                raw,
                "The limit must be a positive integer.",
            )),
        },
    }
}

/// `offset`: at most 10 000, as Box documents for offset-based pagination.
fn offset(shared: &Shared, p: &Params) -> Result<usize, Response> {
    match p.get("offset") {
        None => Ok(0),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if (0..=10_000).contains(&n) => Ok(n as usize),
            Ok(n) if n > 10_000 => Err(bad_param(
                shared,
                "offset",
                raw,
                "The offset must not exceed the maximum offset of 10000",
            )),
            _ => Err(bad_param(
                shared,
                "offset",
                raw,
                "The offset must be a non-negative integer.",
            )),
        },
    }
}

/// The authenticated principal of a request.
#[derive(Clone, Copy, Debug)]
struct Caller {
    user: u32,
    /// Enterprise service-account token without `As-User`: may call admin endpoints.
    enterprise: bool,
}

fn authenticate(shared: &Shared, st: &State, headers: &HeaderMap) -> Result<Caller, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(false));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(grant) = token.and_then(|t| st.access_tokens.get(t)).copied() else {
        return Err(unauthorized(true));
    };
    let TokenGrant { user, enterprise } = grant;
    match headers.get("as-user") {
        None => Ok(Caller { user, enterprise }),
        Some(raw) => {
            if !enterprise {
                return Err(forbidden(shared));
            }
            let wanted = raw.to_str().unwrap_or_default().trim();
            match st.user_index(wanted).filter(|&u| {
                st.users
                    .get(u as usize)
                    .is_some_and(|u| u.kind == UserKind::Managed)
            }) {
                Some(user) => Ok(Caller {
                    user,
                    enterprise: false,
                }),
                None => Err(bad_param(
                    shared,
                    "As-User",
                    wanted,
                    "No managed user of this enterprise has this id.",
                )),
            }
        }
    }
}

/// Finds an item the caller may see; 404 `not_found` otherwise, 404 `trashed` for trash.
fn lookup(
    shared: &Shared,
    st: &State,
    viewer: u32,
    external: &str,
    kind: Kind,
) -> Result<u64, Response> {
    let prefix = match kind {
        Kind::File => "f_",
        Kind::Folder => "d_",
    };
    let missing = || not_found(shared, &format!("{prefix}{external}"));
    let id = st.resolve(viewer, external).ok_or_else(missing)?;
    let node = st.nodes.get(&id).ok_or_else(missing)?;
    if node.kind != kind {
        return Err(missing());
    }
    let view = st.view(viewer, id).ok_or_else(missing)?;
    if view.trashed {
        return Err(box_error(
            shared,
            StatusCode::NOT_FOUND,
            "trashed",
            "Item is trashed",
            None,
        ));
    }
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// OAuth

/// `GET /oauth2/authorize` (`https://account.box.com/api/oauth2/authorize`): consent at once.
async fn authorize(Extract(shared): Extract<App>, query: QueryIn) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let (client_id, code) = {
        let st = shared.lock();
        (st.client_id.clone(), st.auth_code.clone())
    };
    crate::server::authorize_response(&query, &client_id, &code)
}

async fn token(
    Extract(shared): Extract<App>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Ok(Form(pairs)) = form else {
        return oauth_error(
            "invalid_request",
            "Invalid request body: expected application/x-www-form-urlencoded",
        );
    };
    let p: Params = pairs.into_iter().collect();
    let mut st = shared.lock();
    let reject = |st: &mut State, error: &str, description: &str| {
        st.grants.rejected += 1;
        oauth_error(error, description)
    };
    let grant_type = p.get("grant_type").map(String::as_str).unwrap_or_default();
    if !matches!(
        grant_type,
        "refresh_token" | "client_credentials" | "authorization_code"
    ) {
        return reject(
            &mut st,
            "unsupported_grant_type",
            "Invalid grant_type parameter or parameter missing",
        );
    }
    let client_ok = p.get("client_id") == Some(&st.client_id)
        && p.get("client_secret") == Some(&st.client_secret);
    if !client_ok {
        return reject(
            &mut st,
            "invalid_client",
            "The client credentials are not valid",
        );
    }
    match grant_type {
        "refresh_token" => {
            let presented = p.get("refresh_token");
            if presented.is_none() || presented != st.refresh_token.as_ref() {
                return reject(&mut st, "invalid_grant", "Invalid refresh token");
            }
            // Rotation: the presented token dies the moment the new one is issued.
            let access = st.new_token("a");
            let refresh = st.new_token("r");
            st.refresh_token = Some(refresh.clone());
            let user = st.refresh_user;
            st.access_tokens.insert(
                access.clone(),
                TokenGrant {
                    user,
                    enterprise: false,
                },
            );
            st.grants.refresh_token += 1;
            ok(json!({
                "access_token": access,
                "expires_in": 3600,
                "restricted_to": [],
                "refresh_token": refresh,
                "token_type": "bearer",
            }))
        }
        "authorization_code" => {
            if p.get("code") != Some(&st.auth_code) {
                return reject(
                    &mut st,
                    "invalid_grant",
                    "Auth code doesn't exist or is invalid for the client",
                );
            }
            // A code is good once; the grant makes a new refresh token for the primary user.
            st.auth_code = st.new_token("code");
            let access = st.new_token("a");
            let refresh = st.new_token("r");
            st.refresh_token = Some(refresh.clone());
            st.refresh_user = 0;
            st.access_tokens.insert(
                access.clone(),
                TokenGrant {
                    user: 0,
                    enterprise: false,
                },
            );
            st.grants.authorization_code += 1;
            ok(json!({
                "access_token": access,
                "expires_in": 3600,
                "restricted_to": [],
                "refresh_token": refresh,
                "token_type": "bearer",
            }))
        }
        "client_credentials" => {
            let subject_type = p.get("box_subject_type").map(String::as_str);
            let subject_id = p
                .get("box_subject_id")
                .map(String::as_str)
                .unwrap_or_default();
            let grant = match subject_type {
                Some("enterprise") if subject_id == st.enterprise_id => Some(TokenGrant {
                    user: st.service_account(),
                    enterprise: true,
                }),
                Some("user") => st
                    .user_index(subject_id)
                    .filter(|&u| {
                        st.users
                            .get(u as usize)
                            .is_some_and(|u| u.kind == UserKind::Managed)
                    })
                    .map(|user| TokenGrant {
                        user,
                        enterprise: false,
                    }),
                _ => None,
            };
            let Some(grant) = grant else {
                return reject(&mut st, "invalid_grant", "Grant credentials are invalid");
            };
            let access = st.new_token("c");
            st.access_tokens.insert(access.clone(), grant);
            st.grants.client_credentials += 1;
            ok(json!({
                "access_token": access,
                "expires_in": 3600,
                "restricted_to": [],
                "token_type": "bearer",
            }))
        }
        _ => reject(
            &mut st,
            "invalid_grant",
            "Auth code doesn't exist or is invalid for the client",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Users and groups

async fn users_me(Extract(shared): Extract<App>, headers: HeaderMap, query: QueryIn) -> Response {
    finish((|| -> Reply {
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        let fields = Fields::parse(p.get("fields").map(String::as_str), Fields::Standard);
        Ok(ok(st.render_user(caller.user, &fields)))
    })())
}

async fn list_users(Extract(shared): Extract<App>, headers: HeaderMap, query: QueryIn) -> Response {
    finish((|| -> Reply {
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        if !caller.enterprise {
            return Err(forbidden(&shared));
        }
        let limit = limit(&shared, &p, 100, 1000)?;
        let user_type = p.get("user_type").map(String::as_str).unwrap_or("all");
        if !matches!(user_type, "all" | "managed" | "external") {
            return Err(bad_param(
                &shared,
                "user_type",
                user_type,
                "Use all, managed or external.",
            ));
        }
        let term = p
            .get("filter_term")
            .map(|t| t.to_lowercase())
            .unwrap_or_default();
        let fields = Fields::parse(p.get("fields").map(String::as_str), Fields::Standard);
        // This enterprise has no external users; app users (the service account) are not listed.
        let matching: Vec<u32> = if user_type == "external" {
            Vec::new()
        } else {
            st.managed_users()
                .filter(|&u| {
                    st.users.get(u as usize).is_some_and(|user| {
                        user.name.to_lowercase().starts_with(&term)
                            || user.login.to_lowercase().starts_with(&term)
                    })
                })
                .collect()
        };
        // Marker pagination (`usemarker=true`) as Box documents it: no `total_count`, a
        // `next_marker` while more users follow.
        let usemarker = p
            .get("usemarker")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let marker = p.get("marker").filter(|m| !m.is_empty());
        if usemarker || marker.is_some() {
            let start = match marker {
                None => 0,
                Some(m) => unhex(m)
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.strip_prefix("users:").and_then(|n| n.parse().ok()))
                    .ok_or_else(|| bad_param(&shared, "marker", m, "The marker is not valid."))?,
            };
            let entries: Vec<Value> = matching
                .iter()
                .skip(start)
                .take(limit)
                .map(|&u| st.render_user(u, &fields))
                .collect();
            let end = start + entries.len();
            let next_marker = if end < matching.len() {
                json!(hex(format!("users:{end}").as_bytes()))
            } else {
                Value::Null
            };
            return Ok(ok(json!({
                "entries": entries,
                "limit": limit,
                "next_marker": next_marker,
            })));
        }
        let offset = offset(&shared, &p)?;
        let entries: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&u| st.render_user(u, &fields))
            .collect();
        Ok(ok(json!({
            "total_count": matching.len(),
            "entries": entries,
            "offset": offset,
            "limit": limit,
        })))
    })())
}

fn user_param(shared: &Shared, st: &State, caller: Caller, raw: &str) -> Result<u32, Response> {
    let user = if raw == "me" {
        Some(caller.user)
    } else {
        st.user_index(raw)
    };
    let Some(user) = user else {
        return Err(box_error(
            shared,
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
            None,
        ));
    };
    if !caller.enterprise && user != caller.user {
        return Err(forbidden(shared));
    }
    Ok(user)
}

async fn get_user(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(&shared, path)?;
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        let user = user_param(&shared, &st, caller, &raw)?;
        let fields = Fields::parse(p.get("fields").map(String::as_str), Fields::Standard);
        Ok(ok(st.render_user(user, &fields)))
    })())
}

fn membership(st: &State, group: u32, user: u32) -> Value {
    let created = st
        .groups
        .get(group as usize)
        .map(|g| g.created_at)
        .unwrap_or_default();
    let group_id = st
        .groups
        .get(group as usize)
        .map(|g| g.id.as_str())
        .unwrap_or_default();
    json!({
        "type": "group_membership",
        "id": format!("{group_id}{user:03}"),
        "user": st.user_mini(user),
        "group": st.group_mini(group),
        "role": "member",
        "created_at": rfc3339(created),
        "modified_at": rfc3339(created),
    })
}

fn paged(shared: &Shared, p: &Params, all: Vec<Value>) -> Reply {
    let limit = limit(shared, p, 100, 1000)?;
    let offset = offset(shared, p)?;
    let total = all.len();
    let entries: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Ok(ok(
        json!({"total_count": total, "entries": entries, "offset": offset, "limit": limit}),
    ))
}

async fn user_memberships(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(&shared, path)?;
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        let user = user_param(&shared, &st, caller, &raw)?;
        let all = (0..st.groups.len() as u32)
            .filter(|&g| {
                st.groups
                    .get(g as usize)
                    .is_some_and(|group| group.members.contains(&user))
            })
            .map(|g| membership(&st, g, user))
            .collect();
        paged(&shared, &p, all)
    })())
}

async fn list_groups(
    Extract(shared): Extract<App>,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    finish((|| -> Reply {
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        if !caller.enterprise {
            return Err(forbidden(&shared));
        }
        let all = (0..st.groups.len() as u32)
            .map(|g| st.render_group(g))
            .collect();
        paged(&shared, &p, all)
    })())
}

async fn group_memberships(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(&shared, path)?;
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        let Some(group) = st.group_index(&raw) else {
            return Err(box_error(
                &shared,
                StatusCode::NOT_FOUND,
                "not_found",
                "Not Found",
                None,
            ));
        };
        let members = st
            .groups
            .get(group as usize)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        if !caller.enterprise && !members.contains(&caller.user) {
            return Err(forbidden(&shared));
        }
        let all = members.iter().map(|&u| membership(&st, group, u)).collect();
        paged(&shared, &p, all)
    })())
}

// ---------------------------------------------------------------------------------------------
// Items

async fn get_folder(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    get_item(&shared, path, &headers, query, Kind::Folder)
}

async fn get_file(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    get_item(&shared, path, &headers, query, Kind::File)
}

fn get_item(
    shared: &Shared,
    path: PathIn,
    headers: &HeaderMap,
    query: QueryIn,
    kind: Kind,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(shared, path)?;
        let p = params(shared, query)?;
        let st = shared.lock();
        let caller = authenticate(shared, &st, headers)?;
        let id = lookup(shared, &st, caller.user, &raw, kind)?;
        let fields = Fields::parse(p.get("fields").map(String::as_str), Fields::Standard);
        st.render_item(caller.user, id, &fields, Overrides::default())
            .map(ok)
            .ok_or_else(|| not_found(shared, &raw))
    })())
}

async fn trashed_folder(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    trashed_item(&shared, path, &headers, query, Kind::Folder)
}

async fn trashed_file(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    trashed_item(&shared, path, &headers, query, Kind::File)
}

/// `GET /files/{id}/trash`: only items that were trashed themselves (not via a parent).
fn trashed_item(
    shared: &Shared,
    path: PathIn,
    headers: &HeaderMap,
    query: QueryIn,
    kind: Kind,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(shared, path)?;
        let p = params(shared, query)?;
        let st = shared.lock();
        let caller = authenticate(shared, &st, headers)?;
        let missing = || not_found(shared, &raw);
        let id = st.resolve(caller.user, &raw).ok_or_else(missing)?;
        let node = st.nodes.get(&id).ok_or_else(missing)?;
        if node.kind != kind || node.trashed_at.is_none() || st.view(caller.user, id).is_none() {
            return Err(missing());
        }
        let fields = Fields::parse(p.get("fields").map(String::as_str), Fields::Standard);
        st.render_item(caller.user, id, &fields, Overrides::default())
            .map(ok)
            .ok_or_else(missing)
    })())
}

const MAX_MARKER_LEN: usize = 2048;

fn encode_marker(key: &ChildKey) -> String {
    let mut bytes = vec![key.rank];
    bytes.extend_from_slice(&key.id.to_be_bytes());
    bytes.extend_from_slice(key.lname.as_bytes());
    hex(&bytes)
}

fn decode_marker(marker: &str) -> Option<ChildKey> {
    if marker.len() > MAX_MARKER_LEN {
        return None;
    }
    let bytes = unhex(marker)?;
    let (&rank, rest) = bytes.split_first()?;
    let id_bytes: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    let lname = String::from_utf8(rest.get(8..)?.to_vec()).ok()?;
    (rank <= 1).then_some(ChildKey {
        rank,
        lname,
        id: u64::from_be_bytes(id_bytes),
    })
}

async fn folder_items(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(&shared, path)?;
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        let folder = lookup(&shared, &st, caller.user, &raw, Kind::Folder)?;
        let fields = Fields::parse(p.get("fields").map(String::as_str), Fields::Mini);
        let limit = limit(&shared, &p, 100, 1000)?;
        let render = |keys: &[ChildKey]| -> Vec<Value> {
            keys.iter()
                .filter_map(|k| st.render_item(caller.user, k.id, &fields, Overrides::default()))
                .collect()
        };
        let default_order =
            json!([{"by": "type", "direction": "ASC"}, {"by": "name", "direction": "ASC"}]);
        let usemarker = p
            .get("usemarker")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let marker = p.get("marker").filter(|m| !m.is_empty());
        if usemarker || marker.is_some() {
            let keys = st.visible_children(caller.user, folder);
            let start = match marker {
                None => 0,
                Some(m) => {
                    let key = decode_marker(m).ok_or_else(|| {
                        bad_param(&shared, "marker", m, "The marker is not valid.")
                    })?;
                    keys.partition_point(|k| *k <= key)
                }
            };
            let page = &keys[start..(start + limit).min(keys.len())];
            let next_marker = match page.last() {
                Some(last) if start + page.len() < keys.len() => json!(encode_marker(last)),
                _ => Value::Null,
            };
            return Ok(ok(json!({
                "entries": render(page),
                "limit": limit,
                "next_marker": next_marker,
                "prev_marker": null,
                "order": default_order,
            })));
        }
        let offset = offset(&shared, &p)?;
        let sort = p.get("sort").map(String::as_str);
        if let Some(sort) = sort
            && !matches!(sort, "id" | "name" | "date" | "size")
        {
            return Err(bad_param(
                &shared,
                "sort",
                sort,
                "Use id, name, date or size.",
            ));
        }
        let descending = match p.get("direction").map(|d| d.to_ascii_uppercase()) {
            None => false,
            Some(d) if d == "ASC" => false,
            Some(d) if d == "DESC" => true,
            Some(d) => return Err(bad_param(&shared, "direction", &d, "Use ASC or DESC.")),
        };
        let mut keys = st.visible_children(caller.user, folder);
        let by = sort.unwrap_or("name");
        if sort.is_some() || descending {
            let node_of = |k: &ChildKey| st.nodes.get(&k.id);
            keys.sort_by(|a, b| {
                let second = match by {
                    "id" => a.id.cmp(&b.id),
                    "date" => node_of(a)
                        .map(|n| n.modified_at)
                        .cmp(&node_of(b).map(|n| n.modified_at)),
                    "size" => node_of(a).map(|n| n.size).cmp(&node_of(b).map(|n| n.size)),
                    _ => a.lname.cmp(&b.lname),
                };
                let second = if descending { second.reverse() } else { second };
                a.rank.cmp(&b.rank).then(second).then(a.id.cmp(&b.id))
            });
        }
        let total = keys.len();
        let page: Vec<ChildKey> = keys.into_iter().skip(offset).take(limit).collect();
        Ok(ok(json!({
            "total_count": total,
            "entries": render(&page),
            "offset": offset,
            "limit": limit,
            "order": [
                {"by": "type", "direction": "ASC"},
                {"by": by, "direction": if descending { "DESC" } else { "ASC" }},
            ],
        })))
    })())
}

async fn folder_collaborations(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    collaborations(&shared, path, &headers, query, Kind::Folder)
}

async fn file_collaborations(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    collaborations(&shared, path, &headers, query, Kind::File)
}

/// Direct collaborations on the item only; inherited ones live on the ancestors, like Box.
fn collaborations(
    shared: &Shared,
    path: PathIn,
    headers: &HeaderMap,
    query: QueryIn,
    kind: Kind,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(shared, path)?;
        let p = params(shared, query)?;
        let st = shared.lock();
        let caller = authenticate(shared, &st, headers)?;
        let id = lookup(shared, &st, caller.user, &raw, kind)?;
        let limit = limit(shared, &p, 100, 1000)?;
        let all: Vec<Value> = st
            .collabs
            .iter()
            .filter(|c| c.item == id)
            .map(|c| st.render_collab(c))
            .collect();
        let start = match p.get("marker").filter(|m| !m.is_empty()) {
            None => 0,
            Some(m) => m
                .parse::<usize>()
                .map_err(|_| bad_param(shared, "marker", m, "The marker is not valid."))?,
        };
        let total = all.len();
        let page: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
        let next = if start + page.len() < total {
            json!((start + page.len()).to_string())
        } else {
            Value::Null
        };
        Ok(ok(json!({
            "total_count": total,
            "entries": page,
            "limit": limit,
            "next_marker": next,
            "prev_marker": null,
        })))
    })())
}

// ---------------------------------------------------------------------------------------------
// Downloads

/// `GET /files/{id}/content` answers `302 Found` to a short-lived, unauthenticated download URL
/// on this server (Box redirects to dl.boxcloud.com the same way).
async fn file_content(
    Extract(shared): Extract<App>,
    path: PathIn,
    headers: HeaderMap,
    query: QueryIn,
) -> Response {
    finish((|| -> Reply {
        let raw = path_id(&shared, path)?;
        let _ = params(&shared, query)?;
        let mut st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        let id = lookup(&shared, &st, caller.user, &raw, Kind::File)?;
        let version = st.nodes.get(&id).map(|n| n.version).unwrap_or_default();
        st.record_download(id, caller.user);
        drop(st);
        let base = match shared.base_url.get() {
            Some(base) => base.clone(),
            None => format!(
                "http://{}",
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("127.0.0.1")
            ),
        };
        let token = format!("{id}-{version}-{:016x}", shared.dl_signature(id, version));
        Ok((
            StatusCode::FOUND,
            [(header::LOCATION, format!("{base}/dl/{token}"))],
            "",
        )
            .into_response())
    })())
}

async fn download(Extract(shared): Extract<App>, path: PathIn) -> Response {
    let missing = |shared: &Shared| {
        box_error(
            shared,
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
            None,
        )
    };
    let Ok(Path(token)) = path else {
        return missing(&shared);
    };
    let mut parts = token.splitn(3, '-');
    let parsed = (|| {
        let id = parts.next()?.parse::<u64>().ok()?;
        let version = parts.next()?.parse::<u32>().ok()?;
        let signature = u64::from_str_radix(parts.next()?, 16).ok()?;
        (signature == shared.dl_signature(id, version)).then_some((id, version))
    })();
    let Some((id, version)) = parsed else {
        return missing(&shared);
    };
    let content = {
        let st = shared.lock();
        match st.nodes.get(&id) {
            Some(node) if node.version == version && !st.effectively_trashed(id) => {
                node.content.clone()
            }
            _ => return missing(&shared),
        }
    };
    // Big bodies take a while to generate; keep that off the async workers.
    match tokio::task::spawn_blocking(move || content.bytes()).await {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        Err(_) => box_error(
            &shared,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "Internal Server Error",
            None,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Events

async fn events(Extract(shared): Extract<App>, headers: HeaderMap, query: QueryIn) -> Response {
    finish((|| -> Reply {
        let p = params(&shared, query)?;
        let st = shared.lock();
        let caller = authenticate(&shared, &st, &headers)?;
        let stream_type = p.get("stream_type").map(String::as_str).unwrap_or("all");
        let changes_only = match stream_type {
            "all" => false,
            "changes" | "sync" => true,
            "admin_logs" | "admin_logs_streaming" if !caller.enterprise => {
                return Err(forbidden(&shared));
            }
            other => {
                return Err(bad_param(
                    &shared,
                    "stream_type",
                    other,
                    "Use all, changes or sync (the enterprise stream is not implemented by this fake).",
                ));
            }
        };
        let limit = limit(&shared, &p, 100, 500)?;
        let current = st.position;
        let from = match p.get("stream_position").map(|s| s.trim()) {
            None | Some("") | Some("0") => 0,
            Some(s) if s.eq_ignore_ascii_case("now") => {
                return Ok(ok(
                    json!({"chunk_size": 0, "next_stream_position": current, "entries": []}),
                ));
            }
            Some(s) => s.parse::<u64>().map_err(|_| {
                bad_param(
                    &shared,
                    "stream_position",
                    s,
                    "Use a position from next_stream_position, 0 or now.",
                )
            })?,
        };
        let stream = st
            .streams
            .get(caller.user as usize)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let start = stream.partition_point(|e| e.position <= from);
        let mut entries = Vec::new();
        let mut next = from;
        let mut consumed_all = true;
        for event in &stream[start..] {
            if entries.len() == limit {
                consumed_all = false;
                break;
            }
            next = event.position;
            if changes_only && !event.changes {
                continue;
            }
            entries.push(event.json.as_ref().clone());
        }
        // Nothing left for this user: any later event gets a position above `current`.
        if consumed_all {
            next = current.max(from);
        }
        Ok(ok(json!({
            "chunk_size": entries.len(),
            "next_stream_position": next,
            "entries": entries,
        })))
    })())
}

// ---------------------------------------------------------------------------------------------
// Fallbacks

async fn unknown_route(Extract(shared): Extract<App>) -> Response {
    box_error(
        &shared,
        StatusCode::NOT_FOUND,
        "not_found",
        "Not Found",
        None,
    )
}

async fn method_not_allowed(Extract(shared): Extract<App>) -> Response {
    box_error(
        &shared,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
        None,
    )
}
