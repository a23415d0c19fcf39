//! Zip containers (OOXML, ODF) opened under the zip-bomb guards.
//!
//! Every read is bounded: the archive may list at most `max_archive_entries` entries,
//! and all entries read through one [`Container`] together may inflate to at most
//! `max_decompressed_bytes`; an entry whose declared size is already past the allowance
//! is refused before inflating. Deflate is the only compression method compiled in;
//! encrypted entries and other methods fail with a clear message.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::limits::{Budget, human_bytes};

/// An opened zip body.
pub(crate) struct Container<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    format: Format,
}

impl<'a> Container<'a> {
    /// Open `bytes` as a zip archive for `format`, enforcing the entry-count limit.
    pub(crate) fn open(bytes: &'a [u8], format: Format, budget: &Budget) -> Result<Self> {
        if !(bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")) {
            return Err(ExtractError::failed(
                format,
                "not a zip container (no PK signature)",
            ));
        }
        let archive = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| ExtractError::failed(format, format!("unreadable zip container: {e}")))?;
        if archive.len() > budget.max_entries() {
            return Err(ExtractError::failed(
                format,
                format!(
                    "zip container lists {} entries, more than the limit of {}",
                    archive.len(),
                    budget.max_entries()
                ),
            ));
        }
        Ok(Container { archive, format })
    }

    /// Whether an entry of that name exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.archive.index_for_name(name).is_some()
    }

    /// Names of all entries (lossy for non-UTF-8 names).
    pub(crate) fn names(&self) -> Vec<String> {
        self.archive
            .file_names_raw()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// Read an entry fully, counting its inflated size against the budget.
    pub(crate) fn read(&mut self, name: &str, budget: &mut Budget) -> Result<Vec<u8>> {
        match self.read_opt(name, budget)? {
            Some(bytes) => Ok(bytes),
            None => Err(ExtractError::failed(
                self.format,
                format!("zip entry {name} is missing"),
            )),
        }
    }

    /// Like [`Container::read`], but `None` when the entry does not exist.
    pub(crate) fn read_opt(&mut self, name: &str, budget: &mut Budget) -> Result<Option<Vec<u8>>> {
        let Some(index) = self.archive.index_for_name(name) else {
            return Ok(None);
        };
        let format = self.format;
        let allowance = budget.inflate_left();
        let limit = budget.inflate_limit();
        let bomb = || {
            ExtractError::failed(
                format,
                format!(
                    "zip entry {name} inflates past the {} limit",
                    human_bytes(limit)
                ),
            )
        };
        let mut entry = self
            .archive
            .by_index(index)
            .map_err(|e| ExtractError::failed(format, format!("zip entry {name}: {e}")))?;
        if entry.size() > allowance {
            return Err(bomb());
        }
        // Pre-allocate what the entry declares (bounded), then read at most one byte
        // past the allowance so a lying header is caught too.
        let capacity = entry.size().min(allowance).min(8 * 1024 * 1024);
        let mut buf = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        (&mut entry)
            .take(allowance.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| ExtractError::failed(format, format!("zip entry {name}: {e}")))?;
        if !budget.take_inflated(buf.len() as u64) {
            return Err(bomb());
        }
        Ok(Some(buf))
    }

    /// Inflate every entry once (discarding the output) to prove that the whole
    /// container stays within the inflation budget. Used before handing the body to a
    /// third-party reader (calamine) that inflates on its own.
    pub(crate) fn check_all(&mut self, budget: &mut Budget) -> Result<()> {
        let format = self.format;
        let limit = budget.inflate_limit();
        for index in 0..self.archive.len() {
            budget.check_time()?;
            let mut entry = self
                .archive
                .by_index(index)
                .map_err(|e| ExtractError::failed(format, format!("zip entry #{index}: {e}")))?;
            let name = entry
                .name()
                .map(|n| n.into_owned())
                .unwrap_or_else(|_| format!("#{index}"));
            let allowance = budget.inflate_left();
            let bomb = || {
                ExtractError::failed(
                    format,
                    format!(
                        "zip entry {name} inflates past the {} limit",
                        human_bytes(limit)
                    ),
                )
            };
            if entry.size() > allowance {
                return Err(bomb());
            }
            let n = std::io::copy(
                &mut (&mut entry).take(allowance.saturating_add(1)),
                &mut std::io::sink(),
            )
            .map_err(|e| ExtractError::failed(format, format!("zip entry {name}: {e}")))?;
            if !budget.take_inflated(n) {
                return Err(bomb());
            }
        }
        Ok(())
    }
}

/// Relationship targets of an OPC `.rels` part: `(id, type, resolved target)`.
pub(crate) fn relationships(rels_xml: &[u8], source_part: &str) -> Vec<(String, String, String)> {
    use quick_xml::events::Event;
    let mut out = Vec::new();
    let mut reader = quick_xml::Reader::from_reader(rels_xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "Relationship" => {
                let (mut id, mut ty, mut target, mut external) =
                    (String::new(), String::new(), String::new(), false);
                for attr in e.attributes().flatten() {
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned())
                        .unwrap_or_default();
                    match attr.key.local_name().as_ref() {
                        "Id" => id = value,
                        "Type" => ty = value,
                        "Target" => target = value,
                        "TargetMode" => external = value.eq_ignore_ascii_case("External"),
                        _ => {}
                    }
                }
                if !external && !target.is_empty() {
                    out.push((id, ty, resolve_part(source_part, &target)));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    out
}

/// Resolve a relationship target against the part that holds the relationship.
/// `source_part` is e.g. `ppt/presentation.xml` (or `""` for the package root).
pub(crate) fn resolve_part(source_part: &str, target: &str) -> String {
    let target = target.split('#').next().unwrap_or(target);
    let mut segments: Vec<&str> = if let Some(abs) = target.strip_prefix('/') {
        return normalise(abs.split('/').collect());
    } else {
        match source_part.rsplit_once('/') {
            Some((dir, _)) => dir.split('/').collect(),
            None => Vec::new(),
        }
    };
    segments.extend(target.split('/'));
    normalise(segments)
}

fn normalise(segments: Vec<&str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in segments {
        match s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// The `.rels` part that belongs to `part` (`word/document.xml` → `word/_rels/document.xml.rels`).
pub(crate) fn rels_part_for(part: &str) -> String {
    match part.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/_rels/{file}.rels"),
        None => format!("_rels/{part}.rels"),
    }
}
