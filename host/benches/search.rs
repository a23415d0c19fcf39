//! Query latency of the embedded index: p50/p99 of term, phrase, field, range, filter+sort,
//! facet and deep-page queries over a 100,000-document index, with indexing throughput, the
//! index's size on disk, CPU seconds and peak RSS.
//!
//! `cargo bench -p tributary-host --bench search` (add `-- <docs>` for another size).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_host::sink::embedded::EmbeddedIndex;
use tributary_host::sink::{IndexRef, SearchRequest, Sink, SinkDocument};

const WORDS: &[&str] = &[
    "revenue", "budget", "plan", "review", "sales", "team", "office", "policy", "travel",
    "invoice", "contract", "roadmap", "hiring", "launch", "customer", "support", "design",
    "security", "audit", "forecast", "meeting", "notes", "summary", "report", "draft",
];
const EXTENSIONS: &[&str] = &["pdf", "docx", "xlsx", "json", "txt", "pptx", "md"];

/// A small deterministic generator (no rand dependency for a bench).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next() as usize % from.len()]
    }
}

fn docs(n: usize) -> Vec<SinkDocument> {
    let mut rng = Lcg(42);
    (0..n)
        .map(|i| {
            let folder = i % 10 == 0;
            let ext = rng.pick(EXTENSIONS);
            let name = format!("{} {} {i}.{ext}", rng.pick(WORDS), rng.pick(WORDS));
            let dept = rng.pick(&["Reports", "Finance", "People", "Legal"]);
            let mut body: Vec<&str> = (0..60).map(|_| rng.pick(WORDS)).collect();
            if i % 50 == 1 {
                body.extend(["grew", "in", "the", "third", "quarter"]);
            }
            let day = 1 + rng.next() % 28;
            let month = 1 + rng.next() % 12;
            let mut fields = json!({
                "id": format!("id:{i}"), "name": name, "type": if folder { "Folder" } else { "File" },
                "file_path": format!("/{dept}/{name}"),
                "_timestamp": format!("2024-{month:02}-{day:02}T10:00:00Z"),
                "_allow_access_control": [format!("email:user{}@example.com", i % 20)],
            });
            if !folder {
                fields["file_extension"] = json!(ext);
                fields["size"] = json!(rng.next() % 10_000_000);
            }
            let Value::Object(fields) = fields else {
                unreachable!()
            };
            SinkDocument {
                id: format!("id:{i}"),
                connector: if i % 3 == 0 { "dropbox" } else { "box" }.into(),
                version: Some(format!("v{i}")),
                fields,
                body: (!folder).then(|| body.join(" ")),
            }
        })
        .collect()
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) and peak RSS (KiB) of this process, from /proc.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks as f64 / 100.0, hwm)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let sink = EmbeddedIndex::new(dir.path());
    let ix = IndexRef::new("bench", "files");
    let all = docs(n);
    let (cpu0, _) = usage();
    let started = Instant::now();
    for chunk in all.chunks(1000) {
        sink.upsert(ix.clone(), chunk.to_vec()).await.unwrap();
    }
    sink.commit(ix.clone()).await.unwrap();
    let took = started.elapsed();
    let (cpu1, rss) = usage();
    drop(all);
    println!(
        "indexed {n} documents in {:.1}s: {:.0} documents/s, {:.1} CPU-s; index on disk {:.1} MiB; peak RSS {:.0} MiB",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        cpu1 - cpu0,
        dir_size(dir.path()) as f64 / (1024.0 * 1024.0),
        rss as f64 / 1024.0
    );

    let sort = |s: &str| Some(s.parse().unwrap());
    let cases: Vec<(&str, SearchRequest)> = vec![
        ("term", SearchRequest::new("revenue", 10)),
        ("phrase", SearchRequest::new("\"third quarter\"", 10)),
        ("field words", SearchRequest::new("name:budget", 10)),
        ("range", SearchRequest::new("size:[1000000 TO 2000000]", 10)),
        (
            "path prefix",
            SearchRequest::new("file_path:/Finance/*", 10),
        ),
        (
            "filter+sort",
            SearchRequest {
                filters: vec![
                    "type=File".parse().unwrap(),
                    "file_extension=pdf".parse().unwrap(),
                ],
                sort: sort("_timestamp:desc"),
                ..SearchRequest::new("revenue", 20)
            },
        ),
        (
            "facets",
            SearchRequest {
                facets: vec!["type".into(), "file_extension".into(), "_connector".into()],
                count_only: true,
                ..SearchRequest::new("*", 10)
            },
        ),
        (
            "as a user",
            SearchRequest {
                identities: Some(vec!["email:user3@example.com".into()]),
                ..SearchRequest::new("revenue", 10)
            },
        ),
    ];
    println!(
        "{:<12} {:>8} {:>10} {:>10}",
        "query", "matches", "p50 ms", "p99 ms"
    );
    let runs = 60;
    for (label, request) in cases {
        let mut times = Vec::with_capacity(runs);
        let mut total = 0;
        for i in 0..runs + 5 {
            let t = Instant::now();
            let found = sink.search(ix.clone(), request.clone()).await.unwrap();
            if i >= 5 {
                times.push(t.elapsed());
            }
            total = found.total;
        }
        times.sort();
        println!(
            "{label:<12} {total:>8} {:>10.2} {:>10.2}",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0
        );
    }
    // Paging to the end with a sort: the cost of a whole listing.
    let t = Instant::now();
    let mut after = None;
    let mut seen = 0;
    loop {
        let found = sink
            .search(
                ix.clone(),
                SearchRequest {
                    sort: sort("_timestamp:desc"),
                    after: after.take(),
                    ..SearchRequest::new("*", 1000)
                },
            )
            .await
            .unwrap();
        seen += found.hits.len();
        match found.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let (cpu2, rss) = usage();
    println!(
        "listed all {seen} documents in pages of 1000 sorted by _timestamp in {:.2}s; total CPU {:.1}s; peak RSS {:.0} MiB",
        t.elapsed().as_secs_f64(),
        cpu2,
        rss as f64 / 1024.0
    );
}
