//! HTML and XHTML: the visible text, read by a single-pass byte scanner (memchr-driven,
//! no DOM, no per-character validation or spec-error tracking).
//!
//! Invariants:
//! - **Memory.** Besides the output, the scanner holds O(1) state: the current tag name
//!   (16 bytes at most; longer names match nothing) and the hidden-element nesting. No
//!   part of the input is copied or accumulated: text runs go straight into the sink,
//!   and attribute values, comments and raw-text bodies are skipped with `memchr`. UTF-8
//!   input is read in place; other encodings are transcoded 32 KiB at a time.
//! - **Resumable.** [`Scanner::feed`] consumes a chunk except for a bounded tail of
//!   undecidable lookahead (an unfinished character reference, `<!-`, a split UTF-8
//!   sequence: under 80 bytes), which [`Stream`] hands back in front of the next chunk;
//!   any chunking of a document gives the same text as one call with all of it.
//! - **Tokenising** follows the WHATWG tokenizer wherever it changes the text: a tag is
//!   `<` + letter (`</` + letter for end tags); attribute values may be double-quoted,
//!   single-quoted (a `>` inside quotes does not end the tag) or unquoted; comments run
//!   to `-->` or `--!>` (`<!-->` and `<!--->` are empty comments); `<!…>`, `<?…>` and
//!   `</…>` not followed by a letter are bogus comments up to `>`; `script`, `style`,
//!   `title`, `textarea`, `iframe`, `noscript`, `noembed`, `noframes` and `xmp` hold raw
//!   text up to their own end tag (`title` and `textarea` decode character references),
//!   `plaintext` up to the end of the input. Character references use the full WHATWG
//!   table, the legacy names without `;`, and decimal/hex numeric references with the
//!   spec's replacements (see `entities`). `<![CDATA[…]]>` is text (as in XHTML). A `<`
//!   that starts nothing is text.
//!
//! Dropped: everything in `<head>` (including `<title>`), `<script>`, `<style>`,
//! `<template>`, `<noscript>`, `<noembed>`, `<noframes>`, `<iframe>`, `<object>`,
//! comments and doctypes. Block elements (`p`, `div`, headings, list items, rows, …)
//! start new lines or paragraphs, table cells are separated by spaces, `<br>` breaks
//! the line; white space is normalised by the sink.
//!
//! Bytes are decoded from a BOM, else as UTF-8 when valid (or UTF-16 when unmistakably
//! so, as for text), else by the `<meta charset>` / `http-equiv` label found in the
//! first KiB, else Windows-1252 (what browsers do).

mod entities;

use encoding_rs::Encoding;
use memchr::{memchr, memchr2, memmem};

use crate::detect::Format;
use crate::detect::find;
use crate::error::{ExtractError, Result};
use crate::text::{Sink, utf8_head, utf16_without_bom};
use entities::Reference;

/// How an element separates text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    None,
    Space,
    Line,
    Para,
}

/// What an element name means for the text (one `match` per tag, not list scans).
#[derive(Debug, Clone, Copy)]
struct Element {
    /// The name, for elements the scanner has to recognise again ("" for the rest).
    name: &'static [u8],
    /// Its whole content is invisible.
    hidden: bool,
    /// Allowed inside `<head>`; any other start tag ends an unclosed head.
    in_head: bool,
    /// Its content is raw text up to its end tag; `Some(true)`: references decoded.
    raw: Option<bool>,
    /// `plaintext`: the rest of the input is text.
    plaintext: bool,
    sep: Sep,
}

const NONE: Element = Element {
    name: b"",
    hidden: false,
    in_head: false,
    raw: None,
    plaintext: false,
    sep: Sep::None,
};

/// Hidden: `head` (with `title`), `script`, `style`, `template`, `noscript`, `noembed`,
/// `noframes`, `iframe`, `object`. Paragraphs: `p`, headings, `blockquote`, `pre`,
/// lists, tables, sectioning elements, `hr`, `body`, …; lines: `div`, `li`, `tr`, `br`,
/// …; spaces: table cells. Raw text: see the module docs.
#[rustfmt::skip]
fn element(name: &[u8]) -> Element {
    match name {
        b"address" => Element { name: b"address", sep: Sep::Line, ..NONE },
        b"article" => Element { name: b"article", sep: Sep::Para, ..NONE },
        b"aside" => Element { name: b"aside", sep: Sep::Para, ..NONE },
        b"base" => Element { name: b"base", in_head: true, ..NONE },
        b"blockquote" => Element { name: b"blockquote", sep: Sep::Para, ..NONE },
        b"body" => Element { name: b"body", sep: Sep::Para, ..NONE },
        b"br" => Element { name: b"br", sep: Sep::Line, ..NONE },
        b"caption" => Element { name: b"caption", sep: Sep::Line, ..NONE },
        b"dd" => Element { name: b"dd", sep: Sep::Line, ..NONE },
        b"details" => Element { name: b"details", sep: Sep::Line, ..NONE },
        b"div" => Element { name: b"div", sep: Sep::Line, ..NONE },
        b"dl" => Element { name: b"dl", sep: Sep::Para, ..NONE },
        b"dt" => Element { name: b"dt", sep: Sep::Line, ..NONE },
        b"fieldset" => Element { name: b"fieldset", sep: Sep::Para, ..NONE },
        b"figcaption" => Element { name: b"figcaption", sep: Sep::Line, ..NONE },
        b"figure" => Element { name: b"figure", sep: Sep::Para, ..NONE },
        b"footer" => Element { name: b"footer", sep: Sep::Para, ..NONE },
        b"form" => Element { name: b"form", sep: Sep::Para, ..NONE },
        b"h1" => Element { name: b"h1", sep: Sep::Para, ..NONE },
        b"h2" => Element { name: b"h2", sep: Sep::Para, ..NONE },
        b"h3" => Element { name: b"h3", sep: Sep::Para, ..NONE },
        b"h4" => Element { name: b"h4", sep: Sep::Para, ..NONE },
        b"h5" => Element { name: b"h5", sep: Sep::Para, ..NONE },
        b"h6" => Element { name: b"h6", sep: Sep::Para, ..NONE },
        b"head" => Element { name: b"head", hidden: true, ..NONE },
        b"header" => Element { name: b"header", sep: Sep::Para, ..NONE },
        b"hr" => Element { name: b"hr", sep: Sep::Para, ..NONE },
        b"html" => Element { name: b"html", ..NONE },
        b"iframe" => Element { name: b"iframe", hidden: true, raw: Some(false), ..NONE },
        b"label" => Element { name: b"label", sep: Sep::Line, ..NONE },
        b"legend" => Element { name: b"legend", sep: Sep::Line, ..NONE },
        b"li" => Element { name: b"li", sep: Sep::Line, ..NONE },
        b"link" => Element { name: b"link", in_head: true, ..NONE },
        b"main" => Element { name: b"main", sep: Sep::Para, ..NONE },
        b"meta" => Element { name: b"meta", in_head: true, ..NONE },
        b"nav" => Element { name: b"nav", sep: Sep::Para, ..NONE },
        b"noembed" => Element { name: b"noembed", hidden: true, raw: Some(false), ..NONE },
        b"noframes" => Element { name: b"noframes", hidden: true, raw: Some(false), ..NONE },
        b"noscript" => Element { name: b"noscript", hidden: true, in_head: true, raw: Some(false), ..NONE },
        b"object" => Element { name: b"object", hidden: true, ..NONE },
        b"ol" => Element { name: b"ol", sep: Sep::Para, ..NONE },
        b"option" => Element { name: b"option", sep: Sep::Line, ..NONE },
        b"p" => Element { name: b"p", sep: Sep::Para, ..NONE },
        b"plaintext" => Element { name: b"plaintext", plaintext: true, ..NONE },
        b"pre" => Element { name: b"pre", sep: Sep::Para, ..NONE },
        b"script" => Element { name: b"script", hidden: true, in_head: true, raw: Some(false), ..NONE },
        b"section" => Element { name: b"section", sep: Sep::Para, ..NONE },
        b"style" => Element { name: b"style", hidden: true, in_head: true, raw: Some(false), ..NONE },
        b"summary" => Element { name: b"summary", sep: Sep::Line, ..NONE },
        b"table" => Element { name: b"table", sep: Sep::Para, ..NONE },
        b"tbody" => Element { name: b"tbody", sep: Sep::Line, ..NONE },
        b"td" => Element { name: b"td", sep: Sep::Space, ..NONE },
        b"template" => Element { name: b"template", hidden: true, in_head: true, ..NONE },
        b"textarea" => Element { name: b"textarea", raw: Some(true), sep: Sep::Line, ..NONE },
        b"tfoot" => Element { name: b"tfoot", sep: Sep::Line, ..NONE },
        b"th" => Element { name: b"th", sep: Sep::Space, ..NONE },
        b"thead" => Element { name: b"thead", sep: Sep::Line, ..NONE },
        b"title" => Element { name: b"title", hidden: true, in_head: true, raw: Some(true), ..NONE },
        b"tr" => Element { name: b"tr", sep: Sep::Line, ..NONE },
        b"ul" => Element { name: b"ul", sep: Sep::Para, ..NONE },
        b"xmp" => Element { name: b"xmp", raw: Some(false), ..NONE },
        _ => NONE,
    }
}

/// Bytes of input transcoded at a time for encodings other than UTF-8.
const PIECE: usize = 32 * 1024;

/// Extract HTML bytes.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let (mut feed, bom) = Feed::new(bytes, true);
    feed.feed(&bytes[bom..], true, sink)
}

/// A document fed in pieces (a download), in the encoding its head shows: UTF-8 is scanned in
/// place, anything else transcoded [`PIECE`] bytes at a time.
pub(crate) struct Feed {
    decoder: Option<encoding_rs::Decoder>,
    stream: Stream,
    piece: String,
}

impl Feed {
    /// A feed for a document that starts with `head` (`complete`: the whole document), and how
    /// many bytes of byte-order mark the caller skips before feeding.
    pub(crate) fn new(head: &[u8], complete: bool) -> (Self, usize) {
        let (encoding, bom) = encoding_of(head, complete);
        let decoder =
            (encoding != encoding_rs::UTF_8).then(|| encoding.new_decoder_without_bom_handling());
        let feed = Feed {
            decoder,
            stream: Stream::default(),
            piece: String::new(),
        };
        (feed, bom)
    }

    /// Scans the next bytes of the document; `last` marks its end.
    pub(crate) fn feed(&mut self, bytes: &[u8], last: bool, sink: &mut Sink) -> Result<()> {
        let Some(decoder) = self.decoder.as_mut() else {
            // read in place; invalid sequences (a wrong meta label) become U+FFFD per run
            return self.stream.feed(bytes, last, sink);
        };
        if bytes.is_empty() {
            self.piece.clear();
            let _ = decoder.decode_to_string(b"", &mut self.piece, last);
            return self.stream.feed(self.piece.as_bytes(), last, sink);
        }
        let mut pieces = bytes.chunks(PIECE).peekable();
        while let Some(chunk) = pieces.next() {
            let end = last && pieces.peek().is_none();
            self.piece.clear();
            let room = decoder.max_utf8_buffer_length(chunk.len()).ok_or_else(|| {
                ExtractError::failed(Format::Html, "transcoding buffer size overflows")
            })?;
            self.piece.reserve(room);
            // room for the whole chunk was reserved, so the decoder always finishes it
            let _ = decoder.decode_to_string(chunk, &mut self.piece, end);
            self.stream.feed(self.piece.as_bytes(), end, sink)?;
            if sink.is_full() {
                break;
            }
        }
        Ok(())
    }
}

/// Extract already-decoded HTML.
pub(crate) fn extract_str(html: &str, sink: &mut Sink) -> Result<()> {
    Scanner::default().feed(html.as_bytes(), true, sink)?;
    Ok(())
}

/// Feeds a document to a [`Scanner`] in pieces, carrying the lookahead tail a piece
/// may end in over to the next one.
#[derive(Default)]
pub(crate) struct Stream {
    scanner: Scanner,
    carry: Vec<u8>,
}

impl Stream {
    /// Scan the next piece; `last` marks the end of the document.
    pub(crate) fn feed(&mut self, piece: &[u8], last: bool, sink: &mut Sink) -> Result<()> {
        if self.carry.is_empty() {
            let used = self.scanner.feed(piece, last, sink)?;
            self.carry.extend_from_slice(&piece[used..]);
        } else {
            self.carry.extend_from_slice(piece);
            let used = self.scanner.feed(&self.carry, last, sink)?;
            self.carry.drain(..used);
        }
        Ok(())
    }
}

/// Where the scanner is between two bytes of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Inside a raw-text element until `</end`; `refs`: decode character references.
    Raw {
        end: &'static [u8],
        refs: bool,
    },
    /// After `<plaintext>`: the rest is text.
    PlainText,
    TagName,
    BeforeAttr,
    /// After a `/` inside a tag.
    SelfClosing,
    AttrName,
    AfterAttrName,
    BeforeValue,
    Quoted(u8),
    Unquoted,
    Comment,
    /// Bogus comment, doctype or processing instruction, up to `>`.
    Bogus,
    Cdata,
}

/// A tag name, lower-cased; names longer than any we act on match nothing.
#[derive(Debug, Clone, Copy, Default)]
struct Name {
    bytes: [u8; 16],
    len: usize,
    overflow: bool,
}

impl Name {
    fn push(&mut self, b: u8) {
        match self.bytes.get_mut(self.len) {
            Some(slot) => {
                *slot = b.to_ascii_lowercase();
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    fn get(&self) -> &[u8] {
        if self.overflow {
            b"\0"
        } else {
            &self.bytes[..self.len]
        }
    }
}

/// The resumable HTML scanner (see the module docs).
#[derive(Debug)]
pub(crate) struct Scanner {
    state: State,
    tag: Name,
    end_tag: bool,
    self_closing: bool,
    /// The hidden element we are inside, and how deeply that name is nested.
    hidden: Option<(&'static [u8], usize)>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Text,
            tag: Name::default(),
            end_tag: false,
            self_closing: false,
            hidden: None,
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0C | b'\r' | b' ')
}

impl Scanner {
    /// Scan `input`, writing visible text to `sink`. Returns how many bytes were
    /// consumed: all of them when `eof`, else all but a bounded lookahead tail that the
    /// caller passes again, followed by more input.
    pub(crate) fn feed(&mut self, input: &[u8], eof: bool, sink: &mut Sink) -> Result<usize> {
        let mut i = 0;
        while i < input.len() {
            if !sink.proceed()? {
                return Ok(input.len());
            }
            let rest = &input[i..];
            match self.state {
                State::Text => {
                    let Some(p) = memchr2(b'<', b'&', rest) else {
                        let used = self.text_tail(rest, eof, sink);
                        i += used;
                        if used < rest.len() {
                            return Ok(i);
                        }
                        continue;
                    };
                    self.text(&rest[..p], sink);
                    i += p;
                    let step = if rest[p] == b'&' {
                        self.reference(&rest[p..], eof, sink)
                    } else {
                        self.markup(&rest[p..], eof, sink)
                    };
                    match step {
                        Some(n) => i += n,
                        None => return Ok(i),
                    }
                }
                State::Raw { end, refs } => {
                    let found = if refs {
                        memchr2(b'<', b'&', rest)
                    } else {
                        memchr(b'<', rest)
                    };
                    let Some(p) = found else {
                        let used = self.text_tail(rest, eof, sink);
                        i += used;
                        if used < rest.len() {
                            return Ok(i);
                        }
                        continue;
                    };
                    self.text(&rest[..p], sink);
                    i += p;
                    if rest[p] == b'&' {
                        match self.reference(&rest[p..], eof, sink) {
                            Some(n) => i += n,
                            None => return Ok(i),
                        }
                        continue;
                    }
                    match end_tag_at(&rest[p..], end) {
                        // the end tag: let the text state read it as a tag
                        Some(true) => self.state = State::Text,
                        None if !eof => return Ok(i),
                        Some(false) | None => {
                            self.text(b"<", sink);
                            i += 1;
                        }
                    }
                }
                State::PlainText => {
                    let used = self.text_tail(rest, eof, sink);
                    i += used;
                    if used < rest.len() {
                        return Ok(i);
                    }
                }
                State::TagName => {
                    let end = rest
                        .iter()
                        .position(|b| is_space(*b) || matches!(b, b'/' | b'>'));
                    for b in &rest[..end.unwrap_or(rest.len())] {
                        self.tag.push(*b);
                    }
                    match end {
                        Some(n) => {
                            i += n;
                            self.state = State::BeforeAttr;
                        }
                        None => i = input.len(),
                    }
                }
                State::BeforeAttr => {
                    let skip = rest.iter().take_while(|b| is_space(**b)).count();
                    i += skip + 1;
                    match rest.get(skip) {
                        None => i = input.len(),
                        Some(b'>') => self.finish_tag(sink),
                        Some(b'/') => self.state = State::SelfClosing,
                        // the first character (even `=`) belongs to the name
                        Some(_) => self.state = State::AttrName,
                    }
                }
                State::SelfClosing => {
                    if rest[0] == b'>' {
                        i += 1;
                        self.self_closing = true;
                        self.finish_tag(sink);
                    } else {
                        self.state = State::BeforeAttr;
                    }
                }
                State::AttrName => {
                    match rest
                        .iter()
                        .position(|b| is_space(*b) || matches!(b, b'/' | b'>' | b'='))
                    {
                        None => i = input.len(),
                        Some(n) => {
                            i += n;
                            self.state = match rest[n] {
                                b'=' => {
                                    i += 1;
                                    State::BeforeValue
                                }
                                b'/' | b'>' => State::BeforeAttr,
                                _ => {
                                    i += 1;
                                    State::AfterAttrName
                                }
                            };
                        }
                    }
                }
                State::AfterAttrName => {
                    let skip = rest.iter().take_while(|b| is_space(**b)).count();
                    i += skip;
                    match rest.get(skip) {
                        None => {}
                        Some(b'=') => {
                            i += 1;
                            self.state = State::BeforeValue;
                        }
                        Some(_) => self.state = State::BeforeAttr,
                    }
                }
                State::BeforeValue => {
                    let skip = rest.iter().take_while(|b| is_space(**b)).count();
                    i += skip;
                    match rest.get(skip) {
                        None => {}
                        Some(q @ (b'"' | b'\'')) => {
                            i += 1;
                            self.state = State::Quoted(*q);
                        }
                        Some(b'>') => {
                            i += 1;
                            self.finish_tag(sink);
                        }
                        Some(_) => self.state = State::Unquoted,
                    }
                }
                State::Quoted(quote) => match memchr(quote, rest) {
                    Some(p) => {
                        i += p + 1;
                        self.state = State::BeforeAttr;
                    }
                    None => i = input.len(),
                },
                State::Unquoted => match rest.iter().position(|b| is_space(*b) || *b == b'>') {
                    Some(n) => {
                        i += n + 1;
                        if rest[n] == b'>' {
                            self.finish_tag(sink);
                        } else {
                            self.state = State::BeforeAttr;
                        }
                    }
                    None => i = input.len(),
                },
                State::Comment => {
                    // `before` may start with the (up to 3) bytes held back last time
                    let mut from = 0;
                    loop {
                        match memchr(b'>', &rest[from..]) {
                            Some(p) => {
                                let before = &rest[..from + p];
                                from += p + 1;
                                if before.ends_with(b"--") || before.ends_with(b"--!") {
                                    i += from;
                                    self.state = State::Text;
                                    break;
                                }
                            }
                            None if eof || rest.len() <= 3 => {
                                i = if eof { input.len() } else { i };
                                if !eof {
                                    return Ok(i);
                                }
                                break;
                            }
                            None => {
                                // keep the last 3 bytes: they may start `--!>`
                                i += rest.len() - 3;
                                return Ok(i);
                            }
                        }
                    }
                }
                State::Bogus => match memchr(b'>', rest) {
                    Some(p) => {
                        i += p + 1;
                        self.state = State::Text;
                    }
                    None => i = input.len(),
                },
                State::Cdata => match memmem::find(rest, b"]]>") {
                    Some(p) => {
                        self.text(&rest[..p], sink);
                        i += p + 3;
                        self.state = State::Text;
                    }
                    None if eof => {
                        self.text(rest, sink);
                        i = input.len();
                    }
                    None => {
                        // keep a possible `]]` and a split UTF-8 sequence
                        let keep = rest.len().min(2);
                        let head = &rest[..rest.len() - keep];
                        let used = head.len() - incomplete_utf8(head);
                        self.text(&rest[..used], sink);
                        return Ok(i + used);
                    }
                },
            }
        }
        Ok(i)
    }

    /// Text that runs to the end of the input: all of it at the end of the document,
    /// else all but a split UTF-8 sequence. Returns the bytes used.
    fn text_tail(&mut self, rest: &[u8], eof: bool, sink: &mut Sink) -> usize {
        let used = if eof {
            rest.len()
        } else {
            rest.len() - incomplete_utf8(rest)
        };
        self.text(&rest[..used], sink);
        used
    }

    fn text(&self, bytes: &[u8], sink: &mut Sink) {
        if bytes.is_empty() || self.hidden.is_some() {
            return;
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => sink.push(s),
            Err(_) => sink.push(&String::from_utf8_lossy(bytes)),
        }
    }

    /// `rest` starts with `&`: the bytes used, `None` to wait for more input.
    fn reference(&mut self, rest: &[u8], eof: bool, sink: &mut Sink) -> Option<usize> {
        match entities::resolve(&rest[1..], eof) {
            Reference::NeedMore => None,
            Reference::Literal => {
                self.text(b"&", sink);
                Some(1)
            }
            Reference::Named(text, n) => {
                self.text(text.as_bytes(), sink);
                Some(1 + n)
            }
            Reference::Numeric(c, n) => {
                self.text(c.encode_utf8(&mut [0; 4]).as_bytes(), sink);
                Some(1 + n)
            }
        }
    }

    /// `rest` starts with `<`: the bytes used, `None` to wait for more input.
    fn markup(&mut self, rest: &[u8], eof: bool, sink: &mut Sink) -> Option<usize> {
        let literal = |this: &mut Self, sink: &mut Sink| {
            this.text(b"<", sink);
            Some(1)
        };
        let Some(&next) = rest.get(1) else {
            return if eof { literal(self, sink) } else { None };
        };
        match next {
            b'a'..=b'z' | b'A'..=b'Z' => {
                self.begin_tag(false);
                Some(1)
            }
            b'/' => match rest.get(2) {
                None if !eof => None,
                None => {
                    self.text(b"</", sink);
                    Some(2)
                }
                Some(b'a'..=b'z' | b'A'..=b'Z') => {
                    self.begin_tag(true);
                    Some(2)
                }
                Some(b'>') => Some(3),
                Some(_) => {
                    self.state = State::Bogus;
                    Some(2)
                }
            },
            b'!' => {
                const COMMENT: &[u8] = b"<!--";
                const CDATA: &[u8] = b"<![CDATA[";
                if rest.starts_with(COMMENT) {
                    let after = &rest[4..];
                    if after.len() < 2 && !eof {
                        return None;
                    }
                    if after.starts_with(b">") {
                        Some(5)
                    } else if after.starts_with(b"->") {
                        Some(6)
                    } else {
                        self.state = State::Comment;
                        Some(4)
                    }
                } else if rest.starts_with(CDATA) {
                    self.state = State::Cdata;
                    Some(CDATA.len())
                } else if !eof && (COMMENT.starts_with(rest) || CDATA.starts_with(rest)) {
                    None
                } else {
                    self.state = State::Bogus;
                    Some(2)
                }
            }
            b'?' => {
                self.state = State::Bogus;
                Some(2)
            }
            _ => literal(self, sink),
        }
    }

    fn begin_tag(&mut self, end_tag: bool) {
        self.tag = Name::default();
        self.end_tag = end_tag;
        self.self_closing = false;
        self.state = State::TagName;
    }

    /// The tag's `>` was read.
    fn finish_tag(&mut self, sink: &mut Sink) {
        let tag = self.tag;
        let el = element(tag.get());
        self.state = State::Text;
        if self.end_tag {
            self.end(el, sink);
            return;
        }
        // a raw-text element cannot self-close: `<script/>` opens a script
        self.start(el, self.self_closing && el.raw.is_none(), sink);
        if let Some(refs) = el.raw {
            self.state = State::Raw { end: el.name, refs };
        } else if el.plaintext {
            self.state = State::PlainText;
        }
    }

    fn start(&mut self, el: Element, self_closing: bool, sink: &mut Sink) {
        if let Some((hidden, depth)) = self.hidden.as_mut() {
            if *hidden == b"head" && !el.in_head {
                self.hidden = None; // an unclosed <head> ends at the first body element
            } else {
                if *hidden == el.name && !self_closing {
                    *depth += 1;
                }
                return;
            }
        }
        if el.hidden {
            if !self_closing {
                self.hidden = Some((el.name, 1));
            }
            return;
        }
        separate(el.sep, sink);
    }

    fn end(&mut self, el: Element, sink: &mut Sink) {
        if let Some((hidden, depth)) = self.hidden.as_mut() {
            if *hidden == el.name {
                *depth -= 1;
                if *depth == 0 {
                    self.hidden = None;
                }
            } else if *hidden == b"head" && (el.name == b"body" || el.name == b"html") {
                self.hidden = None;
            }
            return;
        }
        separate(el.sep, sink);
    }
}

/// Whether `bytes` (starting with `<`) is the end tag `</name` followed by a space,
/// `/` or `>`; `None` when `bytes` ends before that is known.
fn end_tag_at(bytes: &[u8], name: &[u8]) -> Option<bool> {
    let len = 2 + name.len();
    for (k, b) in bytes.iter().enumerate().take(len).skip(1) {
        let ok = match k {
            1 => *b == b'/',
            _ => b.to_ascii_lowercase() == name[k - 2],
        };
        if !ok {
            return Some(false);
        }
    }
    bytes
        .get(len)
        .map(|b| is_space(*b) || matches!(b, b'/' | b'>'))
}

/// Length of a UTF-8 sequence cut off at the end of `bytes` (0 when none).
fn incomplete_utf8(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let len = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if len > back { back } else { 0 };
    }
    0
}

fn separate(sep: Sep, sink: &mut Sink) {
    match sep {
        Sep::Para => sink.para(),
        Sep::Line => sink.line(),
        Sep::Space => sink.space(),
        Sep::None => {}
    }
}

/// The encoding of an HTML body (see the module docs for the order of precedence)
/// and the length of its byte-order mark.
/// The encoding of a document that starts with `bytes` (`complete`: the whole document; if
/// not, a character cut at the end of `bytes` does not count against UTF-8).
fn encoding_of(bytes: &[u8], complete: bool) -> (&'static Encoding, usize) {
    if let Some(found) = Encoding::for_bom(bytes) {
        return found;
    }
    if utf8_head(bytes, complete) {
        return match utf16_without_bom(bytes) {
            Some(true) => (encoding_rs::UTF_16LE, 0),
            Some(false) => (encoding_rs::UTF_16BE, 0),
            None => (encoding_rs::UTF_8, 0),
        };
    }
    let head = &bytes[..bytes.len().min(1024)];
    let lower = head.to_ascii_lowercase();
    if let Some(at) = find(&lower, b"charset=") {
        let label: Vec<u8> = lower[at + 8..]
            .iter()
            .copied()
            .skip_while(|b| *b == b'"' || *b == b'\'' || *b == b' ')
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
            .collect();
        if let Some(enc) = Encoding::for_label(&label) {
            return (enc, 0);
        }
    }
    (encoding_rs::WINDOWS_1252, 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Limits;
    use crate::limits::Budget;

    include!("../../../tests/fixtures/html_cases.rs");

    fn sink() -> Sink {
        Sink::new(1 << 20, Budget::new(&Limits::default()))
    }

    /// Feeding any chunking of a document gives the text of feeding it whole, and
    /// the carried lookahead stays small.
    #[test]
    fn chunked_feeding_gives_the_same_text() {
        let mut docs: Vec<String> = HTML_CASES.iter().map(|(h, _)| (*h).to_owned()).collect();
        docs.push(HTML_CASES.iter().map(|(h, _)| *h).collect());
        docs.push(
            "<p>caf\u{e9} \u{65e5}\u{672c} &CounterClockwiseContourIntegral; &#x1F600;</p>".into(),
        );
        for doc in &docs {
            let mut whole = sink();
            extract_str(doc, &mut whole).unwrap();
            let whole = whole.finish();
            for size in 1..=12 {
                let mut s = sink();
                let mut stream = Stream::default();
                let chunks: Vec<&[u8]> = doc.as_bytes().chunks(size).collect();
                for (k, chunk) in chunks.iter().enumerate() {
                    stream.feed(chunk, k + 1 == chunks.len(), &mut s).unwrap();
                    assert!(stream.carry.len() < 80, "{doc:?} / {size}");
                }
                assert_eq!(s.finish(), whole, "{doc:?} in chunks of {size}");
            }
        }
    }

    /// Random markup-heavy documents: no panic, and chunking never changes the text.
    #[test]
    fn random_documents_scan_the_same_in_chunks() {
        const PARTS: &[&str] = &[
            "<",
            ">",
            "/",
            "!",
            "-",
            "--",
            "&",
            ";",
            "#",
            "x",
            "'",
            "\"",
            "=",
            " ",
            "\n",
            "a",
            "p",
            "br",
            "script",
            "</script",
            "style",
            "title",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "amp",
            "lt",
            "#65",
            "\u{e9}",
            "\u{65e5}",
            "plaintext",
            "textarea",
            "?",
        ];
        let mut x: u64 = 0x853C_49E6_748F_EA9B;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let len = next() % 40;
            let doc: String = (0..len)
                .map(|_| PARTS[(next() % PARTS.len() as u64) as usize])
                .collect();
            let mut whole = sink();
            extract_str(&doc, &mut whole).unwrap();
            let whole = whole.finish();
            let size = 1 + (next() % 7) as usize;
            let mut s = sink();
            let mut stream = Stream::default();
            let chunks: Vec<&[u8]> = doc.as_bytes().chunks(size).collect();
            for (k, chunk) in chunks.iter().enumerate() {
                stream.feed(chunk, k + 1 == chunks.len(), &mut s).unwrap();
            }
            if chunks.is_empty() {
                stream.feed(b"", true, &mut s).unwrap();
            }
            assert_eq!(s.finish(), whole, "{doc:?} in chunks of {size}");
        }
    }

    #[test]
    fn split_utf8_sequences_are_held_back() {
        assert_eq!(incomplete_utf8(b"ab"), 0);
        assert_eq!(incomplete_utf8("a\u{e9}".as_bytes()), 0);
        assert_eq!(incomplete_utf8(&"a\u{e9}".as_bytes()[..2]), 1);
        assert_eq!(incomplete_utf8(&"\u{1F600}".as_bytes()[..3]), 3);
        assert_eq!(incomplete_utf8("\u{1F600}".as_bytes()), 0);
    }
}
