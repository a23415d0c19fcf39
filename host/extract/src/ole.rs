//! OLE2 compound files (legacy Office: `.doc`, `.ppt`, `.msg`, `.vsd`) opened with `cfb`,
//! under the same guards as zip containers.
//!
//! Invariants: a stream is read up to the smaller of its declared size and the size of
//! the body (a compound file stores streams uncompressed, so no honest stream is longer
//! than the file), and all streams read through one [`Ole`] together count against
//! `max_decompressed_bytes` — streams may share sectors, so reading the same bytes
//! under many names stays bounded too. `.xls` goes through calamine instead (see
//! `formats::sheets`).

use std::io::{Cursor, Read};

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::limits::{Budget, human_bytes};

/// The signature every compound file starts with.
pub(crate) const MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// An opened compound file.
pub(crate) struct Ole<'a> {
    file: cfb::CompoundFile<Cursor<&'a [u8]>>,
    format: Format,
    size: u64,
}

impl<'a> Ole<'a> {
    /// Open `bytes` as a compound file holding `format`.
    pub(crate) fn open(bytes: &'a [u8], format: Format) -> Result<Self> {
        if !bytes.starts_with(&MAGIC) {
            return Err(ExtractError::failed(
                format,
                "not an OLE2 compound file (no D0 CF 11 E0 signature)",
            ));
        }
        let file = cfb::CompoundFile::open(Cursor::new(bytes))
            .map_err(|e| ExtractError::failed(format, format!("unreadable OLE2 container: {e}")))?;
        Ok(Ole {
            file,
            format,
            size: bytes.len() as u64,
        })
    }

    /// Whether a stream exists at `path` (`/WordDocument`, `/__attach…/__substg…`).
    pub(crate) fn is_stream(&self, path: &str) -> bool {
        self.file.is_stream(path)
    }

    /// Paths of the storages directly under the root whose name starts with `prefix`,
    /// in name order.
    pub(crate) fn storages(&self, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .file
            .read_root_storage()
            .filter(|e| e.is_storage() && e.name().starts_with(prefix))
            .map(|e| format!("/{}", e.name()))
            .collect();
        out.sort();
        out
    }

    /// Read a stream fully, counting it against the budget.
    pub(crate) fn read(&mut self, path: &str, budget: &mut Budget) -> Result<Vec<u8>> {
        self.read_opt(path, budget)?.ok_or_else(|| {
            ExtractError::failed(
                self.format,
                format!("no {} stream", path.trim_start_matches('/')),
            )
        })
    }

    /// Like [`Ole::read`], but `None` when there is no such stream.
    pub(crate) fn read_opt(&mut self, path: &str, budget: &mut Budget) -> Result<Option<Vec<u8>>> {
        if !self.file.is_stream(path) {
            return Ok(None);
        }
        let format = self.format;
        let fail = |e: std::io::Error| ExtractError::failed(format, format!("{path}: {e}"));
        let declared = self.file.entry(path).map_err(fail)?.len();
        let want = declared.min(self.size);
        if want > budget.inflate_left() {
            return Err(ExtractError::failed(
                format,
                format!(
                    "streams read from the container pass the {} limit (at {path})",
                    human_bytes(budget.inflate_limit())
                ),
            ));
        }
        let mut stream = self.file.open_stream(path).map_err(fail)?;
        let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        stream
            .by_ref()
            .take(want)
            .read_to_end(&mut buf)
            .map_err(fail)?;
        budget.take_inflated(buf.len() as u64);
        Ok(Some(buf))
    }
}

/// Which legacy format a whole compound file holds, from the streams at its root;
/// `None` when `bytes` cannot be opened (e.g. only the head of a body) or holds none of
/// them. Contains a `cfb` panic: detection runs before the extraction's own guard.
pub(crate) fn kind(bytes: &[u8]) -> Option<Format> {
    std::panic::catch_unwind(|| {
        let file = cfb::CompoundFile::open(Cursor::new(bytes)).ok()?;
        let has = |name: &str| file.is_stream(name);
        if has("/WordDocument") {
            Some(Format::Doc)
        } else if has("/PowerPoint Document") {
            Some(Format::Ppt)
        } else if has("/Workbook") || has("/Book") {
            Some(Format::Xls)
        } else if has("/VisioDocument") {
            Some(Format::Vsd)
        } else if has("/__properties_version1.0")
            || file
                .read_root_storage()
                .any(|e| e.name().starts_with("__substg1.0_"))
        {
            Some(Format::Msg)
        } else {
            None
        }
    })
    .ok()
    .flatten()
}

/// Little-endian `u16` at `at`, `None` past the end.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Little-endian `u32` at `at`, `None` past the end.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// UTF-16LE bytes as text (an odd last byte is ignored, bad surrogates become U+FFFD).
pub(crate) fn utf16le(bytes: &[u8]) -> String {
    char::decode_utf16(
        bytes
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]])),
    )
    .map(|c| c.unwrap_or('\u{FFFD}'))
    .collect()
}
