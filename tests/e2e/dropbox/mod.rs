//! The Dropbox plugin through the host against the fake Dropbox: exact document sets after
//! full and incremental syncs, advanced rules, document-level security, team folders, and
//! recovery from injected faults.
//!
//! Expectations are computed from the fake's own view of its state (`entries()`,
//! `file_bytes()`, member lists…) and the host's extractor, never from what the plugin did.

mod dls;
mod faults;
mod parity;
mod rules;
mod sync;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tributary_extract::{Limits, extract};
use tributary_fakes::dropbox::{Entry, FakeDropbox, Member, Principal, ReceivedFile};
use tributary_host::ConnectorSpec;
use tributary_host::sink::SinkDocument;

use crate::support::{TestHost, connector, host_with};

/// Elastic's `MAX_FILE_SIZE`, the plugin's default.
pub const MAX_SIZE: u64 = 10 * 1024 * 1024;

/// Extensions whose content the plugin fetches (Elastic's list without the legacy formats only
/// an extraction service reads, plus the formats the host extracts).
const FETCHED: &[&str] = &[
    "txt", "py", "rst", "html", "markdown", "json", "xml", "csv", "md", "rtf", "docx", "odt",
    "xls", "xlsx", "rb", "paper", "sh", "pptx", "pdf", "aspx", "xlsb", "xlsm", "tsv", "svg",
    "potx", "htm", "xhtml", "ods", "odp", "eml", "docm", "dotx", "pptm", "ppsx", "xltx", "jsonl",
    "log", "yaml", "yml", "toml", "ini", "tex", "js", "ts", "java", "c", "h", "cpp", "cs", "go",
    "rs", "sql",
];

/// The connector configuration for `fake`, with `extra` keys on top.
pub fn config(fake: &FakeDropbox, extra: Value) -> Value {
    let mut config = json!({
        "app_key": fake.app_key(),
        "app_secret": fake.app_secret(),
        "refresh_token": fake.refresh_token(),
        "api_base_url": fake.api_url(),
        "content_base_url": fake.api_url(),
        "oauth_base_url": fake.base_url(),
        "retry_count": 2,
    });
    if let (Some(base), Value::Object(extra)) = (config.as_object_mut(), extra) {
        base.extend(extra);
    }
    config
}

/// A `dropbox` connector for `fake`.
pub fn spec(id: &str, fake: &FakeDropbox, extra: Value) -> ConnectorSpec {
    connector(id, "dropbox", config(fake, extra))
}

/// A host with these connectors; content download retries back off quickly.
pub async fn host(specs: Vec<ConnectorSpec>) -> TestHost {
    host_with(specs, |c| c.pipeline.download_backoff_ms = 50).await
}

/// What one document should look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub kind: String,
    pub name: String,
    pub file_path: Option<String>,
    pub size: u64,
    pub timestamp: Option<String>,
    pub url: Option<String>,
    pub body: Option<String>,
    pub acl: Option<Vec<String>>,
}

fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// How the plugin should fetch a file's content: `Some("download" | "export")` or `None`.
pub fn plan(e: &Entry) -> Option<&'static str> {
    let ext = extension(&e.name);
    if e.is_folder || e.size == 0 || e.size > MAX_SIZE || !FETCHED.contains(&ext.as_str()) {
        None
    } else if e.is_paper {
        Some("export")
    } else {
        Some("download")
    }
}

/// The text the host extracts from `bytes` named `name`.
pub fn text(bytes: &[u8], name: &str) -> Option<String> {
    extract(bytes, name, None, &Limits::default())
        .ok()
        .map(|x| x.text)
}

/// The expected document of an entry; `ns` is the namespace its paths are relative to
/// (`None`: the admin's home).
pub fn want_entry(fake: &FakeDropbox, e: &Entry, ns: Option<&str>) -> Want {
    if e.is_folder {
        return Want {
            kind: "Folder".into(),
            name: e.name.clone(),
            file_path: Some(e.path_display.clone()),
            size: 0,
            timestamp: None,
            url: None,
            body: None,
            acl: None,
        };
    }
    let body = plan(e).and_then(|_| {
        let path = match ns {
            Some(ns) => format!("ns:{ns}{}", e.path_display),
            None => e.path_display.clone(),
        };
        let bytes = fake.file_bytes(&path).expect("file bytes");
        let name = if e.is_paper {
            format!("{}.md", e.name.trim_end_matches(".paper"))
        } else {
            e.name.clone()
        };
        text(&bytes, &name)
    });
    Want {
        kind: "File".into(),
        name: e.name.clone(),
        file_path: Some(e.path_display.clone()),
        size: e.size,
        timestamp: if e.is_paper {
            e.client_modified.clone()
        } else {
            e.server_modified.clone()
        },
        url: None,
        body,
        acl: None,
    }
}

/// The expected document of a file shared with the admin.
pub fn want_received(fake: &FakeDropbox, f: &ReceivedFile) -> Want {
    let ext = extension(&f.name);
    let body = (f.size > 0 && f.size <= MAX_SIZE && FETCHED.contains(&ext.as_str()))
        .then(|| fake.received_file_bytes(&f.id).expect("received bytes"))
        .and_then(|bytes| text(&bytes, &f.name));
    Want {
        kind: "File".into(),
        name: f.name.clone(),
        file_path: None,
        size: f.size,
        timestamp: Some(f.server_modified.clone()),
        url: Some(f.preview_url.clone()),
        body,
        acl: None,
    }
}

/// Every entry the plugin lists by default — the admin's view of the account's root namespace,
/// the team space, as Elastic's connector roots every call there — or of namespace `ns`, plus
/// the received files.
pub fn want_all(fake: &FakeDropbox, ns: Option<&str>) -> BTreeMap<String, Want> {
    let root = fake.root_namespace_id();
    let ns = ns.unwrap_or(&root);
    let mut want: BTreeMap<String, Want> = fake
        .entries_in(ns)
        .iter()
        .map(|e| (e.id.clone(), want_entry(fake, e, Some(ns))))
        .collect();
    for f in fake.received_files() {
        want.insert(f.id.clone(), want_received(fake, &f));
    }
    want
}

/// Where a path of the admin's home appears in the team space (the member folder is named
/// after the member), as the plugin reports paths by default.
pub fn in_team_space(fake: &FakeDropbox, home_path: &str) -> String {
    format!("/{}{home_path}", fake.admin().display_name)
}

/// What `include_team_folders = false` lists: the admin's home folder, paths relative to it,
/// plus the received files.
pub fn want_home(fake: &FakeDropbox) -> BTreeMap<String, Want> {
    let mut want: BTreeMap<String, Want> = fake
        .entries()
        .iter()
        .map(|e| (e.id.clone(), want_entry(fake, e, None)))
        .collect();
    for f in fake.received_files() {
        want.insert(f.id.clone(), want_received(fake, &f));
    }
    want
}

fn field_str(doc: &SinkDocument, key: &str) -> Option<String> {
    doc.fields
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The indexed documents in the shape of [`Want`].
pub fn got(docs: &BTreeMap<String, SinkDocument>) -> BTreeMap<String, Want> {
    docs.iter()
        .map(|(id, d)| {
            assert_eq!(d.fields.get("id"), Some(&json!(id)), "id field of {id}");
            let acl = d.fields.get("_allow_access_control").map(|v| {
                v.as_array()
                    .expect("access list is an array")
                    .iter()
                    .map(|x| x.as_str().expect("identity").to_string())
                    .collect()
            });
            let want = Want {
                kind: field_str(d, "type").unwrap_or_default(),
                name: field_str(d, "name").unwrap_or_default(),
                file_path: field_str(d, "file_path"),
                size: d.fields.get("size").and_then(Value::as_u64).expect("size"),
                timestamp: field_str(d, "_timestamp"),
                url: field_str(d, "url"),
                body: d.body.clone(),
                acl,
            };
            (id.clone(), want)
        })
        .collect()
}

/// Asserts the exact document set, naming what is missing, unexpected or different.
pub fn assert_docs(docs: &BTreeMap<String, SinkDocument>, want: &BTreeMap<String, Want>) {
    let got = got(docs);
    let missing: Vec<_> = want
        .iter()
        .filter(|(id, _)| !got.contains_key(*id))
        .map(|(id, w)| format!("{id} {:?}", w.file_path.as_ref().unwrap_or(&w.name)))
        .collect();
    let unexpected: Vec<_> = got
        .iter()
        .filter(|(id, _)| !want.contains_key(*id))
        .map(|(id, w)| format!("{id} {:?}", w.file_path.as_ref().unwrap_or(&w.name)))
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "missing: {missing:#?}\nunexpected: {unexpected:#?}"
    );
    for (id, w) in want {
        assert_eq!(&got[id], w, "document {id}");
    }
}

/// `(files/download, files/export, sharing/get_shared_link_file)` requests seen by the fake.
pub fn fetches(fake: &FakeDropbox) -> (usize, usize, usize) {
    (
        fake.faults().count("/2/files/download"),
        fake.faults().count("/2/files/export"),
        fake.faults().count("/2/sharing/get_shared_link_file"),
    )
}

/// Fetches a full sync of `entries` and `received` should make.
pub fn expected_fetches(entries: &[Entry], received: &[ReceivedFile]) -> (usize, usize, usize) {
    let downloads = entries
        .iter()
        .filter(|e| plan(e) == Some("download"))
        .count();
    let exports = entries.iter().filter(|e| plan(e) == Some("export")).count();
    let links = received
        .iter()
        .filter(|f| {
            f.size > 0 && f.size <= MAX_SIZE && FETCHED.contains(&extension(&f.name).as_str())
        })
        .count();
    (downloads, exports, links)
}

/// An identity string for a member principal, as the plugin writes it.
pub fn identity(m: &Member) -> String {
    match &m.principal {
        Principal::Account(id) => format!("user_id:{id}"),
        Principal::Group(id) => format!("group:{id}"),
        Principal::Email(email) => format!("email:{email}"),
    }
}
