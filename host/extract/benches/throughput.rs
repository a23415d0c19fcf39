//! Throughput per format: generates a few-MB fixture of each format in memory (with the
//! same generators the tests use), extracts it repeatedly and prints the median speed
//! in MB/s of input, by the wall clock and by the thread's CPU time (the latter holds up
//! on a machine shared with other work). Run with `cargo bench -p tributary-extract`
//! (append `-- html pdf` to run only the formats whose names start with those words).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use tributary_extract::{Limits, extract};

const RUNS: usize = 5;
/// A deterministic pseudo-random generator (xorshift), so fixtures compress like real
/// text rather than like a repeated phrase.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A 4 000-word vocabulary of pronounceable pseudo-words.
fn vocabulary() -> Vec<String> {
    const C: &[u8] = b"bcdfghjklmnprstvwz";
    const V: &[u8] = b"aeiou";
    let mut next = rng(7);
    (0..4000)
        .map(|_| {
            let syllables = 1 + next() % 4;
            (0..syllables)
                .flat_map(|_| {
                    [
                        C[(next() % C.len() as u64) as usize] as char,
                        V[(next() % V.len() as u64) as usize] as char,
                    ]
                })
                .collect()
        })
        .collect()
}

/// Deterministic "sentence" number `i`: 8-16 words drawn from the vocabulary.
fn sentence(i: usize) -> String {
    thread_local!(static VOCAB: Vec<String> = vocabulary());
    let mut next = rng(i as u64 + 1);
    let n = 8 + next() % 9;
    VOCAB.with(|v| {
        (0..n)
            .map(|_| v[(next() % v.len() as u64) as usize].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn lines(n: usize) -> Vec<String> {
    (0..n).map(sentence).collect()
}

fn fixtures(want: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    if want("text") {
        let text = lines(40_000).join("\n");
        out.push(("text", "big.txt", text.clone().into_bytes()));
    }
    if want("markdown") {
        let md: String = lines(40_000)
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i % 10 == 0 {
                    format!("## {l}\n\n")
                } else {
                    format!("- *{l}*\n")
                }
            })
            .collect();
        out.push(("markdown", "big.md", md.into_bytes()));
    }
    if want("csv") {
        let csv: String = lines(40_000)
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{i},\"{l}\",{}.5,x\n", i * 3))
            .collect();
        out.push(("csv", "big.csv", csv.into_bytes()));
    }
    if want("tsv") {
        let tsv: String = lines(40_000)
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{i}\t{l}\t{}\n", i * 3))
            .collect();
        out.push(("tsv", "big.tsv", tsv.into_bytes()));
    }
    if want("json") {
        let json = serde_json::to_vec(
            &lines(30_000)
                .iter()
                .enumerate()
                .map(|(i, l)| serde_json::json!({"id": i, "title": l, "tags": ["a", "b"], "ok": true}))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        out.push(("json", "big.json", json));
    }
    if want("xml") {
        let xml: String = std::iter::once("<?xml version=\"1.0\"?><items>".to_owned())
            .chain(
                lines(30_000)
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("<item id=\"{i}\"><name>{l}</name><v>{i}</v></item>")),
            )
            .chain(std::iter::once("</items>".to_owned()))
            .collect();
        out.push(("xml", "big.xml", xml.into_bytes()));
    }
    if want("html") {
        let html: String = std::iter::once(
            "<html><head><title>x</title><style>p{}</style></head><body>".to_owned(),
        )
        .chain(lines(30_000).iter().map(|l| {
            format!("<div class=\"c\"><p>{l} <b>bold</b> &amp; <a href=\"#\">link</a></p></div>\n")
        }))
        .chain(std::iter::once("</body></html>".to_owned()))
        .collect();
        out.push(("html", "big.html", html.into_bytes()));
    }
    if want("html-fx") {
        // The shape of Elastic's functional-test HTML (`generate_html` in its `tests/commons.py`):
        // about 1 KB of text, then 100 KB `<img src='…'/>` attributes joined by `<br/>` (8 MB
        // is its "large" size); here the text part is nested markup.
        let mut next = rng(11);
        let img: String = (0..100 * 1024)
            .map(|_| char::from(b'a' + (next() % 26) as u8))
            .collect();
        let text: String = lines(12)
            .iter()
            .map(|l| format!("<div><p><span>{l}</span> <em>&quot;x&quot;</em></p></div>"))
            .collect();
        let images = vec![format!("<img src='{img}'/>"); 80].join("<br/>");
        let fixture =
            format!("<html><head></head><body><div>{text}</div><div>{images}</div></body></html>");
        out.push(("html-fx", "fixture.html", fixture.into_bytes()));
    }
    if want("pdf") {
        let pages: Vec<Vec<String>> = lines(30_000).chunks(50).map(<[String]>::to_vec).collect();
        out.push(("pdf", "big.pdf", fixtures::pdf(&pages, true)));
    }
    if want("docx") {
        out.push((
            "docx",
            "big.docx",
            fixtures::docx_paragraphs(&lines(60_000)),
        ));
    }
    if want("pptx") {
        let slide_lines = lines(40_000);
        let slides: Vec<Vec<&str>> = slide_lines
            .chunks(20)
            .map(|c| c.iter().map(String::as_str).collect())
            .collect();
        let slide_refs: Vec<&[&str]> = slides.iter().map(Vec::as_slice).collect();
        out.push((
            "pptx",
            "big.pptx",
            fixtures::pptx(&slide_refs, Some("notes")),
        ));
    }
    if want("xlsx") {
        let cell_text = lines(25_000);
        let rows: Vec<Vec<fixtures::Cell<'_>>> = (0..25_000)
            .map(|r| {
                vec![
                    fixtures::Cell::Str(&cell_text[r]),
                    fixtures::Cell::Num(r as f64 * 1.5),
                    fixtures::Cell::Str(&cell_text[(r * 7) % 25_000]),
                    fixtures::Cell::Num(r as f64),
                ]
            })
            .collect();
        out.push(("xlsx", "big.xlsx", fixtures::xlsx(&[("Data", rows)])));
    }
    if want("xls") {
        let grid: Vec<(u16, u16)> = (2..30_002u32)
            .flat_map(|r| (0..6u16).map(move |c| (r as u16, c)))
            .collect();
        out.push((
            "xls",
            "big.xls",
            fixtures::xls("Data", &["a", "b"], &[1.0, 2.0], &grid),
        ));
    }
    if want("odt") {
        let odt_body: String = lines(60_000)
            .iter()
            .map(|l| format!("<text:p>{l} <text:span>x</text:span></text:p>"))
            .collect();
        out.push((
            "odt",
            "big.odt",
            odf_like(
                "application/vnd.oasis.opendocument.text",
                &format!("<office:text>{odt_body}</office:text>"),
            ),
        ));
    }
    if want("ods") {
        let ods_rows: String = lines(30_000)
            .iter()
            .enumerate()
            .map(|(i, l)| format!("<table:table-row><table:table-cell><text:p>{l}</text:p></table:table-cell><table:table-cell office:value=\"{i}\"><text:p>{i}</text:p></table:table-cell></table:table-row>"))
            .collect();
        out.push((
            "ods",
            "big.ods",
            odf_like(
                "application/vnd.oasis.opendocument.spreadsheet",
                &format!(
                    "<office:spreadsheet><table:table>{ods_rows}</table:table></office:spreadsheet>"
                ),
            ),
        ));
    }
    if want("odp") {
        let odp_pages: String = lines(40_000).chunks(20).map(|c| format!("<draw:page>{}</draw:page>", c.iter().map(|l| format!("<draw:frame><draw:text-box><text:p>{l}</text:p></draw:text-box></draw:frame>")).collect::<String>())).collect();
        out.push((
            "odp",
            "big.odp",
            odf_like(
                "application/vnd.oasis.opendocument.presentation",
                &format!("<office:presentation>{odp_pages}</office:presentation>"),
            ),
        ));
    }
    if want("rtf") {
        let rtf: String = std::iter::once(
            r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\colortbl;\red0\green0\blue0;}"
                .to_owned(),
        )
        .chain(
            lines(40_000)
                .iter()
                .map(|l| format!("\\pard\\f0\\fs22 {l} {{\\b bold}} caf\\'e9\\par\n")),
        )
        .chain(std::iter::once("}".to_owned()))
        .collect();
        out.push(("rtf", "big.rtf", rtf.into_bytes()));
    }
    if want("eml") {
        let eml = format!(
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n",
            lines(40_000).join("=\r\n\r\n")
        );
        out.push(("eml", "big.eml", eml.into_bytes()));
    }
    if want("doc") {
        // legacy Office: a Word file of alternating 8-bit and UTF-16 pieces, a PowerPoint
        // file of one text atom per line
        let doc_lines: Vec<String> = lines(40_000).iter().map(|l| format!("{l}\r")).collect();
        let blocks: Vec<String> = doc_lines.chunks(100).map(<[String]>::concat).collect();
        let pieces: Vec<fixtures::DocPiece<'_>> = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if i % 2 == 0 {
                    fixtures::DocPiece::Narrow(b.as_bytes())
                } else {
                    fixtures::DocPiece::Wide(b)
                }
            })
            .collect();
        let chars: usize = doc_lines.iter().map(String::len).sum();
        let (word, table) = fixtures::doc_streams(&pieces, chars as u32, 0, 0);
        out.push((
            "doc",
            "big.doc",
            fixtures::ole(&[("/WordDocument", &word), ("/1Table", &table)]),
        ));
    }
    if want("ppt") {
        let atoms: Vec<u8> = lines(40_000)
            .iter()
            .flat_map(|l| {
                let text: Vec<u8> = l.encode_utf16().flat_map(u16::to_le_bytes).collect();
                fixtures::ppt_record(0, 0x0FA0, &text)
            })
            .collect();
        let slides = fixtures::ppt_record(0x000F, 0x03EE, &atoms);
        out.push((
            "ppt",
            "big.ppt",
            fixtures::ole(&[("/PowerPoint Document", &slides)]),
        ));
    }
    out
}

fn odf_like(mimetype: &str, body: &str) -> Vec<u8> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"><office:body>{body}</office:body></office:document-content>"#
    );
    fixtures::zip(
        &[
            ("mimetype", mimetype.as_bytes()),
            ("content.xml", content.as_bytes()),
        ],
        &["mimetype"],
    )
}

/// CPU time this thread has run, in nanoseconds (Linux `schedstat`), so figures hold
/// up on a machine shared with other work; `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Extracts `bytes` as a download does: its head, then 64 KiB pieces.
fn stream(
    bytes: &[u8],
    file: &str,
    limits: &Limits,
) -> Result<tributary_extract::Extracted, tributary_extract::ExtractError> {
    use tributary_extract::stream::{Begin, HEAD_BYTES, begin};
    let head = bytes.len().min(HEAD_BYTES);
    let Begin::Streaming(mut stream) =
        begin(&bytes[..head], head == bytes.len(), file, None, limits)?
    else {
        panic!("{file} does not stream");
    };
    for piece in bytes[head..].chunks(64 * 1024) {
        if !stream.feed(piece)? {
            break;
        }
    }
    stream.finish()
}

fn main() {
    let limits = Limits {
        max_input_bytes: 64 << 20,
        max_output_bytes: 64 << 20,
        max_decompressed_bytes: 256 << 20,
        timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    println!(
        "{:<9} {:>9} {:>10} {:>9} {:>10} {:>11} {:>11}",
        "format", "input MB", "output MB", "median s", "in MB/s", "text MB/s", "in MB/cpu-s"
    );
    // `cargo bench -p tributary-extract -- html pdf`: only the formats named
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| only.is_empty() || only.iter().any(|o| name.starts_with(o.as_str()));
    // Each streaming format twice: whole, then as a download reads it (`name~`: the head, then
    // 64 KiB pieces).
    let runs = fixtures(want).into_iter().flat_map(|(name, file, bytes)| {
        let streams = tributary_extract::stream::likely_streams(file, None);
        let bytes = std::rc::Rc::new(bytes);
        std::iter::once((name.to_owned(), file, bytes.clone(), false))
            .chain(streams.then(|| (format!("{name}~"), file, bytes, true)))
    });
    for (name, file, bytes, streamed) in runs {
        let mut times = Vec::with_capacity(RUNS);
        let mut cpu = Vec::with_capacity(RUNS);
        let mut out_len = 0;
        for _ in 0..RUNS {
            // each sample repeats the extraction for at least 0.2 s, so that the CPU
            // clock (scheduler-tick resolution) is precise enough
            let cpu_start = thread_cpu_ns();
            let start = Instant::now();
            let mut n = 0u32;
            while n == 0 || start.elapsed() < Duration::from_millis(200) {
                n += 1;
                let out = if streamed {
                    stream(&bytes, file, &limits)
                } else {
                    extract(&bytes, file, None, &limits)
                }
                .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!out.truncated, "{name}: truncated");
                out_len = out.text.len();
            }
            times.push(start.elapsed() / n);
            if let (Some(a), Some(b)) = (cpu_start, thread_cpu_ns()) {
                cpu.push((b.saturating_sub(a) / u64::from(n)).max(1));
            }
        }
        times.sort();
        cpu.sort();
        let median = times[RUNS / 2].as_secs_f64();
        let cpu_median = cpu
            .get(cpu.len() / 2)
            .map_or(f64::NAN, |ns| *ns as f64 / 1e9);
        let mb = bytes.len() as f64 / 1e6;
        let out_mb = out_len as f64 / 1e6;
        println!(
            "{name:<9} {mb:>9.2} {out_mb:>10.2} {median:>9.4} {:>10.1} {:>11.1} {:>11.1}",
            mb / median,
            out_mb / median,
            mb / cpu_median
        );
    }
}
