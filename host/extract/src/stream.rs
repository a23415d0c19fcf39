//! Extraction of a body that arrives in pieces (a download), for the formats read front to
//! back: plain text, Markdown, CSV, TSV, JSON, XML and HTML. Other formats need the whole body
//! ([`Begin::Whole`]).
//!
//! Invariants:
//! - **Memory.** Besides its output (at most `max_output_bytes`), a stream holds one transcoded
//!   piece of a body that is not valid UTF-8 (UTF-8 is read where it lies, with at most a
//!   character's first 3 bytes kept between pieces) and the HTML scanner's lookahead tail (under 80 bytes),
//!   or JSON's open containers (at most 127) and the number being read (at most 64 KiB), or
//!   the XML scanner's few bytes of state (no buffer: text and CDATA are written as read,
//!   tags, comments, PIs and DOCTYPEs skipped as read).
//!   The body itself is never accumulated: a caller reads a piece, feeds it, and drops it.
//! - **Same text.** The decisions taken on the body's start — format, encoding, "binary, not
//!   text" — are taken on the head handed to [`begin`] by the same rules [`crate::extract`]
//!   applies to the whole body, and the decoders and the scanners give the same text for any
//!   split of the rest (XML's scanner is the whole body's, so its errors match too). So a body
//!   whose head decides as the whole would (every body up to [`HEAD_BYTES`], and any body
//!   whose start shows its encoding) yields the same text either way.
//! - **Stops early.** Once the output is full, [`Streaming::feed`] answers `false` and the
//!   caller stops reading: the rest of the body would be cut anyway.
//! - **Limits.** More input than `max_input_bytes` is [`ExtractError::TooLarge`], the time
//!   limit is checked at every piece (and inside the HTML and XML scanners), and a panic while
//!   scanning a piece is contained like any parser's.

use crate::detect::{Detection, Format, detect_inner};
use crate::error::{ExtractError, Result};
use crate::formats::{delimited, html, json, xml};
use crate::limits::{Budget, Limits};
use crate::run::{Extracted, contain};
use crate::text::{Sink, looks_binary, text_encoding};

/// How much of a body's start [`begin`] should see: enough to sniff any format, find an HTML
/// `charset`, and tell UTF-8 from legacy encodings the way the whole body would.
pub const HEAD_BYTES: usize = 64 * 1024;

/// How to go on with a body after its head.
pub enum Begin {
    /// Feed the rest to this stream (the head is already in it).
    Streaming(Box<Streaming>),
    /// This format needs the whole body: collect it, then [`crate::extract_as`] (or an
    /// [`crate::Extractor`]) with this format.
    Whole(Format),
}

/// Whether a body named `file_name`, of type `mime`, will most likely stream, judged before any
/// byte is seen (the head decides for real): lets a caller size what it reserves for it.
pub fn likely_streams(file_name: &str, mime: Option<&str>) -> bool {
    matches!(
        detect_inner(file_name, mime, b""),
        Detection::Format(f) if streams(f)
    )
}

fn streams(format: Format) -> bool {
    // every format decoded as text, but mail: its MIME parts are found in the whole message
    format.is_textual() && format != Format::Eml
}

/// Starts extracting a body from its first bytes, `head` (at least [`HEAD_BYTES`] of it, or all
/// of it with `complete`): detects the format as [`crate::extract`] does and, for a format read
/// front to back, feeds `head` to a new stream.
pub fn begin(
    head: &[u8],
    complete: bool,
    file_name: &str,
    mime: Option<&str>,
    limits: &Limits,
) -> Result<Begin> {
    let format = match detect_inner(file_name, mime, head) {
        Detection::Format(format) => format,
        Detection::Unsupported(what) => return Err(ExtractError::Unsupported(what)),
    };
    if !streams(format) {
        return Ok(Begin::Whole(format));
    }
    if looks_binary(head) {
        return Err(ExtractError::failed(
            format,
            "binary content (NUL bytes), not text",
        ));
    }
    let sink = Sink::new(limits.max_output_bytes, Budget::new(limits));
    let (decoder, skip) = match format {
        Format::Html => {
            let (feed, bom) = html::Feed::new(head, complete);
            (Decoder::Html(Box::new(feed)), bom)
        }
        _ => {
            // XML also heeds the encoding its declaration names; the whole body decides alike
            let (encoding, bom) = match format {
                Format::Xml => xml::encoding_of(head, complete),
                _ => text_encoding(head, complete),
            };
            let reader = match format {
                Format::Csv | Format::Tsv => Reader::Cells(Box::new(delimited::Feed::new(format))),
                Format::Json => Reader::Json(Box::new(json::Feed::new())),
                Format::Xml => Reader::Xml(Box::new(xml::Feed::new())),
                _ => Reader::Plain,
            };
            (Decoder::Text(Text::new(encoding), reader), bom)
        }
    };
    let mut stream = Streaming {
        format,
        decoder,
        sink,
        read: 0,
        max_input_bytes: limits.max_input_bytes,
    };
    stream.read = (skip as u64).min(head.len() as u64);
    stream.scan(head.get(skip..).unwrap_or_default(), false)?;
    Ok(Begin::Streaming(Box::new(stream)))
}

/// A body being extracted as it arrives.
pub struct Streaming {
    format: Format,
    decoder: Decoder,
    sink: Sink,
    read: u64,
    max_input_bytes: u64,
}

enum Decoder {
    /// Decoded, then read by the format's reader.
    Text(Text, Reader),
    Html(Box<html::Feed>),
}

/// How a textual body's bytes become text.
///
/// UTF-8 is read in place: each piece's text is handed to the reader as it lies in the piece,
/// and only a character cut by the piece's end (at most 3 bytes) is kept for the next one.
/// At the first invalid sequence the rest of the body goes through `encoding_rs`'s decoder
/// (a fresh decoder after a whole character is in the state one that read the text before it
/// would be in), so the text is the decoder's, replacement characters included, either way.
/// Why: the decoder copies every byte into its own buffer first; for plain text of 1 MB bodies
/// that copy and its buffer's page faults were a tenth of the Box mix's CPU (`perf`).
struct Text {
    /// `Some` while reading UTF-8 in place: the start of a character the last piece cut.
    in_place: Option<Cut>,
    decoder: encoding_rs::Decoder,
    /// The decoder's output for the current piece.
    decoded: String,
}

/// How many bytes the UTF-8 character that starts with `lead` has (1 for a byte that cannot
/// start one).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// The first bytes of a UTF-8 character cut by a piece's end.
#[derive(Default)]
struct Cut {
    bytes: [u8; 4],
    len: usize,
}

impl Text {
    fn new(encoding: &'static encoding_rs::Encoding) -> Self {
        Self {
            in_place: (encoding == encoding_rs::UTF_8).then(Cut::default),
            decoder: encoding.new_decoder_without_bom_handling(),
            decoded: String::new(),
        }
    }

    /// Hands `piece`'s text to `read`, once or more (`last` only with the last call).
    fn decode(
        &mut self,
        piece: &[u8],
        last: bool,
        format: Format,
        mut read: impl FnMut(&str, bool) -> Result<()>,
    ) -> Result<()> {
        let mut rest = piece;
        if let Some(cut) = &mut self.in_place {
            if cut.len > 0 {
                // complete the character the last piece cut, from this one's first bytes
                let width = utf8_width(cut.bytes[0]).max(cut.len + 1);
                let add = (width - cut.len).min(rest.len());
                let (more, after) = rest.split_at(add);
                cut.bytes[cut.len..cut.len + add].copy_from_slice(more);
                cut.len += add;
                match std::str::from_utf8(&cut.bytes[..cut.len]) {
                    Ok(c) => {
                        read(c, last && after.is_empty())?;
                        cut.len = 0;
                        rest = after;
                        if rest.is_empty() {
                            return Ok(());
                        }
                    }
                    // still cut: this piece was shorter than the character's rest
                    Err(e) if e.error_len().is_none() && !last => return Ok(()),
                    Err(_) => {
                        // the decoder takes over from the cut character's first byte
                        let (held, len) = (cut.bytes, cut.len - add);
                        self.in_place = None;
                        let held = held.get(..len).unwrap_or_default();
                        self.decode_copied(held, false, format, &mut read)?;
                        return self.decode_copied(piece, last, format, &mut read);
                    }
                }
            }
            match std::str::from_utf8(rest) {
                Ok(text) => return read(text, last),
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    // valid by `valid_up_to`'s definition
                    let text = std::str::from_utf8(valid).unwrap_or_default();
                    // a cut character has at most 3 bytes; checked, so the copy cannot overrun
                    if e.error_len().is_none() && !last && tail.len() < 4 {
                        read(text, false)?;
                        cut.bytes[..tail.len()].copy_from_slice(tail);
                        cut.len = tail.len();
                        return Ok(());
                    }
                    if !text.is_empty() {
                        read(text, false)?;
                    }
                    self.in_place = None;
                    rest = tail;
                }
            }
        }
        self.decode_copied(rest, last, format, &mut read)
    }

    /// Decodes `piece` with `encoding_rs`, into the decoder's buffer.
    fn decode_copied(
        &mut self,
        piece: &[u8],
        last: bool,
        format: Format,
        read: &mut impl FnMut(&str, bool) -> Result<()>,
    ) -> Result<()> {
        self.decoded.clear();
        let room = self
            .decoder
            .max_utf8_buffer_length(piece.len())
            .ok_or_else(|| ExtractError::failed(format, "decoding buffer size overflows"))?;
        self.decoded.reserve(room);
        // room for the whole piece was reserved, so the decoder always finishes it
        let _ = self
            .decoder
            .decode_to_string(piece, &mut self.decoded, last);
        read(&self.decoded, last)
    }
}

/// What reads decoded text.
enum Reader {
    /// Plain text or Markdown: normalised by the sink.
    Plain,
    /// CSV and TSV: read into cells.
    Cells(Box<delimited::Feed>),
    /// JSON: its strings and numbers.
    Json(Box<json::Feed>),
    /// Plain XML: its text nodes and CDATA.
    Xml(Box<xml::Feed>),
}

impl Streaming {
    /// The format the body is read as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Feeds the next piece of the body. `Ok(false)` when the output is full: the caller stops
    /// reading, the rest would be cut anyway.
    pub fn feed(&mut self, piece: &[u8]) -> Result<bool> {
        self.scan(piece, false)?;
        Ok(!self.sink.is_full())
    }

    /// Tells the stream its body is `declared` bytes long in all (its `Content-Length`). Plain
    /// text comes out about as long as it goes in, so its text gets that room at once (up to
    /// the output cap) rather than growing and being copied as it arrives; other formats lose
    /// most of their bytes to markup and grow as they go. A wrong figure costs an unused
    /// reservation within the cap, or a regrowth, never text.
    pub fn expect_len(&mut self, declared: u64) {
        if let Decoder::Text(_, Reader::Plain) = self.decoder {
            let declared = declared.min(self.max_input_bytes);
            self.sink
                .reserve_total(usize::try_from(declared).unwrap_or(usize::MAX));
        }
    }

    /// Ends the body: the text, and whether it was cut.
    pub fn finish(mut self) -> Result<Extracted> {
        if !self.sink.is_full() {
            self.scan(b"", true)?;
        }
        let (text, truncated) = self.sink.finish();
        Ok(Extracted {
            text,
            format: self.format,
            truncated,
        })
    }

    fn scan(&mut self, piece: &[u8], last: bool) -> Result<()> {
        self.read = self.read.saturating_add(piece.len() as u64);
        if self.read > self.max_input_bytes {
            return Err(ExtractError::TooLarge {
                size: self.read,
                limit: self.max_input_bytes,
            });
        }
        if self.sink.is_full() {
            return Ok(());
        }
        self.sink.budget().check_time()?;
        let (format, sink) = (self.format, &mut self.sink);
        match &mut self.decoder {
            Decoder::Html(feed) => contain(format, || feed.feed(piece, last, sink)),
            Decoder::Text(text, reader) => contain(format, || {
                text.decode(piece, last, format, |text, last| match reader {
                    Reader::Cells(cells) => cells.feed(text.as_bytes(), last, sink),
                    Reader::Json(json) => json.feed(text, last, sink),
                    Reader::Xml(xml) => xml.feed(text, last, sink),
                    Reader::Plain => {
                        sink.push(text);
                        Ok(())
                    }
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::extract;
    use crate::tests::rng;

    /// Extracts `body` through a stream begun with its first `head` bytes and fed in pieces of
    /// `piece` bytes.
    fn streamed(body: &[u8], name: &str, head: usize, piece: usize, limits: &Limits) -> Extracted {
        try_streamed(body, name, head, piece, limits).unwrap()
    }

    /// [`streamed`], errors kept.
    fn try_streamed(
        body: &[u8],
        name: &str,
        head: usize,
        piece: usize,
        limits: &Limits,
    ) -> Result<Extracted> {
        let head = head.min(body.len());
        let Begin::Streaming(mut stream) =
            begin(&body[..head], head == body.len(), name, None, limits)?
        else {
            panic!("{name} does not stream");
        };
        for chunk in body[head..].chunks(piece.max(1)) {
            if !stream.feed(chunk)? {
                break;
            }
        }
        stream.finish()
    }

    #[test]
    fn streamed_text_and_html_equal_the_whole_body_for_any_split() {
        let limits = Limits::default();
        // (name, body, the shortest head that shows what the whole body shows)
        let bodies: Vec<(&str, Vec<u8>, usize)> = vec![
            (
                "a.txt",
                "Grüße aus Köln\r\n\r\nzweiter  Absatz — ünd 日本語のテキスト\r\nend\n"
                    .repeat(40)
                    .into_bytes(),
                1,
            ),
            ("b.md", b"# Title\n\n* one\n* two\t\tthree\n".repeat(50), 1),
            (
                "f.csv",
                "name,city,note\r\n\"Müller, Anna\",Köln,\"said \"\"hi\"\"\nthen left\"\n,,\n\nplain,日本,x\n"
                    .repeat(40)
                    .into_bytes(),
                1,
            ),
            (
                "g.tsv",
                "a\tb c\t\"not quoted\nnext\t\tÜber\n".repeat(60).into_bytes(),
                1,
            ),
            (
                "c.html",
                "<html><head><title>t</title><style>p{}</style></head><body><p class='x>y'>Héllo &amp; <b>wörld</b>&nbsp;日本</p><script>if (a<b) x()</script><!-- c --><div>two</div></body></html>\n"
                    .repeat(40)
                    .into_bytes(),
                1,
            ),
            // legacy HTML announced by its meta charset
            (
                "d.html",
                [
                    &b"<html><head><meta charset=\"windows-1252\"></head><body><p>caf"[..],
                    &[0xE9],
                    b" cr\xE8me</p>",
                ]
                .concat()
                .repeat(30),
                // up to the first legacy byte, the start is plain ASCII
                70,
            ),
            // UTF-16 with a byte-order mark
            (
                "e.txt",
                std::iter::once([0xFF, 0xFE])
                    .flatten()
                    .chain("zwei Wörter\n".repeat(50).encode_utf16().flat_map(u16::to_le_bytes))
                    .collect(),
                2,
            ),
        ];
        let mut next = rng(3);
        for (name, body, shortest) in &bodies {
            let whole = extract(body, name, None, &limits).unwrap();
            for _ in 0..200 {
                let head = shortest + (next() as usize) % (body.len() - shortest);
                let piece = 1 + (next() as usize) % 97;
                let got = streamed(body, name, head, piece, &limits);
                assert_eq!(got, whole, "{name}: head {head}, pieces of {piece}");
            }
            // the head the host uses, with the body's whole length
            assert_eq!(streamed(body, name, HEAD_BYTES, 16 * 1024, &limits), whole);
        }
    }

    #[test]
    fn utf8_read_in_place_is_the_decoders_text_for_any_split_invalid_bytes_included() {
        let limits = Limits::default();
        let parts: [&[u8]; 17] = [
            b"a",
            b"word ",
            b"\n",
            "é".as_bytes(),
            "日本".as_bytes(),
            "😀".as_bytes(),
            b"\xFF",
            b"\x80",
            b"\xC3",
            b"\xE6\x97",
            b"\xF0\x9F",
            b"\xF0\x9F\x98",
            b"\xED\xA0\x80",
            b"\xE0\x80",
            b"\xF4\x90\x80\x80",
            b"\xC0\xAF",
            b"tail",
        ];
        let mut next = rng(11);
        for round in 0..300 {
            // a valid character first, so the head reads as UTF-8
            let mut body = "é ".as_bytes().to_vec();
            for _ in 0..next() % 200 {
                body.extend_from_slice(parts[(next() % parts.len() as u64) as usize]);
            }
            if round % 3 == 0 {
                // ends inside a character
                body.extend_from_slice(b"\xE6\x97");
            }
            // the decoder's text of the whole body, as valid UTF-8 read in place
            let decoded = encoding_rs::UTF_8.decode_without_bom_handling(&body).0;
            for name in ["a.txt", "b.csv"] {
                let want = streamed(decoded.as_bytes(), name, 2, usize::MAX, &limits);
                for _ in 0..20 {
                    let head = 2 + (next() as usize) % (body.len() - 1);
                    let piece = 1 + (next() as usize) % 9;
                    let got = streamed(&body, name, head, piece, &limits);
                    assert_eq!(got, want, "{name} {body:?}: head {head}, pieces of {piece}");
                }
            }
        }
    }

    /// A random JSON text: nested values, strings with every kind of escape (paired and lone
    /// surrogates included), numbers in every spelling, odd white space, and some malformed
    /// pieces (the test also breaks whole texts, so that errors are compared too).
    fn random_json(next: &mut impl FnMut() -> u64, depth: u32, out: &mut String) {
        let pick = next() % if depth > 4 { 4 } else { 7 };
        match pick {
            0 => {
                let pieces = [
                    "plain",
                    "Grüße",
                    "日本",
                    " two  words ",
                    "\\\"",
                    "\\n\\t\\/",
                    "\\u00e9",
                    "\\ud83d\\ude00",
                    "\\ud83d",
                    "\\ude00",
                    "\\u12",
                    "",
                    "\\b\\f\\r",
                    "\\x",
                    "tab\there",
                ];
                out.push('"');
                for _ in 0..next() % 4 {
                    out.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                }
                out.push('"');
            }
            1 => {
                let numbers = [
                    "0",
                    "-0",
                    "12",
                    "-7",
                    "3.25",
                    "1e3",
                    "2E-2",
                    "-0.5e+10",
                    "18446744073709551616",
                    "1e400",
                    "01",
                    "1.",
                    "-",
                    ".5",
                    "1e",
                    "123456789012345678901234567890.5",
                ];
                out.push_str(numbers[(next() % numbers.len() as u64) as usize]);
            }
            2 => out.push_str(["true", "false", "null", "tru", "nul"][(next() % 5) as usize]),
            3 => out.push_str(["", " ", "\n", "\t\r"][(next() % 4) as usize]),
            4 | 5 => {
                out.push('[');
                for n in 0..next() % 4 {
                    if n > 0 {
                        out.push(',');
                    }
                    random_json(next, depth + 1, out);
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                for n in 0..next() % 4 {
                    if n > 0 {
                        out.push_str(" , ");
                    }
                    out.push_str(
                        ["\"k\"", "\"\\ud800 key\"", "\"a\\u0041\"", "k"][(next() % 4) as usize],
                    );
                    out.push(':');
                    random_json(next, depth + 1, out);
                }
                out.push('}');
            }
        }
    }

    #[test]
    fn streamed_json_equals_the_whole_body_errors_included() {
        let mut next = rng(11);
        let mut compared = (0, 0);
        for round in 0..3000 {
            let mut text = String::new();
            for _ in 0..1 + next() % 3 {
                random_json(&mut next, 0, &mut text);
                text.push_str([" ", "\n", ""][(next() % 3) as usize]);
            }
            let mut body = text.into_bytes();
            if round % 3 == 0 && !body.is_empty() {
                // break it: a byte removed, or a significant one inserted (ASCII only: a
                // character cut in two is a question of encoding, compared elsewhere)
                let mut at = (next() as usize) % body.len();
                while body.get(at).is_some_and(|b| b & 0xC0 == 0x80) {
                    at += 1;
                }
                match next() % 2 {
                    0 if at == body.len() => {}
                    0 if body[at].is_ascii() => {
                        body.remove(at);
                    }
                    _ => body.insert(at, b"[]{},:\"\\-0e. x"[(next() % 14) as usize]),
                }
            }
            let limits = if round % 5 == 0 {
                Limits::default().with_max_output_bytes(20)
            } else {
                Limits::default()
            };
            let whole = extract(&body, "x.json", None, &limits);
            let head = (next() as usize) % (body.len() + 1);
            let piece = 1 + (next() as usize) % 13;
            let got = try_streamed(&body, "x.json", head, piece, &limits);
            let shown = String::from_utf8_lossy(&body);
            match (&whole, &got) {
                (Ok(whole), Ok(got)) => {
                    assert_eq!(got, whole, "{shown}");
                    compared.0 += 1;
                }
                (Err(_), Err(_)) => compared.1 += 1,
                // A string is written as it is read: when the output fills up inside a string
                // that turns out malformed after that point, the stream has its text already,
                // where the whole body, whose string is checked before it is written, fails.
                (Err(_), Ok(got)) if got.truncated => compared.1 += 1,
                _ => panic!("{shown}: whole {whole:?}, streamed {got:?}"),
            }
        }
        // both kinds of outcome were compared, many times
        assert!(compared.0 > 500 && compared.1 > 500, "{compared:?}");
    }

    #[test]
    fn streamed_xml_equals_the_whole_body_errors_included() {
        use crate::formats::xml::tests::{break_xml, random_xml};
        let mut next = rng(13);
        let mut compared = (0, 0);
        for round in 0..4000 {
            let mut body = random_xml(&mut next).into_bytes();
            if round % 3 == 0 {
                break_xml(&mut next, &mut body);
            }
            let limits = if round % 5 == 0 {
                Limits::default().with_max_output_bytes(20)
            } else {
                Limits::default()
            };
            let whole = extract(&body, "x.xml", None, &limits);
            let head = (next() as usize) % (body.len() + 1);
            let piece = 1 + (next() as usize) % 13;
            let got = try_streamed(&body, "x.xml", head, piece, &limits);
            let shown = String::from_utf8_lossy(&body);
            match (&whole, &got) {
                (Ok(whole), Ok(got)) => {
                    assert_eq!(got, whole, "{shown:?}: head {head}, pieces of {piece}");
                    compared.0 += 1;
                }
                // the same scanner reads both: the same error
                (Err(whole), Err(got)) => {
                    assert_eq!(got, whole, "{shown:?}: head {head}, pieces of {piece}");
                    compared.1 += 1;
                }
                _ => panic!("{shown:?}: whole {whole:?}, streamed {got:?}"),
            }
        }
        // both kinds of outcome were compared, many times
        assert!(compared.0 > 2000 && compared.1 > 150, "{compared:?}");
    }

    #[test]
    fn streamed_xml_is_decoded_as_the_whole_body() {
        let limits = Limits::default();
        let bodies: Vec<Vec<u8>> = vec![
            std::iter::once([0xFF, 0xFE])
                .flatten()
                .chain(
                    "<a>zwei Wörter</a>\n"
                        .repeat(50)
                        .encode_utf16()
                        .flat_map(u16::to_le_bytes),
                )
                .collect(),
            [
                &b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>"[..],
                &b"\xCF\xF0\xE8\xE2\xE5\xF2 "[..].repeat(200),
                b"</a>",
            ]
            .concat(),
            [
                &b"\xEF\xBB\xBF<a>"[..],
                "Grüße ".repeat(300).as_bytes(),
                b"</a>",
            ]
            .concat(),
        ];
        let mut next = rng(7);
        for body in &bodies {
            let whole = extract(body, "x.xml", None, &limits).unwrap();
            assert!(whole.text.len() > 500, "{}", whole.text);
            for _ in 0..50 {
                // heads that show the encoding as the whole body does
                let head = 64 + (next() as usize) % (body.len() - 64);
                let piece = 1 + (next() as usize) % 97;
                assert_eq!(streamed(body, "x.xml", head, piece, &limits), whole);
            }
            assert_eq!(
                streamed(body, "x.xml", HEAD_BYTES, 16 * 1024, &limits),
                whole
            );
        }
    }

    #[test]
    fn json_nesting_is_limited_as_serde_json_limits_it() {
        let limits = Limits::default();
        for depth in [126, 127, 128, 129, 1000] {
            let body = format!("{}1{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
            let whole = extract(&body, "x.json", None, &limits);
            let got = try_streamed(&body, "x.json", 64, 7, &limits);
            assert_eq!(whole.is_ok(), got.is_ok(), "depth {depth}");
            assert_eq!(got.is_ok(), depth <= 127, "depth {depth}");
        }
    }

    #[test]
    fn a_long_body_is_judged_by_its_head_and_stops_once_the_output_is_full() {
        let limits = Limits::default().with_max_output_bytes(1000);
        let body = "<p>word after word</p>\n".repeat(100_000).into_bytes();
        let Begin::Streaming(mut stream) =
            begin(&body[..HEAD_BYTES], false, "big.html", None, &limits).unwrap()
        else {
            panic!("html streams");
        };
        // the head alone fills 1000 bytes of text: the caller is told to stop reading
        assert!(!stream.feed(&body[HEAD_BYTES..HEAD_BYTES + 10]).unwrap());
        let out = stream.finish().unwrap();
        assert!(out.truncated);
        assert!(
            out.text.len() <= 1000 && out.text.len() > 900,
            "{}",
            out.text.len()
        );
        assert_eq!(out, extract(&body, "big.html", None, &limits).unwrap());
    }

    #[test]
    fn other_formats_need_the_whole_body_and_limits_hold() {
        let limits = Limits::default().with_max_input_bytes(100_000);
        let pdf = b"%PDF-1.7\n1 0 obj<<>>endobj\n";
        assert!(matches!(
            begin(pdf, false, "x.txt", None, &limits).unwrap(),
            Begin::Whole(Format::Pdf)
        ));
        assert!(matches!(
            begin(b"\x89PNG\r\n\x1a\n", false, "x.png", None, &limits),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            begin(b"abc\0\0\x01def", false, "x.txt", None, &limits),
            Err(ExtractError::Failed(m)) if m.contains("binary")
        ));
        // more input than allowed is too large, as for a whole body
        let Begin::Streaming(mut stream) =
            begin(&[b'a'; 60_000], false, "x.txt", None, &limits).unwrap()
        else {
            panic!("text streams");
        };
        assert!(matches!(
            stream.feed(&[b'b'; 60_000]),
            Err(ExtractError::TooLarge {
                size: 120_000,
                limit: 100_000
            })
        ));
        assert!(likely_streams("page.html", None));
        assert!(likely_streams("feed.rss", None));
        assert!(likely_streams("logo", Some("image/svg+xml")));
        assert!(likely_streams("notes", Some("text/plain")));
        assert!(!likely_streams("report.pdf", None));
    }
}
