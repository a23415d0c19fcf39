//! Tests of the fake Dropbox through its HTTP API, with a plain reqwest client as a plugin would.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{Value, json};

use super::content::header_safe_json;
use super::{Access, FakeDropbox, Member, Principal, Tree};
use crate::faults::Fault;

type TestResult = anyhow::Result<()>;

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    headers: Vec<(String, String)>,
}

struct Answer {
    status: u16,
    json: Value,
    text: String,
}

impl Client {
    async fn new(fake: &FakeDropbox, team: bool) -> anyhow::Result<Client> {
        let refresh = if team {
            fake.team_refresh_token()
        } else {
            fake.refresh_token()
        };
        let token = grant(fake, refresh).await?;
        Ok(Client {
            http: reqwest::Client::new(),
            base: fake.api_url(),
            token,
            headers: Vec::new(),
        })
    }

    fn with(&self, name: &str, value: &str) -> Client {
        let mut c = self.clone();
        c.headers.push((name.to_string(), value.to_string()));
        c
    }

    async fn rpc(&self, route: &str, body: Value) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .post(format!("{}{route}", self.base))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        answer(req.send().await?).await
    }

    /// A content-download call: returns the answer, the parsed `Dropbox-API-Result` and the bytes.
    async fn download(
        &self,
        route: &str,
        arg: Value,
    ) -> anyhow::Result<(u16, Value, Vec<u8>, String)> {
        let mut req = self
            .http
            .post(format!("{}{route}", self.base))
            .bearer_auth(&self.token)
            .header("Dropbox-API-Arg", header_safe_json(&arg));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let result = resp
            .headers()
            .get("dropbox-api-result")
            .map(|v| v.to_str().map(str::to_string))
            .transpose()?;
        let bytes = resp.bytes().await?.to_vec();
        let parsed = match &result {
            Some(r) => serde_json::from_str(r)?,
            None => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        };
        Ok((status, parsed, bytes, result.unwrap_or_default()))
    }

    /// Follows `list_folder` + `continue` to the end; returns every page.
    async fn list_all(&self, body: Value) -> anyhow::Result<(Vec<Value>, String)> {
        let mut pages = Vec::new();
        let mut a = self.rpc("files/list_folder", body).await?;
        anyhow::ensure!(a.status == 200, "list_folder: {} {}", a.status, a.text);
        loop {
            let cursor = a.json["cursor"].as_str().unwrap_or_default().to_string();
            let more = a.json["has_more"].as_bool().unwrap_or(false);
            pages.push(a.json);
            if !more {
                return Ok((pages, cursor));
            }
            a = self
                .rpc("files/list_folder/continue", json!({ "cursor": cursor }))
                .await?;
            anyhow::ensure!(a.status == 200, "continue: {} {}", a.status, a.text);
        }
    }
}

async fn answer(resp: reqwest::Response) -> anyhow::Result<Answer> {
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, json, text })
}

async fn grant(fake: &FakeDropbox, refresh: &str) -> anyhow::Result<String> {
    let resp = reqwest::Client::new()
        .post(fake.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", fake.app_key()),
            ("client_secret", fake.app_secret()),
        ])
        .send()
        .await?;
    let a = answer(resp).await?;
    anyhow::ensure!(a.status == 200, "token: {} {}", a.status, a.text);
    Ok(a.json["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn entries(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| p["entries"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn paths(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["path_lower"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test]
async fn token_grant_expiry_and_errors() -> TestResult {
    let fake = FakeDropbox::start(Tree::empty()).await?;
    let http = reqwest::Client::new();

    // Wrong client.
    let a = answer(
        http.post(fake.token_url())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", fake.refresh_token()),
                ("client_id", "nope"),
                ("client_secret", fake.app_secret()),
            ])
            .send()
            .await?,
    )
    .await?;
    assert_eq!(a.status, 400);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("invalid_client")
    );

    // Wrong refresh token.
    let a = answer(
        http.post(fake.token_url())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "stale"),
                ("client_id", fake.app_key()),
                ("client_secret", fake.app_secret()),
            ])
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(a.json["error_description"].is_string());

    // HTTP basic client authentication.
    let a = answer(
        http.post(fake.token_url())
            .basic_auth(fake.app_key(), Some(fake.app_secret()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", fake.refresh_token()),
            ])
            .send()
            .await?,
    )
    .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["token_type"], "bearer");
    assert!(a.json["expires_in"].as_u64().is_some_and(|s| s > 0));

    let client = Client::new(&fake, false).await?;
    assert_eq!(fake.token_grants(), 2);
    let a = client.rpc("users/get_current_account", Value::Null).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let admin = fake.admin();
    assert_eq!(a.json["account_id"], admin.account_id.as_str());
    assert_eq!(a.json["email"], "alex.doe@acme.example");
    assert_eq!(a.json["name"]["display_name"], "Alex Doe");
    assert_eq!(a.json["root_info"][".tag"], "team");
    assert_eq!(
        a.json["root_info"]["root_namespace_id"],
        fake.root_namespace_id().as_str()
    );
    assert_eq!(
        a.json["root_info"]["home_namespace_id"],
        fake.home_namespace_id().as_str()
    );

    fake.expire_access_tokens();
    let a = client.rpc("users/get_current_account", Value::Null).await?;
    assert_eq!(a.status, 401);
    assert_eq!(a.json["error"][".tag"], "expired_access_token");
    assert_eq!(a.json["error_summary"], "expired_access_token/");

    let mut other = Client::new(&fake, false).await?;
    assert_eq!(fake.token_grants(), 3);
    assert_eq!(
        other
            .rpc("users/get_current_account", Value::Null)
            .await?
            .status,
        200
    );
    other.token = "made-up".into();
    let a = other.rpc("users/get_current_account", Value::Null).await?;
    assert_eq!(
        (a.status, &a.json["error"][".tag"]),
        (401, &json!("invalid_access_token"))
    );

    fake.set_refresh_tokens_valid(false);
    assert!(grant(&fake, fake.refresh_token()).await.is_err());
    Ok(())
}

#[tokio::test]
async fn malformed_requests_get_dropbox_400s() -> TestResult {
    let fake = FakeDropbox::start(Tree::small()).await?;
    let client = Client::new(&fake, false).await?;
    let http = reqwest::Client::new();
    let url = format!("{}files/list_folder", fake.api_url());

    let bad_json = answer(
        http.post(&url)
            .bearer_auth(&client.token)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(bad_json.status, 400);
    assert!(
        bad_json.text.contains("could not decode input as JSON"),
        "{}",
        bad_json.text
    );

    let wrong_type = answer(
        http.post(&url)
            .bearer_auth(&client.token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("{\"path\": \"\"}")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(wrong_type.status, 400);
    assert!(wrong_type.text.contains("Content-Type"));

    let missing = client.rpc("files/list_folder", json!({})).await?;
    assert_eq!(missing.status, 400);
    assert!(missing.text.contains("missing required field 'path'"));
    let mistyped = client
        .rpc("files/list_folder", json!({"path": "", "limit": "ten"}))
        .await?;
    assert_eq!(mistyped.status, 400);
    let slash = client
        .rpc("files/list_folder", json!({"path": "/"}))
        .await?;
    assert_eq!(slash.status, 400);
    assert!(slash.text.contains("empty string"));
    let pattern = client
        .rpc("files/list_folder", json!({"path": "relative"}))
        .await?;
    assert_eq!(pattern.status, 400);
    let not_object = client.rpc("files/list_folder", json!([1, 2])).await?;
    assert_eq!(not_object.status, 400);
    let limit = client
        .rpc("files/list_folder", json!({"path": "", "limit": 0}))
        .await?;
    assert_eq!(limit.status, 400);

    let no_auth = answer(
        http.post(&url)
            .header("Content-Type", "application/json")
            .body("{\"path\": \"\"}")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(no_auth.status, 400);
    let unknown = client.rpc("files/frobnicate", json!({})).await?;
    assert_eq!(unknown.status, 404);

    let nf = client
        .rpc("files/list_folder", json!({"path": "/no such folder"}))
        .await?;
    assert_eq!(nf.status, 409);
    assert_eq!(nf.json["error_summary"], "path/not_found/");
    assert_eq!(nf.json["error"][".tag"], "path");
    assert_eq!(nf.json["error"]["path"][".tag"], "not_found");
    Ok(())
}

#[tokio::test]
async fn list_folder_pagination_is_exact_on_a_medium_tree() -> TestResult {
    let start = Instant::now();
    let fake = FakeDropbox::start(Tree::medium()).await?;
    let built = start.elapsed();
    let client = Client::new(&fake, false).await?;
    let (pages, _) = client
        .list_all(json!({"path": "", "recursive": true, "limit": 1000}))
        .await?;
    assert!(pages.len() >= 10);
    for page in &pages {
        assert!(page["entries"].as_array().map_or(0, Vec::len) <= 1000);
    }
    let got = entries(&pages);
    let expected = fake.entries();
    assert_eq!(expected.len(), 10_000, "built in {built:?}");
    assert_eq!(got.len(), expected.len());
    let got_ids: BTreeSet<&str> = got.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(got_ids.len(), got.len(), "duplicate ids");
    let expected_by_id: BTreeMap<&str, &super::Entry> =
        expected.iter().map(|e| (e.id.as_str(), e)).collect();
    for e in &got {
        let id = e["id"].as_str().unwrap_or_default();
        let want = expected_by_id
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("unexpected {e}"))?;
        assert_eq!(e["path_display"], want.path_display.as_str());
        assert_eq!(e[".tag"], if want.is_folder { "folder" } else { "file" });
        if !want.is_folder {
            assert_eq!(e["size"], want.size);
            assert_eq!(
                e["server_modified"].as_str(),
                want.server_modified.as_deref()
            );
            assert_eq!(e["is_downloadable"], !want.is_paper);
        }
    }
    // The generated mix is really there.
    assert!(expected.iter().any(|e| e.is_paper));
    assert!(expected.iter().any(|e| e.size > 10 * 1024 * 1024));
    assert!(expected.iter().any(|e| e.name.contains('"')));
    assert!(expected.iter().any(|e| !e.name.is_ascii()));
    assert!(expected.iter().any(|e| e.parent_shared_folder_id.is_some()));

    // Non-recursive listing: only direct children.
    let (pages, _) = client.list_all(json!({"path": "", "limit": 7})).await?;
    let top: BTreeSet<String> = paths(&entries(&pages)).into_iter().collect();
    let want: BTreeSet<String> = expected
        .iter()
        .filter(|e| e.path_lower.matches('/').count() == 1)
        .map(|e| e.path_lower.clone())
        .collect();
    assert_eq!(top, want);

    // A recursive listing of a subfolder starts with the folder itself.
    let folder = expected
        .iter()
        .find(|e| e.is_folder && e.shared_folder_id.is_none())
        .ok_or_else(|| anyhow::anyhow!("no folder"))?;
    let (pages, _) = client
        .list_all(json!({"path": folder.path_display, "recursive": true}))
        .await?;
    let listed = entries(&pages);
    assert_eq!(listed[0]["id"], folder.id.as_str());
    let inside = expected
        .iter()
        .filter(|e| e.path_lower.starts_with(&format!("{}/", folder.path_lower)))
        .count();
    assert_eq!(listed.len(), inside + 1);
    Ok(())
}

#[tokio::test]
async fn cursors_report_exactly_the_changes() -> TestResult {
    let fake = FakeDropbox::start(Tree::demo()).await?;
    let client = Client::new(&fake, false).await?;
    let (pages, cursor) = client
        .list_all(json!({"path": "", "recursive": true, "limit": 10}))
        .await?;
    assert_eq!(entries(&pages).len(), fake.entries().len());

    // Nothing changed: nothing reported.
    let a = client
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await?;
    assert_eq!(a.json["entries"], json!([]));
    assert_eq!(a.json["has_more"], false);
    let cursor = a.json["cursor"].as_str().unwrap_or_default().to_string();

    let before = fake
        .entry("/Reports/Q2 quarterly revenue.txt")
        .ok_or_else(|| anyhow::anyhow!("q2"))?;
    let added = fake.add_file("/Reports/Q4 plan.md", "# Q4 plan\n\nHire two engineers.\n")?;
    let edited = fake.edit_file("/Reports/Q2 quarterly revenue.txt", "revised numbers")?;
    assert_eq!(edited.id, before.id);
    assert_ne!(edited.rev, before.rev);
    assert!(edited.server_modified > before.server_modified);
    let website_files = fake
        .entries()
        .iter()
        .filter(|e| e.path_lower.starts_with("/projects/website/"))
        .count();
    fake.move_entry("/Projects/Website", "/Archive/Old website")?;
    fake.delete("/Notes/Reading list.txt")?;
    fake.add_file("/Scratch/temp.txt", "x")?;
    fake.delete("/Scratch")?;

    let a = client
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let got = a.json["entries"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(String, String)> = got
        .iter()
        .map(|e| {
            (
                e[".tag"].as_str().unwrap_or("").to_string(),
                e["path_lower"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut want = vec![
        ("file".to_string(), "/reports/q4 plan.md".to_string()),
        ("file".into(), "/reports/q2 quarterly revenue.txt".into()),
        ("deleted".into(), "/projects/website".into()),
        ("folder".into(), "/archive/old website".into()),
    ];
    let mut moved: Vec<(String, String)> = fake
        .entries()
        .iter()
        .filter(|e| e.path_lower.starts_with("/archive/old website/"))
        .map(|e| ("file".to_string(), e.path_lower.clone()))
        .collect();
    assert_eq!(moved.len(), website_files);
    moved.sort();
    want.extend(moved);
    want.push(("deleted".into(), "/notes/reading list.txt".into()));
    // The scratch folder was created and deleted: only its deletion remains.
    want.push(("deleted".into(), "/scratch".into()));
    assert_eq!(summary, want);
    let q4 = got.first().ok_or_else(|| anyhow::anyhow!("empty"))?;
    assert_eq!(q4["id"], added.id.as_str());
    assert_eq!(q4["size"], added.size);
    assert_eq!(got[1]["rev"], edited.rev.as_deref().unwrap_or_default());
    assert_eq!(got[2]["path_display"], "/Projects/Website");
    assert_eq!(got[2]["name"], "Website");

    // Caught up again.
    let cursor = a.json["cursor"].as_str().unwrap_or_default().to_string();
    let a = client
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await?;
    assert_eq!(a.json["entries"], json!([]));

    // Scoped cursors ignore changes elsewhere; get_latest_cursor starts from now.
    let a = client
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "/Recipes", "recursive": true}),
        )
        .await?;
    let scoped = a.json["cursor"].as_str().unwrap_or_default().to_string();
    fake.add_file("/Notes/elsewhere.txt", "x")?;
    fake.add_file("/Recipes/Soup.md", "tomato soup")?;
    let a = client
        .rpc("files/list_folder/continue", json!({"cursor": scoped}))
        .await?;
    assert_eq!(
        paths(a.json["entries"].as_array().map_or(&[][..], Vec::as_slice)),
        ["/recipes/soup.md"]
    );

    // Cursors can be reset; garbage is refused the same way.
    fake.reset_cursors();
    let a = client
        .rpc("files/list_folder/continue", json!({"cursor": scoped}))
        .await?;
    assert_eq!(
        (a.status, a.json["error_summary"].as_str()),
        (409, Some("reset/"))
    );
    let a = client
        .rpc("files/list_folder/continue", json!({"cursor": "garbage"}))
        .await?;
    assert_eq!(a.status, 409);
    Ok(())
}

#[tokio::test]
async fn changes_during_pagination_are_not_lost() -> TestResult {
    let fake = FakeDropbox::start(Tree::small()).await?;
    let client = Client::new(&fake, false).await?;
    let first = client
        .rpc(
            "files/list_folder",
            json!({"path": "", "recursive": true, "limit": 30}),
        )
        .await?;
    assert_eq!(first.json["has_more"], true);
    // Changes after the listing started: a new file sorting first, a deletion of an entry
    // that was not listed yet.
    let added = fake.add_file("/!first.txt", "new")?;
    let victim = fake
        .entries()
        .into_iter()
        .rev()
        .find(|e| !e.is_folder)
        .ok_or_else(|| anyhow::anyhow!("no file"))?;
    fake.delete(&victim.path_display)?;
    let mut cursor = first.json["cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    for e in first.json["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        seen.insert(e["path_lower"].as_str().unwrap_or_default().to_string(), e);
    }
    loop {
        let a = client
            .rpc("files/list_folder/continue", json!({"cursor": cursor}))
            .await?;
        for e in a.json["entries"].as_array().cloned().unwrap_or_default() {
            let path = e["path_lower"].as_str().unwrap_or_default().to_string();
            if e[".tag"] == "deleted" {
                seen.retain(|p, _| p != &path && !p.starts_with(&format!("{path}/")));
            } else {
                seen.insert(path, e);
            }
        }
        cursor = a.json["cursor"].as_str().unwrap_or_default().to_string();
        if a.json["has_more"] == false {
            break;
        }
    }
    // One more continue picks up the changes made during pagination.
    let a = client
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await?;
    for e in a.json["entries"].as_array().cloned().unwrap_or_default() {
        let path = e["path_lower"].as_str().unwrap_or_default().to_string();
        if e[".tag"] == "deleted" {
            seen.retain(|p, _| p != &path && !p.starts_with(&format!("{path}/")));
        } else {
            seen.insert(path, e);
        }
    }
    let want: BTreeSet<String> = fake.entries().into_iter().map(|e| e.path_lower).collect();
    let got: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(got, want);
    assert!(got.contains(&added.path_lower));
    assert!(!got.contains(&victim.path_lower));
    Ok(())
}

#[tokio::test]
async fn downloads_exports_and_headers() -> TestResult {
    let fake = FakeDropbox::start(Tree::demo()).await?;
    let client = Client::new(&fake, false).await?;

    let path = "/Reports/Q3 quarterly revenue.txt";
    let (status, result, bytes, _) = client
        .download("files/download", json!({"path": path}))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(Some(bytes.clone()), fake.file_bytes(path));
    assert!(String::from_utf8_lossy(&bytes).contains("4.2 million"));
    assert_eq!(result["path_display"], path);
    assert_eq!(result["size"], bytes.len());
    assert!(
        result.get(".tag").is_none(),
        "FileMetadata is a struct, not a union"
    );
    let entry = fake.entry(path).ok_or_else(|| anyhow::anyhow!("entry"))?;
    assert_eq!(
        result["content_hash"].as_str(),
        entry.content_hash.as_deref()
    );

    // By id, and names with quotes and non-ASCII characters (header-safe JSON both ways).
    let (status, _, by_id, _) = client
        .download("files/download", json!({"path": entry.id}))
        .await?;
    assert_eq!((status, by_id), (200, bytes));
    let quoted = "/Travel/Packing \"essentials\" list.txt";
    let (status, result, _, _) = client
        .download("files/download", json!({"path": quoted}))
        .await?;
    assert_eq!(
        (status, result["name"].as_str()),
        (200, Some("Packing \"essentials\" list.txt"))
    );
    let unicode = "/Travel/日本 出張メモ.txt";
    let (status, result, body, raw) = client
        .download("files/download", json!({"path": unicode}))
        .await?;
    assert_eq!(status, 200);
    assert!(raw.is_ascii() && raw.contains("\\u"));
    assert_eq!(result["path_display"], unicode);
    assert!(String::from_utf8_lossy(&body).contains("Osaka"));

    // GET with `arg` and `authorization` query parameters.
    let url = format!(
        "{}files/download?arg={}&authorization=Bearer%20{}",
        fake.api_url(),
        super::content::percent_encode(&json!({"path": "/Contacts.json"}).to_string()),
        client.token
    );
    let resp = reqwest::get(url).await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("dropbox-api-result"));

    // Errors.
    let (status, err, _, _) = client
        .download("files/download", json!({"path": "/Reports"}))
        .await?;
    assert_eq!(
        (status, err["error_summary"].as_str()),
        (409, Some("path/not_file/"))
    );
    let (status, err, _, _) = client
        .download("files/download", json!({"path": "/nope.txt"}))
        .await?;
    assert_eq!(
        (status, err["error_summary"].as_str()),
        (409, Some("path/not_found/"))
    );
    let (status, err, _, _) = client
        .download(
            "files/download",
            json!({"path": "/Projects/Launch plan.paper"}),
        )
        .await?;
    assert_eq!(
        (status, err["error"][".tag"].as_str()),
        (409, Some("unsupported_file"))
    );
    let resp = client
        .http
        .post(format!("{}files/download", fake.api_url()))
        .bearer_auth(&client.token)
        .header("Content-Type", "application/json")
        .header("Dropbox-API-Arg", json!({"path": path}).to_string())
        .send()
        .await?;
    assert_eq!(
        resp.status().as_u16(),
        400,
        "JSON content type is refused on downloads"
    );
    let resp = client
        .http
        .post(format!("{}files/download", fake.api_url()))
        .bearer_auth(&client.token)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 400, "missing Dropbox-API-Arg");

    // Paper: metadata, markdown export, other formats, non-exportable files.
    let meta = client
        .rpc(
            "files/get_metadata",
            json!({"path": "/Projects/Launch plan.paper"}),
        )
        .await?;
    assert_eq!(meta.json["is_downloadable"], false);
    assert_eq!(meta.json["export_info"]["export_as"], "markdown");
    let (status, result, md, _) = client
        .download(
            "files/export",
            json!({"path": "/Projects/Launch plan.paper", "export_format": "markdown"}),
        )
        .await?;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&md).starts_with("# Launch plan"));
    assert_eq!(result["export_metadata"]["name"], "Launch plan.md");
    assert_eq!(result["export_metadata"]["size"], md.len());
    assert_eq!(result["file_metadata"]["name"], "Launch plan.paper");
    let (status, _, html, _) = client
        .download(
            "files/export",
            json!({"path": "/Projects/Launch plan.paper", "export_format": "html"}),
        )
        .await?;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&html).contains("<h1>Launch plan"));
    let (status, err, _, _) = client
        .download("files/export", json!({"path": path}))
        .await?;
    assert_eq!(
        (status, err["error"][".tag"].as_str()),
        (409, Some("non_exportable"))
    );

    // The big file is reported by size only; nothing was generated to list it.
    let big = fake
        .entry("/Archive/Full customer export.csv")
        .ok_or_else(|| anyhow::anyhow!("big"))?;
    assert!(big.size > 10 * 1024 * 1024);
    assert!(big.content_hash.is_none());
    let meta = client
        .rpc(
            "files/get_metadata",
            json!({"path": "/archive/FULL customer export.csv"}),
        )
        .await?;
    assert_eq!(meta.json["size"], big.size);
    assert_eq!(
        meta.json["path_display"],
        "/Archive/Full customer export.csv"
    );
    let root = client
        .rpc("files/get_metadata", json!({"path": ""}))
        .await?;
    assert_eq!(root.status, 400);
    Ok(())
}

#[tokio::test]
async fn search_v2_filters_and_pages() -> TestResult {
    let fake = FakeDropbox::start(Tree::demo()).await?;
    let client = Client::new(&fake, false).await?;
    let names = |a: &Answer| -> Vec<String> {
        a.json["matches"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|x| {
                        x["metadata"]["metadata"]["name"]
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    let a = client
        .rpc("files/search_v2", json!({"query": "quarterly revenue"}))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        names(&a),
        ["Q2 quarterly revenue.txt", "Q3 quarterly revenue.txt"]
    );
    assert_eq!(a.json["matches"][0]["metadata"][".tag"], "metadata");
    assert_eq!(a.json["matches"][0]["metadata"]["metadata"][".tag"], "file");
    assert_eq!(
        a.json["matches"][0]["match_type"][".tag"],
        "filename_and_content"
    );
    assert_eq!(a.json["has_more"], false);
    assert!(a.json.get("cursor").is_none());

    // Content-only match, and filename_only turning it off.
    let a = client
        .rpc("files/search_v2", json!({"query": "kleppmann"}))
        .await?;
    assert_eq!(names(&a), ["Reading list.txt"]);
    assert_eq!(a.json["matches"][0]["match_type"][".tag"], "file_content");
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "kleppmann", "options": {"filename_only": true}}),
        )
        .await?;
    assert!(names(&a).is_empty());

    // Categories and extensions.
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "e", "options": {"file_categories": [{".tag": "spreadsheet"}], "max_results": 100}}),
        )
        .await?;
    let got = names(&a);
    assert!(!got.is_empty());
    assert!(got.iter().all(|n| n.ends_with(".csv")), "{got:?}");
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "a", "options": {"file_categories": [{".tag": "paper"}, {".tag": "image"}]}}),
        )
        .await?;
    let got: BTreeSet<String> = names(&a).into_iter().collect();
    assert!(
        got.contains("Launch plan.paper") && got.contains("Team offsite 2024.png"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .all(|n| n.ends_with(".paper") || n.ends_with(".png") || n.ends_with(".jpg"))
    );
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "o", "options": {"file_categories": ["folder"]}}),
        )
        .await?;
    assert!(a.json["matches"].as_array().is_some_and(|m| {
        !m.is_empty()
            && m.iter()
                .all(|x| x["metadata"]["metadata"][".tag"] == "folder")
    }));
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "notes", "options": {"file_extensions": ["md"]}}),
        )
        .await?;
    assert!(names(&a).iter().all(|n| n.ends_with(".md")) && !names(&a).is_empty());

    // Scope and pagination through search/continue_v2.
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "e", "options": {"path": "/Reports", "max_results": 2}}),
        )
        .await?;
    assert_eq!(a.json["has_more"], true);
    let mut all = names(&a);
    let mut cursor = a.json["cursor"].as_str().unwrap_or_default().to_string();
    loop {
        let a = client
            .rpc("files/search/continue_v2", json!({"cursor": cursor}))
            .await?;
        assert_eq!(a.status, 200);
        all.extend(names(&a));
        if a.json["has_more"] == false {
            break;
        }
        cursor = a.json["cursor"].as_str().unwrap_or_default().to_string();
    }
    let in_reports = fake
        .entries()
        .iter()
        .filter(|e| e.path_lower.starts_with("/reports/"))
        .count();
    assert_eq!(all.len(), in_reports);

    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "x", "options": {"path": "/Missing"}}),
        )
        .await?;
    assert_eq!(
        (a.status, a.json["error_summary"].as_str()),
        (409, Some("path/not_found/"))
    );
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "x", "options": {"max_results": 5000}}),
        )
        .await?;
    assert_eq!(a.status, 400);

    // Deleted files, and highlights.
    fake.delete("/Notes/Reading list.txt")?;
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "reading", "options": {"file_status": "deleted"}}),
        )
        .await?;
    assert_eq!(
        a.json["matches"][0]["metadata"]["metadata"][".tag"],
        "deleted"
    );
    let a = client
        .rpc(
            "files/search_v2",
            json!({"query": "lisbon", "match_field_options": {"include_highlights": true}}),
        )
        .await?;
    let spans = &a.json["matches"][0]["highlight_spans"];
    assert!(
        spans
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["is_highlighted"] == true)),
        "{spans}"
    );
    Ok(())
}

#[tokio::test]
async fn received_files_and_shared_links() -> TestResult {
    let fake = FakeDropbox::start(Tree::demo()).await?;
    let client = Client::new(&fake, false).await?;
    let jordan = fake
        .account_by_email("jordan@globex.example")
        .ok_or_else(|| anyhow::anyhow!("jordan"))?;
    let extra =
        fake.add_received_file("Extra notes.md", "# Extra\n\nsynergy", &jordan.account_id)?;

    let a = client
        .rpc("sharing/list_received_files", json!({"limit": 2}))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut got = a.json["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(got.len(), 2);
    let mut cursor = a.json["cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let a = client
            .rpc("sharing/list_received_files/continue", json!({"cursor": c}))
            .await?;
        got.extend(a.json["entries"].as_array().cloned().unwrap_or_default());
        cursor = a.json["cursor"].as_str().map(str::to_string);
    }
    assert_eq!(got.len(), fake.received_files().len());
    let first = &got[0];
    assert_eq!(first["access_type"][".tag"], "viewer");
    assert!(first["id"].as_str().is_some_and(|id| id.starts_with("id:")));
    assert!(first["time_invited"].is_string() && first["policy"].is_object());

    for entry in &got {
        let url = entry["preview_url"].as_str().unwrap_or_default();
        let meta = client
            .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
            .await?;
        assert_eq!(meta.status, 200, "{}", meta.text);
        assert_eq!(meta.json[".tag"], "file");
        assert_eq!(meta.json["id"], entry["id"]);
        assert_eq!(meta.json["url"], url);
        assert!(meta.json["server_modified"].is_string());
        let (status, result, bytes, _) = client
            .download("sharing/get_shared_link_file", json!({"url": url}))
            .await?;
        assert_eq!(status, 200);
        assert_eq!(result["size"], bytes.len());
        let id = entry["id"].as_str().unwrap_or_default();
        assert_eq!(Some(bytes), fake.received_file_bytes(id));
    }
    assert!(got.iter().any(|e| e["id"] == extra.id.as_str()));

    let a = client
        .rpc(
            "sharing/get_shared_link_metadata",
            json!({"url": "https://www.dropbox.com/scl/fi/nope/x.txt?dl=0"}),
        )
        .await?;
    assert_eq!(
        (a.status, a.json["error"][".tag"].as_str()),
        (409, Some("shared_link_not_found"))
    );
    fake.remove_received_file(&extra.id)?;
    let a = client
        .rpc(
            "sharing/get_shared_link_metadata",
            json!({"url": extra.preview_url}),
        )
        .await?;
    assert_eq!(a.status, 409);
    Ok(())
}

#[tokio::test]
async fn member_listings_for_document_level_security() -> TestResult {
    let fake = FakeDropbox::start(Tree::demo()).await?;
    let team = Client::new(&fake, true).await?;
    let user = Client::new(&fake, false).await?;

    // Team routes need a team token; user routes with a team token need Select-User.
    let a = user.rpc("team/members/list_v2", json!({})).await?;
    assert_eq!(a.status, 400);
    let a = team.rpc("files/list_folder", json!({"path": ""})).await?;
    assert_eq!(a.status, 400);
    assert!(a.text.contains("Dropbox-API-Select-User"));

    let a = team
        .rpc("team/token/get_authenticated_admin", Value::Null)
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let admin = &a.json["admin_profile"];
    assert_eq!(admin["email"], "alex.doe@acme.example");
    assert_eq!(admin["root_folder_id"], fake.root_namespace_id().as_str());
    let member_id = admin["team_member_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let admin_account = admin["account_id"].as_str().unwrap_or_default().to_string();

    // team/members/list_v2 paginated.
    let a = team
        .rpc("team/members/list_v2", json!({"limit": 3}))
        .await?;
    assert_eq!(a.json["has_more"], true);
    let mut members = a.json["members"].as_array().cloned().unwrap_or_default();
    let c = a.json["cursor"].as_str().unwrap_or_default();
    let a = team
        .rpc("team/members/list/continue_v2", json!({"cursor": c}))
        .await?;
    assert_eq!(a.json["has_more"], false);
    members.extend(a.json["members"].as_array().cloned().unwrap_or_default());
    assert_eq!(members.len(), 4);
    let carol = members
        .iter()
        .find(|m| m["profile"]["email"] == "carol.jones@acme.example")
        .ok_or_else(|| anyhow::anyhow!("carol"))?;
    assert_eq!(carol["profile"]["status"][".tag"], "active");
    assert_eq!(carol["profile"]["name"]["display_name"], "Carol Jones");
    assert!(carol["profile"]["joined_on"].is_string());
    let finance = fake
        .groups()
        .into_iter()
        .find(|g| g.name == "Finance")
        .ok_or_else(|| anyhow::anyhow!("finance"))?;
    assert!(
        carol["profile"]["groups"]
            .as_array()
            .is_some_and(|g| g.contains(&json!(finance.group_id)))
    );
    let a = team.rpc("team/groups/list", json!({})).await?;
    assert_eq!(a.json["groups"].as_array().map(Vec::len), Some(3));
    let a = team
        .rpc(
            "team/groups/members/list",
            json!({"group": {".tag": "group_id", "group_id": finance.group_id}}),
        )
        .await?;
    assert_eq!(
        a.json["members"][0]["profile"]["email"],
        "carol.jones@acme.example"
    );
    let a = team
        .rpc("team/team_folder/list", json!({"limit": 10}))
        .await?;
    let folders: Vec<&str> = a.json["team_folders"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(folders, ["Engineering", "Company"]);

    // Acting as the admin.
    let admin_client = team.with("Dropbox-API-Select-User", &member_id);
    let a = admin_client
        .rpc("users/get_current_account", Value::Null)
        .await?;
    assert_eq!(a.json["account_id"], admin_account.as_str());

    // A file shared with a member and an invitee.
    let q3 = "/Reports/Q3 quarterly revenue.txt";
    let a = admin_client
        .rpc(
            "sharing/list_file_members",
            json!({"file": q3, "include_inherited": true}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let users: Vec<(&str, &str)> = a.json["users"]
        .as_array()
        .map(|u| {
            u.iter()
                .map(|x| {
                    (
                        x["user"]["email"].as_str().unwrap_or(""),
                        x["access_type"][".tag"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        users,
        [
            ("alex.doe@acme.example", "owner"),
            ("carol.jones@acme.example", "viewer")
        ]
    );
    assert_eq!(
        a.json["invitees"][0]["invitee"]["email"],
        "auditor@kpmg.example"
    );
    assert!(
        a.json["users"][1]["user"]["account_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("dbid:"))
    );

    // Paging with a small limit.
    let a = admin_client
        .rpc("sharing/list_file_members", json!({"file": q3, "limit": 1}))
        .await?;
    assert_eq!(a.json["users"].as_array().map(Vec::len), Some(1));
    let c = a.json["cursor"].as_str().unwrap_or_default();
    let b = admin_client
        .rpc("sharing/list_file_members/continue", json!({"cursor": c}))
        .await?;
    assert_eq!(
        b.json["users"][0]["user"]["email"],
        "carol.jones@acme.example"
    );

    // A file inside a shared folder inherits the folder's members.
    let budget = "/Shared Projects/Budget 2025.csv";
    let a = admin_client
        .rpc(
            "sharing/list_file_members",
            json!({"file": budget, "include_inherited": true}),
        )
        .await?;
    let bob = a.json["users"]
        .as_array()
        .and_then(|u| {
            u.iter()
                .find(|x| x["user"]["email"] == "bob.smith@acme.example")
                .cloned()
        })
        .ok_or_else(|| anyhow::anyhow!("bob: {}", a.text))?;
    assert_eq!(bob["is_inherited"], true);
    assert_eq!(
        a.json["groups"][0]["group"]["group_id"],
        finance.group_id.as_str()
    );

    // Batch: no inherited members, results keyed by the file as given.
    let budget_id = fake.entry(budget).map(|e| e.id).unwrap_or_default();
    let a = admin_client
        .rpc(
            "sharing/list_file_members/batch",
            json!({"files": [q3, budget_id, "id:nope"]}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json[0]["file"], q3);
    assert_eq!(a.json[0]["result"][".tag"], "result");
    assert_eq!(a.json[0]["result"]["member_count"], 3);
    assert_eq!(a.json[1]["result"]["members"]["users"], json!([]));
    assert_eq!(a.json[2]["result"][".tag"], "access_error");

    // Folder members by shared_folder_id (from the listing).
    let meta = admin_client
        .rpc("files/get_metadata", json!({"path": "/Shared Projects"}))
        .await?;
    let sfid = meta.json["shared_folder_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(meta.json["sharing_info"]["shared_folder_id"], sfid.as_str());
    let file_meta = admin_client
        .rpc("files/get_metadata", json!({"path": budget}))
        .await?;
    assert_eq!(file_meta.json["parent_shared_folder_id"], sfid.as_str());
    assert_eq!(
        file_meta.json["sharing_info"]["parent_shared_folder_id"],
        sfid.as_str()
    );
    let a = admin_client
        .rpc(
            "sharing/list_folder_members",
            json!({"shared_folder_id": sfid, "limit": 1}),
        )
        .await?;
    assert_eq!(a.json["users"][0]["access_type"][".tag"], "owner");
    let c = a.json["cursor"].as_str().unwrap_or_default();
    let b = admin_client
        .rpc("sharing/list_folder_members/continue", json!({"cursor": c}))
        .await?;
    assert_eq!(
        b.json["users"][0]["user"]["email"],
        "bob.smith@acme.example"
    );
    let a = admin_client
        .rpc(
            "sharing/list_folder_members",
            json!({"shared_folder_id": "999"}),
        )
        .await?;
    assert_eq!(
        (a.status, a.json["error_summary"].as_str()),
        (409, Some("access_error/invalid_id/"))
    );

    // Test-API sharing changes show up.
    fake.add_file_member(q3, Member::group(&finance.group_id, Access::Editor))?;
    fake.remove_file_member(q3, &Principal::Email("auditor@kpmg.example".into()))?;
    let a = admin_client
        .rpc("sharing/list_file_members", json!({"file": q3}))
        .await?;
    assert_eq!(a.json["invitees"], json!([]));
    assert_eq!(a.json["groups"][0]["access_type"][".tag"], "editor");
    Ok(())
}

#[tokio::test]
async fn path_root_selects_team_space_and_namespaces() -> TestResult {
    let fake = FakeDropbox::start(Tree::demo()).await?;
    let team = Client::new(&fake, true).await?;
    let admin_id = fake.admin().team_member_id.unwrap_or_default();
    let alex = team.with("Dropbox-API-Select-User", &admin_id);

    // Home listing: no team folders.
    let (pages, _) = alex
        .list_all(json!({"path": "", "recursive": true}))
        .await?;
    let home = paths(&entries(&pages));
    assert!(home.contains(&"/reports/q3 quarterly revenue.txt".to_string()));
    assert!(!home.iter().any(|p| p.starts_with("/engineering")));
    assert_eq!(home.len(), fake.entries().len());

    // Team space root: team folders plus the member's own folder.
    let root = fake.root_namespace_id();
    let rooted = Client {
        headers: vec![
            ("Dropbox-API-Select-User".into(), admin_id.clone()),
            (
                "Dropbox-API-Path-Root".into(),
                json!({".tag": "root", "root": root}).to_string(),
            ),
        ],
        ..Client::new(&fake, true).await?
    };
    let (pages, _) = rooted
        .list_all(json!({"path": "", "recursive": true}))
        .await?;
    let all = entries(&pages);
    let team_paths = paths(&all);
    assert!(team_paths.contains(&"/engineering/architecture overview.md".to_string()));
    assert!(team_paths.contains(&"/alex doe/reports/q3 quarterly revenue.txt".to_string()));
    assert!(!team_paths.iter().any(|p| p.starts_with("/bob smith")));
    assert_eq!(team_paths.len(), fake.entries_in(&root).len());
    let eng = all
        .iter()
        .find(|e| e["path_lower"] == "/engineering")
        .ok_or_else(|| anyhow::anyhow!("engineering"))?;
    let eng_ns = fake
        .team_folder_namespace_id("Engineering")
        .unwrap_or_default();
    assert_eq!(eng["shared_folder_id"], eng_ns.as_str());
    let doc = all
        .iter()
        .find(|e| e["path_lower"] == "/engineering/on-call runbook.md")
        .ok_or_else(|| anyhow::anyhow!("runbook"))?;
    assert_eq!(doc["parent_shared_folder_id"], eng_ns.as_str());
    let (status, _, body, _) = rooted
        .download(
            "files/download",
            json!({"path": "/Engineering/On-call runbook.md"}),
        )
        .await?;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Acknowledge the page"));

    // Rooted at a team folder namespace (what Elastic does with team_folder_id).
    let in_eng = Client {
        headers: vec![
            ("Dropbox-API-Select-User".into(), admin_id.clone()),
            (
                "Dropbox-API-Path-Root".into(),
                json!({".tag": "namespace_id", "namespace_id": eng_ns}).to_string(),
            ),
        ],
        ..Client::new(&fake, true).await?
    };
    let (pages, _) = in_eng
        .list_all(json!({"path": "", "recursive": true}))
        .await?;
    let eng_paths = paths(&entries(&pages));
    assert!(eng_paths.contains(&"/architecture overview.md".to_string()));
    assert_eq!(eng_paths.len(), fake.entries_in(&eng_ns).len());

    // ns: paths work without the header too.
    let a = alex
        .rpc("files/list_folder", json!({"path": format!("ns:{eng_ns}")}))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);

    // Wrong root → 422 invalid_root; a namespace Carol cannot reach → 422 no_permission.
    let wrong = alex.with("Dropbox-API-Path-Root", r#"{".tag": "root", "root": "42"}"#);
    let a = wrong.rpc("files/list_folder", json!({"path": ""})).await?;
    assert_eq!(a.status, 422);
    assert_eq!(a.json["error"][".tag"], "invalid_root");
    assert_eq!(
        a.json["error"]["invalid_root"]["root_namespace_id"],
        root.as_str()
    );
    let carol = fake
        .account_by_email("carol.jones@acme.example")
        .and_then(|a| a.team_member_id)
        .unwrap_or_default();
    let carol_eng = Client::new(&fake, true)
        .await?
        .with("Dropbox-API-Select-User", &carol)
        .with(
            "Dropbox-API-Path-Root",
            &json!({".tag": "namespace_id", "namespace_id": eng_ns}).to_string(),
        );
    let a = carol_eng
        .rpc("files/list_folder", json!({"path": ""}))
        .await?;
    assert_eq!(
        (a.status, a.json["error_summary"].as_str()),
        (422, Some("no_permission/"))
    );
    let garbage = Client::new(&fake, false)
        .await?
        .with("Dropbox-API-Path-Root", "{nope");
    assert_eq!(
        garbage
            .rpc("files/list_folder", json!({"path": ""}))
            .await?
            .status,
        400
    );

    // Carol's home is empty; with the root path root she sees Company but not Engineering.
    let carol_root = Client::new(&fake, true)
        .await?
        .with("Dropbox-API-Select-User", &carol)
        .with(
            "Dropbox-API-Path-Root",
            &json!({".tag": "root", "root": root}).to_string(),
        );
    let (pages, _) = carol_root.list_all(json!({"path": ""})).await?;
    let top = paths(&entries(&pages));
    assert_eq!(top, ["/carol jones", "/company"]);

    // Team-folder changes reach cursors rooted there, not home cursors.
    let (_, home_cursor) = alex
        .list_all(json!({"path": "", "recursive": true}))
        .await?;
    let (_, eng_cursor) = in_eng
        .list_all(json!({"path": "", "recursive": true}))
        .await?;
    fake.add_file(&format!("ns:{eng_ns}/New RFC.md"), "# RFC\n")?;
    let a = alex
        .rpc("files/list_folder/continue", json!({"cursor": home_cursor}))
        .await?;
    assert_eq!(a.json["entries"], json!([]));
    let a = in_eng
        .rpc("files/list_folder/continue", json!({"cursor": eng_cursor}))
        .await?;
    assert_eq!(
        paths(a.json["entries"].as_array().map_or(&[][..], Vec::as_slice)),
        ["/new rfc.md"]
    );
    Ok(())
}

#[tokio::test]
async fn fault_plan_429_then_success() -> TestResult {
    let fake = FakeDropbox::start(Tree::small()).await?;
    let client = Client::new(&fake, false).await?;
    fake.faults()
        .add("/2/files/list_folder", 1, Fault::too_many_requests(2));
    let a = client.rpc("files/list_folder", json!({"path": ""})).await?;
    assert_eq!(a.status, 429);
    assert_eq!(a.json["error"][".tag"], "too_many_requests");
    let b = client.rpc("files/list_folder", json!({"path": ""})).await?;
    assert_eq!(b.status, 200);
    assert!(fake.faults().exhausted());
    assert_eq!(fake.faults().count("/2/files/list_folder"), 2);
    assert_eq!(fake.faults().count("/oauth2/token"), 1);

    fake.faults()
        .add("/2/files/download", 1, Fault::server_error(503));
    let (status, _, _, _) = client
        .download("files/download", json!({"path": fake.entries().iter().find(|e| !e.is_folder && !e.is_paper).map(|e| e.id.clone()).unwrap_or_default()}))
        .await?;
    assert_eq!(status, 503);
    Ok(())
}

#[tokio::test]
async fn longpoll_wakes_on_changes() -> TestResult {
    let fake = FakeDropbox::start(Tree::empty()).await?;
    let client = Client::new(&fake, false).await?;
    let a = client
        .rpc(
            "files/list_folder/get_latest_cursor",
            json!({"path": "", "recursive": true}),
        )
        .await?;
    let cursor = a.json["cursor"].as_str().unwrap_or_default().to_string();
    let url = format!("{}files/list_folder/longpoll", fake.api_url());
    let poll = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .body(json!({"cursor": cursor, "timeout": 30}).to_string())
            .send()
            .await?;
        answer(resp).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = Instant::now();
    fake.add_file("/hello.txt", "hi")?;
    let a = poll.await??;
    assert_eq!(a.json["changes"], true);
    assert!(started.elapsed().as_secs() < 5);
    Ok(())
}

#[tokio::test]
async fn trees_are_deterministic_and_large_is_fast() -> TestResult {
    let a = FakeDropbox::start(Tree::small()).await?;
    let b = FakeDropbox::start(Tree::small()).await?;
    assert_eq!(a.entries(), b.entries());
    assert_eq!(a.entries().len(), 100);
    let first_file = a
        .entries()
        .into_iter()
        .find(|e| !e.is_folder && !e.is_paper && e.size < 10_000)
        .ok_or_else(|| anyhow::anyhow!("file"))?;
    assert_eq!(
        a.file_bytes(&first_file.path_display),
        b.file_bytes(&first_file.path_display)
    );

    let start = Instant::now();
    let tree = Tree::large();
    eprintln!("large tree generated in {:?}", start.elapsed());
    let large = FakeDropbox::start(tree).await?;
    let built = start.elapsed();
    let client = Client::new(&large, false).await?;
    let page = client
        .rpc("files/list_folder", json!({"path": "", "recursive": true}))
        .await?;
    assert_eq!(page.json["entries"].as_array().map(Vec::len), Some(2000));
    assert_eq!(page.json["has_more"], true);
    eprintln!(
        "large tree built in {built:?}, first page after {:?}",
        start.elapsed()
    );
    assert!(
        built.as_secs() < 10,
        "building the large tree took {built:?}"
    );
    Ok(())
}
