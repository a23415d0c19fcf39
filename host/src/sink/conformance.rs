//! What every sink's search answers, written once and run against each backend (the embedded
//! index and Elasticsearch through the fake cluster): each query form of the language, filters,
//! sort, search-after paging to the end, facets, document-level security, and errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::query::{Filter, InvalidQuery, Sort, UnknownField};
use super::{IndexRef, SearchRequest, SearchResults, Sink, SinkDocument};

fn doc(connector: &str, fields: Value, body: Option<&str>) -> SinkDocument {
    let Value::Object(fields) = fields else {
        unreachable!()
    };
    SinkDocument {
        id: fields["id"].as_str().unwrap().to_string(),
        connector: connector.into(),
        version: Some("v1".into()),
        fields,
        body: body.map(str::to_string),
    }
}

/// Four documents of two connectors, as the Dropbox plugin shapes them.
pub fn corpus() -> Vec<SinkDocument> {
    vec![
        doc(
            "a",
            json!({"id": "1", "name": "Contacts.json", "type": "File", "file_extension": "json",
                   "size": 79, "file_path": "/Reports/Contacts.json",
                   "_timestamp": "2024-02-10T08:00:00Z",
                   "_allow_access_control": ["email:ann@example.com"]}),
            Some("phone numbers of the sales team"),
        ),
        doc(
            "a",
            json!({"id": "2", "name": "Quarterly revenue.pdf", "type": "File", "file_extension": "pdf",
                   "size": 2_500_000, "file_path": "/Reports/Quarterly revenue.pdf",
                   "_timestamp": "2024-05-01T10:00:00Z"}),
            Some("revenue grew in the third quarter"),
        ),
        doc(
            "a",
            json!({"id": "3", "name": "Reports", "type": "Folder", "file_path": "/Reports",
                   "_timestamp": "2023-12-01T00:00:00Z",
                   "_allow_access_control": ["email:ann@example.com"]}),
            None,
        ),
        doc(
            "b",
            json!({"id": "4", "name": "Holiday plan.docx", "type": "File", "file_extension": "docx",
                   "size": 12_000, "file_path": "/Old/reports-2023/Holiday plan.docx",
                   "_timestamp": "2024-07-15T12:00:00Z", "owner": {"name": "Bob"},
                   "_allow_access_control": ["email:bob@example.com"]}),
            Some("the office closes in december before the quarterly revenue review"),
        ),
    ]
}

/// Writes the corpus into `ix`.
pub async fn load(sink: &dyn Sink, ix: &IndexRef) {
    sink.upsert(ix.clone(), corpus()).await.unwrap();
    sink.commit(ix.clone()).await.unwrap();
}

async fn run(sink: &dyn Sink, ix: &IndexRef, request: SearchRequest) -> SearchResults {
    let q = request.query.clone();
    sink.search(ix.clone(), request)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e:#}"))
}

fn ids(results: &SearchResults) -> Vec<String> {
    results.hits.iter().map(|h| h.id.clone()).collect()
}

fn set(results: &SearchResults) -> BTreeSet<String> {
    ids(results).into_iter().collect()
}

fn of(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Each query form of the language finds exactly the documents it should.
pub async fn query_forms(sink: &dyn Sink, ix: &IndexRef) {
    let cases: &[(&str, &[&str])] = &[
        // Keyword fields, exact.
        ("type:File", &["1", "2", "4"]),
        ("type:Folder", &["3"]),
        ("file_extension:pdf", &["2"]),
        // Text fields, by words.
        ("name:contacts", &["1"]),
        ("name:\"quarterly revenue\"", &["2"]),
        // Numbers, and ranges of numbers and dates (whole days).
        ("size:79", &["1"]),
        ("size:>1000000", &["2"]),
        ("size:[10000 TO 100000]", &["4"]),
        ("_timestamp:[2024-01-01 TO 2024-06-30]", &["1", "2"]),
        ("_timestamp:[2024-01-01 TO 2024-02-10]", &["1"]),
        ("_timestamp:<2024-01-01", &["3"]),
        // Paths by prefix (case-sensitive, not by words).
        ("file_path:/Reports/*", &["1", "2"]),
        // Phrases, prefixes, boolean operators, sets, existence, nested fields.
        ("\"third quarter\"", &["2"]),
        ("quart*", &["2", "4"]),
        ("type:File AND NOT file_extension:pdf", &["1", "4"]),
        ("file_extension:pdf OR file_extension:json", &["1", "2"]),
        ("type: IN [Folder]", &["3"]),
        ("owner:*", &["4"]),
        ("owner.name:bob", &["4"]),
        ("_connector:b", &["4"]),
        ("*", &["1", "2", "3", "4"]),
    ];
    for (q, want) in cases {
        let found = run(sink, ix, SearchRequest::new(*q, 10)).await;
        assert_eq!(set(&found), of(want), "{} query `{q}`", sink.kind());
        assert_eq!(found.total, want.len(), "{} total of `{q}`", sink.kind());
    }
    // Title matches rank above body matches; the snippet shows the body's matched word.
    let found = run(sink, ix, SearchRequest::new("revenue", 10)).await;
    assert_eq!(ids(&found), ["2", "4"], "{}", sink.kind());
    let snippet = found.hits[0].snippet.as_deref().unwrap_or_default();
    assert!(
        snippet.contains("<b>revenue</b>"),
        "{}: {snippet}",
        sink.kind()
    );
}

/// Filters (exact), sorts (documents without the field last) and count-only.
pub async fn filters_and_sort(sink: &dyn Sink, ix: &IndexRef) {
    let kind = sink.kind();
    let with = |q: &str, filters: &[&str], sort: Option<&str>| SearchRequest {
        filters: filters
            .iter()
            .map(|f| f.parse::<Filter>().unwrap())
            .collect(),
        sort: sort.map(|s| s.parse::<Sort>().unwrap()),
        ..SearchRequest::new(q, 10)
    };
    let found = run(sink, ix, with("*", &["type=File"], None)).await;
    assert_eq!(set(&found), of(&["1", "2", "4"]), "{kind}");
    // A filter is exact: no case folding, no words.
    let found = run(sink, ix, with("*", &["type=file"], None)).await;
    assert_eq!(found.total, 0, "{kind}");
    let found = run(sink, ix, with("*", &["name=Reports"], None)).await;
    assert_eq!(set(&found), of(&["3"]), "{kind}");
    let found = run(sink, ix, with("*", &["size=79", "type=File"], None)).await;
    assert_eq!(set(&found), of(&["1"]), "{kind}");
    let found = run(sink, ix, with("*", &["_connector=b"], None)).await;
    assert_eq!(set(&found), of(&["4"]), "{kind}");

    for (sort, want) in [
        ("_timestamp:desc", ["4", "2", "1", "3"]),
        ("_timestamp:asc", ["3", "1", "2", "4"]),
        ("size:asc", ["1", "4", "2", "3"]),
        ("size:desc", ["2", "4", "1", "3"]),
        ("name:asc", ["1", "4", "2", "3"]),
        ("name:desc", ["3", "2", "4", "1"]),
    ] {
        let found = run(sink, ix, with("*", &[], Some(sort))).await;
        assert_eq!(ids(&found), want, "{kind} sort {sort}");
    }
    let count = run(
        sink,
        ix,
        SearchRequest {
            count_only: true,
            ..SearchRequest::new("type:File", 10)
        },
    )
    .await;
    assert_eq!((count.total, count.hits.len()), (3, 0), "{kind}");
    // A huge limit is a page of at most MAX_PAGE, not an error (Elasticsearch's window).
    let all = run(sink, ix, SearchRequest::new("*", usize::MAX)).await;
    assert_eq!(all.hits.len(), 4, "{kind}");
}

/// Facet counts match the documents; document-level security applies to totals and facets.
pub async fn facets_and_security(sink: &dyn Sink, ix: &IndexRef) {
    let kind = sink.kind();
    let request = |identities: Option<&str>| SearchRequest {
        facets: vec!["type".into(), "file_extension".into(), "_connector".into()],
        identities: identities.map(|i| vec![i.to_string()]),
        ..SearchRequest::new("*", 10)
    };
    let found = run(sink, ix, request(None)).await;
    // Expected counts computed from the documents themselves.
    let mut want: BTreeMap<String, HashMap<String, u64>> = BTreeMap::new();
    for d in corpus() {
        for (facet, value) in [
            ("type", d.fields.get("type").and_then(Value::as_str)),
            (
                "file_extension",
                d.fields.get("file_extension").and_then(Value::as_str),
            ),
            ("_connector", Some(d.connector.as_str())),
        ] {
            if let Some(v) = value {
                *want
                    .entry(facet.into())
                    .or_default()
                    .entry(v.into())
                    .or_default() += 1;
            }
        }
    }
    let got: BTreeMap<String, HashMap<String, u64>> = found
        .facets
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter().map(|c| (c.value.clone(), c.count)).collect(),
            )
        })
        .collect();
    assert_eq!(got, want, "{kind}");
    assert_eq!(found.facets["type"][0].value, "File", "most frequent first");

    // Ann sees her documents and the public one; Bob's document is neither listed nor counted.
    let ann = run(sink, ix, request(Some("email:ann@example.com"))).await;
    assert_eq!(set(&ann), of(&["1", "2", "3"]), "{kind}");
    assert_eq!(ann.total, 3, "{kind}");
    let connectors: Vec<(String, u64)> = ann.facets["_connector"]
        .iter()
        .map(|c| (c.value.clone(), c.count))
        .collect();
    assert_eq!(connectors, [("a".to_string(), 3)], "{kind}");
    let types: u64 = ann.facets["type"].iter().map(|c| c.count).sum();
    assert_eq!(types, 3, "{kind}");
    let stranger = run(sink, ix, request(Some("email:eve@example.com"))).await;
    assert_eq!(
        set(&stranger),
        of(&["2"]),
        "{kind}: only the public document"
    );
}

/// Malformed queries, unknown fields and foreign cursors are errors that say what is wrong.
pub async fn errors(sink: &dyn Sink, ix: &IndexRef) {
    let kind = sink.kind();
    let err = sink
        .search(ix.clone(), SearchRequest::new("foo AND (", 10))
        .await
        .unwrap_err();
    let invalid = err
        .downcast_ref::<InvalidQuery>()
        .unwrap_or_else(|| panic!("{kind}: {err:#}"));
    assert!(invalid.position.is_some(), "{kind}: {invalid}");
    let err = sink
        .search(ix.clone(), SearchRequest::new("nope:x", 10))
        .await
        .unwrap_err();
    let unknown = err
        .downcast_ref::<UnknownField>()
        .unwrap_or_else(|| panic!("{kind}: {err:#}"));
    assert_eq!(unknown.field, "nope");
    assert!(
        unknown.known.contains(&"type".to_string()),
        "{kind}: {unknown}"
    );
    for request in [
        SearchRequest {
            sort: Some("nope:desc".parse().unwrap()),
            ..SearchRequest::new("*", 10)
        },
        SearchRequest {
            facets: vec!["nope".into()],
            ..SearchRequest::new("*", 10)
        },
        SearchRequest {
            filters: vec!["nope=1".parse().unwrap()],
            ..SearchRequest::new("*", 10)
        },
    ] {
        let err = sink.search(ix.clone(), request).await.unwrap_err();
        assert!(
            err.downcast_ref::<UnknownField>().is_some(),
            "{kind}: {err:#}"
        );
    }
    // A cursor of another sort, or not a cursor at all.
    let first = run(
        sink,
        ix,
        SearchRequest {
            sort: Some("size:asc".parse().unwrap()),
            ..SearchRequest::new("*", 1)
        },
    )
    .await;
    let cursor = first.next.expect("more than one page");
    for (after, sort) in [
        (cursor, "_timestamp:asc"),
        (super::Cursor("zz".into()), "size:asc"),
    ] {
        let err = sink
            .search(
                ix.clone(),
                SearchRequest {
                    sort: Some(sort.parse().unwrap()),
                    after: Some(after),
                    ..SearchRequest::new("*", 1)
                },
            )
            .await
            .unwrap_err();
        assert!(
            err.downcast_ref::<InvalidQuery>().is_some(),
            "{kind}: {err:#}"
        );
    }
}

/// `n` documents with a few shared sort values, so ties must be broken by the cursor.
pub fn many(n: usize) -> Vec<SinkDocument> {
    (0..n)
        .map(|i| {
            doc(
                if i % 3 == 0 { "a" } else { "b" },
                json!({"id": format!("d{i:05}"), "name": format!("Document {i}.pdf"),
                       "type": if i % 10 == 0 { "Folder" } else { "File" },
                       "size": (i % 7) as u64 * 1000,
                       "_timestamp": format!("2024-01-{:02}T00:00:00Z", 1 + i % 28)}),
                Some("quarterly report"),
            )
        })
        .collect()
}

/// Pages through all `n` documents with each sort and checks every id is seen exactly once;
/// the last page says there is no next one. Returns the pages taken for the relevance sort.
pub async fn page_to_the_end(sink: &dyn Sink, ix: &IndexRef, n: usize, page: usize) -> usize {
    let kind = sink.kind();
    let mut pages_by_score = 0;
    for (query, sort) in [
        ("quarterly", None),
        ("*", Some("_timestamp:desc")),
        ("*", Some("size:asc")),
        ("*", Some("name:asc")),
    ] {
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let found = run(
                sink,
                ix,
                SearchRequest {
                    sort: sort.map(|s: &str| s.parse().unwrap()),
                    after: after.take(),
                    ..SearchRequest::new(query, page)
                },
            )
            .await;
            assert_eq!(
                found.total, n,
                "{kind}: total is every match, whatever the page"
            );
            pages += 1;
            for hit in &found.hits {
                *seen.entry(hit.id.clone()).or_default() += 1;
            }
            match found.next {
                Some(next) => {
                    assert_eq!(
                        found.hits.len(),
                        page,
                        "{kind}: only the last page is short"
                    );
                    after = Some(next);
                }
                None => break,
            }
            assert!(pages <= n / page + 1, "{kind}: paging does not end");
        }
        assert_eq!(seen.len(), n, "{kind} {sort:?}: every document");
        assert!(
            seen.values().all(|c| *c == 1),
            "{kind} {sort:?}: each exactly once"
        );
        if sort.is_none() {
            pages_by_score = pages;
        }
    }
    pages_by_score
}

/// The README's search examples (between the `search-examples` markers), run against the
/// corpus the README shows ([`corpus`]): each query finds exactly the ids listed.
pub async fn readme_examples(sink: &dyn Sink, ix: &IndexRef) {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("<!-- search-examples")
        .expect("README has the examples");
    let end = readme
        .find("<!-- /search-examples -->")
        .expect("examples end");
    let mut rows = 0;
    for line in readme[start..end].lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(query), Some(ids)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        let Some(query) = query.strip_prefix("| `").and_then(|q| q.strip_suffix('`')) else {
            continue;
        };
        let want: BTreeSet<String> = ids.split(", ").map(str::to_string).collect();
        let found = run(sink, ix, SearchRequest::new(query, 10)).await;
        assert_eq!(
            set(&found),
            want,
            "{}: README example `{query}`",
            sink.kind()
        );
        rows += 1;
    }
    assert!(rows >= 10, "only {rows} README examples found");
}
