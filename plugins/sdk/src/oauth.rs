//! OAuth 2.0 client credentials for plugins: the refresh-token grant (optionally with refresh
//! token rotation persisted in storage) and the client-credentials grant, as an [`Auth`] for
//! [`crate::http::Client::send_authed`].
//!
//! Access tokens are refreshed shortly before they expire and again whenever the source answers
//! 401, so a token revoked or expired early (the clock lies, the server restarted) never fails
//! a sync. With rotation, each new refresh token is written durably *before* the access token it
//! came with is used: a crash at any point leaves the newest refresh token in storage.

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
#[derive(Serialize, Deserialize)]
struct Rotated {
    seed: String,
    current: String,
}

/// An OAuth 2.0 client for one token endpoint.
#[derive(Clone, Debug)]
pub struct OAuth {
    token_url: String,
    client_id: String,
    client_secret: String,
    grant: Grant,
    access: Option<(String, Option<u64>)>,
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

    /// A valid access token, fetching one when there is none or it is about to expire.
    pub fn access_token(&mut self) -> Result<String> {
        if let Some((token, expires_at)) = &self.access {
            let fresh = expires_at.is_none_or(|at| now_secs() + EXPIRY_SKEW.as_secs() < at);
            if fresh {
                return Ok(token.clone());
            }
        }
        self.fetch()?;
        self.access
            .as_ref()
            .map(|(t, _)| t.clone())
            .ok_or_else(|| Error::Auth("no access token".into()))
    }

    /// Drops the current access token and fetches a new one.
    pub fn force_refresh(&mut self) -> Result<()> {
        self.access = None;
        self.fetch()
    }

    fn current_refresh_token(
        &self,
        configured: &str,
        rotation_key: Option<&str>,
    ) -> Result<String> {
        let Some(key) = rotation_key else {
            return Ok(configured.to_string());
        };
        match state::get_json::<Rotated>(key)? {
            Some(r) if r.seed == fingerprint(configured) => Ok(r.current),
            _ => Ok(configured.to_string()),
        }
    }

    fn fetch(&mut self) -> Result<()> {
        let mut form: Vec<(String, String)> = vec![
            ("client_id".into(), self.client_id.clone()),
            ("client_secret".into(), self.client_secret.clone()),
        ];
        let (configured, rotation_key) = match &self.grant {
            Grant::RefreshToken {
                configured,
                rotation_key,
            } => {
                let current = self.current_refresh_token(configured, rotation_key.as_deref())?;
                form.push(("grant_type".into(), "refresh_token".into()));
                form.push(("refresh_token".into(), current));
                (Some(configured.clone()), rotation_key.clone())
            }
            Grant::ClientCredentials { params } => {
                form.push(("grant_type".into(), "client_credentials".into()));
                form.extend(params.iter().cloned());
                (None, None)
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
            return Err(token_error(&response));
        }
        let answer: TokenAnswer = response.json().map_err(|e| e.context("token endpoint"))?;
        if let (Some(configured), Some(key), Some(new)) =
            (configured, rotation_key, answer.refresh_token.as_ref())
        {
            // Durable before the access token is used: the old refresh token is dead now.
            state::set_json(
                &key,
                &Rotated {
                    seed: fingerprint(&configured),
                    current: new.clone(),
                },
            )
            .map_err(|e| e.context("saving the rotated refresh token"))?;
        }
        let expires_at = answer.expires_in.map(|s| now_secs() + s);
        self.access = Some((answer.access_token, expires_at));
        Ok(())
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

/// A token endpoint failure in words. `invalid_grant` means the refresh token (or the subject
/// of a client-credentials grant) is wrong; `invalid_client` means the client id or secret is.
fn token_error(response: &Response) -> Error {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    let answer = response.json::<Answer>().ok();
    let code = answer
        .as_ref()
        .map(|a| a.error.as_str())
        .unwrap_or_default();
    let detail = answer
        .as_ref()
        .and_then(|a| a.error_description.clone())
        .unwrap_or_else(|| response.snippet());
    if code.starts_with("invalid_grant") {
        Error::Auth(format!(
            "the refresh token (or grant) was rejected: {detail}"
        ))
    } else if code.starts_with("invalid_client") || code.starts_with("unauthorized_client") {
        Error::Auth(format!(
            "the client id / secret (app key / secret) were rejected: {detail}"
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
    }
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
