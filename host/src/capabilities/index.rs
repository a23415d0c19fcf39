//! `index`: the guest adapter over the running job's [`Pipeline`] (see [`crate::pipeline`] for
//! a document's path from here to the sink).
//!
//! Outside a sync job there is no pipeline and every call is a WIT error. A sink failure is a
//! host fault, so it traps: the job cannot continue and the host reports the cause.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::index::{self, ContentFailure, Document, IndexError};
use crate::limits::HostCalls;
use crate::pipeline::Pipeline;

/// The `index` state of a plugin instance: a pipeline while a sync job runs, nothing otherwise.
#[derive(Default)]
pub struct IndexCtx {
    /// The job's pipeline.
    pub pipeline: Option<Pipeline>,
    /// Rate of capability calls (installed by the runtime).
    pub calls: HostCalls,
}

impl IndexCtx {
    fn pipeline(&mut self) -> wasmtime::Result<Result<&mut Pipeline, IndexError>> {
        self.calls.charge_or_trap()?;
        Ok(self.pipeline.as_mut().ok_or_else(|| {
            IndexError::Sink(
                "no sync job is running: documents can only be written during a sync".into(),
            )
        }))
    }
}

/// Sink failures trap: the job cannot continue and the host reports the cause. The cause stays
/// attached (not just its text), so the host can tell a typed refusal such as
/// a tenant quota refusal from a fault.
fn host_fault(err: anyhow::Error) -> wasmtime::Error {
    wasmtime::Error::from_anyhow(err.context("index sink failed"))
}

/// Links `index` into a linker whose store data exposes an [`IndexCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut IndexCtx,
) -> wasmtime::Result<()> {
    index::add_to_linker::<T, HasSelf<IndexCtx>>(linker, get)
}

impl index::Host for IndexCtx {
    async fn upsert(
        &mut self,
        documents: Vec<Document>,
    ) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.upsert(documents).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete(&mut self, ids: Vec<String>) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.delete(ids).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn keep(&mut self, ids: Vec<String>) -> wasmtime::Result<Result<(), IndexError>> {
        Ok(self.pipeline()?.and_then(|p| p.keep(ids)))
    }

    async fn checkpoint(
        &mut self,
        state: Vec<(String, Option<Vec<u8>>)>,
    ) -> wasmtime::Result<Result<Vec<ContentFailure>, IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.checkpoint(state).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn upsert_access_control(
        &mut self,
        documents: Vec<Document>,
    ) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.upsert_acl(documents).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete_access_control(
        &mut self,
        ids: Vec<String>,
    ) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.delete_acl(ids).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn set_download_concurrency(&mut self, limit: u32) -> wasmtime::Result<()> {
        if let Ok(p) = self.pipeline()? {
            p.set_concurrency(limit);
        }
        Ok(())
    }
}
