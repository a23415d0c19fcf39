//! Durable plugin state: JSON values in the connector's storage, and checkpoints.
//!
//! Cursors belong in [`checkpoint`], which the host writes only after every document emitted
//! before it is committed to the index — so a crash resumes from safe state. Tokens that must
//! survive a crash the moment they are issued (a rotated refresh token) go through [`set_json`]
//! or [`set_many`], which are durable when they return.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::tributary::connector::{index, storage};
use crate::{Error, Result};

/// Reads a JSON value; `None` when absent. A value that no longer parses is treated as absent
/// (state written by an older plugin version), and logged.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    let Some(bytes) = storage::get(key)? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Some(value)),
        Err(err) => {
            crate::warn!("ignoring unreadable state `{key}`: {err}");
            Ok(None)
        }
    }
}

/// Writes a JSON value durably.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Other(e.to_string()))?;
    Ok(storage::set(key, &bytes)?)
}

/// Deletes a key.
pub fn delete(key: &str) -> Result<()> {
    Ok(storage::delete(key)?)
}

/// Writes several keys atomically (`None` deletes).
pub fn set_many(entries: &[(&str, Option<Vec<u8>>)]) -> Result<()> {
    let owned: Vec<(String, Option<Vec<u8>>)> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Ok(storage::set_many(&owned)?)
}

/// Keys asked for in one page by [`keys`].
const KEYS_PAGE: u32 = 4096;

/// Every stored key starting with `prefix`, sorted, read a page at a time: a prefix of a
/// million keys never sits whole in the plugin's memory (linear memory does not shrink), as
/// `storage::list_keys` would put it. Ends at the first error, which it yields.
pub fn keys(prefix: &str) -> Keys {
    Keys {
        prefix: prefix.to_string(),
        after: None,
        page: Vec::new().into_iter(),
        done: false,
    }
}

/// The pages of [`keys`].
pub struct Keys {
    prefix: String,
    after: Option<String>,
    page: std::vec::IntoIter<String>,
    done: bool,
}

impl Iterator for Keys {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            let page =
                match storage::list_keys_after(&self.prefix, self.after.as_deref(), KEYS_PAGE) {
                    Ok(page) => page,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e.into()));
                    }
                };
            // Only an empty page ends it: a host may cap pages below what was asked.
            self.done = page.is_empty();
            self.after = page.last().cloned();
            self.page = page.into_iter();
        }
    }
}

/// Encodes a value for [`checkpoint`] / [`set_many`].
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Other(e.to_string()))
}

/// Commits everything emitted so far, then stores `state` atomically. Returns the documents whose
/// content could not be fetched since the last checkpoint.
pub fn checkpoint(state: &[(&str, Option<Vec<u8>>)]) -> Result<Vec<index::ContentFailure>> {
    let owned: Vec<(String, Option<Vec<u8>>)> = state
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Ok(index::checkpoint(&owned)?)
}
