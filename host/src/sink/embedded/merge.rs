//! Which segments of an embedded index are merged: tiers by bytes on disk, not by documents.
//!
//! Invariants:
//! - a merge never takes more than [`MAX_MERGED_BYTES`] of segments, so what a merge reads (and
//!   maps into memory) is bounded whatever the index size, and a segment that large is never
//!   rewritten again;
//! - segments merge with others of about their size (a tier spans a factor of 2^0.75), at least
//!   [`MIN_SEGMENTS`] at a time, so each byte is rewritten about log₈(index / flush) times;
//! - a segment with more than half its documents deleted is merged even alone, so deleted
//!   documents do not keep their space for ever.
//!
//! Why: tantivy's default (`LogMergePolicy`) tiers segments by document count and puts every
//! segment under 10,000 documents in one tier. With large documents (a sync of 8 MB pages) the
//! whole index is one tier, so every merge rewrote all of it again: the Dropbox bench read a
//! growing index over and over, mapping gigabytes into the process.

use std::path::PathBuf;

use tantivy::index::{SegmentId, SegmentMeta};
use tantivy::merge_policy::{MergeCandidate, MergePolicy};

/// Most bytes of segments one merge takes.
pub(super) const MAX_MERGED_BYTES: u64 = 256 * 1024 * 1024;
/// Fewest segments merged at once (as tantivy's default).
const MIN_SEGMENTS: usize = 8;
/// Segments below this size share the lowest tier.
const MIN_TIER_BYTES: u64 = 1024 * 1024;
/// Width of a tier, in log₂ of bytes (as tantivy's default).
const TIER_LOG: f64 = 0.75;

/// The merge policy of one index directory.
#[derive(Debug)]
pub(super) struct BySize {
    pub(super) dir: PathBuf,
}

impl MergePolicy for BySize {
    fn compute_merge_candidates(&self, segments: &[SegmentMeta]) -> Vec<MergeCandidate> {
        let sized: Vec<Segment> = segments
            .iter()
            .map(|meta| Segment {
                id: meta.id(),
                // Files a segment lists but that are missing (none yet deleted) count nothing.
                bytes: meta
                    .list_files()
                    .iter()
                    .filter_map(|file| std::fs::metadata(self.dir.join(file)).ok())
                    .map(|m| m.len())
                    .sum(),
                mostly_deleted: meta.num_deleted_docs() > meta.max_doc() / 2,
            })
            .collect();
        candidates(&sized).into_iter().map(MergeCandidate).collect()
    }
}

/// A segment as the policy sees it.
#[derive(Clone, Copy, Debug)]
struct Segment {
    id: SegmentId,
    bytes: u64,
    mostly_deleted: bool,
}

/// The merges to run among `segments`.
fn candidates(segments: &[Segment]) -> Vec<Vec<SegmentId>> {
    let mut sorted: Vec<Segment> = segments
        .iter()
        .copied()
        .filter(|s| s.bytes < MAX_MERGED_BYTES / 2 || s.mostly_deleted)
        .collect();
    // Largest first: a tier starts at its largest segment.
    sorted.sort_by_key(|s| std::cmp::Reverse(s.bytes));
    let mut tiers: Vec<Vec<Segment>> = Vec::new();
    let mut top = f64::MAX;
    for segment in sorted {
        let log = (segment.bytes.max(MIN_TIER_BYTES) as f64).log2();
        match tiers.last_mut() {
            Some(tier) if log >= top - TIER_LOG => tier.push(segment),
            _ => {
                top = log;
                tiers.push(vec![segment]);
            }
        }
    }
    let mut out = Vec::new();
    for tier in tiers {
        // Smallest first, as many as fit in one merge.
        let mut merge = Vec::new();
        let mut bytes = 0u64;
        for segment in tier.iter().rev() {
            if bytes + segment.bytes > MAX_MERGED_BYTES && !merge.is_empty() {
                break;
            }
            bytes += segment.bytes;
            merge.push(*segment);
        }
        if merge.len() >= MIN_SEGMENTS || merge.iter().any(|s| s.mostly_deleted) {
            out.push(merge.iter().map(|s| s.id).collect());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn segments(sizes: &[u64]) -> Vec<Segment> {
        sizes
            .iter()
            .map(|&bytes| Segment {
                id: SegmentId::generate_random(),
                bytes,
                mostly_deleted: false,
            })
            .collect()
    }

    fn sizes_of(all: &[Segment], merge: &[SegmentId]) -> Vec<u64> {
        let mut out: Vec<u64> = merge
            .iter()
            .filter_map(|id| all.iter().find(|s| s.id == *id).map(|s| s.bytes))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn small_segments_merge_without_the_large_ones() {
        // One large segment and eight small ones of a few large documents each: tantivy's
        // default puts all nine in one tier (under 10,000 documents) and rewrites the large one.
        let mut all = segments(&[120 * MB]);
        all.extend(segments(&[10 * MB; 8]));
        let merges = candidates(&all);
        assert_eq!(merges.len(), 1);
        assert_eq!(sizes_of(&all, &merges[0]), vec![10 * MB; 8]);
    }

    #[test]
    fn a_merge_stays_under_its_byte_bound_and_large_segments_stay_put() {
        // Nine of 60 MB: a tier, but only four fit in one merge, too few to merge.
        assert!(candidates(&segments(&[60 * MB; 9])).is_empty());
        // Twelve of 20 MB: one merge of eight (160 MB ≤ 256 MB) would do; it takes what fits.
        let all = segments(&[20 * MB; 12]);
        let merges = candidates(&all);
        assert_eq!(merges.len(), 1);
        let total: u64 = sizes_of(&all, &merges[0]).iter().sum();
        assert!(merges[0].len() >= MIN_SEGMENTS && total <= MAX_MERGED_BYTES);
        // Segments of half the bound or more are never merged again.
        assert!(candidates(&segments(&[130 * MB; 10])).is_empty());
    }

    #[test]
    fn tiers_are_about_one_size_and_few_segments_wait() {
        // 1 MB and 8 MB segments are different tiers: neither has eight.
        let mut all = segments(&[MB; 5]);
        all.extend(segments(&[8 * MB; 5]));
        assert!(candidates(&all).is_empty());
        // Tiny segments share the lowest tier.
        let all = segments(&[1000, 20_000, 300_000, 5, 700_000, 1, 2, 3]);
        assert_eq!(candidates(&all).len(), 1);
    }

    #[test]
    fn a_mostly_deleted_segment_is_rewritten_alone() {
        let mut all = segments(&[200 * MB]);
        all[0].mostly_deleted = true;
        let merges = candidates(&all);
        assert_eq!(merges, vec![vec![all[0].id]]);
    }
}
