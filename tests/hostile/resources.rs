//! The plugin exhausting resources: CPU, stack, memory, wall-clock time, and the host's own time
//! through a tight loop of capability calls.

use std::time::{Duration, Instant};

use serde_json::json;
use tributary_host::limits::SandboxLimits;
use tributary_host::{SyncKind, SyncOptions};

use crate::arena::{Arena, HOST_CALLS_PER_SECOND, MEMORY_MIB, assert_failed, hostile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loops_hit_the_cpu_limit() {
    let arena = Arena::new(vec![hostile("spin", json!({"attack": "spin"}))]).await;
    let started = Instant::now();
    let report = arena.attack("spin").await;
    assert_failed(&report, "limit", &["exceeded its CPU limit of 2 s"]);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_exhausts_the_engine_stack_not_the_host() {
    let arena = Arena::new(vec![hostile("recurse", json!({"attack": "recurse"}))]).await;
    let report = arena.attack("recurse").await;
    assert_failed(&report, "trap", &["`full-sync`", "call stack exhausted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_with_large_frames_overflows_only_the_guest_stack() {
    // Rust keeps big locals on a shadow stack at the bottom of linear memory; overflowing it
    // runs below address 0, which the engine's bounds checks catch.
    let arena = Arena::new(vec![hostile("frames", json!({"attack": "recurse-frames"}))]).await;
    let report = arena.attack("frames").await;
    assert_failed(
        &report,
        "trap",
        &["`full-sync`", "out of bounds memory access"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_memory_growth_hits_the_memory_limit() {
    let arena = Arena::new(vec![hostile("grow", json!({"attack": "grow"}))]).await;
    let report = arena.attack("grow").await;
    assert_failed(
        &report,
        "limit",
        &[&format!("exceeded its memory limit of {MEMORY_MIB} MiB")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_allocation_hits_the_memory_limit() {
    let arena = Arena::new(vec![hostile(
        "huge",
        json!({"attack": "huge-alloc", "size": 1u64 << 30}),
    )])
    .await;
    let report = arena.attack("huge").await;
    assert_failed(
        &report,
        "limit",
        &[&format!("exceeded its memory limit of {MEMORY_MIB} MiB")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gigabyte_document_never_reaches_the_host() {
    let arena = Arena::new(vec![hostile(
        "giant",
        json!({"attack": "giant-doc", "size": 1_000_000_000u64}),
    )])
    .await;
    let report = arena.attack("giant").await;
    assert_failed(
        &report,
        "limit",
        &[&format!("exceeded its memory limit of {MEMORY_MIB} MiB")],
    );
    assert_eq!(report.counts.received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_hangs_hits_the_wall_clock_limit() {
    let arena = Arena::new(vec![hostile("hang", json!({"attack": "hang"}))]).await;
    // This tenant's own (tighter) limits.
    let options = SyncOptions {
        limits: Some(SandboxLimits {
            wall_seconds: 2,
            ..arena.host.config().limits.clone()
        }),
        ..SyncOptions::default()
    };
    let started = Instant::now();
    let report = arena.attack_with("hang", SyncKind::Full, options).await;
    assert_failed(
        &report,
        "timeout",
        &["`full-sync` did not finish within 2 s"],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tight_loop_of_host_calls_is_rate_limited() {
    // Time inside the host is not guest CPU time: without the rate limit this loop would run
    // until the wall-clock limit (hours by default).
    let arena = Arena::new(vec![hostile("flood", json!({"attack": "host-call-flood"}))]).await;
    let started = Instant::now();
    let report = arena.attack("flood").await;
    assert_failed(
        &report,
        "limit",
        &[&format!(
            "exceeded its limit of {HOST_CALLS_PER_SECOND} host calls per second"
        )],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
