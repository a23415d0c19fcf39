//! Durable key/value state private to one connector of one tenant (what plugins see as
//! `storage`, and what checkpoints write).
//!
//! Invariants: the namespace (tenant, connector) is fixed by the host when the state is opened
//! and is a separate column of the primary key, so no key a plugin crafts can reach another
//! namespace; sizes are bounded per value, per key and per namespace, and a batch of writes
//! lands whole or not at all.

use rusqlite::OptionalExtension;
use serde::Deserialize;

use crate::bindings::storage::StorageError;
use crate::db::Db;

/// Operator limits for plugin storage.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageLimits {
    /// Longest key in bytes.
    pub max_key_bytes: usize,
    /// Largest value in bytes.
    pub max_value_bytes: usize,
    /// Most keys per connector.
    pub max_keys: u64,
    /// Most bytes (keys + values) per connector.
    pub max_total_bytes: u64,
}

impl Default for StorageLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 512,
            max_value_bytes: 1024 * 1024,
            // Room for per-entry state of large sources (e.g. a path → id map of 10^5+ files).
            // The Dropbox plugin keeps one entry per file and folder, so an account of more
            // than about a million entries needs the operator to raise this (`[storage]`).
            max_keys: 1_000_000,
            max_total_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Most keys in one page of [`ConnectorState::list_keys_after`].
pub const MAX_PAGE_KEYS: u32 = 10_000;

/// Which connector's state a context reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// Tenant id.
    pub tenant: String,
    /// Connector id within the tenant.
    pub connector: String,
}

/// Key/value state of one namespace, usable from the host too (tests, admin).
#[derive(Clone, Debug)]
pub struct ConnectorState {
    db: Db,
    ns: Namespace,
    limits: StorageLimits,
}

/// A write: `Some(value)` sets, `None` deletes.
pub type Write = (String, Option<Vec<u8>>);

impl ConnectorState {
    /// State of `ns` in `db`.
    pub fn new(db: Db, ns: Namespace, limits: StorageLimits) -> Self {
        Self { db, ns, limits }
    }

    fn check_key(&self, key: &str) -> Result<(), StorageError> {
        if key.is_empty() {
            return Err(StorageError::InvalidKey("keys may not be empty".into()));
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(StorageError::InvalidKey(format!(
                "key of {} bytes is longer than {} bytes",
                key.len(),
                self.limits.max_key_bytes
            )));
        }
        if key.contains('\0') {
            return Err(StorageError::InvalidKey("keys may not contain NUL".into()));
        }
        Ok(())
    }

    /// Reads a value.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, StorageError> {
        self.check_key(&key)?;
        let ns = self.ns.clone();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT value FROM kv WHERE tenant = ?1 AND connector = ?2 AND key = ?3",
                )?;
                let mut rows = stmt.query((&ns.tenant, &ns.connector, &key))?;
                Ok(match rows.next()? {
                    Some(row) => Some(row.get::<_, Vec<u8>>(0)?),
                    None => None,
                })
            })
            .await
            .map_err(unavailable)
    }

    /// Keys starting with `prefix`, sorted.
    pub async fn list_keys(&self, prefix: String) -> Result<Vec<String>, StorageError> {
        self.keys(prefix, None, None).await
    }

    /// At most `limit` (lowered to [`MAX_PAGE_KEYS`]) keys starting with `prefix` that sort
    /// after `after` (from the first when `None`), sorted: one page of a large prefix.
    pub async fn list_keys_after(
        &self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        self.keys(prefix, after, Some(limit.min(MAX_PAGE_KEYS)))
            .await
    }

    /// Keys starting with `prefix`, after `after`, at most `limit` of them (all when `None`).
    async fn keys(
        &self,
        prefix: String,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, StorageError> {
        let ns = self.ns.clone();
        // A range on the primary key (not a scan of every key): [prefix, successor(prefix)).
        let upper = prefix_successor(&prefix);
        // SQLite reads a negative LIMIT as none.
        let limit = limit.map_or(-1, i64::from);
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT key FROM kv WHERE tenant = ?1 AND connector = ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4) AND (?5 IS NULL OR key > ?5) ORDER BY key LIMIT ?6",
                )?;
                let keys = stmt
                    .query_map(
                        (&ns.tenant, &ns.connector, &prefix, &upper, &after, limit),
                        |r| r.get::<_, String>(0),
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(keys)
            })
            .await
            .map_err(unavailable)
    }

    /// Applies writes and deletes atomically, within the namespace's quotas.
    pub async fn apply(&self, writes: Vec<Write>) -> Result<(), StorageError> {
        for (key, value) in &writes {
            self.check_key(key)?;
            if let Some(value) = value
                && value.len() > self.limits.max_value_bytes
            {
                return Err(StorageError::TooLarge(format!(
                    "value for `{}` is {} bytes; the limit is {}",
                    crate::text::truncate(key, 80),
                    value.len(),
                    self.limits.max_value_bytes
                )));
            }
        }
        let ns = self.ns.clone();
        let limits = self.limits.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let now = crate::clock::unix_now();
                let (mut keys, mut bytes) = usage(&tx, &ns)?;
                for (key, value) in &writes {
                    let old: Option<i64> = tx
                        .prepare_cached(
                            "SELECT length(CAST(key AS BLOB)) + length(value) FROM kv WHERE tenant = ?1 AND connector = ?2 AND key = ?3",
                        )?
                        .query_row((&ns.tenant, &ns.connector, key), |r| r.get(0))
                        .optional()?;
                    if let Some(old) = old {
                        keys -= 1;
                        bytes -= old;
                    }
                    match value {
                        Some(value) => {
                            tx.prepare_cached(
                                "INSERT INTO kv (tenant, connector, key, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                                 ON CONFLICT (tenant, connector, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                            )?
                            .execute((&ns.tenant, &ns.connector, key, value, now))?;
                            keys += 1;
                            bytes += (key.len() + value.len()) as i64;
                        }
                        None => {
                            tx.prepare_cached("DELETE FROM kv WHERE tenant = ?1 AND connector = ?2 AND key = ?3")?
                                .execute((&ns.tenant, &ns.connector, key))?;
                        }
                    }
                }
                if keys as u64 > limits.max_keys || bytes as u64 > limits.max_total_bytes {
                    // Dropping the transaction rolls every write back.
                    return Ok(Err(StorageError::QuotaExceeded(format!(
                        "connector state would hold {keys} keys / {bytes} bytes; the limits are {} keys / {} bytes",
                        limits.max_keys, limits.max_total_bytes
                    ))));
                }
                tx.execute(
                    "INSERT INTO kv_usage (tenant, connector, keys, bytes) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, connector) DO UPDATE SET keys = excluded.keys, bytes = excluded.bytes",
                    (&ns.tenant, &ns.connector, keys, bytes),
                )?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
            .map_err(unavailable)?
    }
}

/// The namespace's running totals, computed once from its keys when no total is recorded yet.
fn usage(tx: &rusqlite::Transaction<'_>, ns: &Namespace) -> rusqlite::Result<(i64, i64)> {
    let recorded = tx
        .query_row(
            "SELECT keys, bytes FROM kv_usage WHERE tenant = ?1 AND connector = ?2",
            (&ns.tenant, &ns.connector),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match recorded {
        Some(totals) => Ok(totals),
        None => tx.query_row(
            "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + length(value)), 0) FROM kv WHERE tenant = ?1 AND connector = ?2",
            (&ns.tenant, &ns.connector),
            |r| Ok((r.get(0)?, r.get(1)?)),
        ),
    }
}

/// The smallest string greater than every string starting with `prefix` (UTF-8 orders like code
/// points, as SQLite's binary collation compares), or `None` when no bound exists.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn unavailable(err: anyhow::Error) -> StorageError {
    tracing::error!("plugin storage failed: {err:#}");
    StorageError::Unavailable(format!("{err:#}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ctx(db: &Db, tenant: &str, connector: &str, limits: StorageLimits) -> ConnectorState {
        ConnectorState::new(
            db.clone(),
            Namespace {
                tenant: tenant.into(),
                connector: connector.into(),
            },
            limits,
        )
    }

    #[tokio::test]
    async fn namespaces_are_isolated() {
        let db = Db::in_memory().unwrap();
        let a = ctx(&db, "t1", "c", StorageLimits::default());
        let b = ctx(&db, "t2", "c", StorageLimits::default());
        a.apply(vec![("cursor".into(), Some(b"A".to_vec()))])
            .await
            .unwrap();
        b.apply(vec![("cursor".into(), Some(b"B".to_vec()))])
            .await
            .unwrap();
        assert_eq!(a.get("cursor".into()).await.unwrap(), Some(b"A".to_vec()));
        assert_eq!(b.get("cursor".into()).await.unwrap(), Some(b"B".to_vec()));
        // Keys that look like paths into other namespaces are just keys.
        a.apply(vec![("../t2/c/cursor".into(), Some(b"x".to_vec()))])
            .await
            .unwrap();
        assert_eq!(b.get("cursor".into()).await.unwrap(), Some(b"B".to_vec()));
        assert_eq!(
            a.list_keys("".into()).await.unwrap(),
            vec!["../t2/c/cursor", "cursor"]
        );
        assert_eq!(a.list_keys("cur".into()).await.unwrap(), vec!["cursor"]);
    }

    #[test]
    fn prefix_successors_bound_ranges() {
        assert_eq!(prefix_successor("p:/a"), Some("p:/b".into()));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(
            prefix_successor("\u{D7FF}"),
            Some("\u{E000}".into()),
            "surrogates are skipped"
        );
    }

    #[tokio::test]
    async fn prefix_listing_is_exact() {
        let db = Db::in_memory().unwrap();
        let s = ctx(&db, "t", "c", StorageLimits::default());
        let keys = ["p:/a", "p:/a/b", "p:/a\u{10FFFF}x", "p:/ab", "p:/b", "q"];
        s.apply(
            keys.iter()
                .map(|k| (k.to_string(), Some(vec![1])))
                .collect(),
        )
        .await
        .unwrap();
        assert_eq!(
            s.list_keys("p:/a".into()).await.unwrap(),
            vec!["p:/a", "p:/a/b", "p:/ab", "p:/a\u{10FFFF}x"]
        );
        assert_eq!(s.list_keys("p:/a/".into()).await.unwrap(), vec!["p:/a/b"]);
        assert_eq!(s.list_keys("".into()).await.unwrap().len(), 6);
    }

    #[tokio::test]
    async fn pages_of_a_prefix_add_up_to_the_whole_listing() {
        let db = Db::in_memory().unwrap();
        let s = ctx(&db, "t", "c", StorageLimits::default());
        let other = ctx(&db, "t", "other", StorageLimits::default());
        let mut keys: Vec<String> = (0..25).map(|i| format!("p:/{i:03}")).collect();
        keys.extend([
            "p:/a\u{10FFFF}x".into(),
            "p:".into(),
            "q".into(),
            "o".into(),
        ]);
        s.apply(keys.iter().map(|k| (k.clone(), Some(vec![1]))).collect())
            .await
            .unwrap();
        other
            .apply(vec![("p:/000a".into(), Some(vec![1]))])
            .await
            .unwrap();
        let whole = s.list_keys("p:".into()).await.unwrap();
        assert_eq!(whole.len(), 27);
        for size in [1, 2, 7, 27, 100] {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = s
                    .list_keys_after("p:".into(), after.clone(), size)
                    .await
                    .unwrap();
                assert!(page.len() <= size as usize);
                let last = page.len() < size as usize;
                after = page.last().cloned();
                paged.extend(page);
                if last {
                    break;
                }
            }
            assert_eq!(paged, whole, "pages of {size}");
        }
        // A start after every key of the prefix, and a start before the prefix.
        let end = s
            .list_keys_after("p:".into(), Some("p:\u{10FFFF}".into()), 10)
            .await
            .unwrap();
        assert!(end.is_empty(), "{end:?}");
        let from_before = s
            .list_keys_after("p:".into(), Some("a".into()), 3)
            .await
            .unwrap();
        assert_eq!(from_before, whole[..3]);
        // A page is never larger than the host's bound, whatever the plugin asks.
        let many: Vec<(String, Option<Vec<u8>>)> = (0..MAX_PAGE_KEYS + 5)
            .map(|i| (format!("m/{i:06}"), Some(Vec::new())))
            .collect();
        s.apply(many).await.unwrap();
        let page = s
            .list_keys_after("m/".into(), None, u32::MAX)
            .await
            .unwrap();
        assert_eq!(page.len(), MAX_PAGE_KEYS as usize);
    }

    #[tokio::test]
    async fn quota_totals_follow_overwrites_and_deletes() {
        let db = Db::in_memory().unwrap();
        let limits = StorageLimits {
            max_total_bytes: 20,
            ..StorageLimits::default()
        };
        let s = ctx(&db, "t", "c", limits);
        // "k" + 9 bytes = 10 bytes; overwriting it many times must not accumulate.
        for _ in 0..5 {
            s.apply(vec![("k".into(), Some(vec![0; 9]))]).await.unwrap();
        }
        s.apply(vec![("j".into(), Some(vec![0; 9]))]).await.unwrap();
        assert!(matches!(
            s.apply(vec![("i".into(), Some(vec![0; 1]))]).await,
            Err(StorageError::QuotaExceeded(_))
        ));
        s.apply(vec![("k".into(), None)]).await.unwrap();
        s.apply(vec![("i".into(), Some(vec![0; 9]))]).await.unwrap();
    }

    #[tokio::test]
    async fn writes_are_atomic_and_bounded() {
        let db = Db::in_memory().unwrap();
        let limits = StorageLimits {
            max_keys: 2,
            max_value_bytes: 8,
            ..StorageLimits::default()
        };
        let s = ctx(&db, "t", "c", limits);
        s.apply(vec![
            ("a".into(), Some(b"1".to_vec())),
            ("b".into(), Some(b"2".to_vec())),
        ])
        .await
        .unwrap();
        // Three keys break the quota: nothing of the batch is applied.
        let err = s
            .apply(vec![
                ("a".into(), None),
                ("c".into(), Some(b"3".to_vec())),
                ("d".into(), Some(b"4".to_vec())),
            ])
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::QuotaExceeded(_)), "{err:?}");
        assert_eq!(s.get("a".into()).await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get("c".into()).await.unwrap(), None);
        let err = s
            .apply(vec![("a".into(), Some(vec![0; 9]))])
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::TooLarge(_)));
        assert!(matches!(
            s.get(String::new()).await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            s.get("k".repeat(600)).await,
            Err(StorageError::InvalidKey(_))
        ));
    }

    /// Property tests: keys and prefixes come from plugins.
    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// The listing range [prefix, successor) holds exactly the keys with that prefix.
            #[test]
            fn prefix_ranges_are_exact(
                prefix in prop_oneof![".{0,4}", "[a\u{10FFFF}\u{D7FF}\u{E000}]{0,4}"],
                key in prop_oneof![".{0,6}", "[a\u{10FFFF}\u{D7FF}\u{E000}b]{0,6}"],
            ) {
                let upper = prefix_successor(&prefix);
                let in_range = key.as_str() >= prefix.as_str()
                    && upper.as_deref().is_none_or(|u| key.as_str() < u);
                prop_assert_eq!(in_range, key.starts_with(&prefix), "{:?} {:?} {:?}", prefix, key, upper);
            }

            /// Any key is either refused with a reason or is 1..=max bytes without NUL.
            #[test]
            fn keys_are_checked(key in prop_oneof![".{0,8}", "[a\\x00]{0,4}", "k{500,520}"]) {
                let ctx = ConnectorState::new(
                    Db::in_memory().unwrap(),
                    Namespace { tenant: "t".into(), connector: "c".into() },
                    StorageLimits::default(),
                );
                let ok = ctx.check_key(&key).is_ok();
                prop_assert_eq!(ok, !key.is_empty() && key.len() <= 512 && !key.contains('\0'));
            }
        }
    }
}
