//! One Box entry → one document: Box's own fields (as Elastic indexes them) plus `path`,
//! `_timestamp` = `modified_at`, `_allow_access_control` with document-level security, and a
//! host-side download of the content for files worth extracting.
//!
//! The document's version (what the host compares to skip unchanged documents, downloads
//! included) is `modified_at` plus a digest of every indexed field, so a change that does not
//! touch `modified_at` — a parent folder renamed or moved, a collaborator added above — still
//! re-indexes the document, and nothing else does. Folder minis nested in `parent` and
//! `path_collection` are reduced to `type`, `id` and `name`: their `etag`/`sequence_id` move with
//! every change to the folder itself and would otherwise ripple to every descendant.

use serde_json::{Map, Value};
use tributary_sdk::docs::Document;

use crate::api::{Item, Kind};
use crate::settings::Settings;

/// Extensions Elastic's Box connector extracts.
const ELASTIC_EXTENSIONS: &[&str] = &[
    "txt", "py", "rst", "html", "markdown", "json", "xml", "csv", "md", "ppt", "rtf", "docx",
    "odt", "xls", "xlsx", "rb", "sh", "pptx", "pdf", "doc", "aspx", "xlsb", "xlsm", "tsv", "svg",
    "msg", "potx", "vsd", "vsdx", "vsdm",
];

/// More text-bearing formats tributary's own extractor reads.
const MORE_EXTENSIONS: &[&str] = &[
    "htm", "xhtml", "eml", "ods", "odp", "docm", "pptm", "ppsx", "xltx", "log", "yaml", "yml",
    "toml", "ini", "tex", "js", "ts", "java", "c", "h", "cpp", "cs", "go", "rs", "sql", "ics",
    "vcf", "mdx",
];

/// The lower-cased extension of a file name.
pub fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.')
        .map(|(stem, ext)| (stem, ext.to_ascii_lowercase()))
        .filter(|(stem, ext)| !stem.is_empty() && !ext.is_empty())
        .map(|(_, ext)| ext)
}

/// Whether a file's content should be downloaded and extracted: a non-empty file within the
/// size limit with a supported extension.
pub fn wants_content(item: &Item, settings: &Settings) -> bool {
    if item.kind != Kind::File {
        return false;
    }
    let size_ok = item
        .size()
        .is_some_and(|s| s > 0 && s <= settings.content_limit());
    let Some(ext) = extension(item.name()) else {
        return false;
    };
    let known =
        ELASTIC_EXTENSIONS.contains(&ext.as_str()) || MORE_EXTENSIONS.contains(&ext.as_str());
    size_ok && known
}

/// `/A/B/name` as the viewer sees it.
pub fn path(item: &Item) -> String {
    let mut path = String::new();
    for (_, name) in item.ancestors() {
        path.push('/');
        path.push_str(&name);
    }
    path.push('/');
    path.push_str(item.name());
    path
}

/// A folder mini reduced to what identifies it.
fn slim(mini: &Value) -> Value {
    match mini {
        Value::Object(map) => Value::Object(
            ["type", "id", "name"]
                .iter()
                .filter_map(|k| map.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The document of `item` (no content yet) and its version.
pub fn build(item: &Item, acl: Option<&[String]>) -> (Document, String) {
    let mut fields: Map<String, Value> = item.fields.clone();
    if let Some(parent) = fields.get_mut("parent") {
        *parent = slim(parent);
    }
    if let Some(Value::Array(entries)) = fields
        .get_mut("path_collection")
        .and_then(|p| p.get_mut("entries"))
    {
        for entry in entries.iter_mut() {
            *entry = slim(entry);
        }
    }
    fields.insert("path".into(), Value::String(path(item)));
    if let Some(acl) = acl {
        fields.insert(
            "_allow_access_control".into(),
            Value::Array(acl.iter().cloned().map(Value::String).collect()),
        );
    }
    let modified_at = item.modified_at().map(str::to_string);
    // serde_json's map is ordered by key, so the serialisation (and the digest) is stable.
    let digest = fnv64(Value::Object(fields.clone()).to_string().as_bytes());
    let version = format!("{}#{digest:016x}", modified_at.as_deref().unwrap_or(""));
    let mut doc = Document::new(item.id.clone())
        .timestamp(version.clone())
        .fields_from(fields);
    if let Some(modified_at) = modified_at {
        doc = doc.field("_timestamp", modified_at);
    }
    (doc, version)
}

/// FNV-1a: a small, stable digest for versions and structure keys.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What a folder's descendants inherit into their own documents: the path above them (ids and
/// names) and the owner. When it changes, the descendants must be indexed again.
pub fn structure_key(item: &Item) -> String {
    let mut text = String::new();
    for (id, name) in item.ancestors() {
        text.push_str(&id);
        text.push('\u{1f}');
        text.push_str(&name);
        text.push('\u{1e}');
    }
    text.push_str(item.name());
    text.push('\u{1e}');
    text.push_str(&item.owner().map(|o| o.id).unwrap_or_default());
    format!("{:016x}", fnv64(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> Item {
        Item::from_value(value, "test").unwrap()
    }

    #[test]
    fn versions_follow_every_indexed_field_but_not_folder_etags() {
        let base = json!({
            "type": "file", "id": "7", "name": "a.txt", "size": 3,
            "modified_at": "2024-01-01T00:00:00-08:00",
            "parent": {"type": "folder", "id": "5", "etag": "1", "sequence_id": "1", "name": "F"},
            "path_collection": {"total_count": 2, "entries": [
                {"type": "folder", "id": "0", "etag": null, "sequence_id": null, "name": "All Files"},
                {"type": "folder", "id": "5", "etag": "1", "sequence_id": "1", "name": "F"}]}
        });
        let (_, v1) = build(&item(base.clone()), None);
        let mut bumped = base.clone();
        bumped["parent"]["etag"] = json!("2");
        bumped["path_collection"]["entries"][1]["sequence_id"] = json!("2");
        assert_eq!(
            build(&item(bumped), None).1,
            v1,
            "folder etags do not ripple"
        );
        let mut renamed = base.clone();
        renamed["path_collection"]["entries"][1]["name"] = json!("G");
        assert_ne!(
            build(&item(renamed), None).1,
            v1,
            "a renamed ancestor re-indexes"
        );
        let acl = vec!["user_id:1".to_string()];
        assert_ne!(build(&item(base.clone()), Some(&acl)).1, v1);
        assert!(v1.starts_with("2024-01-01T00:00:00-08:00#"));
        assert_eq!(path(&item(base)), "/F/a.txt");
    }

    #[test]
    fn legacy_formats_are_fetched_and_the_service_lifts_the_size_cap() {
        let settings = |extra: Value| {
            let mut config = json!({"refresh_token": "r", "client_id": "a", "client_secret": "b", "max_content_size_mb": 1});
            if let (Some(c), Value::Object(extra)) = (config.as_object_mut(), extra) {
                c.extend(extra);
            }
            Settings::parse(&config.to_string()).unwrap()
        };
        let file = |name: &str, size: u64| {
            item(
                json!({"type": "file", "id": "7", "name": name, "size": size,
                "modified_at": "2024-01-01T00:00:00Z"}),
            )
        };
        let local = settings(json!({}));
        // The host extracts legacy Office, Outlook and Visio files itself (issue 14 item 9).
        for name in [
            "memo.doc",
            "deck.ppt",
            "mail.msg",
            "chart.vsd",
            "chart.vsdm",
        ] {
            assert!(wants_content(&file(name, 10), &local), "{name}");
        }
        assert!(!wants_content(&file("big.pdf", 2 * 1024 * 1024), &local));
        // With the extraction service the plugin's cap is lifted, as Elastic does.
        let service = settings(json!({"use_text_extraction_service": true}));
        assert!(wants_content(&file("big.pdf", 2 * 1024 * 1024), &service));
        assert!(!wants_content(&file("empty.pdf", 0), &service));
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("Report.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("noext"), None);
    }
}
