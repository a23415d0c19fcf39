//! Logging into the host's job log: `tributary_sdk::info!("listed {n} entries")`.

pub use crate::tributary::connector::log::Level;

/// Sends one log line to the host.
#[cfg(target_family = "wasm")]
pub fn write(level: Level, message: &str) {
    crate::tributary::connector::log::log(level, message);
}

/// Off wasm there is no host (the SDK's own unit tests run natively): the line goes to stderr.
#[cfg(not(target_family = "wasm"))]
pub fn write(level: Level, message: &str) {
    eprintln!("{level:?}: {message}");
}

/// Logs at info level with `format!` syntax.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, &format!($($arg)*)) };
}

/// Logs at warn level with `format!` syntax.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, &format!($($arg)*)) };
}

/// Logs at debug level with `format!` syntax.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, &format!($($arg)*)) };
}

/// Logs at error level with `format!` syntax.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, &format!($($arg)*)) };
}
