//! `storage`: the guest adapter over [`ConnectorState`] — one connector's durable key/value
//! state, its namespace fixed by the host.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::storage::{self, StorageError};
use crate::kv::{ConnectorState, Write};
use crate::limits::HostCalls;

/// The `storage` state of one plugin instance.
#[derive(Clone, Debug)]
pub struct StorageCtx {
    state: ConnectorState,
    /// Rate of capability calls (installed by the runtime).
    pub calls: HostCalls,
}

impl StorageCtx {
    /// A context over `state`.
    pub fn new(state: ConnectorState) -> Self {
        Self {
            state,
            calls: HostCalls::default(),
        }
    }

    /// The state it reads and writes.
    pub fn state(&self) -> &ConnectorState {
        &self.state
    }
}

/// Links `storage` into a linker whose store data exposes a [`StorageCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut StorageCtx,
) -> wasmtime::Result<()> {
    storage::add_to_linker::<T, HasSelf<StorageCtx>>(linker, get)
}

impl storage::Host for StorageCtx {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, StorageError>> {
        self.calls.charge_or_trap()?;
        Ok(self.state.get(key).await)
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), StorageError>> {
        self.calls.charge_or_trap()?;
        Ok(self.state.apply(vec![(key, Some(value))]).await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), StorageError>> {
        self.calls.charge_or_trap()?;
        Ok(self.state.apply(vec![(key, None)]).await)
    }

    async fn list_keys(
        &mut self,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, StorageError>> {
        self.calls.charge_or_trap()?;
        Ok(self.state.list_keys(prefix).await)
    }

    async fn list_keys_after(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<String>, StorageError>> {
        self.calls.charge_or_trap()?;
        Ok(self.state.list_keys_after(prefix, after, limit).await)
    }

    async fn set_many(
        &mut self,
        entries: Vec<Write>,
    ) -> wasmtime::Result<Result<(), StorageError>> {
        self.calls.charge_or_trap()?;
        Ok(self.state.apply(entries).await)
    }
}
