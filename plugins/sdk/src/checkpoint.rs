//! Typed, versioned sync state stored through [`crate::state::checkpoint`].
//!
//! A [`Checkpoint<T>`] keeps one serde value under one storage key, wrapped with a schema version
//! (`{"version": 2, "state": …}`). Saving goes through the index's `checkpoint`, so the state is
//! written only after every document emitted before it is committed. Loading state of another
//! version (written by an older plugin) yields `None` — the plugin falls back to a full listing —
//! unless a migration is given with [`Checkpoint::load_or_migrate`].
//!
//! ```ignore
//! #[derive(Serialize, Deserialize)]
//! struct Cursor { since: String }
//! const CURSOR: Checkpoint<Cursor> = Checkpoint::new("cursor", 1);
//!
//! let Some(cursor) = CURSOR.load()? else { return full_sync(request) };
//! // … emit the changes …
//! CURSOR.save(&Cursor { since: next })?;
//! ```

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;
use crate::outbox::StateEntry;
use crate::state;
use crate::tributary::connector::index::ContentFailure;

/// A versioned state value under one storage key (see the module docs).
pub struct Checkpoint<T> {
    key: &'static str,
    version: u32,
    _state: PhantomData<fn() -> T>,
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    version: u32,
    state: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    version: u32,
    state: Value,
}

/// What a stored value turned out to be.
#[derive(Debug, PartialEq)]
pub enum Stored {
    /// State of this version, as JSON.
    Current(Value),
    /// State written with another version (or without an envelope: version 0).
    Other {
        /// The version it was written with.
        version: u32,
        /// The stored state.
        state: Value,
    },
}

impl<T: Serialize + DeserializeOwned> Checkpoint<T> {
    /// A checkpoint at storage key `key`, schema `version` (bump it when `T` changes
    /// incompatibly).
    pub const fn new(key: &'static str, version: u32) -> Self {
        Self {
            key,
            version,
            _state: PhantomData,
        }
    }

    /// The storage key.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The stored state, `None` when there is none or it was written with another version.
    pub fn load(&self) -> Result<Option<T>> {
        self.load_or_migrate(|version, _| {
            crate::info!(
                "stored state `{}` has version {version}, this plugin writes version {}: starting over",
                self.key,
                self.version
            );
            None
        })
    }

    /// The stored state; state of another version is passed to `migrate` (version 0 means a
    /// value stored without the envelope, e.g. by a plugin that predates [`Checkpoint`]).
    pub fn load_or_migrate(
        &self,
        migrate: impl FnOnce(u32, Value) -> Option<T>,
    ) -> Result<Option<T>> {
        let Some(raw) = state::get_json::<Value>(self.key)? else {
            return Ok(None);
        };
        match self.classify(raw) {
            Stored::Current(value) => match serde_json::from_value(value) {
                Ok(state) => Ok(Some(state)),
                Err(err) => {
                    crate::warn!("ignoring unreadable state `{}`: {err}", self.key);
                    Ok(None)
                }
            },
            Stored::Other { version, state } => Ok(migrate(version, state)),
        }
    }

    /// Splits a stored JSON value into this version's state or another version's.
    pub fn classify(&self, raw: Value) -> Stored {
        match serde_json::from_value::<EnvelopeIn>(raw.clone()) {
            Ok(envelope) if envelope.version == self.version => Stored::Current(envelope.state),
            Ok(envelope) => Stored::Other {
                version: envelope.version,
                state: envelope.state,
            },
            Err(_) => Stored::Other {
                version: 0,
                state: raw,
            },
        }
    }

    /// The stored bytes of `value` (for [`Self::save_with`] or [`state::set_many`]).
    pub fn encode(&self, value: &T) -> Result<Vec<u8>> {
        state::encode(&EnvelopeOut {
            version: self.version,
            state: value,
        })
    }

    /// The storage write that stores `value`, for [`crate::outbox::Outbox::checkpoint`] (which
    /// sends the documents it queued first).
    pub fn entry(&self, value: &T) -> Result<StateEntry> {
        Ok((self.key.to_string(), Some(self.encode(value)?)))
    }

    /// Commits every document emitted so far, then stores `value`. Content downloads that
    /// failed since the last checkpoint are logged as warnings and returned. Documents still
    /// queued in an [`crate::outbox::Outbox`] are not sent: checkpoint through the outbox with
    /// [`Self::entry`] instead.
    pub fn save(&self, value: &T) -> Result<Vec<ContentFailure>> {
        self.save_with(value, &[])
    }

    /// [`Self::save`], writing `extra` keys in the same atomic step.
    pub fn save_with(
        &self,
        value: &T,
        extra: &[(&str, Option<Vec<u8>>)],
    ) -> Result<Vec<ContentFailure>> {
        let mut entries: Vec<(&str, Option<Vec<u8>>)> = vec![(self.key, Some(self.encode(value)?))];
        entries.extend(extra.iter().cloned());
        let failures = state::checkpoint(&entries)?;
        warn_failures(&failures);
        Ok(failures)
    }

    /// Commits every document emitted so far, then deletes the stored state.
    pub fn clear(&self) -> Result<Vec<ContentFailure>> {
        let failures = state::checkpoint(&[(self.key, None)])?;
        warn_failures(&failures);
        Ok(failures)
    }
}

/// Logs each content failure a checkpoint reported.
pub fn warn_failures(failures: &[ContentFailure]) {
    for failure in failures {
        let status = failure
            .status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        crate::warn!(
            "content of {} not indexed{status}: {}",
            failure.id,
            failure.message
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Cursor {
        since: String,
    }

    const CURSOR: Checkpoint<Cursor> = Checkpoint::new("cursor", 2);

    #[test]
    fn values_are_stored_in_a_versioned_envelope() {
        let bytes = CURSOR.encode(&Cursor { since: "42".into() }).unwrap();
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(raw, json!({"version": 2, "state": {"since": "42"}}));
        assert_eq!(
            CURSOR.classify(raw),
            Stored::Current(json!({"since": "42"}))
        );
    }

    #[test]
    fn other_versions_and_bare_values_are_told_apart() {
        assert_eq!(
            CURSOR.classify(json!({"version": 1, "state": "42"})),
            Stored::Other {
                version: 1,
                state: json!("42")
            }
        );
        assert_eq!(
            CURSOR.classify(json!("42")),
            Stored::Other {
                version: 0,
                state: json!("42")
            }
        );
        assert_eq!(CURSOR.key(), "cursor");
        let (key, bytes) = CURSOR.entry(&Cursor { since: "7".into() }).unwrap();
        assert_eq!(key, "cursor");
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes.unwrap()).unwrap(),
            json!({"version": 2, "state": {"since": "7"}})
        );
    }
}
