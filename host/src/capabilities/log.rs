//! `log`: plugin log lines, attributed to the plugin and job, into the host's tracing output and
//! the job's own log (kept for job status).

use std::sync::{Arc, Mutex};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::log::{self, Level};
use crate::limits::HostCalls;

/// Longest message kept; the rest is cut (a guest controls the length).
const MAX_MESSAGE: usize = 4096;
/// Lines kept per job for its status report.
const MAX_LINES: usize = 200;

/// Where a plugin's log lines go.
#[derive(Clone, Debug, Default)]
pub struct LogCtx {
    /// Label, e.g. `dropbox@0.1.0 tenant/connector`.
    pub label: String,
    /// The last lines at warn level and above, for the job report.
    pub recent: Arc<Mutex<Vec<String>>>,
    /// Rate of capability calls (installed by the runtime).
    pub calls: HostCalls,
}

impl LogCtx {
    /// A context labelled for one plugin instance.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            recent: Arc::default(),
            calls: HostCalls::default(),
        }
    }

    /// Warn-and-above lines logged so far.
    pub fn recent(&self) -> Vec<String> {
        self.recent.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Links `log` into a linker whose store data exposes a [`LogCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut LogCtx,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, HasSelf<LogCtx>>(linker, get)
}

impl log::Host for LogCtx {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.calls.charge_or_trap()?;
        let message = crate::text::truncate(&message, MAX_MESSAGE);
        let plugin = self.label.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", %plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", %plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", %plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", %plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", %plugin, "{message}"),
        }
        if matches!(level, Level::Warn | Level::Error)
            && let Ok(mut recent) = self.recent.lock()
        {
            if recent.len() >= MAX_LINES {
                recent.remove(0);
            }
            recent.push(message.to_string());
        }
        Ok(())
    }
}
