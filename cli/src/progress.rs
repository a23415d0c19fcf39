//! Progress lines for steps that take a while (a plugin build, a first compile, a sync).
//!
//! On a terminal a step is a spinner naming what it does, cleared when done; elsewhere nothing is
//! drawn, so logs and pipes stay clean — unless `TRIBUTARY_PROGRESS=plain`, which prints one
//! line when a step starts and one when it ends (for CI logs, and what tests assert on).
//! `TRIBUTARY_PROGRESS=off` silences it on a terminal too. Progress goes to stderr; stdout keeps
//! only results.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tributary_host::plugin::{CompileEvent, CompileHook};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A spinner (stderr is a terminal).
    Spinner,
    /// A line when a step starts and one when it ends.
    Plain,
    /// Nothing.
    Off,
}

/// The mode for this process: `TRIBUTARY_PROGRESS` (`plain`, `off`, `auto`), else a spinner
/// when stderr is a terminal.
pub fn mode() -> Mode {
    match std::env::var("TRIBUTARY_PROGRESS").as_deref() {
        Ok("plain") => Mode::Plain,
        Ok("off") => Mode::Off,
        _ if std::io::stderr().is_terminal() => Mode::Spinner,
        _ => Mode::Off,
    }
}

/// One step in progress; ends when finished or dropped. Shareable (`Arc<Step>`) with a task
/// that updates its message.
pub struct Step {
    bar: Option<indicatif::ProgressBar>,
    mode: Mode,
    what: String,
    started: Instant,
    done: AtomicBool,
}

impl Step {
    /// Starts a step described by `what` ("compiling x (18.9 MB component) — first load only").
    pub fn start(what: impl Into<String>) -> Self {
        let what = what.into();
        let mode = mode();
        let bar = match mode {
            Mode::Spinner => {
                let bar = indicatif::ProgressBar::new_spinner();
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(what.clone());
                Some(bar)
            }
            Mode::Plain => {
                eprintln!("… {what}");
                None
            }
            Mode::Off => None,
        };
        Self {
            bar,
            mode,
            what,
            started: Instant::now(),
            done: AtomicBool::new(false),
        }
    }

    /// Starts a step whose own output follows (a build tool's): a line instead of a spinner,
    /// which the tool's lines would tear, on a terminal too.
    pub fn start_line(what: impl Into<String>) -> Self {
        let what = what.into();
        let mode = match mode() {
            Mode::Off => Mode::Off,
            _ => Mode::Plain,
        };
        if mode == Mode::Plain {
            eprintln!("… {what}");
        }
        Self {
            bar: None,
            mode,
            what,
            started: Instant::now(),
            done: AtomicBool::new(false),
        }
    }

    /// Replaces the spinner's message (plain mode prints nothing: one line per step).
    pub fn update(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.into());
        }
    }

    /// Ends the step; `outcome` (e.g. "compiled x in 31.2 s") stays on screen in every mode but
    /// `off`.
    pub fn finish(&self, outcome: &str) {
        self.end(Some(outcome));
    }

    /// Whether the step has ended.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    fn end(&self, outcome: Option<&str>) {
        if self.done.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode == Mode::Off {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        match outcome {
            Some(text) => eprintln!("✓ {text} ({elapsed:.1} s)"),
            None if self.mode == Mode::Plain => eprintln!("✗ {} ({elapsed:.1} s)", self.what),
            None => {}
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.end(None);
    }
}

/// A compile hook that shows each compile missing the cache as a step.
pub fn compile_hook() -> CompileHook {
    let steps: Arc<Mutex<HashMap<String, Step>>> = Arc::default();
    Arc::new(move |event: &CompileEvent| {
        let Ok(mut steps) = steps.lock() else {
            return;
        };
        match event {
            CompileEvent::Started { label, bytes } => {
                let step = Step::start(format!(
                    "compiling {} ({:.1} MB component) — first load only, cached for this machine",
                    short_label(label),
                    *bytes as f64 / 1e6
                ));
                steps.insert(label.clone(), step);
            }
            CompileEvent::Finished { label, .. } => {
                if let Some(step) = steps.remove(label) {
                    step.finish(&format!("compiled {}", short_label(label)));
                }
            }
        }
    })
}

/// `bundled:dropbox` → `dropbox`; `/a/b/dist/x.wasm` → `x.wasm`.
fn short_label(label: &str) -> &str {
    let label = label.strip_prefix("bundled:").unwrap_or(label);
    label.rsplit('/').next().unwrap_or(label)
}
