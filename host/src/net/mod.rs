//! The network: the one HTTP client, the allowlist and address guard every request passes, and
//! the one retry policy for content downloads.
//!
//! Invariants:
//! - nothing a plugin asks for leaves the host except through [`HttpEngine::execute`], which
//!   checks every hop against an [`Allowlist`] and, before connecting, the address connected to
//!   against the operator's policy (public, or in `[http] allow_private`; see `address.rs`);
//! - operator-configured destinations (the Elasticsearch sink, Elastic's extraction service) use
//!   their own clients and are not screened: the operator chose them;
//! - a plugin instance has one [`Egress`]: the allowlist its `allowed-hosts` answer installed,
//!   shared by its `http` and `extract` capabilities and by its job's content downloads, so the
//!   three can never disagree;
//! - downloads retry by one policy ([`RetryPolicy`]: exponential backoff with jitter, honouring
//!   `Retry-After` as seconds or an HTTP date, capped) under one overall deadline.

mod address;
mod allowlist;
mod client;
mod download;
mod retry;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

pub use address::{AddressClass, AllowedNetwork, PrivateAccess, Refused, classify, is_public};
pub use allowlist::Allowlist;
pub use client::{Body, Fetched, HttpConfig, HttpEngine, Streamed};
pub use download::{DownloadError, download, download_with};
pub use retry::{RetryPolicy, Verdict, judge, retry_after};

use crate::bindings::http::{HttpError, Request};

/// One plugin instance's way out: the shared engine and the allowlist in force for it.
///
/// Clones share the allowlist: installing it once (after `allowed-hosts`) reaches every holder.
#[derive(Clone, Debug)]
pub struct Egress {
    engine: Arc<HttpEngine>,
    allowlist: Arc<RwLock<Arc<Allowlist>>>,
}

impl Egress {
    /// An egress that may reach nothing until an allowlist is installed.
    pub fn new(engine: Arc<HttpEngine>) -> Self {
        Self::with_allowlist(engine, Allowlist::default())
    }

    /// An egress that may reach `allowlist`.
    pub fn with_allowlist(engine: Arc<HttpEngine>, allowlist: Allowlist) -> Self {
        Self {
            engine,
            allowlist: Arc::new(RwLock::new(Arc::new(allowlist))),
        }
    }

    /// Installs the allowlist for every holder of this egress.
    pub fn install(&self, allowlist: Allowlist) {
        let mut slot = self.allowlist.write().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(allowlist);
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> Arc<Allowlist> {
        self.allowlist
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The shared engine.
    pub fn engine(&self) -> &Arc<HttpEngine> {
        &self.engine
    }

    /// Sends `request` under the allowlist in force, reading at most `max_body` bytes.
    pub async fn send(&self, request: &Request, max_body: u64) -> Result<Fetched, HttpError> {
        let allowlist = self.allowlist();
        self.engine.execute(&allowlist, request, max_body).await
    }

    /// Like [`Egress::send`], answering once the response's head has arrived; the body is
    /// read piece by piece.
    pub async fn open(&self, request: &Request, max_body: u64) -> Result<Streamed, HttpError> {
        let allowlist = self.allowlist();
        self.engine.open(&allowlist, request, max_body).await
    }
}
