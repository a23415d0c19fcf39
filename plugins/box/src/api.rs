//! Box's REST API as this connector uses it: OAuth (rotating refresh token or enterprise client
//! credentials), users, folder listings with marker pagination, items, collaborations, events
//! and download requests — plus the JSON shapes they answer.
//!
//! Every call goes through the SDK client: retries with backoff on network errors and 5xx,
//! `Retry-After` on 429, one token refresh on 401. What is left is mapped here: 404 is an
//! answer (the item is gone or invisible) for lookups, and an error naming the endpoint
//! otherwise; malformed JSON is a `Protocol` error naming the endpoint.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tributary_sdk::http::{Auth, Client, Request, Response, RetryPolicy, url_encode};
use tributary_sdk::oauth::OAuth;
use tributary_sdk::outbox::Resign;
use tributary_sdk::page;
use tributary_sdk::{Error, Result};

use crate::settings::{Account, Settings};

/// Storage key of the rotating refresh token (and the access token issued with it).
pub const TOKEN_KEY: &str = "oauth";
/// Largest page Box serves for folder listings and users.
const PAGE: u32 = 1000;
/// Largest page of the events API.
const EVENTS_PAGE: u32 = 500;

/// What Box item fields a listing asks for: Elastic's set, plus `path_collection` (paths and
/// permission inheritance).
const FIELDS: &str = "type,id,etag,sequence_id,name,size,modified_at,created_at,\
content_created_at,content_modified_at,description,created_by,modified_by,owned_by,parent,\
item_status,path_collection";

/// File, folder or web link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Folder,
    WebLink,
}

impl Kind {
    pub fn parse(type_name: &str) -> Option<Kind> {
        match type_name {
            "file" => Some(Kind::File),
            "folder" => Some(Kind::Folder),
            "web_link" => Some(Kind::WebLink),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Folder => "folder",
            Kind::WebLink => "web_link",
        }
    }

    /// The API collection (`files`, `folders`, `web_links`).
    fn collection(self) -> &'static str {
        match self {
            Kind::File => "files",
            Kind::Folder => "folders",
            Kind::WebLink => "web_links",
        }
    }
}

/// A user as `users`, `owned_by`, `accessible_by` carry it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// One file, folder or web link, with Box's own fields kept verbatim for the document.
#[derive(Clone, Debug)]
pub struct Item {
    pub id: String,
    pub kind: Kind,
    pub fields: Map<String, Value>,
}

impl Item {
    /// Reads an entry; one without an id or a known type is a protocol error.
    pub fn from_value(value: Value, endpoint: &str) -> Result<Item> {
        let Value::Object(fields) = value else {
            return Err(Error::Protocol(format!(
                "{endpoint}: an entry is not a JSON object"
            )));
        };
        let id = match fields.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(Error::Protocol(format!("{endpoint}: an entry has no `id`")));
            }
        };
        let kind = fields
            .get("type")
            .and_then(Value::as_str)
            .and_then(Kind::parse)
            .ok_or_else(|| {
                Error::Protocol(format!("{endpoint}: entry {id} has no known `type`"))
            })?;
        Ok(Item { id, kind, fields })
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    pub fn name(&self) -> &str {
        self.str("name").unwrap_or_default()
    }

    pub fn size(&self) -> Option<u64> {
        self.fields.get("size").and_then(Value::as_u64)
    }

    pub fn modified_at(&self) -> Option<&str> {
        self.str("modified_at")
    }

    /// The parent folder id as the viewer sees it (`"0"` at the top of their "All Files").
    pub fn parent_id(&self) -> Option<String> {
        self.fields
            .get("parent")
            .and_then(|p| p.get("id"))
            .and_then(|id| match id {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }

    pub fn owner(&self) -> Option<User> {
        self.fields
            .get("owned_by")
            .and_then(|o| User::deserialize(o).ok())
    }

    pub fn has_collaborations(&self) -> bool {
        self.fields
            .get("has_collaborations")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `(id, name)` of the folders above the item, top first, "All Files" (`"0"`) excluded.
    pub fn ancestors(&self) -> Vec<(String, String)> {
        self.fields
            .get("path_collection")
            .and_then(|p| p.get("entries"))
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| {
                        let id = e.get("id").and_then(Value::as_str)?;
                        let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
                        (id != "0").then(|| (id.to_string(), name.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What listing a folder page gave.
pub enum Listing {
    /// A page of entries.
    Page(Page),
    /// The folder is gone (404: trashed or deleted since it was seen).
    Gone,
    /// 403: the folder, or the user's view, is closed to this token.
    Forbidden(Error),
}

/// One page of a folder listing.
pub struct Page {
    pub entries: Vec<Item>,
    pub next_marker: Option<String>,
}

/// A collaboration on an item.
#[derive(Debug, Deserialize)]
pub struct Collaboration {
    #[serde(default)]
    pub status: Option<String>,
    /// `editor`, `viewer`, `previewer`, `uploader`, `previewer uploader`, `viewer uploader`,
    /// `co-owner` or `owner`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub accessible_by: Option<Accessor>,
}

/// The user or group a collaboration grants access to.
#[derive(Debug, Deserialize)]
pub struct Accessor {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub login: Option<String>,
}

/// One event of a user's stream.
#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub source: Option<Value>,
}

/// One page of events.
pub struct Events {
    pub entries: Vec<Event>,
    pub next_position: String,
}

#[derive(Deserialize)]
struct Collection<T> {
    #[serde(default = "Vec::new")]
    entries: Vec<T>,
    #[serde(default)]
    next_marker: Option<Value>,
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
}

#[derive(Deserialize)]
struct EventsAnswer {
    #[serde(default = "Vec::new")]
    entries: Vec<Event>,
    next_stream_position: Value,
}

#[derive(Deserialize)]
struct Membership {
    #[serde(default)]
    group: Option<Accessor>,
}

/// A Box error body (`{"type": "error", "status", "code", "message"}`).
#[derive(Deserialize)]
struct BoxError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// An authenticated Box API client.
pub struct Api {
    api_url: String,
    auth: OAuth,
    http: Client,
}

impl Api {
    /// A client for `settings`; no request is sent until the first call.
    pub fn new(settings: &Settings) -> Api {
        let http = Client::new(RetryPolicy::with_retries(settings.retry_count));
        let auth = match &settings.account {
            Account::Free { refresh_token } => OAuth::refresh_token(
                &settings.token_url,
                &settings.client_id,
                &settings.client_secret,
                refresh_token,
                http.clone(),
            )
            .with_rotation(TOKEN_KEY)
            .with_hints(
                "authorize the app again, then set `refresh_token` to the new token",
                "check `client_id` and `client_secret`",
            ),
            Account::Enterprise { enterprise_id } => OAuth::client_credentials(
                &settings.token_url,
                &settings.client_id,
                &settings.client_secret,
                &[
                    ("box_subject_type", "enterprise"),
                    ("box_subject_id", enterprise_id),
                ],
                http.clone(),
            )
            .with_hints(
                "check `enterprise_id` and that the app is authorized in the Box Admin Console",
                "check `client_id` and `client_secret`",
            ),
        };
        Api {
            api_url: settings.api_url.clone(),
            auth,
            http,
        }
    }

    fn url(&self, route: &str) -> String {
        format!("{}/{}", self.api_url, route.trim_start_matches('/'))
    }

    fn get_request(&self, route: &str, as_user: Option<&str>) -> Request {
        let request = Request::get(self.url(route)).header("Accept", "application/json");
        match as_user {
            Some(user) => request.header("As-User", user),
            None => request,
        }
    }

    /// GETs `route`; `Ok(None)` when the answer is one of `absent` (e.g. 404), an error naming
    /// `what` on any other failure.
    fn get_unless<T: DeserializeOwned>(
        &mut self,
        what: &str,
        route: &str,
        as_user: Option<&str>,
        absent: &[u16],
    ) -> Result<Option<T>> {
        let request = self.get_request(route, as_user);
        let response = self
            .http
            .send_authed(&mut self.auth, &request)
            .map_err(|e| e.context(what))?;
        match response.status {
            200 => response
                .json()
                .map(Some)
                .map_err(|e| e.context(format!("{what} (GET /2.0/{})", strip_query(route)))),
            status if absent.contains(&status) => Ok(None),
            _ => Err(failure(what, &response)),
        }
    }

    /// GETs `route`; `Ok(None)` on 404.
    fn get<T: DeserializeOwned>(
        &mut self,
        what: &str,
        route: &str,
        as_user: Option<&str>,
    ) -> Result<Option<T>> {
        self.get_unless(what, route, as_user, &[404])
    }

    /// Like [`Api::get`], where 404 is an error too.
    fn get_required<T: DeserializeOwned>(
        &mut self,
        what: &str,
        route: &str,
        as_user: Option<&str>,
    ) -> Result<T> {
        self.get(what, route, as_user)?
            .ok_or_else(|| Error::NotFound(format!("{what}: Box answered 404")))
    }

    /// Obtains an access token now (so authentication problems surface before anything else).
    pub fn authenticate(&mut self) -> Result<()> {
        self.auth.access_token().map(|_| ())
    }

    /// The authenticated user (the service account for enterprise tokens).
    pub fn me(&mut self) -> Result<User> {
        self.get_required(
            "reading the current user",
            "users/me?fields=id,name,login,created_at",
            None,
        )
    }

    /// Every managed user of the enterprise.
    pub fn users(&mut self) -> Result<Vec<User>> {
        let mut users = Vec::new();
        let mut marker: Option<String> = None;
        let mut offset = 0u64;
        loop {
            let mut route = format!(
                "users?user_type=managed&fields=id,name,login,created_at&limit={PAGE}&usemarker=true"
            );
            match &marker {
                Some(m) => route.push_str(&format!("&marker={}", url_encode(m))),
                None if offset > 0 => route.push_str(&format!("&offset={offset}")),
                None => {}
            }
            let page: Collection<User> =
                self.get_required("listing the enterprise's users", &route, None)?;
            let got = page.entries.len() as u64;
            users.extend(page.entries);
            // Box answers a marker when asked to; older deployments answer offsets.
            if let Some(next) = marker_of(page.next_marker.as_ref()) {
                marker = Some(next);
                continue;
            }
            let total = page.total_count.unwrap_or(0);
            offset = page.offset.unwrap_or(offset) + got;
            if marker.is_some() || got == 0 || offset >= total {
                return Ok(users);
            }
        }
    }

    /// The ids of the groups `user_id` belongs to.
    pub fn group_ids(&mut self, user_id: &str) -> Result<Vec<String>> {
        let what = format!("listing the groups of user {user_id}");
        let mut groups = Vec::new();
        for membership in page::offset(u64::from(PAGE), |offset, limit| {
            let route = format!(
                "users/{}/memberships?limit={limit}&offset={offset}",
                url_encode(user_id)
            );
            let page: Collection<Membership> = self.get_required(&what, &route, None)?;
            Ok(page::OffsetPage {
                items: page.entries,
                total: page.total_count,
            })
        }) {
            if let Some(group) = membership?.group {
                groups.push(group.id);
            }
        }
        Ok(groups)
    }

    /// One page of `folder_id`'s items (marker pagination: Box refuses offsets past 10 000),
    /// or why there is none: gone (404) or forbidden (403). Other failures are errors.
    pub fn folder_page(
        &mut self,
        folder_id: &str,
        marker: Option<&str>,
        as_user: Option<&str>,
        dls: bool,
    ) -> Result<Listing> {
        let mut route = format!(
            "folders/{}/items?fields={}&limit={PAGE}&usemarker=true",
            url_encode(folder_id),
            fields(dls)
        );
        if let Some(marker) = marker {
            route.push_str(&format!("&marker={}", url_encode(marker)));
        }
        let what = format!("listing folder {folder_id}");
        let request = self.get_request(&route, as_user);
        let response = self
            .http
            .send_authed(&mut self.auth, &request)
            .map_err(|e| e.context(&what))?;
        let page: Collection<Value> = match response.status {
            200 => response
                .json()
                .map_err(|e| e.context(format!("{what} (GET /2.0/{})", strip_query(&route))))?,
            404 => return Ok(Listing::Gone),
            // The folder, or the user's view (`As-User`), is closed to this token: the rest of
            // the account may still be readable.
            403 => return Ok(Listing::Forbidden(failure(&what, &response))),
            _ => return Err(failure(&what, &response)),
        };
        let endpoint = format!("GET /folders/{folder_id}/items");
        let entries = page
            .entries
            .into_iter()
            .map(|v| Item::from_value(v, &endpoint))
            .collect::<Result<Vec<_>>>()?;
        Ok(Listing::Page(Page {
            entries,
            next_marker: marker_of(page.next_marker.as_ref()),
        }))
    }

    /// The current state of an item as `as_user` sees it; `None` when it is trashed, deleted or
    /// invisible to that user.
    pub fn item(
        &mut self,
        kind: Kind,
        id: &str,
        as_user: Option<&str>,
        dls: bool,
    ) -> Result<Option<Item>> {
        let route = format!(
            "{}/{}?fields={}",
            kind.collection(),
            url_encode(id),
            fields(dls)
        );
        let what = format!("reading {} {id}", kind.as_str());
        match self.get_or_forbidden::<Value>(&what, &route, as_user)? {
            Some(value) => {
                Item::from_value(value, &format!("GET /{}/{id}", kind.collection())).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The item's own collaborations (inherited ones live on its ancestors); `None` when the
    /// item is gone or the user may not list them.
    pub fn collaborations(
        &mut self,
        kind: Kind,
        id: &str,
        as_user: Option<&str>,
    ) -> Result<Option<Vec<Collaboration>>> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut route = format!(
                "{}/{}/collaborations?limit=100",
                kind.collection(),
                url_encode(id)
            );
            if let Some(m) = &marker {
                route.push_str(&format!("&marker={}", url_encode(m)));
            }
            let what = format!("listing the collaborations of {} {id}", kind.as_str());
            let Some(page) =
                self.get_or_forbidden::<Collection<Collaboration>>(&what, &route, as_user)?
            else {
                return Ok(None);
            };
            all.extend(page.entries);
            match marker_of(page.next_marker.as_ref()) {
                Some(next) => marker = Some(next),
                None => return Ok(Some(all)),
            }
        }
    }

    /// The latest position of `as_user`'s event stream.
    pub fn stream_now(&mut self, as_user: Option<&str>) -> Result<String> {
        let answer: EventsAnswer = self.get_required(
            "reading the event stream position",
            "events?stream_type=changes&stream_position=now",
            as_user,
        )?;
        position(&answer.next_stream_position)
    }

    /// Changes after `position` in `as_user`'s stream.
    pub fn events(&mut self, position_: &str, as_user: Option<&str>) -> Result<Events> {
        let route = format!(
            "events?stream_type=changes&stream_position={}&limit={EVENTS_PAGE}",
            url_encode(position_)
        );
        let answer: EventsAnswer = self.get_required("reading events", &route, as_user)?;
        Ok(Events {
            next_position: position(&answer.next_stream_position)?,
            entries: answer.entries,
        })
    }

    /// The request the host sends to download a file (Box answers 302 to a pre-signed URL).
    pub fn content_request(&mut self, file_id: &str, as_user: Option<&str>) -> Result<Request> {
        let token = self.auth.access_token()?;
        let request = Request::get(self.url(&format!("files/{}/content", url_encode(file_id))))
            .bearer(&token);
        Ok(match as_user {
            Some(user) => request.header("As-User", user),
            None => request,
        })
    }

    /// Like [`Api::get`], where 403 (no permission) also answers `None`.
    fn get_or_forbidden<T: DeserializeOwned>(
        &mut self,
        what: &str,
        route: &str,
        as_user: Option<&str>,
    ) -> Result<Option<T>> {
        self.get_unless(what, route, as_user, &[403, 404])
    }
}

/// Downloads the host reports refused with 401 (the access token expired while they waited)
/// are signed again with a fresh token.
impl Resign for Api {
    fn refresh(&mut self) -> Result<()> {
        self.auth.force_refresh()
    }

    fn resign(&mut self, request: &mut Request) -> Result<()> {
        self.auth.authorize(request)
    }
}

fn fields(dls: bool) -> String {
    if dls {
        format!("{FIELDS},has_collaborations")
    } else {
        FIELDS.to_string()
    }
}

/// `next_marker` when there is a next page (Box sends null or "" at the end).
fn marker_of(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A stream position: Box sends a number or a string.
fn position(value: &Value) -> Result<String> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(Error::Protocol(format!(
            "GET /events: `next_stream_position` is {other}, not a position"
        ))),
    }
}

fn strip_query(route: &str) -> &str {
    route.split('?').next().unwrap_or(route)
}

/// A final non-success answer as a typed error naming the call.
fn failure(what: &str, response: &Response) -> Error {
    let detail = match response.json::<BoxError>() {
        Ok(BoxError {
            code: Some(code),
            message,
        }) => format!("{code}: {}", message.unwrap_or_default()),
        _ => response.snippet(),
    };
    let message = format!("{what}: Box answered HTTP {} ({detail})", response.status);
    match response.status {
        401 | 403 => Error::Auth(message),
        404 => Error::NotFound(message),
        429 => Error::RateLimited(message),
        500..=599 => Error::Transient(message),
        _ => Error::Other(message),
    }
}
