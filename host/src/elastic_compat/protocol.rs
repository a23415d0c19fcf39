//! The connector protocol's documents: connectors in `.elastic-connectors`, sync jobs in
//! `.elastic-connectors-sync-jobs`, read and written directly with optimistic concurrency.
//!
//! Shapes follow Elastic's connectors service (`connectors/protocol/connectors.py`, its
//! direct-index path) and the Elasticsearch specification's `Connector` and
//! `ConnectorSyncJob` types:
//!
//! - sync job: `{connector: {id, index_name, service_type, configuration, filtering, pipeline,
//!   language, sync_cursor}, job_type: full|incremental|access_control, trigger_method,
//!   status: pending|in_progress|canceling|canceled|suspended|completed|error, error,
//!   indexed_document_count, indexed_document_volume (MiB), deleted_document_count,
//!   total_document_count, created_at, started_at, last_seen, completed_at, canceled_at,
//!   worker_hostname, metadata}`; for access-control jobs `connector.index_name` is already
//!   `.search-acl-filter-<index>`.
//! - connector: `{index_name, service_type, status, error, last_seen, last_synced,
//!   last_sync_status, last_sync_error, last_access_control_sync_status,
//!   last_access_control_sync_error, last_indexed_document_count, last_deleted_document_count,
//!   sync_cursor, configuration: {<key>: {value, …}}, filtering: [{domain, active, draft}]}`.
//! - filtering (`FilteringRules`): `{rules: [{id, order, field, rule, value, policy}],
//!   advanced_snippet: {value}, validation}`; the `DEFAULT` rule is Elastic's catch-all and is
//!   skipped, the others apply in `order`.
//!
//! Assumed (not visible in Elastic's sources): a job's `connector.filtering` may be either that
//! object (what `transform_filtering` writes) or the connector's list form — both are read.

use anyhow::{anyhow, bail};
use elasticsearch::http::{Method, StatusCode};
use elasticsearch::{Elasticsearch, GetParts, IndexParts, SearchParts, UpdateParts};
use serde_json::{Map, Value, json};

use crate::connector::rules::{Condition, Policy, RuleSpec};
use crate::job::SyncKind;
use crate::sink::elasticsearch::read_json;

/// The connectors index (an alias in Elasticsearch).
pub const CONNECTORS_INDEX: &str = ".elastic-connectors";
/// The sync jobs index (an alias in Elasticsearch).
pub const JOBS_INDEX: &str = ".elastic-connectors-sync-jobs";
/// Elastic's access-control index prefix.
pub const ACL_PREFIX: &str = ".search-acl-filter-";
/// A running job not seen for this long is marked as failed (Elastic's `IDLE_JOBS_THRESHOLD`).
pub const IDLE_JOB_SECS: i64 = 300;
/// Elastic's message for such a job.
pub const IDLE_JOB_ERROR: &str = "The job has not seen any update for some time.";

/// A document with what optimistic concurrency needs.
#[derive(Clone, Debug)]
pub struct Versioned {
    /// `_id`.
    pub id: String,
    /// `_seq_no`.
    pub seq_no: i64,
    /// `_primary_term`.
    pub primary_term: i64,
    /// `_source`.
    pub source: Value,
}

impl Versioned {
    fn from_hit(hit: &Value) -> Option<Self> {
        Some(Self {
            id: hit.get("_id")?.as_str()?.to_string(),
            seq_no: hit.get("_seq_no")?.as_i64()?,
            primary_term: hit.get("_primary_term")?.as_i64()?,
            source: hit.get("_source").cloned().unwrap_or(Value::Null),
        })
    }

    /// A string field (dotted path).
    pub fn str(&self, path: &str) -> Option<&str> {
        let mut v = &self.source;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        v.as_str()
    }
}

/// What a conditional update came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Updated {
    /// Written.
    Yes,
    /// Someone else wrote the document since we read it (409).
    Conflict,
    /// The document is gone (404).
    Missing,
}

/// The protocol's requests.
#[derive(Clone)]
pub struct Protocol {
    client: Elasticsearch,
}

impl Protocol {
    /// Talks to the cluster through `client` (the service-wide credentials).
    pub fn new(client: Elasticsearch) -> Self {
        Self { client }
    }

    /// A document by id, real-time.
    pub async fn get(&self, index: &str, id: &str) -> anyhow::Result<Option<Versioned>> {
        let response = self
            .client
            .get(GetParts::IndexId(index, id))
            .send()
            .await
            .map_err(|e| anyhow!("reading {index}/{id}: {e}"))?;
        if response.status_code() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = read_json(response, &format!("reading {index}/{id}")).await?;
        Versioned::from_hit(&body)
            .map(Some)
            .ok_or_else(|| anyhow!("reading {index}/{id}: unexpected answer {body}"))
    }

    /// Merges `doc` into a document; with `occ`, only if it is unchanged since it was read.
    pub async fn update(
        &self,
        index: &str,
        id: &str,
        doc: Value,
        occ: Option<(i64, i64)>,
    ) -> anyhow::Result<Updated> {
        let mut request = self.client.update(UpdateParts::IndexId(index, id));
        if let Some((seq_no, term)) = occ {
            request = request.if_seq_no(seq_no).if_primary_term(term);
        }
        let response = request
            .body(json!({"doc": doc}))
            .send()
            .await
            .map_err(|e| anyhow!("updating {index}/{id}: {e}"))?;
        match response.status_code() {
            StatusCode::CONFLICT => Ok(Updated::Conflict),
            StatusCode::NOT_FOUND => Ok(Updated::Missing),
            _ => {
                read_json(response, &format!("updating {index}/{id}")).await?;
                Ok(Updated::Yes)
            }
        }
    }

    /// Documents matching `query` with their sequence numbers (a missing index is empty).
    pub async fn search(
        &self,
        index: &str,
        query: Value,
        sort: Value,
    ) -> anyhow::Result<Vec<Versioned>> {
        let response = self
            .client
            .search(SearchParts::Index(&[index]))
            .body(json!({"query": query, "sort": sort, "size": 100, "seq_no_primary_term": true}))
            .send()
            .await
            .map_err(|e| anyhow!("searching {index}: {e}"))?;
        if response.status_code() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let body = read_json(response, &format!("searching {index}")).await?;
        Ok(body
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .map(|hits| hits.iter().filter_map(Versioned::from_hit).collect())
            .unwrap_or_default())
    }

    /// Pending (and suspended) jobs of `connectors`, oldest first — Elastic's `pending_jobs`.
    pub async fn pending_jobs(&self, connectors: &[String]) -> anyhow::Result<Vec<Versioned>> {
        self.search(
            JOBS_INDEX,
            json!({"bool": {"must": [
                {"terms": {"status": ["pending", "suspended"]}},
                {"terms": {"connector.id": connectors}},
                {"terms": {"job_type": ["full", "incremental", "access_control"]}},
            ]}}),
            json!([{"created_at": "asc"}]),
        )
        .await
    }

    /// Running (or canceling) jobs of `connectors` — candidates for the idle-job sweep.
    pub async fn active_jobs(&self, connectors: &[String]) -> anyhow::Result<Vec<Versioned>> {
        self.search(
            JOBS_INDEX,
            json!({"bool": {"filter": [
                {"terms": {"connector.id": connectors}},
                {"terms": {"status": ["in_progress", "canceling"]}},
            ]}}),
            json!([{"created_at": "asc"}]),
        )
        .await
    }

    /// Jobs of `connectors` not finished yet (pending, suspended, running, canceling): the
    /// scheduler creates no second job of a kind while one is open. A search may be a refresh
    /// behind, so each hit is read again in real time and kept only if it is still open.
    pub async fn open_jobs(&self, connectors: &[String]) -> anyhow::Result<Vec<Versioned>> {
        const OPEN: [&str; 4] = ["pending", "suspended", "in_progress", "canceling"];
        let hits = self
            .search(
                JOBS_INDEX,
                json!({"bool": {"filter": [
                    {"terms": {"connector.id": connectors}},
                    {"terms": {"status": OPEN}},
                ]}}),
                json!([{"created_at": "asc"}]),
            )
            .await?;
        let mut open = Vec::with_capacity(hits.len());
        for hit in hits {
            if let Some(now) = self.get(JOBS_INDEX, &hit.id).await?
                && now.str("status").is_some_and(|s| OPEN.contains(&s))
            {
                open.push(now);
            }
        }
        Ok(open)
    }

    /// Indexes `doc` under a generated id and returns the id. Waits for the refresh, so the
    /// next round's searches see it (the scheduler's one-open-job-per-kind rule relies on it).
    pub async fn create(&self, index: &str, doc: Value) -> anyhow::Result<String> {
        let response = self
            .client
            .index(IndexParts::Index(index))
            .refresh(elasticsearch::params::Refresh::WaitFor)
            .body(doc)
            .send()
            .await
            .map_err(|e| anyhow!("creating a document in {index}: {e}"))?;
        let body = read_json(response, &format!("creating a document in {index}")).await?;
        body.get("_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("creating a document in {index}: no `_id` in {body}"))
    }

    /// Documents in `index` (refreshed first, as Elastic's `document_count`).
    pub async fn count(&self, index: &str) -> anyhow::Result<u64> {
        let response = crate::sink::elasticsearch::raw(
            &self.client,
            Method::Get,
            &format!("/{index}/_count?ignore_unavailable=true"),
            None,
        )
        .await?;
        let body = read_json(response, &format!("counting {index}")).await?;
        Ok(body.get("count").and_then(Value::as_u64).unwrap_or(0))
    }
}

/// What a job asks for, in tributary's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// The connector.
    pub connector_id: String,
    /// Full, incremental or access control.
    pub kind: SyncKind,
    /// Service type (the plugin).
    pub service_type: Option<String>,
    /// The content index (for access-control jobs, the index their ACL index belongs to).
    pub index_name: String,
    /// `configuration.<key>.value`, blank values left out.
    pub config: Map<String, Value>,
    /// Active basic rules, in order.
    pub rules: Vec<RuleSpec>,
    /// Active advanced rules (`advanced_snippet.value`), when not empty.
    pub advanced_rules: Option<Value>,
}

/// The job type of a job document.
pub fn job_kind(job: &Value) -> anyhow::Result<SyncKind> {
    match job.get("job_type").and_then(Value::as_str) {
        Some("full") => Ok(SyncKind::Full),
        Some("incremental") => Ok(SyncKind::Incremental),
        Some("access_control") => Ok(SyncKind::AccessControl),
        other => bail!("unknown job type {other:?}"),
    }
}

/// The active filtering of a job (its own snapshot, else the connector's).
fn active_filtering<'a>(job: &'a Value, connector: &'a Value) -> Option<&'a Value> {
    let from_list = |v: &'a Value| -> Option<&'a Value> {
        let list = v.as_array()?;
        list.iter()
            .find(|f| f.get("domain").and_then(Value::as_str).unwrap_or("DEFAULT") == "DEFAULT")
            .and_then(|f| f.get("active"))
    };
    match job.pointer("/connector/filtering") {
        Some(v @ Value::Object(_)) => Some(v),
        Some(v @ Value::Array(_)) => from_list(v),
        _ => connector.get("filtering").and_then(from_list),
    }
}

/// Elastic's basic rules → tributary's.
pub fn basic_rules(filtering: &Value) -> anyhow::Result<Vec<RuleSpec>> {
    let Some(rules) = filtering.get("rules").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut ordered: Vec<(i64, RuleSpec)> = Vec::new();
    for rule in rules {
        if rule.get("id").and_then(Value::as_str) == Some("DEFAULT") {
            continue; // Elastic's catch-all "include everything" rule
        }
        let get = |k: &str| {
            rule.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("basic rule {rule} has no `{k}`"))
        };
        let condition = match get("rule")?.to_lowercase().as_str() {
            "equals" => Condition::Equals,
            "contains" => Condition::Contains,
            "starts_with" => Condition::StartsWith,
            "ends_with" => Condition::EndsWith,
            "regex" => Condition::Regex,
            ">" => Condition::Greater,
            "<" => Condition::Less,
            other => bail!("basic rule: unknown rule `{other}`"),
        };
        let policy = match get("policy")?.to_lowercase().as_str() {
            "include" => Policy::Include,
            "exclude" => Policy::Exclude,
            other => bail!("basic rule: unknown policy `{other}`"),
        };
        let value = match rule.get("value") {
            Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => v.clone(),
            _ => bail!("basic rule {rule} has no value"),
        };
        ordered.push((
            rule.get("order")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX),
            RuleSpec {
                field: get("field")?.to_string(),
                rule: condition,
                value,
                policy,
            },
        ));
    }
    ordered.sort_by_key(|(order, _)| *order);
    Ok(ordered.into_iter().map(|(_, r)| r).collect())
}

/// Reads a job (and its connector) into a [`JobPlan`].
pub fn plan(job: &Value, connector: &Value) -> anyhow::Result<JobPlan> {
    let kind = job_kind(job)?;
    let connector_id = job
        .pointer("/connector/id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the job names no connector"))?
        .to_string();
    let index_name = job
        .pointer("/connector/index_name")
        .and_then(Value::as_str)
        .or_else(|| connector.get("index_name").and_then(Value::as_str))
        .ok_or_else(|| anyhow!("the connector has no index_name"))?;
    // Elastic gives access-control jobs the ACL index; tributary derives it from the content
    // index itself.
    let index_name = index_name
        .strip_prefix(ACL_PREFIX)
        .unwrap_or(index_name)
        .to_string();
    let configuration = job
        .pointer("/connector/configuration")
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        .or_else(|| connector.get("configuration"));
    let mut config = Map::new();
    if let Some(Value::Object(fields)) = configuration {
        for (key, field) in fields {
            // `{key: {value, …}}`; a bare value is accepted too, as Elastic's
            // `DataSourceConfiguration` does.
            let value = match field {
                Value::Object(props) => props.get("value").cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            let blank = value.is_null() || value.as_str().is_some_and(|s| s.is_empty());
            if !blank {
                config.insert(key.clone(), value);
            }
        }
    }
    let filtering = active_filtering(job, connector);
    let rules = match filtering {
        Some(f) => basic_rules(f)?,
        None => Vec::new(),
    };
    let advanced_rules = filtering
        .and_then(|f| f.pointer("/advanced_snippet/value"))
        .filter(|v| match v {
            Value::Null => false,
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        })
        .cloned();
    Ok(JobPlan {
        connector_id,
        kind,
        service_type: job
            .pointer("/connector/service_type")
            .and_then(Value::as_str)
            .or_else(|| connector.get("service_type").and_then(Value::as_str))
            .map(str::to_string),
        index_name,
        config,
        rules,
        advanced_rules,
    })
}

/// Now as Elastic writes it (`datetime.now(timezone.utc).isoformat()`).
pub fn iso_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso(now.as_secs() as i64, now.subsec_micros())
}

/// `2024-05-01T10:00:00.123456+00:00` for Unix seconds and microseconds.
pub fn iso(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::clock::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Unix seconds of an ISO 8601 timestamp (`Z`, `±HH:MM` or no zone meaning UTC, as Elastic).
pub fn parse_iso(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 19 {
        return None;
    }
    let base = crate::connector::rules::timestamp_key(&format!("{}Z", s.get(..19)?))?;
    let rest = s.get(19..)?;
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone
                .get(1..)?
                .split_once(':')
                .unwrap_or((zone.get(1..3)?, zone.get(3..).unwrap_or("0")));
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().unwrap_or(0) * 60)
        }
    };
    Some(base - offset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(iso(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(iso(1_714_557_600, 42), "2024-05-01T10:00:00.000042+00:00");
        assert_eq!(
            parse_iso("2024-05-01T10:00:00.000042+00:00"),
            Some(1_714_557_600)
        );
        assert_eq!(parse_iso("2024-05-01T12:00:00+02:00"), Some(1_714_557_600));
        assert_eq!(parse_iso("2024-05-01T10:00:00Z"), Some(1_714_557_600));
        assert_eq!(parse_iso("2024-05-01T10:00:00"), Some(1_714_557_600));
    }

    #[test]
    fn plans_a_job_from_elastic_documents() {
        let job = json!({
            "job_type": "access_control",
            "connector": {
                "id": "c1", "service_type": "dropbox", "index_name": ".search-acl-filter-search-dropbox",
                "configuration": {
                    "path": {"label": "Path", "value": "/Reports", "type": "str"},
                    "retry_count": {"value": 3, "type": "int"},
                    "app_key": {"value": ""},
                },
                "filtering": {
                    "rules": [
                        {"id": "DEFAULT", "order": 0, "field": "_", "rule": "regex", "value": ".*", "policy": "include"},
                        {"id": "r2", "order": 2, "field": "size", "rule": ">", "value": "100", "policy": "exclude"},
                        {"id": "r1", "order": 1, "field": "name", "rule": "ends_with", "value": ".tmp", "policy": "exclude"},
                    ],
                    "advanced_snippet": {"value": [{"path": "/a"}]},
                    "validation": {"state": "valid", "errors": []},
                }
            }
        });
        let plan = plan(&job, &json!({})).unwrap();
        assert_eq!(plan.kind, SyncKind::AccessControl);
        assert_eq!(plan.index_name, "search-dropbox");
        assert_eq!(
            plan.config,
            json!({"path": "/Reports", "retry_count": 3})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(
            plan.rules
                .iter()
                .map(|r| r.field.as_str())
                .collect::<Vec<_>>(),
            ["name", "size"]
        );
        assert_eq!(plan.rules[1].rule, Condition::Greater);
        assert_eq!(plan.advanced_rules, Some(json!([{"path": "/a"}])));
        // The connector's list form, and an empty snippet.
        let connector = json!({"index_name": "ix", "service_type": "box", "filtering": [{"domain": "DEFAULT", "active": {"rules": [], "advanced_snippet": {"value": {}}}}]});
        let plan = super::plan(
            &json!({"job_type": "full", "connector": {"id": "c"}}),
            &connector,
        )
        .unwrap();
        assert_eq!(
            (
                plan.index_name.as_str(),
                plan.service_type.as_deref(),
                plan.advanced_rules
            ),
            ("ix", Some("box"), None)
        );
    }
}
