//! The API's wire types: every request body and every JSON answer is one of these, and the
//! OpenAPI document's schemas are derived from them (`utoipa::ToSchema`).
//!
//! Invariants:
//! - a handler answers with one of these types, never with ad-hoc JSON, so the document's
//!   response schemas are the shapes actually sent;
//! - times are RFC 3339 strings in UTC (`2026-05-01T10:00:00Z`); the database keeps Unix
//!   seconds and they are converted here, at the API boundary;
//! - enums (sync kinds, job statuses, error kinds) are the job vocabulary's own types, so the
//!   API, the CLI, the database and the document spell them alike (`access_control`);
//! - [`Schedule`](crate::connector::Schedule) and [`SyncRule`] describe connector types that
//!   live outside `serve`; a test below holds them to those types' serde shapes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::excerpt;
use crate::job::{CountsSnapshot, JobError, JobReport, JobStatus, SyncKind};
use crate::serve::TenantQuotas;

/// Unix seconds as a UTC time (the epoch for a value out of range, which the host never stores).
pub(super) fn utc(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// Every error: its status says what kind, `error` says what happened.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = Error, example = json!({"error": "not found"}))]
pub(super) struct ErrorBody {
    /// What went wrong, in words (at most 2000 characters).
    pub error: String,
}

// ---- service ----

/// Liveness and load.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok` (a failed check answers 503).
    pub status: HealthStatus,
    /// Plugin versions loaded.
    pub plugins: usize,
    /// Whether instances come from wasmtime's pooling allocator.
    pub pooling: bool,
    /// Jobs holding a slot and waiting for one, across tenants.
    pub jobs: Load,
}

/// The one healthy status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum HealthStatus {
    /// The state database answered.
    Ok,
}

/// Running and queued jobs.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Load {
    /// Jobs running now.
    pub running: usize,
    /// Jobs waiting for a slot.
    pub queued: usize,
}

/// Who a token belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WhoAmI {
    /// `admin` reaches every route; `tenant` only its own tenant's.
    pub role: Role,
    /// The tenant a tenant token belongs to; `null` for the admin token.
    #[schema(example = "acme")]
    pub tenant: Option<String>,
}

/// A token's role.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Role {
    /// The admin token.
    Admin,
    /// A tenant's token.
    Tenant,
}

// ---- plugins ----

/// Loaded plugin versions.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginList {
    /// Every loaded version, active or kept.
    pub plugins: Vec<Plugin>,
    /// Recently refused plugin files and uploads (admin only; absent for a tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Vec<RejectedPlugin>>,
}

/// A loaded plugin version.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Plugin {
    /// Plugin name.
    #[schema(example = "feed")]
    pub name: String,
    /// Its version.
    #[schema(example = "0.1.0")]
    pub version: String,
    /// Display name.
    pub display_name: String,
    /// What it connects to.
    pub description: String,
    /// `bundled`, a file path, or `upload`.
    pub source: String,
    /// A prefix of the component's SHA-256.
    pub digest: String,
    /// Whether new jobs use this version.
    pub active: bool,
}

impl From<crate::plugin::PluginInfo> for Plugin {
    fn from(p: crate::plugin::PluginInfo) -> Self {
        Self {
            name: p.name,
            version: p.version,
            display_name: p.display_name,
            description: p.description,
            source: p.source,
            digest: p.digest,
            active: p.active,
        }
    }
}

/// A plugin file or upload that was refused.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RejectedPlugin {
    /// Where it came from.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<crate::serve::Rejection> for RejectedPlugin {
    fn from(r: crate::serve::Rejection) -> Self {
        Self {
            source: r.source,
            reason: r.reason,
            at: utc(r.at),
        }
    }
}

/// One version of a plugin, after an upload, activation or rollback.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginVersion {
    /// Plugin name.
    #[schema(example = "feed")]
    pub name: String,
    /// Its version.
    #[schema(example = "0.2.0")]
    pub version: String,
    /// SHA-256 of the component, hex.
    pub digest: String,
    /// Whether new jobs use it now.
    pub active: bool,
}

/// Which version to make active.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ActivateBody {
    /// A version string or a digest prefix (8+ hex digits).
    #[schema(example = "0.2.0-next")]
    pub version: String,
}

/// A plugin's configuration schema, from which clients draw forms.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginSchema {
    /// Plugin name.
    pub name: String,
    /// Active version.
    pub version: String,
    /// Display name.
    pub display_name: String,
    /// What the plugin can do.
    pub features: PluginFeatures,
    /// Configuration fields, in the plugin's order.
    pub fields: Vec<SchemaField>,
}

/// What a plugin can do.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginFeatures {
    /// `incremental` syncs.
    pub incremental_sync: bool,
    /// `access_control` syncs.
    pub access_control_sync: bool,
    /// `advanced_rules` on connectors.
    pub advanced_rules: bool,
    /// Documents carry access-control lists.
    pub document_level_security: bool,
}

/// One configuration field.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SchemaField {
    /// Key in the connector's `config`.
    pub key: String,
    /// Label.
    pub label: String,
    /// Help text.
    pub tooltip: Option<String>,
    /// How to edit it.
    pub kind: FieldKind,
    /// Choices of a `select`.
    pub options: Vec<FieldOption>,
    /// The plugin's default, as JSON.
    pub default: Option<Value>,
    /// Whether it must be set.
    pub required: bool,
    /// A secret: write-only, never returned.
    pub sensitive: bool,
    /// Not shown by default (test overrides and the like).
    pub hidden: bool,
    /// Shown only when these other fields hold these values.
    pub depends_on: Vec<FieldDependency>,
    /// Inclusive lower bound of an integer.
    pub min: Option<i64>,
    /// Inclusive upper bound of an integer.
    pub max: Option<i64>,
}

/// How a field is edited.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines.
    Textarea,
    /// A whole number.
    Integer,
    /// A switch.
    Boolean,
    /// A list of strings.
    List,
    /// One of `options`.
    Select,
    /// Any JSON.
    Json,
}

/// A choice of a `select` field.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FieldOption {
    /// Stored value.
    pub value: String,
    /// Shown label.
    pub label: String,
}

/// A condition on another field.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FieldDependency {
    /// The other field's key.
    pub field: String,
    /// The value it must hold (JSON when it parses, else a string).
    pub value: Value,
}

// ---- tenants ----

/// Every tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TenantList {
    /// Tenants, by id.
    pub tenants: Vec<Tenant>,
}

/// A tenant as listed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Its own quota overrides.
    pub quotas: TenantQuotas,
    /// Whether an API token is set (the token itself is shown only when issued).
    pub has_token: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<crate::serve::store::Tenant> for Tenant {
    fn from(t: crate::serve::store::Tenant) -> Self {
        Self {
            id: t.id,
            quotas: t.quotas,
            has_token: t.has_token,
            created_at: utc(t.created_at),
        }
    }
}

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    /// 1-64 letters, digits, `-`, `_` or `.`.
    #[schema(example = "globex")]
    pub id: String,
    /// Overrides of the service's tenant defaults.
    #[serde(default)]
    pub quotas: TenantQuotas,
}

/// A created tenant, with its API token (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedTenant {
    /// Tenant id.
    pub id: String,
    /// Its API token: store it now, it is not shown again.
    pub token: String,
    /// Its quota overrides.
    pub quotas: TenantQuotas,
}

/// New quotas for a tenant (they replace the old ones).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantUpdate {
    /// The quota overrides; unset fields take the service's defaults.
    pub quotas: TenantQuotas,
}

/// A tenant's quotas after an update.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TenantQuotasSet {
    /// Tenant id.
    pub id: String,
    /// Its quota overrides now.
    pub quotas: TenantQuotas,
}

/// A tenant's new API token (the old one stopped working).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TenantToken {
    /// Tenant id.
    pub id: String,
    /// The new token, shown this once.
    pub token: String,
}

/// A tenant with its quotas and usage.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TenantDetail {
    /// Tenant id.
    pub id: String,
    /// Its own quota overrides.
    pub quotas: TenantQuotas,
    /// The quotas in force: the overrides over the service's defaults.
    pub effective_quotas: TenantQuotas,
    /// What it uses now.
    pub usage: TenantUsage,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// What a tenant uses.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TenantUsage {
    /// Connectors configured.
    pub connectors: usize,
    /// Plugin storage bytes across its connectors.
    pub storage_bytes: u64,
    /// Its jobs running now.
    pub jobs_running: usize,
    /// Its jobs waiting for a slot.
    pub jobs_queued: usize,
}

// ---- connectors ----

/// A tenant's connectors.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConnectorList {
    /// Connectors, by id.
    pub connectors: Vec<Connector>,
}

/// A connector as the API shows it: secrets are never returned, `secrets_set` names those set.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Connector {
    /// Connector id.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// The index its documents go to (the connector id unless set).
    pub index: String,
    /// The plugin's configuration, without its `sensitive` fields.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Keys of the `sensitive` fields that are set.
    pub secrets_set: Vec<String>,
    /// Sync rules, applied in order.
    #[schema(value_type = Vec<SyncRule>)]
    pub rules: Vec<crate::connector::rules::RuleSpec>,
    /// The plugin's own advanced rules, if any.
    pub advanced_rules: Option<Value>,
    /// When syncs run.
    #[schema(value_type = ScheduleSchema)]
    pub schedule: crate::connector::schedule::Schedule,
}

/// A connector as created or replaced (the tenant comes from the path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectorBody {
    /// Required to create; when replacing, it must equal the path's if given.
    #[serde(default)]
    pub id: Option<String>,
    /// Plugin name.
    pub plugin: String,
    /// Index name (default: the connector id).
    #[serde(default)]
    pub index: Option<String>,
    /// The plugin's configuration. When replacing, a `sensitive` field left out keeps its
    /// stored value and `null` clears it.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Sync rules, applied in order.
    #[serde(default)]
    #[schema(value_type = Vec<SyncRule>)]
    pub rules: Vec<crate::connector::rules::RuleSpec>,
    /// The plugin's own advanced rules (checked by the plugin).
    #[serde(default)]
    pub advanced_rules: Option<Value>,
    /// When syncs run; absent: only on request.
    #[serde(default)]
    #[schema(value_type = ScheduleSchema)]
    pub schedule: crate::connector::schedule::Schedule,
}

/// When a connector syncs, per kind: an interval (`*_minutes`, or `*_every` with a unit) or a
/// five-field cron expression in UTC (`*_cron`); a kind with none of them runs only on request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Schedule)]
pub(super) struct ScheduleSchema {
    /// Full syncs every so many minutes.
    #[schema(example = 1440)]
    pub full_minutes: Option<u64>,
    /// Incremental syncs every so many minutes (a full sync first if none succeeded yet).
    pub incremental_minutes: Option<u64>,
    /// Access-control syncs every so many minutes.
    pub access_control_minutes: Option<u64>,
    /// Full syncs, as a duration with a unit: `30s`, `15m`, `2h`, `1d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_every: Option<String>,
    /// Incremental syncs, as a duration with a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "15m")]
    pub incremental_every: Option<String>,
    /// Access-control syncs, as a duration with a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_every: Option<String>,
    /// Full syncs at the times of a cron expression, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "30 2 * * *")]
    pub full_cron: Option<String>,
    /// Incremental syncs on a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_cron: Option<String>,
    /// Access-control syncs on a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_cron: Option<String>,
}

/// A sync rule: the first rule whose condition holds decides; a document no rule matches is
/// included.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SyncRule {
    /// A top-level field of the document.
    #[schema(example = "title")]
    pub field: String,
    /// The condition.
    pub rule: RuleCondition,
    /// What the field is compared with: a string, or a number for `<` and `>`.
    #[schema(example = "Draft")]
    pub value: Value,
    /// What a match does.
    pub policy: RulePolicy,
}

/// A rule's condition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) enum RuleCondition {
    /// Equal to the value.
    #[serde(rename = "equals")]
    Equals,
    /// Contains the value.
    #[serde(rename = "contains")]
    Contains,
    /// Starts with the value.
    #[serde(rename = "starts_with")]
    StartsWith,
    /// Ends with the value.
    #[serde(rename = "ends_with")]
    EndsWith,
    /// The regular expression matches at the start.
    #[serde(rename = "regex")]
    Regex,
    /// Less than the value.
    #[serde(rename = "<")]
    Less,
    /// Greater than the value.
    #[serde(rename = ">")]
    Greater,
}

/// What a matching rule does.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum RulePolicy {
    /// Index the document.
    Include,
    /// Skip it.
    Exclude,
}

/// Which sync to queue.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SyncBody {
    /// Kind of sync (default `full`).
    #[serde(default)]
    pub kind: Option<SyncKind>,
}

/// A connector's plugin state: keys and sizes, never values.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConnectorState {
    /// Totals.
    pub usage: StateUsage,
    /// Keys (the first 1000), with their sizes.
    pub keys: Vec<StateKey>,
}

/// Plugin state totals.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StateUsage {
    /// Keys stored.
    pub keys: u64,
    /// Bytes stored.
    pub bytes: u64,
}

/// One stored key.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StateKey {
    /// The key.
    pub key: String,
    /// Its value's size.
    pub bytes: u64,
}

/// What forgetting plugin state removed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ClearedState {
    /// Keys removed.
    pub removed_keys: u64,
}

// ---- jobs ----

/// A sync job: queued, running (with live counts) or ended.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Job {
    /// Job id.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Connector.
    pub connector: String,
    /// Kind of sync.
    pub kind: SyncKind,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version it ran on (empty until it starts).
    pub plugin_version: String,
    /// Where it stands.
    pub status: JobStatus,
    /// Documents so far.
    pub counts: CountsSnapshot,
    /// Why it failed (its message an excerpt).
    pub error: Option<JobError>,
    /// Warnings the plugin logged (excerpts).
    pub warnings: Vec<String>,
    /// When it was queued or started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it ran, milliseconds.
    pub duration_ms: u64,
}

impl From<&JobReport> for Job {
    /// A job as a tenant is shown it: warnings and the error message bounded by [`excerpt`]
    /// (they may quote a remote's answer).
    fn from(r: &JobReport) -> Self {
        Self {
            id: r.id.clone(),
            tenant: r.tenant.clone(),
            connector: r.connector.clone(),
            kind: r.kind,
            plugin: r.plugin.clone(),
            plugin_version: r.plugin_version.clone(),
            status: r.status,
            counts: r.counts.clone(),
            error: r
                .error
                .as_ref()
                .map(|e| JobError::new(e.kind, excerpt(&e.message))),
            warnings: r.warnings.iter().map(|w| excerpt(w)).collect(),
            started_at: utc(r.started_at),
            finished_at: r.finished_at.map(utc),
            duration_ms: r.duration_ms,
        }
    }
}

/// A tenant's jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct JobList {
    /// The jobs.
    pub jobs: Vec<Job>,
}

/// Where a job stands after a cancel request.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Cancelled {
    /// Job id.
    pub id: String,
    /// `cancelled` if it was waiting; `running` while a running one stops at its next call;
    /// its final status if it had ended.
    pub status: JobStatus,
}

// ---- search ----

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SearchResults {
    /// Matching documents in all (whatever the cursor).
    pub total: usize,
    /// This page, in order.
    pub hits: Vec<SearchHit>,
    /// The cursor of the next page (`after=`); `null` on the last page.
    pub next: Option<String>,
    /// Counts per value of each facet asked for, most frequent first.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

impl From<crate::sink::SearchResults> for SearchResults {
    fn from(r: crate::sink::SearchResults) -> Self {
        Self {
            total: r.total,
            hits: r.hits.into_iter().map(SearchHit::from).collect(),
            next: r.next.map(|c| c.0),
            facets: r
                .facets
                .into_iter()
                .map(|(name, counts)| {
                    let counts = counts
                        .into_iter()
                        .map(|c| FacetCount {
                            value: c.value,
                            count: c.count,
                        })
                        .collect();
                    (name, counts)
                })
                .collect(),
        }
    }
}

/// One document found.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SearchHit {
    /// Document id.
    pub id: String,
    /// The connector that wrote it.
    pub connector: String,
    /// Relevance.
    pub score: f32,
    /// Its `title` or `name` field.
    pub title: Option<String>,
    /// A highlighted extract of the body (matches in `<b>`).
    pub snippet: Option<String>,
    /// Stored fields.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Extracted text (`body=true` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl From<crate::sink::SearchHit> for SearchHit {
    fn from(h: crate::sink::SearchHit) -> Self {
        Self {
            id: h.id,
            connector: h.connector,
            score: h.score,
            title: h.title,
            snippet: h.snippet,
            fields: h.fields,
            body: h.body,
        }
    }
}

/// How many matching documents hold one value of a facet field.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FacetCount {
    /// The value.
    pub value: String,
    /// Documents holding it.
    pub count: u64,
}

/// One line of an export.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ExportLine {
    /// Document id.
    pub id: String,
    /// The connector that wrote it.
    pub connector: String,
    /// Stored fields.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Extracted text (`body=true` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;
    use utoipa::PartialSchema;

    use super::*;
    use crate::connector::rules::RuleSpec;
    use crate::connector::schedule::Schedule as ScheduleSpec;

    fn properties<T: ToSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let mut keys: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_schedule_schema_is_the_schedule_type() {
        let every = Some("1h".to_string());
        let cron = Some("0 * * * *".to_string());
        let full = ScheduleSpec {
            full_minutes: Some(1),
            incremental_minutes: Some(2),
            access_control_minutes: Some(3),
            full_every: every.clone(),
            incremental_every: every.clone(),
            access_control_every: every,
            full_cron: cron.clone(),
            incremental_cron: cron.clone(),
            access_control_cron: cron,
        };
        let json = serde_json::to_value(&full).unwrap();
        assert_eq!(keys(&json), properties::<ScheduleSchema>());
        // Both read the same JSON, and both refuse unknown fields.
        let mirror: ScheduleSchema = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(mirror).unwrap(), json);
        let unknown = json!({"hourly": true});
        assert!(serde_json::from_value::<ScheduleSpec>(unknown.clone()).is_err());
        assert!(serde_json::from_value::<ScheduleSchema>(unknown).is_err());
        assert_eq!(
            serde_json::to_value(ScheduleSpec::default()).unwrap(),
            serde_json::to_value(serde_json::from_value::<ScheduleSchema>(json!({})).unwrap())
                .unwrap()
        );
    }

    #[test]
    fn the_rule_schema_is_the_rule_type() {
        let schema = serde_json::to_value(RuleCondition::schema()).unwrap();
        let conditions = schema["enum"].as_array().unwrap();
        assert_eq!(conditions.len(), 7, "{schema}");
        let policies = serde_json::to_value(RulePolicy::schema()).unwrap()["enum"].clone();
        assert_eq!(policies, json!(["include", "exclude"]));
        for condition in conditions {
            for policy in policies.as_array().unwrap() {
                let rule =
                    json!({"field": "title", "rule": condition, "value": "x", "policy": policy});
                let spec: RuleSpec = serde_json::from_value(rule.clone()).unwrap();
                assert_eq!(serde_json::to_value(&spec).unwrap(), rule);
                let mirror: SyncRule = serde_json::from_value(rule.clone()).unwrap();
                assert_eq!(serde_json::to_value(mirror).unwrap(), rule);
            }
        }
        let spec = RuleSpec {
            field: "f".into(),
            rule: crate::connector::rules::Condition::Less,
            value: json!(3),
            policy: crate::connector::rules::Policy::Exclude,
        };
        assert_eq!(
            keys(&serde_json::to_value(spec).unwrap()),
            properties::<SyncRule>()
        );
    }

    #[test]
    fn times_are_rfc3339_in_utc() {
        let job = JobReport {
            id: "j".into(),
            tenant: "t".into(),
            connector: "c".into(),
            kind: SyncKind::AccessControl,
            plugin: "feed".into(),
            plugin_version: "1".into(),
            status: JobStatus::Succeeded,
            counts: Default::default(),
            error: None,
            warnings: vec![],
            started_at: 1_777_629_600,
            finished_at: Some(1_777_629_661),
            duration_ms: 61_000,
        };
        let shown = serde_json::to_value(Job::from(&job)).unwrap();
        assert_eq!(shown["started_at"], "2026-05-01T10:00:00Z");
        assert_eq!(shown["finished_at"], "2026-05-01T10:01:01Z");
        assert_eq!(shown["kind"], "access_control");
        let kinds = serde_json::to_value(SyncKind::schema()).unwrap();
        assert_eq!(
            kinds["enum"],
            json!(SyncKind::ALL.map(|k| k.as_str())),
            "{kinds}"
        );
    }
}
