//! File bodies, derived on demand.
//!
//! A 100 000-item tree must not hold 100 000 bodies, so generated files only store a seed, a
//! format and the exact size; the bytes are rebuilt whenever someone downloads them. Bodies are a
//! pure function of the seed, so a copied file serves identical bytes, and big files (> 10 MiB)
//! cost nothing until they are actually downloaded.

use std::sync::Arc;

use super::util::{Rng, Sha1};

/// Text formats the generator can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextFormat {
    Txt,
    Md,
    Csv,
    Json,
    Html,
}

impl TextFormat {
    pub(crate) fn extension(self) -> &'static str {
        match self {
            TextFormat::Txt => "txt",
            TextFormat::Md => "md",
            TextFormat::Csv => "csv",
            TextFormat::Json => "json",
            TextFormat::Html => "html",
        }
    }
}

/// Binary formats: only the leading magic bytes differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryFormat {
    Png,
    Jpg,
    Zip,
    Exe,
    Mp4,
    Bin,
}

impl BinaryFormat {
    pub(crate) fn extension(self) -> &'static str {
        match self {
            BinaryFormat::Png => "png",
            BinaryFormat::Jpg => "jpg",
            BinaryFormat::Zip => "zip",
            BinaryFormat::Exe => "exe",
            BinaryFormat::Mp4 => "mp4",
            BinaryFormat::Bin => "bin",
        }
    }

    fn magic(self) -> &'static [u8] {
        match self {
            BinaryFormat::Png => b"\x89PNG\r\n\x1a\n",
            BinaryFormat::Jpg => b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
            BinaryFormat::Zip => b"PK\x03\x04",
            BinaryFormat::Exe => b"MZ\x90\x00",
            BinaryFormat::Mp4 => b"\x00\x00\x00\x18ftypmp42",
            BinaryFormat::Bin => b"",
        }
    }
}

/// A file's body. Cloning is cheap (seeds, or a shared buffer).
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// Folders have no body.
    None,
    /// Generated text of exactly `size` bytes.
    Text {
        seed: u64,
        format: TextFormat,
        size: u64,
    },
    /// Generated binary noise behind a format's magic bytes.
    Binary {
        seed: u64,
        format: BinaryFormat,
        size: u64,
    },
    /// A big file (usually > 10 MiB) made of fixed 64-byte lines, produced chunk by chunk.
    Big { seed: u64, size: u64 },
    /// Bytes supplied by a test (`create_file`, `edit_file`).
    Bytes(Arc<[u8]>),
    /// Hand-written text of the demo tree.
    Static(&'static str),
}

/// Smallest size a generated text body can have (header and footer included).
pub(crate) const MIN_TEXT_SIZE: u64 = 160;

const BIG_LINE: usize = 64;
const CHUNK: usize = 64 * 1024;

const WORDS: &[&str] = &[
    "quarterly",
    "roadmap",
    "budget",
    "invoice",
    "contract",
    "renewal",
    "customer",
    "onboarding",
    "security",
    "review",
    "incident",
    "postmortem",
    "latency",
    "throughput",
    "migration",
    "database",
    "search",
    "index",
    "relevance",
    "pipeline",
    "forecast",
    "revenue",
    "marketing",
    "campaign",
    "launch",
    "design",
    "prototype",
    "feedback",
    "hiring",
    "interview",
    "policy",
    "compliance",
    "audit",
    "vendor",
    "procurement",
    "warehouse",
    "shipment",
    "inventory",
    "analytics",
    "dashboard",
    "retention",
    "churn",
    "pricing",
    "partner",
    "integration",
    "webhook",
    "tributary",
    "river",
    "estuary",
    "delta",
    "harbor",
    "lighthouse",
    "compass",
    "meridian",
    "aurora",
    "glacier",
    "summit",
    "canyon",
    "prairie",
    "orchard",
];

impl Content {
    /// The exact number of bytes a download returns.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Content::None => 0,
            Content::Text { size, .. }
            | Content::Binary { size, .. }
            | Content::Big { size, .. } => *size,
            Content::Bytes(bytes) => bytes.len() as u64,
            Content::Static(text) => text.len() as u64,
        }
    }

    /// The whole body (allocates; big files only when really downloaded).
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.size()).unwrap_or(0));
        self.for_each_chunk(|chunk| out.extend_from_slice(chunk));
        out
    }

    /// Feeds the body to `sink` in chunks of at most 64 KiB, without materialising big files.
    pub(crate) fn for_each_chunk(&self, mut sink: impl FnMut(&[u8])) {
        match self {
            Content::None => {}
            Content::Text { seed, format, size } => sink(&text_body(*seed, *format, *size)),
            Content::Binary { seed, format, size } => {
                binary_chunks(*seed, *format, *size, &mut sink)
            }
            Content::Big { seed, size } => big_chunks(*seed, *size, &mut sink),
            Content::Bytes(bytes) => bytes.chunks(CHUNK).for_each(&mut sink),
            Content::Static(text) => sink(text.as_bytes()),
        }
    }

    /// The real SHA-1 of [`Content::bytes`].
    pub(crate) fn sha1(&self) -> String {
        let mut sha = Sha1::new();
        self.for_each_chunk(|chunk| sha.update(chunk));
        sha.hex_digest()
    }
}

/// The searchable token every generated text body contains, so tests can query for one file.
pub(crate) fn marker(seed: u64) -> String {
    format!("tributary-doc-{seed:016x}")
}

fn text_body(seed: u64, format: TextFormat, size: u64) -> Vec<u8> {
    let marker = marker(seed);
    let (head, tail) = match format {
        TextFormat::Txt => (format!("Document {marker}\n\n"), "\n"),
        TextFormat::Md => (format!("# Notes {marker}\n\n"), "\n"),
        TextFormat::Csv => (
            format!("id,topic,amount,comment\n0,{marker},0,header row\n"),
            "",
        ),
        TextFormat::Json => (
            format!("{{\"id\": \"{marker}\", \"kind\": \"generated\", \"body\": \""),
            "\"}\n",
        ),
        TextFormat::Html => (
            format!(
                "<!DOCTYPE html>\n<html><head><title>{marker}</title></head><body><h1>Report</h1><p>"
            ),
            "</p></body></html>\n",
        ),
    };
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let need = size.saturating_sub(head.len() + tail.len());
    let mut rng = Rng::new(seed);
    let mut filler = String::with_capacity(need + 64);
    let mut row = 1u64;
    let mut words_on_line = 0;
    while filler.len() < need {
        match format {
            TextFormat::Csv => {
                let topic = rng.pick(WORDS);
                let comment = rng.pick(WORDS);
                let amount = rng.below(100_000);
                filler.push_str(&format!(
                    "{row},{topic},{amount},{comment} {}\n",
                    rng.pick(WORDS)
                ));
                row += 1;
            }
            _ => {
                let word: &&str = rng.pick(WORDS);
                filler.push_str(word);
                words_on_line += 1;
                let line_break =
                    matches!(format, TextFormat::Txt | TextFormat::Md) && words_on_line >= 12;
                if line_break {
                    filler.push('\n');
                    if format == TextFormat::Md && rng.chance(30) {
                        filler.push_str("- ");
                    }
                    words_on_line = 0;
                } else {
                    filler.push(' ');
                }
            }
        }
    }
    // Every generated character is ASCII, so cutting at any byte keeps valid UTF-8.
    filler.truncate(need);
    if format == TextFormat::Csv && !filler.is_empty() {
        filler.pop();
        filler.push('\n');
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(filler.as_bytes());
    out.extend_from_slice(tail.as_bytes());
    // Only reachable when `size` < MIN_TEXT_SIZE, which the generator never asks for.
    out.truncate(size);
    out
}

fn binary_chunks(seed: u64, format: BinaryFormat, size: u64, sink: &mut dyn FnMut(&[u8])) {
    let mut rng = Rng::new(seed ^ 0xB1_0B);
    let mut remaining = usize::try_from(size).unwrap_or(usize::MAX);
    let mut chunk = Vec::with_capacity(CHUNK.min(remaining));
    let magic = format.magic();
    chunk.extend_from_slice(&magic[..magic.len().min(remaining)]);
    remaining -= chunk.len();
    while remaining > 0 {
        while chunk.len() < CHUNK && remaining > 0 {
            let word = rng.next_u64().to_le_bytes();
            let take = word.len().min(remaining).min(CHUNK - chunk.len());
            chunk.extend_from_slice(&word[..take]);
            remaining -= take;
        }
        sink(&chunk);
        chunk.clear();
    }
    if !chunk.is_empty() {
        sink(&chunk);
    }
}

fn big_chunks(seed: u64, size: u64, sink: &mut dyn FnMut(&[u8])) {
    let mut written = 0u64;
    let mut line_no = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK);
    while written < size {
        let text = format!("tributary big file {seed:016x} line {line_no}");
        let mut line = [b' '; BIG_LINE];
        let len = text.len().min(BIG_LINE - 1);
        line[..len].copy_from_slice(&text.as_bytes()[..len]);
        line[BIG_LINE - 1] = b'\n';
        let take = usize::try_from((size - written).min(BIG_LINE as u64)).unwrap_or(BIG_LINE);
        chunk.extend_from_slice(&line[..take]);
        written += take as u64;
        line_no += 1;
        if chunk.len() >= CHUNK {
            sink(&chunk);
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        sink(&chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bodies_have_exact_sizes_and_markers() {
        for format in [
            TextFormat::Txt,
            TextFormat::Md,
            TextFormat::Csv,
            TextFormat::Json,
            TextFormat::Html,
        ] {
            for size in [MIN_TEXT_SIZE, 161, 999, 6_000] {
                let content = Content::Text {
                    seed: 42,
                    format,
                    size,
                };
                let bytes = content.bytes();
                assert_eq!(bytes.len() as u64, size, "{format:?} {size}");
                let text = String::from_utf8(bytes).expect("ascii");
                assert!(text.contains(&marker(42)));
            }
        }
        let json = Content::Text {
            seed: 7,
            format: TextFormat::Json,
            size: 900,
        }
        .bytes();
        let parsed: serde_json::Value = serde_json::from_slice(&json).expect("valid json");
        assert_eq!(parsed["id"], marker(7));
    }

    #[test]
    fn big_and_binary_bodies_are_exact_and_stable() {
        let big = Content::Big {
            seed: 3,
            size: 200_003,
        };
        let bytes = big.bytes();
        assert_eq!(bytes.len(), 200_003);
        assert_eq!(bytes, big.bytes());
        let mut sha = Sha1::new();
        sha.update(&bytes);
        assert_eq!(big.sha1(), sha.hex_digest());
        let png = Content::Binary {
            seed: 9,
            format: BinaryFormat::Png,
            size: 70_000,
        }
        .bytes();
        assert_eq!(png.len(), 70_000);
        assert!(png.starts_with(b"\x89PNG"));
        let tiny = Content::Binary {
            seed: 9,
            format: BinaryFormat::Png,
            size: 3,
        }
        .bytes();
        assert_eq!(tiny, b"\x89PN");
    }
}
