//! A signed-in Dropbox session: OAuth refresh, the account the connector acts as, the headers
//! every call needs, and Dropbox's error conventions turned into typed errors.
//!
//! Dropbox answers endpoint errors with HTTP 409 and a `.tag` union; those come back to the
//! caller as a [`Conflict`] to interpret (a missing path is `NotFound`, an invalidated cursor
//! restarts a listing). Everything else that is not a success becomes an [`Error`] naming the
//! route: 401 after one refresh is `Auth`, 400 (our request was refused) is `Other`, a body that
//! is not the expected JSON is `Protocol`, and 429/5xx that outlast the retries are
//! `RateLimited`/`Transient` (from the SDK's client).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tributary_sdk::batch::send_all_authed;
use tributary_sdk::http::{Auth, Client, Request, Response, RetryPolicy, join_url};
use tributary_sdk::oauth::OAuth;
use tributary_sdk::outbox::Resign;
use tributary_sdk::{Error, Result};

use crate::api::{AuthenticatedAdmin, ErrorBody, FullAccount, header_json};
use crate::settings::Settings;

/// Calls made side by side (member lists, link metadata): enough to hide latency, few enough
/// to stay clear of Dropbox's per-app rate limits.
pub const API_CONCURRENCY: u32 = 8;

/// An endpoint error (HTTP 409): its `error_summary`, like `path/not_found/..`.
#[derive(Clone, Debug)]
pub struct Conflict {
    pub route: String,
    pub summary: String,
}

impl Conflict {
    /// Whether the summary starts with this tag path, e.g. `path/not_found`.
    pub fn is(&self, tags: &str) -> bool {
        self.summary.starts_with(tags)
    }

    /// The conflict as an error of the given kind.
    pub fn into_error(self) -> Error {
        Error::Other(format!(
            "Dropbox {} refused: {}",
            self.route,
            self.summary.trim_end_matches(['/', '.'])
        ))
    }
}

/// The outcome of one call: the decoded answer or an endpoint error.
pub type Answer<T> = std::result::Result<T, Conflict>;

/// Who the connector acts as.
#[derive(Clone, Debug)]
pub struct Identity {
    pub account_id: String,
    pub email: String,
    pub root_namespace_id: String,
    /// `team_member_id` when the refresh token is team-linked (calls then select this member).
    pub team_member_id: Option<String>,
}

/// A session with Dropbox.
pub struct Session {
    settings: Settings,
    client: Client,
    auth: OAuth,
    path_root: Option<String>,
    pub identity: Identity,
}

/// Where a route lives and which headers it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A member's files and sharing (Select-User with team tokens, Path-Root when set).
    User,
    /// `team/*` routes: neither header.
    Team,
}

fn scope_of(route: &str) -> Scope {
    if route.starts_with("team/") {
        Scope::Team
    } else {
        Scope::User
    }
}

impl Session {
    /// Obtains an access token and finds out who it belongs to. A team-linked token acts as the
    /// admin who authorised it (`Dropbox-API-Select-User`), as Elastic's connector does.
    pub fn connect(settings: &Settings) -> Result<Session> {
        let client = Client::new(RetryPolicy::with_retries(settings.retry_count));
        let auth = OAuth::refresh_token(
            settings.token_url(),
            &settings.app_key,
            &settings.app_secret,
            &settings.refresh_token,
            client.clone(),
        )
        .with_hints(
            "generate a new refresh token for the app (see the connector's docs) and update \
             `refresh_token`",
            "check `app_key` and `app_secret` (the app's key and secret in the App Console)",
        );
        let mut session = Session {
            settings: settings.clone(),
            client,
            auth,
            path_root: None,
            identity: Identity {
                account_id: String::new(),
                email: String::new(),
                root_namespace_id: String::new(),
                team_member_id: None,
            },
        };
        session.auth.access_token().map_err(dropbox_auth)?;
        let route = "users/get_current_account";
        let response = session.send(route, &session.rpc_request(route, &Value::Null)?)?;
        let account: FullAccount = if response.status == 400 && is_team_token(&response) {
            let admin: AuthenticatedAdmin =
                session.call("team/token/get_authenticated_admin", &Value::Null)?;
            session.identity.team_member_id = Some(admin.admin_profile.team_member_id);
            session.call(route, &Value::Null)?
        } else {
            match interpret(route, response)? {
                Ok(account) => account,
                Err(conflict) => return Err(conflict.into_error()),
            }
        };
        session.identity.account_id = account.account_id;
        session.identity.email = account.email;
        session.identity.root_namespace_id = account.root_info.root_namespace_id;
        // Elastic roots every call at the account's root namespace: for team-space accounts
        // that is the team space (team folders plus member folders), so `file_path` and
        // path-based rules match an index Elastic built; otherwise it is the home folder.
        // `include_team_folders = false` keeps to the member's home folder instead.
        let root = if settings.team_folders {
            json!({".tag": "root", "root": session.identity.root_namespace_id})
        } else {
            json!({".tag": "home"})
        };
        session.path_root = Some(root.to_string());
        Ok(session)
    }

    /// Whether the token is team-linked.
    pub fn is_team(&self) -> bool {
        self.identity.team_member_id.is_some()
    }

    fn headers(&self, request: Request, scope: Scope) -> Request {
        let mut request = request;
        if scope == Scope::User {
            if let Some(member) = &self.identity.team_member_id {
                request.set_header("Dropbox-API-Select-User", member.clone());
            }
            if let Some(root) = &self.path_root {
                request.set_header("Dropbox-API-Path-Root", root.clone());
            }
        }
        request
    }

    fn rpc_request<B: Serialize + ?Sized>(&self, route: &str, body: &B) -> Result<Request> {
        let request = Request::post(join_url(&self.settings.api_url, route)).json(body)?;
        Ok(self.headers(request, scope_of(route)))
    }

    fn send(&mut self, route: &str, request: &Request) -> Result<Response> {
        self.client
            .send_authed(&mut self.auth, request)
            .map_err(|e| dropbox_auth(e).context(format!("Dropbox {route}")))
    }

    /// Calls an RPC route; endpoint errors come back as [`Conflict`].
    pub fn rpc<T, B>(&mut self, route: &str, body: &B) -> Result<Answer<T>>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        let request = self.rpc_request(route, body)?;
        let response = self.send(route, &request)?;
        interpret(route, response)
    }

    /// Calls an RPC route where any endpoint error is a failure.
    pub fn call<T, B>(&mut self, route: &str, body: &B) -> Result<T>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        self.rpc(route, body)?.map_err(Conflict::into_error)
    }

    /// Calls one RPC route with many bodies, side by side; results in order.
    pub fn rpc_all<T: DeserializeOwned>(
        &mut self,
        route: &str,
        bodies: &[Value],
    ) -> Result<Vec<Answer<T>>> {
        let mut requests = Vec::with_capacity(bodies.len());
        for body in bodies {
            requests.push(self.rpc_request(route, body)?);
        }
        let mut answers = Vec::with_capacity(bodies.len());
        for result in send_all_authed(&self.client, &mut self.auth, &requests, API_CONCURRENCY) {
            let response =
                result.map_err(|e| dropbox_auth(e).context(format!("Dropbox {route}")))?;
            answers.push(interpret(route, response)?);
        }
        Ok(answers)
    }

    /// A content-download request (`files/download`, `files/export`,
    /// `sharing/get_shared_link_file`) for the host to perform, signed with the current token.
    pub fn content_request(&mut self, route: &str, arg: &Value) -> Result<Request> {
        let mut request = Request::post(join_url(&self.settings.content_url, route))
            .header("Dropbox-API-Arg", header_json(arg));
        self.auth.authorize(&mut request).map_err(dropbox_auth)?;
        Ok(self.headers(request, Scope::User))
    }
}

/// Host-side downloads refused with 401 (the token expired while they waited) are signed again
/// with a new token.
impl Resign for Session {
    fn refresh(&mut self) -> Result<()> {
        self.auth.force_refresh().map_err(dropbox_auth)
    }

    fn resign(&mut self, request: &mut Request) -> Result<()> {
        self.auth.authorize(request).map_err(dropbox_auth)
    }
}

/// A 400 that says the token is team-linked and needs `Dropbox-API-Select-User`.
fn is_team_token(response: &Response) -> bool {
    let text = response.text();
    text.contains("Dropbox-API-Select-User") || text.contains("entire Dropbox Business team")
}

/// Token errors with the service named (the SDK's messages are about OAuth in general).
fn dropbox_auth(err: Error) -> Error {
    match err {
        Error::Auth(m) => Error::Auth(format!("Dropbox sign-in failed: {m}")),
        other => other,
    }
}

/// Turns a response into the decoded answer, a [`Conflict`], or a typed error.
fn interpret<T: DeserializeOwned>(route: &str, response: Response) -> Result<Answer<T>> {
    let error_body = |response: &Response| -> String {
        match response.json::<ErrorBody>() {
            Ok(body) => body.error_summary,
            Err(_) => response.snippet(),
        }
    };
    match response.status {
        200..=299 => response
            .json::<T>()
            .map(Ok)
            .map_err(|e| e.context(format!("Dropbox {route}"))),
        409 => {
            let body: ErrorBody = response
                .json()
                .map_err(|e| e.context(format!("Dropbox {route} (HTTP 409)")))?;
            Ok(Err(Conflict {
                route: route.to_string(),
                summary: body.error_summary,
            }))
        }
        401 => {
            let summary = error_body(&response);
            Err(Error::Auth(format!(
                "Dropbox {route}: the access token was rejected after a refresh ({summary})"
            )))
        }
        403 => {
            let summary = error_body(&response);
            Err(Error::Auth(format!(
                "Dropbox {route}: access denied ({summary}); check the app's permissions \
                 (scopes) and, for team features, that the token is team-linked"
            )))
        }
        400 => Err(Error::Other(format!(
            "Dropbox {route} refused the request (HTTP 400): {}",
            response.snippet()
        ))),
        422 => {
            let summary = error_body(&response);
            Err(Error::Config(format!(
                "Dropbox {route} refused the root namespace in Dropbox-API-Path-Root \
                 ({summary}); `include_team_folders = false` lists the member's home folder only"
            )))
        }
        status => Err(Error::Protocol(format!(
            "Dropbox {route} answered HTTP {status}: {}",
            response.snippet()
        ))),
    }
}
