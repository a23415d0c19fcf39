//! The embedded default index: one tantivy index per tenant index, under
//! `<data>/index/<tenant>/<name>/`.
//!
//! Each document is stored whole (`_source` JSON + `body`), keyed by connector and id so two
//! connectors writing one index never overwrite each other. Writers are opened lazily and shared
//! by the jobs of a process; tantivy's own lock file stops a second process from writing the same
//! index at once (it gets a clear error), while readers never block. How many writers are open at
//! once is bounded host-wide by `[sink] writer_memory` ([`writers`](super::writers)): an idle
//! writer is committed and closed to make room for another index's.
//!
//! Only writes create an index: a read of an index whose directory holds no tantivy index
//! answers empty and leaves nothing on disk (nor open), and [`Sink::indexes`] lists the
//! directories that hold one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use futures::future::BoxFuture;
use serde_json::Value;
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{
    FAST, Field, IndexRecordOption, JsonObjectOptions, STORED, STRING, Schema, TEXT,
    TextFieldIndexing, Value as _,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

pub(crate) use self::document::IndexDoc;
use super::backlog::{Backlog, Queued};
use super::writers::{Closable, Writers};
use super::{IndexRef, SearchRequest, SearchResults, Sink, SinkDocument, Versions, query};

mod directory;
mod document;
mod merge;
mod search;
mod upgrade;
mod words;

/// How long a busy writer lock is waited for before it is reported.
const WRITER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Bytes of indexing buffer per open writer. Measured (`sync_memory` bench): tantivy's 15 MB
/// minimum flushes a segment every few large documents, and merging those cost twice the CPU
/// and more memory than the arena saves, so the arena stays at 48 MB.
const WRITER_HEAP: usize = 48 * 1024 * 1024;
/// Bytes of documents a writer may hold queued ahead of its indexing thread (see [`Backlog`]).
/// Two 1 MB documents keep the indexing thread busy while the next is prepared; more only
/// holds bodies (the `sync_memory` bench's Box mix peaked 6 MB lower than with 8 MB, same speed).
const WRITER_QUEUE_BYTES: usize = 2 * 1024 * 1024;
/// Default `[sink] writer_memory`: three writers of [`WRITER_HEAP`] and [`WRITER_QUEUE_BYTES`],
/// so one sync (its content and access-control indexes) never waits for a writer.
pub const DEFAULT_WRITER_MEMORY: u64 = 3 * (WRITER_HEAP + WRITER_QUEUE_BYTES) as u64;
/// Separator inside `_key` (connector, id); a control character no sane id contains.
const KEY_SEP: char = '\u{1f}';

/// The tantivy fields. `words`, `values` and `tie` are `None` in an index made before fields
/// were searchable by name (a legacy index: read for versions and gets, upgraded on write).
#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    id: Field,
    connector: Field,
    version: Field,
    title: Field,
    body: Field,
    text: Field,
    source: Field,
    acl: Field,
    words: Option<Field>,
    values: Option<Field>,
    tie: Option<Field>,
}

/// The analysed copy of every document field (`name:contacts`), by JSON path.
const WORDS: &str = "_words";
/// The exact copy of every document field (`type:File`, ranges, prefixes, sort, facets): raw
/// strings (cut to [`VALUE_MAX`] bytes), numbers and dates, indexed and columnar.
const VALUES: &str = "_values";
/// A stable 64-bit hash of the document key: the tie-breaker of every sort, so a cursor
/// names one position in a total order.
const TIE: &str = "_tie";
/// Bytes of a string kept in [`VALUES`] (as Elasticsearch's `ignore_above: 256` keyword).
const VALUE_MAX: usize = 256;
/// Marks, in `_allow_access_control`, a document that has none: visible to everyone.
const PUBLIC_MARK: &str = "\u{0}public";

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let words = JsonObjectOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let values = JsonObjectOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_fast(Some("raw"));
    let fields = Fields {
        key: b.add_text_field("_key", STRING),
        id: b.add_text_field("_id", STRING | STORED | FAST),
        connector: b.add_text_field("_connector", STRING | STORED | FAST),
        version: b.add_text_field("_version", STRING | STORED | FAST),
        title: b.add_text_field("title", TEXT | STORED),
        body: b.add_text_field("body", TEXT | STORED),
        text: b.add_text_field("text", TEXT),
        source: b.add_text_field("_source", STORED),
        acl: b.add_text_field("_allow_access_control", STRING),
        words: Some(b.add_json_field(WORDS, words)),
        values: Some(b.add_json_field(VALUES, values)),
        tie: Some(b.add_u64_field(TIE, FAST)),
    };
    (b.build(), fields)
}

impl Fields {
    /// The fields of an opened index's schema (current or legacy).
    fn of(schema: &Schema) -> anyhow::Result<Self> {
        let get = |name: &str| {
            schema.get_field(name).map_err(|_| {
                anyhow!("the index has no `{name}` field: it is not a tributary index")
            })
        };
        Ok(Fields {
            key: get("_key")?,
            id: get("_id")?,
            connector: get("_connector")?,
            version: get("_version")?,
            title: get("title")?,
            body: get("body")?,
            text: get("text")?,
            source: get("_source")?,
            acl: get("_allow_access_control")?,
            words: schema.get_field(WORDS).ok(),
            values: schema.get_field(VALUES).ok(),
            tie: schema.get_field(TIE).ok(),
        })
    }

    fn is_legacy(&self) -> bool {
        self.words.is_none() || self.values.is_none() || self.tie.is_none()
    }
}

/// The tie-breaker of a document key (first 8 bytes of its SHA-256: stable across versions
/// and platforms, unlike `std`'s hasher).
fn tie_of(connector: &str, id: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(OpenIndex::key(connector, id).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// `value` with strings cut to [`VALUE_MAX`] bytes (at a character boundary).
fn clipped(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > VALUE_MAX => {
            Value::String(crate::text::truncate(s, VALUE_MAX).to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(clipped).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), clipped(v))).collect())
        }
        other => other.clone(),
    }
}

/// An open writer and what it was handed since its last commit.
///
/// Invariant: documents are handed over under the writer lock, through a searcher opened under
/// that lock ([`Writing::committed`]), which shows every commit made so far, whoever made it.
/// [`Writing::uncommitted`] holds what was added since this writer's last commit (cleared by
/// that commit, under the lock). So a key that neither holds is in no document, and replacing
/// it needs no delete: a full sync of new documents queues none. Each queued delete is a
/// tantivy query (~270 bytes) held until the commit, 4.6 MB for the 17,000 documents of the
/// `sync_memory` bench's Dropbox mix.
///
/// The searcher is a reader of its own, not the index's shared one: the shared reader holds its
/// segments until its next reload, and reloading it whenever a writer opened kept segments
/// merged away meanwhile mapped, with the pages the merge read (100 tenants' syncs: 1,007 MB
/// peak RSS against 682 MB, 376 MB of it document stores). It is kept for the batches that
/// follow ([`Writing::committed`]) until the next commit, or for [`SEARCHER_TTL`] at most, so
/// a merge's segments stay mapped no longer than that. Opening one per batch (meta.json and
/// its schema parsed, a lock file taken, every segment opened) was 7 % of the Box mix's CPU,
/// whose 1 MB bodies make batches of two documents.
struct Writing {
    writer: IndexWriter<Queued>,
    /// Hashes of the keys added since the last commit. A collision only costs a needless delete.
    uncommitted: std::collections::HashSet<u64>,
    hasher: std::hash::RandomState,
    /// A searcher opened since the last commit, and when.
    searcher: Option<(tantivy::Searcher, std::time::Instant)>,
    /// Searchers opened by this writer (tests count them).
    #[cfg(test)]
    opened: usize,
}

/// Longest a searcher of committed documents serves batches (see [`Writing`]).
const SEARCHER_TTL: std::time::Duration = std::time::Duration::from_millis(500);

impl Writing {
    fn new(writer: IndexWriter<Queued>) -> Self {
        Self {
            writer,
            uncommitted: Default::default(),
            hasher: Default::default(),
            searcher: None,
            #[cfg(test)]
            opened: 0,
        }
    }

    /// A searcher of every commit made so far (opened under the writer lock, which every commit
    /// takes): the one kept since the last commit while it is younger than [`SEARCHER_TTL`],
    /// else a new one.
    fn committed(&mut self, index: &Index) -> anyhow::Result<tantivy::Searcher> {
        if let Some((searcher, at)) = &self.searcher
            && at.elapsed() < SEARCHER_TTL
        {
            return Ok(searcher.clone());
        }
        self.searcher = None;
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .num_warming_threads(0)
            .try_into()
            .context("opening an index reader")?;
        let searcher = reader.searcher();
        self.searcher = Some((searcher.clone(), std::time::Instant::now()));
        #[cfg(test)]
        {
            self.opened += 1;
        }
        Ok(searcher)
    }

    /// Commits what was handed over: the keys added are now in the commit, and the searcher
    /// kept does not show them.
    fn commit(&mut self) -> anyhow::Result<()> {
        self.writer.commit().context("committing the index")?;
        self.uncommitted = Default::default();
        self.searcher = None;
        Ok(())
    }

    /// Adds `doc` under `key`, first deleting whatever the index may hold under it.
    fn replace(
        &mut self,
        searcher: &tantivy::Searcher,
        key: Term,
        doc: Queued,
    ) -> anyhow::Result<()> {
        use std::hash::BuildHasher;
        let fresh = self
            .uncommitted
            .insert(self.hasher.hash_one(key.serialized_term()))
            && searcher.doc_freq(&key)? == 0;
        if !fresh {
            self.writer.delete_term(key);
        }
        self.writer.add_document(doc)?;
        Ok(())
    }
}

struct OpenIndex {
    /// Where its files are (the merge policy weighs segments by their files).
    dir: PathBuf,
    index: Index,
    writer: Mutex<Option<Writing>>,
    backlog: std::sync::Arc<Backlog>,
    reader: IndexReader,
    fields: Fields,
    /// This index's name in the writer budget.
    id: u64,
    writers: Arc<Writers>,
    /// Itself, handed to the budget so another write may close this index's idle writer.
    me: std::sync::Weak<OpenIndex>,
    /// Why the last close of this index's writer (by the budget) failed to commit: reported by
    /// the next commit, so the job whose documents those were fails.
    close_failure: Mutex<Option<String>>,
}

/// A new index's settings (kept in its `meta.json`): tantivy's, except that the document store
/// compresses each block on the indexing thread. Its dedicated thread takes blocks through a
/// queue of three, and a block holds at least one whole stored document: with 1 MB bodies that
/// held ~4 MB more per writer (`sync_memory` bench, Box mix: 64–65 MB peak against 67–68),
/// for no measurable speed on two cores.
fn settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_compress_dedicated_thread: false,
        ..Default::default()
    }
}

/// Names open indexes in the writer budget.
static NEXT_INDEX_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Closable for OpenIndex {
    fn close_if_idle(&self) -> Option<anyhow::Result<()>> {
        let mut guard = self.writer.try_lock().ok()?;
        let Writing { mut writer, .. } = guard.take()?;
        let result = match writer.commit() {
            Ok(_) => writer
                .wait_merging_threads()
                .context("finishing the merges of a closing index writer"),
            Err(e) => Err(anyhow!(e).context("committing an index writer before closing it")),
        };
        // The writer (and its directory lock) is gone before the slot is given away.
        self.writers.leave(self.id);
        if let Err(e) = &result {
            *self.close_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
        }
        drop(guard);
        Some(result)
    }
}

impl OpenIndex {
    fn open(dir: &Path, writers: Arc<Writers>) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let directory = directory::IndexDirectory::open(dir)
            .with_context(|| format!("opening index directory {}", dir.display()))?;
        let index = if holds_index(dir) {
            Index::open(directory)
        } else {
            Index::create(directory, schema().0, settings())
        }
        .with_context(|| format!("opening the index at {}", dir.display()))?;
        // Before any writer or query asks for it: the same tokens as tantivy's, faster.
        index.tokenizers().register("default", words::analyzer());
        let fields = Fields::of(&index.schema())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .context("opening an index reader")?;
        Ok(Arc::new_cyclic(|me| Self {
            dir: dir.to_path_buf(),
            index,
            writer: Mutex::new(None),
            backlog: Backlog::new(WRITER_QUEUE_BYTES),
            reader,
            fields,
            id: NEXT_INDEX_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            writers,
            me: me.clone(),
            close_failure: Mutex::new(None),
        }))
    }

    /// Opens the index's one writer. Runs on a blocking thread: a writer still held by a job
    /// that is winding down in this process (its last commit running after the job was
    /// stopped) releases the lock within moments, so a busy lock is retried for a few seconds
    /// before it is reported as another process's.
    fn open_writer(&self, heap: usize) -> anyhow::Result<IndexWriter<Queued>> {
        let deadline = std::time::Instant::now() + WRITER_LOCK_WAIT;
        loop {
            match self.index.writer_with_num_threads(1, heap) {
                Ok(writer) => {
                    writer.set_merge_policy(Box::new(merge::BySize {
                        dir: self.dir.clone(),
                    }));
                    return Ok(writer);
                }
                Err(tantivy::TantivyError::LockFailure(..))
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(tantivy::TantivyError::LockFailure(..)) => {
                    return Err(anyhow!(
                        "the index is being written by another tributary process; wait for it to finish"
                    ));
                }
                Err(other) => return Err(anyhow!(other).context("opening the index writer")),
            }
        }
    }

    fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut Writing) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| anyhow!("index writer lock poisoned"))?;
        if guard.is_none() {
            // Holding only this index's writer lock: a slot is freed by closing another index's
            // idle writer, never by waiting on a lock another waiter holds.
            let me: std::sync::Weak<dyn Closable> = self.me.clone();
            self.writers.enter(self.id, me);
            match self.open_writer(self.writers.heap()) {
                Ok(writer) => *guard = Some(Writing::new(writer)),
                Err(e) => {
                    self.writers.leave(self.id);
                    return Err(e);
                }
            }
        } else {
            self.writers.touch(self.id);
        }
        let result = match guard.as_mut() {
            Some(writer) => f(writer),
            None => Err(anyhow!("index writer unavailable")),
        };
        // The grace before another index may take this slot counts from the end of the write.
        self.writers.touch(self.id);
        result
    }

    fn key(connector: &str, id: &str) -> String {
        format!("{connector}{KEY_SEP}{id}")
    }

    fn stored(&self, doc: &TantivyDocument) -> SinkDocument {
        let f = self.fields;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let fields = text(f.source)
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        SinkDocument {
            id: text(f.id).unwrap_or_default(),
            connector: text(f.connector).unwrap_or_default(),
            version: text(f.version),
            fields,
            body: text(f.body),
        }
    }

    /// Each document is moved to the writer (see [`IndexDoc`]), so a batch is not held twice,
    /// and documents are handed over only while the writer's queue has room (see [`Backlog`]).
    fn upsert(&self, docs: Vec<SinkDocument>) -> anyhow::Result<()> {
        let mut docs = docs.into_iter().peekable();
        while docs.peek().is_some() {
            self.with_writer(|w| {
                let searcher = w.committed(&self.index)?;
                for doc in docs.by_ref() {
                    let bytes = doc.body.as_ref().map_or(0, String::len) + doc.id.len() + 256;
                    let doc = IndexDoc::new(self.fields, doc);
                    let key = Term::from_field_text(self.fields.key, doc.key());
                    w.replace(&searcher, key, self.backlog.queue(doc, bytes))?;
                    if self.backlog.full() {
                        break;
                    }
                }
                Ok(())
            })?;
            // Outside the writer lock: the indexing thread catches up before more is handed over.
            self.backlog.wait();
        }
        Ok(())
    }

    fn delete(&self, connector: &str, ids: &[String]) -> anyhow::Result<()> {
        self.with_writer(|w| {
            for id in ids {
                w.writer.delete_term(Term::from_field_text(
                    self.fields.key,
                    &Self::key(connector, id),
                ));
            }
            Ok(())
        })
    }

    /// Commits the open writer, if any: a writer closed meanwhile by the budget committed
    /// itself, and its failure, if it failed, is this commit's.
    fn commit(&self) -> anyhow::Result<()> {
        {
            let mut guard = self
                .writer
                .lock()
                .map_err(|_| anyhow!("index writer lock poisoned"))?;
            let failure = self
                .close_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(failure) = failure {
                return Err(anyhow!(
                    "documents written before this commit were lost: {failure}"
                ));
            }
            if let Some(w) = guard.as_mut() {
                // Under the writer lock (see [`Writing`]).
                w.commit()?;
            }
        }
        self.reader.reload().context("reloading the index reader")
    }

    fn versions(&self, connector: &str) -> anyhow::Result<Versions> {
        self.reader.reload().context("reloading the index reader")?;
        let searcher = self.reader.searcher();
        let mut out = Versions::new();
        let (mut id, mut conn, mut version) = (String::new(), String::new(), String::new());
        for segment in searcher.segment_readers() {
            let fast = segment.fast_fields();
            let (Some(ids), Some(conns), versions) = (
                fast.str("_id")?,
                fast.str("_connector")?,
                fast.str("_version")?,
            ) else {
                continue;
            };
            for doc in segment.doc_ids_alive() {
                conn.clear();
                if let Some(ord) = conns.term_ords(doc).next() {
                    conns.ord_to_str(ord, &mut conn)?;
                }
                if conn != connector {
                    continue;
                }
                id.clear();
                if let Some(ord) = ids.term_ords(doc).next() {
                    ids.ord_to_str(ord, &mut id)?;
                }
                let v = match &versions {
                    Some(col) => match col.term_ords(doc).next() {
                        Some(ord) => {
                            version.clear();
                            col.ord_to_str(ord, &mut version)?;
                            Some(version.as_str())
                        }
                        None => None,
                    },
                    None => None,
                };
                out.insert(&id, v)?;
            }
        }
        Ok(out)
    }

    fn search(&self, request: &SearchRequest) -> anyhow::Result<SearchResults> {
        if self.fields.is_legacy() {
            return Err(anyhow!(
                "this index was built by an older tributary whose index cannot be searched by \
                 field; the next sync of its connector upgrades it"
            ));
        }
        self.reader.reload().context("reloading the index reader")?;
        search::run(self, request)
    }

    fn get(&self, connector: &str, ids: &[String]) -> anyhow::Result<Vec<SinkDocument>> {
        self.reader.reload().context("reloading the index reader")?;
        let searcher = self.reader.searcher();
        let mut out = Vec::new();
        for id in ids {
            let term = Term::from_field_text(self.fields.key, &Self::key(connector, id));
            let query = TermQuery::new(term, IndexRecordOption::Basic);
            for (_, address) in searcher.search(&query, &TopDocs::with_limit(1))? {
                let doc: TantivyDocument = searcher.doc(address)?;
                out.push(self.stored(&doc));
            }
        }
        Ok(out)
    }
}

fn collect_strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .for_each(|(_, v)| collect_strings(v, out)),
        _ => {}
    }
}

/// A directory name safe on every filesystem for an operator-chosen name.
fn dir_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            out.push(c);
        } else {
            out.push_str(&format!("%{:X}", c as u32));
        }
    }
    if out.is_empty() || out.starts_with("..") || out == "." {
        out.insert(0, '%');
    }
    out
}

/// The index name a directory was made for by [`dir_name`]; a name that does not decode back
/// to the same directory is shown as the directory name.
fn name_of_dir(dir: &str) -> String {
    let decoded = (|| {
        let mut out = String::new();
        let mut chars = dir.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                let hex: String = chars.by_ref().take(2).collect();
                let code = u32::from_str_radix(&hex, 16).ok()?;
                out.push(char::from_u32(code)?);
            } else {
                out.push(c);
            }
        }
        Some(out)
    })();
    match decoded {
        Some(name) if dir_name(&name) == dir => name,
        _ => dir.to_string(),
    }
}

/// The embedded tantivy sink.
#[derive(Clone)]
pub struct EmbeddedIndex {
    root: PathBuf,
    open: Arc<Mutex<HashMap<IndexRef, Arc<OpenIndex>>>>,
    writers: Arc<Writers>,
}

impl EmbeddedIndex {
    /// Indexes live under `root`; writers share [`DEFAULT_WRITER_MEMORY`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let slots = (DEFAULT_WRITER_MEMORY / (WRITER_HEAP + WRITER_QUEUE_BYTES) as u64) as usize;
        Self::with_writers(root.into(), Writers::fixed(slots, WRITER_HEAP))
    }

    /// Indexes live under `root`; their open writers share `writer_memory` bytes (`[sink]
    /// writer_memory`). Too little for one writer is an error naming the setting.
    pub fn with_writer_memory(
        root: impl Into<PathBuf>,
        writer_memory: u64,
    ) -> anyhow::Result<Self> {
        let writers = Writers::new(writer_memory, WRITER_HEAP, WRITER_QUEUE_BYTES)?;
        Ok(Self::with_writers(root.into(), writers))
    }

    fn with_writers(root: PathBuf, writers: Arc<Writers>) -> Self {
        Self {
            root,
            open: Arc::default(),
            writers,
        }
    }

    /// The open index, opening it first — and creating it only when `create` (writes).
    fn index(&self, index: &IndexRef, create: bool) -> anyhow::Result<Option<Arc<OpenIndex>>> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| anyhow!("index table lock poisoned"))?;
        if let Some(found) = open.get(index) {
            if !(create && found.fields.is_legacy()) {
                return Ok(Some(found.clone()));
            }
            open.remove(index);
        }
        let dir = self
            .root
            .join(dir_name(&index.tenant))
            .join(dir_name(&index.name));
        upgrade::recover(&dir).with_context(|| format!("upgrading index {index}"))?;
        if !create && !holds_index(&dir) {
            return Ok(None);
        }
        let opened = OpenIndex::open(&dir, self.writers.clone())
            .with_context(|| format!("index {index}"))?;
        let opened = upgrade::upgrade(opened, &self.writers, create)
            .with_context(|| format!("upgrading index {index}"))?;
        open.insert(index.clone(), opened.clone());
        Ok(Some(opened))
    }

    /// Runs a write on `index`, creating it if needed.
    fn blocking<R: Send + 'static>(
        &self,
        index: IndexRef,
        f: impl FnOnce(&OpenIndex) -> anyhow::Result<R> + Send + 'static,
    ) -> BoxFuture<'_, anyhow::Result<R>> {
        Box::pin(async move {
            let opened = self
                .index(&index, true)?
                .ok_or_else(|| anyhow!("index {index} could not be created"))?;
            run(index, opened, f).await
        })
    }

    /// Runs a read on `index`; `absent` is the answer when it does not exist.
    fn reading<R: Send + 'static>(
        &self,
        index: IndexRef,
        absent: R,
        f: impl FnOnce(&OpenIndex) -> anyhow::Result<R> + Send + 'static,
    ) -> BoxFuture<'_, anyhow::Result<R>> {
        Box::pin(async move {
            match self.index(&index, false)? {
                Some(opened) => run(index, opened, f).await,
                None => Ok(absent),
            }
        })
    }

    fn list(&self, tenant: &str) -> anyhow::Result<Vec<String>> {
        let dir = self.root.join(dir_name(tenant));
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(anyhow!(e).context(format!("listing {}", dir.display()))),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let Some(file) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if file.contains(ASIDE) {
                continue;
            }
            let name = name_of_dir(&file);
            if holds_index(&entry.path()) && !IndexRef::new(tenant, name.as_str()).is_acl() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Forgets the tenant's open indexes (their writers and readers are dropped with the last
    /// job holding them), then removes its directory.
    fn remove_tenant(&self, tenant: &str) -> anyhow::Result<()> {
        self.open
            .lock()
            .map_err(|_| anyhow!("index table lock poisoned"))?
            .retain(|index, _| index.tenant != tenant);
        let dir = self.root.join(dir_name(tenant));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("removing {}", dir.display()))),
        }
    }

    fn list_tenants(&self) -> anyhow::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(anyhow!(e).context(format!("listing {}", self.root.display()))),
        };
        let mut tenants = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", self.root.display()))?;
            let Some(file) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let holds_any = std::fs::read_dir(entry.path())
                .map(|inner| inner.flatten().any(|e| holds_index(&e.path())))
                .unwrap_or(false);
            if holds_any {
                tenants.push(name_of_dir(&file));
            }
        }
        tenants.sort();
        Ok(tenants)
    }
}

async fn run<R: Send + 'static>(
    index: IndexRef,
    opened: Arc<OpenIndex>,
    f: impl FnOnce(&OpenIndex) -> anyhow::Result<R> + Send + 'static,
) -> anyhow::Result<R> {
    tokio::task::spawn_blocking(move || f(&opened))
        .await
        .context("index task failed")?
        .with_context(|| format!("index {index}"))
}

/// A working directory beside index directory `dir`: `%~` never occurs in a name [`dir_name`]
/// makes, so it collides with no index, and [`EmbeddedIndex::list`] skips it.
fn aside(dir: &Path, what: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!("{ASIDE}{what}"));
    dir.with_file_name(name)
}

/// Marks a working directory (see [`aside`]).
const ASIDE: &str = "%~";

/// Whether `dir` holds a tantivy index (its `meta.json` is written when the index is created).
fn holds_index(dir: &Path) -> bool {
    dir.join("meta.json").is_file()
}

impl Sink for EmbeddedIndex {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn upsert(
        &self,
        index: IndexRef,
        docs: Vec<SinkDocument>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        self.blocking(index, move |i| i.upsert(docs))
    }

    fn delete(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        self.blocking(index, move |i| i.delete(&connector, &ids))
    }

    fn commit(&self, index: IndexRef) -> BoxFuture<'_, anyhow::Result<()>> {
        self.blocking(index, |i| i.commit())
    }

    fn versions(
        &self,
        index: IndexRef,
        connector: String,
    ) -> BoxFuture<'_, anyhow::Result<Versions>> {
        self.reading(index, Versions::new(), move |i| i.versions(&connector))
    }

    fn search(
        &self,
        index: IndexRef,
        request: SearchRequest,
    ) -> BoxFuture<'_, anyhow::Result<SearchResults>> {
        Box::pin(async move {
            // The query is checked even when the index does not exist yet.
            query::parse(&request.query)?;
            self.reading(index, SearchResults::default(), move |i| i.search(&request))
                .await
        })
    }

    fn get(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<SinkDocument>>> {
        self.reading(index, Vec::new(), move |i| i.get(&connector, &ids))
    }

    fn indexes(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.list(&tenant))
                .await
                .context("index task failed")?
        })
    }

    fn drop_tenant(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<()>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.remove_tenant(&tenant))
                .await
                .context("index task failed")?
        })
    }

    fn tenants(&self) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.list_tenants())
                .await
                .context("index task failed")?
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    pub(super) fn doc(
        connector: &str,
        id: &str,
        version: &str,
        title: &str,
        body: &str,
    ) -> SinkDocument {
        let Value::Object(fields) = json!({"id": id, "title": title, "path": format!("/docs/{title}"), "_allow_access_control": ["email:ann@example.com"]})
        else {
            unreachable!()
        };
        SinkDocument {
            id: id.into(),
            connector: connector.into(),
            version: Some(version.into()),
            fields,
            body: Some(body.into()),
        }
    }

    /// Index directories under `root` whose writer is open now: tantivy holds an exclusive
    /// `flock` on the lock file exactly while a writer lives (the file itself stays).
    fn open_writer_dirs(root: &Path) -> usize {
        let locked = |dir: &Path| {
            std::fs::File::open(dir.join(".tantivy-writer.lock"))
                .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
        };
        let mut seen = Vec::new();
        for tenant in std::fs::read_dir(root).into_iter().flatten().flatten() {
            for index in std::fs::read_dir(tenant.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if locked(&index.path()) {
                    seen.push(index.path());
                }
            }
        }
        // One pass is no snapshot: a writer closed after its directory was looked at and the
        // next one opened before the later directory was would count twice. Those seen are
        // looked at again in reverse order: the first one still locked after the last one was
        // seen locked (again) was open at the same time.
        seen.iter().rev().filter(|dir| locked(dir)).count()
    }

    #[tokio::test]
    async fn writers_beyond_the_host_budget_are_committed_and_closed_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        // Room for two writers.
        let budget = 2 * (WRITER_HEAP + WRITER_QUEUE_BYTES) as u64;
        let sink = EmbeddedIndex::with_writer_memory(dir.path(), budget).unwrap();
        let indexes: Vec<IndexRef> = (0..6)
            .map(|i| IndexRef::new(format!("tenant-{i}"), "docs"))
            .collect();
        // Every index is written and none committed: a writer per index would stay open.
        for (i, ix) in indexes.iter().enumerate() {
            let docs = (0..20)
                .map(|d| doc("c", &format!("{i}-{d}"), "v1", "title", "some body words"))
                .collect();
            sink.upsert(ix.clone(), docs).await.unwrap();
            assert!(
                open_writer_dirs(dir.path()) <= 2,
                "{} writers open after writing {} indexes",
                open_writer_dirs(dir.path()),
                i + 1
            );
        }
        assert_eq!(sink.writers.open_now(), 2);
        // The closed writers committed what they held: their documents are readable before
        // their own commit, and after it.
        assert_eq!(
            sink.versions(indexes[0].clone(), "c".into())
                .await
                .unwrap()
                .len(),
            20
        );
        for ix in &indexes {
            sink.commit(ix.clone()).await.unwrap();
            assert_eq!(
                sink.versions(ix.clone(), "c".into()).await.unwrap().len(),
                20,
                "{ix}"
            );
        }
        // A closed writer reopens for the next write of its index.
        sink.upsert(indexes[0].clone(), vec![doc("c", "late", "v1", "t", "b")])
            .await
            .unwrap();
        sink.commit(indexes[0].clone()).await.unwrap();
        assert_eq!(
            sink.versions(indexes[0].clone(), "c".into())
                .await
                .unwrap()
                .len(),
            21
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_indexes_written_at_once_share_one_writer_without_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        // Room for one (smaller) writer only.
        let sink = EmbeddedIndex::with_writer_memory(dir.path(), 30 << 20).unwrap();
        assert_eq!(sink.writers.slots(), 1);
        let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let watcher = {
            let (root, watching) = (dir.path().to_path_buf(), watching.clone());
            std::thread::spawn(move || {
                let mut most = 0;
                while watching.load(std::sync::atomic::Ordering::Relaxed) {
                    most = most.max(open_writer_dirs(&root));
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                most
            })
        };
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8 {
            let sink = sink.clone();
            tasks.spawn(async move {
                let ix = IndexRef::new(format!("t{t}"), "docs");
                for batch in 0..5 {
                    let docs = (0..10)
                        .map(|d| doc("c", &format!("{batch}-{d}"), "v1", "title", "body"))
                        .collect();
                    sink.upsert(ix.clone(), docs).await.unwrap();
                }
                sink.commit(ix.clone()).await.unwrap();
                sink.versions(ix, "c".into()).await.unwrap().len()
            });
        }
        let counts = tokio::time::timeout(std::time::Duration::from_secs(120), async {
            let mut counts = Vec::new();
            while let Some(n) = tasks.join_next().await {
                counts.push(n.unwrap());
            }
            counts
        })
        .await
        .expect("the writes finish: no write waits on another forever");
        watching.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(counts, vec![50; 8]);
        assert_eq!(
            watcher.join().unwrap(),
            1,
            "at most one writer open at any moment"
        );
    }

    /// The tantivy index of `ix` under `root`, opened afresh (as another process would).
    fn on_disk(root: &Path, ix: &IndexRef) -> Index {
        Index::open_in_dir(root.join(dir_name(&ix.tenant)).join(dir_name(&ix.name))).unwrap()
    }

    /// `(live documents, their ids and versions)` of `ix` as another process sees it.
    fn live(root: &Path, ix: &IndexRef) -> (u64, Vec<(String, String)>) {
        let index = on_disk(root, ix);
        let searcher = index.reader().unwrap().searcher();
        let (_, fields) = schema();
        let mut seen = Vec::new();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(1).unwrap();
            for d in segment.doc_ids_alive() {
                let doc: TantivyDocument = store.get(d).unwrap();
                let text = |f| {
                    doc.get_first(f)
                        .and_then(|v| v.as_str())
                        .unwrap()
                        .to_string()
                };
                seen.push((text(fields.id), text(fields.version)));
            }
        }
        seen.sort();
        (searcher.num_docs(), seen)
    }

    #[tokio::test]
    async fn new_documents_queue_no_deletes_and_every_replacement_still_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let ix = IndexRef::new("acme", "docs");
        let a = EmbeddedIndex::new(dir.path());
        // New documents: one operation each, the add, then the commit's. A delete ahead of each
        // (what every upsert queued before) would make 601.
        let docs = (0..300)
            .map(|i| doc("c", &format!("n{i}"), "v1", "t", "first"))
            .collect();
        a.upsert(ix.clone(), docs).await.unwrap();
        a.commit(ix.clone()).await.unwrap();
        assert_eq!(on_disk(dir.path(), &ix).load_metas().unwrap().opstamp, 301);

        // The same id twice before a commit, and an id committed earlier: each is replaced.
        a.upsert(ix.clone(), vec![doc("c", "twice", "v1", "t", "b")])
            .await
            .unwrap();
        a.upsert(
            ix.clone(),
            vec![
                doc("c", "twice", "v2", "t", "b"),
                doc("c", "n7", "v2", "t", "b"),
                doc("other", "n8", "v1", "t", "b"),
            ],
        )
        .await
        .unwrap();
        a.commit(ix.clone()).await.unwrap();

        // Another process writes while this one's writer is closed (by the writer budget): the
        // next writer of this process sees that commit before it decides what to delete.
        a.index(&ix, false)
            .unwrap()
            .unwrap()
            .close_if_idle()
            .unwrap()
            .unwrap();
        let b = EmbeddedIndex::new(dir.path());
        b.upsert(ix.clone(), vec![doc("c", "elsewhere", "v1", "t", "b")])
            .await
            .unwrap();
        b.commit(ix.clone()).await.unwrap();
        b.index(&ix, false)
            .unwrap()
            .unwrap()
            .close_if_idle()
            .unwrap()
            .unwrap();
        a.upsert(ix.clone(), vec![doc("c", "elsewhere", "v2", "t", "b")])
            .await
            .unwrap();
        a.commit(ix.clone()).await.unwrap();

        let (count, seen) = live(dir.path(), &ix);
        let twice: Vec<_> = seen.windows(2).filter(|w| w[0].0 == w[1].0).collect();
        assert_eq!(count, 303, "ids held twice: {twice:?}");
        let version = |id: &str| {
            seen.iter()
                .filter(|(i, _)| i == id)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(version("twice"), ["v2"]);
        assert_eq!(version("elsewhere"), ["v2"]);
        assert_eq!(version("n7"), ["v2"]);
        // the same id under another connector is another document
        assert_eq!(version("n8"), ["v1", "v1"]);
    }

    /// Batches between two commits share one searcher of the committed documents (opening one
    /// per batch parsed meta.json and opened every segment each time); a commit drops it, so
    /// the next batch sees what was committed and still replaces it.
    #[tokio::test]
    async fn batches_between_commits_share_a_searcher_that_each_commit_renews() {
        let dir = tempfile::tempdir().unwrap();
        let ix = IndexRef::new("acme", "docs");
        let sink = EmbeddedIndex::new(dir.path());
        let opened = || {
            let index = sink.index(&ix, false).unwrap().unwrap();
            let guard = index.writer.lock().unwrap();
            guard.as_ref().map_or(0, |w| w.opened)
        };
        let started = std::time::Instant::now();
        for round in 0..2 {
            for i in 0..40 {
                let d = doc("c", &format!("d{i}"), &format!("v{round}"), "t", "body");
                sink.upsert(ix.clone(), vec![d]).await.unwrap();
            }
            sink.commit(ix.clone()).await.unwrap();
        }
        // One searcher per commit interval, and one more for each time the batches of one
        // interval outlived a searcher's lifetime.
        let most = 2 + (started.elapsed().as_millis() / SEARCHER_TTL.as_millis()) as usize;
        assert!(
            opened() <= most,
            "{} searchers for 80 batches in two commit intervals (at most {most})",
            opened()
        );
        let (count, seen) = live(dir.path(), &ix);
        assert_eq!(count, 40, "{seen:?}");
        assert!(seen.iter().all(|(_, v)| v == "v1"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_new_index_compresses_its_store_on_the_indexing_thread() {
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        let ix = IndexRef::new("acme", "docs");
        sink.upsert(ix.clone(), vec![doc("c", "1", "v1", "t", "b")])
            .await
            .unwrap();
        sink.commit(ix.clone()).await.unwrap();
        // as another process reads it: the setting is the index's own
        let settings = on_disk(dir.path(), &ix)
            .load_metas()
            .unwrap()
            .index_settings;
        assert!(!settings.docstore_compress_dedicated_thread);
    }

    /// The bodies of a sync go to disk without passing through the page cache, and read back.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[tokio::test]
    async fn stored_bodies_are_written_around_the_page_cache_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        let ix = IndexRef::new("acme", "docs");
        // Random letters, as the Box fixtures: lz4 leaves them about their size.
        let bodies: Vec<String> = (0..12)
            .map(|i| {
                directory::tests::bytes(1_000_000, i + 7)
                    .into_iter()
                    .map(|b| char::from(b'a' + b % 26))
                    .collect()
            })
            .collect();
        let docs = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| doc("c", &format!("d{i}"), "v1", "t", b))
            .collect();
        sink.upsert(ix.clone(), docs).await.unwrap();
        sink.commit(ix.clone()).await.unwrap();

        let index_dir = sink.index(&ix, false).unwrap().unwrap().dir.clone();
        let (mut stores, mut cached, mut pages) = (0, 0, 0);
        for entry in std::fs::read_dir(&index_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "store") {
                let (c, p) = directory::tests::cached_pages(&path);
                stores += 1;
                cached += c;
                pages += p;
            }
        }
        assert!(pages > 12_000_000 / 4096, "{pages} pages of stores");
        // At most the last page of each store went through the cache.
        assert!(cached <= stores, "{cached} of {pages} store pages cached");
        let ids: Vec<String> = (0..12).map(|i| format!("d{i}")).collect();
        let got = sink.get(ix.clone(), "c".into(), ids).await.unwrap();
        let mut got: Vec<(String, String)> = got
            .into_iter()
            .map(|d| (d.id, d.body.unwrap_or_default()))
            .collect();
        got.sort_by_key(|(id, _)| id[1..].parse::<usize>().unwrap());
        assert_eq!(got.len(), 12);
        for (i, (_, body)) in got.iter().enumerate() {
            assert!(body == &bodies[i], "body of d{i} differs");
        }
    }

    /// What a `TantivyDocument` built from `doc` holds (how documents were handed to tantivy
    /// before [`IndexDoc`]): the reference `IndexDoc` is held to.
    fn reference(f: Fields, doc: &SinkDocument) -> TantivyDocument {
        let mut out = TantivyDocument::default();
        out.add_text(f.key, OpenIndex::key(&doc.connector, &doc.id));
        out.add_text(f.id, &doc.id);
        out.add_text(f.connector, &doc.connector);
        if let Some(version) = &doc.version {
            out.add_text(f.version, version);
        }
        if let Some(title) = ["title", "name"]
            .iter()
            .find_map(|k| doc.fields.get(*k).and_then(Value::as_str))
        {
            out.add_text(f.title, title);
        }
        if let Some(body) = &doc.body {
            out.add_text(f.body, body);
        }
        let fields = Value::Object(doc.fields.clone());
        let mut text = String::new();
        collect_strings(&fields, &mut text);
        out.add_text(f.text, &text);
        out.add_text(f.source, fields.to_string());
        let mut public = true;
        if let Some(Value::Array(ids)) = doc.fields.get("_allow_access_control") {
            for id in ids.iter().filter_map(Value::as_str) {
                out.add_text(f.acl, id);
                public = false;
            }
        }
        if public {
            out.add_text(f.acl, PUBLIC_MARK);
        }
        if let Some(words) = f.words {
            out.add_field_value(words, &fields);
        }
        if let Some(values) = f.values {
            out.add_field_value(values, &clipped(&fields));
        }
        if let Some(tie) = f.tie {
            out.add_u64(tie, tie_of(&doc.connector, &doc.id));
        }
        out
    }

    fn owned<D: tantivy::Document>(doc: &D) -> Vec<(Field, tantivy::schema::OwnedValue)> {
        use tantivy::schema::Value as _;
        doc.iter_fields_and_values()
            .map(|(f, v)| (f, v.as_value().into()))
            .collect()
    }

    /// tantivy sees in an `IndexDoc` what it saw in the `TantivyDocument` built before, field by
    /// field and leaf by leaf (dates, numbers, nested objects, access lists, titles by name),
    /// and the body is the sink document's own, moved rather than copied.
    #[test]
    fn a_document_reaches_tantivy_as_before_with_its_body_moved() {
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        let fields = sink
            .index(&IndexRef::new("acme", "docs"), true)
            .unwrap()
            .unwrap()
            .fields;
        let mut nested = doc("c", "n", "v1", "t", "2024-01-01T00:00:00Z");
        nested.fields.insert(
            "meta".into(),
            json!({"a": [1, -2, 2.5, u64::MAX, true, null, {"b": "x".repeat(600)}],
                   "when": "2024-01-01T00:00:00+02:00", "_hidden": "h"}),
        );
        nested.fields.remove("title");
        nested.fields.insert("name".into(), json!("by name"));
        nested
            .fields
            .insert("_allow_access_control".into(), json!(["a", 3, "b"]));
        let mut bare = doc("c", "b", "v1", "t", "");
        bare.fields.clear();
        bare.body = None;
        bare.version = None;
        let mut odd_title = doc("c", "o", "v1", "t", "body");
        odd_title.fields.insert("title".into(), json!(7));
        odd_title.fields.insert("name".into(), json!("named"));
        odd_title
            .fields
            .insert("_allow_access_control".into(), json!([]));
        let big = doc("c", "1", "v1", "Report", &"lorem ipsum ".repeat(100_000));
        for d in [big, nested, bare, odd_title] {
            let expected = owned(&reference(fields, &d));
            let body_at = d.body.as_ref().map(|b| b.as_ptr());
            let built = IndexDoc::new(fields, d);
            assert_eq!(owned(&built), expected);
            let body = tantivy::Document::iter_fields_and_values(&built)
                .find(|(f, _)| *f == fields.body)
                .and_then(|(_, v)| tantivy::schema::Value::as_str(&v))
                .map(str::as_ptr);
            assert_eq!(body, body_at, "the body was copied");
        }
    }

    #[tokio::test]
    async fn a_large_batch_is_handed_to_the_writer_only_as_its_queue_has_room() {
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        let ix = IndexRef::new("acme", "docs");
        // 7.5 MB of bodies in one batch, against a 2 MB queue: the indexing thread takes
        // milliseconds per body, so a batch handed over whole sits in the queue.
        let body = "word ".repeat(50_000);
        let docs = (0..30)
            .map(|i| doc("c", &format!("d{i}"), "v1", "t", &body))
            .collect();
        sink.upsert(ix.clone(), docs).await.unwrap();
        sink.commit(ix.clone()).await.unwrap();
        let one = body.len() + 256 + 3;
        let most = sink.index(&ix, false).unwrap().unwrap().backlog.most();
        assert!(
            most <= WRITER_QUEUE_BYTES + one,
            "{most} bytes queued at once, over {WRITER_QUEUE_BYTES} and one document"
        );
        assert_eq!(live(dir.path(), &ix).0, 30);
    }

    #[tokio::test]
    async fn upsert_search_versions_delete() {
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        let ix = IndexRef::new("acme", "docs");
        sink.upsert(
            ix.clone(),
            vec![
                doc(
                    "a",
                    "1",
                    "v1",
                    "Quarterly revenue",
                    "revenue grew in the third quarter",
                ),
                doc(
                    "a",
                    "2",
                    "v1",
                    "Holiday plan",
                    "the office closes in december",
                ),
                doc("b", "1", "v9", "Other connector", "revenue elsewhere"),
            ],
        )
        .await
        .unwrap();
        sink.commit(ix.clone()).await.unwrap();

        let found = sink
            .search(
                ix.clone(),
                SearchRequest {
                    query: "revenue".into(),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(found.total, 2);
        let only_a = sink
            .search(
                ix.clone(),
                SearchRequest {
                    query: "revenue".into(),
                    limit: 10,
                    connector: Some("a".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(only_a.hits.len(), 1);
        assert_eq!(only_a.hits[0].title.as_deref(), Some("Quarterly revenue"));
        assert!(
            only_a.hits[0]
                .snippet
                .as_deref()
                .unwrap()
                .contains("<b>revenue</b>")
        );
        // Field values are searchable too.
        let by_path = sink
            .search(
                ix.clone(),
                SearchRequest {
                    query: "holiday".into(),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(by_path.total, 1);
        // DLS filter.
        let allowed = sink
            .search(
                ix.clone(),
                SearchRequest {
                    query: "revenue".into(),
                    limit: 10,
                    identities: Some(vec!["email:ann@example.com".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(allowed.total, 2);
        let denied = sink
            .search(
                ix.clone(),
                SearchRequest {
                    query: "revenue".into(),
                    limit: 10,
                    identities: Some(vec!["email:bob@example.com".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(denied.total, 0);

        let versions = sink.versions(ix.clone(), "a".into()).await.unwrap();
        assert!(versions.holds_exactly([("1", Some("v1")), ("2", Some("v1"))]));

        // Replacing keeps one copy; deleting is per connector.
        sink.upsert(
            ix.clone(),
            vec![doc("a", "1", "v2", "Quarterly revenue", "updated")],
        )
        .await
        .unwrap();
        sink.delete(ix.clone(), "a".into(), vec!["2".into()])
            .await
            .unwrap();
        sink.commit(ix.clone()).await.unwrap();
        let versions = sink.versions(ix.clone(), "a".into()).await.unwrap();
        assert!(versions.holds_exactly([("1", Some("v2"))]));
        assert_eq!(
            sink.versions(ix.clone(), "b".into()).await.unwrap().len(),
            1
        );
        let got = sink
            .get(ix.clone(), "a".into(), vec!["1".into(), "missing".into()])
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body.as_deref(), Some("updated"));

        // A second process (another sink on the same directory) reads but cannot write meanwhile.
        let other = EmbeddedIndex::new(dir.path());
        assert_eq!(
            other
                .search(
                    ix.clone(),
                    SearchRequest {
                        query: "updated".into(),
                        limit: 5,
                        ..Default::default()
                    }
                )
                .await
                .unwrap()
                .total,
            1
        );
        let err = other
            .upsert(ix.clone(), vec![doc("a", "3", "v1", "x", "y")])
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("another tributary process"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn dropping_a_tenant_removes_its_indexes_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        assert!(sink.tenants().await.unwrap().is_empty());
        for tenant in ["gone", "kept", "a b"] {
            for name in ["docs", "more"] {
                let ix = IndexRef::new(tenant, name);
                sink.upsert(ix.clone(), vec![doc("c", "1", "v1", "t", "b")])
                    .await
                    .unwrap();
                sink.commit(ix.clone()).await.unwrap();
                sink.upsert(ix.acl(), vec![doc("c", "u", "v1", "t", "b")])
                    .await
                    .unwrap();
                sink.commit(ix.acl()).await.unwrap();
            }
        }
        assert_eq!(sink.tenants().await.unwrap(), ["a b", "gone", "kept"]);
        sink.drop_tenant("gone".into()).await.unwrap();
        // Twice is fine, and so is a tenant that never had an index.
        sink.drop_tenant("gone".into()).await.unwrap();
        sink.drop_tenant("never".into()).await.unwrap();
        assert_eq!(sink.tenants().await.unwrap(), ["a b", "kept"]);
        assert!(sink.indexes("gone".into()).await.unwrap().is_empty());
        assert!(!dir.path().join("gone").exists());
        assert!(
            sink.open
                .lock()
                .unwrap()
                .keys()
                .all(|ix| ix.tenant != "gone")
        );
        for tenant in ["kept", "a b"] {
            assert_eq!(sink.indexes(tenant.into()).await.unwrap(), ["docs", "more"]);
        }
        // A tenant of the same id starts empty; reads still create nothing.
        let ix = IndexRef::new("gone", "docs");
        assert!(
            sink.versions(ix.clone(), "c".into())
                .await
                .unwrap()
                .is_empty()
        );
        assert!(!dir.path().join("gone").exists());
        sink.upsert(ix.clone(), vec![doc("c", "2", "v1", "t", "b")])
            .await
            .unwrap();
        sink.commit(ix.clone()).await.unwrap();
        let ids: Vec<String> = sink.versions(ix, "c".into()).await.unwrap().into_ids();
        assert_eq!(ids, ["2"]);
    }

    #[tokio::test]
    async fn reads_never_create_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        for i in 0..50 {
            let ix = IndexRef::new("acme", format!("nope{i}"));
            let found = sink
                .search(
                    ix.clone(),
                    SearchRequest {
                        query: "x".into(),
                        limit: 5,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(found.total, 0);
            assert!(
                sink.versions(ix.clone(), "c".into())
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                sink.get(ix, "c".into(), vec!["1".into()])
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(sink.open.lock().unwrap().is_empty());
        assert!(sink.indexes("acme".into()).await.unwrap().is_empty());

        // Writes create; the listing names them (decoded), without the access-control index.
        for name in ["docs", "a b", "zeta"] {
            let ix = IndexRef::new("acme", name);
            sink.upsert(ix.clone(), vec![doc("a", "1", "v1", "t", "b")])
                .await
                .unwrap();
            sink.commit(ix.acl()).await.unwrap();
        }
        sink.commit(IndexRef::new("other", "theirs")).await.unwrap();
        assert_eq!(
            sink.indexes("acme".into()).await.unwrap(),
            vec!["a b".to_string(), "docs".into(), "zeta".into()]
        );
        // Another process sees them too.
        let fresh = EmbeddedIndex::new(dir.path());
        assert_eq!(fresh.indexes("acme".into()).await.unwrap().len(), 3);
        assert_eq!(fresh.indexes("other".into()).await.unwrap(), vec!["theirs"]);
    }

    #[tokio::test]
    async fn answers_every_query_form() {
        use crate::sink::conformance;
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        let ix = IndexRef::new("acme", "files");
        conformance::load(&sink, &ix).await;
        conformance::query_forms(&sink, &ix).await;
        conformance::filters_and_sort(&sink, &ix).await;
        conformance::facets_and_security(&sink, &ix).await;
        conformance::errors(&sink, &ix).await;
        conformance::readme_examples(&sink, &ix).await;
    }

    #[tokio::test]
    async fn pages_twenty_thousand_documents_to_the_end() {
        use crate::sink::conformance;
        let dir = tempfile::tempdir().unwrap();
        let sink = EmbeddedIndex::new(dir.path());
        let ix = IndexRef::new("acme", "many");
        let docs = conformance::many(20_000);
        for chunk in docs.chunks(5_000) {
            sink.upsert(ix.clone(), chunk.to_vec()).await.unwrap();
            // Several segments: cursors must translate across them.
            sink.commit(ix.clone()).await.unwrap();
        }
        let pages = conformance::page_to_the_end(&sink, &ix, 20_000, 1_500).await;
        assert_eq!(pages, 14);
    }

    /// An index as tributary wrote it before fields were searchable by name.
    fn legacy_index(dir: &Path) {
        let mut b = Schema::builder();
        let key = b.add_text_field("_key", STRING);
        let id = b.add_text_field("_id", STRING | STORED | FAST);
        let connector = b.add_text_field("_connector", STRING | STORED | FAST);
        let version = b.add_text_field("_version", STRING | STORED | FAST);
        let title = b.add_text_field("title", TEXT | STORED);
        let body = b.add_text_field("body", TEXT | STORED);
        b.add_text_field("text", TEXT);
        let source = b.add_text_field("_source", STORED);
        let acl = b.add_text_field("_allow_access_control", STRING);
        std::fs::create_dir_all(dir).unwrap();
        let index = Index::create_in_dir(dir, b.build()).unwrap();
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let mut doc = TantivyDocument::default();
        doc.add_text(key, "a\u{1f}old");
        doc.add_text(id, "old");
        doc.add_text(connector, "a");
        doc.add_text(version, "v0");
        doc.add_text(title, "Old plan");
        doc.add_text(body, "kept from before");
        doc.add_text(
            source,
            json!({"id": "old", "title": "Old plan", "type": "File", "size": 5}).to_string(),
        );
        doc.add_text(acl, "email:ann@example.com");
        writer.add_document(doc).unwrap();
        writer.commit().unwrap();
    }

    #[tokio::test]
    async fn an_index_of_an_earlier_version_is_upgraded_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        legacy_index(&dir.path().join("acme/docs"));
        let sink = EmbeddedIndex::new(dir.path());
        let ix = IndexRef::new("acme", "docs");
        // Reads that a sync needs work; a search says what will fix it.
        assert!(
            sink.versions(ix.clone(), "a".into())
                .await
                .unwrap()
                .holds_exactly([("old", Some("v0"))])
        );
        let err = sink
            .search(ix.clone(), SearchRequest::new("plan", 10))
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("next sync"), "{err:#}");
        // The first write rebuilds it from the stored documents; nothing is lost.
        sink.upsert(ix.clone(), vec![doc("a", "new", "v1", "New plan", "fresh")])
            .await
            .unwrap();
        sink.commit(ix.clone()).await.unwrap();
        let found = sink
            .search(ix.clone(), SearchRequest::new("plan", 10))
            .await
            .unwrap();
        assert_eq!(found.total, 2);
        let by_field = sink
            .search(ix.clone(), SearchRequest::new("type:File AND size:5", 10))
            .await
            .unwrap();
        assert_eq!(by_field.hits.len(), 1);
        assert_eq!(by_field.hits[0].id, "old");
        let old = sink
            .get(ix.clone(), "a".into(), vec!["old".into()])
            .await
            .unwrap();
        assert_eq!(old[0].body.as_deref(), Some("kept from before"));
        assert_eq!(old[0].version.as_deref(), Some("v0"));
        // No working directory is left behind, and the listing is unchanged.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("acme"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["docs"]);
        assert_eq!(sink.indexes("acme".into()).await.unwrap(), ["docs"]);
    }

    #[test]
    fn directory_names_decode() {
        for name in ["docs-1.x", "a/b c", "é", "%41"] {
            assert_eq!(name_of_dir(&dir_name(name)), name, "{name}");
        }
    }

    #[test]
    fn directory_names_are_safe() {
        assert_eq!(dir_name("docs-1.x"), "docs-1.x");
        assert_eq!(dir_name("../etc"), "%..%2Fetc");
        assert_eq!(dir_name("a/b c"), "a%2Fb%20c");
        assert_eq!(dir_name(""), "%");
    }
}
