//! Rich Text Format: a small, iterative RTF-to-text reader written here.
//!
//! Why not a crate: the one maintained candidate (`rtf-parser` 0.4) glues paragraphs
//! together (it ignores `\par`), leaks `\pict` image hex and `\info` metadata into the
//! text and decodes `\'hh` bytes without the document's code page; no other maintained
//! crate exists. The text-bearing subset of RTF is small and fully specified, so this
//! module implements just that, without recursion (nesting is an explicit stack, capped
//! at 1 000 groups):
//!
//! - groups `{…}`; destinations that hold no body text are skipped: `{\*…}` (ignorable),
//!   font/colour/style/list tables, `\info`, `\pict`, `\object` data, headers/footers,
//!   field instructions (`\fldinst`; the field result is kept), bookmarks, theme data;
//! - `\par`, `\line`, `\sect`, `\page`, `\row` break lines; `\tab`, `\cell` separate
//!   with a space;
//! - `\'hh` bytes are decoded with the document code page (`\ansicpg`, default
//!   Windows-1252); `\uN` is a Unicode character followed by `\ucN` (default 1)
//!   fallback characters that are skipped; `\~`, `\_`, `\emdash`, quotes and bullets map
//!   to their characters; `\binN` skips N raw bytes.

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::Sink;

const MAX_GROUP_DEPTH: usize = 1000;

/// Destinations whose content is not body text.
const SKIP_DESTINATIONS: &[&[u8]] = &[
    b"fonttbl",
    b"colortbl",
    b"stylesheet",
    b"info",
    b"pict",
    b"object",
    b"objdata",
    b"header",
    b"headerl",
    b"headerr",
    b"headerf",
    b"footer",
    b"footerl",
    b"footerr",
    b"footerf",
    b"fldinst",
    b"bkmkstart",
    b"bkmkend",
    b"listtable",
    b"listoverridetable",
    b"revtbl",
    b"rsidtbl",
    b"generator",
    b"themedata",
    b"colorschememapping",
    b"datastore",
    b"latentstyles",
    b"xmlnstbl",
    b"filetbl",
    b"pgdsctbl",
    b"nonshppict",
    b"blipuid",
    b"datafield",
    b"fontemb",
    b"fontfile",
    b"mmathPr",
    b"wgrffmtfilter",
    b"userprops",
    b"operator",
    b"author",
    b"title",
    b"subject",
    b"keywords",
    b"comment",
    b"doccomm",
];

#[derive(Clone, Copy)]
struct Group {
    skip: bool,
    /// fallback characters after `\uN`
    uc: usize,
}

/// Extract an RTF body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let bytes = bytes
        .strip_prefix(&[0xEF, 0xBB, 0xBF])
        .unwrap_or(&bytes[start..]);
    if !bytes.starts_with(b"{\\rtf") {
        return Err(ExtractError::failed(
            Format::Rtf,
            "missing {\\rtf header (not an RTF file)",
        ));
    }
    let mut codepage: &'static encoding_rs::Encoding = encoding_rs::WINDOWS_1252;
    let mut stack: Vec<Group> = Vec::new();
    let mut current = Group { skip: false, uc: 1 };
    // bytes of consecutive \'hh escapes, decoded together (multi-byte code pages)
    let mut pending: Vec<u8> = Vec::new();
    // fallback characters still to skip after a \uN
    let mut skip_fallback = 0usize;
    let mut i = 0usize;
    let mut text = String::new();

    macro_rules! flush_text {
        () => {
            if !pending.is_empty() {
                if !current.skip {
                    text.push_str(&codepage.decode_without_bom_handling(&pending).0);
                }
                pending.clear();
            }
            if !text.is_empty() {
                sink.push(&text);
                text.clear();
            }
        };
    }

    while i < bytes.len() {
        if !sink.proceed()? {
            return Ok(());
        }
        let b = bytes[i];
        match b {
            b'{' => {
                flush_text!();
                if stack.len() >= MAX_GROUP_DEPTH {
                    return Err(ExtractError::failed(
                        Format::Rtf,
                        format!("groups nest deeper than {MAX_GROUP_DEPTH} levels"),
                    ));
                }
                stack.push(current);
                i += 1;
                // {\*\dest …} is an ignorable destination
                if bytes[i..].starts_with(b"\\*") {
                    current.skip = true;
                }
            }
            b'}' => {
                flush_text!();
                current = stack.pop().unwrap_or(current);
                skip_fallback = 0;
                i += 1;
            }
            b'\\' => {
                let Some(&next) = bytes.get(i + 1) else {
                    break;
                };
                if next.is_ascii_alphabetic() {
                    // control word: letters, optional signed number, optional space
                    let word_start = i + 1;
                    let mut j = word_start;
                    while j < bytes.len() && bytes[j].is_ascii_alphabetic() && j - word_start < 32 {
                        j += 1;
                    }
                    let word = &bytes[word_start..j];
                    let num_start = j;
                    if j < bytes.len() && bytes[j] == b'-' {
                        j += 1;
                    }
                    while j < bytes.len() && bytes[j].is_ascii_digit() && j - num_start < 11 {
                        j += 1;
                    }
                    let param: Option<i64> = std::str::from_utf8(&bytes[num_start..j])
                        .ok()
                        .and_then(|s| s.parse().ok());
                    if j < bytes.len() && bytes[j] == b' ' {
                        j += 1;
                    }
                    i = j;
                    if word != b"u" && word != b"uc" && word != b"bin" {
                        // anything but a \u fallback continuation ends pending bytes
                        if !pending.is_empty() || !text.is_empty() {
                            flush_text!();
                        }
                    }
                    match word {
                        b"ansicpg" => {
                            if let Some(enc) = param.and_then(|p| {
                                encoding_rs::Encoding::for_label(format!("windows-{p}").as_bytes())
                                    .or_else(|| cp_label(p))
                            }) {
                                codepage = enc;
                            }
                        }
                        b"uc" => {
                            current.uc = usize::try_from(param.unwrap_or(1)).unwrap_or(1).min(16)
                        }
                        b"u" => {
                            if let Some(p) = param {
                                // negative values are UTF-16 units written as signed 16-bit
                                let unit = if p < 0 { p + 65536 } else { p };
                                if !current.skip {
                                    flush_text!();
                                    if let Some(c) =
                                        u32::try_from(unit).ok().and_then(char::from_u32)
                                    {
                                        text.push(c);
                                    }
                                }
                                skip_fallback = current.uc;
                            }
                        }
                        b"bin" => {
                            let n = usize::try_from(param.unwrap_or(0)).unwrap_or(0);
                            i = i.saturating_add(n).min(bytes.len());
                        }
                        _ if current.skip => {}
                        _ if SKIP_DESTINATIONS.contains(&word) => current.skip = true,
                        b"par" | b"line" | b"sect" | b"page" | b"row" => sink.line(),
                        b"tab" | b"cell" => sink.space(),
                        b"emdash" => text.push('\u{2014}'),
                        b"endash" => text.push('\u{2013}'),
                        b"bullet" => text.push('\u{2022}'),
                        b"lquote" => text.push('\u{2018}'),
                        b"rquote" => text.push('\u{2019}'),
                        b"ldblquote" => text.push('\u{201C}'),
                        b"rdblquote" => text.push('\u{201D}'),
                        _ => {}
                    }
                    continue;
                }
                // control symbols
                i += 2;
                match next {
                    b'\'' => {
                        let hex = bytes
                            .get(i..i + 2)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        if let Some(byte) = hex {
                            i += 2;
                            if skip_fallback > 0 {
                                skip_fallback -= 1;
                            } else if !current.skip {
                                if !text.is_empty() {
                                    sink.push(&text);
                                    text.clear();
                                }
                                pending.push(byte);
                            }
                        }
                    }
                    b'\\' | b'{' | b'}' if !current.skip => {
                        flush_text!();
                        text.push(char::from(next));
                    }
                    b'~' if !current.skip => text.push(' '),
                    b'_' if !current.skip => text.push('-'),
                    b'\n' | b'\r' if !current.skip => {
                        flush_text!();
                        sink.line();
                    }
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1, // line ends in RTF source are not text
            _ => {
                if skip_fallback > 0 {
                    skip_fallback -= 1;
                } else if !current.skip {
                    if !pending.is_empty() {
                        flush_text!();
                    }
                    // a run of plain bytes up to the next special byte
                    let end = bytes[i..]
                        .iter()
                        .position(|c| matches!(c, b'{' | b'}' | b'\\' | b'\r' | b'\n'))
                        .map_or(bytes.len(), |p| i + p);
                    let take_end = if skip_fallback > 0 { i + 1 } else { end };
                    text.push_str(&codepage.decode_without_bom_handling(&bytes[i..take_end]).0);
                    i = take_end;
                    continue;
                }
                i += 1;
            }
        }
    }
    flush_text!();
    Ok(())
}

/// Code pages that are not `windows-N` labels.
fn cp_label(cp: i64) -> Option<&'static encoding_rs::Encoding> {
    let label: &[u8] = match cp {
        932 => b"shift_jis",
        936 => b"gbk",
        949 => b"euc-kr",
        950 => b"big5",
        10000 => b"macintosh",
        65001 => b"utf-8",
        _ => return None,
    };
    encoding_rs::Encoding::for_label(label)
}
