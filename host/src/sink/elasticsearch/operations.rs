//! What the sink does: create indexes with their mapping, write and delete in bulk, list a
//! connector's versions with a point in time, search and get — each scoped to a tenant and
//! connector (see the module docs of [`super`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use elasticsearch::http::StatusCode;
use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesExistsParts, IndicesGetMappingParts,
};
use elasticsearch::{CountParts, Elasticsearch, MgetParts, OpenPointInTimeParts, SearchParts};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::dsl;
use super::request_builder::*;
use super::service::*;
use super::*;
use crate::sink::query::{self, FacetCount, InvalidQuery, Sort, UnknownField};
use crate::sink::{IndexRef, SearchHit, SearchRequest, SearchResults, SinkDocument};

/// How the mapping declares a field (see [`ElasticsearchSink::mapped_fields`]).
pub(super) enum Mapped {
    /// `text`, with or without a `keyword` multi-field.
    Text { keyword: bool },
    /// Any other type.
    Other,
}

fn flatten_mapping(prefix: &str, props: &Value, out: &mut HashMap<String, Mapped>) {
    let Some(props) = props.as_object() else {
        return;
    };
    for (name, spec) in props {
        let path = format!("{prefix}{name}");
        if let Some(inner) = spec.get("properties") {
            flatten_mapping(&format!("{path}."), inner, out);
            continue;
        }
        let mapped = match spec.get("type").and_then(Value::as_str) {
            Some("text") => Mapped::Text {
                keyword: spec.pointer("/fields/keyword").is_some(),
            },
            _ => Mapped::Other,
        };
        out.insert(path, mapped);
    }
}

/// A cursor: the sort it was made for and the last hit's `sort` values.
fn encode_after(sort: &Sort, values: &Value) -> crate::sink::Cursor {
    crate::sink::Cursor::encode(&json!([sort.field, sort.order, values]))
}

fn decode_after(cursor: &crate::sink::Cursor, sort: &Sort) -> anyhow::Result<Value> {
    let value = cursor.decode()?;
    let order = serde_json::to_value(sort.order)?;
    match value.as_array().map(Vec::as_slice) {
        Some([field, o, values])
            if field.as_str() == Some(sort.field.as_str()) && *o == order && values.is_array() =>
        {
            Ok(values.clone())
        }
        _ => Err(InvalidQuery {
            query: cursor.0.clone(),
            position: None,
            message: format!("the cursor is not from a search sorted by `{}`", sort.field),
        }
        .into()),
    }
}

impl ElasticsearchSink {
    /// A sink writing to the cluster `config` names (no request is sent yet).
    pub fn new(config: &ElasticsearchConfig) -> anyhow::Result<Self> {
        let client = config.client()?;
        let pattern = IndexPattern::parse(&config.index_pattern, config.single_tenant)?;
        let mut config = config.clone();
        config.bulk_max_docs = config.bulk_max_docs.clamp(1, 100_000);
        config.bulk_max_bytes = config.bulk_max_bytes.clamp(1024, 100 * 1024 * 1024);
        config.bulk_concurrency = config.bulk_concurrency.clamp(1, 64);
        Ok(Self {
            client,
            pattern,
            slots: Arc::new(Semaphore::new(config.bulk_concurrency)),
            config,
            ensured: tokio::sync::Mutex::default(),
            in_flight: Mutex::default(),
            stats: Arc::default(),
        })
    }

    /// The client (shared with the connectors compatibility mode).
    pub fn client(&self) -> &Elasticsearch {
        &self.client
    }

    /// The Elasticsearch index holding `index` (see [`IndexPattern`]).
    pub fn index_name(&self, index: &IndexRef) -> anyhow::Result<String> {
        self.pattern.resolve(index)
    }

    /// What was written so far.
    pub fn stats(&self) -> &Arc<SinkStats> {
        &self.stats
    }

    /// Checks the cluster answers (and the credentials work): its version number.
    pub async fn ping(&self) -> anyhow::Result<String> {
        let response =
            self.client.info().send().await.map_err(|e| {
                anyhow!("Elasticsearch at {} is unreachable: {e}", self.config.host)
            })?;
        let body = read_json(response, "cluster info").await?;
        Ok(body
            .pointer("/version/number")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }

    /// Creates `name` (the Elasticsearch index of `index`) with tributary's mappings unless it
    /// exists; an existing index recording another tenant's index as its owner is refused.
    pub(super) async fn ensure_index(&self, name: &str, index: &IndexRef) -> anyhow::Result<()> {
        let mut ensured = self.ensured.lock().await;
        if ensured.contains(name) {
            return Ok(());
        }
        let exists = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[name]))
            .send()
            .await
            .map_err(|e| anyhow!("checking whether index `{name}` exists: {e}"))?;
        match exists.status_code() {
            StatusCode::OK if self.pattern.has_tenant() => self.check_owner(name, index).await?,
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                let response = self
                    .client
                    .indices()
                    .create(IndicesCreateParts::Index(name))
                    .body(index_definition(name, index))
                    .send()
                    .await
                    .map_err(|e| anyhow!("creating index `{name}`: {e}"))?;
                let status = response.status_code();
                if !status.is_success() {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    // Another writer created it meanwhile: fine if it is ours.
                    if error_type(&body) != Some("resource_already_exists_exception") {
                        bail!(
                            "creating index `{name}`: HTTP {}: {}",
                            status.as_u16(),
                            error_reason(&body)
                        );
                    }
                    if self.pattern.has_tenant() {
                        self.check_owner(name, index).await?;
                    }
                }
                tracing::info!(index = %name, "created Elasticsearch index");
            }
            other => bail!(
                "checking whether index `{name}` exists: HTTP {}",
                other.as_u16()
            ),
        }
        ensured.insert(name.to_string());
        Ok(())
    }

    /// Fails when `name` records (in `_meta.tributary`) an owner other than `index`. Indexes
    /// without the record (made by Kibana or by hand) are accepted.
    pub(super) async fn check_owner(&self, name: &str, index: &IndexRef) -> anyhow::Result<()> {
        let response = self
            .client
            .indices()
            .get_mapping(IndicesGetMappingParts::Index(&[name]))
            .send()
            .await
            .map_err(|e| anyhow!("reading the mappings of `{name}`: {e}"))?;
        let body = read_json(response, &format!("reading the mappings of `{name}`")).await?;
        let Some(owner) = body.pointer(&format!(
            "/{}/mappings/_meta/tributary",
            pointer_escape(name)
        )) else {
            return Ok(());
        };
        let owner_tenant = owner.get("tenant").and_then(Value::as_str).unwrap_or("");
        let owner_index = owner.get("index").and_then(Value::as_str).unwrap_or("");
        if owner_tenant != index.tenant || owner_index != index.name {
            bail!(
                "Elasticsearch index `{name}` holds index `{owner_index}` of tenant `{owner_tenant}`, not `{}` of tenant `{}`: change `index_pattern` so names cannot collide",
                index.name,
                index.tenant
            );
        }
        Ok(())
    }

    pub(super) fn index_op(tenant: &str, doc: &SinkDocument) -> anyhow::Result<(Op, usize)> {
        let mut source = doc.fields.clone();
        if let Some(body) = &doc.body {
            source.insert(BODY_FIELD.into(), Value::String(body.clone()));
        }
        source.insert(CONNECTOR_FIELD.into(), Value::String(doc.connector.clone()));
        source.insert(TENANT_FIELD.into(), Value::String(tenant.to_string()));
        match &doc.version {
            Some(v) => {
                source.insert(VERSION_FIELD.into(), Value::String(v.clone()));
            }
            None => {
                source.remove(VERSION_FIELD);
            }
        }
        let source = serde_json::to_vec(&Value::Object(source))?;
        let action = serde_json::to_vec(&json!({"index": {"_id": doc.id}}))?;
        let len = source.len();
        Ok((
            Op {
                id: doc.id.clone(),
                action: Bytes::from(action),
                source: Some(Bytes::from(source)),
            },
            len,
        ))
    }

    /// Deletes `id` only while it is still the copy read at `seq_no`/`primary_term`.
    pub(super) fn delete_op(id: &str, seq_no: u64, primary_term: u64) -> anyhow::Result<Op> {
        let action =
            json!({"delete": {"_id": id, "if_seq_no": seq_no, "if_primary_term": primary_term}});
        Ok(Op {
            id: id.to_string(),
            action: Bytes::from(serde_json::to_vec(&action)?),
            source: None,
        })
    }

    /// Deletes those of `ids` in `name` that belong to `connector` of `index.tenant` (or to
    /// no tributary connector), leaving other connectors' documents alone.
    pub(super) async fn delete_owned(
        &self,
        name: &str,
        index: &IndexRef,
        connector: &str,
        ids: Vec<String>,
    ) -> anyhow::Result<()> {
        // Our writes of these ids still in flight land first, so the owner read below is current.
        self.settle(name, &ids).await?;
        let mut ops = Vec::new();
        let fields = [CONNECTOR_FIELD, TENANT_FIELD];
        for chunk in ids.chunks(SCAN_PAGE) {
            let response = self
                .client
                .mget(MgetParts::Index(name))
                ._source_includes(&fields)
                .body(json!({ "ids": chunk }))
                .send()
                .await
                .map_err(|e| anyhow!("reading documents of `{name}` to delete: {e}"))?;
            if response.status_code() == StatusCode::NOT_FOUND {
                return Ok(()); // nothing indexed yet
            }
            let body = read_json(
                response,
                &format!("reading documents of `{name}` to delete"),
            )
            .await?;
            for doc in body
                .get("docs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(id), Some(seq_no), Some(term)) = (
                    doc.get("_id").and_then(Value::as_str),
                    doc.get("_seq_no").and_then(Value::as_u64),
                    doc.get("_primary_term").and_then(Value::as_u64),
                ) else {
                    continue; // not found
                };
                let source = doc.get("_source").unwrap_or(&Value::Null);
                if owns(source, &index.tenant, connector) {
                    ops.push(Self::delete_op(id, seq_no, term)?);
                }
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.submit(name, index, ops).await
    }

    /// Cuts `ops` into bounded bulk requests and sends them, waiting for a free slot (and for
    /// in-flight writes of the same ids) before each.
    pub(super) async fn submit(
        &self,
        index: &str,
        owner: &IndexRef,
        ops: Vec<Op>,
    ) -> anyhow::Result<()> {
        self.ensure_index(index, owner).await?;
        let mut chunk: Vec<Op> = Vec::new();
        let mut bytes = 0;
        for op in ops {
            let len = op.len();
            if !chunk.is_empty()
                && (chunk.len() >= self.config.bulk_max_docs
                    || bytes + len > self.config.bulk_max_bytes)
            {
                self.send_chunk(index, std::mem::take(&mut chunk)).await?;
                bytes = 0;
            }
            bytes += len;
            chunk.push(op);
        }
        if !chunk.is_empty() {
            self.send_chunk(index, chunk).await?;
        }
        Ok(())
    }

    pub(super) async fn send_chunk(&self, index: &str, chunk: Vec<Op>) -> anyhow::Result<()> {
        let ids: HashSet<String> = chunk.iter().map(|o| o.id.clone()).collect();
        // Finished requests, and requests writing the same ids, are awaited first: their errors
        // surface now, and a later write of an id never overtakes an earlier one.
        let waiting: Vec<JoinHandle<anyhow::Result<()>>> = {
            let mut map = self
                .in_flight
                .lock()
                .map_err(|_| anyhow!("sink lock poisoned"))?;
            let list = map.entry(index.to_string()).or_default();
            let (wait, keep): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(list)
                .into_iter()
                .partition(|f| f.handle.is_finished() || !f.ids.is_disjoint(&ids));
            *list = keep;
            wait.into_iter().map(|f| f.handle).collect()
        };
        join_all(waiting).await?;
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| anyhow!("the sink is shutting down"))?;
        let client = self.client.clone();
        let config = self.config.clone();
        let stats = self.stats.clone();
        let target = index.to_string();
        let handle = tokio::spawn(async move {
            let result = send_bulk(&client, &config, &stats, &target, chunk).await;
            drop(permit);
            result
        });
        self.in_flight
            .lock()
            .map_err(|_| anyhow!("sink lock poisoned"))?
            .entry(index.to_string())
            .or_default()
            .push(InFlight { ids, handle });
        Ok(())
    }

    /// Waits for the bulk requests in flight for `index` that write one of `ids`.
    pub(super) async fn settle(&self, index: &str, ids: &[String]) -> anyhow::Result<()> {
        let handles: Vec<JoinHandle<anyhow::Result<()>>> = {
            let mut map = self
                .in_flight
                .lock()
                .map_err(|_| anyhow!("sink lock poisoned"))?;
            let Some(list) = map.get_mut(index) else {
                return Ok(());
            };
            let (wait, keep): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(list)
                .into_iter()
                .partition(|f| f.handle.is_finished() || ids.iter().any(|id| f.ids.contains(id)));
            *list = keep;
            wait.into_iter().map(|f| f.handle).collect()
        };
        join_all(handles).await
    }

    /// Waits for every bulk request in flight for `index`.
    pub(super) async fn drain(&self, index: &str) -> anyhow::Result<()> {
        let handles: Vec<JoinHandle<anyhow::Result<()>>> = self
            .in_flight
            .lock()
            .map_err(|_| anyhow!("sink lock poisoned"))?
            .remove(index)
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.handle)
            .collect();
        join_all(handles).await
    }

    pub(super) async fn search_raw(
        &self,
        index: &str,
        body: Value,
    ) -> anyhow::Result<Option<Value>> {
        let response = self
            .client
            .search(SearchParts::Index(&[index]))
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow!("searching `{index}`: {e}"))?;
        if response.status_code() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        read_json(response, &format!("searching `{index}`"))
            .await
            .map(Some)
    }

    pub(super) async fn versions_of(
        &self,
        index: &str,
        tenant: &str,
        connector: &str,
    ) -> anyhow::Result<Versions> {
        let mut out = Versions::new();
        let opened = self
            .client
            .open_point_in_time(OpenPointInTimeParts::Index(&[index]))
            .keep_alive("2m")
            .send()
            .await
            .map_err(|e| anyhow!("opening a point in time on `{index}`: {e}"))?;
        if opened.status_code() == StatusCode::NOT_FOUND {
            return Ok(out); // nothing indexed yet
        }
        let opened = read_json(opened, &format!("opening a point in time on `{index}`")).await?;
        let mut pit = opened
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("Elasticsearch returned no point-in-time id"))?
            .to_string();
        let scanned = async {
            let mut after: Option<Value> = None;
            loop {
                let mut body = json!({
                    "size": SCAN_PAGE,
                    "pit": {"id": pit, "keep_alive": "2m"},
                    "sort": [{"_shard_doc": "asc"}],
                    "query": owned_by(tenant, connector),
                    "_source": [VERSION_FIELD],
                    "track_total_hits": false,
                });
                if let Some(a) = after.take() {
                    body["search_after"] = a;
                }
                let response = self
                    .client
                    .search(SearchParts::None)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| anyhow!("listing `{index}`: {e}"))?;
                let page = read_json(response, &format!("listing `{index}`")).await?;
                if let Some(id) = page.get("pit_id").and_then(Value::as_str) {
                    pit = id.to_string();
                }
                let hits = page
                    .pointer("/hits/hits")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for hit in &hits {
                    let Some(id) = hit.get("_id").and_then(Value::as_str) else {
                        continue;
                    };
                    let version = hit
                        .pointer(&format!("/_source/{VERSION_FIELD}"))
                        .and_then(Value::as_str);
                    out.insert(id, version)?;
                }
                match hits.last().and_then(|h| h.get("sort")) {
                    Some(sort) if hits.len() == SCAN_PAGE => after = Some(sort.clone()),
                    _ => break,
                }
            }
            anyhow::Ok(())
        }
        .await;
        // Free the point in time whatever happened (it would expire on its own anyway).
        if let Err(e) = self
            .client
            .close_point_in_time()
            .body(json!({"id": pit}))
            .send()
            .await
        {
            tracing::debug!("closing a point in time: {e}");
        }
        scanned?;
        Ok(out)
    }

    /// The fields of index `name` as its mapping declares them (dotted paths → type), with
    /// the string fields that have a `keyword` multi-field; `None` when the index does not exist.
    async fn mapped_fields(&self, name: &str) -> anyhow::Result<Option<HashMap<String, Mapped>>> {
        let response = self
            .client
            .indices()
            .get_mapping(IndicesGetMappingParts::Index(&[name]))
            .send()
            .await
            .map_err(|e| anyhow!("reading the mapping of `{name}`: {e}"))?;
        if response.status_code() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = read_json(response, &format!("reading the mapping of `{name}`")).await?;
        let mut out = HashMap::new();
        if let Some(props) = body
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|v| v.pointer("/mappings/properties"))
        {
            flatten_mapping("", props, &mut out);
        }
        Ok(Some(out))
    }

    pub(super) async fn search_index(
        &self,
        index: &str,
        tenant: &str,
        request: &SearchRequest,
    ) -> anyhow::Result<SearchResults> {
        let parsed = query::parse(&request.query)?;
        let named = request.named_fields(&parsed);
        let mapped = if named.is_empty() {
            HashMap::new()
        } else {
            match self.mapped_fields(index).await? {
                Some(m) => m,
                None => return Ok(SearchResults::default()),
            }
        };
        for field in &named {
            let builtin = matches!(field.as_str(), "_id" | query::CONNECTOR_FACET | BODY_FIELD);
            let known = mapped.contains_key(field.as_str())
                || mapped.keys().any(|k| k.starts_with(&format!("{field}.")));
            if !builtin && !known {
                let mut known: Vec<String> = mapped
                    .keys()
                    .filter(|k| !k.starts_with("_tributary_"))
                    .cloned()
                    .chain(["_id", query::CONNECTOR_FACET].map(str::to_string))
                    .collect();
                known.sort();
                known.truncate(60);
                return Err(UnknownField {
                    field: field.clone(),
                    known,
                }
                .into());
            }
        }
        // A field to sort, count or filter on: a text field's keyword multi-field.
        let keyword = |field: &str| -> String {
            match mapped.get(field) {
                Some(Mapped::Text { keyword: true }) => format!("{field}.keyword"),
                _ => dsl::es_field(field).to_string(),
            }
        };
        let mut filter = vec![match &request.connector {
            Some(connector) => owned_by(tenant, connector),
            None => of_tenant(tenant),
        }];
        if let Some(identities) = &request.identities {
            // As Elastic's document-level security: a document without identities is public.
            filter.push(json!({"bool": {
                "should": [
                    {"terms": {format!("{ACL_FIELD}.keyword"): identities}},
                    {"bool": {"must_not": [{"exists": {"field": ACL_FIELD}}]}},
                ],
                "minimum_should_match": 1,
            }}));
        }
        for f in &request.filters {
            filter.push(dsl::exact_on(&f.field, &[&keyword(&f.field)], &f.value));
        }
        let sort = request.sort.clone().unwrap_or_default();
        let limit = request.page_size();
        let mut body = json!({
            "size": if request.count_only { 0 } else { limit + 1 },
            "track_total_hits": true,
            "query": {"bool": {"must": [dsl::node(&parsed)], "filter": filter}},
            "sort": dsl::sort(&sort, (!sort.is_score()).then(|| keyword(&sort.field)).as_deref()),
            "highlight": {
                "pre_tags": ["<b>"],
                "post_tags": ["</b>"],
                "fields": {BODY_FIELD: {"fragment_size": 200, "number_of_fragments": 1}},
            },
        });
        if !request.with_body {
            body["_source"] = json!({"excludes": [BODY_FIELD]});
        }
        if let Some(after) = &request.after {
            body["search_after"] = decode_after(after, &sort)?;
        }
        if !request.facets.is_empty() {
            let aggs: serde_json::Map<String, Value> = request
                .facets
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        json!({"terms": {"field": keyword(f), "size": query::FACET_VALUES}}),
                    )
                })
                .collect();
            body["aggs"] = Value::Object(aggs);
        }
        let Some(found) = self.search_raw(index, body).await? else {
            return Ok(SearchResults::default());
        };
        let total = found
            .pointer("/hits/total/value")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let mut raw: Vec<Value> = found
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let more = raw.len() > limit;
        raw.truncate(limit);
        let next = if more && !request.count_only {
            raw.last()
                .and_then(|h| h.get("sort"))
                .map(|values| encode_after(&sort, values))
        } else {
            None
        };
        let hits = raw
            .iter()
            .map(|hit| {
                let doc = from_hit(hit);
                let score = hit
                    .get("_score")
                    .and_then(Value::as_f64)
                    .or_else(|| {
                        sort.is_score()
                            .then(|| hit.pointer("/sort/0").and_then(Value::as_f64))
                            .flatten()
                    })
                    .unwrap_or(0.0) as f32;
                SearchHit {
                    title: ["title", "name"]
                        .iter()
                        .find_map(|k| doc.fields.get(*k).and_then(Value::as_str))
                        .map(str::to_string),
                    snippet: hit
                        .pointer(&format!("/highlight/{BODY_FIELD}/0"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    score,
                    id: doc.id,
                    connector: doc.connector,
                    fields: doc.fields,
                    body: if request.with_body { doc.body } else { None },
                }
            })
            .collect();
        let mut facets = std::collections::BTreeMap::new();
        for name in &request.facets {
            let counts = found
                .pointer(&format!("/aggregations/{}/buckets", pointer_escape(name)))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| {
                    let value = match b.get("key_as_string").or_else(|| b.get("key"))? {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    Some(FacetCount {
                        value,
                        count: b.get("doc_count").and_then(Value::as_u64)?,
                    })
                })
                .collect();
            facets.insert(name.clone(), query::rank_facet(counts));
        }
        Ok(SearchResults {
            total,
            hits,
            next,
            facets,
        })
    }

    /// The mappings of the indexes matching `wildcard` (`{}` when there are none).
    async fn mappings_of(&self, wildcard: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .indices()
            .get_mapping(IndicesGetMappingParts::Index(&[wildcard]))
            .allow_no_indices(true)
            .ignore_unavailable(true)
            .send()
            .await
            .map_err(|e| anyhow!("listing the indexes `{wildcard}`: {e}"))?;
        if response.status_code() == StatusCode::NOT_FOUND {
            return Ok(Value::Object(Default::default()));
        }
        read_json(response, &format!("listing the indexes `{wildcard}`")).await
    }

    /// The indexes of `tenant`: those matching the pattern for the tenant whose recorded owner
    /// (`_meta.tributary`) is the tenant, or that record none (made by hand, as
    /// [`Self::check_owner`] accepts them).
    pub(super) async fn indexes_of(&self, tenant: &str) -> anyhow::Result<Vec<String>> {
        let (wildcard, before, after) = self.pattern.of_tenant(tenant);
        let body = self.mappings_of(&wildcard).await?;
        let mut names: Vec<String> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(
                |(name, entry)| match entry.pointer("/mappings/_meta/tributary") {
                    Some(owner) => {
                        let owned = owner.get("tenant").and_then(Value::as_str) == Some(tenant);
                        let index = owner.get("index").and_then(Value::as_str)?;
                        owned.then(|| index.to_string())
                    }
                    None => name
                        .strip_prefix(before.as_str())
                        .and_then(|n| n.strip_suffix(after.as_str()))
                        .map(str::to_string),
                },
            )
            .filter(|name| !IndexRef::new(tenant, name.as_str()).is_acl())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Deletes the Elasticsearch indexes (and their access-control indexes) of `tenant`. With
    /// a pattern without `{tenant}` (one tenant only) the indexes are shared by name with no
    /// other tenant but are not the tenant's alone either, so they stay: the tenant's connectors
    /// deleted their own documents.
    pub(super) async fn drop_indexes_of(&self, tenant: &str) -> anyhow::Result<()> {
        if !self.pattern.has_tenant() {
            tracing::warn!(%tenant, "single-tenant index pattern: the tenant's indexes are kept");
            return Ok(());
        }
        for name in self.indexes_of(tenant).await? {
            let index = IndexRef::new(tenant, name.as_str());
            for target in [index.clone(), index.acl()] {
                let es_name = self.index_name(&target)?;
                self.drain(&es_name).await?;
                let response = self
                    .client
                    .indices()
                    .delete(IndicesDeleteParts::Index(&[&es_name]))
                    .ignore_unavailable(true)
                    .send()
                    .await
                    .map_err(|e| anyhow!("deleting index `{es_name}`: {e}"))?;
                let status = response.status_code();
                if !status.is_success() && status != StatusCode::NOT_FOUND {
                    bail!("deleting index `{es_name}`: HTTP {}", status.as_u16());
                }
                // Created again (with its owner record) if the tenant id is reused.
                self.ensured.lock().await.remove(&es_name);
                tracing::info!(index = %es_name, %tenant, "deleted Elasticsearch index");
            }
        }
        Ok(())
    }

    /// The tenants recorded as owners (`_meta.tributary.tenant`) of indexes matching the
    /// pattern; empty for a pattern without `{tenant}`.
    pub(super) async fn owners(&self) -> anyhow::Result<Vec<String>> {
        if !self.pattern.has_tenant() {
            return Ok(Vec::new());
        }
        let (wildcard, _, _) = self.pattern.of_tenant("*");
        let body = self.mappings_of(&wildcard).await?;
        let mut owners: Vec<String> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, entry)| {
                entry
                    .pointer("/mappings/_meta/tributary/tenant")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        owners.sort();
        owners.dedup();
        Ok(owners)
    }

    pub(super) async fn get_docs(
        &self,
        index: &str,
        tenant: &str,
        connector: &str,
        ids: &[String],
    ) -> anyhow::Result<Vec<SinkDocument>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(SCAN_PAGE) {
            let body = json!({
                "size": chunk.len(),
                "query": {"bool": {"filter": [{"ids": {"values": chunk}}, owned_by(tenant, connector)]}},
            });
            let Some(found) = self.search_raw(index, body).await? else {
                return Ok(out);
            };
            if let Some(hits) = found.pointer("/hits/hits").and_then(Value::as_array) {
                out.extend(hits.iter().map(from_hit));
            }
        }
        Ok(out)
    }

    /// Documents in `index` now (after a refresh).
    pub async fn count(&self, index: &str) -> anyhow::Result<u64> {
        let response = self
            .client
            .count(CountParts::Index(&[index]))
            .ignore_unavailable(true)
            .send()
            .await
            .map_err(|e| anyhow!("counting `{index}`: {e}"))?;
        let body = read_json(response, &format!("counting `{index}`")).await?;
        Ok(body.get("count").and_then(Value::as_u64).unwrap_or(0))
    }
}
