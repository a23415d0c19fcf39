//! PDF text with `pdf-extract` (on `lopdf`), every page in order, pages separated by
//! blank lines.
//!
//! Guards around the third-party parser:
//! - the body must carry a `%PDF-` header in its first KiB;
//! - decompression bombs: while lopdf loads the file, a load filter inflates every
//!   Flate/LZW stream once with a bounded decoder and counts the total against
//!   `max_decompressed_bytes`; past it the load is abandoned with a `Failed` error.
//!   Image streams are emptied on load (their bytes are never text), so a page whose
//!   content points at an "image" stream cannot smuggle an unbounded one in. Streams
//!   whose filter chain the guard cannot bound (Flate/LZW behind another filter) are
//!   emptied too. Encrypted files are checked after loading (lopdf decrypts while
//!   loading and bypasses the filter); encrypted files with compressed object streams
//!   are refused as unsupported because those are inflated inside the load;
//! - recursion: pdf-extract follows page `Parent` chains and nested form XObjects
//!   recursively, and a cycle there would overflow the stack (which aborts the
//!   process; `catch_unwind` cannot help). Before text output, a loop in a page's
//!   `Parent` chain fails the file, and form XObjects that would recurse into
//!   themselves or nest deeper than 32 levels are emptied;
//! - output goes through a writer that stops at `max_output_bytes` and at the deadline;
//! - pdf-extract panics on many malformed files: [`crate::extract`] contains that.
//!
//! The load filter keeps its state in a thread-local, which relies on lopdf's `rayon`
//! feature being off (it is: pdf-extract disables lopdf's default features).

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use pdf_extract::{Document, LoadOptions, Object, ObjectId, OutputDev, OutputError};

use crate::detect::{Format, find};
use crate::error::{ExtractError, Result};
use crate::limits::{Budget, human_bytes};
use crate::text::Sink;

/// Extract a PDF body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    if find(&bytes[..bytes.len().min(1024)], b"%PDF-").is_none() {
        return Err(ExtractError::failed(
            Format::Pdf,
            "missing %PDF- header (not a PDF)",
        ));
    }
    let encrypted = find(bytes, b"/Encrypt").is_some();
    if encrypted && find(bytes, b"/ObjStm").is_some() {
        return Err(ExtractError::Unsupported(
            "pdf: encrypted PDF with compressed object streams (their decompression cannot be bounded)".into(),
        ));
    }

    let limit = sink.budget().inflate_limit();
    GUARD.with(|g| *g.borrow_mut() = Some(Guard::new(sink.budget().clone())));
    // clears the thread-local even if lopdf panics during the load
    let _clear = ClearGuard;
    let options = LoadOptions {
        password: None,
        filter: Some(load_filter),
        strict: false,
    };
    let loaded = Document::load_mem_with_options(bytes, options);
    let guard = GUARD.with(|g| g.borrow_mut().take());
    let mut doc = loaded.map_err(|e| ExtractError::failed(Format::Pdf, e))?;
    let Some(mut guard) = guard else {
        return Err(ExtractError::failed(
            Format::Pdf,
            "decompression guard missing",
        ));
    };
    if encrypted {
        if doc.objects.is_empty() || doc.is_encrypted() {
            return Err(ExtractError::Unsupported(
                "pdf: encrypted, needs a password".into(),
            ));
        }
        for (id, object) in doc.objects.iter_mut() {
            guard.check(*id, object);
        }
    }
    if let Some(id) = guard.over {
        return Err(ExtractError::failed(
            Format::Pdf,
            format!(
                "stream {} {} inflates past the {} limit",
                id.0,
                id.1,
                human_bytes(limit)
            ),
        ));
    }
    sink.budget().check_time()?;
    defuse_recursion(&mut doc)?;
    sink.budget().check_time()?;

    let state = Rc::new(RefCell::new(Collected {
        text: String::new(),
        max: sink_room(sink),
        full: false,
        timed_out: false,
        budget: sink.budget().clone(),
        writes: 0,
    }));
    let mut writer = CappedWriter(Rc::clone(&state));
    let result = {
        let writer: &mut dyn io::Write = &mut writer;
        let mut output = Pages {
            inner: pdf_extract::PlainTextOutput::new(writer),
            state: Rc::clone(&state),
        };
        pdf_extract::output_doc(&doc, &mut output)
    };
    let collected = state.borrow();
    if collected.timed_out {
        sink.budget().check_time()?;
    }
    match result {
        Ok(()) => {}
        Err(_) if collected.full => {}
        Err(e) => return Err(ExtractError::failed(Format::Pdf, e)),
    }
    sink.push(&collected.text);
    if collected.full {
        sink.mark_truncated();
    }
    Ok(())
}

fn sink_room(sink: &Sink) -> usize {
    // raw text before whitespace normalisation; allow some slack for collapsed runs
    sink.max_output_bytes()
        .saturating_mul(2)
        .saturating_add(1024)
}

/// Text collected from pdf-extract, bounded.
struct Collected {
    text: String,
    max: usize,
    full: bool,
    timed_out: bool,
    budget: Budget,
    writes: u32,
}

struct CappedWriter(Rc<RefCell<Collected>>);

impl io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut c = self.0.borrow_mut();
        c.writes = c.writes.wrapping_add(1);
        if c.writes.is_multiple_of(1024) && c.budget.check_time().is_err() {
            c.timed_out = true;
            return Err(io::Error::other("deadline passed"));
        }
        if c.text.len() + buf.len() > c.max {
            c.full = true;
            return Err(io::Error::other("output limit reached"));
        }
        c.text.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// pdf-extract's plain-text output plus a blank line between pages.
struct Pages<O> {
    inner: O,
    state: Rc<RefCell<Collected>>,
}

impl<O: OutputDev> OutputDev for Pages<O> {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &pdf_extract::MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> std::result::Result<(), OutputError> {
        self.inner.begin_page(page_num, media_box, art_box)
    }

    fn end_page(&mut self) -> std::result::Result<(), OutputError> {
        self.inner.end_page()?;
        let mut c = self.state.borrow_mut();
        if c.budget.check_time().is_err() {
            c.timed_out = true;
            return Err(OutputError::IoError(io::Error::other("deadline passed")));
        }
        c.text.push_str("\n\n");
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &pdf_extract::Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> std::result::Result<(), OutputError> {
        self.inner
            .output_character(trm, width, spacing, font_size, char)
    }

    fn begin_word(&mut self) -> std::result::Result<(), OutputError> {
        self.inner.begin_word()
    }

    fn end_word(&mut self) -> std::result::Result<(), OutputError> {
        self.inner.end_word()
    }

    fn end_line(&mut self) -> std::result::Result<(), OutputError> {
        self.inner.end_line()
    }
}

thread_local! {
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

/// Empties [`GUARD`] when dropped.
struct ClearGuard;

impl Drop for ClearGuard {
    fn drop(&mut self) {
        GUARD.with(|g| g.borrow_mut().take());
    }
}

/// Decompression accounting for one load.
struct Guard {
    budget: Budget,
    over: Option<ObjectId>,
}

impl Guard {
    fn new(budget: Budget) -> Self {
        Guard { budget, over: None }
    }

    /// Bound one object's stream; empties streams that are images, that cannot be
    /// bounded, or that arrive after the budget is spent.
    fn check(&mut self, id: ObjectId, object: &mut Object) {
        let Ok(stream) = object.as_stream_mut() else {
            return;
        };
        if self.over.is_some() {
            stream.content = Vec::new();
            return;
        }
        let is_image = stream
            .dict
            .get(b"Subtype")
            .and_then(Object::as_name)
            .is_ok_and(|n| n == b"Image");
        if is_image {
            stream.content = Vec::new();
            return;
        }
        let filters: Vec<Vec<u8>> = match stream.filters() {
            Ok(f) => f.into_iter().map(<[u8]>::to_vec).collect(),
            Err(_) => return, // no filter: stored as-is, bounded by the input size
        };
        let expanding = |f: &[u8]| matches!(f, b"FlateDecode" | b"Fl" | b"LZWDecode" | b"LZW");
        let Some(first) = filters.first() else {
            return;
        };
        if filters.iter().skip(1).any(|f| expanding(f)) {
            tracing::debug!(?id, "pdf stream with an unboundable filter chain dropped");
            stream.content = Vec::new();
            return;
        }
        if !expanding(first) {
            return;
        }
        let allowance = self.budget.inflate_left();
        let n = if first.starts_with(b"F") {
            inflated_len(&stream.content, allowance)
        } else {
            lzw_len(&stream.content, allowance)
        };
        if n > allowance || !self.budget.take_inflated(n) || self.budget.check_time().is_err() {
            self.over = Some(id);
            stream.content = Vec::new();
        }
    }
}

/// lopdf's load filter. For top-level objects lopdf keeps the (possibly modified)
/// object it passed in and only looks at whether we return `Some`; for objects
/// inside object streams (never streams themselves) it keeps what we return.
fn load_filter(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    GUARD.with(|g| {
        if let Some(guard) = g.borrow_mut().as_mut() {
            guard.check(id, object);
        }
    });
    if matches!(object, Object::Stream(_)) {
        Some((id, Object::Null))
    } else {
        Some((id, object.clone()))
    }
}

/// Bytes a zlib (or, failing that, raw deflate) stream inflates to, reading at most
/// `allowance + 1`.
fn inflated_len(data: &[u8], allowance: u64) -> u64 {
    let (n, ok) = count_read(&mut flate2::read::ZlibDecoder::new(data), allowance);
    if !ok && n == 0 && data.len() > 2 {
        // lopdf retries corrupt zlib as raw deflate; bound that path too
        return count_read(
            &mut flate2::read::DeflateDecoder::new(&data[2..]),
            allowance,
        )
        .0;
    }
    n
}

/// Bytes read from `r` until EOF, an error (lopdf keeps partial output, so it counts),
/// or more than `allowance`; plus whether it ended cleanly.
fn count_read(r: &mut dyn Read, allowance: u64) -> (u64, bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (total, true),
            Ok(n) => {
                total = total.saturating_add(n as u64);
                if total > allowance {
                    return (total, true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (total, false),
        }
    }
}

/// Bytes an LZW stream decodes to (bounded).
fn lzw_len(data: &[u8], allowance: u64) -> u64 {
    let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let mut total: u64 = 0;
    let mut out = vec![0u8; 64 * 1024];
    let mut input = data;
    loop {
        let r = decoder.decode_bytes(input, &mut out);
        total = total.saturating_add(r.consumed_out as u64);
        input = &input[r.consumed_in.min(input.len())..];
        if total > allowance || r.status.is_err() {
            return total;
        }
        if matches!(r.status, Ok(weezl::LzwStatus::Done))
            || (r.consumed_in == 0 && r.consumed_out == 0)
        {
            return total;
        }
    }
}

/// Deepest nesting of form XObjects followed.
const MAX_FORM_DEPTH: usize = 32;

/// Remove the recursion hazards pdf-extract does not guard against (see module docs).
fn defuse_recursion(doc: &mut Document) -> Result<()> {
    use std::collections::{HashMap, HashSet};

    // 1. page Parent chains must end
    for page in doc.get_pages().into_values() {
        let mut seen = HashSet::new();
        let mut current = page;
        while let Ok(parent) = doc
            .get_dictionary(current)
            .and_then(|d| d.get(b"Parent"))
            .and_then(Object::as_reference)
        {
            if !seen.insert(parent) || seen.len() > 256 {
                return Err(ExtractError::failed(
                    Format::Pdf,
                    "page tree Parent chain loops",
                ));
            }
            current = parent;
        }
    }

    // 2. form XObjects: which forms can each form invoke with `Do`?
    fn resolve<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Object> {
        match o {
            Object::Reference(id) => doc.get_object(*id).ok(),
            o => Some(o),
        }
    }
    let xobject_dict = |resources: &Object| -> Option<Vec<(Vec<u8>, ObjectId)>> {
        let resources = resolve(doc, resources)?.as_dict().ok()?;
        let xobjects = resolve(doc, resources.get(b"XObject").ok()?)?
            .as_dict()
            .ok()?;
        Some(
            xobjects
                .iter()
                .filter_map(|(name, o)| Some((name.clone(), o.as_reference().ok()?)))
                .collect(),
        )
    };
    let forms: Vec<ObjectId> = doc
        .objects
        .iter()
        .filter_map(|(id, o)| {
            let s = o.as_stream().ok()?;
            let subtype = s.dict.get(b"Subtype").and_then(Object::as_name).ok()?;
            (subtype == b"Form").then_some(*id)
        })
        .collect();
    if forms.is_empty() {
        return Ok(());
    }
    let form_set: HashSet<ObjectId> = forms.iter().copied().collect();
    // every name → object binding in any XObject resource dictionary (for forms that
    // inherit their caller's resources)
    let mut by_name: HashMap<Vec<u8>, HashSet<ObjectId>> = HashMap::new();
    for object in doc.objects.values() {
        let dict = match object {
            Object::Dictionary(d) => d,
            Object::Stream(s) => &s.dict,
            _ => continue,
        };
        if let Some(entries) = dict.get(b"Resources").ok().and_then(xobject_dict) {
            for (name, id) in entries {
                by_name.entry(name).or_default().insert(id);
            }
        }
    }
    let mut edges: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    for &form in &forms {
        let Ok(stream) = doc.get_object(form).and_then(Object::as_stream) else {
            continue;
        };
        let own = stream.dict.get(b"Resources").ok().and_then(xobject_dict);
        let content = stream
            .decompressed_content()
            .unwrap_or_else(|_| stream.content.clone());
        let Ok(content) = pdf_extract::content::Content::decode(&content) else {
            continue;
        };
        let mut targets = Vec::new();
        for op in content.operations.iter().filter(|op| op.operator == "Do") {
            let Some(Ok(name)) = op.operands.first().map(Object::as_name) else {
                continue;
            };
            match &own {
                Some(entries) => {
                    targets.extend(entries.iter().filter(|(n, _)| n == name).map(|(_, id)| *id))
                }
                None => targets.extend(by_name.get(name).into_iter().flatten().copied()),
            }
        }
        targets.retain(|t| form_set.contains(t));
        targets.sort();
        targets.dedup();
        edges.insert(form, targets);
    }

    // 2a. cycles: iterative DFS from every form; the target of a back edge is emptied,
    // which removes its outgoing edges and so breaks every cycle
    let mut doomed: HashSet<ObjectId> = HashSet::new();
    let mut done: HashSet<ObjectId> = HashSet::new();
    for &root in &forms {
        if done.contains(&root) {
            continue;
        }
        let mut on_path: Vec<ObjectId> = vec![root];
        let mut cursor: Vec<usize> = vec![0];
        while let (Some(&node), Some(i)) = (on_path.last(), cursor.last_mut()) {
            let next = edges.get(&node).and_then(|e| e.get(*i)).copied();
            *i += 1;
            match next {
                None => {
                    done.insert(node);
                    on_path.pop();
                    cursor.pop();
                }
                Some(child) if on_path.contains(&child) => {
                    doomed.insert(child);
                }
                Some(child) if done.contains(&child) => {}
                Some(child) => {
                    on_path.push(child);
                    cursor.push(0);
                }
            }
        }
    }
    // 2b. depth: in the now acyclic graph, forms with chains of MAX_FORM_DEPTH or more
    // forms below them are emptied too
    let no_edges: Vec<ObjectId> = Vec::new();
    let children = |n: &ObjectId| -> &Vec<ObjectId> {
        if doomed.contains(n) {
            &no_edges
        } else {
            edges.get(n).unwrap_or(&no_edges)
        }
    };
    let mut height: HashMap<ObjectId, usize> = HashMap::new();
    for &root in &forms {
        if height.contains_key(&root) {
            continue;
        }
        let mut stack: Vec<(ObjectId, usize)> = vec![(root, 0)];
        while let Some((node, i)) = stack.last().copied() {
            let kids = children(&node);
            if let Some(&child) = kids.get(i) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                if !height.contains_key(&child) {
                    stack.push((child, 0));
                }
            } else {
                let below = kids
                    .iter()
                    .filter_map(|k| height.get(k))
                    .max()
                    .copied()
                    .unwrap_or(0);
                height.insert(node, below + 1);
                stack.pop();
            }
        }
    }
    let too_deep: Vec<ObjectId> = height
        .iter()
        .filter(|(_, h)| **h >= MAX_FORM_DEPTH)
        .map(|(id, _)| *id)
        .collect();
    doomed.extend(too_deep);
    for id in doomed {
        tracing::debug!(?id, "pdf form XObject recursion cut");
        if let Ok(stream) = doc.get_object_mut(id).and_then(Object::as_stream_mut) {
            stream.dict.remove(b"Filter");
            stream.set_content(Vec::new());
        }
    }
    Ok(())
}
