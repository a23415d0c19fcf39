//! Searching the embedded index: the parsed query ([`crate::sink::query`]) as tantivy queries,
//! and one collector that counts, pages and counts facets in a single pass.
//!
//! Invariants:
//! - Filters, the connector and document-level security are clauses of the one query, so a
//!   hidden document is never counted in `total` or in a facet.
//! - Hits are in a total order: the sort key (documents without it last), then the tie-breaker
//!   `_tie` (a stable hash of connector and id). A cursor is the last hit's key and tie, and
//!   a page holds only documents strictly after it: paging an unchanging index visits every
//!   match exactly once, with no window limit.
//! - A field name resolves to the document's fields (`_values`/`_words` JSON paths), except
//!   `body` (extracted text) and the built-ins `_id` and `_connector`; a name no document has
//!   is an [`UnknownField`].
//!
//! How a field's value matches (the plugin's JSON decides types, no list of fields is kept):
//! - `field:value` — the exact value (`_values`, raw: `type:File`, `size:79`) or the value's
//!   words in it (`_words`, analysed: `name:contacts` matches "Contacts.json");
//! - `field:"a phrase"` — the exact value or the phrase; `field:pre*` — values starting with
//!   `pre` (`file_path:/Reports/*`), and, when `pre` is one word, words starting with it;
//! - `field:>n`, `field:[a TO b]` — numbers by value, dates (RFC 3339 or `YYYY-MM-DD`, whole
//!   days) by time, otherwise strings in byte order; `field:*` — has the field;
//! - `--filter field=value` — the exact value only.
//!
//! Why a collector of our own rather than tantivy's `TopDocs::order_by_fast_field` and its
//! aggregations: a JSON path's columns differ in type from document to document and segment to
//! segment (i64, f64, date, string), which those need fixed; neither takes a search-after
//! cursor with a tie-breaker; and one pass gives the page, the total and the facets together.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use anyhow::{anyhow, bail};
use serde_json::json;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, DynamicColumn, StrColumn};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, ExistsQuery, InvertedIndexRangeQuery, Occur,
    PhrasePrefixQuery, PhraseQuery, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DateTime, DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument,
    Term,
};

use super::{Fields, OpenIndex, PUBLIC_MARK, VALUES};
use crate::sink::query::{
    self, Cursor, FacetCount, InvalidQuery, Node, Order, Sort, SortValue, Typed, UnknownField,
};
use crate::sink::{SearchHit, SearchRequest, SearchResults};

/// The built-in fields a query may name besides the documents' own.
const BODY: &str = "body";
const ID: &str = "_id";
const CONNECTOR: &str = "_connector";
/// Most field names listed in an [`UnknownField`] error.
const KNOWN_MAX: usize = 60;

pub(super) fn run(ix: &OpenIndex, request: &SearchRequest) -> anyhow::Result<SearchResults> {
    let node = query::parse(&request.query)?;
    let searcher = ix.reader.searcher();
    let f = ix.fields;
    let (Some(words), Some(values)) = (f.words, f.values) else {
        bail!("the index predates searchable fields");
    };
    check_fields(&searcher, &request.named_fields(&node))?;
    let analyzer = ix
        .index
        .tokenizers()
        .get("default")
        .ok_or_else(|| anyhow!("the default tokenizer is missing"))?;
    let builder = Builder {
        f,
        words,
        values,
        analyzer: std::cell::RefCell::new(analyzer),
    };
    let text_query = builder.node(&node)?;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query.box_clone())];
    if let Some(connector) = &request.connector {
        clauses.push((Occur::Must, term_query(f.connector, connector)));
    }
    if let Some(identities) = &request.identities {
        let any: Vec<(Occur, Box<dyn Query>)> = identities
            .iter()
            .map(String::as_str)
            .chain([PUBLIC_MARK])
            .map(|i| (Occur::Should, term_query(f.acl, i)))
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
    for filter in &request.filters {
        clauses.push((Occur::Must, builder.exact(&filter.field, &filter.value)?));
    }
    let query = BooleanQuery::new(clauses);
    let sort = request.sort.clone().unwrap_or_default();
    let after = request
        .after
        .as_ref()
        .map(|c| decode_cursor(c, &sort))
        .transpose()?;
    let collector = Page {
        sort: sort.clone(),
        after,
        limit: if request.count_only {
            0
        } else {
            request.page_size()
        },
        facets: request.facets.clone(),
    };
    let page = searcher.search(&query, &collector)?;
    let mut facets = BTreeMap::new();
    for (name, counts) in request.facets.iter().zip(page.facets) {
        let counts = counts
            .into_iter()
            .map(|(value, count)| FacetCount { value, count })
            .collect();
        facets.insert(name.clone(), query::rank_facet(counts));
    }
    let next = (page.after > page.top.len() as u64)
        .then(|| page.top.last())
        .flatten()
        .map(|last| encode_cursor(&sort, &last.value, last.tie));
    let mut hits = Vec::with_capacity(page.top.len());
    if !page.top.is_empty() {
        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, f.body)?;
        snippets.set_max_num_chars(200);
        for top in page.top {
            let doc: TantivyDocument = searcher.doc(top.address)?;
            let stored = ix.stored(&doc);
            let snippet = snippets.snippet_from_doc(&doc);
            let title = doc
                .get_first(f.title)
                .and_then(|v| v.as_str())
                .map(str::to_string);
            hits.push(SearchHit {
                id: stored.id,
                connector: stored.connector,
                score: top.score,
                title,
                snippet: (!snippet.is_empty()).then(|| snippet.to_html()),
                fields: stored.fields,
                body: if request.with_body { stored.body } else { None },
            });
        }
    }
    Ok(SearchResults {
        total: page.count as usize,
        hits,
        next,
        facets,
    })
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

fn is_builtin(name: &str) -> bool {
    matches!(name, BODY | ID | CONNECTOR)
}

/// Every name in `names` must be a built-in or a field some document has.
fn check_fields(searcher: &Searcher, names: &[String]) -> anyhow::Result<()> {
    for name in names.iter().filter(|n| !is_builtin(n)) {
        let path = format!("{VALUES}.{name}");
        let mut found = false;
        for segment in searcher.segment_readers() {
            let fast = segment.fast_fields();
            if !fast.dynamic_column_handles(&path)?.is_empty()
                || !fast.dynamic_subpath_column_handles(&path)?.is_empty()
            {
                found = true;
                break;
            }
        }
        if !found {
            return Err(UnknownField {
                field: name.clone(),
                known: known_fields(searcher)?,
            }
            .into());
        }
    }
    Ok(())
}

/// The field names of the index's documents (for an error message), with the built-ins.
fn known_fields(searcher: &Searcher) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let prefix = format!("{VALUES}.");
    for segment in searcher.segment_readers() {
        for meta in segment.fields_metadata()? {
            if let Some(name) = meta.field_name.strip_prefix(&prefix) {
                names.push(name.to_string());
            }
        }
    }
    if names.is_empty() {
        return Ok(names);
    }
    names.extend([BODY, ID, CONNECTOR].map(str::to_string));
    names.sort();
    names.dedup();
    names.truncate(KNOWN_MAX);
    Ok(names)
}

/// Turns the parsed query into tantivy queries over the index's fields.
struct Builder {
    f: Fields,
    words: Field,
    values: Field,
    analyzer: std::cell::RefCell<TextAnalyzer>,
}

impl Builder {
    fn node(&self, node: &Node) -> anyhow::Result<Box<dyn Query>> {
        Ok(match node {
            Node::All => Box::new(AllQuery),
            Node::Bool(clauses) => {
                let mut out = Vec::with_capacity(clauses.len() + 1);
                for (occur, clause) in clauses {
                    let occur = match occur {
                        query::Occur::Must => Occur::Must,
                        query::Occur::Should => Occur::Should,
                        query::Occur::MustNot => Occur::MustNot,
                    };
                    out.push((occur, self.node(clause)?));
                }
                // `NOT x` alone means everything but x.
                if out.iter().all(|(o, _)| *o == Occur::MustNot) {
                    out.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(out))
            }
            Node::Boost(inner, boost) => Box::new(BoostQuery::new(self.node(inner)?, *boost)),
            Node::Text {
                field: None,
                text,
                quoted,
                slop,
                prefix,
            } => {
                let f = self.f;
                let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                // A title match counts double: people expect titles first.
                for (field, boost) in [(f.title, 2.0), (f.body, 1.0), (f.text, 1.0)] {
                    if let Some(q) = self.analysed(field, None, text, *quoted, *slop, *prefix) {
                        any.push((Occur::Should, Box::new(BoostQuery::new(q, boost))));
                    }
                }
                or_empty(any)
            }
            Node::Text {
                field: Some(name),
                text,
                quoted,
                slop,
                prefix,
            } => match name.as_str() {
                BODY => self
                    .analysed(self.f.body, None, text, *quoted, *slop, *prefix)
                    .unwrap_or_else(|| Box::new(EmptyQuery)),
                ID | CONNECTOR if *prefix => self.builtin_prefix(name, text),
                ID | CONNECTOR => self.exact(name, text)?,
                _ => {
                    let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                    if *prefix {
                        any.push((Occur::Should, self.value_prefix(name, text)));
                        // `name:contact*` also matches words; `path:/Reports/*` only values.
                        if self.is_one_word(text) {
                            let q = self.analysed(self.words, Some(name), text, false, 0, true);
                            any.extend(q.map(|q| (Occur::Should, q)));
                        }
                    } else {
                        any.push((Occur::Should, self.exact(name, text)?));
                        let q = self.analysed(self.words, Some(name), text, *quoted, *slop, false);
                        any.extend(q.map(|q| (Occur::Should, q)));
                    }
                    or_empty(any)
                }
            },
            Node::Range {
                field,
                lower,
                upper,
            } => self.range(field, lower, upper)?,
            Node::Any { field, values } => {
                let mut any = Vec::with_capacity(values.len());
                for v in values {
                    any.push((Occur::Should, self.exact(field, v)?));
                }
                or_empty(any)
            }
            Node::Exists { field } => match field.as_str() {
                ID | CONNECTOR => Box::new(AllQuery),
                BODY => bail!("`body:*` is not supported: search words of the body instead"),
                _ => Box::new(ExistsQuery::new(format!("{VALUES}.{field}"), true)),
            },
        })
    }

    fn tokens(&self, text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut analyzer = self.analyzer.borrow_mut();
        let mut stream = analyzer.token_stream(text);
        stream.process(&mut |t| out.push((t.position, t.text.clone())));
        out
    }

    fn is_one_word(&self, text: &str) -> bool {
        matches!(self.tokens(text).as_slice(), [(_, word)] if *word == text.to_lowercase())
    }

    /// A term of `field` (or of JSON path `path` in it) holding the string `value`.
    fn str_term(&self, field: Field, path: Option<&str>, value: &str) -> Term {
        match path {
            Some(path) => {
                let mut t = Term::from_field_json_path(field, path, false);
                t.append_type_and_str(value);
                t
            }
            None => Term::from_field_text(field, value),
        }
    }

    /// The words of `text` in `field`: a term, a phrase, or a prefix of either.
    fn analysed(
        &self,
        field: Field,
        path: Option<&str>,
        text: &str,
        quoted: bool,
        slop: u32,
        prefix: bool,
    ) -> Option<Box<dyn Query>> {
        let tokens = self.tokens(text);
        let terms: Vec<(usize, Term)> = tokens
            .iter()
            .map(|(pos, t)| (*pos, self.str_term(field, path, t)))
            .collect();
        match (terms.as_slice(), prefix) {
            ([], _) => None,
            ([_], true) => {
                let word = &tokens[0].1;
                let lower = self.str_term(field, path, word);
                let upper = match prefix_end(word.as_bytes()) {
                    Some(end) => {
                        let mut t = self.str_term(field, path, "");
                        t.append_bytes(&end);
                        Bound::Excluded(t)
                    }
                    None => Bound::Unbounded,
                };
                Some(Box::new(InvertedIndexRangeQuery::new(
                    Bound::Included(lower),
                    upper,
                )))
            }
            (_, true) => Some(Box::new(PhrasePrefixQuery::new(
                terms.into_iter().map(|(_, t)| t).collect(),
            ))),
            ([(_, term)], false) => Some(Box::new(TermQuery::new(
                term.clone(),
                IndexRecordOption::WithFreqs,
            ))),
            (_, false) => {
                let slop = if quoted { slop } else { 0 };
                Some(Box::new(PhraseQuery::new_with_offset_and_slop(terms, slop)))
            }
        }
    }

    fn value_term(&self, name: &str) -> Term {
        Term::from_field_json_path(self.values, name, false)
    }

    /// Documents whose `name` holds exactly `value` (as a string, or as the number, date or
    /// boolean it spells).
    fn exact(&self, name: &str, value: &str) -> anyhow::Result<Box<dyn Query>> {
        match name {
            ID => return Ok(term_query(self.f.id, value)),
            CONNECTOR => return Ok(term_query(self.f.connector, value)),
            BODY => {
                return Ok(self
                    .analysed(self.f.body, None, value, true, 0, false)
                    .unwrap_or_else(|| Box::new(EmptyQuery)));
            }
            _ => {}
        }
        let mut any: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Should,
            Box::new(TermQuery::new(
                self.str_term(self.values, Some(name), value),
                IndexRecordOption::Basic,
            )),
        )];
        let typed = Typed::of(value);
        let point = |t: Term| -> Box<dyn Query> {
            Box::new(RangeQuery::new(
                Bound::Included(t.clone()),
                Bound::Included(t),
            ))
        };
        match typed {
            Typed::Int(i) => {
                let mut t = self.value_term(name);
                t.append_type_and_fast_value(i);
                any.push((Occur::Should, point(t)));
            }
            Typed::Float(x) => {
                let mut t = self.value_term(name);
                t.append_type_and_fast_value(x);
                any.push((Occur::Should, point(t)));
            }
            Typed::Date { .. } => {
                let (lo, hi) =
                    query::date_bounds(&Bound::Included(typed.clone()), &Bound::Included(typed));
                any.push((Occur::Should, self.date_range(name, lo, hi)));
            }
            Typed::Bool(b) => {
                let mut t = self.value_term(name);
                t.append_type_and_fast_value(b);
                any.push((
                    Occur::Should,
                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                ));
            }
            Typed::Str(_) => {}
        }
        Ok(or_empty(any))
    }

    fn date_range(&self, name: &str, lo: Bound<i64>, hi: Bound<i64>) -> Box<dyn Query> {
        let term = |micros: i64| {
            let mut t = self.value_term(name);
            t.append_type_and_fast_value(DateTime::from_timestamp_micros(micros));
            t
        };
        if matches!((&lo, &hi), (Bound::Unbounded, Bound::Unbounded)) {
            return Box::new(ExistsQuery::new(format!("{VALUES}.{name}"), true));
        }
        Box::new(RangeQuery::new(lo.map(term), hi.map(term)))
    }

    /// Values of `name` starting with `prefix` (byte order, case-sensitive).
    fn value_prefix(&self, name: &str, prefix: &str) -> Box<dyn Query> {
        if prefix.is_empty() {
            return Box::new(ExistsQuery::new(format!("{VALUES}.{name}"), true));
        }
        let lower = self.str_term(self.values, Some(name), prefix);
        let upper = match prefix_end(prefix.as_bytes()) {
            Some(end) => {
                let mut t = self.str_term(self.values, Some(name), "");
                t.append_bytes(&end);
                Bound::Excluded(t)
            }
            None => Bound::Unbounded,
        };
        Box::new(RangeQuery::new(Bound::Included(lower), upper))
    }

    fn builtin_prefix(&self, name: &str, prefix: &str) -> Box<dyn Query> {
        let field = if name == ID {
            self.f.id
        } else {
            self.f.connector
        };
        let lower = Term::from_field_text(field, prefix);
        let upper = match prefix_end(prefix.as_bytes()) {
            Some(end) => {
                let mut t = Term::from_field_text(field, "");
                t.append_bytes(&end);
                Bound::Excluded(t)
            }
            None => Bound::Unbounded,
        };
        Box::new(InvertedIndexRangeQuery::new(Bound::Included(lower), upper))
    }

    fn range(
        &self,
        name: &str,
        lower: &Bound<String>,
        upper: &Bound<String>,
    ) -> anyhow::Result<Box<dyn Query>> {
        if is_builtin(name) {
            return Err(InvalidQuery {
                query: name.to_string(),
                position: None,
                message: format!("`{name}` has no range: ranges apply to document fields"),
            }
            .into());
        }
        let lo = lower.as_ref().map(|v| Typed::of(v));
        let hi = upper.as_ref().map(|v| Typed::of(v));
        let kinds = [&lo, &hi]
            .into_iter()
            .filter_map(|b| match b {
                Bound::Included(t) | Bound::Excluded(t) => Some(t),
                Bound::Unbounded => None,
            })
            .collect::<Vec<_>>();
        let all = |p: fn(&Typed) -> bool| kinds.iter().all(|t| p(t));
        if kinds.is_empty() {
            return Ok(Box::new(ExistsQuery::new(format!("{VALUES}.{name}"), true)));
        }
        if all(|t| matches!(t, Typed::Date { .. })) {
            let (lo, hi) = query::date_bounds(&lo, &hi);
            return Ok(self.date_range(name, lo, hi));
        }
        if all(|t| matches!(t, Typed::Int(_))) {
            let term = |t: Typed| {
                let mut term = self.value_term(name);
                if let Typed::Int(i) = t {
                    term.append_type_and_fast_value(i);
                }
                term
            };
            return Ok(Box::new(RangeQuery::new(lo.map(term), hi.map(term))));
        }
        if all(|t| matches!(t, Typed::Int(_) | Typed::Float(_))) {
            let term = |t: Typed| {
                let mut term = self.value_term(name);
                match t {
                    Typed::Int(i) => term.append_type_and_fast_value(i as f64),
                    Typed::Float(x) => term.append_type_and_fast_value(x),
                    _ => {}
                }
                term
            };
            return Ok(Box::new(RangeQuery::new(lo.map(term), hi.map(term))));
        }
        // Strings (or a mix): compare the values as written, in byte order.
        let term = |v: &String| self.str_term(self.values, Some(name), v);
        Ok(Box::new(RangeQuery::new(
            lower.as_ref().map(term),
            upper.as_ref().map(term),
        )))
    }
}

fn or_empty(any: Vec<(Occur, Box<dyn Query>)>) -> Box<dyn Query> {
    if any.is_empty() {
        Box::new(EmptyQuery)
    } else {
        Box::new(BooleanQuery::new(any))
    }
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A cursor names the sort it was made for, so a cursor of another sort is refused.
fn encode_cursor(sort: &Sort, value: &SortValue, tie: u64) -> Cursor {
    Cursor::encode(&json!([sort.field, sort.order, value, tie]))
}

fn decode_cursor(cursor: &Cursor, sort: &Sort) -> anyhow::Result<(SortValue, u64)> {
    let value = cursor.decode()?;
    let parsed = (|| {
        let parts = value.as_array()?;
        let [field, order, value, tie] = parts.as_slice() else {
            return None;
        };
        let order: Order = match order.as_str()? {
            "asc" => Order::Asc,
            "desc" => Order::Desc,
            _ => return None,
        };
        if field.as_str()? != sort.field || order != sort.order {
            return None;
        }
        let value: SortValue = serde_json::from_value(value.clone()).ok()?;
        Some((value, tie.as_u64()?))
    })();
    parsed.ok_or_else(|| {
        InvalidQuery {
            query: cursor.0.clone(),
            position: None,
            message: format!(
                "the cursor is not from a search sorted by `{}:{}`",
                sort.field,
                match sort.order {
                    Order::Asc => "asc",
                    Order::Desc => "desc",
                }
            ),
        }
        .into()
    })
}

/// Orders sort values: documents without a value last whatever the direction; numbers before
/// strings.
fn cmp_values(a: &SortValue, b: &SortValue, order: Order) -> Ordering {
    let class = |v: &SortValue| match v {
        SortValue::Num(_) => 0,
        SortValue::Str(_) => 1,
        SortValue::Missing => 2,
    };
    let primary = match (a, b) {
        (SortValue::Missing, SortValue::Missing) => return Ordering::Equal,
        (SortValue::Missing, _) => return Ordering::Greater,
        (_, SortValue::Missing) => return Ordering::Less,
        (SortValue::Num(x), SortValue::Num(y)) => x.total_cmp(y),
        (SortValue::Str(x), SortValue::Str(y)) => x.cmp(y),
        _ => class(a).cmp(&class(b)),
    };
    match order {
        Order::Asc => primary,
        Order::Desc => primary.reverse(),
    }
}

/// A sort value inside one segment: strings as doubled term ordinals (`2·ord + 1` for a
/// document, `2·ord` for a cursor string falling between two terms), which order as the
/// strings do.
#[derive(Clone, Copy, Debug)]
enum Prim {
    Num(f64),
    Ord(u64),
    Missing,
}

fn cmp_prim(a: Prim, b: Prim, order: Order) -> Ordering {
    let primary = match (a, b) {
        (Prim::Missing, Prim::Missing) => return Ordering::Equal,
        (Prim::Missing, _) => return Ordering::Greater,
        (_, Prim::Missing) => return Ordering::Less,
        (Prim::Num(x), Prim::Num(y)) => x.total_cmp(&y),
        (Prim::Ord(x), Prim::Ord(y)) => x.cmp(&y),
        (Prim::Num(_), Prim::Ord(_)) => Ordering::Less,
        (Prim::Ord(_), Prim::Num(_)) => Ordering::Greater,
    };
    match order {
        Order::Asc => primary,
        Order::Desc => primary.reverse(),
    }
}

/// One page of a search, its total, and facet counts: one pass over the matches.
struct Page {
    sort: Sort,
    after: Option<(SortValue, u64)>,
    limit: usize,
    facets: Vec<String>,
}

struct Top {
    value: SortValue,
    tie: u64,
    address: DocAddress,
    score: Score,
}

#[derive(Default)]
struct PageFruit {
    count: u64,
    after: u64,
    top: Vec<Top>,
    facets: Vec<HashMap<String, u64>>,
}

enum NumColumn {
    I64(Column<i64>),
    U64(Column<u64>),
    F64(Column<f64>),
    Date(Column<DateTime>),
    Bool(Column<bool>),
}

impl NumColumn {
    fn each(&self, doc: DocId, mut f: impl FnMut(f64)) {
        match self {
            NumColumn::I64(c) => c.values_for_doc(doc).for_each(|v| f(v as f64)),
            NumColumn::U64(c) => c.values_for_doc(doc).for_each(|v| f(v as f64)),
            NumColumn::F64(c) => c.values_for_doc(doc).for_each(&mut f),
            NumColumn::Date(c) => c
                .values_for_doc(doc)
                .for_each(|v| f(v.into_timestamp_micros() as f64)),
            NumColumn::Bool(c) => c.values_for_doc(doc).for_each(|v| f(u8::from(v) as f64)),
        }
    }
}

/// How a segment reads the sort key of a document.
enum Key {
    Score,
    Field {
        nums: Vec<NumColumn>,
        strs: Option<StrColumn>,
    },
}

fn columns(
    segment: &SegmentReader,
    name: &str,
) -> tantivy::Result<(Vec<NumColumn>, Option<StrColumn>)> {
    let fast = segment.fast_fields();
    if name == ID || name == CONNECTOR {
        return Ok((Vec::new(), fast.str(name)?));
    }
    let mut nums = Vec::new();
    let mut strs = None;
    for handle in fast.dynamic_column_handles(&format!("{VALUES}.{name}"))? {
        match handle.open()? {
            DynamicColumn::I64(c) => nums.push(NumColumn::I64(c)),
            DynamicColumn::U64(c) => nums.push(NumColumn::U64(c)),
            DynamicColumn::F64(c) => nums.push(NumColumn::F64(c)),
            DynamicColumn::DateTime(c) => nums.push(NumColumn::Date(c)),
            DynamicColumn::Bool(c) => nums.push(NumColumn::Bool(c)),
            DynamicColumn::Str(c) => strs = Some(c),
            DynamicColumn::IpAddr(_) | DynamicColumn::Bytes(_) => {}
        }
    }
    Ok((nums, strs))
}

/// Where the cursor string `s` falls among the segment's terms of the sort field.
fn cursor_ord(strs: &StrColumn, s: &str) -> std::io::Result<Prim> {
    let dict = strs.dictionary();
    if let Some(o) = dict.term_ord(s.as_bytes())? {
        return Ok(Prim::Ord(o.saturating_mul(2).saturating_add(1)));
    }
    // The first term after `s`; the end when none is.
    let next = match dict
        .term_bounds_to_ord(Bound::Included(s.as_bytes()), Bound::Unbounded)?
        .0
    {
        Bound::Included(o) | Bound::Excluded(o) => o,
        Bound::Unbounded => 0,
    };
    Ok(Prim::Ord(
        next.min(dict.num_terms() as u64).saturating_mul(2),
    ))
}

struct SegmentPage {
    segment: SegmentOrdinal,
    order: Order,
    key: Key,
    tie: Option<Column<u64>>,
    cursor: Option<(Prim, u64)>,
    limit: usize,
    count: u64,
    after: u64,
    candidates: Vec<(Prim, u64, DocId, Score)>,
    facets: Vec<(Option<StrColumn>, Vec<u64>)>,
    ords: Vec<u64>,
}

impl Collector for Page {
    type Fruit = PageFruit;
    type Child = SegmentPage;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentPage> {
        let key = if self.sort.is_score() {
            Key::Score
        } else {
            let (nums, strs) = columns(reader, &self.sort.field)?;
            Key::Field { nums, strs }
        };
        let cursor = match &self.after {
            None => None,
            Some((value, tie)) => Some((
                match value {
                    SortValue::Missing => Prim::Missing,
                    SortValue::Num(x) => Prim::Num(*x),
                    SortValue::Str(s) => match &key {
                        Key::Field {
                            strs: Some(strs), ..
                        } => cursor_ord(strs, s)?,
                        // No string in this segment: any ordinal orders the same against
                        // numbers and missing values.
                        _ => Prim::Ord(0),
                    },
                },
                *tie,
            )),
        };
        let mut facets = Vec::with_capacity(self.facets.len());
        for name in &self.facets {
            let column = columns(reader, name)?.1;
            let size = column.as_ref().map_or(0, |c| c.num_terms());
            facets.push((column, vec![0u64; size]));
        }
        Ok(SegmentPage {
            segment,
            order: self.sort.order,
            key,
            tie: reader.fast_fields().u64(super::TIE).ok(),
            cursor,
            limit: self.limit,
            count: 0,
            after: 0,
            candidates: Vec::new(),
            facets,
            ords: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.sort.is_score() && self.limit > 0
    }

    fn merge_fruits(&self, fruits: Vec<std::io::Result<PageFruit>>) -> tantivy::Result<PageFruit> {
        let mut out = PageFruit {
            facets: vec![HashMap::new(); self.facets.len()],
            ..Default::default()
        };
        for fruit in fruits {
            let fruit = fruit?;
            out.count += fruit.count;
            out.after += fruit.after;
            out.top.extend(fruit.top);
            for (merged, counts) in out.facets.iter_mut().zip(fruit.facets) {
                for (value, n) in counts {
                    *merged.entry(value).or_default() += n;
                }
            }
        }
        let order = self.sort.order;
        out.top
            .sort_by(|a, b| cmp_values(&a.value, &b.value, order).then_with(|| a.tie.cmp(&b.tie)));
        out.top.truncate(self.limit);
        Ok(out)
    }
}

impl SegmentPage {
    fn prim(&self, doc: DocId, score: Score) -> Prim {
        match &self.key {
            Key::Score => Prim::Num(f64::from(score)),
            Key::Field { nums, strs } => {
                let mut best: Option<f64> = None;
                let pick = |best: &mut Option<f64>, v: f64| {
                    *best = Some(match (*best, self.order) {
                        (None, _) => v,
                        (Some(b), Order::Asc) => b.min(v),
                        (Some(b), Order::Desc) => b.max(v),
                    })
                };
                for col in nums {
                    col.each(doc, |v| pick(&mut best, v));
                }
                if let Some(v) = best {
                    return Prim::Num(v);
                }
                if let Some(strs) = strs {
                    let ords = strs.term_ords(doc);
                    let first = match self.order {
                        Order::Asc => ords.min(),
                        Order::Desc => ords.max(),
                    };
                    if let Some(o) = first {
                        return Prim::Ord(o.saturating_mul(2).saturating_add(1));
                    }
                }
                Prim::Missing
            }
        }
    }

    fn cmp(&self, a: (Prim, u64), b: (Prim, u64)) -> Ordering {
        cmp_prim(a.0, b.0, self.order).then_with(|| a.1.cmp(&b.1))
    }

    fn prune(&mut self) {
        let order = self.order;
        let by = |a: &(Prim, u64, DocId, Score), b: &(Prim, u64, DocId, Score)| {
            cmp_prim(a.0, b.0, order).then_with(|| a.1.cmp(&b.1))
        };
        if self.candidates.len() > self.limit {
            self.candidates.select_nth_unstable_by(self.limit, by);
            self.candidates.truncate(self.limit);
        }
    }
}

impl SegmentCollector for SegmentPage {
    type Fruit = std::io::Result<PageFruit>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.count += 1;
        for (column, counts) in &mut self.facets {
            let Some(column) = column else { continue };
            self.ords.clear();
            self.ords.extend(column.term_ords(doc));
            self.ords.sort_unstable();
            self.ords.dedup();
            for &o in &self.ords {
                if let Some(n) = counts.get_mut(o as usize) {
                    *n += 1;
                }
            }
        }
        if self.limit == 0 {
            return;
        }
        let tie = self
            .tie
            .as_ref()
            .and_then(|c| c.first(doc))
            .unwrap_or_default();
        let key = (self.prim(doc, score), tie);
        if let Some(cursor) = self.cursor
            && self.cmp(key, cursor) != Ordering::Greater
        {
            return;
        }
        self.after += 1;
        self.candidates.push((key.0, key.1, doc, score));
        if self.candidates.len() >= self.limit.saturating_mul(2).max(256) {
            self.prune();
        }
    }

    fn harvest(mut self) -> std::io::Result<PageFruit> {
        self.prune();
        let strs = match &self.key {
            Key::Field { strs, .. } => strs.as_ref(),
            Key::Score => None,
        };
        let mut top = Vec::with_capacity(self.candidates.len());
        let mut text = String::new();
        for &(prim, tie, doc, score) in &self.candidates {
            let value = match prim {
                Prim::Num(x) => SortValue::Num(x),
                Prim::Missing => SortValue::Missing,
                Prim::Ord(o) => {
                    text.clear();
                    if let Some(strs) = strs {
                        strs.ord_to_str(o / 2, &mut text)?;
                    }
                    SortValue::Str(text.clone())
                }
            };
            top.push(Top {
                value,
                tie,
                address: DocAddress::new(self.segment, doc),
                score,
            });
        }
        let mut facets = Vec::with_capacity(self.facets.len());
        for (column, counts) in &self.facets {
            let mut map = HashMap::new();
            if let Some(column) = column {
                for (ord, &n) in counts.iter().enumerate() {
                    if n > 0 {
                        text.clear();
                        column.ord_to_str(ord as u64, &mut text)?;
                        map.insert(text.clone(), n);
                    }
                }
            }
            facets.push(map);
        }
        Ok(PageFruit {
            count: self.count,
            after: self.after,
            top,
            facets,
        })
    }
}

impl std::fmt::Debug for Top {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}/{}", self.value, self.tie)
    }
}
