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
