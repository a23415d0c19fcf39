//! Where a plugin may connect: its allowlist of `host[:port]` entries, and the address guard that
//! screens what a host name resolves to.
//!
//! Invariants:
//! - a URL is sendable only with scheme http(s) and a `host[:port]` equal to an entry (an entry
//!   without a port allows only the scheme's default port);
//! - a host *name* that resolves only to loopback, private or link-local addresses is refused
//!   after DNS resolution, unless the operator allows private networks or the name is `localhost`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use url::Url;

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

/// Whether an address is on the public internet (not loopback, private, link-local, …).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19))) // benchmarking
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

pub(crate) const PRIVATE_MARKER: &str = "resolves only to private or loopback addresses";

/// DNS resolution that drops non-public addresses unless the operator allows them.
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
    pub(crate) static_hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
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
            let allowed = screen(&host, addrs, allow_private)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Keeps the addresses a host name may connect to: public ones, or all when the operator allows
/// private networks or the name is `localhost` (nobody types that by accident).
pub(crate) fn screen(
    host: &str,
    addrs: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let explicit_loopback = host.eq_ignore_ascii_case("localhost");
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| allow_private || explicit_loopback || is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(format!(
            "`{host}` {PRIVATE_MARKER}, which plugins may not reach"
        ));
    }
    Ok(allowed)
}
