//! Memory and CPU of a real full sync into the embedded index, against fake servers with the data
//! shapes of Elastic's functional-test fixtures, next to the server's own ceiling.
//!
//! ```sh
//! cargo bench -p tributary-e2e --bench sync_memory                      # both mixes, full size
//! cargo bench -p tributary-e2e --bench sync_memory -- --scale 0.1 box   # a tenth, Box only
//! cargo bench -p tributary-e2e --bench sync_memory -- tenants           # 100 Box syncs at once
//! cargo bench -p tributary-e2e --bench sync_memory -- listing           # 1,000,000 entries
//! ```
//!
//! The mixes (`--scale` multiplies the counts; file sizes never change):
//! - **Dropbox**: 8,000 folders with one HTML file each plus 1,000 files shared with the user
//!   (17,000 documents); HTML sizes 103 KB / 1.0 MB / 8.2 MB / 25.6 MB weighted 58 / 30 / 10 / 2 %
//!   (the plugin skips files over its 10 MiB `max_file_size`), each page shaped like the
//!   fixtures' (1 KB of text, the rest 100 KiB single-quoted `<img src>` values);
//!   `concurrent_downloads` 100.
//! - **Box**: 50 folders × 50 text files of 1 MB (2,550 documents), each 1,000,000 random ASCII
//!   letters as in the fixtures; `concurrent_downloads` 15.
//! - **Tenants**: `--tenants` (100) tenants, each with its own Box account holding the Box mix
//!   at `--tenant-scale` (0.02: one folder of 50 files, 51 documents), all synced at once by the
//!   service (`tributary serve`'s dispatcher, one job per tenant, `concurrent_downloads` 15
//!   each); the ceiling is every account's plain client running at once.
//! - **Listing**: a Dropbox account of `--entries` (1,000,000) files in folders of 1,000, each
//!   over the plugin's `max_file_size` (listed and indexed, never downloaded): a first full sync
//!   (`listing-1`, every entry indexed) and a second one in a new process (`listing-2`, every
//!   entry unchanged: the index's versions and the ids seen are what it holds); the ceiling is
//!   the same listing by a plain client. The child raises `[storage] max_keys` to fit the
//!   plugin's path → id entries, as an operator of such an account would.
//!
//! The **ceiling** is the same request mix (token, listing pages, shared-link look-ups, every
//! download) sent by a plain HTTP client at the same concurrency to the same fake server in the
//! same run, bodies read and dropped: no service can sync faster than that. Server and client
//! share the machine's cores, so each row also prints the CPU seconds of both sides: this
//! process's (the fake server's, and the plain client's during the ceiling) next to the sync's.
//!
//! The **disk floor** is how long this machine's disk takes to write as many bytes as the sync's
//! index holds, in the same directory, the fastest way we found (16 MiB `O_DIRECT` writes, two in
//! flight, one `fdatasync`; `fio` found nothing faster here). The ceiling writes nothing, while a
//! sync stores every body it indexes, so where the floor exceeds the ceiling (the Box mix: 2.5 GB
//! of bodies) the floor, not the sync's code, bounds the ratio; the row prints that bound.
//!
//! The **sync** runs in a child process (this binary again) so that its peak RSS (`VmHWM`)
//! and CPU time (`getrusage`) are the sync's alone, not the fake server's. Plugins come from a
//! compile cache the parent fills first, so compiling them is not counted; "RSS after open" is the
//! child's resident memory once the host is open (engine, plugins, index), before the sync.
//!
//! `TRIBUTARY_SYNC_MEMORY_PIPELINE` may hold `[pipeline]` settings as JSON for the sync, e.g.
//! `{"max_download_bytes_in_flight": 16777216, "batch_bytes": 2097152}`, and
//! `TRIBUTARY_SYNC_MEMORY_WRITER_MEMORY` the `[sink] writer_memory` in bytes, to size the budgets.
//! `TRIBUTARY_SYNC_MEMORY_WRAP` names a program the child runs under (a profiler such as
//! `heaptrack`); its figures then include the profiler's own cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tributary_fakes::boxapi::{FakeBox, Tree as BoxTree};
use tributary_fakes::dropbox::{FakeDropbox, Tree as DropboxTree};
use tributary_host::{ConnectorSpec, Host, HostConfig, JobStatus, SyncKind, SyncOptions};

/// The environment variable that makes this binary the sync child; its value is a spec file.
const CHILD: &str = "TRIBUTARY_SYNC_MEMORY_CHILD";
/// The Dropbox plugin's default `max_file_size`: larger files are listed, not downloaded.
const DROPBOX_MAX_FILE: u64 = 10 * 1024 * 1024;
const DROPBOX_CONCURRENCY: usize = 100;
const BOX_CONCURRENCY: usize = 15;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mix {
    Dropbox,
    Box,
    Tenants,
    Listing,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Dropbox => "dropbox",
            Mix::Box => "box",
            Mix::Tenants => "tenants",
            Mix::Listing => "listing",
        }
    }
}

/// What the plain client did.
struct Ceiling {
    wall: Duration,
    downloads: u64,
    bytes: u64,
    /// CPU of this process meanwhile: the fake server and the plain client.
    cpu: Duration,
}

/// What the child reported.
struct Measured {
    sync: Duration,
    received: u64,
    extracted: u64,
    cpu: Duration,
    peak_rss: u64,
    peak_anon: u64,
    rss_open: u64,
    /// Jobs run and jobs that did not succeed (one per tenant; one in the single mixes).
    jobs: u64,
    failed: u64,
    /// CPU of this process (the fake servers) while the child synced.
    server_cpu: Duration,
    /// Index segments and bytes on disk after the sync (all indexes together).
    segments: u64,
    index_bytes: u64,
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        // As `tributary`'s main does, before any thread starts.
        tributary_host::allocator::tune();
        child(Path::new(&spec));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scale: f64 = args
        .iter()
        .position(|a| a == "--scale")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let number = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse::<f64>().ok())
    };
    let tenants = number("--tenants").map_or(100, |n| n as usize);
    let tenant_scale = number("--tenant-scale").unwrap_or(0.02);
    let entries = number("--entries").map_or(1_000_000, |n| n as usize);
    let picked: Vec<Mix> = [Mix::Dropbox, Mix::Box, Mix::Tenants, Mix::Listing]
        .into_iter()
        .filter(|m| args.iter().any(|a| a == m.name()))
        .collect();
    let mixes = if picked.is_empty() {
        vec![Mix::Dropbox, Mix::Box]
    } else {
        picked
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("compile-cache");
    // Fill the compile cache once, so the child loads the plugins instead of compiling them.
    runtime.block_on(async {
        let host = Host::open(HostConfig {
            data_dir: work.path().join("warm"),
            cache_dir: Some(cache.clone()),
            ..HostConfig::default()
        })
        .await
        .unwrap();
        drop(host);
    });
    let mut rows = Vec::new();
    for mix in mixes {
        eprintln!("sync_memory: {} mix at scale {scale}…", mix.name());
        match mix {
            Mix::Tenants => {
                rows.push(runtime.block_on(run_tenants(tenants, tenant_scale, work.path(), &cache)))
            }
            Mix::Listing => {
                rows.extend(runtime.block_on(run_listing(entries, work.path(), &cache)))
            }
            _ => rows.push(runtime.block_on(run_mix(mix, scale, work.path(), &cache))),
        }
    }
    println!(
        "\n{:<8} {:>6} {:>6} {:>8} {:>9} {:>8} {:>6} {:>8} {:>7} {:>8} {:>9} {:>9} {:>9}",
        "mix",
        "docs",
        "dl",
        "MB",
        "ceiling s",
        "sync s",
        "ratio",
        "docs/s",
        "CPU s",
        "CPU ms/d",
        "peak RSS",
        "peak anon",
        "RSS open"
    );
    for (label, c, m) in &rows {
        println!(
            "{:<8} {:>6} {:>6} {:>8.0} {:>9.2} {:>8.2} {:>5.0}% {:>8.0} {:>7.2} {:>8.3} {:>6.0} MB {:>6.0} MB {:>6.0} MB",
            label,
            m.received,
            c.downloads,
            c.bytes as f64 / 1e6,
            c.wall.as_secs_f64(),
            m.sync.as_secs_f64(),
            100.0 * c.wall.as_secs_f64() / m.sync.as_secs_f64().max(1e-9),
            m.received as f64 / m.sync.as_secs_f64().max(1e-9),
            m.cpu.as_secs_f64(),
            1e3 * m.cpu.as_secs_f64() / (m.received.max(1) as f64),
            m.peak_rss as f64 / 1048576.0,
            m.peak_anon as f64 / 1048576.0,
            m.rss_open as f64 / 1048576.0,
        );
        println!(
            "{:<8} index after the sync: {} segments, {:.0} MB",
            "",
            m.segments,
            m.index_bytes as f64 / 1e6
        );
        if let Some((floor, cpu)) = disk_floor(work.path(), m.index_bytes) {
            let best = 100.0 * (c.wall.as_secs_f64() / floor.as_secs_f64()).min(1.0);
            println!(
                "{:<8} disk floor: writing {:.0} MB here takes {:.2} s and {:.2} CPU s ({DISK_WRITE} MiB O_DIRECT writes, two in flight, then fdatasync): a sync that keeps what it indexed reaches {best:.0}% of the ceiling at most",
                "",
                m.index_bytes as f64 / 1e6,
                floor.as_secs_f64(),
                cpu.as_secs_f64(),
            );
        }
        println!(
            "{:<8} CPU s on both sides: ceiling {:.2} (server and plain client), sync {:.2} (server {:.2}, sync {:.2})",
            "",
            c.cpu.as_secs_f64(),
            (m.server_cpu + m.cpu).as_secs_f64(),
            m.server_cpu.as_secs_f64(),
            m.cpu.as_secs_f64(),
        );
        if m.jobs > 1 {
            println!(
                "{:<8} {} jobs at once, {} not succeeded",
                "", m.jobs, m.failed
            );
        }
        assert_eq!(m.failed, 0, "{label}: {} jobs failed", m.failed);
        assert!(
            m.extracted >= c.downloads,
            "{label}: {} bodies extracted, {} downloaded by the plain client",
            m.extracted,
            c.downloads
        );
    }
    println!(
        "(scale {scale}; ratio = ceiling / sync; CPU, peak RSS (VmHWM, mapped index files included), peak anonymous RSS (sampled every 20 ms) and RSS after open are the sync process's)"
    );
}

/// MiB per write of [`disk_floor`] (the sync writes 1 MiB at a time: memory, not speed, sets
/// that).
const DISK_WRITE: usize = 16;

/// How long this machine takes to put `bytes` on the disk under `dir` at its fastest (large
/// `O_DIRECT` writes, two in flight, one `fdatasync`): the plain client's ceiling never writes,
/// while a sync must store every body it indexes, so no sync beats the ceiling by more than this
/// allows. Returns the time and this process's CPU meanwhile (its servers are idle then); `None`
/// where `O_DIRECT` is refused.
fn disk_floor(dir: &Path, bytes: u64) -> Option<(Duration, Duration)> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    const ALIGN: usize = 4096;
    let block = DISK_WRITE << 20;
    let path = dir.join("disk-floor");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .ok()?;
    let blocks = bytes.div_ceil(block as u64);
    // Allocated and touched before the clock starts: only the writes are timed.
    let buffers: Vec<Vec<u8>> = (0..2).map(|_| vec![0x5a_u8; block + ALIGN]).collect();
    let cpu = usage().1;
    let started = Instant::now();
    let written = std::thread::scope(|scope| {
        let writers: Vec<_> = (0u64..)
            .zip(&buffers)
            .map(|(first, buffer)| {
                let file = &file;
                scope.spawn(move || {
                    let start = buffer.as_ptr().align_offset(ALIGN);
                    (first..blocks).step_by(2).try_for_each(|b| {
                        let at = b * block as u64;
                        // the last write as long as the bytes left, in whole aligned pages
                        let len = (bytes - at).min(block as u64) as usize;
                        let len = len.next_multiple_of(ALIGN);
                        file.write_all_at(&buffer[start..start + len], at)
                    })
                })
            })
            .collect();
        writers
            .into_iter()
            .all(|w| w.join().is_ok_and(|r| r.is_ok()))
    });
    let synced = written && file.sync_data().is_ok();
    let took = started.elapsed();
    let cpu = usage().1 - cpu;
    drop(file);
    let _ = std::fs::remove_file(&path);
    synced.then_some((took, cpu))
}

fn scaled(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(1)
}

/// The Dropbox plugin's configuration for `fake`, at the mix's concurrency.
fn dropbox_config(fake: &FakeDropbox) -> Value {
    json!({
        "app_key": fake.app_key(),
        "app_secret": fake.app_secret(),
        "refresh_token": fake.refresh_token(),
        "api_base_url": fake.api_url(),
        "content_base_url": fake.api_url(),
        "oauth_base_url": fake.base_url(),
        "concurrent_downloads": DROPBOX_CONCURRENCY,
    })
}

async fn run_mix(mix: Mix, scale: f64, work: &Path, cache: &Path) -> (String, Ceiling, Measured) {
    match mix {
        Mix::Dropbox => {
            let fake = dropbox_fake(scale).await;
            let ceiling = dropbox_ceiling(&fake, DROPBOX_CONCURRENCY).await;
            let config = dropbox_config(&fake);
            let measured = spawn_sync(mix, "dropbox", config, work, cache);
            (mix.name().into(), ceiling, measured)
        }
        Mix::Box => {
            let fake = box_fake(scale).await;
            let ceiling = box_ceiling(&fake, BOX_CONCURRENCY).await;
            // The ceiling's token exchange rotated the refresh token.
            let config = json!({
                "client_id": fake.client_id(),
                "client_secret": fake.client_secret(),
                "refresh_token": fake.reauthorize(),
                "api_base_url": fake.base_url(),
                "concurrent_downloads": BOX_CONCURRENCY,
            });
            let measured = spawn_sync(mix, "box", config, work, cache);
            (mix.name().into(), ceiling, measured)
        }
        Mix::Tenants | Mix::Listing => unreachable!("run_tenants, run_listing"),
    }
}

/// `tenants` Box accounts, each with the Box mix at `scale`, synced at once by the service.
async fn run_tenants(
    tenants: usize,
    scale: f64,
    work: &Path,
    cache: &Path,
) -> (String, Ceiling, Measured) {
    let mut fakes = Vec::new();
    for _ in 0..tenants {
        fakes.push(box_fake(scale).await);
    }
    let started = Instant::now();
    let cpu = usage().1;
    let ceilings =
        futures::future::join_all(fakes.iter().map(|f| box_ceiling(f, BOX_CONCURRENCY))).await;
    let ceiling = Ceiling {
        wall: started.elapsed(),
        downloads: ceilings.iter().map(|c| c.downloads).sum(),
        bytes: ceilings.iter().map(|c| c.bytes).sum(),
        cpu: usage().1 - cpu,
    };
    let configs: Vec<Value> = fakes
        .iter()
        .map(|fake| {
            json!({
                "client_id": fake.client_id(),
                "client_secret": fake.client_secret(),
                "refresh_token": fake.reauthorize(),
                "api_base_url": fake.base_url(),
                "concurrent_downloads": BOX_CONCURRENCY,
            })
        })
        .collect();
    let measured = spawn_child(
        Mix::Tenants,
        json!({"plugin": "box", "configs": configs}),
        work,
        cache,
    );
    (Mix::Tenants.name().into(), ceiling, measured)
}

/// A Dropbox account of `entries` files (in folders of 1,000), each larger than the plugin's
/// `max_file_size` so it is listed and indexed without a download, synced twice, each time by a
/// new process on the same data.
async fn run_listing(
    entries: usize,
    work: &Path,
    cache: &Path,
) -> Vec<(String, Ceiling, Measured)> {
    let mut tree = DropboxTree::empty();
    for i in 0..entries {
        if i % 1000 == 0 {
            tree = tree.with_folder(&format!("/Archive/f{:04}", i / 1000));
        }
        tree = tree.with_generated_file(
            &format!("/Archive/f{:04}/scan-{i:07}.pdf", i / 1000),
            DROPBOX_MAX_FILE + 1,
        );
    }
    let fake = FakeDropbox::start(tree).await.unwrap();
    let ceiling = dropbox_ceiling(&fake, DROPBOX_CONCURRENCY).await;
    let config = dropbox_config(&fake);
    let ceiling = || Ceiling {
        wall: ceiling.wall,
        downloads: ceiling.downloads,
        bytes: ceiling.bytes,
        cpu: ceiling.cpu,
    };
    // The plugin keeps a path → id entry per file and folder: an account this large needs the
    // operator to raise `[storage] max_keys` above its default of 1,000,000.
    let what = json!({
        "plugin": "dropbox",
        "config": config,
        "storage_max_keys": (entries as u64 * 11 / 10).max(1_000_000),
    });
    let first = spawn_child(Mix::Listing, what.clone(), work, cache);
    let second = spawn_child(Mix::Listing, what, work, cache);
    vec![
        ("listing-1".into(), ceiling(), first),
        ("listing-2".into(), ceiling(), second),
    ]
}

// ----- the mixes --------------------------------------------------------------------------------

/// An HTML page shaped like Elastic's functional-test fixtures (`generate_html` of their fake
/// provider): about 1 KB of prose in one `<div>`, then `images` `<img>` tags joined by `<br/>`,
/// each with a 100 KiB single-quoted `src` of random letters. Nearly all of the bytes are
/// attribute values, so the text to index is small and the cost is in reading past the markup.
fn html(images: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "revenue",
        "forecast",
        "budget",
        "customer",
        "quarterly",
        "roadmap",
        "meeting",
        "design",
        "review",
        "contract",
        "invoice",
        "support",
        "release",
        "security",
        "policy",
        "report",
    ];
    let mut next = xorshift(seed);
    let mut text = String::new();
    while text.len() < 1000 {
        text.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
        text.push(if next().is_multiple_of(9) { '.' } else { ' ' });
    }
    let src = letters(100 * 1024, seed);
    let mut out = format!("<html><head></head><body><div>{text}</div><div>").into_bytes();
    for i in 0..images {
        if i > 0 {
            out.extend_from_slice(b"<br/>");
        }
        out.extend_from_slice(b"<img src='");
        out.extend_from_slice(&src);
        out.extend_from_slice(b"'/>");
    }
    out.extend_from_slice(b"</div></body></html>");
    out
}

/// `size` random ASCII letters and nothing else, as the fixtures' Box files and `<img src>`
/// values are (one 1 MB "word": no token a search could match, so indexing it is cheap, but it
/// is still read, scanned and stored whole).
fn letters(size: usize, seed: u64) -> Vec<u8> {
    let mut next = xorshift(seed);
    (0..size)
        .map(|_| {
            let c = (next() % 52) as u8;
            if c < 26 { b'a' + c } else { b'A' + c - 26 }
        })
        .collect()
}

/// A deterministic pseudo-random sequence.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The fixtures' four HTML sizes as images of 100 KiB (103 KB / 1.0 MB / 8.2 MB / 25.6 MB).
const DROPBOX_IMAGES: [usize; 4] = [1, 10, 80, 250];

/// Which of the four sizes file `i` has, by the fixtures' weights (in fiftieths: 29 + 15 + 5 +
/// 1 = 58 / 30 / 10 / 2 %).
fn dropbox_size(i: usize) -> usize {
    match i % 50 {
        0..29 => 0,
        29..44 => 1,
        44..49 => 2,
        _ => 3,
    }
}

async fn dropbox_fake(scale: f64) -> FakeDropbox {
    let bodies: Vec<Arc<Vec<u8>>> = DROPBOX_IMAGES
        .iter()
        .enumerate()
        .map(|(i, &images)| Arc::new(html(images, i as u64 + 1)))
        .collect();
    let body = |size: usize| bodies[size].clone();
    let folders = scaled(8000, scale);
    let mut tree = DropboxTree::empty();
    for i in 0..folders {
        tree = tree
            .with_folder(&format!("/Projects/p{i:05}"))
            .with_shared_file(
                &format!("/Projects/p{i:05}/page{i:05}.html"),
                body(dropbox_size(i)),
            );
    }
    let fake = FakeDropbox::start(tree).await.unwrap();
    let owner = fake
        .account_by_email("jordan@globex.example")
        .expect("the external account")
        .account_id;
    for i in 0..scaled(1000, scale) {
        fake.add_received_shared_file(
            &format!("shared{i:05}.html"),
            body(dropbox_size(i * 7 + 3)),
            &owner,
        )
        .unwrap();
    }
    fake
}

async fn box_fake(scale: f64) -> FakeBox {
    let body: Arc<[u8]> = Arc::from(letters(1_000_000, 7));
    let fake = FakeBox::start(BoxTree::empty()).await.unwrap();
    for f in 0..scaled(50, scale) {
        let folder = fake.create_folder("0", &format!("Folder {f:02}")).unwrap();
        for i in 0..50 {
            fake.create_shared_file(&folder, &format!("notes-{f:02}-{i:02}.txt"), body.clone())
                .unwrap();
        }
    }
    fake
}

// ----- the plain-client ceiling -----------------------------------------------------------------

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Reads a response to its end without keeping it; returns its size.
async fn drain(response: reqwest::Response) -> u64 {
    assert!(
        response.status().is_success(),
        "{} {}",
        response.url(),
        response.status()
    );
    let mut response = response;
    let mut n = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        n += chunk.len() as u64;
    }
    n
}

async fn dropbox_ceiling(fake: &FakeDropbox, concurrency: usize) -> Ceiling {
    let cpu = usage().1;
    let client = plain_client();
    let token = fake.issue_access_token(false);
    let api = fake.api_url();
    let rpc = |route: &str, body: Value| {
        let request = client
            .post(format!("{api}{route}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.unwrap()
        }
    };
    let started = Instant::now();
    let mut downloads: Vec<(&str, Value)> = Vec::new();
    let mut page = rpc(
        "files/list_folder",
        json!({"path": "", "recursive": true, "limit": 2000}),
    )
    .await;
    loop {
        for e in page["entries"].as_array().into_iter().flatten() {
            if e[".tag"] == "file" && e["size"].as_u64().unwrap_or(0) <= DROPBOX_MAX_FILE {
                downloads.push(("files/download", json!({"path": e["id"]})));
            }
        }
        if page["has_more"] != true {
            break;
        }
        page = rpc(
            "files/list_folder/continue",
            json!({"cursor": page["cursor"]}),
        )
        .await;
    }
    let mut urls = Vec::new();
    let mut page = rpc("sharing/list_received_files", json!({"limit": 300})).await;
    loop {
        for e in page["entries"].as_array().into_iter().flatten() {
            if let Some(url) = e["preview_url"].as_str() {
                urls.push(url.to_string());
            }
        }
        match page["cursor"].as_str() {
            Some(cursor) if !cursor.is_empty() => {
                page = rpc(
                    "sharing/list_received_files/continue",
                    json!({"cursor": cursor}),
                )
                .await
            }
            _ => break,
        }
    }
    let links: Vec<Value> = futures::stream::iter(urls)
        .map(|url| rpc("sharing/get_shared_link_metadata", json!({"url": url})))
        .buffered(concurrency)
        .collect()
        .await;
    for link in &links {
        if link["size"].as_u64().unwrap_or(0) <= DROPBOX_MAX_FILE {
            downloads.push(("sharing/get_shared_link_file", json!({"url": link["url"]})));
        }
    }
    let n = downloads.len() as u64;
    let bytes: u64 = futures::stream::iter(downloads)
        .map(|(route, arg)| {
            let request = client
                .post(format!("{api}{route}"))
                .bearer_auth(&token)
                .header("Dropbox-API-Arg", arg.to_string());
            async move { drain(request.send().await.unwrap()).await }
        })
        .buffer_unordered(concurrency)
        .fold(0, |a, b| async move { a + b })
        .await;
    Ceiling {
        wall: started.elapsed(),
        downloads: n,
        bytes,
        cpu: usage().1 - cpu,
    }
}

async fn box_ceiling(fake: &FakeBox, concurrency: usize) -> Ceiling {
    const FIELDS: &str = "type,id,etag,sequence_id,name,size,modified_at,created_at,\
content_created_at,content_modified_at,description,created_by,modified_by,owned_by,parent,\
item_status,path_collection";
    let cpu = usage().1;
    let client = plain_client();
    let base = fake.base_url();
    let started = Instant::now();
    let grant = client
        .post(fake.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}",
            fake.refresh_token(),
            fake.client_id(),
            fake.client_secret()
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let token = grant["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let mut folders = vec!["0".to_string()];
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        let mut marker: Option<String> = None;
        loop {
            let mut url = format!(
                "{base}/2.0/folders/{folder}/items?fields={FIELDS}&limit=1000&usemarker=true"
            );
            if let Some(m) = &marker {
                url.push_str(&format!("&marker={m}"));
            }
            let page: Value = client
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for e in page["entries"].as_array().into_iter().flatten() {
                let id = e["id"].as_str().unwrap_or_default().to_string();
                match e["type"].as_str() {
                    Some("folder") => folders.push(id),
                    Some("file") => files.push(id),
                    _ => {}
                }
            }
            marker = page["next_marker"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
    }
    let n = files.len() as u64;
    let bytes: u64 = futures::stream::iter(files)
        .map(|id| {
            let request = client
                .get(format!("{base}/2.0/files/{id}/content"))
                .bearer_auth(&token);
            async move { drain(request.send().await.unwrap()).await }
        })
        .buffer_unordered(concurrency)
        .fold(0, |a, b| async move { a + b })
        .await;
    Ceiling {
        wall: started.elapsed(),
        downloads: n,
        bytes,
        cpu: usage().1 - cpu,
    }
}

// ----- the sync, in a child process -------------------------------------------------------------

fn spawn_sync(mix: Mix, plugin: &str, config: Value, work: &Path, cache: &Path) -> Measured {
    spawn_child(
        mix,
        json!({"plugin": plugin, "config": config}),
        work,
        cache,
    )
}

fn spawn_child(mix: Mix, mut what: Value, work: &Path, cache: &Path) -> Measured {
    let data = work.join(format!("data-{}", mix.name()));
    let spec = work.join(format!("{}.json", mix.name()));
    what["data"] = json!(data);
    what["cache"] = json!(cache);
    std::fs::write(&spec, what.to_string()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut command = match std::env::var_os("TRIBUTARY_SYNC_MEMORY_WRAP") {
        Some(wrap) => {
            let mut c = std::process::Command::new(wrap);
            c.arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    };
    let cpu = usage().1;
    let output = command.env(CHILD, &spec).output().unwrap();
    let server_cpu = usage().1 - cpu;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sync child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("the child's RESULT line");
    let v: Value = serde_json::from_str(line).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Measured {
        sync: Duration::from_micros(n("sync_us")),
        received: n("received"),
        extracted: n("extracted"),
        cpu: Duration::from_micros(n("cpu_us")),
        peak_rss: n("peak_rss"),
        peak_anon: n("peak_anon"),
        rss_open: n("rss_open"),
        jobs: n("jobs"),
        failed: n("failed"),
        server_cpu,
        segments: n("segments"),
        index_bytes: n("index_bytes"),
    }
}

/// `(peak RSS in bytes, user + system CPU)` of this process so far. The peak is `VmHWM`, not
/// `ru_maxrss`: Linux carries `ru_maxrss` across `exec`, so a child's would start at the RSS
/// its parent (holding the fake servers) had when it forked.
fn usage() -> (u64, Duration) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (status_bytes("VmHWM:"), tv(ru.ru_utime) + tv(ru.ru_stime))
}

/// A `/proc/self/status` figure (kB there), in bytes.
fn status_bytes(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn resident() -> u64 {
    tributary_host::serve::resident_bytes().unwrap_or(0)
}

/// Anonymous resident memory now (heap and stacks: not the index files tantivy maps, which
/// `VmHWM` counts too but the kernel can drop at any time).
fn anonymous() -> u64 {
    status_bytes("RssAnon:")
}

fn connector(tenant: &str, plugin: &str, config: &Value) -> ConnectorSpec {
    let Value::Object(config) = config.clone() else {
        panic!("config is an object")
    };
    ConnectorSpec {
        id: "bench".into(),
        plugin: plugin.into(),
        tenant: tenant.into(),
        index: None,
        config,
        rules: Vec::new(),
        advanced_rules: None,
        schedule: Default::default(),
    }
}

/// Samples anonymous RSS every 20 ms (the kernel keeps no peak of it) until dropped.
struct AnonSampler {
    peak: Arc<std::sync::atomic::AtomicU64>,
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AnonSampler {
    fn start() -> Self {
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    peak.fetch_max(anonymous(), std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self {
            peak,
            done,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn child(spec: &Path) {
    let spec: Value = serde_json::from_slice(&std::fs::read(spec).unwrap()).unwrap();
    let plugin = spec["plugin"].as_str().unwrap().to_string();
    let path = |k: &str| PathBuf::from(spec[k].as_str().unwrap());
    let pipeline = match std::env::var("TRIBUTARY_SYNC_MEMORY_PIPELINE") {
        Ok(json) => serde_json::from_str(&json).expect("[pipeline] settings as JSON"),
        Err(_) => Default::default(),
    };
    let mut config = HostConfig {
        pipeline,
        data_dir: path("data"),
        cache_dir: Some(path("cache")),
        // The operator's path to the loopback fakes (nothing else is reachable).
        http: tributary_host::net::HttpConfig {
            allow_private: vec!["127.0.0.1".parse().unwrap()],
            ..Default::default()
        },
        ..HostConfig::default()
    };
    if let Ok(bytes) = std::env::var("TRIBUTARY_SYNC_MEMORY_WRITER_MEMORY") {
        config.sink.writer_memory = bytes.parse().expect("[sink] writer_memory in bytes");
    }
    if let Some(keys) = spec["storage_max_keys"].as_u64() {
        config.storage.max_keys = keys;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = match spec["configs"].as_array() {
        None => {
            config.connectors = vec![connector("default", &plugin, &spec["config"])];
            runtime.block_on(one_sync(config))
        }
        Some(configs) => runtime.block_on(many_syncs(config, &plugin, configs)),
    };
    println!("RESULT {result}");
}

/// Segments of the indexes under `data` now (one `.store` file each), and their bytes.
fn segments(data: &Path) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    let mut dirs = vec![data.join("index")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                n += u64::from(path.extension().is_some_and(|e| e == "store"));
                bytes += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (n, bytes)
}

async fn one_sync(config: HostConfig) -> Value {
    let data = config.data_dir.clone();
    let host = Host::open(config).await.unwrap();
    let rss_open = resident();
    let sampler = AnonSampler::start();
    let started = Instant::now();
    let report = host
        .sync(None, "bench", SyncKind::Full, SyncOptions::default())
        .await
        .unwrap();
    let sync = started.elapsed();
    let peak_anon = sampler.stop();
    assert_eq!(report.status, JobStatus::Succeeded, "{:?}", report.error);
    let (peak_rss, cpu) = usage();
    json!({
        "sync_us": sync.as_micros() as u64,
        "received": report.counts.received,
        "extracted": report.counts.content_extracted,
        "cpu_us": cpu.as_micros() as u64,
        "peak_rss": peak_rss,
        "rss_open": rss_open,
        "peak_anon": peak_anon,
        "jobs": 1,
        "failed": 0,
        "segments": segments(&data).0,
        "index_bytes": segments(&data).1,
    })
}

/// One tenant per config, each with one connector, all synced at once through the service's
/// dispatcher (as `tributary serve` runs them).
async fn many_syncs(mut config: HostConfig, plugin: &str, configs: &[Value]) -> Value {
    use tributary_host::serve::store::QueueReason;
    use tributary_host::serve::{Service, TenantQuotas};
    let n = configs.len();
    let data = config.data_dir.clone();
    config
        .service
        .insert("max_concurrent_syncs".into(), (n as i64).into());
    config
        .service
        .insert("admin_token".into(), "bench-admin-token-0123456789".into());
    config.runtime.pool_instances = n as u32 + 8;
    let host = Arc::new(Host::open(config).await.unwrap());
    let service = Service::open(host, None).await.unwrap();
    let mut specs = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let tenant = format!("tenant-{i:03}");
        service
            .store()
            .create_tenant(&tenant, None, &TenantQuotas::default())
            .await
            .unwrap();
        let spec = connector(&tenant, plugin, c);
        service.store().put_connector(&spec, None).await.unwrap();
        specs.push(spec);
    }
    let rss_open = resident();
    let sampler = AnonSampler::start();
    service.start();
    let started = Instant::now();
    let mut jobs = Vec::new();
    for spec in &specs {
        let queued = service
            .enqueue(spec, SyncKind::Full, QueueReason::Api)
            .await
            .unwrap()
            .into_report()
            .expect("the queue has room");
        jobs.push(queued);
    }
    let (mut received, mut extracted, mut failed) = (0, 0, 0);
    for job in &jobs {
        let report = loop {
            let report = service.job(&job.tenant, &job.id).await.unwrap().unwrap();
            if matches!(
                report.status,
                JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
            ) {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if report.status != JobStatus::Succeeded {
            failed += 1;
            eprintln!("job {} of {}: {:?}", job.id, job.tenant, report.error);
        }
        received += report.counts.received;
        extracted += report.counts.content_extracted;
    }
    let sync = started.elapsed();
    let peak_anon = sampler.stop();
    service.stop();
    let (peak_rss, cpu) = usage();
    json!({
        "sync_us": sync.as_micros() as u64,
        "received": received,
        "extracted": extracted,
        "cpu_us": cpu.as_micros() as u64,
        "peak_rss": peak_rss,
        "rss_open": rss_open,
        "peak_anon": peak_anon,
        "jobs": n,
        "failed": failed,
        "segments": segments(&data).0,
        "index_bytes": segments(&data).1,
    })
}
