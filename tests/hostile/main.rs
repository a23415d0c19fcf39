//! Hostile plugins: every attack in `README.md`, each through the real host with a real component
//! (`plugins/hostile`), each asserting that the attack fails its own job with a clear typed
//! error while a concurrent job of another tenant completes with its exact document set and the
//! host keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod arena;
mod data;
mod exports;
mod network;
mod properties;
mod resources;
