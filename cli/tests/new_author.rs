//! The new plugin author's path through the real binary, in each language: `plugin new` →
//! `plugin build` (its tools' output and progress lines stream; the component is precompiled
//! into the machine-wide cache) → `plugin describe` → `plugin run` against a local fake API,
//! which finds the documents and starts without compiling again. And the pieces around it:
//! describing a bundled plugin, `plugin check <name>` pointing at `describe`, `connectors`
//! showing the settings of an incomplete connector, `search` loading no plugin and creating
//! nothing, and `auth dropbox|box` against the fake OAuth endpoints.
//!
//! Every command runs with `TRIBUTARY_PROGRESS=plain` (progress as lines on stderr) and a
//! compile cache of the test's own (`TRIBUTARY_CACHE_DIR`). The JavaScript and Python cases use
//! the pinned toolchains `plugins/build-foreign.sh --tools` installs outside the clone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use tributary_fakes::feed::FakeFeed;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

/// Runs the binary in `cwd` with a compile cache `cache`; the output, checked for success.
fn tributary_in(cwd: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .current_dir(cwd)
        .env("TRIBUTARY_PROGRESS", "plain")
        .env("TRIBUTARY_CACHE_DIR", cache)
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target"),
        )
        .env_remove("TRIBUTARY_CONFIG")
        .env_remove("TRIBUTARY_DATA_DIR")
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: &Output, what: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

fn install_tools() {
    let status = Command::new("bash")
        .arg(repo_root().join("plugins/build-foreign.sh"))
        .arg("--tools")
        .status()
        .unwrap();
    assert!(status.success(), "plugins/build-foreign.sh --tools");
}

async fn new_author_path(lang: &str, name: &str) {
    if lang != "rust" {
        install_tools();
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    // A fresh compile cache: the build's precompile is a first compile, and shows it.
    let cache = tmp.path().join("cache");
    let first = tmp.path().join("first");
    std::fs::create_dir(&first).unwrap();
    let (stdout, _) = ok(
        &tributary_in(&first, &cache, &["plugin", "new", name, "--lang", lang]),
        "plugin new",
    );
    let language = match lang {
        "rust" => "Rust",
        "js" => "JavaScript",
        _ => "Python",
    };
    assert!(
        stdout.contains(&format!("created {name} (a {language} plugin)")),
        "{stdout}"
    );
    // The project builds after it moves (no absolute paths to the machine that generated it).
    let moved = tmp.path().join("elsewhere");
    std::fs::create_dir(&moved).unwrap();
    std::fs::rename(first.join(name), moved.join(name)).unwrap();
    let dir = moved.join(name);
    if lang == "rust" {
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            cargo.contains("tributary-sdk = { path = \"vendor/tributary-sdk\" }"),
            "{cargo}"
        );
    }
    if lang == "rust" {
        // A compiler warning reaches the author (the tool's output streams).
        let lib = dir.join("src/lib.rs");
        let source = std::fs::read_to_string(&lib).unwrap();
        std::fs::write(&lib, source + "\nfn never_called_helper() {}\n").unwrap();
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        !readme.contains("tributary_fakes") && readme.contains("tributary plugin run"),
        "{readme}"
    );

    let (stdout, stderr) = ok(
        &tributary_in(&moved, &cache, &["plugin", "build", name]),
        "plugin build",
    );
    eprintln!("plugin build's stderr:\n{stderr}");
    let wasm = PathBuf::from(stdout.trim().lines().last().unwrap());
    assert_eq!(
        wasm,
        dir.canonicalize()
            .unwrap()
            .join(format!("dist/{name}.wasm"))
    );
    let tool = match lang {
        "rust" => "… cargo build",
        "js" => "… jco componentize",
        _ => "… componentize-py componentize",
    };
    assert!(
        stderr.contains(tool),
        "no `{tool}` progress line in:\n{stderr}"
    );
    if lang == "rust" {
        assert!(
            stderr.contains("warning: function `never_called_helper` is never used"),
            "{stderr}"
        );
    }
    let compiling = format!("… compiling {name}.wasm (");
    assert!(
        stderr.contains(&compiling) && stderr.contains("first load only"),
        "no first-compile progress line in:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("✓ compiled {name}.wasm")),
        "{stderr}"
    );

    let wasm_arg = wasm.to_str().unwrap();
    let (stdout, stderr) = ok(
        &tributary_in(&moved, &cache, &["plugin", "describe", wasm_arg]),
        "plugin describe",
    );
    assert!(!stderr.contains("compiling"), "precompiled: {stderr}");
    let header = stdout.lines().find(|l| l.starts_with("KEY")).unwrap_or("");
    for column in [
        "TYPE",
        "DEFAULT",
        "REQUIRED",
        "SENSITIVE",
        "DEPENDS-ON",
        "TOOLTIP",
    ] {
        assert!(header.contains(column), "{stdout}");
    }
    let row = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no `{key}` row in:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(row("base_url").starts_with("base_url text yes"), "{stdout}");
    assert!(
        row("api_token").starts_with("api_token text yes"),
        "{stdout}"
    );
    assert!(
        row("page_size").starts_with("page_size integer"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("(generated by tributary plugin new) ("),
        "{stdout}"
    );

    let api = FakeFeed::start(None).await.unwrap();
    api.upsert("a", "Alpha", Some("first of the items"));
    api.upsert("b", "Beta", None);
    api.upsert("c", "Gamma", Some("third"));
    let settings = format!("{{\"base_url\": \"{}\", \"page_size\": 2}}", api.base_url());
    let run = {
        let (moved, cache) = (moved.clone(), cache.clone());
        let args: Vec<String> = [
            "plugin",
            "run",
            wasm_arg,
            "--settings",
            &settings,
            "--search",
            "Alpha",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tributary_in(&moved, &cache, &args)
        })
        .await
        .unwrap()
    };
    let (stdout, stderr) = ok(&run, "plugin run");
    let first_document = started.elapsed();
    assert!(
        !stderr.contains("compiling"),
        "the build precompiled: {stderr}"
    );
    assert!(
        stderr.contains(&format!("… full sync of {name}")),
        "{stderr}"
    );
    assert!(stdout.contains("3 document(s)"), "{stdout}");
    for line in [
        "  a  Alpha  first of the items",
        "  b  Beta",
        "  c  Gamma  third",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{stdout}"
        );
    }
    assert!(stdout.contains("search: 1 match(es)"), "{stdout}");
    assert!(stdout.contains("Alpha  [a]"), "{stdout}");
    // Nothing was left behind in the working directory.
    assert_eq!(std::fs::read_dir(&moved).unwrap().count(), 1);
    eprintln!(
        "new-author path ({lang}): plugin new → first document in {:.1} s",
        first_document.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_rust_author_gets_to_documents() {
    new_author_path("rust", "my-src-rust").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_javascript_author_gets_to_documents() {
    new_author_path("js", "my-src-js").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_python_author_gets_to_documents() {
    new_author_path("python", "my-src-py").await;
}

#[test]
fn bundled_plugins_are_described_and_check_points_there() {
    let tmp = tempfile::tempdir().unwrap();
    let (stdout, _) = ok(
        &tributary_in(tmp.path(), &shared_cache(), &["plugin", "describe", "box"]),
        "plugin describe box",
    );
    let row = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no `{key}` row in:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Required and sensitive.
    assert_eq!(
        row("client_secret"),
        "client_secret text yes yes Client Secret"
    );
    assert!(
        row("refresh_token").contains("is_enterprise=\"box_free\""),
        "{stdout}"
    );
    assert!(
        row("enterprise_id").contains("is_enterprise=\"box_enterprise\""),
        "{stdout}"
    );
    assert!(
        row("refresh_token").contains("Box rotates refresh tokens"),
        "{stdout}"
    );
    // Reading a bundled plugin's settings creates no data directory.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    let output = tributary_in(tmp.path(), &shared_cache(), &["plugin", "check", "dropbox"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("tributary plugin describe dropbox"),
        "{stderr}"
    );
}

#[test]
fn an_incomplete_connector_is_shown_the_settings_it_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("tributary.toml"),
        "data_dir = \"data\"\n[[connectors]]\nid = \"docs\"\nplugin = \"dropbox\"\n[connectors.config]\napp_key = \"k\"\n",
    )
    .unwrap();
    let output = tributary_in(tmp.path(), &shared_cache(), &["connectors"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("`app_secret`"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("refresh_token ")),
        "no settings table in:\n{stdout}"
    );
    // A check reads: no data directory appears.
    assert!(!tmp.path().join("data").exists());
}

#[test]
fn search_and_jobs_load_no_plugin_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("plugins")).unwrap();
    // A plugin that cannot load: any command that loads plugins logs it.
    std::fs::write(tmp.path().join("plugins/broken.wasm"), b"not wasm").unwrap();
    std::fs::write(
        tmp.path().join("tributary.toml"),
        "data_dir = \"data\"\nplugins_dir = \"plugins\"\n[[connectors]]\nid = \"docs\"\nplugin = \"feed\"\n",
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    for args in [&["search", "anything"][..], &["jobs", "docs"][..]] {
        let output = tributary_in(tmp.path(), &cache, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("broken.wasm"),
            "{args:?} loaded plugins:\n{stderr}"
        );
        assert!(!stderr.contains("compiling"), "{args:?}: {stderr}");
    }
    assert!(!tmp.path().join("data").exists());
    assert!(!cache.exists(), "nothing was compiled");
    // The loading commands do load them (the control for the assertions above).
    let output = tributary_in(tmp.path(), &cache, &["plugins"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.wasm"), "{stderr}");
}

/// Runs `tributary auth <provider> …` against a fake, consents by following the printed URL
/// (the fake redirects to the command's loopback listener), and returns the command's output.
async fn auth_flow(dir: &Path, provider: &str, args: Vec<String>) -> Output {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .current_dir(dir)
        .env("TRIBUTARY_CACHE_DIR", shared_cache())
        .env_remove("TRIBUTARY_CONFIG")
        .arg("auth")
        .arg(provider)
        .args(["--port", "0", "--timeout-secs", "60"])
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).await.unwrap() > 0,
            "no URL printed:\n{seen}"
        );
        seen.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("http://") {
            break format!("http://{url}");
        }
    };
    // The "browser": the fake consents and redirects to the loopback listener.
    let page = reqwest::get(&url).await.unwrap();
    assert!(page.status().is_success(), "{url}: {}", page.status());
    assert!(page.text().await.unwrap().contains("Signed in"));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .await
        .unwrap();
    let status = child.wait().await.unwrap();
    Output {
        status,
        stdout,
        stderr: (seen + &rest).into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_dropbox_gets_an_offline_refresh_token_and_adds_the_connector() {
    let fake = tributary_fakes::dropbox::FakeDropbox::start(Default::default())
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let output = auth_flow(
        tmp.path(),
        "dropbox",
        vec![
            "--client-id".into(),
            fake.app_key().into(),
            "--client-secret".into(),
            fake.app_secret().into(),
            "--authorize-url".into(),
            fake.authorize_url(),
            "--token-url".into(),
            fake.token_url(),
            "--connector".into(),
            "team-dropbox".into(),
        ],
    )
    .await;
    let (stdout, stderr) = ok(&output, "auth dropbox");
    assert!(stderr.contains("token_access_type=offline"), "{stderr}");
    assert!(
        stderr.contains("granted scopes: account_info.read"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(fake.app_secret()),
        "the secret is never printed: {stderr}"
    );
    assert!(
        stdout.contains("connector `team-dropbox` added"),
        "{stdout}"
    );
    let config = std::fs::read_to_string(tmp.path().join("tributary.toml")).unwrap();
    assert!(
        config.contains(&format!("refresh_token = \"{}\"", fake.refresh_token())),
        "{config}"
    );
    assert!(config.contains("plugin = \"dropbox\""), "{config}");
    // A second run would duplicate the connector: refused before any consent.
    let output = tributary_in(
        tmp.path(),
        &shared_cache(),
        &[
            "auth",
            "dropbox",
            "--client-id",
            "k",
            "--client-secret",
            "s",
            "--connector",
            "team-dropbox",
            "--port",
            "0",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("already configures connector `team-dropbox`")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_box_exchanges_the_code_for_a_refresh_token_the_plugin_can_use() {
    let fake = tributary_fakes::boxapi::FakeBox::start(tributary_fakes::boxapi::Tree::empty())
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let output = auth_flow(
        tmp.path(),
        "box",
        vec![
            "--client-id".into(),
            fake.client_id(),
            "--client-secret".into(),
            fake.client_secret(),
            "--authorize-url".into(),
            fake.authorize_url(),
            "--token-url".into(),
            fake.token_url(),
        ],
    )
    .await;
    let (stdout, _) = ok(&output, "auth box");
    // The printed settings carry the token the fake now honours (Box rotates them).
    assert_eq!(fake.grants().authorization_code, 1);
    assert!(
        stdout.contains(&format!("refresh_token = \"{}\"", fake.refresh_token())),
        "{stdout}"
    );
    assert!(stdout.contains("is_enterprise = \"box_free\""), "{stdout}");
    // A code is good once.
    assert_ne!(fake.authorization_code(), "fake-box-auth-code");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_sync_reports_its_error_once_with_the_url_as_sent() {
    let api = FakeFeed::start(None).await.unwrap();
    api.upsert("a", "Alpha", None);
    api.faults()
        .add("/items", 10, tributary_fakes::Fault::server_error(503));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("tributary.toml"),
        format!(
            "data_dir = \"data\"\n[[connectors]]\nid = \"docs\"\nplugin = \"feed\"\n[connectors.config]\nbase_url = \"{}/Feed\"\nretry_count = 0\n",
            api.base_url()
        ),
    )
    .unwrap();
    let dir = tmp.path().to_path_buf();
    let output =
        tokio::task::spawn_blocking(move || tributary_in(&dir, &shared_cache(), &["sync", "docs"]))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let all = format!("{stdout}{stderr}");
    // The SDK's description of the request: method and URL as sent (the path's case kept).
    let url = format!("GET {}/Feed/items", api.base_url());
    assert_eq!(
        all.matches(&url).count(),
        1,
        "the error, once, with the URL's case kept:\n{all}"
    );
    assert!(!all.contains(&url.to_uppercase()), "{all}");
    assert!(!stderr.contains("WARN"), "no log line repeats it: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundled_plugin_runs_by_name_and_leaves_nothing_behind() {
    let api = FakeFeed::start(None).await.unwrap();
    api.upsert("n1", "Northern lights", Some("seen from the ferry"));
    let tmp = tempfile::tempdir().unwrap();
    let settings = format!("{{\"base_url\": \"{}\"}}", api.base_url());
    let dir = tmp.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        tributary_in(
            &dir,
            &shared_cache(),
            &[
                "plugin",
                "run",
                "feed",
                "--settings",
                &settings,
                "--search",
                "ferry",
            ],
        )
    })
    .await
    .unwrap();
    let (stdout, _) = ok(&output, "plugin run feed");
    assert!(stdout.contains("1 document(s)"), "{stdout}");
    assert!(stdout.contains("search: 1 match(es)"), "{stdout}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // Settings the schema refuses are named, and the run fails.
    let dir = tmp.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        tributary_in(
            &dir,
            &shared_cache(),
            &["plugin", "run", "feed", "--settings", "{}"],
        )
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let all = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(all.contains("`base_url`"), "{all}");
}
