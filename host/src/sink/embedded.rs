//! The embedded default index: one tantivy index per tenant index, under
//! `<data>/index/<tenant>/<name>/`.
//!
//! Each document is stored whole (`_source` JSON + `body`), keyed by connector and id so two
//! connectors writing one index never overwrite each other. Writers are opened lazily and shared
//! by the jobs of a process; tantivy's own lock file stops a second process from writing the same
//! index at once (it gets a clear error), while readers never block.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use futures::future::BoxFuture;
use serde_json::Value;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, STORED, STRING, Schema, TEXT, Value as _};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::{IndexRef, SearchHit, SearchRequest, SearchResults, Sink, SinkDocument};

/// Bytes of indexing buffer per open writer.
const WRITER_HEAP: usize = 48 * 1024 * 1024;
/// Separator inside `_key` (connector, id); a control character no sane id contains.
const KEY_SEP: char = '\u{1f}';

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
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
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
    };
    (b.build(), fields)
}

struct OpenIndex {
    index: Index,
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    fields: Fields,
}

impl OpenIndex {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .with_context(|| format!("opening index directory {}", dir.display()))?;
        let index = Index::open_or_create(directory, schema)
            .with_context(|| format!("opening the index at {}", dir.display()))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .context("opening an index reader")?;
        Ok(Self {
            index,
            writer: Mutex::new(None),
            reader,
            fields,
        })
    }

    fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| anyhow!("index writer lock poisoned"))?;
        if guard.is_none() {
            let writer = self.index.writer_with_num_threads(1, WRITER_HEAP).map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => anyhow!(
                    "the index is being written by another tributary process; wait for it to finish"
                ),
                other => anyhow!(other).context("opening the index writer"),
            })?;
            *guard = Some(writer);
        }
        match guard.as_mut() {
            Some(writer) => f(writer),
            None => Err(anyhow!("index writer unavailable")),
        }
    }

    fn key(connector: &str, id: &str) -> String {
        format!("{connector}{KEY_SEP}{id}")
    }

    fn to_doc(&self, doc: &SinkDocument) -> TantivyDocument {
        let f = self.fields;
        let mut out = TantivyDocument::default();
        out.add_text(f.key, Self::key(&doc.connector, &doc.id));
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
        let mut text = String::new();
        collect_strings(&Value::Object(doc.fields.clone()), &mut text);
        out.add_text(f.text, &text);
        out.add_text(f.source, Value::Object(doc.fields.clone()).to_string());
        if let Some(Value::Array(ids)) = doc.fields.get("_allow_access_control") {
            for id in ids.iter().filter_map(Value::as_str) {
                out.add_text(f.acl, id);
            }
        }
        out
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

    fn upsert(&self, docs: &[SinkDocument]) -> anyhow::Result<()> {
        self.with_writer(|w| {
            for doc in docs {
                w.delete_term(Term::from_field_text(
                    self.fields.key,
                    &Self::key(&doc.connector, &doc.id),
                ));
                w.add_document(self.to_doc(doc))?;
            }
            Ok(())
        })
    }

    fn delete(&self, connector: &str, ids: &[String]) -> anyhow::Result<()> {
        self.with_writer(|w| {
            for id in ids {
                w.delete_term(Term::from_field_text(
                    self.fields.key,
                    &Self::key(connector, id),
                ));
            }
            Ok(())
        })
    }

    fn commit(&self) -> anyhow::Result<()> {
        let has_writer = self.writer.lock().map(|g| g.is_some()).unwrap_or(false);
        if has_writer {
            self.with_writer(|w| {
                w.commit().context("committing the index")?;
                Ok(())
            })?;
        }
        self.reader.reload().context("reloading the index reader")
    }

    fn versions(&self, connector: &str) -> anyhow::Result<HashMap<String, Option<String>>> {
        self.reader.reload().context("reloading the index reader")?;
        let searcher = self.reader.searcher();
        let mut out = HashMap::new();
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
                            Some(version.clone())
                        }
                        None => None,
                    },
                    None => None,
                };
                out.insert(id.clone(), v);
            }
        }
        Ok(out)
    }

    fn search(&self, request: &SearchRequest) -> anyhow::Result<SearchResults> {
        let f = self.fields;
        self.reader.reload().context("reloading the index reader")?;
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.body, f.text]);
        parser.set_conjunction_by_default();
        parser.set_field_boost(f.title, 2.0);
        let (text_query, _errors) = parser.parse_query_lenient(&request.query);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query.box_clone())];
        if let Some(connector) = &request.connector {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.connector, connector),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(identities) = &request.identities {
            let any: Vec<(Occur, Box<dyn Query>)> = identities
                .iter()
                .map(|i| {
                    let q: Box<dyn Query> = Box::new(TermQuery::new(
                        Term::from_field_text(f.acl, i),
                        IndexRecordOption::Basic,
                    ));
                    (Occur::Should, q)
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        let query = BooleanQuery::new(clauses);
        let limit = request.limit.clamp(1, 1000);
        let (top, total) = searcher.search(&query, &(TopDocs::with_limit(limit), Count))?;
        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, f.body)?;
        snippets.set_max_num_chars(200);
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let stored = self.stored(&doc);
            let snippet = snippets.snippet_from_doc(&doc);
            let title = doc
                .get_first(f.title)
                .and_then(|v| v.as_str())
                .map(str::to_string);
            hits.push(SearchHit {
                id: stored.id,
                connector: stored.connector,
                score,
                title,
                snippet: (!snippet.is_empty()).then(|| snippet.to_html()),
                fields: stored.fields,
            });
        }
        Ok(SearchResults { total, hits })
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

/// The embedded tantivy sink.
#[derive(Clone)]
pub struct EmbeddedIndex {
    root: PathBuf,
    open: Arc<Mutex<HashMap<IndexRef, Arc<OpenIndex>>>>,
}

impl EmbeddedIndex {
    /// Indexes live under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            open: Arc::default(),
        }
    }

    fn index(&self, index: &IndexRef) -> anyhow::Result<Arc<OpenIndex>> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| anyhow!("index table lock poisoned"))?;
        if let Some(found) = open.get(index) {
            return Ok(found.clone());
        }
        let dir = self
            .root
            .join(dir_name(&index.tenant))
            .join(dir_name(&index.name));
        let opened = Arc::new(OpenIndex::open(&dir).with_context(|| format!("index {index}"))?);
        open.insert(index.clone(), opened.clone());
        Ok(opened)
    }

    fn blocking<R: Send + 'static>(
        &self,
        index: IndexRef,
        f: impl FnOnce(&OpenIndex) -> anyhow::Result<R> + Send + 'static,
    ) -> BoxFuture<'_, anyhow::Result<R>> {
        Box::pin(async move {
            let opened = self.index(&index)?;
            tokio::task::spawn_blocking(move || f(&opened))
                .await
                .context("index task failed")?
                .with_context(|| format!("index {index}"))
        })
    }
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
        self.blocking(index, move |i| i.upsert(&docs))
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
    ) -> BoxFuture<'_, anyhow::Result<HashMap<String, Option<String>>>> {
        self.blocking(index, move |i| i.versions(&connector))
    }

    fn search(
        &self,
        index: IndexRef,
        request: SearchRequest,
    ) -> BoxFuture<'_, anyhow::Result<SearchResults>> {
        self.blocking(index, move |i| i.search(&request))
    }

    fn get(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<SinkDocument>>> {
        self.blocking(index, move |i| i.get(&connector, &ids))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn doc(connector: &str, id: &str, version: &str, title: &str, body: &str) -> SinkDocument {
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
        assert_eq!(
            versions,
            HashMap::from([
                ("1".to_string(), Some("v1".to_string())),
                ("2".to_string(), Some("v1".to_string()))
            ])
        );

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
        assert_eq!(
            versions,
            HashMap::from([("1".to_string(), Some("v2".to_string()))])
        );
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

    #[test]
    fn directory_names_are_safe() {
        assert_eq!(dir_name("docs-1.x"), "docs-1.x");
        assert_eq!(dir_name("../etc"), "%..%2Fetc");
        assert_eq!(dir_name("a/b c"), "a%2Fb%20c");
        assert_eq!(dir_name(""), "%");
    }
}
