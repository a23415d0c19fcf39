//! OAuth 2.0 client credentials for plugins: the refresh-token grant (optionally with refresh
//! token rotation persisted in storage) and the client-credentials grant, as an [`Auth`] for
//! [`crate::http::Client::send_authed`].
//!
//! Access tokens are refreshed shortly before they expire and again whenever the source answers
//! 401, so a token revoked or expired early (the clock lies, the server restarted) never fails
//! a sync. With rotation, each new refresh token is written durably *before* the access token it
//! came with is used: a crash at any point leaves the newest refresh token in storage.
//!
//! Rotation details that matter in practice:
//! - the access token is stored with its refresh token, so the next instance (the next job, after
//!   a restart) reuses it while it is fresh instead of spending another single-use refresh token;
//! - two instances of one connector (a sync and a ping) may race for the same refresh token; the
//!   loser gets `invalid_grant`, sees in storage that the winner already rotated, and adopts the
//!   winner's tokens instead of failing;
//! - a 401 never re-adopts the stored access token that was just rejected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::http::{Auth, Client, Request, Response};
use crate::{Error, Result, state};

/// Refresh this long before the server-announced expiry.
const EXPIRY_SKEW: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
enum Grant {
    RefreshToken {
        configured: String,
        rotation_key: Option<String>,
    },
    ClientCredentials {
        params: Vec<(String, String)>,
    },
}

/// What a token endpoint answers.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A rotated refresh token as stored: `seed` fingerprints the configured token it descends
/// from, so configuring a new token replaces the stored chain.
#[derive(Clone, Serialize, Deserialize)]
struct Rotated {
    seed: String,
    current: String,
    /// The access token issued together with `current` (absent in state written before it was
    /// kept), for reuse by the next instance while it is fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    /// Fingerprint of the client id the access token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client: Option<String>,
}

/// Plugin-specific advice appended to token errors (e.g. which setting to fix).
#[derive(Clone, Debug, Default)]
struct Hints {
    invalid_grant: Option<String>,
    invalid_client: Option<String>,
}

/// An OAuth 2.0 client for one token endpoint.
#[derive(Clone, Debug)]
pub struct OAuth {
    token_url: String,
    client_id: String,
    client_secret: String,
    grant: Grant,
    access: Option<(String, Option<u64>)>,
    /// The access token the source last rejected with 401: never adopted again from storage.
    rejected: Option<String>,
    hints: Hints,
    http: Client,
}

impl OAuth {
    /// The refresh-token grant (`grant_type=refresh_token`).
    pub fn refresh_token(
        token_url: impl Into<String>,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        http: Client,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            grant: Grant::RefreshToken {
                configured: refresh_token.into(),
                rotation_key: None,
            },
            access: None,
            rejected: None,
            hints: Hints::default(),
            http,
        }
    }

    /// The client-credentials grant with extra form parameters (e.g. Box's
    /// `box_subject_type=enterprise`, `box_subject_id=…`).
    pub fn client_credentials(
        token_url: impl Into<String>,
        client_id: &str,
        client_secret: &str,
        params: &[(&str, &str)],
        http: Client,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            grant: Grant::ClientCredentials {
                params: params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            access: None,
            rejected: None,
            hints: Hints::default(),
            http,
        }
    }

    /// The server rotates refresh tokens on every use: keep the newest one under `key` in the
    /// connector's storage, durably, before using the access token it came with.
    pub fn with_rotation(mut self, key: &str) -> Self {
        if let Grant::RefreshToken { rotation_key, .. } = &mut self.grant {
            *rotation_key = Some(key.to_string());
        }
        self
    }

    /// Advice appended to token errors: what to do about `invalid_grant` (e.g. "generate a new
    /// refresh token and update `refresh_token`") and about `invalid_client`.
    pub fn with_hints(mut self, invalid_grant: &str, invalid_client: &str) -> Self {
        self.hints = Hints {
            invalid_grant: Some(invalid_grant.to_string()),
            invalid_client: Some(invalid_client.to_string()),
        };
        self
    }

    /// A valid access token, fetching one when there is none or it is about to expire.
    pub fn access_token(&mut self) -> Result<String> {
        if let Some((token, expires_at)) = &self.access
            && fresh(*expires_at)
        {
            return Ok(token.clone());
        }
        if !self.adopt_stored()? {
            self.fetch()?;
        }
        self.access
            .as_ref()
            .map(|(t, _)| t.clone())
            .ok_or_else(|| Error::Auth("no access token".into()))
    }

    /// Drops the current access token (the source rejected it) and obtains another one: the one
    /// another instance stored meanwhile if any, else a new one from the token endpoint.
    pub fn force_refresh(&mut self) -> Result<()> {
        if let Some((token, _)) = self.access.take() {
            self.rejected = Some(token);
        }
        if self.adopt_stored()? {
            return Ok(());
        }
        self.fetch()
    }

    /// The rotation key and configured token, when this is a rotating refresh-token grant.
    fn rotation(&self) -> Option<(&str, &str)> {
        match &self.grant {
            Grant::RefreshToken {
                configured,
                rotation_key: Some(key),
            } => Some((key.as_str(), configured.as_str())),
            _ => None,
        }
    }

    /// The stored rotation state descending from the configured token, if any.
    fn stored(&self) -> Result<Option<Rotated>> {
        let Some((key, configured)) = self.rotation() else {
            return Ok(None);
        };
        Ok(state::get_json::<Rotated>(key)?.filter(|r| r.seed == fingerprint(configured)))
    }

    /// Uses the access token stored with the current refresh token when it is fresh, was issued
    /// to this client and is not the one just rejected. Returns whether it did.
    fn adopt_stored(&mut self) -> Result<bool> {
        let Some(stored) = self.stored()? else {
            return Ok(false);
        };
        let client = fingerprint(&self.client_id);
        match (stored.access, stored.expires_at) {
            (Some(token), expires_at)
                if stored.client.as_deref() == Some(client.as_str())
                    && fresh(expires_at)
                    && self.rejected.as_deref() != Some(token.as_str()) =>
            {
                self.access = Some((token, expires_at));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn current_refresh_token(&self, configured: &str) -> Result<String> {
        Ok(self
            .stored()?
            .map(|r| r.current)
            .unwrap_or_else(|| configured.to_string()))
    }

    fn fetch(&mut self) -> Result<()> {
        match self.exchange() {
            Err(Exchange::InvalidGrant { presented, error }) => {
                // Another instance of this connector may have rotated the token after we read
                // it: take its result rather than declaring the token dead.
                let stored = self.stored()?;
                match stored {
                    Some(r) if r.current != presented => {
                        crate::info!(
                            "the refresh token was rotated by another run; using the new one"
                        );
                        if self.adopt_stored()? {
                            return Ok(());
                        }
                        self.exchange().map_err(Exchange::into_error)
                    }
                    _ => Err(error),
                }
            }
            other => other.map_err(Exchange::into_error),
        }
    }

    /// One request to the token endpoint; on success the tokens are stored (rotation) and
    /// installed.
    fn exchange(&mut self) -> std::result::Result<(), Exchange> {
        let mut form: Vec<(String, String)> = vec![
            ("client_id".into(), self.client_id.clone()),
            ("client_secret".into(), self.client_secret.clone()),
        ];
        let presented = match &self.grant {
            Grant::RefreshToken { configured, .. } => {
                let current = self.current_refresh_token(configured)?;
                form.push(("grant_type".into(), "refresh_token".into()));
                form.push(("refresh_token".into(), current.clone()));
                Some(current)
            }
            Grant::ClientCredentials { params } => {
                form.push(("grant_type".into(), "client_credentials".into()));
                form.extend(params.iter().cloned());
                None
            }
        };
        let fields: Vec<(&str, &str)> =
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = Request::post(&self.token_url)
            .header("Accept", "application/json")
            .form(&fields);
        let response = self
            .http
            .send(&request)
            .map_err(|e| e.context("requesting an access token"))?;
        if !response.is_success() {
            let (code, error) = self.token_error(&response);
            return Err(match presented {
                Some(presented) if code.starts_with("invalid_grant") => {
                    Exchange::InvalidGrant { presented, error }
                }
                _ => Exchange::Failed(error),
            });
        }
        let answer: TokenAnswer = response.json().map_err(|e| e.context("token endpoint"))?;
        let expires_at = answer.expires_in.map(|s| now_secs() + s);
        if let (Some((key, configured)), Some(presented)) = (self.rotation(), presented) {
            // Durable before the access token is used: the presented refresh token is dead now.
            let rotated = Rotated {
                seed: fingerprint(configured),
                current: answer.refresh_token.clone().unwrap_or(presented),
                access: Some(answer.access_token.clone()),
                expires_at,
                client: Some(fingerprint(&self.client_id)),
            };
            state::set_json(key, &rotated)
                .map_err(|e| e.context("saving the rotated refresh token"))?;
        }
        self.access = Some((answer.access_token, expires_at));
        Ok(())
    }

    /// A token endpoint failure in words, and the OAuth error code. `invalid_grant` means the
    /// refresh token (or the subject of a client-credentials grant) is wrong; `invalid_client`
    /// means the client id or secret is.
    fn token_error(&self, response: &Response) -> (String, Error) {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: Option<String>,
        }
        let answer = response.json::<Answer>().ok();
        let code = answer.as_ref().map(|a| a.error.clone()).unwrap_or_default();
        let detail = answer
            .as_ref()
            .and_then(|a| a.error_description.clone())
            .unwrap_or_else(|| response.snippet());
        let hint = |h: &Option<String>| h.as_ref().map(|h| format!("; {h}")).unwrap_or_default();
        let error = if code.starts_with("invalid_grant") {
            let what = match self.grant {
                Grant::RefreshToken { .. } => {
                    "the refresh token is invalid, expired or was already used (a server that \
                     rotates refresh tokens accepts each one once)"
                }
                Grant::ClientCredentials { .. } => {
                    "the client-credentials grant was rejected (its subject, or the app's \
                     authorization for it)"
                }
            };
            Error::Auth(format!(
                "{what}: {detail}{}",
                hint(&self.hints.invalid_grant)
            ))
        } else if code.starts_with("invalid_client") || code.starts_with("unauthorized_client") {
            Error::Auth(format!(
                "the client id / secret (app key / secret) were rejected: {detail}{}",
                hint(&self.hints.invalid_client)
            ))
        } else if response.status >= 500 {
            Error::Transient(format!(
                "token endpoint answered HTTP {}: {detail}",
                response.status
            ))
        } else {
            Error::Auth(format!(
                "token endpoint answered HTTP {} {code}: {detail}",
                response.status
            ))
        };
        (code, error)
    }
}

/// How one token exchange failed.
enum Exchange {
    /// `invalid_grant` for this refresh token.
    InvalidGrant {
        presented: String,
        error: Error,
    },
    Failed(Error),
}

impl Exchange {
    fn into_error(self) -> Error {
        match self {
            Exchange::InvalidGrant { error, .. } | Exchange::Failed(error) => error,
        }
    }
}

impl From<Error> for Exchange {
    fn from(error: Error) -> Self {
        Exchange::Failed(error)
    }
}

impl Auth for OAuth {
    fn authorize(&mut self, request: &mut Request) -> Result<()> {
        let token = self.access_token()?;
        request.set_header("Authorization", format!("Bearer {token}"));
        Ok(())
    }

    fn refresh(&mut self, _response: &Response) -> Result<bool> {
        self.force_refresh()?;
        Ok(true)
    }
}

/// Whether a token with this expiry (Unix seconds) is still good for a while.
fn fresh(expires_at: Option<u64>) -> bool {
    expires_at.is_none_or(|at| now_secs() + EXPIRY_SKEW.as_secs() < at)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A short, stable fingerprint of a secret (FNV-1a), so storage never holds the configured token.
fn fingerprint(secret: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in secret.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("token"), fingerprint("token"));
    }
}
