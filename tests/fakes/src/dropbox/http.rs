//! HTTP plumbing: the router, authentication, the `Dropbox-API-*` headers, argument parsing,
//! and Dropbox's error conventions.
//!
//! Dropbox answers malformed requests (bad JSON, missing fields, wrong `Content-Type`) with a
//! `400` and a plain-text explanation, authentication failures with a `401` JSON
//! `{"error_summary", "error": {".tag"}}`, endpoint-specific errors with a `409` and the same
//! JSON shape, and path-root errors with a `422`. The fake does the same, and never panics on
//! client input.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::content::{self, Flavor};
use super::state::{State, TEAM_ROOT_NS, TokenKind, View};
use super::{files, sharing, team};
use crate::faults::FaultPlan;

/// Credentials and state shared by the handlers and the test API.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Woken on every mutation (for `files/list_folder/longpoll`).
    pub changed: tokio::sync::Notify,
    pub app_key: String,
    pub app_secret: String,
    pub refresh_token: String,
    pub team_refresh_token: String,
    pub auth_code: String,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a test thread panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An error in Dropbox's wire conventions.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400, plain text (the route name is prefixed when rendered).
    BadRequest(String),
    /// 401 with this `.tag`.
    Unauthorized(&'static str),
    /// 409 with this error union.
    Endpoint(Value),
    /// 422 (`Dropbox-API-Path-Root` errors) with this error union.
    PathRoot(Value),
    /// 404, plain text.
    NotFound(String),
}

impl ApiError {
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    /// `{".tag": tag}`.
    pub(crate) fn tag(tag: &str) -> Self {
        ApiError::Endpoint(json!({ ".tag": tag }))
    }

    /// `{".tag": outer, outer: {".tag": inner}}`, e.g. `path/not_found`.
    pub(crate) fn nested(outer: &str, inner: &str) -> Self {
        let mut m = Map::new();
        m.insert(".tag".into(), json!(outer));
        m.insert(outer.into(), json!({ ".tag": inner }));
        ApiError::Endpoint(Value::Object(m))
    }

    pub(crate) fn path(inner: &str) -> Self {
        Self::nested("path", inner)
    }
}

/// `path/not_found/` from `{".tag": "path", "path": {".tag": "not_found"}}`.
pub(crate) fn error_summary(error: &Value) -> String {
    let mut summary = String::new();
    let mut cur = error;
    while let Some(tag) = cur.get(".tag").and_then(Value::as_str) {
        summary.push_str(tag);
        summary.push('/');
        match cur.get(tag) {
            Some(next) if next.is_object() => cur = next,
            _ => break,
        }
    }
    summary
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text_response(status: StatusCode, text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl ApiError {
    fn render(self, route: &str) -> Response {
        match self {
            ApiError::BadRequest(msg) => text_response(
                StatusCode::BAD_REQUEST,
                format!("Error in call to API function \"{route}\": {msg}"),
            ),
            ApiError::Unauthorized(tag) => json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error_summary": format!("{tag}/"), "error": {".tag": tag}}),
            ),
            ApiError::Endpoint(error) => json_response(
                StatusCode::CONFLICT,
                &json!({"error_summary": error_summary(&error), "error": error}),
            ),
            ApiError::PathRoot(error) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"error_summary": error_summary(&error), "error": error}),
            ),
            ApiError::NotFound(msg) => text_response(StatusCode::NOT_FOUND, msg),
        }
    }
}

/// Bytes of a download: stored, or generated after the state lock is released.
pub(crate) enum Payload {
    Bytes(Arc<Vec<u8>>),
    Generated {
        flavor: Flavor,
        seed: u64,
        size: u64,
        name: String,
    },
}

impl Payload {
    pub(crate) fn from_body(body: &super::state::Body, size: u64, name: &str) -> Payload {
        match body {
            super::state::Body::Bytes(b) => Payload::Bytes(b.clone()),
            super::state::Body::Generated { seed, flavor } => Payload::Generated {
                flavor: *flavor,
                seed: *seed,
                size,
                name: name.to_string(),
            },
        }
    }

    fn into_bytes(self) -> bytes::Bytes {
        match self {
            // A stored body is served without a copy (benches share one body between thousands
            // of files).
            Payload::Bytes(b) => bytes::Bytes::from_owner(SharedBody(b)),
            Payload::Generated {
                flavor,
                seed,
                size,
                name,
            } => content::generate(flavor, seed, size, &name).into(),
        }
    }
}

/// A stored body as a `Bytes` owner.
struct SharedBody(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBody {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// What a handler answers.
pub(crate) enum Reply {
    Json(Value),
    /// A content-download endpoint: `result` goes into `Dropbox-API-Result`.
    Content {
        result: Value,
        body: Payload,
    },
}

/// What a handler gets.
pub(crate) struct Ctx<'a> {
    pub args: Args<'a>,
    /// Index of the acting account.
    pub member: usize,
    /// The request's view (user endpoints; the admin's home for team endpoints).
    pub view: View,
}

/// Typed access to the JSON arguments, with Dropbox-style 400s.
#[derive(Clone, Copy)]
pub(crate) struct Args<'a> {
    value: &'a Value,
    field_prefix: &'a str,
}

static NULL: Value = Value::Null;

impl<'a> Args<'a> {
    pub(crate) fn new(value: &'a Value) -> Self {
        Args {
            value,
            field_prefix: "",
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        match self.value.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn check_object(&self) -> Result<(), ApiError> {
        if self.value.is_object() || self.value.is_null() {
            Ok(())
        } else {
            Err(ApiError::bad(format!(
                "request body: expected object, got {}",
                json_type(self.value)
            )))
        }
    }

    fn field_err(&self, name: &str, msg: &str) -> ApiError {
        ApiError::bad(format!("request body: {}{name}: {msg}", self.field_prefix))
    }

    pub(crate) fn req_str(&self, name: &str) -> Result<&'a str, ApiError> {
        self.check_object()?;
        match self.get(name) {
            None => Err(ApiError::bad(format!(
                "request body: missing required field '{}{name}'",
                self.field_prefix
            ))),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.field_err(name, &format!("expected string, got {}", json_type(v)))),
        }
    }

    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        self.check_object()?;
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.field_err(name, &format!("expected string, got {}", json_type(v)))),
        }
    }

    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        self.check_object()?;
        match self.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => {
                Err(self.field_err(name, &format!("expected boolean, got {}", json_type(v))))
            }
        }
    }

    /// An integer in `min..=max`, `default` when absent.
    pub(crate) fn uint_or(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ApiError> {
        self.check_object()?;
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(n),
                Some(n) if n < min => {
                    Err(self.field_err(name, &format!("{n} is not greater than or equal to {min}")))
                }
                Some(n) => {
                    Err(self.field_err(name, &format!("{n} is not less than or equal to {max}")))
                }
                None => {
                    Err(self.field_err(name, &format!("expected integer, got {}", json_type(v))))
                }
            },
        }
    }

    /// A union member: `"tag"` (void shorthand) or `{".tag": "tag", …}`.
    pub(crate) fn opt_tag(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        self.check_object()?;
        match self.get(name) {
            None => Ok(None),
            Some(v) => tag_of(v)
                .map(Some)
                .ok_or_else(|| self.field_err(name, "expected a union with '.tag'")),
        }
    }

    /// A nested struct (absent = all defaults).
    pub(crate) fn sub(&self, name: &'a str) -> Result<Args<'a>, ApiError> {
        self.check_object()?;
        match self.get(name) {
            None => Ok(Args {
                value: &NULL,
                field_prefix: name,
            }),
            Some(v) if v.is_object() => Ok(Args {
                value: v,
                field_prefix: name,
            }),
            Some(v) => Err(self.field_err(name, &format!("expected object, got {}", json_type(v)))),
        }
    }

    pub(crate) fn opt_list(&self, name: &str) -> Result<Option<&'a Vec<Value>>, ApiError> {
        self.check_object()?;
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(v) => Err(self.field_err(name, &format!("expected list, got {}", json_type(v)))),
        }
    }

    pub(crate) fn str_list(&self, name: &str) -> Result<Vec<&'a str>, ApiError> {
        let Some(items) = self.opt_list(name)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.field_err(name, "expected a list of strings"))
            })
            .collect()
    }

    pub(crate) fn tag_list(&self, name: &str) -> Result<Vec<&'a str>, ApiError> {
        let Some(items) = self.opt_list(name)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|v| tag_of(v).ok_or_else(|| self.field_err(name, "expected a list of unions")))
            .collect()
    }

    /// For endpoints without arguments: `null`, an empty body or `{}`.
    pub(crate) fn none(&self) -> Result<(), ApiError> {
        match self.value {
            Value::Null => Ok(()),
            Value::Object(m) if m.is_empty() => Ok(()),
            v => Err(ApiError::bad(format!(
                "request body: expected null, got {}",
                json_type(v)
            ))),
        }
    }
}

fn tag_of(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(m) => m.get(".tag").and_then(Value::as_str),
        _ => None,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

// ----- cursors -------------------------------------------------------------------------------

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    /// Kind of cursor (one kind per endpoint family).
    k: String,
    /// Server salt: refuse cursors minted by another fake.
    s: String,
    /// Epoch: `reset_cursors` invalidates older ones.
    e: u64,
    b: T,
}

/// An opaque cursor string for `body`.
pub(crate) fn encode_cursor<T: Serialize>(state: &State, kind: &str, body: T) -> String {
    let env = Envelope {
        k: kind.to_string(),
        s: state.salt.clone(),
        e: state.epoch,
        b: body,
    };
    let json = serde_json::to_vec(&env).unwrap_or_default();
    format!("AA{}", content::base64url(&json))
}

/// The body of a cursor minted by this server, of this kind, in the current epoch.
pub(crate) fn decode_cursor<T: DeserializeOwned>(
    state: &State,
    kind: &str,
    cursor: &str,
) -> Option<T> {
    let bytes = content::base64_decode(cursor.strip_prefix("AA")?)?;
    let env: Envelope<T> = serde_json::from_slice(&bytes).ok()?;
    (env.k == kind && env.s == state.salt && env.e == state.epoch).then_some(env.b)
}

// ----- routing ------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Rpc,
    Download,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AuthKind {
    /// A user endpoint: user token, or team token plus `Dropbox-API-Select-User`/`-Admin`.
    User,
    /// A team endpoint: team token.
    Team,
    /// App authentication (HTTP basic with key and secret).
    App,
}

type Handler = fn(&mut State, &Ctx) -> Result<Reply, ApiError>;

fn route(name: &str) -> Option<(Style, AuthKind, Handler)> {
    use AuthKind::*;
    use Style::*;
    let r: (Style, AuthKind, Handler) = match name {
        "users/get_current_account" => (Rpc, User, files::get_current_account),
        "users/get_account" => (Rpc, User, files::get_account),
        "check/user" => (Rpc, User, files::check),
        "check/app" => (Rpc, App, files::check),
        "files/list_folder" => (Rpc, User, files::list_folder),
        "files/list_folder/continue" => (Rpc, User, files::list_folder_continue),
        "files/list_folder/get_latest_cursor" => (Rpc, User, files::get_latest_cursor),
        "files/get_metadata" => (Rpc, User, files::get_metadata),
        "files/search_v2" => (Rpc, User, files::search_v2),
        "files/search/continue_v2" => (Rpc, User, files::search_continue_v2),
        "files/download" => (Download, User, files::download),
        "files/export" => (Download, User, files::export),
        "sharing/list_received_files" => (Rpc, User, sharing::list_received_files),
        "sharing/list_received_files/continue" => {
            (Rpc, User, sharing::list_received_files_continue)
        }
        "sharing/get_shared_link_metadata" => (Rpc, User, sharing::get_shared_link_metadata),
        "sharing/get_shared_link_file" => (Download, User, sharing::get_shared_link_file),
        "sharing/list_file_members" => (Rpc, User, sharing::list_file_members),
        "sharing/list_file_members/continue" => (Rpc, User, sharing::list_file_members_continue),
        "sharing/list_file_members/batch" => (Rpc, User, sharing::list_file_members_batch),
        "sharing/list_folder_members" => (Rpc, User, sharing::list_folder_members),
        "sharing/list_folder_members/continue" => {
            (Rpc, User, sharing::list_folder_members_continue)
        }
        "sharing/get_folder_metadata" => (Rpc, User, sharing::get_folder_metadata),
        "team/get_info" => (Rpc, Team, team::get_info),
        "team/token/get_authenticated_admin" => (Rpc, Team, team::get_authenticated_admin),
        "team/members/list_v2" => (Rpc, Team, team::members_list_v2),
        "team/members/list/continue_v2" => (Rpc, Team, team::members_list_continue_v2),
        "team/members/list" => (Rpc, Team, team::members_list_v1),
        "team/members/list/continue" => (Rpc, Team, team::members_list_continue_v1),
        "team/groups/list" => (Rpc, Team, team::groups_list),
        "team/groups/list/continue" => (Rpc, Team, team::groups_list_continue),
        "team/groups/members/list" => (Rpc, Team, team::group_members_list),
        "team/groups/members/list/continue" => (Rpc, Team, team::group_members_list_continue),
        "team/team_folder/list" => (Rpc, Team, team::team_folder_list),
        "team/team_folder/list/continue" => (Rpc, Team, team::team_folder_list_continue),
        _ => return None,
    };
    Some(r)
}

/// The whole fake: token endpoint, RPC and content endpoints, all behind the fault plan.
pub(crate) fn router(shared: Arc<Shared>, faults: FaultPlan) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/authorize", axum::routing::get(authorize))
        .route("/2/files/list_folder/longpoll", post(longpoll))
        .route("/2/{*route}", any(api))
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(
            faults,
            FaultPlan::middleware,
        ))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::trim)
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    content::parse_form(query?)
        .into_iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A random token: std's `RandomState` is seeded from the OS per process and per instance.
pub(crate) fn random_token(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.extend_from_slice(&h.finish().to_le_bytes());
    }
    let mut s = content::base64url(&out);
    s.truncate(len);
    s
}

/// `GET /oauth2/authorize` (`https://www.dropbox.com/oauth2/authorize`): consent at once.
async fn authorize(AxState(shared): AxState<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let query = content::parse_form(query.as_deref().unwrap_or(""));
    crate::server::authorize_response(&query, &shared.app_key, &shared.auth_code)
}

async fn token(
    AxState(shared): AxState<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = content::parse_form(query.as_deref().unwrap_or(""));
    params.extend(content::parse_form(&String::from_utf8_lossy(&body)));
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let oauth_error = |error: &str, description: Option<&str>| {
        let mut v = json!({ "error": error });
        if let (Some(d), Some(obj)) = (description, v.as_object_mut()) {
            obj.insert("error_description".into(), json!(d));
        }
        json_response(StatusCode::BAD_REQUEST, &v)
    };
    // The client authenticates with form fields or HTTP basic auth.
    let (mut client_id, mut client_secret) = (param("client_id"), param("client_secret"));
    if let Some(basic) = header_str(&headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| content::base64_decode(b.trim()))
        .and_then(|b| String::from_utf8(b).ok())
        && let Some((id, secret)) = basic.split_once(':')
    {
        client_id = Some(id.to_string());
        client_secret = Some(secret.to_string());
    }
    let Some(grant_type) = param("grant_type") else {
        return oauth_error("invalid_request", Some("No grant_type provided."));
    };
    if client_id.as_deref() != Some(shared.app_key.as_str())
        || client_secret.as_deref() != Some(shared.app_secret.as_str())
    {
        // Dropbox really puts the description inside `error`.
        return oauth_error("invalid_client: Invalid client_id or client_secret", None);
    }
    let kind = match grant_type.as_str() {
        "refresh_token" => {
            let Some(refresh) = param("refresh_token") else {
                return oauth_error("invalid_request", Some("No refresh_token provided."));
            };
            let valid = shared.lock().refresh_valid;
            if valid && refresh == shared.refresh_token {
                TokenKind::User
            } else if valid && refresh == shared.team_refresh_token {
                TokenKind::Team
            } else {
                return oauth_error("invalid_grant", Some("refresh token is invalid or revoked"));
            }
        }
        "authorization_code" => {
            if param("code").as_deref() != Some(shared.auth_code.as_str()) {
                return oauth_error("invalid_grant", Some("code doesn't exist or has expired"));
            }
            TokenKind::User
        }
        other => {
            return oauth_error(
                "unsupported_grant_type",
                Some(&format!("grant_type \"{other}\" is not supported")),
            );
        }
    };
    let prefix = if kind == TokenKind::Team {
        "sl.t."
    } else {
        "sl.u."
    };
    let access = format!("{prefix}{}", random_token(140));
    let mut state = shared.lock();
    state.grants += 1;
    state.tokens.insert(access.clone(), kind);
    let admin = state.admin_index();
    let account = state.accounts.get(admin).cloned();
    drop(state);
    let mut v = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": 14_400,
    });
    if let Some(obj) = v.as_object_mut() {
        if kind == TokenKind::Team {
            obj.insert("team_id".into(), json!(super::state::TEAM_ID));
        }
        if grant_type == "authorization_code" {
            obj.insert("refresh_token".into(), json!(shared.refresh_token));
            obj.insert(
                "scope".into(),
                json!("account_info.read files.content.read files.metadata.read sharing.read"),
            );
            if let Some(a) = account {
                obj.insert("account_id".into(), json!(a.account_id));
                obj.insert("uid".into(), json!("12345"));
            }
        }
    }
    json_response(StatusCode::OK, &v)
}

/// `files/list_folder/longpoll`: no authentication; waits up to `timeout` seconds for changes.
async fn longpoll(
    AxState(shared): AxState<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = "files/list_folder/longpoll";
    let value = match parse_rpc_body(&headers, &body) {
        Ok(v) => v,
        Err(e) => return e.render(route),
    };
    let args = Args::new(&value);
    let (cursor, timeout) = match (args.req_str("cursor"), args.uint_or("timeout", 30, 30, 480)) {
        (Ok(c), Ok(t)) => (c.to_string(), t),
        (Err(e), _) | (_, Err(e)) => return e.render(route),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let notified = shared.changed.notified();
        let pending = files::pending_changes(&shared.lock(), &cursor);
        match pending {
            Err(e) => return e.render(route),
            Ok(true) => return json_response(StatusCode::OK, &json!({"changes": true})),
            Ok(false) => {}
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return json_response(StatusCode::OK, &json!({"changes": false}));
        }
    }
}

fn parse_rpc_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let ct = header_str(headers, "content-type").unwrap_or("");
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if base != "application/json" && ct != "text/plain; charset=dropbox-cors-hack" {
        return Err(ApiError::bad(format!(
            "Bad HTTP \"Content-Type\" header: \"{ct}\".  Expecting one of \"application/json\", \
             \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\"."
        )));
    }
    serde_json::from_slice(body)
        .map_err(|_| ApiError::bad("request body: could not decode input as JSON"))
}

/// The acting member and view for a user endpoint.
fn user_context(
    state: &State,
    kind: TokenKind,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(usize, View), ApiError> {
    let select_user = header_str(headers, "dropbox-api-select-user")
        .map(str::to_string)
        .or_else(|| query_param(query, "select_user"));
    let select_admin = header_str(headers, "dropbox-api-select-admin")
        .map(str::to_string)
        .or_else(|| query_param(query, "select_admin"));
    let member = match kind {
        TokenKind::User => {
            if select_user.is_some() || select_admin.is_some() {
                return Err(ApiError::bad(
                    "Unexpected select user header. Your app does not have permission to use \
                     this feature",
                ));
            }
            state.admin_index()
        }
        TokenKind::Team => match (select_user, select_admin) {
            (Some(id), _) => state.member_by_team_id(&id).ok_or_else(|| {
                ApiError::bad(format!(
                    "Invalid value for HTTP header \"Dropbox-API-Select-User\": no team member \
                     with id \"{id}\""
                ))
            })?,
            (None, Some(id)) => match state.member_by_team_id(&id) {
                Some(i) if state.accounts.get(i).is_some_and(|a| a.is_admin) => i,
                _ => {
                    return Err(ApiError::bad(format!(
                        "Invalid value for HTTP header \"Dropbox-API-Select-Admin\": \"{id}\" \
                         is not a team admin"
                    )));
                }
            },
            (None, None) => {
                return Err(ApiError::bad(
                    "This API function operates on a single Dropbox account, but the OAuth 2 \
                     access token you provided is for an entire Dropbox Business team.  Since \
                     your API app key has team member file access permissions, you can operate \
                     on a team member's Dropbox by providing the \"Dropbox-API-Select-User\" \
                     HTTP header or \"select_user\" URL/request parameter.",
                ));
            }
        },
    };
    let view = path_root_view(state, member, header_str(headers, "dropbox-api-path-root"))?;
    Ok((member, view))
}

/// Applies `Dropbox-API-Path-Root`.
fn path_root_view(state: &State, member: usize, header: Option<&str>) -> Result<View, ApiError> {
    let home = || {
        state
            .home_view(member)
            .ok_or_else(|| ApiError::bad("the selected account has no home namespace"))
    };
    let Some(raw) = header else {
        return home();
    };
    let invalid = |why: &str| {
        ApiError::bad(format!(
            "Invalid value for HTTP header \"Dropbox-API-Path-Root\": \"{raw}\": {why}"
        ))
    };
    let value: Value = serde_json::from_str(raw).map_err(|_| invalid("could not decode JSON"))?;
    let tag = value
        .get(".tag")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("missing '.tag'"))?;
    let ns_field = |field: &str| {
        value
            .get(field)
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .ok_or_else(|| invalid(&format!("missing '{field}'")))
    };
    match tag {
        "home" => home(),
        "root" => {
            let ns = ns_field("root")?;
            if ns != TEAM_ROOT_NS {
                let account = state.full_account(member);
                return Err(ApiError::PathRoot(json!({
                    ".tag": "invalid_root",
                    "invalid_root": account.get("root_info").cloned().unwrap_or(Value::Null),
                })));
            }
            state
                .namespace_view(member, TEAM_ROOT_NS)
                .ok_or_else(|| invalid("no team space"))
        }
        "namespace_id" => {
            let ns = ns_field("namespace_id")?;
            if !state.can_access_ns(member, &ns) {
                return Err(ApiError::PathRoot(json!({".tag": "no_permission"})));
            }
            state
                .namespace_view(member, &ns)
                .ok_or_else(|| ApiError::PathRoot(json!({".tag": "no_permission"})))
        }
        other => Err(invalid(&format!("unknown tag '{other}'"))),
    }
}

const DOWNLOAD_CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "application/octet-stream; charset=utf-8",
];

async fn api(
    AxState(shared): AxState<Arc<Shared>>,
    Path(name): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((style, auth, handler)) = route(&name) else {
        return ApiError::NotFound(format!("Unknown API function: \"{name}\"")).render(&name);
    };
    let method_ok = method == Method::POST || (style == Style::Download && method == Method::GET);
    if !method_ok {
        return text_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Error in call to API function \"{name}\": expected POST"),
        );
    }
    match serve(
        &shared,
        style,
        auth,
        handler,
        query.as_deref(),
        &headers,
        &body,
    ) {
        Err(e) => e.render(&name),
        Ok(Reply::Json(v)) => json_response(StatusCode::OK, &v),
        Ok(Reply::Content { result, body }) => {
            // Large generated bodies are produced here, outside the state lock.
            let bytes = match tokio::task::spawn_blocking(move || body.into_bytes()).await {
                Ok(b) => b,
                Err(_) => {
                    return text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "generation failed".into(),
                    );
                }
            };
            let mut r = Response::new(Body::from(bytes));
            let headers = r.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&content::header_safe_json(&result)) {
                headers.insert("dropbox-api-result", v);
            }
            r.into_response()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    shared: &Shared,
    style: Style,
    auth: AuthKind,
    handler: Handler,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    // Arguments first: Dropbox validates the request shape before the token.
    let value = match style {
        Style::Rpc => parse_rpc_body(headers, body)?,
        Style::Download => {
            if let Some(ct) = header_str(headers, "content-type")
                && !ct.is_empty()
                && !DOWNLOAD_CONTENT_TYPES.contains(&ct.to_ascii_lowercase().as_str())
            {
                return Err(ApiError::bad(format!(
                    "Bad HTTP \"Content-Type\" header: \"{ct}\".  Expecting one of \
                     \"text/plain\", \"text/plain; charset=utf-8\", \
                     \"application/octet-stream\", \"application/octet-stream; charset=utf-8\"."
                )));
            }
            let raw = header_str(headers, "dropbox-api-arg")
                .map(str::to_string)
                .or_else(|| query_param(query, "arg"))
                .ok_or_else(|| {
                    ApiError::bad(
                        "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".",
                    )
                })?;
            serde_json::from_str(&raw).map_err(|_| {
                ApiError::bad("HTTP header \"Dropbox-API-Arg\": could not decode input as JSON")
            })?
        }
    };
    let mut state = shared.lock();
    let (member, view) = match auth {
        AuthKind::App => {
            let ok = header_str(headers, "authorization")
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| content::base64_decode(b.trim()))
                .and_then(|b| String::from_utf8(b).ok())
                .is_some_and(|b| b == format!("{}:{}", shared.app_key, shared.app_secret));
            if !ok {
                return Err(ApiError::Unauthorized("invalid_access_token"));
            }
            let admin = state.admin_index();
            let view = state
                .home_view(admin)
                .ok_or_else(|| ApiError::bad("no home"))?;
            (admin, view)
        }
        AuthKind::User | AuthKind::Team => {
            let bearer = header_str(headers, "authorization")
                .map(str::to_string)
                .or_else(|| query_param(query, "authorization"))
                .ok_or_else(|| {
                    ApiError::bad(
                        "Must provide HTTP header \"Authorization\" or URL parameter \
                         \"authorization\".",
                    )
                })?;
            let token = bearer
                .strip_prefix("Bearer ")
                .or_else(|| bearer.strip_prefix("bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "Invalid authorization value in HTTP header \"Authorization\": \
                         \"{bearer}\".  Expecting \"Bearer <oauth2-access-token>\"."
                    ))
                })?;
            let kind = match state.tokens.get(token) {
                Some(k) => *k,
                None if state.expired.contains_key(token) => {
                    return Err(ApiError::Unauthorized("expired_access_token"));
                }
                None => return Err(ApiError::Unauthorized("invalid_access_token")),
            };
            if auth == AuthKind::Team {
                if kind != TokenKind::Team {
                    return Err(ApiError::bad(
                        "This API function operates on a Dropbox Business team, but the OAuth 2 \
                         access token you provided is for a single Dropbox account.",
                    ));
                }
                let admin = state.admin_index();
                let view = state
                    .home_view(admin)
                    .ok_or_else(|| ApiError::bad("no home"))?;
                (admin, view)
            } else {
                user_context(&state, kind, headers, query)?
            }
        }
    };
    let ctx = Ctx {
        args: Args::new(&value),
        member,
        view,
    };
    handler(&mut state, &ctx)
}
