//! `tributary plugin new | build | check` end to end: a skeleton in each language is generated
//! into a temporary directory, built into a component with the pinned toolchain, checked, and
//! synced (full, then incremental) against the fake JSON API. And the refusals: a component
//! built for another `tributary:connector` version is refused naming both versions, one that
//! imports something the host does not offer is refused naming the import.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use tributary_cli::scaffold::{BuildOptions, Lang};
use tributary_fakes::feed::FakeFeed;
use tributary_host::{HostConfig, SyncKind};

use crate::foreign::{build_foreign, repo_root};
use crate::support::{connector, host_with, shared_cache};

fn host_config() -> HostConfig {
    let mut config = HostConfig {
        cache_dir: Some(shared_cache()),
        ..HostConfig::default()
    };
    // As `tributary plugin check` runs it: the user's own connector configuration.
    config.http.private_access = tributary_host::net::PrivateAccess::NamedLiterals;
    config
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Generates, builds, checks and syncs a skeleton; returns nothing, asserts everything.
async fn scaffold_round_trip(lang: Lang, name: &str) {
    // The shared toolchain (jco / componentize-py), installed once outside the clone.
    if lang != Lang::Rust {
        build_foreign(&["--tools"]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    tributary_cli::scaffold::new_plugin(name, lang, &dir, None).unwrap();
    let options = BuildOptions {
        // Rust skeletons share one warm target directory across test runs.
        target_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target")),
        tools_dir: None,
    };
    let wasm = tributary_cli::scaffold::build(&dir, &options)
        .unwrap_or_else(|e| panic!("building the {lang:?} skeleton: {e:#}"));
    assert_eq!(
        wasm,
        dir.canonicalize()
            .unwrap()
            .join(format!("dist/{name}.wasm"))
    );

    let api = FakeFeed::start(None).await.unwrap();
    let config = object(json!({"base_url": api.base_url(), "page_size": 2}));
    let checked = tributary_cli::scaffold::check(&host_config(), &wasm, Some(&config))
        .await
        .unwrap_or_else(|e| panic!("checking the {lang:?} skeleton: {e:#}"));
    assert_eq!(checked.version, tributary_host::WIT_VERSION);
    assert_eq!(checked.manifest.name, name);
    let keys: Vec<&str> = checked
        .manifest
        .config
        .iter()
        .map(|f| f.key.as_str())
        .collect();
    assert_eq!(keys, ["base_url", "api_token", "page_size", "retry_count"]);
    let host = api.base_url().trim_start_matches("http://").to_string();
    assert_eq!(checked.hosts.as_ref().unwrap(), &vec![host]);
    assert!(
        checked.imports.iter().all(|i| i.offered),
        "{:?}",
        checked.imports
    );
    assert!(
        checked
            .imports
            .iter()
            .any(|i| i.name == "tributary:connector/http@0.1.0")
    );
    let report = checked.render();
    assert!(
        report.contains("world       tributary:connector@0.1.0"),
        "{report}"
    );
    assert!(report.contains("base_url"), "{report}");
    // Without a configuration the hosts cannot be known, and check says why.
    let unconfigured = tributary_cli::scaffold::check(&host_config(), &wasm, None)
        .await
        .unwrap();
    let why = unconfigured.hosts.unwrap_err();
    assert!(
        why.contains("`base_url` (API base URL) is required"),
        "{why}"
    );

    // The skeleton syncs the fake API: full, then incremental with an edit, a deletion and an
    // addition.
    api.upsert("a", "Alpha", Some("first"));
    api.upsert("b", "Beta", None);
    api.upsert("c", "Gamma", Some("third"));
    let t = host_with(
        vec![connector(
            "gen",
            name,
            json!({"base_url": api.base_url(), "page_size": 2}),
        )],
        |_| {},
    )
    .await;
    t.host
        .load_plugin(std::fs::read(&wasm).unwrap(), &wasm.display().to_string())
        .await
        .unwrap();
    let report = t.sync_ok("gen", SyncKind::Full).await;
    assert_eq!(report.counts.indexed, 3);
    let docs = t.documents("gen").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(docs["a"].body.as_deref(), Some("first"));
    assert_eq!(docs["b"].body, None);
    assert_eq!(docs["c"].fields["title"], json!("Gamma"));
    assert_eq!(docs["c"].version.as_deref(), Some("2024-01-01T00:03:00Z"));
    assert_eq!(
        t.state("gen", "cursor").await,
        Some(json!({"version": 1, "state": "3"}))
    );
    api.upsert("b", "Beta", Some("second, at last"));
    api.delete("a");
    api.upsert("d", "Delta", Some("fourth"));
    let report = t.sync_ok("gen", SyncKind::Incremental).await;
    assert_eq!((report.counts.received, report.counts.deleted), (2, 1));
    let docs = t.documents("gen").await;
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["b", "c", "d"]);
    assert_eq!(docs["b"].body.as_deref(), Some("second, at last"));
    assert_eq!(
        t.state("gen", "cursor").await,
        Some(json!({"version": 1, "state": "6"}))
    );
}

#[tokio::test]
async fn rust_skeleton_builds_checks_and_syncs() {
    scaffold_round_trip(Lang::Rust, "gen-rust").await;
}

#[tokio::test]
async fn javascript_skeleton_builds_checks_and_syncs() {
    scaffold_round_trip(Lang::Js, "gen-js").await;
}

#[tokio::test]
async fn python_skeleton_builds_checks_and_syncs() {
    scaffold_round_trip(Lang::Python, "gen-python").await;
}

/// A component for the `world` of the WIT in `wit/` after `edit` (each function a stub), made
/// with wit-component the way the language toolchains make theirs.
fn component_for(edit: impl Fn(&str, &str) -> String, world: &str) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("wit")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(tmp.path().join(&name), edit(&name, &text)).unwrap();
    }
    stub_component(tmp.path(), world)
}

fn stub_component(wit: &Path, world: &str) -> Vec<u8> {
    use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
    use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(wit).unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut module =
        wit_component::dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
    ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

#[tokio::test]
async fn a_plugin_built_for_another_wit_version_is_refused_naming_both_versions() {
    let wasm = component_for(
        |_, text| text.replace("tributary:connector@0.1.0", "tributary:connector@0.2.0"),
        "connector",
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &wasm).unwrap();
    let error = tributary_cli::scaffold::check(&host_config(), file.path(), None)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("was built for tributary:connector@0.2.0")
            && error.contains("this host provides tributary:connector@0.1.0"),
        "{error}"
    );

    // Loading it into a running host is refused the same way, and the host keeps working.
    let t = host_with(vec![], |_| {}).await;
    let error = format!(
        "{:#}",
        t.host
            .load_plugin(wasm, "old-plugin.wasm")
            .await
            .err()
            .expect("refused")
    );
    assert!(
        error.contains("tributary:connector@0.2.0") && error.contains("tributary:connector@0.1.0"),
        "{error}"
    );
    assert!(t.host.plugin("feed").is_ok());

    // A patch release of the same version is compatible.
    let wasm = component_for(
        |_, text| text.replace("tributary:connector@0.1.0", "tributary:connector@0.1.9"),
        "connector",
    );
    std::fs::write(file.path(), &wasm).unwrap();
    let refused = tributary_cli::scaffold::check(&host_config(), file.path(), None)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    // The stub traps in `manifest`, past the version and link checks.
    assert!(refused.contains("`manifest` failed"), "{refused}");
}

#[tokio::test]
async fn an_import_the_host_does_not_offer_is_refused_by_name() {
    let wasm = component_for(
        |name, text| {
            match name {
            "world.wit" => text.replace(
                "    export plugin;",
                "    import secrets;\n    export plugin;\n}\n\ninterface secrets {\n    reveal: func(name: string) -> string;",
            ),
            _ => text.to_string(),
        }
        },
        "connector",
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &wasm).unwrap();
    let error = tributary_cli::scaffold::check(&host_config(), file.path(), None)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("imports an interface that this host does not offer: `tributary:connector/secrets@0.1.0`"),
        "{error}"
    );
    let t = host_with(vec![], |_| {}).await;
    let error = format!(
        "{:#}",
        t.host
            .load_plugin(wasm, "greedy.wasm")
            .await
            .err()
            .expect("refused")
    );
    assert!(
        error.contains("tributary:connector/secrets@0.1.0"),
        "{error}"
    );
}
