//! `tributary demo` (being written).

use std::path::Path;

/// Runs the demo.
pub async fn run(_data_dir: &Path) -> anyhow::Result<()> {
    anyhow::bail!("the demo is not written yet")
}
