//! A download read into the extractor lets its connection reuse one read buffer: each piece is
//! released before the next is awaited. A piece still held while the connection reads again
//! leaves that buffer shared, so the read allocates a fresh 64 KiB one; on a runtime of one
//! thread that was every read.
//!
//! Allocations are counted on the client's thread only; the server runs on a runtime of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use tributary_host::bindings::http::{Method, Request};
use tributary_host::extraction::{ExtractConfig, Extraction, Extractors};
use tributary_host::net::{Allowlist, HttpConfig, HttpEngine};

/// Blocks from this size up are counted: the connection's read buffer (64 KiB) and larger.
const LARGE: usize = 32 * 1024;

struct Counting;

thread_local! {
    /// Large blocks allocated or regrown on this thread.
    static LARGE_BLOCKS: Cell<usize> = const { Cell::new(0) };
}

fn count(size: usize) {
    if size >= LARGE {
        let _ = LARGE_BLOCKS.try_with(|n| n.set(n.get() + 1));
    }
}

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_streamed_download_reuses_its_connections_read_buffer() {
    const BODY: usize = 8 << 20;
    let words = ["quarterly ", "forecast ", "review ", "budget\n"];
    let mut payload = String::with_capacity(BODY + 16);
    while payload.len() < BODY {
        payload.push_str(words[payload.len() % words.len()]);
    }
    payload.truncate(payload.trim_end().len());
    let served = bytes::Bytes::from(payload.clone());

    // The server on threads of its own, so that only the client's allocations are counted.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt
        .block_on(tributary_fakes::FakeServer::start(
            axum::Router::new().route(
                "/notes.txt",
                axum::routing::get(move || async move {
                    ([("content-type", "text/plain")], served.clone())
                }),
            ),
        ))
        .unwrap();

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (text, large) = client_rt.block_on(async {
        let engine = HttpEngine::new(HttpConfig {
            allow_private: vec!["127.0.0.1".parse().unwrap()],
            ..HttpConfig::default()
        })
        .unwrap();
        let allow = Allowlist::parse(&[server.addr().to_string()]).unwrap();
        let extraction = Extraction::new(
            Arc::new(
                Extractors::new(&ExtractConfig {
                    max_output_bytes: 16 << 20,
                    ..ExtractConfig::default()
                })
                .unwrap(),
            ),
            false,
        );
        let request = Request {
            method: Method::Get,
            url: format!("{}/notes.txt", server.url()),
            headers: vec![],
            body: None,
            timeout_ms: Some(30_000),
        };
        let opened = engine.open(&allow, &request, 16 << 20).await.unwrap();
        let before = LARGE_BLOCKS.with(Cell::get);
        let text = extraction
            .read_text(
                opened.body,
                "notes.txt",
                Some("text/plain"),
                16 << 20,
                16 << 20,
                async {},
            )
            .await
            .unwrap()
            .unwrap();
        (text, LARGE_BLOCKS.with(Cell::get) - before)
    });
    assert_eq!(text.len(), payload.len());
    assert!(text == payload, "the text is the body");
    // The extractor's head and text buffers, and the connection's buffer once or twice more;
    // holding each piece made it 128 (one per 64 KiB read).
    assert!(
        large <= 8,
        "{large} blocks of {LARGE} bytes or more allocated to read {BODY} bytes"
    );
}
