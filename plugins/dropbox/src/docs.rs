//! Dropbox entries as documents, with Elastic's field names, and the content plan of each file.
//!
//! Fields: `id`, `type` ("File" | "Folder"), `name`, `file_path` (path_display), `size` (0 for
//! folders), `_timestamp` (files: server_modified; Paper: client_modified; shared files: the
//! link's server_modified), `url` for files shared with the user, `_allow_access_control` with
//! document-level security. Content goes to the host as a download request it performs
//! itself; the text lands in `body`.
//!
//! The document version (what the host compares to skip unchanged documents) is a hash of every
//! indexed field, the file revision and the content plan, prefixed with the modification time
//! for humans. So a rename, a permission change or a larger `max_file_size` re-indexes a file,
//! and nothing else does. Folders have no modification time in Dropbox; Elastic stamps them
//! with the sync time and so re-indexes every folder on every run. Here they carry no
//! `_timestamp` and a version that changes only when their fields do.

use serde_json::json;
use tributary_sdk::Result;
use tributary_sdk::docs::{Document, Fetch};

use crate::api::{FileMetadata, FolderMetadata, SharedLinkMetadata};
use crate::client::Session;
use crate::settings::Settings;

/// Elastic's list of extensions worth downloading, plus formats the host's extractor reads.
const EXTENSIONS: &[&str] = &[
    // Elastic's Dropbox connector.
    "txt", "py", "rst", "html", "markdown", "json", "xml", "csv", "md", "ppt", "rtf", "docx", "odt",
    "xls", "xlsx", "rb", "paper", "sh", "pptx", "pdf", "doc", "aspx", "xlsb", "xlsm", "tsv", "svg",
    "msg", "potx", "vsd", "vsdx", "vsdm", // tributary: more formats the host extracts.
    "htm", "xhtml", "ods", "odp", "eml", "docm", "dotx", "pptm", "ppsx", "xltx", "jsonl", "log",
    "yaml", "yml", "toml", "ini", "tex", "js", "ts", "java", "c", "h", "cpp", "cs", "go", "rs",
    "sql",
];

/// FNV-1a, 64 bits, as 16 hex digits: stable across runs and builds (versions, key suffixes).
pub fn hash_hex(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Lower-case extension of a file name ("" when none).
pub fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// How a file's content is obtained, if at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// `files/download`.
    Download,
    /// `files/export` in this format (Paper as markdown); `file_name` picks the extractor.
    Export { format: String, file_name: String },
    /// `sharing/get_shared_link_file` for a file shared with the user.
    SharedLink { url: String },
}

impl Plan {
    fn marker(&self) -> String {
        match self {
            Plan::Download => "download".into(),
            Plan::Export { format, .. } => format!("export:{format}"),
            Plan::SharedLink { .. } => "link".into(),
        }
    }
}

fn supported(ext: &str) -> bool {
    EXTENSIONS.contains(&ext)
}

/// Elastic's rules: content only for size > 0, size ≤ the limit and a supported extension;
/// Paper is exported as markdown. Other non-downloadable files (e.g. Google Docs) are exported
/// in the format Dropbox offers when the host can read it.
pub fn plan_for_file(settings: &Settings, file: &FileMetadata) -> Option<Plan> {
    if file.size == 0 || file.size > settings.content_limit() {
        return None;
    }
    let ext = extension(&file.name);
    if ext == "paper" {
        return Some(Plan::Export {
            format: "markdown".into(),
            file_name: format!("{}.md", stem(&file.name)),
        });
    }
    if !file.is_downloadable {
        let export_as = file.export_info.as_ref()?.export_as.as_deref()?;
        let format_ext = if export_as == "markdown" {
            "md"
        } else {
            export_as
        };
        return supported(format_ext).then(|| Plan::Export {
            format: export_as.to_string(),
            file_name: format!("{}.{format_ext}", stem(&file.name)),
        });
    }
    supported(&ext).then_some(Plan::Download)
}

/// A file from a listing or a search.
pub fn file_document(
    session: &mut Session,
    settings: &Settings,
    file: &FileMetadata,
    acl: Option<&[String]>,
) -> Result<Document> {
    let timestamp = if extension(&file.name) == "paper" {
        file.client_modified
            .as_ref()
            .or(file.server_modified.as_ref())
    } else {
        file.server_modified.as_ref()
    };
    let document = Document::new(&file.id)
        .field("type", "File")
        .field("name", file.name.as_str())
        .field("file_path", json!(file.path_display))
        .field("size", file.size)
        .field_opt("_timestamp", timestamp.map(String::as_str));
    let plan = plan_for_file(settings, file);
    let document = finish(
        document,
        acl,
        file.rev.as_deref().unwrap_or_default(),
        timestamp.map(String::as_str),
        plan.as_ref(),
    );
    match &plan {
        None => Ok(document),
        Some(plan) => fetch(
            document, session, settings, plan, &file.id, &file.name, file.size,
        ),
    }
}

/// A folder.
pub fn folder_document(folder: &FolderMetadata, acl: Option<&[String]>) -> Document {
    let document = Document::new(&folder.id)
        .field("type", "Folder")
        .field("name", folder.name.as_str())
        .field("file_path", json!(folder.path_display))
        .field("size", 0);
    finish(document, acl, "", None, None)
}

/// A file shared with the user, from its shared link's metadata.
pub fn shared_document(
    session: &mut Session,
    settings: &Settings,
    id: &str,
    link: &SharedLinkMetadata,
    acl: Option<&[String]>,
) -> Result<Document> {
    let size = link.size.unwrap_or(0);
    let document = Document::new(id)
        .field("type", "File")
        .field("name", link.name.as_str())
        .field("url", link.url.as_str())
        .field("size", size)
        .field_opt("_timestamp", link.server_modified.as_deref());
    let ext = extension(&link.name);
    let plan = (size > 0 && size <= settings.content_limit() && supported(&ext)).then(|| {
        Plan::SharedLink {
            url: link.url.clone(),
        }
    });
    let document = finish(
        document,
        acl,
        link.rev.as_deref().unwrap_or_default(),
        link.server_modified.as_deref(),
        plan.as_ref(),
    );
    match &plan {
        None => Ok(document),
        Some(plan) => fetch(document, session, settings, plan, id, &link.name, size),
    }
}

/// Attaches the download of the file's content for the host to perform.
fn fetch(
    document: Document,
    session: &mut Session,
    settings: &Settings,
    plan: &Plan,
    id: &str,
    name: &str,
    size: u64,
) -> Result<Document> {
    // Files are addressed by id, not path: a rename between listing and download (or a name
    // with quotes) cannot break the download.
    let (request, file_name) = match plan {
        Plan::Download => (
            session.content_request("files/download", &json!({ "path": id }))?,
            name.to_string(),
        ),
        Plan::Export { format, file_name } => (
            session.content_request(
                "files/export",
                &json!({ "path": id, "export_format": format }),
            )?,
            file_name.clone(),
        ),
        Plan::SharedLink { url } => (
            session.content_request("sharing/get_shared_link_file", &json!({ "url": url }))?,
            name.to_string(),
        ),
    };
    let size = match plan {
        // An export's size is not the stored file's size.
        Plan::Export { .. } => None,
        _ => Some(size),
    };
    let fetch = Fetch::new(file_name, size, settings.content_limit()).retries(settings.retry_count);
    Ok(document.fetch(&request, fetch))
}

/// Adds the access list and the version.
fn finish(
    document: Document,
    acl: Option<&[String]>,
    rev: &str,
    timestamp: Option<&str>,
    plan: Option<&Plan>,
) -> Document {
    let document = document.field_opt("_allow_access_control", acl.map(|acl| json!(acl)));
    let fields = document.fields_json();
    let plan = plan.map(Plan::marker).unwrap_or_default();
    let digest = hash_hex(format!("{fields}\u{0}{rev}\u{0}{plan}").as_bytes());
    let version = match timestamp {
        Some(ts) => format!("{ts}#{digest}"),
        None => format!("folder#{digest}"),
    };
    document.version(version)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::Value;

    use super::*;

    fn settings() -> Settings {
        Settings::parse(
            r#"{"app_key": "k", "app_secret": "s", "refresh_token": "r", "max_file_size": 100}"#,
        )
        .unwrap()
    }

    fn file(name: &str, size: u64, downloadable: bool) -> FileMetadata {
        serde_json::from_value(json!({
            "id": "id:x", "name": name, "size": size, "is_downloadable": downloadable,
            "export_info": if downloadable { Value::Null } else { json!({"export_as": "markdown"}) },
        }))
        .unwrap()
    }

    #[test]
    fn content_plans_follow_elastic() {
        let s = settings();
        assert_eq!(
            plan_for_file(&s, &file("a.txt", 10, true)),
            Some(Plan::Download)
        );
        assert_eq!(plan_for_file(&s, &file("a.txt", 0, true)), None);
        assert_eq!(plan_for_file(&s, &file("a.txt", 101, true)), None);
        assert_eq!(plan_for_file(&s, &file("a.png", 10, true)), None);
        // Legacy Office formats: the host extracts them itself (issue 14 item 9).
        for legacy in [
            "legacy.doc",
            "deck.ppt",
            "mail.msg",
            "chart.vsd",
            "chart.vsdx",
        ] {
            assert_eq!(
                plan_for_file(&s, &file(legacy, 10, true)),
                Some(Plan::Download),
                "{legacy}"
            );
        }
        // With the extraction service on, the size cap is lifted (as Elastic does); the host's
        // own download limit still bounds the body.
        let service = Settings::parse(
            r#"{"app_key": "k", "app_secret": "s", "refresh_token": "r", "max_file_size": 100, "use_text_extraction_service": true}"#,
        )
        .unwrap();
        assert_eq!(
            plan_for_file(&service, &file("big.pdf", 101, true)),
            Some(Plan::Download)
        );
        assert_eq!(
            plan_for_file(&s, &file("Plan \"A\".paper", 10, false)),
            Some(Plan::Export {
                format: "markdown".into(),
                file_name: "Plan \"A\".md".into()
            })
        );
    }

    #[test]
    fn versions_change_with_fields_only() {
        let version = |name: &str| {
            let document = Document::new("id:1").field("name", name);
            finish(document, None, "r1", Some("2024-01-01T00:00:00Z"), None)
                .version_marker()
                .map(str::to_string)
        };
        assert_eq!(version("a"), version("a"));
        assert_ne!(version("a"), version("b"));
        assert!(version("a").unwrap().starts_with("2024-01-01T00:00:00Z#"));
    }

    #[test]
    fn folder_documents_keep_their_shape_and_version() {
        let folder: FolderMetadata = serde_json::from_value(json!({
            "id": "id:f", "name": "Docs", "path_display": "/Docs", "path_lower": "/docs",
        }))
        .unwrap();
        let acl = ["user_id:1".to_string()];
        let document = folder_document(&folder, Some(&acl)).into_wit();
        // The version digests the fields as they were serialised before the SDK builder.
        let fields = r#"{"_allow_access_control":["user_id:1"],"file_path":"/Docs","id":"id:f","name":"Docs","size":0,"type":"Folder"}"#;
        assert_eq!(document.fields, fields);
        let digest = hash_hex(format!("{fields}\u{0}\u{0}").as_bytes());
        assert_eq!(document.timestamp, Some(format!("folder#{digest}")));
        assert!(document.content.is_none());
    }
}
