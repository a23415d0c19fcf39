//! Index names: one place maps a tenant's index to an Elasticsearch index (the pattern),
//! and every rendered name is checked against Elasticsearch's rules before anything is sent.

use anyhow::{anyhow, bail};

use super::*;

/// How a tenant's index name becomes an Elasticsearch index name (`[elasticsearch]
/// index_pattern`), applied in this one place for every request the sink sends.
///
/// The pattern holds `{index}` once and `{tenant}` once (`{tenant}` may be left out only with
/// `single_tenant = true`); nothing else in braces. A rendered name must be one Elasticsearch
/// accepts — lowercase, none of `\ / * ? " < > | , # :` or spaces, not starting with `-`, `_`
/// or `+`, not `.`/`..`, at most 255 bytes — or the request fails naming the tenant, the index
/// and the reason before anything is sent. The access-control index of an index is
/// `.search-acl-filter-` + its rendered name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPattern {
    pattern: String,
}

impl IndexPattern {
    /// Checks `pattern` (see the type's documentation).
    pub fn parse(pattern: &str, single_tenant: bool) -> anyhow::Result<Self> {
        let count = |p: &str| pattern.matches(p).count();
        let why = if count("{index}") != 1 {
            Some("must contain `{index}` exactly once")
        } else if count("{tenant}") > 1 {
            Some("may contain `{tenant}` only once")
        } else if count("{tenant}") == 0 && !single_tenant {
            Some(
                "must contain `{tenant}` so tenants never share an index (set `single_tenant = true` to allow one tenant only)",
            )
        } else if pattern
            .replace("{index}", "")
            .replace("{tenant}", "")
            .contains(['{', '}'])
        {
            Some("knows only the placeholders `{tenant}` and `{index}`")
        } else {
            None
        };
        if let Some(why) = why {
            bail!("elasticsearch `index_pattern` `{pattern}` {why}");
        }
        let this = Self {
            pattern: pattern.to_string(),
        };
        // The fixed parts must be valid too (`Tributary-…`, `_x{index}`): say so now.
        let sample = this.render("t", "i");
        if let Err(why) = check_index_name(&sample) {
            bail!("elasticsearch `index_pattern` `{pattern}` makes invalid index names: {why}");
        }
        Ok(this)
    }

    /// Whether names carry the tenant (so an index of another tenant is a collision).
    pub(super) fn has_tenant(&self) -> bool {
        self.pattern.contains("{tenant}")
    }

    fn render(&self, tenant: &str, index: &str) -> String {
        // One pass, so a name containing `{index}` is never substituted again.
        let mut out = String::new();
        let mut rest = self.pattern.as_str();
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("{index}") {
                out.push_str(index);
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{tenant}") {
                out.push_str(tenant);
                rest = after;
            } else {
                out.push('{');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }

    /// The Elasticsearch wildcard expression matching every index of `tenant`, and the
    /// fixed text around `{index}` in its names (to read a name back).
    pub(super) fn of_tenant(&self, tenant: &str) -> (String, String, String) {
        let marker = "\u{0}";
        let rendered = self.render(tenant, marker);
        let (before, after) = rendered.split_once(marker).unwrap_or((&rendered, ""));
        (
            format!("{before}*{after}"),
            before.to_string(),
            after.to_string(),
        )
    }

    /// The Elasticsearch index holding `index`, or why there can be none.
    pub fn resolve(&self, index: &IndexRef) -> anyhow::Result<String> {
        let name = match index.name.strip_prefix(ACL_PREFIX) {
            Some(content) => format!("{ACL_PREFIX}{}", self.render(&index.tenant, content)),
            None => self.render(&index.tenant, &index.name),
        };
        check_index_name(&name).map_err(|why| {
            anyhow!(
                "index `{}` of tenant `{}` would be the Elasticsearch index `{name}`, which Elasticsearch refuses: {why}",
                index.name,
                index.tenant
            )
        })?;
        Ok(name)
    }
}

/// Elasticsearch's rules for index names.
pub(super) fn check_index_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name == "." || name == ".." {
        return Err("it must not be `.` or `..`".into());
    }
    if name.len() > 255 {
        return Err(format!("it is {} bytes long, more than 255", name.len()));
    }
    if name.starts_with(['-', '_', '+']) {
        return Err("it must not start with `-`, `_` or `+`".into());
    }
    if name.chars().any(char::is_uppercase) {
        return Err("it must be lowercase".into());
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' | ' '
        )
    }) {
        return Err(format!("it must not contain `{c}`"));
    }
    Ok(())
}
