//! XML. Plain documents (`.xml`, `.svg`, RSS, Atom, …) are read by [`Feed`], a push scanner of
//! our own that streams; the XML parts of DOCX, PPTX, VSDX and OpenDocument files are walked
//! with quick-xml under per-format [`Rules`] ([`walk`]).
//!
//! Invariants (plain XML):
//! - **Memory.** The scanner holds a few bytes of state and none of the document: text and
//!   CDATA go to the sink as they are read, tags, comments, processing instructions and
//!   DOCTYPEs (internal subset included) are skipped as they are read (see `feed`). A body
//!   that arrives in pieces is never held whole; a whole body is read in place when it is
//!   UTF-8 (transcoded once otherwise, as text is).
//! - **One scanner.** [`extract`] feeds the whole text to [`Feed`] as one last piece, and a
//!   download ([`crate::stream`]) feeds it piece by piece, after the same encoding decision
//!   ([`encoding_of`]): both give the same text, or the same error.
//! - **quick-xml's text.** For a UTF-8 document the text, or the failure, is what quick-xml
//!   0.42 gave before with the `PLAIN_XML` rules (differential tests over thousands of
//!   generated documents and random markup, well-formed and broken, check it). Kept: text
//!   nodes and CDATA (`\r\n` and `\r` read as line ends within each, as quick-xml's
//!   `xml10_content`), the five
//!   predefined entities and decimal/hex character references (NUL, surrogates and numbers
//!   past U+10FFFF are dropped). Every start, end and empty-element tag separates words.
//!   Dropped: comments, processing instructions, the XML declaration, DOCTYPEs, and any other
//!   `&name;`: entities a DTD declares are never expanded ("billion laughs" is a few bytes of
//!   nothing). Malformed (fails, "malformed XML near byte N: …", N counting the decoded text
//!   after any byte-order mark): a document ending inside a tag, quoted value, comment, CDATA
//!   section, PI, DOCTYPE or reference; `&` not closed by `;` before `<` or `&`; `<!` not
//!   followed by `--`, `[CDATA[` or `DOCTYPE`; `<?>`; a DOCTYPE without a name. Not checked,
//!   as quick-xml did not check them: tag names, end tags matching start tags, `--` inside
//!   comments, a single root.
//! - **Differences from quick-xml, kept on purpose.** (1) Encoding: quick-xml read bytes as
//!   UTF-8 only, so one invalid byte failed the document (a legacy one declaring its
//!   encoding included), and UTF-16 failed at its first non-ASCII character; now the body is
//!   decoded as [`encoding_of`] says, so such documents give their text. (2) CDATA text is
//!   written as it is read: when the output fills up inside a CDATA section that is never
//!   closed, the text so far is kept (cut, as any full output), where
//!   quick-xml, which read a section whole before writing it, failed. (3) Error wording and
//!   positions (N is where the construct starts).

mod feed;
#[cfg(test)]
pub(crate) mod tests;

use encoding_rs::Encoding;
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::{Sink, text_encoding, utf8_head};

pub(crate) use feed::Feed;

/// Which elements carry text and which ones separate it. Names are local names
/// (namespace prefixes are ignored, so `w:p`, `a:p` and `text:p` are all `p`).
pub(crate) struct Rules {
    /// Only text inside one of these elements is kept; `None` keeps all text.
    pub text_in: Option<&'static [&'static str]>,
    /// Subtrees dropped entirely.
    pub skip: &'static [&'static str],
    /// Elements that start and end paragraphs.
    pub para: &'static [&'static str],
    /// Elements that start and end lines (rows, line breaks).
    pub line: &'static [&'static str],
    /// Elements that are separated by a space (tabs, cells, ODF `text:s`).
    pub space: &'static [&'static str],
    /// Separate every element boundary by a space (generic XML).
    pub every_element_spaces: bool,
}

/// Generic XML: all text nodes (and CDATA), separated at element boundaries. What plain XML
/// was walked with before [`Feed`]; the differential test holds the scanner to it.
#[cfg(test)]
pub(crate) const PLAIN_XML: Rules = Rules {
    text_in: None,
    skip: &[],
    para: &[],
    line: &[],
    space: &[],
    every_element_spaces: true,
};

/// Extract a plain XML document: [`Feed`] given the whole text.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let (encoding, bom) = encoding_of(bytes, true);
    // UTF-8 is read in place; anything else is transcoded once, as text bodies are
    let (text, _) = encoding.decode_without_bom_handling(bytes.get(bom..).unwrap_or_default());
    Feed::new().feed(&text, true, sink)
}

/// The encoding of an XML body that starts with `head` (`complete`: the whole body), and the
/// length of its byte-order mark: text's rules ([`text_encoding`]: a BOM, else UTF-16 when
/// unmistakable, else UTF-8 when the bytes are UTF-8), except that a body that is not UTF-8 is
/// read in the encoding its XML declaration names (an ASCII-compatible one), before text's
/// fallback (UTF-8 with replacements when some UTF-8 shows, else Windows-1252).
pub(crate) fn encoding_of(head: &[u8], complete: bool) -> (&'static Encoding, usize) {
    let found = text_encoding(head, complete);
    let (encoding, bom) = found;
    let undecided = bom == 0
        && (encoding == encoding_rs::UTF_8 || encoding == encoding_rs::WINDOWS_1252)
        && !utf8_head(head, complete);
    match undecided.then(|| declared(head)).flatten() {
        Some(declared) => (declared, 0),
        None => found,
    }
}

/// The encoding `<?xml … encoding="…"?>` at the very start of `head` names, when it is one
/// this ASCII-compatible reading can apply.
fn declared(head: &[u8]) -> Option<&'static Encoding> {
    let decl = head.strip_prefix(b"<?xml")?;
    let decl = &decl[..memchr::memmem::find(&decl[..decl.len().min(1024)], b"?>")?];
    let at = memchr::memmem::find(decl, b"encoding")?;
    let value = decl[at + 8..]
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let (&quote, value) = value.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let label = &value[..memchr::memchr(quote, value)?];
    Encoding::for_label(label).filter(|e| e.is_ascii_compatible())
}

/// Walk one XML part, pushing its text to `sink` under `rules`; stops reading once the sink
/// is full. `part` names the part in error messages.
pub(crate) fn walk<R: std::io::BufRead>(
    part_xml: R,
    format: Format,
    part: &str,
    rules: &Rules,
    sink: &mut Sink,
) -> Result<()> {
    let mut reader = Reader::from_reader(part_xml);
    {
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.expand_empty_elements = false;
    }
    let mut buf = Vec::new();
    let mut skip_depth = 0usize;
    let mut text_depth = 0usize;
    let keep = |skip_depth: usize, text_depth: usize| {
        skip_depth == 0 && (rules.text_in.is_none() || text_depth > 0)
    };
    loop {
        if !sink.proceed()? {
            return Ok(());
        }
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            ExtractError::failed(
                format,
                format!(
                    "{part}: malformed XML near byte {}: {e}",
                    reader.buffer_position()
                ),
            )
        })?;
        match event {
            Event::Start(e) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if skip_depth > 0 || rules.skip.contains(&name) {
                    skip_depth += 1;
                } else {
                    boundary(name, rules, sink);
                    if rules.text_in.is_some_and(|t| t.contains(&name)) {
                        text_depth += 1;
                    }
                }
            }
            Event::Empty(e) => {
                if skip_depth == 0 {
                    let local = e.local_name();
                    boundary(local.as_ref(), rules, sink);
                }
            }
            Event::End(e) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if skip_depth > 0 {
                    skip_depth -= 1;
                } else {
                    if rules.text_in.is_some_and(|t| t.contains(&name)) {
                        text_depth = text_depth.saturating_sub(1);
                    }
                    boundary(name, rules, sink);
                }
            }
            Event::Text(t) => {
                if keep(skip_depth, text_depth) {
                    sink.push(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if keep(skip_depth, text_depth) {
                    sink.push(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if keep(skip_depth, text_depth)
                    && let Some(c) = general_ref(&r)
                {
                    let mut tmp = [0u8; 4];
                    sink.push(c.encode_utf8(&mut tmp));
                }
            }
            Event::Eof => return Ok(()),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
}

/// The character a reference stands for: a character reference or one of XML's five
/// predefined entities. Entities declared in a DTD are never expanded.
pub(crate) fn general_ref(r: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => Some(c),
        Ok(None) => match &**r {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => None,
        },
        Err(_) => None,
    }
}

fn boundary(name: &str, rules: &Rules, sink: &mut Sink) {
    if rules.para.contains(&name) {
        sink.para();
    } else if rules.line.contains(&name) {
        sink.line();
    } else if rules.space.contains(&name) || rules.every_element_spaces {
        sink.space();
    }
}
