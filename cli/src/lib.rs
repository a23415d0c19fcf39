//! The library half of the `tributary` command line: plugin scaffolding (`tributary plugin
//! new|build|check|describe|run`), credentials (`tributary auth`) and progress lines, which the
//! end-to-end tests drive directly. Everything else of the command line lives in the binary
//! (`main.rs`).

pub mod auth;
pub mod describe;
pub mod plugin_run;
pub mod progress;
pub mod scaffold;
