//! The durable map of what is indexed: for every item its parent, kind, version and (for
//! enterprise crawls) the user whose view it came from, plus a parent → children index.
//!
//! Incremental syncs need it to find the descendants of a trashed, deleted, moved or renamed
//! folder (Box reports one event for the folder, none for what is inside) and to skip items
//! whose indexed version is current. Keys:
//!
//! - `n/<id>` → [`Node`] as JSON;
//! - `c/<parent id>/<child id>` → `1`, so `list-keys("c/<id>/")` lists a folder's children.
//!
//! Writes are buffered and handed to the next checkpoint, which stores them atomically *after*
//! the documents emitted before it are committed: the map never claims a version the index does
//! not have. Reads see the buffered writes.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tributary_sdk::Result;
use tributary_sdk::tributary::connector::storage;

use crate::api::Kind;

/// What the map knows about one indexed item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Parent folder id (`"0"` for the top of a user's "All Files").
    pub p: String,
    /// `file`, `folder` or `web_link`.
    pub k: String,
    /// The indexed version; empty when the content failed and the next pass must retry.
    pub v: String,
    /// Enterprise: the user whose view the document was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<String>,
    /// Folders: [`crate::docs::structure_key`] when indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    /// Folders with document-level security: identities of their own collaborations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub a: Vec<String>,
}

impl Node {
    pub fn kind(&self) -> Kind {
        Kind::parse(&self.k).unwrap_or(Kind::File)
    }
}

fn node_key(id: &str) -> String {
    format!("n/{id}")
}

fn child_key(parent: &str, id: &str) -> String {
    format!("c/{parent}/{id}")
}

/// The map, with writes buffered until the next checkpoint.
#[derive(Default)]
pub struct NodeMap {
    pending: BTreeMap<String, Option<Vec<u8>>>,
}

impl NodeMap {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => Ok(storage::get(key)?),
        }
    }

    pub fn get(&self, id: &str) -> Result<Option<Node>> {
        // A value that no longer parses is state of an older version: as good as absent.
        Ok(self
            .read(&node_key(id))?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    fn write_node(&mut self, id: &str, node: &Node) {
        if let Ok(bytes) = serde_json::to_vec(node) {
            self.pending.insert(node_key(id), Some(bytes));
        }
    }

    /// Records `node` without reading what was there (full syncs: [`NodeMap::prune`] removes
    /// stale child links at the end).
    pub fn put_fresh(&mut self, id: &str, node: &Node) {
        self.write_node(id, node);
        self.pending
            .insert(child_key(&node.p, id), Some(b"1".to_vec()));
    }

    /// Records `node`, moving the child link when the parent changed.
    pub fn put(&mut self, id: &str, node: &Node, previous: Option<&Node>) {
        if let Some(previous) = previous
            && previous.p != node.p
        {
            self.pending.insert(child_key(&previous.p, id), None);
        }
        self.put_fresh(id, node);
    }

    /// Marks a node's version as stale (its content failed), so the next pass re-indexes it.
    pub fn mark_stale(&mut self, id: &str) -> Result<()> {
        if let Some(mut node) = self.get(id)? {
            node.v.clear();
            self.write_node(id, &node);
        }
        Ok(())
    }

    pub fn remove(&mut self, id: &str, node: &Node) {
        self.pending.insert(node_key(id), None);
        self.pending.insert(child_key(&node.p, id), None);
    }

    /// The ids of a folder's children.
    pub fn children(&self, id: &str) -> Result<Vec<String>> {
        let prefix = child_key(id, "");
        let mut keys: Vec<String> = storage::list_keys(&prefix)?;
        keys.retain(|k| !matches!(self.pending.get(k), Some(None)));
        for (key, value) in self.pending.range(prefix.clone()..) {
            if !key.starts_with(&prefix) {
                break;
            }
            if value.is_some() && !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// Every descendant of a folder with its node, parents before children.
    pub fn descendants(&self, id: &str) -> Result<Vec<(String, Node)>> {
        let mut out = Vec::new();
        let mut stack = vec![id.to_string()];
        while let Some(folder) = stack.pop() {
            for child in self.children(&folder)? {
                let Some(node) = self.get(&child)? else {
                    continue;
                };
                // A stale link (the child moved on): not a descendant any more.
                if node.p != folder {
                    continue;
                }
                if node.kind() == Kind::Folder {
                    stack.push(child.clone());
                }
                out.push((child, node));
            }
        }
        Ok(out)
    }

    /// Buffered writes, for the next checkpoint.
    pub fn take_writes(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    pub fn has_writes(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// After a full sync that saw `seen` (id → parent): deletions of every node and child link
    /// the sync did not confirm.
    pub fn prune(&self, seen: &HashMap<String, String>) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let mut deletions = Vec::new();
        // Paged: every node of a large account never sits whole in the plugin's memory.
        for key in tributary_sdk::state::keys("n/") {
            let key = key?;
            let id = key.trim_start_matches("n/");
            if !seen.contains_key(id) && !self.pending.contains_key(&key) {
                deletions.push((key, None));
            }
        }
        for key in tributary_sdk::state::keys("c/") {
            let key = key?;
            let Some((parent, id)) = key.trim_start_matches("c/").split_once('/') else {
                continue;
            };
            if seen.get(id).map(String::as_str) != Some(parent) {
                deletions.push((key, None));
            }
        }
        Ok(deletions)
    }
}
