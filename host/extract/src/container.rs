//! Zip containers (OOXML, ODF) opened under the zip-bomb guards.
//!
//! Every read is bounded: the archive may list at most `max_archive_entries` entries,
//! and all entries read through one [`Container`] together may inflate to at most
//! `max_decompressed_bytes`; an entry whose declared size is already past the allowance
//! is refused before inflating. Deflate is the only compression method compiled in;
//! encrypted entries and other methods fail with a clear message.
//!
//! An XML part is inflated as it is walked ([`Container::walk`]), through one buffer of
//! [`PART_BUFFER_BYTES`]: a document's memory is its input and its output, not its largest
//! part (up to the whole inflation limit, 64 MiB by default, before), and a walk that fills
//! the output stops inflating there.

use std::io::{BufReader, Cursor, Read};

use zip::ZipArchive;
use zip::read::ZipFile;

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::formats::xml::{Rules, walk};
use crate::limits::{Budget, human_bytes};
use crate::text::Sink;

/// Inflated bytes of a part held at once while it is walked.
const PART_BUFFER_BYTES: usize = 64 * 1024;

/// An opened zip body.
pub(crate) struct Container<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    format: Format,
    /// Entries whose stored name is not UTF-8, by the name it reads as (CP437): the zip crate
    /// finds those by decoding every name in turn, on every look-up that misses its hash, and
    /// a presentation looks up one relationships part per slide that mostly do not exist (40 %
    /// of a PPTX's extraction time went to that).
    other_names: std::collections::HashMap<String, usize>,
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
        let mut other_names = std::collections::HashMap::new();
        for (index, raw) in archive.file_names_raw().enumerate() {
            if std::str::from_utf8(raw).is_err()
                && let Some(Ok(name)) = archive.name_for_index(index)
            {
                other_names.entry(name.into_owned()).or_insert(index);
            }
        }
        Ok(Container {
            archive,
            format,
            other_names,
        })
    }

    /// Whether an entry of that name exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.index_of(name).is_some()
    }

    /// The index of entry `name`, as the zip crate's `index_for_name` finds it.
    fn index_of(&self, name: &str) -> Option<usize> {
        self.archive
            .index_for_name_raw(name.as_bytes())
            .or_else(|| self.other_names.get(name).copied())
    }

    /// Names of all entries (lossy for non-UTF-8 names).
    pub(crate) fn names(&self) -> Vec<String> {
        self.archive
            .file_names_raw()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// Opens entry `index` (named `name`), refused when it declares more than the `allowance`
    /// left of the inflation `limit`.
    fn entry(
        &mut self,
        index: usize,
        name: &str,
        allowance: u64,
        limit: u64,
    ) -> Result<ZipFile<'_, Cursor<&'a [u8]>>> {
        let entry = self
            .archive
            .by_index(index)
            .map_err(|e| ExtractError::failed(self.format, format!("zip entry {name}: {e}")))?;
        if entry.size() > allowance {
            return Err(past_limit(self.format, name, limit));
        }
        Ok(entry)
    }

    /// Reads entry `name` whole (`None` when there is none), counting its inflated size
    /// against the budget. For the small parts read as a whole (relationships, the slide list).
    pub(crate) fn read_opt(&mut self, name: &str, budget: &mut Budget) -> Result<Option<Vec<u8>>> {
        let Some(index) = self.index_of(name) else {
            return Ok(None);
        };
        let format = self.format;
        let allowance = budget.inflate_left();
        let limit = budget.inflate_limit();
        let bomb = || past_limit(format, name, limit);
        let mut entry = self.entry(index, name, allowance, limit)?;
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

    /// Walks entry `name` as XML under `rules` into `sink`, inflating it as the walk reads;
    /// `false` when there is no such entry. What it inflates counts against the budget as a
    /// [`Container::read_opt`] would, and past the allowance the walk fails as a read does.
    pub(crate) fn walk(&mut self, name: &str, rules: &Rules, sink: &mut Sink) -> Result<bool> {
        let format = self.format;
        let walked = self.read_with(name, sink, |part, sink| {
            walk(part, format, name, rules, sink)
        })?;
        Ok(walked.is_some())
    }

    /// Hands entry `name` to `read` as a buffered reader that inflates as it is read (`None`
    /// when there is no such entry). What it inflates counts against the sink's budget; past
    /// the allowance, or when the entry is broken, the read fails with that reason whatever
    /// error `read` made of it.
    pub(crate) fn read_with<T>(
        &mut self,
        name: &str,
        sink: &mut Sink,
        read: impl FnOnce(&mut dyn std::io::BufRead, &mut Sink) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(index) = self.index_of(name) else {
            return Ok(None);
        };
        let format = self.format;
        let allowance = sink.budget().inflate_left();
        let limit = sink.budget().inflate_limit();
        let bomb = || past_limit(format, name, limit);
        let entry = self.entry(index, name, allowance, limit)?;
        let mut metered =
            BufReader::with_capacity(PART_BUFFER_BYTES, Metered::new(entry, allowance));
        let done = read(&mut metered, sink);
        let inflated = metered.into_inner().verdict(format, name, limit)?;
        if !sink.budget().take_inflated(inflated) {
            return Err(bomb());
        }
        done.map(Some)
    }

    /// Inflate every entry once (discarding the output) to prove that the whole
    /// container stays within the inflation budget. Used before handing the body to a
    /// third-party reader (calamine) that inflates on its own; `inspect` reads as much of each
    /// entry as it needs first, to refuse what that reader would make too much of.
    pub(crate) fn check_all(
        &mut self,
        budget: &mut Budget,
        mut inspect: impl FnMut(&str, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
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
            let bomb = || past_limit(format, &name, limit);
            if entry.size() > allowance {
                return Err(bomb());
            }
            let mut metered = Metered::new(&mut entry, allowance);
            let inspected = inspect(&name, &mut metered);
            let drained = std::io::copy(&mut metered, &mut std::io::sink());
            let inflated = metered.verdict(format, &name, limit)?;
            inspected?;
            drained.map_err(|e| ExtractError::failed(format, format!("zip entry {name}: {e}")))?;
            if !budget.take_inflated(inflated) {
                return Err(bomb());
            }
        }
        Ok(())
    }
}

/// The failure of entry `name` inflating (or declaring it would) past `limit`.
fn past_limit(format: Format, name: &str, limit: u64) -> ExtractError {
    ExtractError::failed(
        format,
        format!(
            "zip entry {name} inflates past the {} limit",
            human_bytes(limit)
        ),
    )
}

/// A zip entry read under the inflation allowance left when it was opened.
struct Metered<R> {
    entry: R,
    allowance: u64,
    inflated: u64,
    /// Why reading stopped early, if it did.
    stop: Option<Stop>,
}

impl<R> Metered<R> {
    fn new(entry: R, allowance: u64) -> Self {
        Metered {
            entry,
            allowance,
            inflated: 0,
            stop: None,
        }
    }

    /// What was inflated, or why reading stopped early: the entry's own verdict comes first,
    /// as whoever read it only saw an I/O error.
    fn verdict(self, format: Format, name: &str, limit: u64) -> Result<u64> {
        match self.stop {
            Some(Stop::Limit) => Err(past_limit(format, name, limit)),
            Some(Stop::Zip(e)) => Err(ExtractError::failed(
                format,
                format!("zip entry {name}: {e}"),
            )),
            None => Ok(self.inflated),
        }
    }
}

enum Stop {
    /// Inflated past the allowance.
    Limit,
    /// The entry is broken (bad deflate data, wrong checksum, …).
    Zip(std::io::Error),
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.is_some() {
            return Err(std::io::Error::other("zip entry already failed"));
        }
        match self.entry.read(buf) {
            Ok(n) => {
                self.inflated = self.inflated.saturating_add(n as u64);
                if self.inflated > self.allowance {
                    self.stop = Some(Stop::Limit);
                    return Err(std::io::Error::other("inflation limit reached"));
                }
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let shown = std::io::Error::new(e.kind(), e.to_string());
                self.stop = Some(Stop::Zip(e));
                Err(shown)
            }
        }
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
