//! [`Feed`]: the push scanner for plain XML (see the parent module for what it keeps and why).
//!
//! Invariants:
//! - **Memory.** A `Feed` is a few dozen bytes and owns no buffer: it never holds input.
//!   Text and CDATA are written to the sink as they are read; tags, comments, processing
//!   instructions and DOCTYPEs are skipped as they are read. What a piece can end in the middle
//!   of is kept as state: the quote a tag is inside, up to two `-` or `]` that may start an end
//!   (`-->`, `]]>`), whether the last byte was `?` or a `\r` (a `\n` after it is the same line
//!   end), the bytes of `<!`/`<![CDATA[`/`<!DOCTYPE` matched so far, at most 9 bytes
//!   of a declaration's keyword in the internal subset, and a reference's value so far (its
//!   first 4 bytes, or its number).
//! - **Any split.** The state is all that crosses a piece boundary, and every decision waits
//!   for the byte that settles it, so any split of a text gives the text (and the error) of
//!   feeding it whole.
//! - **quick-xml's outcome.** Markup is recognised exactly as quick-xml 0.42 (with the
//!   `PLAIN_XML` configuration) recognises it when given a whole document, down to its corner
//!   cases (`<!-->` opens a comment; `<?>` is an error but `<??>` a PI; inside the internal
//!   subset `<?>` does not end a PI; a declaration keyword is matched on its bytes, `<!ENTITYx`
//!   included), and it fails where quick-xml fails. Kept differences are in the parent module.

use memchr::{memchr, memchr2, memchr3, memchr3_iter};

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::Sink;

/// A plain XML text fed in pieces of decoded text: text nodes and CDATA go to the sink as they
/// are read, each tag is a word boundary, references are resolved (predefined entities and
/// character references only), all other markup is skipped. [`super::extract`] is this fed the
/// whole text at once.
#[derive(Debug)]
pub(crate) struct Feed {
    state: State,
    /// The text node or CDATA section being read ended a piece with `\r`, written as `\n`: a
    /// `\n` that starts the next piece is the rest of that line end.
    skip_lf: bool,
    /// Inside a DOCTYPE: something other than white space followed `<!DOCTYPE` (its name).
    named: bool,
    /// Bytes of text fed before the current piece.
    offset: u64,
    /// Where the markup or reference being read starts, for error messages.
    start: u64,
}

/// Where the scanner is between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Character data.
    Text,
    /// After `&`, up to `;`.
    Ref(Ref),
    /// After `<`.
    Lt,
    /// A start, end or empty-element tag, up to `>`; `quote`: the quote of the attribute value
    /// we are in (0 outside).
    Tag { quote: u8 },
    /// After `<!`.
    Bang,
    /// After `<!-`.
    CommentOpen,
    /// A comment, up to `-->`; `dashes`: how many `-` (at most 2) end the comment so far.
    Comment { dashes: u8 },
    /// After `<![` and the first `n` bytes of `CDATA[`.
    CdataOpen(u8),
    /// A CDATA section, up to `]]>`; `brackets`: `]` read but not yet written (at most 2),
    /// as they may start the end.
    Cdata { brackets: u8 },
    /// After `<?`, up to `?>`; `question`: the last byte read was `?` (the opening one counts);
    /// `empty`: nothing follows `<?` yet.
    Pi { question: bool, empty: bool },
    /// After `<!D` and the first `n` bytes of `OCTYPE` (any case).
    DoctypeOpen(u8),
    /// The rest of a DOCTYPE, up to its `>`.
    Doctype(Dtd),
}

/// Inside a DOCTYPE, as quick-xml's `DtdParser` skips it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtd {
    /// Before the internal subset; `quote`: inside a quoted literal (0 outside).
    Before { quote: u8 },
    /// In the internal subset `[…]`, between declarations.
    Subset,
    /// After a `<` in the subset: the bytes after it so far, while they may be a keyword.
    Markup { bytes: [u8; 9], len: u8 },
    /// A PI in the subset, up to `?>` (the opening `?` does not count here).
    Pi { question: bool },
    /// A comment in the subset, up to `-->`.
    Comment { dashes: u8 },
    /// `<!ELEMENT` or unknown markup in the subset: up to the first `>`.
    Decl,
    /// `<!ENTITY`, `<!ATTLIST`, `<!NOTATION`: up to a `>` outside quotes.
    Quoted { quote: u8 },
    /// After the subset's `]`: up to the DOCTYPE's `>`.
    After,
}

/// The declarations of the internal subset quick-xml tells apart, by the bytes after `<`.
const KEYWORDS: [(&[u8], Dtd); 6] = [
    (b"?", Dtd::Pi { question: false }),
    (b"!--", Dtd::Comment { dashes: 0 }),
    (b"!ELEMENT", Dtd::Decl),
    (b"!ENTITY", Dtd::Quoted { quote: 0 }),
    (b"!ATTLIST", Dtd::Quoted { quote: 0 }),
    (b"!NOTATION", Dtd::Quoted { quote: 0 }),
];

/// A reference being read: only what decides its value is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    /// A name: its first 4 bytes and its length (5: longer than any predefined entity).
    Name { bytes: [u8; 4], len: u8 },
    /// `&#`.
    Hash,
    /// `&#` and decimal digits; `None` once it is no number (a non-digit, an overflow).
    Dec(Option<u32>),
    /// `&#x`.
    HexStart,
    /// `&#x` and hex digits; `None` once it is no number.
    Hex(Option<u32>),
}

impl Ref {
    const START: Ref = Ref::Name {
        bytes: [0; 4],
        len: 0,
    };

    fn read(self, bytes: &[u8]) -> Ref {
        bytes.iter().fold(self, |r, &b| r.next(b))
    }

    fn next(self, b: u8) -> Ref {
        let digit = |value: Option<u32>, radix: u32| {
            let d = char::from(b).to_digit(radix)?;
            value?.checked_mul(radix)?.checked_add(d)
        };
        match self {
            Ref::Name { len: 0, .. } if b == b'#' => Ref::Hash,
            Ref::Name { mut bytes, len } => {
                if let Some(slot) = bytes.get_mut(usize::from(len)) {
                    *slot = b;
                }
                Ref::Name {
                    bytes,
                    len: (len + 1).min(5),
                }
            }
            Ref::Hash if b == b'x' => Ref::HexStart,
            // quick-xml rejects a sign (which `from_str_radix` would take) and upper-case `X`
            Ref::Hash => Ref::Dec(digit(Some(0), 10)),
            Ref::Dec(v) => Ref::Dec(digit(v, 10)),
            Ref::HexStart => Ref::Hex(digit(Some(0), 16)),
            Ref::Hex(v) => Ref::Hex(digit(v, 16)),
        }
    }

    /// The character a complete reference stands for: a predefined entity, or a character
    /// reference to a valid character other than NUL. Anything else (an entity a DTD may
    /// declare, a bad number) is dropped, never expanded.
    fn resolve(self) -> Option<char> {
        match self {
            Ref::Name { bytes, len } => match bytes.get(..usize::from(len))? {
                b"amp" => Some('&'),
                b"lt" => Some('<'),
                b"gt" => Some('>'),
                b"quot" => Some('"'),
                b"apos" => Some('\''),
                _ => None,
            },
            Ref::Dec(Some(n)) | Ref::Hex(Some(n)) if n != 0 => char::from_u32(n),
            _ => None,
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// How many `byte`s (at most 2) end `run`, counting `carried` ones before it when `run` is
/// nothing but them.
fn trailing(run: &[u8], byte: u8, carried: u8) -> u8 {
    let n = run.iter().rev().take(2).take_while(|&&b| b == byte).count();
    if n == run.len() {
        (n as u8 + carried).min(2)
    } else {
        n as u8
    }
}

/// The end of a tag in `rest` (a `>` outside quotes), starting inside `quote` (0: outside):
/// `Ok(index of the >)`, or `Err(the quote at the end of rest)`.
fn tag_end(rest: &[u8], mut quote: u8) -> std::result::Result<usize, u8> {
    for p in memchr3_iter(b'>', b'"', b'\'', rest) {
        match (quote, rest[p]) {
            (0, b'>') => return Ok(p),
            (0, q) => quote = q,
            (q, c) if q == c => quote = 0,
            _ => {}
        }
    }
    Err(quote)
}

/// The end of a comment in `rest` (a `>` after two `-` of the comment), `dashes` ending the
/// comment before `rest`: `Ok(index of the >)`, or `Err(the dashes at the end of rest)`.
fn comment_end(rest: &[u8], dashes: u8) -> std::result::Result<usize, u8> {
    let mut from = 0;
    while let Some(q) = memchr(b'>', &rest[from..]) {
        let p = from + q;
        if trailing(&rest[..p], b'-', dashes) >= 2 {
            return Ok(p);
        }
        from = p + 1;
    }
    Err(trailing(rest, b'-', dashes))
}

/// The end of a PI in `rest` (a `>` right after a `?`), `question` when the byte before `rest`
/// was that `?`: `Ok(index of the >)`, or `Err(whether rest ends in ?)`.
fn pi_end(rest: &[u8], question: bool) -> std::result::Result<usize, bool> {
    let mut from = 0;
    while let Some(q) = memchr(b'>', &rest[from..]) {
        let p = from + q;
        let after_question = match p.checked_sub(1) {
            Some(before) => rest[before] == b'?',
            None => question,
        };
        if after_question {
            return Ok(p);
        }
        from = p + 1;
    }
    Err(rest.last().map_or(question, |&b| b == b'?'))
}

impl Dtd {
    /// Skips DOCTYPE bytes: `Some(index of its closing >)`, or `None` when all of `s` is
    /// inside it.
    fn skip(&mut self, s: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            match *self {
                Dtd::Before { quote: 0 } => {
                    let p = rest
                        .iter()
                        .position(|b| matches!(b, b'\'' | b'"' | b'[' | b'>'))?;
                    match rest[p] {
                        b'>' => return Some(i + p),
                        b'[' => *self = Dtd::Subset,
                        quote => *self = Dtd::Before { quote },
                    }
                    i += p + 1;
                }
                Dtd::Before { quote } => {
                    i += memchr(quote, rest)? + 1;
                    *self = Dtd::Before { quote: 0 };
                }
                Dtd::Subset => {
                    let p = memchr2(b']', b'<', rest)?;
                    *self = if rest[p] == b']' {
                        Dtd::After
                    } else {
                        Dtd::Markup {
                            bytes: [0; 9],
                            len: 0,
                        }
                    };
                    i += p + 1;
                }
                Dtd::Markup { mut bytes, len } => {
                    let b = rest[0];
                    let len = usize::from(len);
                    // a keyword prefix is at most 8 bytes long, so there is room
                    if let Some(slot) = bytes.get_mut(len) {
                        *slot = b;
                    }
                    let seen = &bytes[..(len + 1).min(bytes.len())];
                    *self = match KEYWORDS.iter().find(|(k, _)| *k == seen) {
                        Some((_, next)) => *next,
                        None if KEYWORDS.iter().any(|(k, _)| k.starts_with(seen)) => Dtd::Markup {
                            bytes,
                            len: seen.len() as u8,
                        },
                        // unknown markup ends at the first `>` (the bytes before were a
                        // keyword's start, no `>` among them)
                        None if b == b'>' => Dtd::Subset,
                        None => Dtd::Decl,
                    };
                    i += 1;
                }
                Dtd::Pi { question } => match pi_end(rest, question) {
                    Ok(p) => {
                        *self = Dtd::Subset;
                        i += p + 1;
                    }
                    Err(question) => {
                        *self = Dtd::Pi { question };
                        return None;
                    }
                },
                Dtd::Comment { dashes } => match comment_end(rest, dashes) {
                    Ok(p) => {
                        *self = Dtd::Subset;
                        i += p + 1;
                    }
                    Err(dashes) => {
                        *self = Dtd::Comment { dashes };
                        return None;
                    }
                },
                Dtd::Decl => {
                    i += memchr(b'>', rest)? + 1;
                    *self = Dtd::Subset;
                }
                Dtd::Quoted { quote } => match tag_end(rest, quote) {
                    Ok(p) => {
                        *self = Dtd::Subset;
                        i += p + 1;
                    }
                    Err(quote) => {
                        *self = Dtd::Quoted { quote };
                        return None;
                    }
                },
                Dtd::After => return memchr(b'>', rest).map(|p| i + p),
            }
        }
        None
    }
}

impl Feed {
    pub(crate) fn new() -> Self {
        Feed {
            state: State::Text,
            skip_lf: false,
            named: false,
            offset: 0,
            start: 0,
        }
    }

    /// Reads the next piece of text; `last` marks the end of the document. Once the output is
    /// full nothing after it counts, a malformed end included (as quick-xml's walk stopped
    /// reading there).
    pub(crate) fn feed(&mut self, text: &str, last: bool, sink: &mut Sink) -> Result<()> {
        let mut i = 0;
        while i < text.len() && !sink.is_full() {
            i = self.step(text, i, sink)?;
        }
        self.offset += text.len() as u64;
        if last && !sink.is_full() {
            self.end()?;
        }
        Ok(())
    }

    /// Reads from `text[i..]` (a run of text or markup, or a byte) and answers where to go on.
    fn step(&mut self, text: &str, i: usize, sink: &mut Sink) -> Result<usize> {
        let bytes = text.as_bytes();
        let rest = &bytes[i..];
        let next = match self.state {
            State::Text => {
                let Some(p) = memchr2(b'<', b'&', rest) else {
                    self.text(&text[i..], sink);
                    return Ok(text.len());
                };
                self.text(&text[i..i + p], sink);
                self.end_text();
                // for the deadline, once per markup as quick-xml's walk did once per event
                sink.proceed()?;
                self.start = self.offset + (i + p) as u64;
                self.state = if rest[p] == b'<' {
                    State::Lt
                } else {
                    State::Ref(Ref::START)
                };
                i + p + 1
            }
            State::Ref(r) => match memchr3(b';', b'&', b'<', rest) {
                Some(p) if rest[p] == b';' => {
                    if let Some(c) = r.read(&rest[..p]).resolve() {
                        sink.push(c.encode_utf8(&mut [0; 4]));
                    }
                    self.state = State::Text;
                    i + p + 1
                }
                Some(_) => {
                    return Err(
                        self.malformed("reference not closed: `;` not found before `<` or `&`")
                    );
                }
                None => {
                    self.state = State::Ref(r.read(rest));
                    text.len()
                }
            },
            State::Lt => match rest[0] {
                b'!' => {
                    self.state = State::Bang;
                    i + 1
                }
                b'?' => {
                    self.state = State::Pi {
                        question: true,
                        empty: true,
                    };
                    i + 1
                }
                // anything else starts a tag (`</` an end tag), this byte included: it may
                // open a quote
                _ => {
                    self.state = State::Tag { quote: 0 };
                    i
                }
            },
            State::Tag { quote } => match tag_end(rest, quote) {
                Ok(p) => {
                    // every start, end and empty-element tag separates words
                    sink.space();
                    self.state = State::Text;
                    i + p + 1
                }
                Err(quote) => {
                    self.state = State::Tag { quote };
                    text.len()
                }
            },
            State::Bang => {
                self.state = match rest[0] {
                    b'-' => State::CommentOpen,
                    b'[' => State::CdataOpen(0),
                    b'D' | b'd' => State::DoctypeOpen(0),
                    _ => {
                        return Err(self.malformed(
                            "`<!` starts neither a comment, a CDATA section nor a DOCTYPE",
                        ));
                    }
                };
                i + 1
            }
            State::CommentOpen => {
                if rest[0] != b'-' {
                    return Err(self.malformed("`<!-` does not start a comment `<!--`"));
                }
                self.state = State::Comment { dashes: 0 };
                i + 1
            }
            State::Comment { dashes } => match comment_end(rest, dashes) {
                Ok(p) => {
                    self.state = State::Text;
                    i + p + 1
                }
                Err(dashes) => {
                    self.state = State::Comment { dashes };
                    text.len()
                }
            },
            State::CdataOpen(n) => {
                const OPEN: &[u8] = b"CDATA[";
                if OPEN.get(usize::from(n)) != Some(&rest[0]) {
                    return Err(self.malformed("`<![` does not start a CDATA section `<![CDATA[`"));
                }
                self.state = if usize::from(n) + 1 == OPEN.len() {
                    State::Cdata { brackets: 0 }
                } else {
                    State::CdataOpen(n + 1)
                };
                i + 1
            }
            State::Cdata { brackets } => {
                let mut from = 0;
                while let Some(q) = memchr(b'>', &rest[from..]) {
                    let p = from + q;
                    if trailing(&rest[..p], b']', brackets) >= 2 {
                        self.cdata(&text[i..i + p], brackets, 2, sink);
                        self.end_text();
                        self.state = State::Text;
                        return Ok(i + p + 1);
                    }
                    from = p + 1;
                }
                // all of it is text but up to two `]` that may start the end
                let keep = trailing(rest, b']', brackets);
                self.cdata(&text[i..], brackets, keep, sink);
                self.state = State::Cdata { brackets: keep };
                text.len()
            }
            State::Pi { question, empty } => match pi_end(rest, question) {
                Ok(0) if empty => {
                    return Err(self.malformed("`<?>` is no processing instruction"));
                }
                Ok(p) => {
                    self.state = State::Text;
                    i + p + 1
                }
                Err(question) => {
                    self.state = State::Pi {
                        question,
                        empty: false,
                    };
                    text.len()
                }
            },
            State::DoctypeOpen(n) => {
                const OPEN: &[u8] = b"OCTYPE";
                if !OPEN
                    .get(usize::from(n))
                    .is_some_and(|b| b.eq_ignore_ascii_case(&rest[0]))
                {
                    return Err(self.malformed("`<!D` does not start a DOCTYPE `<!DOCTYPE`"));
                }
                self.state = if usize::from(n) + 1 == OPEN.len() {
                    self.named = false;
                    State::Doctype(Dtd::Before { quote: 0 })
                } else {
                    State::DoctypeOpen(n + 1)
                };
                i + 1
            }
            State::Doctype(mut dtd) => {
                let end = dtd.skip(rest);
                // quick-xml wants a name: something other than white space before the end
                if !self.named {
                    let read = &rest[..end.unwrap_or(rest.len())];
                    self.named = read.iter().any(|&b| !is_space(b));
                }
                match end {
                    Some(_) if !self.named => {
                        return Err(self.malformed("DOCTYPE without a name"));
                    }
                    Some(p) => {
                        self.state = State::Text;
                        i + p + 1
                    }
                    None => {
                        self.state = State::Doctype(dtd);
                        text.len()
                    }
                }
            }
        };
        Ok(next)
    }

    /// The end of the document: it must not end inside markup or a reference.
    fn end(&mut self) -> Result<()> {
        let what = match self.state {
            State::Text => {
                self.end_text();
                return Ok(());
            }
            State::Ref(_) => "reference not closed: `;` not found before the end",
            State::Lt | State::Tag { quote: 0 } => "tag not closed: `>` not found before the end",
            State::Tag { .. } => "attribute value not closed: its quote not found before the end",
            State::Bang => "`<!` at the end",
            State::CommentOpen | State::Comment { .. } => {
                "comment not closed: `-->` not found before the end"
            }
            State::CdataOpen(_) | State::Cdata { .. } => {
                "CDATA section not closed: `]]>` not found before the end"
            }
            State::Pi { .. } => "processing instruction not closed: `?>` not found before the end",
            State::DoctypeOpen(_) | State::Doctype(_) => {
                "DOCTYPE not closed: `>` not found before the end"
            }
        };
        Err(self.malformed(what))
    }

    fn malformed(&self, what: &str) -> ExtractError {
        ExtractError::failed(
            Format::Xml,
            format!("malformed XML near byte {}: {what}", self.start),
        )
    }

    /// Writes text of a text node or CDATA section with its line ends normalised as quick-xml's
    /// `xml10_content` did, `\r\n` and `\r` to `\n`, within each node (not across: a `\r`
    /// written by `&#13;` still pairs with the `\n` a node starts with, in the sink).
    fn text(&mut self, s: &str, sink: &mut Sink) {
        if s.is_empty() {
            return;
        }
        let mut s = s;
        if std::mem::take(&mut self.skip_lf) {
            s = s.strip_prefix('\n').unwrap_or(s);
        }
        while let Some(p) = memchr(b'\r', s.as_bytes()) {
            sink.push(&s[..p]);
            sink.push("\n");
            let after = &s[p + 1..];
            if after.is_empty() {
                self.skip_lf = true;
                return;
            }
            s = after.strip_prefix('\n').unwrap_or(after);
        }
        sink.push(s);
    }

    /// A text node or CDATA section ends.
    fn end_text(&mut self) {
        self.skip_lf = false;
    }

    /// Writes CDATA text: `pending` held-back `]`, then `run`, less the last `keep` of them
    /// (all `]`).
    fn cdata(&mut self, run: &str, pending: u8, keep: u8, sink: &mut Sink) {
        let (pending, keep) = (usize::from(pending), usize::from(keep));
        let brackets = |n: usize| "]]".get(..n).unwrap_or_default();
        match run.len().checked_sub(keep) {
            Some(len) => {
                self.text(brackets(pending), sink);
                self.text(&run[..len], sink);
            }
            // `run` is nothing but `]`, fewer than kept: some held back are kept again
            None => self.text(brackets((pending + run.len()).saturating_sub(keep)), sink),
        }
    }
}
