//! Per-instance resource limits: linear memory (a [`ResourceLimiter`]), guest CPU time (call
//! hooks measure time spent in wasm, an epoch callback enforces the budget) and the rate of calls
//! into the host's capabilities ([`HostCalls`]).
//!
//! CPU is measured as wall time between entering wasm and leaving it for the host, so a plugin
//! waiting on HTTP, sleeping for `Retry-After` or blocked on index backpressure spends nothing; a
//! plugin that computes forever is stopped with a clear error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wasmtime::{CallHook, ResourceLimiter};

/// Limits applied to every plugin instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxLimits {
    /// Largest linear memory one instance may grow to, in MiB.
    pub memory_mib: u64,
    /// Guest compute time per call into the plugin (a whole sync is one call), in seconds.
    pub cpu_seconds: u64,
    /// Wall-clock limit of one call into the plugin, in seconds.
    pub wall_seconds: u64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_mib: 256,
            cpu_seconds: 600,
            wall_seconds: 6 * 3600,
        }
    }
}

impl SandboxLimits {
    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// CPU budget.
    pub fn cpu(&self) -> Duration {
        Duration::from_secs(self.cpu_seconds)
    }

    /// Wall-clock budget.
    pub fn wall(&self) -> Duration {
        Duration::from_secs(self.wall_seconds)
    }
}

/// Why the sandbox stopped a plugin, remembered so the trap can be reported in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Breach {
    /// Tried to grow memory past the limit.
    Memory {
        /// The limit in bytes.
        limit: usize,
        /// The size the plugin asked for.
        requested: usize,
    },
    /// Used more guest CPU time than allowed.
    Cpu {
        /// The budget.
        limit: Duration,
    },
    /// Called the host's capabilities faster than allowed.
    HostCalls {
        /// Calls allowed per second.
        per_second: u64,
    },
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Memory { limit, requested } => write!(
                f,
                "plugin exceeded its memory limit of {} MiB (asked to grow to {:.1} MiB)",
                limit / (1024 * 1024),
                *requested as f64 / (1024.0 * 1024.0)
            ),
            Breach::Cpu { limit } => write!(
                f,
                "plugin exceeded its CPU limit of {} s of guest compute",
                limit.as_secs_f64()
            ),
            Breach::HostCalls { per_second } => write!(
                f,
                "plugin exceeded its limit of {per_second} host calls per second"
            ),
        }
    }
}

/// Memory limiter for one store.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    /// Set when the guest hit the limit.
    pub breach: Option<Breach>,
}

impl MemoryLimiter {
    /// A limiter allowing memories up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            breach: None,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired <= self.limit {
            return Ok(true);
        }
        let breach = Breach::Memory {
            limit: self.limit,
            requested: desired,
        };
        let message = breach.to_string();
        self.breach = Some(breach);
        // Trapping (rather than failing the grow) stops the guest at once with our message,
        // instead of letting its allocator abort with an opaque `unreachable`.
        Err(wasmtime::Error::msg(message))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Measures guest compute time from call hooks.
#[derive(Debug)]
pub struct CpuMeter {
    budget: Duration,
    used: Duration,
    in_guest_since: Option<Instant>,
    /// Set when the budget ran out.
    pub breach: Option<Breach>,
}

impl CpuMeter {
    /// A meter with this budget.
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            used: Duration::ZERO,
            in_guest_since: None,
            breach: None,
        }
    }

    /// Records a transition between host and guest.
    pub fn on_hook(&mut self, hook: CallHook) {
        let now = Instant::now();
        if hook.entering_host() {
            if let Some(since) = self.in_guest_since.take() {
                self.used += now.saturating_duration_since(since);
            }
        } else {
            self.in_guest_since = Some(now);
        }
    }

    /// Guest time used so far.
    pub fn used(&self) -> Duration {
        self.used
            + self
                .in_guest_since
                .map(|s| s.elapsed())
                .unwrap_or(Duration::ZERO)
    }

    /// Called on every epoch tick while the guest runs: `Err` once the budget is spent.
    pub fn check(&mut self) -> Result<(), Breach> {
        if self.used() <= self.budget {
            return Ok(());
        }
        let breach = Breach::Cpu { limit: self.budget };
        self.breach = Some(breach.clone());
        Err(breach)
    }
}

/// Rate of calls into the host's own capabilities (`log`, `http`, `storage`, `index`, `extract`)
/// of one plugin instance, counted in one-second windows.
///
/// Time spent inside the host is not guest CPU time, so without this a plugin calling the host in
/// a tight loop (a log line, a storage read) would burn host CPU and hammer shared resources for
/// as long as its wall-clock limit allows. Every capability call is charged here first; past the
/// rate the call traps and the breach is reported as a limit (see `runtime.rs`). Wasmtime's call
/// hooks cannot tell host functions from libcalls (`memory.copy` is one), which is why the
/// capabilities charge themselves instead.
#[derive(Clone, Debug)]
pub struct HostCalls {
    per_second: u64,
    window: Arc<Mutex<CallWindow>>,
    /// Set with the breach: read on every call hook, so it must be cheap.
    tripped: Arc<AtomicBool>,
}

#[derive(Debug)]
struct CallWindow {
    started: Instant,
    calls: u64,
    breach: Option<Breach>,
}

impl Default for HostCalls {
    /// No limit (contexts built outside a store, e.g. by tests and admin tools).
    fn default() -> Self {
        Self::new(u64::MAX)
    }
}

impl HostCalls {
    /// A meter allowing `per_second` calls in every one-second window.
    pub fn new(per_second: u64) -> Self {
        Self {
            per_second: per_second.max(1),
            window: Arc::new(Mutex::new(CallWindow {
                started: Instant::now(),
                calls: 0,
                breach: None,
            })),
            tripped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Counts one call; `Err` once the rate is exceeded (and for every call after that).
    pub fn charge(&self) -> Result<(), Breach> {
        let Ok(mut w) = self.window.lock() else {
            // A poisoned meter fails closed.
            return Err(Breach::HostCalls {
                per_second: self.per_second,
            });
        };
        if let Some(breach) = &w.breach {
            return Err(breach.clone());
        }
        let now = Instant::now();
        if now.saturating_duration_since(w.started) >= Duration::from_secs(1) {
            w.started = now;
            w.calls = 0;
        }
        w.calls += 1;
        if w.calls > self.per_second {
            let breach = Breach::HostCalls {
                per_second: self.per_second,
            };
            w.breach = Some(breach.clone());
            self.tripped.store(true, Ordering::Release);
            return Err(breach);
        }
        Ok(())
    }

    /// [`Self::charge`] for a capability: a breach traps the guest.
    pub fn charge_or_trap(&self) -> wasmtime::Result<()> {
        self.charge()
            .map_err(|breach| wasmtime::Error::msg(breach.to_string()))
    }

    /// The breach, once the rate was exceeded.
    pub fn breach(&self) -> Option<Breach> {
        if !self.tripped.load(Ordering::Acquire) {
            return None;
        }
        self.window.lock().ok().and_then(|w| w.breach.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn memory_limiter_traps_past_the_limit() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        let err = limiter.memory_growing(1 << 20, 3 << 20, None).unwrap_err();
        assert!(err.to_string().contains("memory limit of 1 MiB"), "{err}");
        assert_eq!(
            limiter.breach,
            Some(Breach::Memory {
                limit: 1 << 20,
                requested: 3 << 20
            })
        );
    }

    #[test]
    fn host_calls_are_rate_limited_and_the_breach_sticks() {
        let calls = HostCalls::new(3);
        let shared = calls.clone();
        for _ in 0..3 {
            assert!(calls.charge().is_ok());
        }
        assert_eq!(calls.breach(), None);
        // The fourth call within a second breaches, through any clone of the meter.
        assert_eq!(shared.charge(), Err(Breach::HostCalls { per_second: 3 }));
        let err = calls.charge_or_trap().unwrap_err();
        assert!(
            err.to_string()
                .contains("exceeded its limit of 3 host calls per second"),
            "{err}"
        );
        assert_eq!(calls.breach(), Some(Breach::HostCalls { per_second: 3 }));
        // Unlimited by default.
        let free = HostCalls::default();
        assert!((0..10_000).all(|_| free.charge().is_ok()));
    }

    #[test]
    fn cpu_meter_counts_guest_time_only() {
        let mut meter = CpuMeter::new(Duration::from_millis(30));
        meter.on_hook(CallHook::CallingWasm);
        std::thread::sleep(Duration::from_millis(10));
        meter.on_hook(CallHook::CallingHost);
        // Time in the host (e.g. waiting on HTTP) is free.
        std::thread::sleep(Duration::from_millis(50));
        meter.on_hook(CallHook::ReturningFromHost);
        assert!(meter.check().is_ok());
        assert!(
            meter.used() < Duration::from_millis(40),
            "{:?}",
            meter.used()
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(meter.check(), Err(Breach::Cpu { .. })));
    }
}
