//! Unit tests for the crate-private machinery: panic containment, the time limit and
//! concurrency bound of [`Extractor`], and the text sink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::limits::Budget;
use crate::run::contain;
use crate::text::{Sink, decode};
use crate::{ExtractError, Extractor, Format, Limits};

/// A seeded xorshift generator: the crate's property tests draw their cases from it, so a
/// failure reproduces.
pub(crate) fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn sink(max: usize) -> Sink {
    Sink::new(max, Budget::new(&Limits::default()))
}

#[test]
fn a_panicking_parser_becomes_failed() {
    let r: Result<(), _> = contain(Format::Pdf, || panic!("index out of bounds: boom"));
    assert_eq!(
        r,
        Err(ExtractError::Failed(
            "pdf: parser panicked: index out of bounds: boom".into()
        ))
    );
    let r: Result<(), _> = contain(Format::Docx, || std::panic::panic_any(42_u8));
    assert_eq!(
        r,
        Err(ExtractError::Failed(
            "docx: parser panicked: non-string panic payload".into()
        ))
    );
    // and the thread is still usable afterwards
    assert_eq!(contain(Format::Text, || Ok(7)), Ok(7));
}

#[tokio::test]
async fn timeout_returns_timed_out_and_the_slot_stays_taken_until_the_work_ends() {
    let extractor = Extractor::new(Limits::default(), 1);
    let finished = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    let start = Instant::now();
    let r = extractor
        .run(Duration::from_millis(100), move || {
            std::thread::sleep(Duration::from_millis(600)); // a "slow parser"
            flag.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await;
    assert_eq!(r, Err(ExtractError::TimedOut(Duration::from_millis(100))));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "returned after {:?}",
        start.elapsed()
    );
    // the abandoned work still holds the only slot
    assert_eq!(extractor.available_slots(), 0);
    assert!(!finished.load(Ordering::SeqCst));
    // the next extraction waits for it, then runs
    let out = extractor
        .extract("a b".into(), "x.txt", None)
        .await
        .unwrap();
    assert_eq!(out.text, "a b");
    assert!(finished.load(Ordering::SeqCst));
    assert_eq!(extractor.available_slots(), 1);
}

#[tokio::test]
async fn at_most_max_parallel_extractions_run_at_once() {
    let extractor = Extractor::new(Limits::default(), 2);
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let jobs = (0..6).map(|_| {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        extractor.run(Duration::from_secs(10), move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
    });
    for r in futures::future::join_all(jobs).await {
        r.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    assert_eq!(
        Extractor::new(Limits::default(), 0).max_parallel(),
        std::thread::available_parallelism().unwrap().get()
    );
}

#[test]
fn extraction_runs_on_a_thread_with_a_large_stack() {
    // not the caller's thread, and ~4-8 MiB of recursion (fatal on a 2 MiB stack) survives
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let extractor = Extractor::new(Limits::default(), 1);
    let name = rt
        .block_on(extractor.run(Duration::from_secs(10), || {
            // each frame keeps 1 KiB alive across the recursive call
            fn depth(n: u32) -> u32 {
                let pad = std::hint::black_box([n as u8; 1024]);
                if n == 0 {
                    0
                } else {
                    depth(n - 1) + u32::from(pad[1] == 0)
                }
            }
            Ok((
                std::thread::current().name().map(str::to_owned),
                depth(4_000),
            ))
        }))
        .unwrap();
    assert_eq!(name.0.as_deref(), Some("tributary-extract"));
    assert_eq!(name.1, 15); // n = 256, 512, …, 3840 wrap to 0 as u8
}

#[test]
fn sink_normalises_white_space() {
    let mut s = sink(1000);
    s.push("  a \t b\r\n\r\n\r\nc\rd\u{0}e\u{feff}f\u{a0}g  ");
    s.para();
    s.push("\n\nh");
    s.space();
    s.line();
    s.push("i");
    // control characters and BOMs vanish without separating; NBSP is a space
    assert_eq!(s.finish(), ("a b\n\nc\ndef g\n\nh\ni".to_owned(), false));
}

#[test]
fn sink_reads_long_visible_runs_in_blocks_and_still_sees_what_ends_them() {
    // Runs of every length around the 16-byte blocks, ended by each kind of separator and by
    // a non-ASCII character at every offset of a block.
    for len in 1..50 {
        let run: String = "Abc~!9xyz".chars().cycle().take(len).collect();
        let mut s = sink(10_000);
        s.push(&format!(
            "{run} {run}  {run}\t{run}\u{0}{run}\n{run}\u{e9}{run}\u{a0}{run}"
        ));
        let want = format!("{run} {run} {run} {run}{run}\n{run}\u{e9}{run} {run}");
        assert_eq!(s.finish(), (want, false), "run of {len}");
    }
    // The limit still cuts inside a long run.
    let mut s = sink(37);
    s.push(&"x".repeat(100));
    assert_eq!(s.finish(), ("x".repeat(37), true));
}

#[test]
fn sink_truncates_on_char_boundaries() {
    let mut s = sink(5);
    s.push("ab€cd"); // € is 3 bytes: "ab€" = 5 bytes
    assert!(s.is_full());
    assert_eq!(s.finish(), ("ab€".to_owned(), true));
    let mut s = sink(4);
    s.push("ab€cd");
    assert_eq!(s.finish(), ("ab".to_owned(), true));
    // inner spaces of a run are cut like separators: never a trailing space
    let mut s = sink(2);
    s.push("a b");
    assert_eq!(s.finish(), ("a".to_owned(), true));
    let mut s = sink(4);
    s.push("ab cd");
    assert_eq!(s.finish(), ("ab c".to_owned(), true));
    let mut s = sink(100);
    s.push("a b  c\td \u{e9} f\u{a0}g\u{7}h ");
    assert_eq!(s.finish(), ("a b c d \u{e9} f gh".to_owned(), false));
    // a separator that does not fit ends the text too
    let mut s = sink(3);
    s.push("abc");
    s.para();
    s.push("d");
    assert_eq!(s.finish(), ("abc".to_owned(), true));
}

#[test]
fn decoding() {
    assert_eq!(decode(b"plain"), "plain");
    assert_eq!(decode(b"\xEF\xBB\xBFbom"), "bom");
    // UTF-16LE without BOM (ASCII range) is recognised
    let le: Vec<u8> = "hello world"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(decode(&le), "hello world");
    assert_eq!(decode(b"\xE9t\xE9"), "été");
}
