//! The library half of the `tributary` command line: plugin scaffolding (`tributary plugin
//! new|build|check`), which the end-to-end tests drive directly. Everything else of the command
//! line lives in the binary (`main.rs`).

pub mod scaffold;
