//! The strings one listing met (ids, path keys), kept as 128-bit digests: what a full sync
//! needs to tell, at its end, which stored entries the source no longer has.
//!
//! Invariants:
//! - **Memory.** 16 bytes per string, whatever its length, in one sorted vector: a
//!   1,000,000-entry listing keeps 16 MB here, where a `HashSet<String>` of its path keys took
//!   about 100 MB. It matters more in a plugin than in the host: linear memory never shrinks, so
//!   the plugin's peak is what the instance keeps for the rest of the job.
//! - **No false answers in practice.** Each digest is two SipHash-1-3 values under keys drawn at
//!   random for this set (`RandomState`), so neither a source's names nor a second run can aim at
//!   a collision; two of 10^6 strings share a digest with probability about 2^-89.
//! - Inserting is a push; the first lookup after inserts sorts and de-duplicates once.

use std::hash::{BuildHasher, RandomState};

/// A set of strings met during one run.
pub struct Seen {
    keys: (RandomState, RandomState),
    digests: Vec<u128>,
    /// Something was inserted since `digests` was last sorted and de-duplicated.
    unsorted: bool,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            keys: (RandomState::new(), RandomState::new()),
            digests: Vec::new(),
            unsorted: false,
        }
    }
}

impl Seen {
    fn digest(&self, s: &str) -> u128 {
        (u128::from(self.keys.0.hash_one(s)) << 64) | u128::from(self.keys.1.hash_one(s))
    }

    /// Records `s`.
    pub fn insert(&mut self, s: &str) {
        let d = self.digest(s);
        self.digests.push(d);
        self.unsorted = true;
    }

    /// Whether `s` was recorded (sorts what was recorded since the last lookup).
    pub fn contains(&mut self, s: &str) -> bool {
        if self.unsorted {
            self.digests.sort_unstable();
            self.digests.dedup();
            self.digests.shrink_to_fit();
            self.unsorted = false;
        }
        let d = self.digest(s);
        self.digests.binary_search(&d).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn answers_what_was_inserted_before_and_after_a_lookup() {
        let mut seen = Seen::default();
        for i in 0..10_000 {
            seen.insert(&format!("p:/archive/f{:04}/scan-{i:07}.pdf", i / 1000));
        }
        assert!(seen.contains("p:/archive/f0003/scan-0003999.pdf"));
        assert!(!seen.contains("p:/archive/f0003/scan-0004000.pdf"));
        assert!(!seen.contains(""));
        // Inserts after a lookup (and repeats) are found too.
        seen.insert("id:late");
        seen.insert("id:late");
        assert!(seen.contains("id:late"));
        assert!(seen.contains("p:/archive/f0000/scan-0000000.pdf"));
        assert_eq!(seen.digests.len(), 10_001);
    }
}
