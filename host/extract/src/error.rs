//! The error type every extraction path returns.
//!
//! Each variant is a *per-file* outcome: the host records it on the document and keeps
//! syncing, so the document stays indexable by name, path and metadata even when its
//! body yields no text.

use std::time::Duration;

/// Why a body produced no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The format is not one this crate extracts (images, archives, legacy binary
    /// Office files, …). Not a fault: the body is simply not text-bearing for us.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The input (or a part of it after decompression) exceeds a configured limit.
    /// Reported before reading the body when the input itself is too large.
    #[error("too large: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size seen (bytes).
        size: u64,
        /// The configured limit (bytes).
        limit: u64,
    },
    /// The body claims a supported format but could not be parsed (malformed,
    /// truncated, a decompression bomb, a parser panic, …). The message names the
    /// format and the problem, e.g. `docx: zip entry word/document.xml inflates past
    /// the 64 MiB limit`.
    #[error("extraction failed: {0}")]
    Failed(String),
    /// Extraction did not finish within the time limit.
    #[error("extraction timed out after {0:?}")]
    TimedOut(Duration),
}

impl ExtractError {
    /// A `Failed` error whose message is prefixed with the format name.
    pub(crate) fn failed(format: impl std::fmt::Display, msg: impl std::fmt::Display) -> Self {
        ExtractError::Failed(format!("{format}: {msg}"))
    }

    /// Short machine-friendly kind: `unsupported`, `too_large`, `failed`, `timed_out`.
    pub fn kind(&self) -> &'static str {
        match self {
            ExtractError::Unsupported(_) => "unsupported",
            ExtractError::TooLarge { .. } => "too_large",
            ExtractError::Failed(_) => "failed",
            ExtractError::TimedOut(_) => "timed_out",
        }
    }
}

/// Result alias used throughout the crate.
pub(crate) type Result<T> = std::result::Result<T, ExtractError>;
