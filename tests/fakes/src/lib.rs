//! Fake API servers for tributary's tests and `tributary demo`.
//!
//! Each fake speaks the public wire format of the service it imitates closely enough that the real
//! plugins cannot tell the difference, keeps its state in memory so tests can mutate it between
//! syncs, and accepts scripted faults ([`faults::FaultPlan`]) so retry and recovery paths are
//! exercised for real.

pub mod boxapi;
pub mod dropbox;
pub mod elasticsearch;
pub mod faults;
pub mod feed;
pub mod rss;
pub mod server;

pub use faults::{Fault, FaultPlan};
pub use server::FakeServer;
