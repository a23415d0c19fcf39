//! The search language every sink answers: one parser, typed errors, and the request parts
//! beside the query (filters, sort, cursor, facets).
//!
//! Invariants:
//! - A query that does not parse is an [`InvalidQuery`] naming the position and the problem —
//!   never a silently emptier query. Both sinks parse with [`parse`] before searching, so the
//!   language and its errors are the same whatever the backend.
//! - A field a query, filter, sort or facet names that no document of the index has is an
//!   [`UnknownField`] listing the fields that exist (the sink decides what exists).
//! - A [`Cursor`] is opaque to callers: the sort key and tie-breaker of the last hit of a
//!   page; the next page starts strictly after it, so paging visits each document once while
//!   the index does not change.
//!
//! The language (tantivy's query grammar): `word`, `"a phrase"`, `"a phrase"~2`, `pre*`,
//! `field:value`, `field:"a phrase"`, `field:pre*`, `field:>10`, `field:[a TO b]`,
//! `field:{a TO b}`, `field: IN [a b]`, `field:*` (has the field), `AND`/`OR`/`NOT`, `+`/`-`,
//! `( … )`, `term^2`, and `*` (everything). Terms without an operator must all match.

use std::ops::Bound;

use serde::Serialize;
use tantivy::query_grammar::{self as grammar, UserInputAst, UserInputBound, UserInputLeaf};

/// Most characters of user input quoted back in an error.
const QUOTE_MAX: usize = 100;

/// How a clause combines with its siblings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occur {
    /// Must match (`AND`, `+`, or no operator).
    Must,
    /// May match; at least one `Should` of a clause without `Must` must (`OR`).
    Should,
    /// Must not match (`NOT`, `-`).
    MustNot,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Every document (`*`).
    All,
    /// Words, a phrase or a prefix; without a field, over title, name, body and every field's text.
    Text {
        /// The field named, if any.
        field: Option<String>,
        /// The text as written (unescaped).
        text: String,
        /// Written in quotes: a phrase.
        quoted: bool,
        /// Words that may stand between the phrase's words (`~n`).
        slop: u32,
        /// Ends with `*`: a prefix.
        prefix: bool,
    },
    /// A range of values of `field` (numbers, dates, or strings).
    Range {
        /// The field.
        field: String,
        /// Lower bound.
        lower: Bound<String>,
        /// Upper bound.
        upper: Bound<String>,
    },
    /// `field` equals one of `values` exactly (`field: IN [a b]`).
    Any {
        /// The field.
        field: String,
        /// The values.
        values: Vec<String>,
    },
    /// Documents that have `field` (`field:*`).
    Exists {
        /// The field.
        field: String,
    },
    /// Clauses combined.
    Bool(Vec<(Occur, Node)>),
    /// A clause's score multiplied (`term^2`).
    Boost(Box<Node>, f32),
}

impl Node {
    /// Every field the query names.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::All => {}
            Node::Text { field, .. } => out.extend(field.as_deref()),
            Node::Range { field, .. } | Node::Any { field, .. } | Node::Exists { field } => {
                out.push(field)
            }
            Node::Bool(clauses) => clauses.iter().for_each(|(_, n)| n.collect_fields(out)),
            Node::Boost(inner, _) => inner.collect_fields(out),
        }
    }
}

/// A query that does not parse, or that the language cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidQuery {
    /// The query (possibly truncated).
    pub query: String,
    /// Character position of the problem, when known.
    pub position: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for InvalidQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let query = crate::text::truncate(&self.query, QUOTE_MAX);
        match self.position {
            Some(pos) => write!(
                f,
                "invalid query `{query}` at position {pos}: {}",
                self.message
            ),
            None => write!(f, "invalid query `{query}`: {}", self.message),
        }
    }
}

impl std::error::Error for InvalidQuery {}

/// A query, filter, sort or facet named a field no document of the index has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// The field asked for.
    pub field: String,
    /// The fields that exist, sorted (at most a few dozen).
    pub known: Vec<String>,
}

impl std::fmt::Display for UnknownField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = crate::text::truncate(&self.field, QUOTE_MAX);
        if self.known.is_empty() {
            write!(f, "unknown field `{field}`: the index has no documents yet")
        } else {
            write!(
                f,
                "unknown field `{field}`; the fields are: {}",
                self.known.join(", ")
            )
        }
    }
}

impl std::error::Error for UnknownField {}

/// Parses `query` strictly: the first problem is an error with its position.
pub fn parse(query: &str) -> Result<Node, InvalidQuery> {
    let invalid = |position: Option<usize>, message: String| InvalidQuery {
        query: query.to_string(),
        position,
        message,
    };
    if query.trim().is_empty() {
        return Err(invalid(
            None,
            "the query is empty (`*` matches every document)".into(),
        ));
    }
    let (ast, errors) = grammar::parse_query_lenient(query);
    if let Some(first) = errors.first() {
        // The grammar counts bytes; people count characters.
        let pos = query
            .char_indices()
            .take_while(|(i, _)| *i < first.pos)
            .count();
        return Err(invalid(Some(pos), first.message.clone()));
    }
    convert(ast).map_err(|message| invalid(None, message))
}

fn convert(ast: UserInputAst) -> Result<Node, String> {
    Ok(match ast {
        UserInputAst::Clause(clauses) => {
            let mut out = Vec::with_capacity(clauses.len());
            for (occur, clause) in clauses {
                let occur = match occur {
                    Some(grammar::Occur::Should) => Occur::Should,
                    Some(grammar::Occur::MustNot) => Occur::MustNot,
                    Some(grammar::Occur::Must) | None => Occur::Must,
                };
                out.push((occur, convert(clause)?));
            }
            if out.is_empty() {
                return Err("the query is empty (`*` matches every document)".into());
            }
            if out.len() == 1 && out[0].0 == Occur::Must {
                return Ok(out.remove(0).1);
            }
            Node::Bool(out)
        }
        UserInputAst::Boost(inner, boost) => Node::Boost(Box::new(convert(*inner)?), boost as f32),
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::All => Node::All,
            UserInputLeaf::Literal(lit) => {
                let quoted = lit.delimiter != grammar::Delimiter::None;
                let mut text = lit.phrase;
                let mut prefix = lit.prefix;
                // The grammar keeps `pre*` as a word with its wildcard: a trailing `*` is a
                // prefix, any other wildcard is refused rather than matched literally.
                if !quoted && text.len() > 1 && text.ends_with('*') {
                    text.pop();
                    prefix = true;
                }
                if !quoted && text.contains(['*', '?']) {
                    return Err(format!(
                        "`{}`: only a trailing `*` (a prefix) is supported",
                        crate::text::truncate(&text, QUOTE_MAX)
                    ));
                }
                Node::Text {
                    field: lit.field_name,
                    text,
                    quoted,
                    slop: lit.slop,
                    prefix,
                }
            }
            UserInputLeaf::Range {
                field,
                lower,
                upper,
            } => Node::Range {
                field: field.ok_or("a range needs a field, e.g. `size:[10 TO 20]`")?,
                lower: bound(lower),
                upper: bound(upper),
            },
            UserInputLeaf::Set { field, elements } => Node::Any {
                field: field.ok_or("`IN [...]` needs a field, e.g. `type: IN [File Folder]`")?,
                values: elements,
            },
            UserInputLeaf::Exists { field } => Node::Exists { field },
        },
    })
}

fn bound(b: UserInputBound) -> Bound<String> {
    match b {
        UserInputBound::Inclusive(v) if v == "*" => Bound::Unbounded,
        UserInputBound::Exclusive(v) if v == "*" => Bound::Unbounded,
        UserInputBound::Inclusive(v) => Bound::Included(v),
        UserInputBound::Exclusive(v) => Bound::Excluded(v),
        UserInputBound::Unbounded => Bound::Unbounded,
    }
}

/// A value from the query, typed as the index types document values: numbers, dates
/// (RFC 3339 or `YYYY-MM-DD`, UTC), booleans, else a string.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed {
    /// An integer.
    Int(i64),
    /// A number with a fraction (or beyond i64).
    Float(f64),
    /// A date: microseconds since the Unix epoch; `day` when written without a time.
    Date {
        /// Microseconds since the epoch.
        micros: i64,
        /// Written as `YYYY-MM-DD`: the whole day.
        day: bool,
    },
    /// `true` or `false`.
    Bool(bool),
    /// Anything else.
    Str(String),
}

/// Microseconds in a day.
pub const DAY_MICROS: i64 = 86_400_000_000;

impl Typed {
    /// Types `value`.
    pub fn of(value: &str) -> Self {
        if let Ok(i) = value.parse::<i64>() {
            return Typed::Int(i);
        }
        if let Ok(f) = value.parse::<f64>()
            && f.is_finite()
        {
            return Typed::Float(f);
        }
        if let Some(micros) = rfc3339_micros(value) {
            return Typed::Date { micros, day: false };
        }
        if let Some(micros) = day_micros(value) {
            return Typed::Date { micros, day: true };
        }
        match value {
            "true" => Typed::Bool(true),
            "false" => Typed::Bool(false),
            _ => Typed::Str(value.to_string()),
        }
    }
}

/// An RFC 3339 date-time as microseconds since the epoch.
pub fn rfc3339_micros(value: &str) -> Option<i64> {
    use tantivy::time::{OffsetDateTime, format_description::well_known::Rfc3339};
    if !value.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let dt = OffsetDateTime::parse(value, &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1000).ok()
}

/// `YYYY-MM-DD` (UTC midnight) as microseconds since the epoch.
fn day_micros(value: &str) -> Option<i64> {
    let mut parts = value.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = tantivy::time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date =
        tantivy::time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1_000_000)
}

/// Lower and upper bounds of a range over dates written as days, widened to whole days (as
/// Elasticsearch rounds `lte: 2024-06-30` to the end of that day): the result bounds are in
/// microseconds, lower inclusive and upper exclusive where a day was given.
pub fn date_bounds(lower: &Bound<Typed>, upper: &Bound<Typed>) -> (Bound<i64>, Bound<i64>) {
    let lo = match lower {
        Bound::Included(Typed::Date { micros, .. }) => Bound::Included(*micros),
        Bound::Excluded(Typed::Date { micros, day: true }) => Bound::Included(micros + DAY_MICROS),
        Bound::Excluded(Typed::Date { micros, .. }) => Bound::Excluded(*micros),
        _ => Bound::Unbounded,
    };
    let hi = match upper {
        Bound::Included(Typed::Date { micros, day: true }) => Bound::Excluded(micros + DAY_MICROS),
        Bound::Included(Typed::Date { micros, .. }) => Bound::Included(*micros),
        Bound::Excluded(Typed::Date { micros, .. }) => Bound::Excluded(*micros),
        _ => Bound::Unbounded,
    };
    (lo, hi)
}

/// An exact-value filter: documents whose `field` holds `value` (`--filter type=File`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// The field.
    pub field: String,
    /// The value, compared exactly (numbers and dates by value).
    pub value: String,
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((field, value)) if !field.trim().is_empty() => Ok(Filter {
                field: field.trim().to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!(
                "filter `{}` is not `field=value`",
                crate::text::truncate(s, QUOTE_MAX)
            )),
        }
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// The order of hits: by relevance (`_score`, the default) or by a field's value. Documents
/// without the field come last either way; a field with several values sorts by its smallest
/// (ascending) or largest (descending), as Elasticsearch does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sort {
    /// `_score` or a field.
    pub field: String,
    /// Direction.
    pub order: Order,
}

/// The relevance pseudo-field.
pub const SCORE: &str = "_score";

impl Sort {
    /// Whether this is relevance order.
    pub fn is_score(&self) -> bool {
        self.field == SCORE
    }
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: SCORE.into(),
            order: Order::Desc,
        }
    }
}

impl std::str::FromStr for Sort {
    type Err = String;

    /// `field`, `field:asc` or `field:desc` (`_score` defaults to descending, fields to ascending).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (field, order) = match s.rsplit_once(':') {
            Some((f, "asc")) => (f, Some(Order::Asc)),
            Some((f, "desc")) => (f, Some(Order::Desc)),
            Some((_, other)) => {
                return Err(format!(
                    "sort order `{}` is neither `asc` nor `desc`",
                    crate::text::truncate(other, QUOTE_MAX)
                ));
            }
            None => (s, None),
        };
        if field.trim().is_empty() {
            return Err("sort needs a field, e.g. `_timestamp:desc`".into());
        }
        let order = order.unwrap_or(if field == SCORE {
            Order::Desc
        } else {
            Order::Asc
        });
        Ok(Sort {
            field: field.to_string(),
            order,
        })
    }
}

/// A sort value as a cursor carries it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, Serialize)]
#[serde(untagged)]
pub enum SortValue {
    /// No value (the document lacks the field).
    Missing,
    /// A number, date (microseconds) or boolean (0/1), or a score.
    Num(f64),
    /// A string.
    Str(String),
}

/// Where the previous page ended: opaque to callers (a hex string), made by the sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl Cursor {
    /// Encodes a backend's position.
    pub fn encode(value: &serde_json::Value) -> Self {
        Cursor(hex::encode(value.to_string()))
    }

    /// Decodes a position made by [`Cursor::encode`]; anything else is an error naming it.
    pub fn decode(&self) -> Result<serde_json::Value, InvalidQuery> {
        hex::decode(&self.0)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| InvalidQuery {
                query: self.0.clone(),
                position: None,
                message: "not a cursor this index returned (pass `next` of a previous page)".into(),
            })
    }
}

/// How many matching documents hold one value of a facet field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    /// The value.
    pub value: String,
    /// Matching documents holding it.
    pub count: u64,
}

/// Most values reported per facet (the most frequent).
pub const FACET_VALUES: usize = 100;

/// The facet naming the connector that wrote each document.
pub const CONNECTOR_FACET: &str = "_connector";

/// Sorts facet counts as reported: most documents first, then by value; at most
/// [`FACET_VALUES`].
pub fn rank_facet(mut counts: Vec<FacetCount>) -> Vec<FacetCount> {
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    counts.truncate(FACET_VALUES);
    counts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_each_form() {
        for q in [
            "revenue",
            "\"third quarter\"",
            "\"third quarter\"~2",
            "quart*",
            "type:File",
            "name:contacts",
            "size:>1000000",
            "size:<=10",
            "_timestamp:[2024-01-01 TO 2024-06-30]",
            "file_path:/Reports/*",
            "type: IN [File Folder]",
            "owner:*",
            "a AND (b OR c) NOT d",
            "title:x^2",
            "*",
        ] {
            parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
        assert_eq!(
            parse("file_path:/Reports/*").unwrap(),
            Node::Text {
                field: Some("file_path".into()),
                text: "/Reports/".into(),
                quoted: false,
                slop: 0,
                prefix: true
            }
        );
        let Node::Range { field, lower, .. } = parse("size:>1000000").unwrap() else {
            panic!()
        };
        assert_eq!(
            (field.as_str(), lower),
            ("size", Bound::Excluded("1000000".into()))
        );
    }

    #[test]
    fn malformed_queries_name_the_position() {
        let err = parse("foo AND (").unwrap_err();
        // As README's "Searching" quotes it.
        assert_eq!(
            err.to_string(),
            "invalid query `foo AND (` at position 9: expected word"
        );
        assert_eq!(err.position, Some(9));
        assert!(err.to_string().contains("position"), "{err}");
        assert!(parse("").is_err());
        assert!(parse("title:").unwrap_err().to_string().contains("title:"));
    }

    #[test]
    fn values_are_typed() {
        assert_eq!(Typed::of("79"), Typed::Int(79));
        assert_eq!(Typed::of("1.5"), Typed::Float(1.5));
        assert_eq!(
            Typed::of("2024-01-02"),
            Typed::Date {
                micros: 1_704_153_600_000_000,
                day: true
            }
        );
        assert_eq!(
            Typed::of("2024-01-02T00:00:00Z"),
            Typed::Date {
                micros: 1_704_153_600_000_000,
                day: false
            }
        );
        assert_eq!(Typed::of("File"), Typed::Str("File".into()));
    }

    #[test]
    fn sort_and_filter_syntax() {
        assert_eq!(
            "_timestamp:desc".parse::<Sort>().unwrap(),
            Sort {
                field: "_timestamp".into(),
                order: Order::Desc
            }
        );
        assert_eq!("name".parse::<Sort>().unwrap().order, Order::Asc);
        assert_eq!("_score".parse::<Sort>().unwrap().order, Order::Desc);
        assert!("x:sideways".parse::<Sort>().is_err());
        assert_eq!(
            "type=File".parse::<Filter>().unwrap(),
            Filter {
                field: "type".into(),
                value: "File".into()
            }
        );
        assert!("nofield".parse::<Filter>().is_err());
        let c = Cursor::encode(&serde_json::json!([1.5, 7]));
        assert_eq!(c.decode().unwrap(), serde_json::json!([1.5, 7]));
        assert!(Cursor("zz".into()).decode().is_err());
    }
}
