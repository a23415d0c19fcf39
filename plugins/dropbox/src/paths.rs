//! The durable path → entry map that turns Dropbox deletions into document ids.
//!
//! `files/list_folder/continue` reports a deletion with a path only, and a deleted folder with
//! one entry for its whole subtree. So every listed entry is remembered in plugin storage under
//! `p:<path_lower>` → `{id, dir, version}`: a deleted file is one `get`, a deleted folder one
//! `list-keys` of `p:<path_lower>/`. The stored version also lets an incremental sync skip
//! entries Dropbox reports again without a change we index (e.g. a folder shared: Dropbox
//! re-reports its whole subtree).
//!
//! Writes are never applied directly: they are handed to the checkpoint with the cursor they
//! belong to, so the map and the cursor change together, after the documents are committed.
//! Until then they live in an overlay that lookups consult first.
//!
//! Keys are at most 512 bytes; a longer path is cut at a character boundary and suffixed with
//! `\u{1}` plus a hash, and its value carries the full path, so prefix scans still work (on
//! the cut prefix, filtered by the stored path).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tributary_sdk::tributary::connector::storage;
use tributary_sdk::{Result, state};

/// Prefix of every path map key.
pub const PREFIX: &str = "p:";
/// Longest path kept verbatim in a key (the key adds the prefix, a marker and a hash).
const MAX_VERBATIM: usize = 480;
const CUT: char = '\u{1}';

/// What is remembered about one path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The Dropbox id (the document id).
    #[serde(rename = "i")]
    pub id: String,
    /// A folder: its deletion covers the subtree.
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    /// The document version last emitted for it.
    #[serde(rename = "v", default)]
    pub version: String,
    /// The full path, only when the key had to be cut.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The storage key for a lower-case path.
pub fn key(path_lower: &str) -> String {
    if path_lower.len() <= MAX_VERBATIM {
        return format!("{PREFIX}{path_lower}");
    }
    format!(
        "{PREFIX}{}{CUT}{}",
        cut(path_lower),
        crate::docs::hash_hex(path_lower.as_bytes())
    )
}

fn cut(path: &str) -> &str {
    let mut end = MAX_VERBATIM;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// The path a key stands for, when the key holds it verbatim.
fn verbatim(key: &str) -> Option<&str> {
    let path = key.strip_prefix(PREFIX)?;
    (!path.contains(CUT)).then_some(path)
}

/// The map, with the writes not yet checkpointed.
#[derive(Default)]
pub struct PathMap {
    pending: BTreeMap<String, Option<Known>>,
}

impl PathMap {
    /// Remembers `path_lower` (written at the next checkpoint).
    pub fn set(&mut self, path_lower: &str, mut known: Known) {
        let key = key(path_lower);
        known.path = (verbatim(&key).is_none()).then(|| path_lower.to_string());
        self.pending.insert(key, Some(known));
    }

    /// What is known about exactly this path.
    pub fn get(&self, path_lower: &str) -> Result<Option<Known>> {
        let key = key(path_lower);
        if let Some(pending) = self.pending.get(&key) {
            return Ok(pending.clone());
        }
        read(&key)
    }

    /// Forgets `path_lower` and, for a folder, everything below it; returns what was known.
    pub fn remove_tree(&mut self, path_lower: &str) -> Result<Vec<Known>> {
        let mut removed = Vec::new();
        if let Some(known) = self.get(path_lower)? {
            removed.push(known);
        }
        self.pending.insert(key(path_lower), None);
        let below = format!("{path_lower}/");
        let scan_prefix = key(&below);
        // A cut key's scan prefix is the cut path itself; candidates are checked by full path.
        let scan_prefix = match verbatim(&scan_prefix) {
            Some(_) => scan_prefix,
            None => format!("{PREFIX}{}", cut(&below)),
        };
        let mut candidates: BTreeMap<String, Option<Known>> = BTreeMap::new();
        for k in storage::list_keys(&scan_prefix)? {
            candidates.insert(k, None);
        }
        for (k, v) in self.pending.range(scan_prefix.clone()..) {
            if !k.starts_with(&scan_prefix) {
                break;
            }
            candidates.insert(k.clone(), Some(v.clone()).flatten());
        }
        for (k, pending) in candidates {
            let known = match self.pending.get(&k) {
                Some(_) => pending,
                None => read(&k)?,
            };
            let Some(known) = known else { continue };
            let path = known
                .path
                .clone()
                .or_else(|| verbatim(&k).map(str::to_string))
                .unwrap_or_default();
            if path.starts_with(&below) {
                removed.push(known);
                self.pending.insert(k, None);
            }
        }
        Ok(removed)
    }

    /// The pending writes, for a checkpoint (the overlay is emptied).
    pub fn take_writes(&mut self) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let mut writes = Vec::with_capacity(self.pending.len());
        for (key, value) in std::mem::take(&mut self.pending) {
            writes.push((key, value.map(|v| state::encode(&v)).transpose()?));
        }
        Ok(writes)
    }
}

fn read(key: &str) -> Result<Option<Known>> {
    Ok(storage::get(key)?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Every stored key with `prefix`, read a page at a time (a million paths never sit whole in
/// the plugin's memory).
pub fn stored_keys(prefix: &str) -> tributary_sdk::state::Keys {
    tributary_sdk::state::keys(prefix)
}

/// The id stored under a path map key.
pub fn stored(key: &str) -> Result<Option<Known>> {
    read(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_get_bounded_keys_that_keep_the_subtree_prefix() {
        let folder = format!("/{}", "é".repeat(300));
        let file = format!("{folder}/{}.txt", "x".repeat(100));
        let (kf, kd) = (key(&folder), key(&file));
        assert!(kf.len() <= 512 && kd.len() <= 512);
        assert!(verbatim(&kf).is_none() && verbatim(&kd).is_none());
        assert_ne!(kf, kd);
        // The subtree scan prefix of the folder covers the file's key.
        let scan = format!("{PREFIX}{}", cut(&format!("{folder}/")));
        assert!(kd.starts_with(&scan));
        assert_eq!(key("/a/b"), "p:/a/b");
        assert_eq!(verbatim("p:/a/b"), Some("/a/b"));
    }
}
