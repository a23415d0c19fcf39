//! The ids of one connector's documents in one index with their versions, as a full or
//! access-control sync reads them before it starts: held compactly, since one account can
//! hold millions of documents and the set lives for the whole sync.
//!
//! Invariants:
//! - every id is kept exactly (a vanished id is deleted by name), back to back in one string,
//!   found through a table of entry numbers keyed by a hash under keys drawn at random per set
//!   (ids are source-controlled: no crafted ids can make lookups slow);
//! - a version is kept as a 64-bit SipHash-1-3 digest under its own random keys: "unchanged"
//!   is an equal digest, so a changed document is wrongly skipped only on a collision (2^-64
//!   for each changed document, and no source can aim for it without the keys); no version
//!   never equals any version;
//! - an id inserted twice keeps one entry, with the later version.
//!
//! About 4 + 8 + 8 bytes per entry besides the ids' own bytes, against about 100 for a
//! `HashMap<String, Option<String>>` with its strings.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// Version digest of an entry without a version (a digest equal to it is moved to 1).
const NO_VERSION: u64 = 0;

/// A connector's ids in one index and their versions (see the module docs).
#[derive(Debug, Default)]
pub struct Versions {
    /// Hashes ids for `table`.
    ids_hash: RandomState,
    /// Digests versions.
    versions_hash: RandomState,
    /// Every id, back to back.
    ids: String,
    /// Where each entry's id ends in `ids`.
    ends: Vec<u32>,
    /// Each entry's version digest.
    versions: Vec<u64>,
    /// Entry numbers, by id.
    table: HashTable<u32>,
}

impl Versions {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `id` at `version` (replacing the version of an id already here). Fails only past
    /// 4 GiB of ids or 4 billion entries, which no sync's memory would hold anyway.
    pub fn insert(&mut self, id: &str, version: Option<&str>) -> anyhow::Result<()> {
        let digest = self.digest(version);
        if let Some(at) = self.position(id) {
            if let Some(slot) = self.versions.get_mut(at) {
                *slot = digest;
            }
            return Ok(());
        }
        let entry = u32::try_from(self.ends.len())
            .map_err(|_| anyhow::anyhow!("more than 4 billion documents in one index"))?;
        let end = u32::try_from(self.ids.len() + id.len())
            .map_err(|_| anyhow::anyhow!("the ids of one index exceed 4 GiB"))?;
        self.ids.push_str(id);
        self.ends.push(end);
        self.versions.push(digest);
        let hash = self.ids_hash.hash_one(id);
        let Self {
            ids,
            ends,
            ids_hash,
            table,
            ..
        } = self;
        table.insert_unique(hash, entry, |&e| {
            ids_hash.hash_one(id_at(ids, ends, e as usize))
        });
        Ok(())
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether `id` is here.
    pub fn contains(&self, id: &str) -> bool {
        self.position(id).is_some()
    }

    /// The entry number of `id` (entries are numbered from 0 in insertion order).
    pub fn position(&self, id: &str) -> Option<usize> {
        let hash = self.ids_hash.hash_one(id);
        self.table
            .find(hash, |&e| self.id(e as usize) == id)
            .map(|&e| e as usize)
    }

    /// The id of entry `at` (empty past the end).
    pub fn id(&self, at: usize) -> &str {
        id_at(&self.ids, &self.ends, at)
    }

    /// Whether `id` is here at exactly `version` (never when either has none).
    pub fn is_at(&self, id: &str, version: Option<&str>) -> bool {
        let digest = self.digest(version);
        digest != NO_VERSION
            && self
                .position(id)
                .is_some_and(|at| self.versions.get(at) == Some(&digest))
    }

    /// Every id, in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|at| self.id(at))
    }

    /// Every id, in insertion order, as owned strings (the set is dropped).
    pub fn into_ids(self) -> Vec<String> {
        self.ids().map(str::to_owned).collect()
    }

    /// Whether `id` is here without a version.
    pub fn is_unversioned(&self, id: &str) -> bool {
        self.position(id)
            .is_some_and(|at| self.versions.get(at) == Some(&NO_VERSION))
    }

    /// Whether the set holds exactly `expected`: the same ids, each at its version (`None`:
    /// without one). For tests and checks, which know the versions they wrote.
    pub fn holds_exactly<'a>(
        &self,
        expected: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> bool {
        let mut count = 0;
        let all = expected.into_iter().all(|(id, version)| {
            count += 1;
            match version {
                Some(_) => self.is_at(id, version),
                None => self.is_unversioned(id),
            }
        });
        all && count == self.len()
    }

    fn digest(&self, version: Option<&str>) -> u64 {
        match version {
            None => NO_VERSION,
            Some(v) => self.versions_hash.hash_one(v).max(1),
        }
    }
}

/// Entry `at`'s id in `ids` (empty past the end: entry numbers come from the table itself).
fn id_at<'a>(ids: &'a str, ends: &[u32], at: usize) -> &'a str {
    let start = match at.checked_sub(1) {
        Some(prev) => ends.get(prev).map_or(0, |&e| e as usize),
        None => 0,
    };
    let end = ends.get(at).map_or(start, |&e| e as usize);
    ids.get(start..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::Versions;

    #[test]
    fn finds_ids_and_compares_versions() {
        let mut v = Versions::new();
        assert!(v.is_empty());
        v.insert("a", Some("1")).unwrap();
        v.insert("", Some("empty id")).unwrap();
        v.insert("b", None).unwrap();
        v.insert("ä/🦀", Some("x")).unwrap();
        assert_eq!(v.len(), 4);
        assert!(v.is_at("a", Some("1")));
        assert!(!v.is_at("a", Some("2")));
        assert!(!v.is_at("a", None));
        assert!(!v.is_at("b", None), "no version is never unchanged");
        assert!(v.contains("b"));
        assert!(v.is_at("", Some("empty id")));
        assert!(v.is_at("ä/🦀", Some("x")));
        assert!(!v.contains("c"));
        assert!(!v.contains("ä"));
        assert_eq!(v.ids().collect::<Vec<_>>(), ["a", "", "b", "ä/🦀"]);
        // A repeated id keeps one entry with the later version.
        v.insert("a", Some("2")).unwrap();
        assert_eq!(v.len(), 4);
        assert!(v.is_at("a", Some("2")));
        assert!(!v.is_at("a", Some("1")));
        assert_eq!(v.id(7), "");
    }

    proptest! {
        /// The set answers as the map it replaces: same ids, same "unchanged" verdicts.
        #[test]
        fn answers_as_a_map_would(
            entries in proptest::collection::vec(
                ("[a-c/é]{0,6}", proptest::option::of("[0-3]{0,2}")), 0..60),
            probes in proptest::collection::vec(
                ("[a-c/é]{0,6}", proptest::option::of("[0-3]{0,2}")), 0..30),
        ) {
            let mut set = Versions::new();
            let mut map: HashMap<String, Option<String>> = HashMap::new();
            for (id, version) in &entries {
                set.insert(id, version.as_deref()).unwrap();
                map.insert(id.clone(), version.clone());
            }
            prop_assert_eq!(set.len(), map.len());
            let mut ids: Vec<&str> = set.ids().collect();
            ids.sort_unstable();
            let mut expected: Vec<&str> = map.keys().map(String::as_str).collect();
            expected.sort_unstable();
            prop_assert_eq!(ids, expected);
            for (id, version) in entries.iter().chain(&probes) {
                let unchanged = version.is_some()
                    && map.get(id).is_some_and(|known| known == version);
                prop_assert_eq!(set.is_at(id, version.as_deref()), unchanged);
                prop_assert_eq!(set.contains(id), map.contains_key(id));
            }
        }
    }
}
