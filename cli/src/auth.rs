//! `tributary auth dropbox|box`: a refresh token without reading API docs. Runs OAuth 2.0's
//! authorization-code flow: prints the provider's consent URL, receives the code on a loopback
//! redirect (`http://127.0.0.1:<port>/callback`, which must be registered as a redirect URI of
//! the app) or as pasted text (`--no-redirect`, Dropbox only), exchanges it at the token
//! endpoint, and prints the connector settings — or appends them as a new connector to the
//! configuration file (`--connector ID`). docs/credentials.md explains creating the apps.
//!
//! Invariants: the redirect listener binds loopback only and accepts exactly one request whose
//! `state` matches the random one sent (anything else is refused, and the wait goes on); the
//! secret and tokens are never logged; an existing connector in the file is never rewritten
//! (its settings are printed to copy instead), so comments and formatting stay as they are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// Dropbox (an app from the App Console; offline access).
    Dropbox,
    /// Box (a Custom App with "User Authentication (OAuth 2.0)").
    Box,
}

impl Provider {
    /// The plugin that uses the token.
    pub fn plugin(self) -> &'static str {
        match self {
            Provider::Dropbox => "dropbox",
            Provider::Box => "box",
        }
    }

    fn default_authorize_url(self) -> &'static str {
        match self {
            Provider::Dropbox => "https://www.dropbox.com/oauth2/authorize",
            Provider::Box => "https://account.box.com/api/oauth2/authorize",
        }
    }

    fn default_token_url(self) -> &'static str {
        match self {
            Provider::Dropbox => "https://api.dropboxapi.com/oauth2/token",
            Provider::Box => "https://api.box.com/oauth2/token",
        }
    }

    /// The connector settings' names of the client id and secret.
    fn client_keys(self) -> (&'static str, &'static str) {
        match self {
            Provider::Dropbox => ("app_key", "app_secret"),
            Provider::Box => ("client_id", "client_secret"),
        }
    }
}

/// `tributary auth <provider>` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct AuthArgs {
    /// The app's client id (Dropbox: App key).
    #[arg(long, env = "TRIBUTARY_AUTH_CLIENT_ID")]
    pub client_id: String,
    /// The app's client secret (Dropbox: App secret).
    #[arg(long, env = "TRIBUTARY_AUTH_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: String,
    /// Port of the loopback redirect `http://127.0.0.1:<port>/callback` (register that URI in
    /// the app; 0 picks a free port, for tests).
    #[arg(long, default_value_t = 53682)]
    pub port: u16,
    /// No redirect: paste the code the provider shows (Dropbox only; Box needs a redirect URI).
    #[arg(long)]
    pub no_redirect: bool,
    /// Append a connector with this id and the credentials to the configuration file.
    #[arg(long)]
    pub connector: Option<String>,
    /// Authorization endpoint (default: the provider's).
    #[arg(long)]
    pub authorize_url: Option<String>,
    /// Token endpoint (default: the provider's).
    #[arg(long)]
    pub token_url: Option<String>,
    /// How long to wait for the consent.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

/// What the flow obtained.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The long-lived refresh token.
    pub refresh_token: String,
    /// The scopes granted, when the provider says.
    pub scope: Option<String>,
}

/// The consent URL.
pub fn authorize_url(
    provider: Provider,
    args: &AuthArgs,
    redirect: Option<&str>,
    state: &str,
) -> anyhow::Result<String> {
    let base = args
        .authorize_url
        .as_deref()
        .unwrap_or(provider.default_authorize_url());
    let mut url = url::Url::parse(base).with_context(|| format!("authorize URL `{base}`"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &args.client_id)
            .append_pair("response_type", "code");
        if provider == Provider::Dropbox {
            // A refresh token (long-lived) besides the short-lived access token.
            q.append_pair("token_access_type", "offline");
        }
        if let Some(redirect) = redirect {
            q.append_pair("redirect_uri", redirect)
                .append_pair("state", state);
        }
    }
    Ok(url.into())
}

fn random_state() -> String {
    use std::hash::{BuildHasher, Hasher};
    // Unpredictable enough for CSRF protection of a one-shot loopback listener: std's
    // randomly keyed SipHash over the time and process id (no RNG dependency for 16 bytes).
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Runs the flow and reports; the printed URL goes to stderr, the settings to stdout.
pub async fn run(provider: Provider, args: &AuthArgs, config_file: &Path) -> anyhow::Result<()> {
    if provider == Provider::Box && args.no_redirect {
        bail!(
            "Box has no no-redirect flow: register http://127.0.0.1:{}/callback as a redirect URI of the app",
            args.port
        );
    }
    if let Some(id) = &args.connector
        && connector_exists(config_file, id)?
    {
        bail!(
            "{} already configures connector `{id}`; choose another id (or run without --connector and copy the settings)",
            config_file.display()
        );
    }
    let state = random_state();
    let (code, redirect) = if args.no_redirect {
        let url = authorize_url(provider, args, None, &state)?;
        eprintln!("Open this URL, allow access, and paste the code it shows:\n\n  {url}\n");
        eprint!("code: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the code")?;
        (line.trim().to_string(), None)
    } else {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("listening on 127.0.0.1:{} for the redirect", args.port))?;
        let redirect = format!(
            "http://127.0.0.1:{}/callback",
            listener.local_addr()?.port()
        );
        let url = authorize_url(provider, args, Some(&redirect), &state)?;
        eprintln!(
            "Open this URL and allow access (the redirect to {redirect} completes the sign-in):\n\n  {url}\n"
        );
        let code = tokio::time::timeout(
            Duration::from_secs(args.timeout_secs),
            receive_code(&listener, &state),
        )
        .await
        .map_err(|_| anyhow!("no consent within {} s", args.timeout_secs))??;
        (code, Some(redirect))
    };
    if code.is_empty() {
        bail!("no code given");
    }
    let grant = exchange(provider, args, &code, redirect.as_deref()).await?;
    let (id_key, secret_key) = provider.client_keys();
    let mut settings = format!(
        "{id_key} = {}\n{secret_key} = {}\nrefresh_token = {}\n",
        toml_string(&args.client_id),
        toml_string(&args.client_secret),
        toml_string(&grant.refresh_token)
    );
    if provider == Provider::Box {
        settings = format!("is_enterprise = \"box_free\"\n{settings}");
    }
    if let Some(scope) = &grant.scope {
        eprintln!("granted scopes: {scope}");
    }
    match &args.connector {
        Some(id) => {
            let block = format!(
                "\n[[connectors]]\nid = {}\nplugin = \"{}\"\n[connectors.config]\n{settings}",
                toml_string(id),
                provider.plugin()
            );
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(config_file)
                .with_context(|| format!("opening {}", config_file.display()))?;
            file.write_all(block.as_bytes())
                .with_context(|| format!("writing {}", config_file.display()))?;
            println!(
                "connector `{id}` added to {}; check it with `tributary connectors --ping`",
                config_file.display()
            );
        }
        None => {
            println!("[connectors.config]\n{settings}");
        }
    }
    Ok(())
}

fn toml_string(s: &str) -> String {
    Value::from(s).to_string()
}

fn connector_exists(file: &Path, id: &str) -> anyhow::Result<bool> {
    if !file.exists() {
        return Ok(false);
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    Ok(table
        .get("connectors")
        .and_then(|c| c.as_array())
        .is_some_and(|list| {
            list.iter()
                .any(|c| c.get("id").and_then(|v| v.as_str()) == Some(id))
        }))
}

/// Waits for `GET /callback?code=…&state=<state>` on `listener`; other requests get a 400 and
/// the wait goes on (a browser asks for `/favicon.ico`; a stray page must not end the flow).
async fn receive_code(listener: &tokio::net::TcpListener, state: &str) -> anyhow::Result<String> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let mut len = 0;
        while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]).into_owned();
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let parsed = url::Url::parse(&format!("http://127.0.0.1{target}")).ok();
        let param = |name: &str| {
            parsed.as_ref().and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            })
        };
        let outcome = match (parsed.as_ref().map(|u| u.path()), param("state")) {
            (Some("/callback"), Some(s)) if s == state => match (param("code"), param("error")) {
                (Some(code), _) => Ok(code),
                (None, Some(error)) => Err(anyhow!(
                    "the provider refused: {error} {}",
                    param("error_description").unwrap_or_default()
                )),
                (None, None) => Err(anyhow!("the redirect carried no code")),
            },
            _ => {
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                continue;
            }
        };
        let page = match &outcome {
            Ok(_) => "Signed in. You can close this tab and return to the terminal.",
            Err(_) => "Sign-in failed; see the terminal.",
        };
        let _ = socket
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                )
                .as_bytes(),
            )
            .await;
        return outcome;
    }
}

/// Exchanges the code for tokens at the token endpoint.
pub async fn exchange(
    provider: Provider,
    args: &AuthArgs,
    code: &str,
    redirect: Option<&str>,
) -> anyhow::Result<Grant> {
    let url = args
        .token_url
        .as_deref()
        .unwrap_or(provider.default_token_url());
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", args.client_id.as_str()),
        ("client_secret", args.client_secret.as_str()),
    ];
    if let Some(r) = redirect {
        form.push(("redirect_uri", r));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let response = client
        .post(url)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("POST {url}: the answer is not JSON"))?;
    if !status.is_success() {
        let error = body.get("error").and_then(Value::as_str).unwrap_or("");
        let description = body
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("");
        bail!("POST {url}: HTTP {status}: {error} {description}");
    }
    let refresh_token = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .ok_or_else(|| match provider {
            Provider::Dropbox => anyhow!(
                "the answer has no refresh_token (was `token_access_type=offline` dropped from the authorize URL?)"
            ),
            Provider::Box => anyhow!("the answer has no refresh_token"),
        })?
        .to_string();
    Ok(Grant {
        refresh_token,
        scope: body.get("scope").and_then(Value::as_str).map(String::from),
    })
}

/// The configuration file `--connector` appends to: `--config`, else `./tributary.toml`.
pub fn config_file(flag: Option<&PathBuf>) -> PathBuf {
    flag.cloned()
        .unwrap_or_else(|| PathBuf::from("tributary.toml"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args() -> AuthArgs {
        AuthArgs {
            client_id: "app key".into(),
            client_secret: "secret".into(),
            port: 0,
            no_redirect: false,
            connector: None,
            authorize_url: None,
            token_url: None,
            timeout_secs: 5,
        }
    }

    #[test]
    fn authorize_urls_ask_each_provider_for_what_it_needs() {
        let url = authorize_url(Provider::Dropbox, &args(), None, "s").unwrap();
        assert_eq!(
            url,
            "https://www.dropbox.com/oauth2/authorize?client_id=app+key&response_type=code&token_access_type=offline"
        );
        let url = authorize_url(
            Provider::Box,
            &args(),
            Some("http://127.0.0.1:5/callback"),
            "st8",
        )
        .unwrap();
        assert_eq!(
            url,
            "https://account.box.com/api/oauth2/authorize?client_id=app+key&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcallback&state=st8"
        );
        assert_ne!(random_state(), random_state());
    }

    #[tokio::test]
    async fn the_redirect_listener_takes_only_its_own_state() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let waiting = tokio::spawn(async move { receive_code(&listener, "good").await });
        let client = reqwest::Client::new();
        for stray in ["/favicon.ico", "/callback?code=x&state=forged"] {
            let status = client
                .get(format!("{base}{stray}"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 400, "{stray}");
        }
        assert!(!waiting.is_finished());
        let page = client
            .get(format!("{base}/callback?code=the%20code&state=good"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(waiting.await.unwrap().unwrap(), "the code");
    }
}
