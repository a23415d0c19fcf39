//! Manifests kept beside compiled plugins: a start the compile cache answers takes each
//! plugin's manifest from its entry instead of instantiating the plugin to ask, and an entry
//! that cannot be used is asked for again and rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tributary_host::{Host, HostConfig};

use crate::support::{host_with, shared_cache};

/// Plugin name → description, as the host lists them.
async fn descriptions(data: &Path, cache: &Path) -> BTreeMap<String, String> {
    let host = Host::open(HostConfig {
        data_dir: data.to_path_buf(),
        cache_dir: Some(cache.to_path_buf()),
        ..HostConfig::default()
    })
    .await
    .expect("host opens");
    host.plugins()
        .into_iter()
        .map(|p| (p.name, p.description))
        .collect()
}

fn manifest_entries(cache: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .collect();
    entries.sort();
    entries
}

fn read_entry(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_start_the_compile_cache_answers_takes_manifests_from_it() {
    // The compiled plugins from the shared cache (compiled once per test run), in a cache of
    // this test's own: the entries below are edited.
    drop(host_with(vec![], |_| {}).await);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    for entry in std::fs::read_dir(shared_cache()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            std::fs::copy(&path, cache.join(path.file_name().unwrap())).unwrap();
        }
    }

    // First start: every manifest is asked of its plugin, and kept.
    let asked = descriptions(&tmp.path().join("data-1"), &cache).await;
    let entries = manifest_entries(&cache);
    assert_eq!(
        entries.len(),
        asked.len(),
        "one entry per plugin: {entries:?}"
    );
    for path in &entries {
        let entry = read_entry(path);
        let name = entry["manifest"]["name"].as_str().unwrap();
        assert_eq!(
            entry["manifest"]["description"].as_str(),
            asked.get(name).map(String::as_str)
        );
    }

    // Each entry now says what its plugin never would: the next start shows it, so no plugin
    // was asked.
    let mut names = Vec::new();
    for path in &entries {
        let mut entry = read_entry(path);
        names.push(entry["manifest"]["name"].as_str().unwrap().to_string());
        entry["manifest"]["description"] = "from the cache".into();
        std::fs::write(path, entry.to_string()).unwrap();
    }
    let cached = descriptions(&tmp.path().join("data-2"), &cache).await;
    assert!(cached.values().all(|d| d == "from the cache"), "{cached:?}");

    // A damaged entry, and one the host's checks refuse: both plugins are asked again, and
    // their entries rewritten; the third entry is still used.
    std::fs::write(&entries[0], "{\"format\": 1, \"manif").unwrap();
    let mut refused = read_entry(&entries[1]);
    refused["manifest"]["name"] = "Not A Valid Name".into();
    std::fs::write(&entries[1], refused.to_string()).unwrap();
    let healed = descriptions(&tmp.path().join("data-3"), &cache).await;
    assert_eq!(healed[&names[0]], asked[&names[0]]);
    assert_eq!(healed[&names[1]], asked[&names[1]]);
    for (name, description) in &healed {
        if name != &names[0] && name != &names[1] {
            assert_eq!(description, "from the cache", "{name}");
        }
    }
    for (path, name) in entries.iter().zip(&names).take(2) {
        let entry = read_entry(path);
        assert_eq!(entry["manifest"]["name"].as_str(), Some(name.as_str()));
        assert_eq!(
            entry["manifest"]["description"].as_str(),
            Some(asked[name].as_str())
        );
    }
}
