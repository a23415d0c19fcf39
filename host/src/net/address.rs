//! Which addresses the host may connect to: one classifier of IP addresses, the operator's list of
//! non-public networks allowed anyway (`[http] allow_private`), and the guard that applies both to
//! the address actually connected to.
//!
//! Invariants:
//! - an address is public only when [`classify`] says [`AddressClass::Public`]; an IPv6 address
//!   carrying an IPv4 one (mapped, compatible, SIIT, NAT64 `64:ff9b::/96`, 6to4, Teredo) is
//!   classified by the IPv4 address it carries;
//! - a non-public address is reachable only when an operator entry names it (and its port, when
//!   the entry has one) or — in the standalone CLI only ([`PrivateAccess::NamedLiterals`]) — when
//!   the plugin's allowlist names it literally; nothing a tenant or plugin configures widens the
//!   operator's list, and the guard runs before any socket is opened.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// What kind of address an IP address is; everything but [`AddressClass::Public`] is refused
/// unless the operator allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    /// Reachable on the public internet.
    Public,
    /// `0.0.0.0`, `::` (connecting to it reaches the host itself).
    Unspecified,
    /// `0.0.0.0/8`: "this network".
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`: carrier-grade NAT.
    SharedCgnat,
    /// `169.254.0.0/16` (cloud metadata services live here), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7` and the deprecated site-local `fec0::/10`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `192.0.0.0/24`, `2001::/23` outside Teredo and benchmarking.
    IetfProtocol,
    /// `240.0.0.0/4`, `192.88.99.0/24`, `100::/64`, `64:ff9b:1::/48`, IPv6 outside `2000::/3`.
    Reserved,
}

impl AddressClass {
    /// How an error names the class ("127.0.0.1 is a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            Self::Public => "a public address",
            Self::Unspecified => "the unspecified address",
            Self::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::SharedCgnat => "a carrier-grade NAT address",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "a unique-local address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::IetfProtocol => "an IETF protocol address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// The class of `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether `ip` is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip) == AddressClass::Public
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if a == 0 {
        AddressClass::ThisNetwork
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedCgnat
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_documentation() {
        AddressClass::Documentation
    } else if a == 198 && (b == 18 || b == 19) {
        AddressClass::Benchmarking
    } else if (a, b, c) == (192, 0, 0) {
        AddressClass::IetfProtocol
    } else if (a, b, c) == (192, 88, 99) {
        AddressClass::Reserved
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if a >= 240 {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    // Teredo (2001::/32): the server's IPv4 in bits 32–63, the client's inverted in the last 32.
    if s[0] == 0x2001 && s[1] == 0 {
        let server = Ipv4Addr::from((u32::from(s[2]) << 16) | u32::from(s[3]));
        let client = Ipv4Addr::from(!((u32::from(s[6]) << 16) | u32::from(s[7])));
        return match (classify_v4(client), classify_v4(server)) {
            (AddressClass::Public, AddressClass::Public) => AddressClass::Public,
            (AddressClass::Public, other) | (other, _) => other,
        };
    }
    // 6to4 (2002::/16): the IPv4 address in bits 16–47.
    if s[0] == 0x2002 {
        return classify_v4(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        AddressClass::Documentation
    } else if s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0 {
        AddressClass::Benchmarking
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        AddressClass::IetfProtocol
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
        AddressClass::UniqueLocal
    } else if (s[0] & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if (s[0] & 0xe000) == 0x2000 {
        AddressClass::Public
    } else {
        // Outside global unicast: the discard prefix, local-use NAT64 and unallocated space.
        AddressClass::Reserved
    }
}

/// The IPv4 address an IPv6 one stands for: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
/// SIIT `::ffff:0:a.b.c.d` and NAT64 `64:ff9b::a.b.c.d`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0, 0, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        _ => None,
    }
}

/// Who may make a non-public address reachable, besides the operator's `allow_private` list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrivateAccess {
    /// Nobody else: `tributary serve` and the connectors service, where connector configurations
    /// (and so plugins' allowlists) come from tenants.
    #[default]
    OperatorOnly,
    /// Also an IP literal or `localhost` that the plugin's allowlist names: the standalone CLI,
    /// whose connector configurations are the user's own file.
    NamedLiterals,
}

/// One entry of `[http] allow_private`: a network (`10.1.0.0/16`), an address (`127.0.0.1`,
/// `::1`), or an address with a port (`127.0.0.1:9200`, `[::1]:9200`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedNetwork {
    /// The network (a single address is a /32 or /128).
    pub net: IpNet,
    /// The only port allowed, or any.
    pub port: Option<u16>,
}

impl AllowedNetwork {
    /// Whether `ip:port` is inside this entry (an IPv6 address carrying an IPv4 one also matches
    /// an entry for that IPv4 address).
    pub fn contains(&self, ip: IpAddr, port: Option<u16>) -> bool {
        let port_ok = self.port.is_none() || self.port == port;
        let carried = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        port_ok && (self.net.contains(&ip) || carried.is_some_and(|v4| self.net.contains(&v4)))
    }
}

impl FromStr for AllowedNetwork {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let bad = || {
            format!(
                "`{raw}` is not a network (`10.1.0.0/16`), an address (`127.0.0.1`, `::1`) or an \
                 address with a port (`127.0.0.1:9200`, `[::1]:9200`)"
            )
        };
        if let Ok(net) = IpNet::from_str(s) {
            return Ok(Self {
                net: net.trunc(),
                port: None,
            });
        }
        if let Ok(ip) = IpAddr::from_str(s) {
            return Ok(Self {
                net: IpNet::from(ip),
                port: None,
            });
        }
        if let Ok(addr) = SocketAddr::from_str(s) {
            if addr.port() == 0 {
                return Err(format!("`{raw}`: port 0 is not a port"));
            }
            return Ok(Self {
                net: IpNet::from(addr.ip()),
                port: Some(addr.port()),
            });
        }
        Err(bad())
    }
}

impl TryFrom<String> for AllowedNetwork {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<AllowedNetwork> for String {
    fn from(entry: AllowedNetwork) -> String {
        entry.to_string()
    }
}

impl fmt::Display for AllowedNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let single = self.net.prefix_len() == self.net.max_prefix_len();
        match (self.port, self.net) {
            (None, net) if single => write!(f, "{}", net.addr()),
            (None, net) => write!(f, "{net}"),
            (Some(port), IpNet::V6(net)) => write!(f, "[{}]:{port}", net.addr()),
            (Some(port), IpNet::V4(net)) => write!(f, "{}:{port}", net.addr()),
        }
    }
}

/// A connection the guard refused, before any socket was opened. Carried through the HTTP client's error
/// chain from the resolver and recognised by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The host name that resolved to the address, when it was a name.
    pub name: Option<String>,
    /// The refused address.
    pub address: IpAddr,
    /// Its class.
    pub class: AddressClass,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(
                f,
                "refused: `{name}` resolves to {}, {}; the operator has not allowed it \
                 (http.allow_private)",
                self.address,
                self.class.describe()
            ),
            None => write!(
                f,
                "refused: {} is {}; the operator has not allowed it (http.allow_private)",
                self.address,
                self.class.describe()
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// The operator's policy for non-public addresses, applied to every address connected to.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddressGuard {
    pub(crate) allowed: Vec<AllowedNetwork>,
    pub(crate) access: PrivateAccess,
}

impl AddressGuard {
    /// `Ok` when `ip` on `port` may be connected to: a public address, or one the operator allows.
    pub(crate) fn admit(
        &self,
        name: Option<&str>,
        ip: IpAddr,
        port: Option<u16>,
    ) -> Result<(), Refused> {
        let class = classify(ip);
        if class == AddressClass::Public || self.allowed.iter().any(|a| a.contains(ip, port)) {
            return Ok(());
        }
        Err(Refused {
            name: name.map(str::to_string),
            address: ip,
            class,
        })
    }

    /// Checks a URL whose host is an IP literal (the connector reaches those without asking the
    /// resolver); a host name is left to the resolver, which sees what it resolves to. The URL
    /// has passed the plugin's allowlist, so in the CLI a literal it names is the user's choice.
    pub(crate) fn check_literal(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) | None => return Ok(()),
        };
        if self.access == PrivateAccess::NamedLiterals {
            return Ok(());
        }
        self.admit(None, ip, url.port_or_known_default())
    }

    /// Keeps the addresses `name` may connect to on `port`; refuses when none is left.
    pub(crate) fn screen(
        &self,
        name: &str,
        addrs: Vec<SocketAddr>,
        port: Option<u16>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        if self.access == PrivateAccess::NamedLiterals && name.eq_ignore_ascii_case("localhost") {
            return Ok(addrs);
        }
        let mut first_refusal = None;
        let mut kept = Vec::new();
        for addr in addrs {
            match self.admit(Some(name), addr.ip(), port) {
                Ok(()) => kept.push(addr),
                Err(refused) => {
                    first_refusal.get_or_insert(refused);
                }
            }
        }
        match (kept.is_empty(), first_refusal) {
            (true, Some(refused)) => Err(refused),
            _ => Ok(kept),
        }
    }
}
