//! PowerPoint 97-2003 (`.ppt`): the text atoms of the `PowerPoint Document` stream.
//!
//! The stream is a tree of records (8-byte header: version/instance, type, length;
//! version `0xF` marks a container). The records are walked in stream order, descending
//! into containers, and every `TextCharsAtom` (UTF-16LE) and `TextBytesAtom` (8-bit:
//! the low bytes of UTF-16 code units, i.e. Latin-1) becomes a paragraph: slide text,
//! outline text, shape text and notes. Master slides, handouts and the master
//! outline list are skipped (their "Click to edit Master title style" prompts are not
//! content). A text that was already output is not repeated: PowerPoint keeps
//! placeholder text both in the outline list and in the slide's drawing, and footers
//! repeat on every slide. Best effort by design: the persist directory is not
//! followed, so text superseded by a fast save can appear.
//!
//! A record that runs past the end of the stream ends the walk; with no text read by
//! then the file fails as damaged. Encrypted presentations fail with a clear message.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::ole::{Ole, u16_at, u32_at, utf16le};
use crate::text::Sink;

const TEXT_CHARS_ATOM: u16 = 0x0FA0;
const TEXT_BYTES_ATOM: u16 = 0x0FA8;
/// Containers whose text is not content: MainMaster, Handout.
const SKIPPED: &[u16] = &[0x03F8, 0x0FC9];
/// SlideListWithText; its instance 1 lists the master slides.
const SLIDE_LIST_WITH_TEXT: u16 = 0x0FF0;

fn fail(msg: impl std::fmt::Display) -> ExtractError {
    ExtractError::failed(Format::Ppt, msg)
}

/// Extract a `.ppt` body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let mut ole = Ole::open(bytes, Format::Ppt)?;
    if ole.is_stream("/EncryptedSummary") {
        return Err(fail("encrypted presentation (password protected)"));
    }
    let doc = ole.read("/PowerPoint Document", sink.budget())?;
    let mut pos = 0usize;
    let mut found = false;
    let mut seen = HashSet::new();
    while let (Some(head), Some(kind), Some(len)) = (
        u16_at(&doc, pos),
        u16_at(&doc, pos + 2),
        u32_at(&doc, pos + 4),
    ) {
        if !sink.proceed()? {
            return Ok(());
        }
        let body = pos + 8;
        let end = body.saturating_add(len as usize);
        let container = head & 0xF == 0xF;
        let master_list = kind == SLIDE_LIST_WITH_TEXT && head >> 4 == 1;
        if container && !SKIPPED.contains(&kind) && !master_list {
            pos = body; // descend
            continue;
        }
        let Some(data) = doc.get(body..end) else {
            if found {
                break;
            }
            return Err(fail(format!(
                "record at byte {pos} runs past the end of the PowerPoint Document stream"
            )));
        };
        let text = match kind {
            TEXT_CHARS_ATOM => Some(utf16le(data)),
            TEXT_BYTES_ATOM => Some(data.iter().map(|b| char::from(*b)).collect()),
            _ => None,
        };
        if let Some(text) = text {
            found = true;
            let mut hash = DefaultHasher::new();
            text.trim().hash(&mut hash);
            if seen.insert(hash.finish()) {
                sink.para();
                sink.push(&text);
            }
        }
        pos = end;
    }
    Ok(())
}
