//! Rebuilding an index that an earlier tributary wrote, in today's layout, from its stored
//! documents.
//!
//! Invariants:
//! - nothing is lost: every document is stored whole (fields, body, version, access list), the
//!   rebuild reads every live one back into a fresh index beside the old one and commits it
//!   before either directory is renamed;
//! - the swap is two renames (old → `%~legacy`, fresh → the index's name) and only then is the
//!   old copy removed, so a crash leaves either the old index in place or the committed fresh
//!   one aside, and [`recover`] finishes an interrupted swap before the index is next opened;
//! - the rebuild holds the old index's writer lock, so no other writer (of this process or
//!   another) lands a document in the files being replaced; readers of another process keep
//!   their snapshot of the old files.
//!
//! Two things make an index outdated ([`Outdated`]):
//! - a **legacy schema** (before fields were searchable by name). It still answers versions and
//!   gets, so it is rebuilt before its first write and a read leaves it alone;
//! - an **FST term dictionary** (before the term dictionaries became SSTables). This build
//!   cannot read one at all — no term lookup, so no search, get or delete — so it is rebuilt
//!   when first opened, by a read as well: the documents and what they answer stay the same.
//!
//! Why SSTables: building the FST of each field's terms (node minimisation through a hashed
//! registry) was a quarter to a third of a listing sync's CPU and an eighth of the Dropbox
//! mix's (`perf`, `sync_memory` bench); an SSTable is written as sorted delta-encoded blocks.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tantivy::directory::FileSlice;
use tantivy::index::SegmentComponent;
use tantivy::{HasLen, Index, TantivyDocument};

use super::{OpenIndex, aside, holds_index};
use crate::sink::writers::{self, Writers};

/// Why an index is rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outdated {
    /// Made before fields were searchable by name.
    LegacySchema,
    /// Its term dictionaries are FSTs, which this build does not read.
    FstDictionary,
}

impl Outdated {
    fn what(self) -> &'static str {
        match self {
            Outdated::LegacySchema => "searchable fields",
            Outdated::FstDictionary => "SSTable term dictionaries",
        }
    }
}

/// tantivy's mark, in the last four bytes of a field's term dictionary, of how it is built.
const FST_DICTIONARY: u32 = 1;
const SSTABLE_DICTIONARY: u32 = 2;

/// The opened index as it is, or rebuilt and reopened if it is outdated: an FST dictionary
/// always, a legacy schema only before a write (`writing`).
pub(super) fn upgrade(
    old: Arc<OpenIndex>,
    writers: &Arc<Writers>,
    writing: bool,
) -> anyhow::Result<Arc<OpenIndex>> {
    let outdated = if fst_dictionaries(&old.index)? {
        Outdated::FstDictionary
    } else if writing && old.fields.is_legacy() {
        Outdated::LegacySchema
    } else {
        return Ok(old);
    };
    // Owned: `old` is dropped before its directory is renamed.
    let dir: &Path = &old.dir.clone();
    // Held for its lock only (it is handed no document, so its arena stays unallocated).
    let lock = old.open_writer(writers::MIN_HEAP)?;
    old.reader.reload().context("reloading the index reader")?;
    let searcher = old.reader.searcher();
    let fresh_dir = aside(dir, "upgrading");
    if fresh_dir.exists() {
        std::fs::remove_dir_all(&fresh_dir)
            .with_context(|| format!("removing {}", fresh_dir.display()))?;
    }
    let fresh = OpenIndex::open(&fresh_dir, writers.clone())?;
    let mut docs = Vec::new();
    for segment in searcher.segment_readers() {
        let store = segment.get_store_reader(16)?;
        for doc in segment.doc_ids_alive() {
            let stored: TantivyDocument = store.get(doc)?;
            docs.push(old.stored(&stored));
            if docs.len() >= 1000 {
                fresh.upsert(std::mem::take(&mut docs))?;
            }
        }
    }
    fresh.upsert(docs)?;
    fresh.commit()?;
    let count = searcher.num_docs();
    drop((fresh, lock, searcher, old));
    let legacy = aside(dir, "legacy");
    std::fs::rename(dir, &legacy).with_context(|| format!("moving {}", dir.display()))?;
    std::fs::rename(&fresh_dir, dir).with_context(|| format!("moving {}", fresh_dir.display()))?;
    std::fs::remove_dir_all(&legacy).with_context(|| format!("removing {}", legacy.display()))?;
    tracing::info!(
        index = %dir.display(),
        documents = count,
        "upgraded the index to {}",
        outdated.what()
    );
    OpenIndex::open(dir, writers.clone())
}

/// Finishes a swap that a crash interrupted. With the index's own directory gone and the old
/// copy aside, the fresh one (committed before the first rename) takes its place; with both in
/// place, the old copy is what was left to remove. An unfinished rebuild's working directory is
/// left to [`upgrade`], which clears it under the writer lock.
pub(super) fn recover(dir: &Path) -> anyhow::Result<()> {
    let legacy = aside(dir, "legacy");
    if !holds_index(&legacy) {
        return Ok(());
    }
    if !holds_index(dir) {
        let fresh = aside(dir, "upgrading");
        if !holds_index(&fresh) {
            return Err(anyhow!(
                "{} is missing while its previous copy is at {}: move that copy back to resume",
                dir.display(),
                legacy.display()
            ));
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::rename(&fresh, dir).with_context(|| format!("moving {}", fresh.display()))?;
        tracing::info!(index = %dir.display(), "finished an interrupted index upgrade");
    }
    match std::fs::remove_dir_all(&legacy) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow!(e).context(format!("removing {}", legacy.display())))
        }
        _ => Ok(()),
    }
}

/// Whether the index's segments hold FST term dictionaries (all of a segment's fields are
/// written by one build, so one field's mark answers for the segment).
fn fst_dictionaries(index: &Index) -> anyhow::Result<bool> {
    for meta in index.searchable_segment_metas()? {
        let id = meta.id().uuid_string();
        let terms = index
            .segment(meta)
            .open_read(SegmentComponent::Terms)
            .with_context(|| format!("opening the term dictionaries of segment {id}"))?;
        match dictionary_mark(&terms)
            .with_context(|| format!("reading the term dictionaries of segment {id}"))?
        {
            Some(FST_DICTIONARY) => return Ok(true),
            Some(SSTABLE_DICTIONARY) | None => {}
            Some(other) => {
                return Err(anyhow!(
                    "segment {id} has a term dictionary of unknown kind {other}"
                ));
            }
        }
    }
    Ok(false)
}

/// The kind mark of the last field's dictionary in a segment's term file, `None` if it holds
/// no field. The file (tantivy's footer already cut off) is the fields' dictionaries end to end,
/// then a table of where each starts, then that table's length as a `u32`; each dictionary ends
/// with its four-byte kind mark, so the last one's sits just before the table.
fn dictionary_mark(terms: &FileSlice) -> std::io::Result<Option<u32>> {
    let corrupt =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let u32_at = |at: usize| -> std::io::Result<u32> {
        let bytes = terms.slice(at..at + 4).read_bytes()?;
        let mut word = [0u8; 4];
        word.copy_from_slice(bytes.as_slice());
        Ok(u32::from_le_bytes(word))
    };
    let end = terms.len();
    let table_len = match end.checked_sub(4) {
        Some(at) => u32_at(at)? as usize,
        None => return Err(corrupt("shorter than its table length")),
    };
    let Some(table_start) = end.checked_sub(4 + table_len) else {
        return Err(corrupt("its table runs past its start"));
    };
    match table_start {
        0 => Ok(None),
        1..4 => Err(corrupt("a dictionary shorter than its kind mark")),
        _ => u32_at(table_start - 4).map(Some),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::sink::embedded::EmbeddedIndex;
    use crate::sink::embedded::tests::doc;
    use crate::sink::{IndexRef, SearchRequest, Sink};

    /// An index as tributary wrote it with FST term dictionaries (tantivy 0.25 without its
    /// `quickwit` feature): two segments, three documents of which one is deleted.
    const FST_INDEX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/fst-index");

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    #[test]
    fn the_mark_tells_fst_from_sstable() {
        let root = tempfile::tempdir().unwrap();
        copy_dir(Path::new(FST_INDEX), root.path());
        let old = tantivy::Index::open_in_dir(root.path().join("acme/docs")).unwrap();
        assert!(fst_dictionaries(&old).unwrap());
        let fresh = tempfile::tempdir().unwrap();
        let writers = Writers::fixed(1, writers::MIN_HEAP);
        let index = OpenIndex::open(fresh.path(), writers).unwrap();
        index
            .upsert(vec![doc("c", "a", "v1", "Words", "words")])
            .unwrap();
        index.commit().unwrap();
        assert!(!fst_dictionaries(&index.index).unwrap());
    }

    #[test]
    fn a_mangled_term_file_is_an_error_not_a_guess() {
        for (bytes, says) in [
            (&[1u8, 0][..], "shorter than its table length"),
            (&[200, 0, 0, 0][..], "runs past its start"),
            (&[9, 9, 0, 0, 0, 0][..], "shorter than its kind mark"),
        ] {
            let err = dictionary_mark(&FileSlice::from(bytes.to_vec())).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
        assert_eq!(
            dictionary_mark(&FileSlice::from(vec![0, 0, 0, 0])).unwrap(),
            None
        );
    }

    /// The fixture copied under a fresh data root, and the sink over it.
    fn fixture() -> (tempfile::TempDir, EmbeddedIndex, IndexRef) {
        let root = tempfile::tempdir().unwrap();
        copy_dir(Path::new(FST_INDEX), root.path());
        let sink = EmbeddedIndex::new(root.path());
        (root, sink, IndexRef::new("acme", "docs"))
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// What the fixture answers, whichever way it was first opened.
    async fn answers_as_before(sink: &EmbeddedIndex, ix: &IndexRef) {
        let found = sink
            .search(ix.clone(), SearchRequest::new("roadmap OR revenue", 10))
            .await
            .unwrap();
        let mut ids: Vec<&str> = found.hits.iter().map(|h| h.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["q1", "q2"]);
        let by_field = sink
            .search(ix.clone(), SearchRequest::new("type:Folder", 10))
            .await
            .unwrap();
        assert_eq!(by_field.hits.len(), 1);
        assert_eq!(by_field.hits[0].id, "q2");
        let got = sink
            .get(ix.clone(), "a".into(), vec!["q1".into(), "gone".into()])
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "the deleted document stays deleted");
        assert_eq!(
            got[0].body.as_deref(),
            Some("revenue forecast for the first quarter")
        );
        assert_eq!(got[0].version.as_deref(), Some("v-q1"));
        assert_eq!(
            got[0].fields["_allow_access_control"][0],
            "email:ann@example.com"
        );
        assert!(
            sink.versions(ix.clone(), "a".into())
                .await
                .unwrap()
                .holds_exactly([("q1", Some("v-q1")), ("q2", Some("v-q2"))])
        );
    }

    #[tokio::test]
    async fn an_fst_index_is_rebuilt_by_its_first_read_and_answers_the_same() {
        let (root, sink, ix) = fixture();
        let dir = root.path().join("acme/docs");
        answers_as_before(&sink, &ix).await;
        let index = tantivy::Index::open_in_dir(&dir).unwrap();
        assert!(!fst_dictionaries(&index).unwrap());
        // Nothing is left beside it, and a second process sees the rebuilt index as current.
        assert_eq!(entries(&root.path().join("acme")), ["docs"]);
        drop(sink);
        let again = EmbeddedIndex::new(root.path());
        answers_as_before(&again, &ix).await;
    }

    #[tokio::test]
    async fn an_fst_index_takes_writes_after_its_rebuild() {
        let (root, sink, ix) = fixture();
        let revised = doc("a", "q1", "v-q1b", "Quarterly plan v2", "revised forecast");
        sink.upsert(ix.clone(), vec![revised]).await.unwrap();
        sink.delete(ix.clone(), "a".into(), vec!["q2".into()])
            .await
            .unwrap();
        sink.commit(ix.clone()).await.unwrap();
        assert!(
            sink.versions(ix.clone(), "a".into())
                .await
                .unwrap()
                .holds_exactly([("q1", Some("v-q1b"))])
        );
        let found = sink
            .search(ix.clone(), SearchRequest::new("revised", 10))
            .await
            .unwrap();
        assert_eq!(found.total, 1);
        assert_eq!(entries(&root.path().join("acme")), ["docs"]);
    }

    #[tokio::test]
    async fn a_swap_cut_short_by_a_crash_is_finished_on_the_next_open() {
        // The rebuild committed, the old index moved aside, then the process died.
        let (root, sink, ix) = fixture();
        answers_as_before(&sink, &ix).await;
        drop(sink);
        let dir = root.path().join("acme/docs");
        let old_copy_aside = || {
            copy_dir(
                &Path::new(FST_INDEX).join("acme/docs"),
                &aside(&dir, "legacy"),
            )
        };
        copy_dir(&dir, &aside(&dir, "upgrading"));
        std::fs::remove_dir_all(&dir).unwrap();
        old_copy_aside();
        let sink = EmbeddedIndex::new(root.path());
        answers_as_before(&sink, &ix).await;
        assert_eq!(entries(&root.path().join("acme")), ["docs"]);
        // Died after the second rename: only the old copy is left to remove.
        drop(sink);
        old_copy_aside();
        let sink = EmbeddedIndex::new(root.path());
        answers_as_before(&sink, &ix).await;
        assert_eq!(entries(&root.path().join("acme")), ["docs"]);
    }

    #[tokio::test]
    async fn an_index_missing_beside_its_old_copy_is_reported_not_recreated() {
        let (root, sink, ix) = fixture();
        drop(sink);
        let dir = root.path().join("acme/docs");
        std::fs::rename(&dir, aside(&dir, "legacy")).unwrap();
        let sink = EmbeddedIndex::new(root.path());
        let err = sink.upsert(ix.clone(), Vec::new()).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("move that copy back"),
            "{err:#}"
        );
        assert!(!dir.exists(), "no empty index was made in its place");
    }
}
