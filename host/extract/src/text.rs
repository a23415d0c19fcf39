//! Text decoding (BOMs, UTF-16, legacy single-byte fallback) and the output `Sink`
//! that normalises whitespace, enforces the output cap and checks the deadline.
//!
//! Normalisation rules, applied to every format:
//! - runs of spaces/tabs (and other Unicode white space) become one space;
//! - a single line break is kept as `\n`, two or more become one blank line (`\n\n`),
//!   so paragraph breaks survive; `\r\n` and lone `\r` count as line breaks;
//! - trailing white space on a line and leading/trailing white space of the whole text
//!   are dropped;
//! - control characters other than white space, and stray BOMs (U+FEFF), are dropped.

use std::borrow::Cow;

use crate::error::Result;
use crate::limits::Budget;

/// Pending separator between the text already written and the next visible char.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Space,
    Line,
    Para,
}

/// Accumulates extracted text under the output cap.
pub(crate) struct Sink {
    out: String,
    max: usize,
    full: bool,
    gap: Gap,
    /// Line breaks seen in the current white-space run (for "two make a paragraph").
    run_newlines: u8,
    prev_cr: bool,
    budget: Budget,
    ticks: u32,
}

impl Sink {
    pub(crate) fn new(max_output_bytes: usize, budget: Budget) -> Self {
        Sink {
            out: String::new(),
            max: max_output_bytes,
            full: false,
            gap: Gap::None,
            run_newlines: 0,
            prev_cr: false,
            budget,
            ticks: 0,
        }
    }

    /// Makes room for `total` bytes of text in all (at most the cap), so a text expected to be
    /// that long is written into one allocation instead of being copied as it grows.
    /// A buffer handed back by an indexed document is reused when one fits (see
    /// [`crate::recycle`]).
    pub(crate) fn reserve_total(&mut self, total: usize) {
        let want = total.min(self.max);
        if self.out.capacity() >= want {
            return;
        }
        if let Some(mut reused) = crate::recycle::take(want) {
            reused.push_str(&self.out);
            self.out = reused;
            return;
        }
        self.out.reserve(want.saturating_sub(self.out.len()));
    }

    /// The budget (deadline, inflation allowance) this sink carries.
    pub(crate) fn budget(&mut self) -> &mut Budget {
        &mut self.budget
    }

    /// The output cap in bytes.
    pub(crate) fn max_output_bytes(&self) -> usize {
        self.max
    }

    /// Record that text was cut before reaching the sink.
    pub(crate) fn mark_truncated(&mut self) {
        self.full = true;
    }

    /// `true` once the output cap has been reached; callers stop producing text.
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Call from parser loops: `Ok(false)` means "output full, stop", `Err` means the
    /// deadline passed. Checks the clock every 256 calls.
    pub(crate) fn proceed(&mut self) -> Result<bool> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(256) {
            self.budget.check_time()?;
        }
        Ok(!self.full)
    }

    /// Request at least a space before the next text.
    pub(crate) fn space(&mut self) {
        self.raise(Gap::Space);
    }

    /// Request at least a line break before the next text.
    pub(crate) fn line(&mut self) {
        self.raise(Gap::Line);
    }

    /// Request a paragraph break (blank line) before the next text.
    pub(crate) fn para(&mut self) {
        self.raise(Gap::Para);
    }

    fn raise(&mut self, gap: Gap) {
        self.gap = self.gap.max(gap);
        self.run_newlines = 0;
        self.prev_cr = false;
    }

    /// Append text, normalising white space.
    ///
    /// ASCII is classified byte by byte, and a single space between two visible ASCII
    /// characters stays inside the visible run (that is what normalisation would
    /// write anyway), so ordinary prose is copied in sentence-sized pieces.
    pub(crate) fn push(&mut self, s: &str) {
        if self.full {
            return;
        }
        let bytes = s.as_bytes();
        let mut run_start: Option<usize> = None;
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let (c, plain) = if b.is_ascii() {
                let inner_space = b == b' '
                    && run_start.is_some()
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_graphic);
                (char::from(b), b.is_ascii_graphic() || inner_space)
            } else {
                let Some(c) = s[i..].chars().next() else {
                    break;
                };
                (c, !(c.is_whitespace() || c.is_control() || c == '\u{feff}'))
            };
            if plain {
                if run_start.is_none() {
                    run_start = Some(i);
                }
                if b.is_ascii() {
                    // the common case: stay in a tight loop over visible ASCII
                    i += 1;
                    // 16 visible bytes at a time (a fold the compiler vectorises), then byte
                    // by byte where a space or anything else needs a look
                    while let Some(block) = bytes.get(i..i + 16) {
                        let graphic = block
                            .iter()
                            .fold(true, |all, &b| all & (b.wrapping_sub(0x21) < 0x5e));
                        if !graphic {
                            break;
                        }
                        i += 16;
                    }
                    while let Some(&b) = bytes.get(i) {
                        let visible = b.is_ascii_graphic()
                            || (b == b' ' && bytes.get(i + 1).is_some_and(u8::is_ascii_graphic));
                        if !visible {
                            break;
                        }
                        i += 1;
                    }
                    continue;
                }
            } else {
                if let Some(start) = run_start.take() {
                    self.write_visible(&s[start..i]);
                    if self.full {
                        return;
                    }
                }
                self.whitespace(c);
            }
            i += c.len_utf8();
        }
        if let Some(start) = run_start {
            self.write_visible(&s[start..]);
        }
    }

    fn whitespace(&mut self, c: char) {
        match c {
            '\n' if self.prev_cr => {
                // second half of \r\n: already counted
                self.prev_cr = false;
            }
            '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{0b}' | '\u{0c}' | '\u{85}' => {
                self.prev_cr = c == '\r';
                self.run_newlines = self.run_newlines.saturating_add(1);
                let g = if self.run_newlines >= 2 || c == '\u{2029}' {
                    Gap::Para
                } else {
                    Gap::Line
                };
                self.gap = self.gap.max(g);
            }
            c if c.is_whitespace() => {
                self.prev_cr = false;
                self.gap = self.gap.max(Gap::Space);
            }
            _ => {
                // control characters and BOMs vanish without separating words
                self.prev_cr = false;
            }
        }
    }

    fn write_visible(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if !self.out.is_empty() {
            let sep = match self.gap {
                Gap::None => "",
                Gap::Space => " ",
                Gap::Line => "\n",
                Gap::Para => "\n\n",
            };
            if self.out.len() + sep.len() >= self.max {
                self.full = true;
                return;
            }
            self.out.push_str(sep);
        }
        self.gap = Gap::None;
        self.run_newlines = 0;
        self.prev_cr = false;
        let room = self.max.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
        } else {
            let mut cut = room;
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
            // a run may hold inner spaces: never end the text on one
            self.out.push_str(s[..cut].trim_end_matches(' '));
            self.full = true;
        }
    }

    /// The text and whether it was truncated.
    pub(crate) fn finish(self) -> (String, bool) {
        (self.out, self.full)
    }
}

/// Decode a text body: UTF-8 (BOM optional), UTF-16 with a BOM (or unmistakably
/// UTF-16 without one), otherwise a lossy fallback: Windows-1252 when the bytes
/// contain no valid multi-byte UTF-8 at all (typical of legacy Latin-1 files),
/// else UTF-8 with U+FFFD replacements.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Cow::Owned(
            encoding_rs::UTF_16LE
                .decode_without_bom_handling(rest)
                .0
                .into_owned(),
        );
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Cow::Owned(
            encoding_rs::UTF_16BE
                .decode_without_bom_handling(rest)
                .0
                .into_owned(),
        );
    }
    match utf16_without_bom(bytes) {
        Some(true) => {
            return Cow::Owned(
                encoding_rs::UTF_16LE
                    .decode_without_bom_handling(bytes)
                    .0
                    .into_owned(),
            );
        }
        Some(false) => {
            return Cow::Owned(
                encoding_rs::UTF_16BE
                    .decode_without_bom_handling(bytes)
                    .0
                    .into_owned(),
            );
        }
        None => {}
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) if !has_valid_multibyte_utf8(bytes) => Cow::Owned(
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        ),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Whether `bytes` is UTF-8; when it is only the start of a body (`complete` false), a
/// character cut off at its end still counts as UTF-8.
pub(crate) fn utf8_head(bytes: &[u8], complete: bool) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none(),
    }
}

/// The encoding [`decode`] reads a body in, judged from its start (`head`; `complete` when it
/// is the whole body), and the length of its byte-order mark: the same rules, so a body whose
/// head decides as the whole would is decoded the same in pieces as at once.
pub(crate) fn text_encoding(
    head: &[u8],
    complete: bool,
) -> (&'static encoding_rs::Encoding, usize) {
    if let Some(found) = encoding_rs::Encoding::for_bom(head) {
        return found;
    }
    match utf16_without_bom(head) {
        Some(true) => return (encoding_rs::UTF_16LE, 0),
        Some(false) => return (encoding_rs::UTF_16BE, 0),
        None => {}
    }
    if utf8_head(head, complete) || has_valid_multibyte_utf8(head) {
        (encoding_rs::UTF_8, 0)
    } else {
        (encoding_rs::WINDOWS_1252, 0)
    }
}

/// `Some(true)` for UTF-16LE, `Some(false)` for UTF-16BE, when (in the first 4 KiB)
/// nearly every other byte is NUL and the others are not: ASCII-range UTF-16 text.
pub(crate) fn utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    let head = &bytes[..bytes.len().min(4096) & !1];
    if head.len() < 8 {
        return None;
    }
    let pairs = head.len() / 2;
    let (mut even_nul, mut odd_nul) = (0usize, 0usize);
    for pair in head.chunks_exact(2) {
        if pair[0] == 0 {
            even_nul += 1;
        }
        if pair[1] == 0 {
            odd_nul += 1;
        }
    }
    let most = pairs * 9 / 10;
    let few = pairs / 10;
    if odd_nul >= most && even_nul <= few {
        Some(true)
    } else if even_nul >= most && odd_nul <= few {
        Some(false)
    } else {
        None
    }
}

fn has_valid_multibyte_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => return !s.is_ascii(),
            Err(e) => {
                let valid = &rest[..e.valid_up_to()];
                if !valid.is_ascii() {
                    return true;
                }
                let skip = e.valid_up_to() + e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                if skip >= rest.len() {
                    return false;
                }
                rest = &rest[skip..];
            }
        }
    }
}

/// True when the start of the body looks binary: NUL bytes that are not UTF-16 text.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return false;
    }
    let head = &bytes[..bytes.len().min(8192)];
    head.contains(&0) && utf16_without_bom(bytes).is_none()
}

/// A Windows-1252 byte as a character (0x80–0x9F are the typographic characters; the
/// five unassigned ones stay C1 controls, as in the WHATWG decoder).
pub(crate) fn cp1252(b: u8) -> char {
    const C1: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}',
        '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}',
        '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}',
        '\u{9D}', '\u{017E}', '\u{0178}',
    ];
    match b {
        0x80..=0x9F => C1[usize::from(b - 0x80)],
        b => char::from(b),
    }
}
