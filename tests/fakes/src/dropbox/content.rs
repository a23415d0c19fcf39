//! Deterministic building blocks: a tiny PRNG, file bodies generated on demand from a seed,
//! Dropbox's `content_hash`, base64, percent-encoding and RFC 3339 time stamps.
//!
//! Generated bodies are a pure function of `(flavor, seed, size, title)`, so the fake never stores
//! the bodies of a 100 000-entry tree and a body of any requested size (including > 10 MiB) is
//! only materialised when a client downloads or searches it.

use std::fmt::Write as _;

/// SplitMix64: small, fast and stable forever (unlike `StdRng`, whose stream may change between
/// `rand` releases), which keeps generated trees identical across toolchains.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.below(items.len() as u64) as usize;
        items.get(i).copied().unwrap_or("")
    }
}

/// Mixes two numbers into one well-distributed seed.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.rotate_left(29).wrapping_mul(0x2545_F491_4F6C_DD1D)).next_u64()
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A deterministic string of `len` base62 characters derived from `seed`.
pub(crate) fn base62(seed: u64, len: usize) -> String {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| BASE62[rng.below(BASE62.len() as u64) as usize] as char)
        .collect()
}

/// What a body looks like; chosen from the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Text,
    Markdown,
    Csv,
    Json,
    Html,
    Python,
    Xml,
    /// Dropbox Paper: stored (and exported) as markdown.
    Paper,
    /// Opaque bytes with a plausible magic number.
    Binary,
}

impl Flavor {
    pub(crate) fn for_name(name: &str) -> Flavor {
        match extension(name).as_str() {
            "txt" | "text" | "log" | "rst" => Flavor::Text,
            "md" | "markdown" => Flavor::Markdown,
            "csv" | "tsv" => Flavor::Csv,
            "json" => Flavor::Json,
            "html" | "htm" => Flavor::Html,
            "py" | "rb" | "sh" => Flavor::Python,
            "xml" | "svg" => Flavor::Xml,
            "paper" => Flavor::Paper,
            _ => Flavor::Binary,
        }
    }

    /// Whether search may look inside the body.
    pub(crate) fn is_text(self) -> bool {
        self != Flavor::Binary
    }
}

/// Lower-case extension without the dot ("" when none).
pub(crate) fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_lowercase(),
        _ => String::new(),
    }
}

fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// Ordinary words every generated text body is made of, so searches have something to find.
pub(crate) const WORDS: &[&str] = &[
    "revenue",
    "forecast",
    "budget",
    "customer",
    "pipeline",
    "quarterly",
    "invoice",
    "contract",
    "roadmap",
    "milestone",
    "deadline",
    "analysis",
    "strategy",
    "marketing",
    "engineering",
    "design",
    "prototype",
    "feedback",
    "meeting",
    "agenda",
    "summary",
    "proposal",
    "vendor",
    "partner",
    "compliance",
    "security",
    "audit",
    "release",
    "deployment",
    "incident",
    "postmortem",
    "latency",
    "throughput",
    "database",
    "migration",
    "schema",
    "dashboard",
    "metrics",
    "retention",
    "onboarding",
    "hiring",
    "benchmark",
    "inventory",
    "shipment",
    "warehouse",
    "logistics",
    "pricing",
    "discount",
    "subscription",
    "renewal",
    "growth",
    "region",
    "europe",
    "asia",
    "americas",
    "northwind",
    "contoso",
    "fabrikam",
    "globex",
    "initech",
    "river",
    "harbor",
    "lighthouse",
    "mountain",
    "orchard",
    "meadow",
    "glacier",
    "canyon",
    "falcon",
    "otter",
    "heron",
    "maple",
    "cedar",
    "willow",
    "copper",
    "silver",
    "cobalt",
    "amber",
    "indigo",
    "crimson",
    "granite",
    "quartz",
    "nebula",
    "comet",
    "orbit",
    "satellite",
    "telescope",
    "compass",
    "lantern",
    "anchor",
    "bridge",
    "tunnel",
    "railway",
    "harvest",
    "festival",
    "recipe",
    "kitchen",
    "garden",
    "library",
    "museum",
    "theater",
    "concert",
    "travel",
    "itinerary",
    "passport",
    "luggage",
    "hotel",
    "flight",
    "weather",
    "holiday",
    "calendar",
    "schedule",
    "payroll",
    "benefits",
    "policy",
    "handbook",
    "training",
    "mentor",
    "review",
    "approval",
    "signature",
    "draft",
    "archive",
    "backup",
    "restore",
    "encryption",
    "password",
    "firewall",
    "network",
    "server",
    "cluster",
    "container",
    "kernel",
    "compiler",
    "parser",
    "index",
    "search",
    "query",
    "ranking",
    "relevance",
    "snippet",
];

fn sentence(rng: &mut Rng) -> String {
    let n = rng.range(6, 14);
    let mut s = String::new();
    for i in 0..n {
        let w = rng.pick(WORDS);
        if i == 0 {
            let mut chars = w.chars();
            if let Some(first) = chars.next() {
                s.extend(first.to_uppercase());
                s.push_str(chars.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    s.push('.');
    s
}

fn paragraph(rng: &mut Rng) -> String {
    let n = rng.range(2, 5);
    let mut p = String::new();
    for i in 0..n {
        if i > 0 {
            p.push(' ');
        }
        p.push_str(&sentence(rng));
    }
    p
}

/// The reference code embedded in every generated body: a unique, searchable token.
pub(crate) fn reference_code(seed: u64) -> String {
    format!("TRB{:08X}", seed & 0xFFFF_FFFF)
}

/// Produces exactly `size` bytes: `header`, as many records as fit, `footer`, then `pad` bytes.
/// Whitespace padding keeps every format (JSON, HTML, CSV, Markdown) valid.
fn fill(
    size: usize,
    header: &str,
    footer: &str,
    pad: u8,
    mut record: impl FnMut(usize) -> String,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    if header.len() + footer.len() > size {
        // Too small for the structure: a truncated header (on a char boundary) and padding.
        let mut cut = size.min(header.len());
        while !header.is_char_boundary(cut) {
            cut -= 1;
        }
        out.extend_from_slice(&header.as_bytes()[..cut]);
        out.resize(size, pad);
        return out;
    }
    out.extend_from_slice(header.as_bytes());
    let mut i = 0;
    loop {
        let rec = record(i);
        if rec.is_empty() || out.len() + rec.len() + footer.len() > size {
            break;
        }
        out.extend_from_slice(rec.as_bytes());
        i += 1;
    }
    out.extend_from_slice(footer.as_bytes());
    out.resize(size, pad);
    out
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The body of a generated file: exactly `size` bytes, a pure function of the arguments.
pub(crate) fn generate(flavor: Flavor, seed: u64, size: u64, name: &str) -> Vec<u8> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let mut rng = Rng::new(seed);
    let title = stem(name);
    let code = reference_code(seed);
    match flavor {
        Flavor::Text => {
            let header = format!("{title}\n\nReference code: {code}\n\n");
            fill(size, &header, "\n", b'\n', |_| {
                format!("{}\n\n", paragraph(&mut rng))
            })
        }
        Flavor::Markdown | Flavor::Paper => {
            let header = format!("# {title}\n\nReference code: `{code}`\n\n");
            fill(size, &header, "\n", b'\n', |i| {
                if i % 4 == 0 {
                    format!("## {}\n\n", sentence(&mut rng).trim_end_matches('.'))
                } else if i % 4 == 3 {
                    format!("- {}\n- {}\n\n", sentence(&mut rng), sentence(&mut rng))
                } else {
                    format!("{}\n\n", paragraph(&mut rng))
                }
            })
        }
        Flavor::Csv => {
            let header =
                format!("id,date,region,item,amount,notes\n0,2024-01-01,all,{code},0,header row\n");
            fill(size, &header, "", b'\n', |i| {
                format!(
                    "{},2024-{:02}-{:02},{},{},{}.{:02},{} {}\n",
                    i + 1,
                    rng.range(1, 12),
                    rng.range(1, 28),
                    rng.pick(&["europe", "asia", "americas", "africa", "oceania"]),
                    rng.pick(WORDS),
                    rng.range(1, 99_999),
                    rng.below(100),
                    rng.pick(WORDS),
                    rng.pick(WORDS)
                )
            })
        }
        Flavor::Json => {
            let header = format!(
                "{{\"title\": {}, \"reference\": \"{code}\", \"records\": [\n  {{\"n\": 0, \"text\": \"start\"}}",
                json_string(title)
            );
            fill(size, &header, "\n]}\n", b' ', |i| {
                format!(
                    ",\n  {{\"n\": {}, \"text\": {}}}",
                    i + 1,
                    json_string(&sentence(&mut rng))
                )
            })
        }
        Flavor::Html => {
            let t = html_escape(title);
            let header = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body>\n<h1>{t}</h1>\n<p>Reference code: {code}</p>\n"
            );
            fill(size, &header, "</body></html>\n", b'\n', |i| {
                if i % 5 == 0 {
                    format!("<h2>{}</h2>\n", sentence(&mut rng))
                } else {
                    format!("<p>{}</p>\n", paragraph(&mut rng))
                }
            })
        }
        Flavor::Python => {
            let header = format!("\"\"\"{title}\n\nReference code: {code}\n\"\"\"\n\n");
            fill(size, &header, "", b'\n', |i| {
                format!(
                    "def {}_{}():\n    \"\"\"{}\"\"\"\n    return {}\n\n\n",
                    rng.pick(WORDS),
                    i,
                    sentence(&mut rng),
                    rng.below(1000)
                )
            })
        }
        Flavor::Xml => {
            let header = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<document title=\"{}\" reference=\"{code}\">\n",
                html_escape(title)
            );
            fill(size, &header, "</document>\n", b'\n', |_| {
                format!("  <para>{}</para>\n", paragraph(&mut rng))
            })
        }
        Flavor::Binary => {
            let magic: &[u8] = match extension(name).as_str() {
                "jpg" | "jpeg" => &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F'],
                "png" => &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
                "zip" => b"PK\x03\x04",
                "mp4" | "mov" => &[0, 0, 0, 0x18, b'f', b't', b'y', b'p'],
                "exe" => b"MZ",
                _ => &[0, 1, 2, 3],
            };
            let mut out = Vec::with_capacity(size);
            out.extend_from_slice(&magic[..magic.len().min(size)]);
            while out.len() < size {
                let word = rng.next_u64().to_le_bytes();
                let take = (size - out.len()).min(8);
                out.extend_from_slice(&word[..take]);
            }
            out
        }
    }
}

/// Markdown as a Paper export in another format (`html` or `plain_text`).
pub(crate) fn render_markdown(markdown: &str, format: &str) -> String {
    match format {
        "html" => {
            let mut html = String::from("<html><body>\n");
            for block in markdown.split("\n\n") {
                let block = block.trim();
                if block.is_empty() {
                    continue;
                }
                let level = block.chars().take_while(|c| *c == '#').count();
                if (1..=6).contains(&level) {
                    let _ = writeln!(
                        html,
                        "<h{level}>{}</h{level}>",
                        html_escape(block[level..].trim())
                    );
                } else {
                    let _ = writeln!(html, "<p>{}</p>", html_escape(block));
                }
            }
            html.push_str("</body></html>\n");
            html
        }
        _ => markdown
            .lines()
            .map(|l| l.trim_start_matches('#').trim_start_matches("- ").trim())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

// ---------------------------------------------------------------------------------------------
// SHA-256 and Dropbox's content hash.

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

fn sha256_block(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (i, chunk) in block.chunks_exact(4).take(16).enumerate() {
        w[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut state: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut chunks = data.chunks_exact(64);
    for block in &mut chunks {
        sha256_block(&mut state, block);
    }
    let rest = chunks.remainder();
    let mut tail = Vec::with_capacity(128);
    tail.extend_from_slice(rest);
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in tail.chunks_exact(64) {
        sha256_block(&mut state, block);
    }
    let mut out = [0u8; 32];
    for (i, word) in state.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Dropbox's `content_hash`: SHA-256 over the concatenated SHA-256 of each 4 MiB block.
pub(crate) fn content_hash(data: &[u8]) -> String {
    let mut digests = Vec::with_capacity(32 * (data.len() / (4 << 20) + 1));
    for block in data.chunks(4 << 20) {
        digests.extend_from_slice(&sha256(block));
    }
    hex(&sha256(&digests))
}

// ---------------------------------------------------------------------------------------------
// Encodings.

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding (cursors).
pub(crate) fn base64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not; `None` on any invalid character.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
pub(crate) fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hexpair = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hexpair {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` pairs (later duplicates win when collected into a map).
pub(crate) fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(pair), String::new()),
        })
        .collect()
}

/// JSON safe for an HTTP header: every non-ASCII character escaped as `\uXXXX`, as Dropbox does
/// for `Dropbox-API-Result`.
pub(crate) fn header_safe_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Time.

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            hex(&sha256(&long)),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    #[test]
    fn generated_bodies_have_the_exact_size_and_are_deterministic() {
        for flavor in [
            Flavor::Text,
            Flavor::Markdown,
            Flavor::Csv,
            Flavor::Json,
            Flavor::Html,
            Flavor::Python,
            Flavor::Xml,
            Flavor::Paper,
            Flavor::Binary,
        ] {
            for size in [0u64, 5, 100, 777, 4096] {
                let a = generate(flavor, 42, size, "Résumé \"draft\".txt");
                assert_eq!(a.len() as u64, size, "{flavor:?} {size}");
                assert_eq!(a, generate(flavor, 42, size, "Résumé \"draft\".txt"));
            }
        }
        let json = generate(Flavor::Json, 7, 3000, "data.json");
        assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
    }

    #[test]
    fn encodings_round_trip() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\x00"] {
            assert_eq!(base64_decode(&base64url(data)).as_deref(), Some(data));
        }
        assert_eq!(
            base64_decode("Zm9vOmJhcg==").as_deref(),
            Some(&b"foo:bar"[..])
        );
        assert_eq!(form_decode("a+b%20c%2"), "a b c%2");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        let v = serde_json::json!({"name": "Crème 日本 😀"});
        assert!(header_safe_json(&v).is_ascii());
        let back: serde_json::Value =
            serde_json::from_str(&header_safe_json(&v)).unwrap_or_default();
        assert_eq!(back, v);
    }
}
