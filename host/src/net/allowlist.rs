//! Where a plugin may connect: its allowlist of `host[:port]` entries, and the resolver that
//! screens what a host name resolves to.
//!
//! Invariants:
//! - a URL is sendable only with scheme http(s) and a `host[:port]` equal to an entry (an entry
//!   without a port allows only the scheme's default port);
//! - a host *name* resolves only to addresses the [`AddressGuard`] admits (public ones, or
//!   non-public ones the operator allows); IP literals are checked by the guard in the request
//!   path, since the connector does not ask the resolver for them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use hyper_util::client::legacy::connect::dns::Name;
use url::Url;

use super::address::AddressGuard;

/// One allowed `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

/// The hosts one plugin instance may contact.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    pub(crate) entries: Vec<Entry>,
}

impl Allowlist {
    /// Parses `host` / `host:port` / `[v6]:port` entries (a scheme prefix is tolerated).
    pub fn parse(hosts: &[String]) -> Result<Self, String> {
        let mut entries = Vec::new();
        for raw in hosts {
            let trimmed = raw.trim();
            let with_scheme = if trimmed.contains("://") {
                trimmed.to_string()
            } else {
                format!("http://{trimmed}")
            };
            let url = Url::parse(&with_scheme)
                .map_err(|e| format!("allowed host `{raw}` is not a host name: {e}"))?;
            let host = url
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| format!("allowed host `{raw}` has no host"))?;
            if host.contains('*') {
                return Err(format!("allowed host `{raw}`: wildcards are not supported"));
            }
            entries.push(Entry {
                host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
                port: url.port(),
            });
        }
        Ok(Self { entries })
    }

    /// The entries, as given back to operators (`host` or `host:port`).
    pub fn hosts(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| authority(&e.host, e.port))
            .collect()
    }

    /// `Ok` when `url` may be requested. An entry without a port allows the scheme's default port.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "scheme `{}` is not allowed (http and https only)",
                url.scheme()
            ));
        }
        let host = url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            .unwrap_or_default();
        let port = url.port_or_known_default();
        let default_port = url.port().is_none();
        let allowed = self.entries.iter().any(|e| {
            e.host == host
                && match e.port {
                    Some(p) => Some(p) == port,
                    None => default_port,
                }
        });
        if allowed {
            Ok(())
        } else {
            let authority = authority(&host, url.port());
            Err(format!(
                "`{authority}` is not in this plugin's allowed hosts [{}]",
                self.hosts().join(", ")
            ))
        }
    }
}

/// `host[:port]`, with an IPv6 address in brackets so the result parses again.
fn authority(host: &str, port: Option<u16>) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// DNS resolution that keeps only the addresses the [`AddressGuard`] admits: the check sees what
/// a name resolves to at connect time, so a name re-pointed at an internal address (DNS
/// rebinding) is refused like the address itself.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    pub(crate) guard: AddressGuard,
    /// The port this resolver's client connects to, when it is dedicated to one (the operator's
    /// entries with a port apply only then; see `HttpEngine`).
    pub(crate) port: Option<u16>,
    pub(crate) static_hosts: Arc<BTreeMap<String, Vec<IpAddr>>>,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.guard.clone();
        let port = self.port;
        let host = name.as_str().to_string();
        let fixed: Option<Vec<SocketAddr>> = self
            .static_hosts
            .get(&host.to_ascii_lowercase())
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match fixed {
                Some(addrs) => addrs,
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            // Boxed as itself, so `classify` finds the refusal by type.
            let allowed = guard.screen(&host, addrs, port)?;
            Ok::<_, Self::Error>(allowed.into_iter())
        })
    }
}
