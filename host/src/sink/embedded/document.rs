//! What the embedded index hands tantivy for one document: the sink document itself, moved in,
//! read by tantivy through its `Document` trait.
//!
//! Invariants:
//! - tantivy sees the fields, values and order that a `TantivyDocument` built from the same sink
//!   document holds (JSON values through tantivy's own conversion, dates included), so what is
//!   indexed and stored is the same and stored documents read back as `TantivyDocument`s;
//! - the body (and every other string) is moved in, never copied: the store serialises it
//!   straight from the extracted text.
//!
//! Why: building a `TantivyDocument` copied each body into a fresh buffer, grown by doubling;
//! with 1 MB bodies that copy, its page faults and the unmapping of the buffer were a fifth of
//! the Box mix's CPU (`perf`, `sync_memory --bench box`).

use serde_json::Value;
use tantivy::Document;
use tantivy::schema::Field;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};

use super::{Fields, OpenIndex, PUBLIC_MARK, SinkDocument, clipped, collect_strings, tie_of};

/// One document as the index writer takes it.
pub(crate) struct IndexDoc {
    fields: Fields,
    key: String,
    id: String,
    connector: String,
    version: Option<String>,
    /// Which of the document's fields holds its title, if one does.
    title: Option<&'static str>,
    body: Option<String>,
    /// The document's fields, as an object.
    json: Value,
    /// Their strings, one per line (the `_text` field).
    text: String,
    /// Their JSON (`_source`).
    source: String,
    /// Their exact copy, strings cut (`_values`); only where the index has that field.
    clipped: Option<Value>,
    tie: Option<u64>,
}

impl IndexDoc {
    pub(super) fn new(fields: Fields, doc: SinkDocument) -> Self {
        let SinkDocument {
            id,
            connector,
            version,
            fields: map,
            body,
        } = doc;
        let title = ["title", "name"]
            .into_iter()
            .find(|k| map.get(*k).is_some_and(Value::is_string));
        let json = Value::Object(map);
        let mut text = String::new();
        collect_strings(&json, &mut text);
        Self {
            key: OpenIndex::key(&connector, &id),
            source: json.to_string(),
            clipped: fields.values.map(|_| clipped(&json)),
            tie: fields.tie.map(|_| tie_of(&connector, &id)),
            fields,
            id,
            connector,
            version,
            title,
            body,
            json,
            text,
        }
    }

    /// A document of no fields (for tests of what holds documents).
    #[cfg(test)]
    pub(crate) fn empty() -> Self {
        let none = Field::from_field_id(0);
        let fields = Fields {
            key: none,
            id: none,
            connector: none,
            version: none,
            title: none,
            body: none,
            text: none,
            source: none,
            acl: none,
            words: None,
            values: None,
            tie: None,
        };
        Self::new(
            fields,
            SinkDocument {
                id: String::new(),
                connector: String::new(),
                version: None,
                fields: Default::default(),
                body: None,
            },
        )
    }

    /// The document's key (connector and id), as its `_key` field holds it.
    pub(super) fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for IndexDoc {
    /// tantivy drops a document once it is indexed and stored: its body's buffer goes back to
    /// the extractor for the next body's text.
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            tributary_extract::recycle::give_back(body);
        }
    }
}

/// One value of an [`IndexDoc`], borrowed from it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Part<'a> {
    Str(&'a str),
    U64(u64),
    Json(&'a Value),
}

type Items<'a> = std::iter::Map<std::slice::Iter<'a, Value>, fn(&'a Value) -> Part<'a>>;
type Entries<'a> =
    std::iter::Map<serde_json::map::Iter<'a>, fn((&'a String, &'a Value)) -> (&'a str, Part<'a>)>;

fn item(value: &Value) -> Part<'_> {
    Part::Json(value)
}

fn entry<'a>((key, value): (&'a String, &'a Value)) -> (&'a str, Part<'a>) {
    (key, Part::Json(value))
}

impl<'a> tantivy::schema::Value<'a> for Part<'a> {
    type ArrayIter = Items<'a>;
    type ObjectIter = Entries<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        match *self {
            Part::Str(s) => ReferenceValue::Leaf(ReferenceValueLeaf::Str(s)),
            Part::U64(n) => ReferenceValue::Leaf(ReferenceValueLeaf::U64(n)),
            Part::Json(Value::Array(items)) => ReferenceValue::Array(items.iter().map(item as _)),
            Part::Json(Value::Object(map)) => ReferenceValue::Object(map.iter().map(entry as _)),
            // A leaf (number, string that may be a date, ...) as tantivy converts it itself.
            Part::Json(leaf) => match <&'a Value as tantivy::schema::Value<'a>>::as_value(&leaf) {
                ReferenceValue::Leaf(l) => ReferenceValue::Leaf(l),
                ReferenceValue::Array(_) | ReferenceValue::Object(_) => {
                    ReferenceValue::Leaf(ReferenceValueLeaf::Null)
                }
            },
        }
    }
}

impl Document for IndexDoc {
    type Value<'a> = Part<'a>;
    type FieldsValuesIter<'a> = std::vec::IntoIter<(Field, Part<'a>)>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        let f = self.fields;
        let mut out = Vec::with_capacity(16);
        out.push((f.key, Part::Str(&self.key)));
        out.push((f.id, Part::Str(&self.id)));
        out.push((f.connector, Part::Str(&self.connector)));
        if let Some(version) = &self.version {
            out.push((f.version, Part::Str(version)));
        }
        if let Some(title) = self
            .title
            .and_then(|k| self.json.get(k))
            .and_then(Value::as_str)
        {
            out.push((f.title, Part::Str(title)));
        }
        if let Some(body) = &self.body {
            out.push((f.body, Part::Str(body)));
        }
        out.push((f.text, Part::Str(&self.text)));
        out.push((f.source, Part::Str(&self.source)));
        let acl = match self.json.get("_allow_access_control") {
            Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if acl.is_empty() {
            // As Elastic's document-level security: no identities means visible to all.
            out.push((f.acl, Part::Str(PUBLIC_MARK)));
        }
        out.extend(acl.into_iter().map(|id| (f.acl, Part::Str(id))));
        if let Some(words) = f.words {
            out.push((words, Part::Json(&self.json)));
        }
        if let (Some(values), Some(clipped)) = (f.values, &self.clipped) {
            out.push((values, Part::Json(clipped)));
        }
        if let (Some(tie), Some(n)) = (f.tie, self.tie) {
            out.push((tie, Part::U64(n)));
        }
        out.into_iter()
    }
}
