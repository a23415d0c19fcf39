//! Tenants and connectors sharing a cluster: deletes, vanished listings, searches and index
//! names never cross (the Sink contract the embedded index keeps).

use super::*;

/// What a full sync does with the listing: delete the ids `versions` lists that were not seen.
async fn full_sync_vanish(sink: &ElasticsearchSink, ix: &IndexRef, connector: &str, seen: &[&str]) {
    let known = sink.versions(ix.clone(), connector.into()).await.unwrap();
    let vanished: Vec<String> = known
        .into_ids()
        .into_iter()
        .filter(|id| !seen.contains(&id.as_str()))
        .collect();
    sink.delete(ix.clone(), connector.into(), vanished)
        .await
        .unwrap();
    sink.commit(ix.clone()).await.unwrap();
}

fn ids_of(versions: Versions) -> Vec<String> {
    let mut ids = versions.into_ids();
    ids.sort();
    ids
}

#[tokio::test]
async fn two_connectors_in_one_index_never_delete_or_list_each_others_documents() {
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    let ix = IndexRef::new("acme", "shared");
    sink.upsert(
        ix.clone(),
        vec![
            doc("a", "a1", "v1", "A one", "alpha"),
            doc("a", "a2", "v1", "A two", "alpha"),
            doc("b", "b1", "v1", "B one", "beta"),
            doc("b", "b2", "v1", "B two", "beta"),
        ],
    )
    .await
    .unwrap();
    sink.commit(ix.clone()).await.unwrap();
    assert_eq!(
        ids_of(sink.versions(ix.clone(), "a".into()).await.unwrap()),
        vec!["a1", "a2"]
    );
    // Connector a's full sync saw only a1: a2 goes, b's documents stay.
    full_sync_vanish(&sink, &ix, "a", &["a1"]).await;
    // A delete naming another connector's ids (a stale listing, a plugin bug) is a no-op.
    sink.delete(ix.clone(), "a".into(), vec!["b1".into(), "b2".into()])
        .await
        .unwrap();
    sink.commit(ix.clone()).await.unwrap();
    let mut stored: Vec<String> = es.documents("tributary-acme-shared").into_keys().collect();
    stored.sort();
    assert_eq!(stored, vec!["a1", "b1", "b2"]);
    assert_eq!(
        ids_of(sink.versions(ix.clone(), "b".into()).await.unwrap()),
        vec!["b1", "b2"]
    );
    // A delete issued right after an upsert of the same id (still in flight) sees it.
    sink.upsert(ix.clone(), vec![doc("a", "fresh", "v1", "t", "b")])
        .await
        .unwrap();
    sink.delete(ix.clone(), "a".into(), vec!["fresh".into()])
        .await
        .unwrap();
    sink.commit(ix.clone()).await.unwrap();
    assert!(es.document("tributary-acme-shared", "fresh").is_none());
    // Searches and gets filtered by connector see only its documents.
    let only_b = sink
        .search(
            ix.clone(),
            SearchRequest {
                connector: Some("b".into()),
                ..search("beta OR alpha")
            },
        )
        .await
        .unwrap();
    assert_eq!(only_b.total, 2);
    assert!(only_b.hits.iter().all(|h| h.connector == "b"));
    assert!(
        sink.get(ix.clone(), "a".into(), vec!["b1".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn tenants_with_the_same_index_name_never_cross() {
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    let acme = IndexRef::new("acme", "docs");
    let globex = IndexRef::new("globex", "docs");
    // Same index name, same connector id, same document ids.
    for (ix, word) in [(&acme, "anvil"), (&globex, "globe")] {
        sink.upsert(
            ix.clone(),
            vec![
                doc("c", "1", "v1", word, word),
                doc("c", "2", "v1", word, word),
            ],
        )
        .await
        .unwrap();
        sink.commit(ix.clone()).await.unwrap();
    }
    assert_eq!(es.documents("tributary-acme-docs").len(), 2);
    assert_eq!(es.documents("tributary-globex-docs").len(), 2);
    assert_eq!(
        es.document("tributary-globex-docs", "1").unwrap()["_tributary_tenant"],
        "globex"
    );
    let found = |r: SearchResults| {
        r.hits
            .into_iter()
            .map(|h| h.title.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        found(
            sink.search(acme.clone(), search("anvil OR globe"))
                .await
                .unwrap()
        ),
        vec!["anvil", "anvil"]
    );
    // Acme's full sync sees nothing any more: all of acme's go, none of globex's.
    full_sync_vanish(&sink, &acme, "c", &[]).await;
    assert!(es.documents("tributary-acme-docs").is_empty());
    assert_eq!(
        ids_of(sink.versions(globex.clone(), "c".into()).await.unwrap()),
        vec!["1", "2"]
    );
    assert_eq!(
        sink.search(globex.clone(), search("globe"))
            .await
            .unwrap()
            .total,
        2
    );

    // Even tenants sharing one index (a single-tenant pattern used by several) only ever read
    // and delete their own documents.
    let single = sink_for(&es, |c| {
        c.index_pattern = "{index}".into();
        c.single_tenant = true;
    });
    let (one, two) = (
        IndexRef::new("one", "common"),
        IndexRef::new("two", "common"),
    );
    single
        .upsert(one.clone(), vec![doc("c", "x", "v1", "one", "one")])
        .await
        .unwrap();
    single
        .upsert(two.clone(), vec![doc("c", "y", "v1", "two", "two")])
        .await
        .unwrap();
    single.commit(one.clone()).await.unwrap();
    assert_eq!(
        ids_of(single.versions(one.clone(), "c".into()).await.unwrap()),
        vec!["x"]
    );
    assert_eq!(
        single
            .search(one.clone(), search("two"))
            .await
            .unwrap()
            .total,
        0
    );
    single
        .delete(one.clone(), "c".into(), vec!["y".into()])
        .await
        .unwrap();
    single.commit(one.clone()).await.unwrap();
    assert!(es.document("common", "y").is_some());
}

#[tokio::test]
async fn index_patterns_are_validated_and_names_that_collide_are_refused() {
    for (pattern, single, why) in [
        ("tributary-{tenant}", false, "`{index}` exactly once"),
        ("{index}-{index}-{tenant}", false, "`{index}` exactly once"),
        ("{index}", false, "must contain `{tenant}`"),
        ("{tenant}-{tenant}-{index}", false, "`{tenant}` only once"),
        ("{tenant}-{name}-{index}", false, "only the placeholders"),
        ("Tributary-{tenant}-{index}", false, "lowercase"),
        ("_{tenant}-{index}", false, "must not start with"),
        ("x:{tenant}-{index}", false, "must not contain `:`"),
    ] {
        let err = IndexPattern::parse(pattern, single)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(why) && err.contains(pattern),
            "{pattern}: {err}"
        );
    }
    assert!(IndexPattern::parse("{index}", true).is_ok());
    let err = ElasticsearchSink::new(&ElasticsearchConfig {
        index_pattern: "{index}".into(),
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("single_tenant"), "{err}");

    let default = IndexPattern::parse(DEFAULT_INDEX_PATTERN, false).unwrap();
    let ok = |t: &str, i: &str| default.resolve(&IndexRef::new(t, i)).unwrap();
    assert_eq!(ok("acme", "docs"), "tributary-acme-docs");
    assert_eq!(
        ok("acme", ".search-acl-filter-docs"),
        ".search-acl-filter-tributary-acme-docs"
    );
    // A name substituted once only.
    assert_eq!(ok("{index}", "docs"), "tributary-{index}-docs");
    let bad = |t: &str, i: &str| {
        default
            .resolve(&IndexRef::new(t, i))
            .unwrap_err()
            .to_string()
    };
    let err = bad("Acme", "docs");
    assert!(
        err.contains("`docs` of tenant `Acme`")
            && err.contains("tributary-Acme-docs")
            && err.contains("lowercase"),
        "{err}"
    );
    assert!(bad("acme", "a b").contains("must not contain ` `"));
    assert!(bad("acme", &"x".repeat(250)).contains("more than 255"));
    let single = IndexPattern::parse("{index}", true).unwrap();
    for name in [
        "-x", "_x", "+x", ".", "..", "a#b", "a*b", "a\"b", "a,b", "a/b", "a\\b",
    ] {
        assert!(single.resolve(&IndexRef::new("t", name)).is_err(), "{name}");
    }
    // Refused before anything is sent.
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    let err = sink
        .upsert(
            IndexRef::new("Acme", "docs"),
            vec![doc("c", "1", "v1", "t", "b")],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lowercase"), "{err}");
    assert_eq!(es.bulk_stats().requests, 0);

    // `a-b`/`c` and `a`/`b-c` render to one name: the second owner is refused, clearly.
    sink.upsert(
        IndexRef::new("a-b", "c"),
        vec![doc("c", "1", "v1", "t", "b")],
    )
    .await
    .unwrap();
    sink.commit(IndexRef::new("a-b", "c")).await.unwrap();
    let fresh = sink_for(&es, |_| {});
    let err = fresh
        .upsert(
            IndexRef::new("a", "b-c"),
            vec![doc("c", "2", "v1", "t", "b")],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`tributary-a-b-c` holds index `c` of tenant `a-b`"),
        "{err}"
    );
    assert_eq!(es.documents("tributary-a-b-c").len(), 1);
}

/// What a sink shows of a scenario: per tenant and connector, the ids `versions` lists, the ids
/// a connector-filtered search finds, and the ids an unfiltered search of the tenant finds.
async fn contract_scenario(
    sink: &dyn Sink,
) -> Vec<(String, Vec<String>, Vec<String>, Vec<String>)> {
    // Two tenants, same index name; in each, two connectors with distinct ids, and the same
    // ids again in the other tenant.
    for tenant in ["acme", "globex"] {
        let ix = IndexRef::new(tenant, "docs");
        let docs = vec![
            doc("a", "1", "v1", "one", "alpha"),
            doc("a", "2", "v1", "two", "alpha"),
            doc("b", "3", "v1", "three", "alpha"),
            doc("b", "4", "v1", "four", "alpha"),
        ];
        sink.upsert(ix.clone(), docs).await.unwrap();
        sink.commit(ix).await.unwrap();
    }
    // Acme's connector a: a full sync that saw only `1`, then a stray delete of b's `3`.
    let acme = IndexRef::new("acme", "docs");
    let known = sink.versions(acme.clone(), "a".into()).await.unwrap();
    let vanished: Vec<String> = known
        .into_ids()
        .into_iter()
        .filter(|id| id != "1")
        .collect();
    sink.delete(acme.clone(), "a".into(), vanished)
        .await
        .unwrap();
    sink.delete(acme.clone(), "a".into(), vec!["3".into()])
        .await
        .unwrap();
    sink.commit(acme).await.unwrap();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let mut out = Vec::new();
    for tenant in ["acme", "globex"] {
        let ix = IndexRef::new(tenant, "docs");
        for connector in ["a", "b"] {
            let listed = sorted(
                sink.versions(ix.clone(), connector.into())
                    .await
                    .unwrap()
                    .into_ids(),
            );
            let request = SearchRequest {
                connector: Some(connector.into()),
                ..search("alpha")
            };
            let found = sink.search(ix.clone(), request).await.unwrap();
            let found = sorted(found.hits.into_iter().map(|h| h.id).collect());
            let all = sink.search(ix.clone(), search("alpha")).await.unwrap();
            let all = sorted(all.hits.into_iter().map(|h| h.id).collect());
            out.push((format!("{tenant}/{connector}"), listed, found, all));
        }
    }
    out
}

#[tokio::test]
async fn the_sink_contract_holds_as_in_the_embedded_index() {
    let es = fake().await;
    let elasticsearch = sink_for(&es, |_| {});
    let dir = tempfile::tempdir().unwrap();
    let embedded = crate::sink::embedded::EmbeddedIndex::new(dir.path());
    let want = contract_scenario(&embedded).await;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        want,
        vec![
            ("acme/a".into(), s(&["1"]), s(&["1"]), s(&["1", "3", "4"])),
            (
                "acme/b".into(),
                s(&["3", "4"]),
                s(&["3", "4"]),
                s(&["1", "3", "4"])
            ),
            (
                "globex/a".into(),
                s(&["1", "2"]),
                s(&["1", "2"]),
                s(&["1", "2", "3", "4"])
            ),
            (
                "globex/b".into(),
                s(&["3", "4"]),
                s(&["3", "4"]),
                s(&["1", "2", "3", "4"])
            ),
        ]
    );
    assert_eq!(contract_scenario(&elasticsearch).await, want);
}

#[tokio::test]
async fn a_tenant_lists_only_its_own_indexes() {
    use elasticsearch::indices::IndicesCreateParts;
    let es = fake().await;
    let sink = sink_for(&es, |_| {});
    // `tributary-a-*` also matches tenant `a-b`'s names: the recorded owner tells them apart.
    for ix in [
        IndexRef::new("a", "docs"),
        IndexRef::new("a", "wiki"),
        IndexRef::new("a-b", "docs"),
        IndexRef::new("a", "docs").acl(),
    ] {
        sink.upsert(ix.clone(), vec![doc("c", "1", "v1", "t", "b")])
            .await
            .unwrap();
        sink.commit(ix).await.unwrap();
    }
    // An index made by hand (no owner recorded) counts by its name.
    sink.client()
        .indices()
        .create(IndicesCreateParts::Index("tributary-a-legacy"))
        .body(serde_json::json!({"mappings": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sink.indexes("a".into()).await.unwrap(),
        vec!["docs", "legacy", "wiki"]
    );
    assert_eq!(sink.indexes("a-b".into()).await.unwrap(), vec!["docs"]);
    assert!(sink.indexes("nobody".into()).await.unwrap().is_empty());
    // Searching an unknown index created nothing.
    sink.search(IndexRef::new("a", "nope"), search("x"))
        .await
        .unwrap();
    assert!(!es.exists("tributary-a-nope"));
}
