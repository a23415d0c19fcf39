//! Test guest: the `feed` plugin's own code, built under this crate's version (`0.2.0-next`),
//! so hot-swap tests have a second, real version of a plugin to upload, activate and roll back.

#[path = "../../feed/src/lib.rs"]
mod feed;
