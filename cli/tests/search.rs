//! `tributary search`, `export` and `jobs` as people and scripts meet them: filters, sorts,
//! counts, facets and pages; errors with exit status 1; no escape codes in pipes or with
//! `NO_COLOR`; every document exported as JSON lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use tributary_host::sink::embedded::EmbeddedIndex;
use tributary_host::sink::{IndexRef, Sink, SinkDocument};

fn tributary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .current_dir(dir)
        .env_remove("TRIBUTARY_CONFIG")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{text}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

fn refused(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains(needle), "no `{needle}` in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// An embedded index `files` of tenant `default` with four documents.
fn index(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sink = EmbeddedIndex::new(dir.join("data/index"));
        let ix = IndexRef::new("default", "files");
        let docs = [
            ("1", "Contacts.json", "File", "json", "phone numbers"),
            ("2", "Quarterly revenue.pdf", "File", "pdf", "revenue grew"),
            ("3", "Reports", "Folder", "", ""),
            ("4", "Holiday plan.docx", "File", "docx", "quarterly revenue review"),
        ]
        .map(|(id, name, kind, ext, body)| {
            let mut fields = json!({"id": id, "name": name, "type": kind, "size": id.parse::<u64>().unwrap() * 100,
                                    "_timestamp": format!("2024-0{id}-01T00:00:00Z")});
            if !ext.is_empty() {
                fields["file_extension"] = json!(ext);
            }
            let Value::Object(fields) = fields else {
                unreachable!()
            };
            SinkDocument {
                id: id.into(),
                connector: "c".into(),
                version: None,
                fields,
                body: (!body.is_empty()).then(|| body.to_string()),
            }
        });
        sink.upsert(ix.clone(), docs.to_vec()).await.unwrap();
        sink.commit(ix).await.unwrap();
    });
}

fn json_ids(text: &str) -> (u64, Vec<String>, Value) {
    let v: Value = serde_json::from_str(text).unwrap();
    let results = v["results"].clone();
    let ids = results["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    (results["total"].as_u64().unwrap(), ids, results)
}

#[test]
fn searches_by_field_filters_sorts_pages_counts_and_facets() {
    let dir = tempfile::tempdir().unwrap();
    index(dir.path());
    let d = dir.path();
    let search = |args: &[&str]| {
        let mut all = vec!["search", "--index", "files", "--json"];
        all.extend_from_slice(args);
        json_ids(&stdout(&tributary(d, &all, &[])))
    };
    assert_eq!(search(&["type:File"]).0, 3);
    assert_eq!(search(&["name:contacts"]).1, ["1"]);
    assert_eq!(search(&["size:>300"]).1, ["4"]);
    assert_eq!(search(&["--filter", "type=Folder"]).1, ["3"]);
    let (total, ids, _) = search(&["--sort", "_timestamp:desc", "--limit", "3"]);
    assert_eq!((total, ids), (4, vec!["4".into(), "3".into(), "2".into()]));
    let (_, _, first) = search(&["--sort", "size:asc", "--limit", "2"]);
    let next = first["next"].as_str().unwrap().to_string();
    let (_, ids, last) = search(&["--sort", "size:asc", "--limit", "2", "--after", &next]);
    assert_eq!(ids, ["3", "4"]);
    assert!(last["next"].is_null());
    let (_, _, faceted) = search(&["--facet", "type", "--count"]);
    assert_eq!(faceted["hits"], json!([]));
    assert_eq!(
        faceted["facets"]["type"],
        json!([{"value": "File", "count": 3}, {"value": "Folder", "count": 1}])
    );
    // For people: the count only, or hits, facets and where the next page starts.
    let text = stdout(&tributary(
        d,
        &["search", "--index", "files", "--count", "type:File"],
        &[],
    ));
    assert_eq!(text, "files: 3 match(es)\n");
    let text = stdout(&tributary(
        d,
        &[
            "search", "--index", "files", "--limit", "1", "--facet", "type",
        ],
        &[],
    ));
    assert!(text.contains("  type: File 3, Folder 1"), "{text}");
    assert!(text.contains("  more: --after "), "{text}");
}

#[test]
fn bad_queries_unknown_fields_and_connectors_exit_1_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    index(dir.path());
    let d = dir.path();
    let out = tributary(d, &["search", "--index", "files", "foo AND ("], &[]);
    refused(&out, "invalid query `foo AND (` at position");
    let out = tributary(d, &["search", "--index", "files", "sise:>10"], &[]);
    refused(&out, "unknown field `sise`; the fields are: ");
    let out = tributary(d, &["search", "--index", "files", "--sort", "x:up"], &[]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let out = tributary(d, &["search", "--index", "nope", "x"], &[]);
    refused(&out, "the indexes of tenant `default` are: files");
    let out = tributary(d, &["jobs", "nope"], &[]);
    refused(&out, "no connector `nope` is configured");
}

#[test]
fn highlights_are_bold_only_on_a_terminal_without_no_color() {
    let dir = tempfile::tempdir().unwrap();
    index(dir.path());
    let d = dir.path();
    let args = ["search", "--index", "files", "revenue"];
    // A pipe: no escape codes.
    let piped = stdout(&tributary(d, &args, &[]));
    assert!(piped.contains("revenue"), "{piped}");
    assert!(!piped.contains('\x1b'), "{piped:?}");
    // Forced colour (as a terminal would get it) shows the highlight; NO_COLOR wins.
    let forced = stdout(&tributary(d, &args, &[("CLICOLOR_FORCE", "1")]));
    assert!(forced.contains("\x1b[1mrevenue"), "{forced:?}");
    let no_color = stdout(&tributary(
        d,
        &args,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    ));
    assert!(!no_color.contains('\x1b'), "{no_color:?}");
}

#[test]
fn export_prints_every_document_as_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    index(dir.path());
    let d = dir.path();
    let text = stdout(&tributary(d, &["export", "files"], &[]));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    assert!(lines.iter().all(|l| l.get("body").is_none()));
    assert_eq!(lines[0]["connector"], "c");
    let text = stdout(&tributary(
        d,
        &[
            "export",
            "files",
            "--body",
            "--filter",
            "type=File",
            "--format",
            "jsonl",
        ],
        &[],
    ));
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains("\"body\":\"revenue grew\""), "{text}");
    refused(&tributary(d, &["export", "nope"], &[]), "no index `nope`");
}
