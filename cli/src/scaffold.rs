//! `tributary plugin new | build | check`: plugin skeletons in Rust, JavaScript and Python,
//! building them into components, and checking a component without running a sync.
//!
//! - **Rust** skeletons are standalone crates with the guest SDK (`tributary-sdk`, not on
//!   crates.io) vendored into `vendor/tributary-sdk` — the exact sources and WIT this binary was
//!   built with, embedded in it — and referenced by a relative path, so the project builds
//!   anywhere and still builds after it is moved (`--sdk PATH` uses a checkout's SDK instead).
//!   They get the `plugins/Cargo.lock` the SDK is tested with. Built with `cargo build --release
//!   --target wasm32-wasip2`.
//! - **JavaScript** skeletons get `package.json` pinning `@bytecodealliance/jco` and
//!   `@bytecodealliance/componentize-js` (the versions in `plugins/toolchain/`), a copy of the
//!   WIT and `src/index.js`. Built with `jco componentize … --disable http fetch-event`: the host
//!   offers no `wasi:http`, plugins use tributary's own allowlisted `http` import.
//! - **Python** skeletons get `requirements.txt` pinning `componentize-py`, a copy of the WIT and
//!   `app.py`. Built with `componentize-py componentize app`.
//!
//! `build` uses a toolchain installed next to the plugin (`node_modules/`, `.tools/`) or the
//! shared one `plugins/build-foreign.sh` installs (`$TRIBUTARY_TOOLS_DIR`, default
//! `~/.cache/tributary-tools`), and installs the pinned tools next to the plugin when there is
//! neither. The tools' output (progress, warnings) streams to stderr as they run; stdout carries
//! only the result. The component is written to `dist/<name>.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};

use tributary_host::HostConfig;

/// The WIT contract, embedded so skeletons outside a checkout get an exact copy.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("extract.wit", include_str!("../../wit/extract.wit")),
    ("http.wit", include_str!("../../wit/http.wit")),
    ("index.wit", include_str!("../../wit/index.wit")),
    ("log.wit", include_str!("../../wit/log.wit")),
    ("plugin.wit", include_str!("../../wit/plugin.wit")),
    ("storage.wit", include_str!("../../wit/storage.wit")),
    ("types.wit", include_str!("../../wit/types.wit")),
    ("world.wit", include_str!("../../wit/world.wit")),
];

/// The pinned JavaScript toolchain (`plugins/toolchain/package.json`).
pub const JS_TOOLCHAIN: &str = include_str!("../../plugins/toolchain/package.json");
/// The pinned Python toolchain (`plugins/toolchain/requirements.txt`).
pub const PY_TOOLCHAIN: &str = include_str!("../../plugins/toolchain/requirements.txt");

const RUST_CARGO: &str = include_str!("../templates/plugin/rust/Cargo.toml");
/// `plugins/Cargo.lock`: the crate versions the SDK is tested with.
const SDK_LOCK: &str = include_str!("../../plugins/Cargo.lock");
/// The guest SDK's sources, vendored into Rust skeletons (`vendor/tributary-sdk/src`).
pub const SDK_FILES: &[(&str, &str)] = &[
    ("batch.rs", include_str!("../../plugins/sdk/src/batch.rs")),
    (
        "bindings.rs",
        include_str!("../../plugins/sdk/src/bindings.rs"),
    ),
    ("budget.rs", include_str!("../../plugins/sdk/src/budget.rs")),
    (
        "checkpoint.rs",
        include_str!("../../plugins/sdk/src/checkpoint.rs"),
    ),
    ("config.rs", include_str!("../../plugins/sdk/src/config.rs")),
    ("docs.rs", include_str!("../../plugins/sdk/src/docs.rs")),
    (
        "extract.rs",
        include_str!("../../plugins/sdk/src/extract.rs"),
    ),
    ("http.rs", include_str!("../../plugins/sdk/src/http.rs")),
    ("lib.rs", include_str!("../../plugins/sdk/src/lib.rs")),
    ("log.rs", include_str!("../../plugins/sdk/src/log.rs")),
    ("oauth.rs", include_str!("../../plugins/sdk/src/oauth.rs")),
    ("outbox.rs", include_str!("../../plugins/sdk/src/outbox.rs")),
    ("page.rs", include_str!("../../plugins/sdk/src/page.rs")),
    ("schema.rs", include_str!("../../plugins/sdk/src/schema.rs")),
    ("seen.rs", include_str!("../../plugins/sdk/src/seen.rs")),
    ("state.rs", include_str!("../../plugins/sdk/src/state.rs")),
];
/// The vendored SDK's manifest: the workspace's pins (`plugins/Cargo.toml`) written out.
const SDK_CARGO: &str = r#"[package]
name = "tributary-sdk"
description = "Guest SDK for tributary connector plugins (vendored by `tributary plugin new`)"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
wit-bindgen = { version = "0.57", default-features = false, features = ["macros", "realloc", "std", "bitflags"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
"#;
const RUST_LIB: &str = include_str!("../templates/plugin/rust/src/lib.rs");
const JS_INDEX: &str = include_str!("../templates/plugin/js/src/index.js");
const PY_APP: &str = include_str!("../templates/plugin/python/app.py");

/// The language of a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on the guest SDK.
    Rust,
    /// JavaScript, componentized with jco.
    Js,
    /// Python, componentized with componentize-py.
    Python,
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lang::Rust => "Rust",
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
        })
    }
}

/// `tributary plugin …`.
#[derive(clap::Subcommand)]
pub enum PluginCommand {
    /// Write a buildable plugin skeleton.
    New {
        /// Plugin name: lowercase letters, digits and dashes.
        name: String,
        /// Language.
        #[arg(long, value_enum)]
        lang: Lang,
        /// Directory to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A tributary checkout's `plugins/sdk` for Rust plugins (default: the SDK this binary
        /// was built with, vendored into the plugin).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin directory into `dist/<name>.wasm`.
    Build {
        /// Plugin directory (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Check a component without running a sync: WIT world and version, manifest, config
    /// schema, imports, and the hosts it asks for.
    Check {
        /// The component.
        file: PathBuf,
        /// Connector settings (a JSON object) to call `allowed-hosts` with, instead of the
        /// schema's defaults.
        #[arg(long)]
        settings: Option<String>,
    },
    /// Show a plugin's settings: key, type, default, required, sensitive, depends-on, tooltip.
    Describe {
        /// A bundled or loaded plugin's name (`dropbox`, `box`, `feed`, …) or a component file.
        plugin: String,
    },
    /// Sync a plugin into a temporary index and show its documents (nothing is kept — not even
    /// a rotated credential: Box's refresh token is single-use, so try Box with `sync`).
    Run {
        /// A component file or a loaded plugin's name.
        plugin: String,
        /// Connector settings, a JSON object (`plugin describe` lists them).
        #[arg(long)]
        settings: Option<String>,
        /// Also search the synced documents.
        #[arg(long)]
        search: Option<String>,
    },
}

/// Runs a `tributary plugin` command.
pub async fn run(command: PluginCommand, host: HostConfig) -> anyhow::Result<()> {
    match command {
        PluginCommand::New {
            name,
            lang,
            dir,
            sdk,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            new_plugin(&name, lang, &dir, sdk.as_deref())?;
            println!(
                "created {} (a {lang} plugin); build it with `tributary plugin build {}`",
                dir.display(),
                dir.display()
            );
        }
        PluginCommand::Build { dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let wasm = build(&dir, &BuildOptions::default())?;
            precompile(&host, &wasm).await?;
            println!("{}", wasm.display());
        }
        PluginCommand::Describe { plugin } => {
            let target = crate::describe::Target::parse(&plugin);
            let manifest = crate::describe::manifest(&host, target).await?;
            print!("{}", crate::describe::render(&manifest));
        }
        PluginCommand::Run {
            plugin,
            settings,
            search,
        } => {
            let request = crate::plugin_run::RunRequest {
                target: plugin,
                settings: crate::plugin_run::parse_settings(settings.as_deref())?,
                search,
            };
            let outcome = crate::plugin_run::run(&host, &request).await?;
            print!("{}", crate::plugin_run::render(&outcome));
            if outcome.report.status != tributary_host::JobStatus::Succeeded {
                bail!("the sync did not succeed");
            }
        }
        PluginCommand::Check { file, settings } => {
            if !file.exists()
                && let Some(name) = file.to_str()
                && let crate::describe::Target::Name(name) = crate::describe::Target::parse(name)
            {
                bail!(
                    "no file `{name}`; `plugin check` inspects a component file — for a bundled or loaded plugin, `tributary plugin describe {name}` shows its settings"
                );
            }
            let config = match settings {
                Some(text) => {
                    match serde_json::from_str::<Value>(&text).context("--settings is not JSON")? {
                        Value::Object(map) => Some(map),
                        _ => bail!("--settings must be a JSON object"),
                    }
                }
                None => None,
            };
            let report = check(&host, &file, config.as_ref()).await?;
            print!("{}", report.render());
        }
    }
    Ok(())
}

/// Compiles `wasm` into the machine-wide compile cache, so the first `sync` or `run` of it
/// starts at once (a no-op when it is cached already).
pub async fn precompile(host: &HostConfig, wasm: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let runtime = host.engines()?.runtime;
    runtime.on_compile(crate::progress::compile_hook());
    let label = wasm.display().to_string();
    tokio::task::spawn_blocking(move || runtime.compile_labelled(&bytes, &label))
        .await
        .context("compile task failed")?
        .with_context(|| format!("{} is not a valid WebAssembly component", wasm.display()))?;
    Ok(())
}

/// Inspects a component file (see [`tributary_host::plugin::check`]).
pub async fn check(
    host: &HostConfig,
    file: &Path,
    config: Option<&Map<String, Value>>,
) -> anyhow::Result<tributary_host::plugin::check::Inspection> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let engines = host.engines()?;
    engines.runtime.on_compile(crate::progress::compile_hook());
    tributary_host::plugin::check::inspect(&engines, wasm, &file.display().to_string(), config)
        .await
}

fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

fn display_name(name: &str) -> String {
    name.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn write(dir: &Path, rel: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// `@bytecodealliance/…` pins of the JavaScript toolchain.
fn js_pins() -> anyhow::Result<Map<String, Value>> {
    let manifest: Value = serde_json::from_str(JS_TOOLCHAIN)?;
    match manifest.get("devDependencies") {
        Some(Value::Object(pins)) => Ok(pins.clone()),
        _ => bail!("plugins/toolchain/package.json has no devDependencies"),
    }
}

/// Writes a skeleton for plugin `name` into `dir` (which must not exist or be empty).
pub fn new_plugin(name: &str, lang: Lang, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<()> {
    if !valid_plugin_name(name) {
        bail!("plugin name {name:?} must be 1-64 lowercase letters, digits or dashes");
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let display = display_name(name);
    let fill = |t: &str| t.replace("{{name}}", name).replace("{{display}}", &display);
    let build_note = match lang {
        Lang::Rust => {
            "Needs Rust with the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`); \
                       the guest SDK is vendored in `vendor/tributary-sdk`."
        }
        Lang::Js => {
            "Needs Node.js and npm; the first build installs the pinned jco and \
                     componentize-js (`package.json`) into `node_modules/`."
        }
        Lang::Python => {
            "Needs Python 3 with pip; the first build installs the pinned \
                         componentize-py (`requirements.txt`) into `.tools/`."
        }
    };
    let readme = format!(
        "# {display}\n\nA tributary connector plugin ({lang}), generated by `tributary plugin new`. \
         It syncs a paginated JSON API\n(`GET <base_url>/items?limit=&page_token=&since=`, answering \
         `{{\"items\": [{{\"id\", \"title\", \"body\", \"updated_at\"}}], \"next_page_token\"}}`).\n\n\
         {build_note}\n\n\
         ```sh\ntributary plugin build .                      # → dist/{name}.wasm (and precompiled)\n\
         tributary plugin describe dist/{name}.wasm        # its settings\n\
         tributary plugin run dist/{name}.wasm --settings '{{\"base_url\": \"http://127.0.0.1:8080\"}}' --search hello\n```\n\n\
         `plugin run` syncs into a temporary index and lists the documents. To keep it, put\n\
         `dist/{name}.wasm` into the `plugins_dir` of `tributary.toml` and configure a connector with\n\
         `plugin = \"{name}\"`; `tributary --help` lists the rest.\n"
    );
    write(dir, "README.md", &readme)?;
    match lang {
        Lang::Rust => {
            let sdk_text = match sdk {
                Some(path) => path
                    .canonicalize()
                    .with_context(|| format!("--sdk {}", path.display()))?
                    .display()
                    .to_string()
                    .replace('\\', "/"),
                None => {
                    vendor_sdk(&dir.join("vendor/tributary-sdk"))?;
                    "vendor/tributary-sdk".to_string()
                }
            };
            let crate_name = format!("tributary-plugin-{name}");
            write(
                dir,
                "Cargo.toml",
                &fill(RUST_CARGO)
                    .replace("{{crate}}", &crate_name)
                    .replace("{{sdk}}", &sdk_text),
            )?;
            write(dir, "src/lib.rs", &fill(RUST_LIB))?;
            write(dir, ".gitignore", "target/\ndist/\n")?;
            write(dir, "Cargo.lock", SDK_LOCK)?;
        }
        Lang::Js => {
            let package = serde_json::json!({
                "name": format!("tributary-plugin-{name}"),
                "version": "0.1.0",
                "private": true,
                "type": "module",
                "description": format!("{display}: a tributary connector plugin"),
                "scripts": {
                    "build": format!("jco componentize src/index.js --wit wit --world-name connector --disable http fetch-event -o dist/{name}.wasm"),
                },
                "devDependencies": js_pins()?,
            });
            write(
                dir,
                "package.json",
                &(serde_json::to_string_pretty(&package)? + "\n"),
            )?;
            write(dir, "src/index.js", &fill(JS_INDEX))?;
            write_wit(dir)?;
            write(dir, ".gitignore", "node_modules/\ndist/\n")?;
        }
        Lang::Python => {
            write(dir, "app.py", &fill(PY_APP))?;
            write(dir, "requirements.txt", PY_TOOLCHAIN)?;
            write_wit(dir)?;
            write(dir, ".gitignore", ".tools/\ndist/\n__pycache__/\n")?;
        }
    }
    Ok(())
}

/// Writes the embedded SDK (sources, manifest, WIT) into `sdk`.
fn vendor_sdk(sdk: &Path) -> anyhow::Result<()> {
    write(sdk, "Cargo.toml", SDK_CARGO)?;
    for (file, text) in SDK_FILES {
        // In the checkout the WIT is two levels up; in the vendored copy it sits beside.
        let text = if *file == "bindings.rs" {
            text.replace("path: \"../../wit\"", "path: \"wit\"")
        } else {
            text.to_string()
        };
        write(sdk, &format!("src/{file}"), &text)?;
    }
    write_wit(sdk)
}

fn write_wit(dir: &Path) -> anyhow::Result<()> {
    for (file, text) in WIT_FILES {
        write(dir, &format!("wit/{file}"), text)?;
    }
    Ok(())
}

/// Options of [`build`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Cargo target directory for Rust plugins (default: `CARGO_TARGET_DIR` or `<dir>/target`).
    pub target_dir: Option<PathBuf>,
    /// Shared toolchain directory (default: `TRIBUTARY_TOOLS_DIR` or `~/.cache/tributary-tools`).
    pub tools_dir: Option<PathBuf>,
}

/// The shared toolchain directory.
pub fn tools_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TRIBUTARY_TOOLS_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tributary-tools"))
}

/// The language of the plugin in `dir`.
pub fn detect(dir: &Path) -> anyhow::Result<Lang> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Lang::Rust)
    } else if dir.join("package.json").is_file() {
        Ok(Lang::Js)
    } else if dir.join("app.py").is_file() {
        Ok(Lang::Python)
    } else {
        bail!(
            "{} holds no plugin (no Cargo.toml, package.json or app.py)",
            dir.display()
        )
    }
}

/// Runs a build tool with its output streaming to our stderr (stdout stays for the result), as
/// a progress step named `what`.
fn run_tool(mut command: Command, what: &str) -> anyhow::Result<()> {
    // Flags meant for an outer cargo build must not leak into the plugin's build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
    ] {
        command.env_remove(var);
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .stderr(std::io::stderr());
    let step = crate::progress::Step::start_line(what);
    let status = command
        .status()
        .with_context(|| format!("{what}: could not start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); its output is above");
    }
    step.finish(&format!("{what}: done"));
    Ok(())
}

/// The plugin name of a skeleton (from its manifest source), for the output file name.
fn plugin_name(dir: &Path, lang: Lang) -> anyhow::Result<String> {
    let (file, pattern) = match lang {
        Lang::Rust => ("src/lib.rs", "name: \""),
        Lang::Js => ("src/index.js", "name: '"),
        Lang::Python => ("app.py", "name=\""),
    };
    let source = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    let found = source.find(pattern).and_then(|pos| {
        let rest = &source[pos + pattern.len()..];
        rest.find(['"', '\'']).map(|end| rest[..end].to_string())
    });
    match found {
        Some(name) if valid_plugin_name(&name) => Ok(name),
        _ => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| anyhow!("cannot tell the plugin's name in {}", dir.display())),
    }
}

/// Builds the plugin in `dir` into `dir/dist/<name>.wasm` and returns that path.
pub fn build(dir: &Path, options: &BuildOptions) -> anyhow::Result<PathBuf> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("plugin directory {}", dir.display()))?;
    let lang = detect(&dir)?;
    let name = plugin_name(&dir, lang)?;
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let out = dist.join(format!("{name}.wasm"));
    let tools = options.tools_dir.clone().or_else(tools_dir);
    match lang {
        Lang::Rust => build_rust(&dir, &out, options)?,
        Lang::Js => {
            let local = dir.join("node_modules/.bin/jco");
            let jco = match tools.as_ref().map(|t| t.join("bin/jco")) {
                _ if local.exists() => local,
                Some(shared) if shared.exists() => shared,
                _ => {
                    let mut npm = Command::new("npm");
                    npm.args(["install", "--no-audit", "--no-fund"])
                        .current_dir(&dir);
                    run_tool(npm, "npm install (jco, componentize-js)")?;
                    local
                }
            };
            let mut jco_cmd = Command::new(jco);
            jco_cmd
                .args(["componentize", "src/index.js", "--wit", "wit"])
                .args([
                    "--world-name",
                    "connector",
                    "--disable",
                    "http",
                    "fetch-event",
                ])
                .arg("-o")
                .arg(&out)
                .current_dir(&dir);
            run_tool(jco_cmd, "jco componentize")?;
        }
        Lang::Python => {
            let local = dir.join(".tools");
            let (program, pythonpath) = match tools.as_ref().map(|t| t.join("bin/componentize-py"))
            {
                _ if local.join("bin/componentize-py").exists() => {
                    (local.join("bin/componentize-py"), Some(local))
                }
                Some(shared) if shared.exists() => (shared, None),
                _ => {
                    let mut pip = Command::new("python3");
                    pip.args(["-m", "pip", "install", "--target"])
                        .arg(&local)
                        .args(["-r", "requirements.txt"])
                        .current_dir(&dir);
                    run_tool(pip, "pip install componentize-py")?;
                    (local.join("bin/componentize-py"), Some(local))
                }
            };
            let mut cmd = Command::new(program);
            if let Some(path) = pythonpath {
                cmd.env("PYTHONPATH", path);
            }
            cmd.env("PYTHONDONTWRITEBYTECODE", "1")
                .args(["-d", "wit", "-w", "connector", "componentize", "app", "-o"])
                .arg(&out)
                .current_dir(&dir);
            run_tool(cmd, "componentize-py componentize")?;
        }
    }
    Ok(out)
}

fn build_rust(dir: &Path, out: &Path, options: &BuildOptions) -> anyhow::Result<()> {
    let target_dir = options
        .target_dir
        .clone()
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| dir.join("target"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    let crate_name = manifest
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("name = \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .ok_or_else(|| anyhow!("{}/Cargo.toml has no package name", dir.display()))?
        .replace('-', "_");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(dir);
    run_tool(cmd, "cargo build --target wasm32-wasip2")?;
    let built = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"));
    std::fs::copy(&built, out)
        .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn embedded_wit_is_the_whole_contract() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let embedded: Vec<&str> = WIT_FILES.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, embedded, "update scaffold::WIT_FILES");
        assert!(WIT_FILES.iter().any(|(_, t)| t.contains(&format!(
            "package tributary:connector@{};",
            tributary_host::WIT_VERSION
        ))));
    }

    #[test]
    fn the_vendored_sdk_is_the_whole_sdk() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk/src");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let embedded: Vec<&str> = SDK_FILES.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, embedded, "update scaffold::SDK_FILES");
        // The bindings' WIT path is the one `vendor_sdk` rewrites.
        let bindings = SDK_FILES
            .iter()
            .find(|(f, _)| *f == "bindings.rs")
            .unwrap()
            .1;
        assert!(bindings.contains("path: \"../../wit\""));
        // The vendored manifest pins what the SDK's workspace pins.
        let workspace = include_str!("../../plugins/Cargo.toml");
        assert!(workspace.contains("wit-bindgen = { version = \"0.57\""));
        assert!(SDK_CARGO.contains("wit-bindgen = { version = \"0.57\""));
    }

    #[test]
    fn names_and_pins() {
        assert!(valid_plugin_name("my-source2"));
        assert!(!valid_plugin_name("My_Source"));
        assert!(!valid_plugin_name("-x"));
        assert_eq!(display_name("my-source"), "My Source");
        let pins = js_pins().unwrap();
        assert!(pins.contains_key("@bytecodealliance/jco"));
        assert!(pins.contains_key("@bytecodealliance/componentize-js"));
        assert!(PY_TOOLCHAIN.contains("componentize-py=="));
    }

    #[test]
    fn skeletons_are_written_with_the_name_filled_in() {
        let tmp = tempfile::tempdir().unwrap();
        for (lang, file) in [
            (Lang::Rust, "src/lib.rs"),
            (Lang::Js, "src/index.js"),
            (Lang::Python, "app.py"),
        ] {
            let dir = tmp.path().join(format!("{lang:?}"));
            new_plugin("acme-news", lang, &dir, None).unwrap();
            let source = std::fs::read_to_string(dir.join(file)).unwrap();
            assert!(!source.contains("{{"), "{lang:?}");
            assert_eq!(detect(&dir).unwrap(), lang);
            assert_eq!(plugin_name(&dir, lang).unwrap(), "acme-news");
            assert!(
                new_plugin("acme-news", lang, &dir, None).is_err(),
                "not empty"
            );
        }
        let cargo = std::fs::read_to_string(tmp.path().join("Rust/Cargo.toml")).unwrap();
        // A relative path into the project: it builds after the directory moves.
        assert!(
            cargo.contains("tributary-sdk = { path = \"vendor/tributary-sdk\" }"),
            "{cargo}"
        );
        assert!(!cargo.contains(env!("CARGO_MANIFEST_DIR")), "{cargo}");
        let sdk = tmp.path().join("Rust/vendor/tributary-sdk");
        let bindings = std::fs::read_to_string(sdk.join("src/bindings.rs")).unwrap();
        assert!(bindings.contains("path: \"wit\""), "{bindings}");
        assert!(sdk.join("wit/world.wit").is_file());
        assert!(tmp.path().join("Rust/Cargo.lock").is_file());
        assert!(tmp.path().join("Js/wit/world.wit").exists());
        assert!(new_plugin("Bad", Lang::Js, &tmp.path().join("bad"), None).is_err());
    }
}
