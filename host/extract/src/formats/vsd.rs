//! Visio 2003-2010 drawings (`.vsd`), best effort: printable UTF-16LE runs of the
//! `VisioDocument` stream.
//!
//! The binary Visio format keeps most of its records in its own compressed streams;
//! they are not decoded here. What is stored uncompressed (shape text in many files,
//! page and master names) is found by scanning the stream, at both byte alignments,
//! for runs of at least four UTF-16 code units from the alphabetic scripts and common
//! punctuation with at least three letters among them. Each run becomes a line, in
//! stream order. Text in other scripts (CJK, …) and in compressed chunks is missed;
//! a drawing with no such run yields empty text, not an error.

use crate::detect::Format;
use crate::error::Result;
use crate::ole::Ole;
use crate::text::Sink;

const MIN_UNITS: usize = 4;
const MIN_LETTERS: usize = 3;

/// Extract a `.vsd` body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let mut ole = Ole::open(bytes, Format::Vsd)?;
    let data = ole.read("/VisioDocument", sink.budget())?;
    let mut runs = runs_at(&data, 0);
    runs.extend(runs_at(&data, 1));
    runs.sort_unstable();
    for (start, end) in runs {
        if !sink.proceed()? {
            break;
        }
        let text: String = char::decode_utf16(
            data[start..end]
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]])),
        )
        .map(|c| c.unwrap_or('\u{FFFD}'))
        .collect();
        sink.line();
        sink.push(&text);
    }
    Ok(())
}

/// Byte ranges of text runs among the code units starting at `alignment`.
fn runs_at(data: &[u8], alignment: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut units, mut letters) = (alignment, 0usize, 0usize);
    let mut at = alignment;
    for pair in data.get(alignment..).unwrap_or_default().chunks_exact(2) {
        let u = u16::from_le_bytes([pair[0], pair[1]]);
        if printable(u) {
            if units == 0 {
                start = at;
            }
            units += 1;
            letters += usize::from(char::from_u32(u32::from(u)).is_some_and(char::is_alphabetic));
        } else {
            if units >= MIN_UNITS && letters >= MIN_LETTERS {
                out.push((start, at));
            }
            (units, letters) = (0, 0);
        }
        at += 2;
    }
    if units >= MIN_UNITS && letters >= MIN_LETTERS {
        out.push((start, at));
    }
    out
}

/// Code units of text as Visio stores it: Latin, Greek, Cyrillic, common punctuation,
/// tabs and line breaks. Excludes the ranges a misaligned read of ASCII lands in.
fn printable(u: u16) -> bool {
    matches!(u, 0x09 | 0x0A | 0x0D | 0x20..=0x7E | 0xA0..=0x24F | 0x370..=0x52F | 0x2010..=0x2044 | 0x20AC | 0x2122)
}
