//! Checks of what a plugin hands the pipeline. Everything here is guest-controlled, so bounded:
//! ids are 1 to 512 bytes without control characters (the embedded index keys documents by
//! connector and id with a control character between them, and no source has such ids),
//! timestamps at most 256 bytes, fields a JSON object no larger than the operator's limit.

use serde_json::{Map, Value};

use crate::bindings::index::{Content, Document, IndexError};

/// Checks a document id from a plugin.
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 512 {
        return Err(format!("id must be 1 to 512 bytes, got {}", id.len()));
    }
    if id.chars().any(char::is_control) {
        return Err("id contains control characters".into());
    }
    Ok(())
}

/// Checks ids to delete.
pub(crate) fn check_ids(ids: &[String]) -> Result<(), IndexError> {
    for id in ids {
        if let Err(m) = check_id(id) {
            return Err(IndexError::InvalidDocument(format!(
                "invalid id to delete ({m}): {:?}",
                crate::text::truncate(id, 80)
            )));
        }
    }
    Ok(())
}

/// Parses and checks one document of a call (`position` names it in the error).
pub(crate) fn document(
    doc: &Document,
    position: usize,
    max_fields_bytes: usize,
) -> Result<Map<String, Value>, IndexError> {
    let bad = |m: String| {
        IndexError::InvalidDocument(format!(
            "document {position} ({:?}): {m}",
            crate::text::truncate(&doc.id, 80)
        ))
    };
    if let Err(m) = check_id(&doc.id) {
        return Err(bad(m));
    }
    if doc.timestamp.as_ref().is_some_and(|t| t.len() > 256) {
        return Err(bad("timestamp longer than 256 bytes".into()));
    }
    if doc.fields.len() > max_fields_bytes {
        return Err(bad(format!(
            "fields are {} bytes; the limit is {max_fields_bytes}",
            doc.fields.len(),
        )));
    }
    match serde_json::from_str::<Value>(&doc.fields) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad("fields must be a JSON object".into())),
        Err(e) => Err(bad(format!("fields are not valid JSON: {e}"))),
    }
}

/// Parses a whole call: a bad document rejects the call and nothing of it is used.
pub(crate) fn documents(
    docs: &[Document],
    max_fields_bytes: usize,
) -> Result<Vec<Map<String, Value>>, IndexError> {
    docs.iter()
        .enumerate()
        .map(|(i, doc)| document(doc, i, max_fields_bytes))
        .collect()
}

/// Bytes a guest document costs against the job's byte quota.
pub(crate) fn cost(doc: &Document) -> u64 {
    let text = match &doc.content {
        Some(Content::Text(t)) => t.len(),
        _ => 0,
    };
    (doc.id.len() + doc.timestamp.as_ref().map_or(0, String::len) + doc.fields.len() + text) as u64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::check_id;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// An accepted id is 1 to 512 bytes without control characters (so it can never
        /// contain the embedded index's connector/id separator); anything else is refused.
        #[test]
        fn ids_are_checked(id in prop_oneof![".{0,10}", "[a\\x00\\x1f\\n\\u{85}]{0,4}", "i{505,520}"]) {
            let ok = check_id(&id).is_ok();
            prop_assert_eq!(ok, !id.is_empty() && id.len() <= 512 && !id.chars().any(char::is_control));
            if ok {
                prop_assert!(!id.contains(char::from(0x1f_u8)), "separator in {:?}", id);
            }
        }
    }
}
