//! End-to-end tests of the fake over real HTTP, with a client that follows redirects.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use reqwest::StatusCode;
use serde_json::Value;

use super::{Collaborator, FakeBox, ItemKind, Tree, rate_limited};

type TestResult = anyhow::Result<()>;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap_or_default()
}

async fn token_request(
    fake: &FakeBox,
    form: &[(&str, &str)],
) -> anyhow::Result<(StatusCode, Value)> {
    let response = http().post(fake.token_url()).form(form).send().await?;
    let status = response.status();
    Ok((status, response.json().await?))
}

/// Exchanges the current refresh token; returns the access token.
async fn free_token(fake: &FakeBox) -> anyhow::Result<String> {
    let (status, body) = token_request(
        fake,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &fake.client_id()),
            ("client_secret", &fake.client_secret()),
            ("refresh_token", &fake.refresh_token()),
        ],
    )
    .await?;
    anyhow::ensure!(status == StatusCode::OK, "refresh failed: {body}");
    Ok(body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn enterprise_token(fake: &FakeBox) -> anyhow::Result<String> {
    let (status, body) = token_request(
        fake,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &fake.client_id()),
            ("client_secret", &fake.client_secret()),
            ("box_subject_type", "enterprise"),
            ("box_subject_id", &fake.enterprise_id()),
        ],
    )
    .await?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "client_credentials failed: {body}"
    );
    Ok(body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// GET `<api>/path` with a bearer token and optional `As-User`.
async fn get(
    fake: &FakeBox,
    token: &str,
    as_user: Option<&str>,
    path: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = http()
        .get(format!("{}{path}", fake.api_url()))
        .bearer_auth(token);
    if let Some(user) = as_user {
        request = request.header("As-User", user);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn ids(entries: &Value) -> Vec<String> {
    entries["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn names(listing: &Value) -> Vec<String> {
    listing["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// All entries of a folder via offset pagination.
async fn list_offset(
    fake: &FakeBox,
    token: &str,
    as_user: Option<&str>,
    folder: &str,
    limit: usize,
    fields: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let (status, page) = get(
            fake,
            token,
            as_user,
            &format!("/folders/{folder}/items?fields={fields}&offset={offset}&limit={limit}"),
        )
        .await?;
        anyhow::ensure!(status == StatusCode::OK, "listing {folder} failed: {page}");
        let total = page["total_count"].as_u64().unwrap_or(0) as usize;
        out.extend(page["entries"].as_array().cloned().unwrap_or_default());
        offset += limit;
        if offset >= total {
            return Ok(out);
        }
    }
}

/// All entries of a folder via marker pagination.
async fn list_marker(
    fake: &FakeBox,
    token: &str,
    folder: &str,
    limit: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut marker = String::new();
    loop {
        let (status, page) = get(
            fake,
            token,
            None,
            &format!(
                "/folders/{folder}/items?usemarker=true&limit={limit}&marker={marker}&fields=name"
            ),
        )
        .await?;
        anyhow::ensure!(status == StatusCode::OK, "marker listing failed: {page}");
        anyhow::ensure!(
            page.get("total_count").is_none(),
            "marker pages have no total_count"
        );
        out.extend(page["entries"].as_array().cloned().unwrap_or_default());
        match page["next_marker"].as_str() {
            Some(next) => marker = next.to_string(),
            None => return Ok(out),
        }
    }
}

async fn events_since(
    fake: &FakeBox,
    token: &str,
    as_user: Option<&str>,
    position: u64,
    stream_type: &str,
) -> anyhow::Result<Value> {
    let (status, body) = get(
        fake,
        token,
        as_user,
        &format!("/events?stream_position={position}&stream_type={stream_type}&limit=500"),
    )
    .await?;
    anyhow::ensure!(status == StatusCode::OK, "events failed: {body}");
    Ok(body)
}

fn event_types(events: &Value) -> Vec<String> {
    events["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["event_type"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_old_ones_die() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let first = fake.refresh_token();
    let form = |refresh: &str| {
        vec![
            ("grant_type", "refresh_token".to_string()),
            ("client_id", fake.client_id()),
            ("client_secret", fake.client_secret()),
            ("refresh_token", refresh.to_string()),
        ]
    };
    let response = http()
        .post(fake.token_url())
        .form(&form(&first))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["restricted_to"], serde_json::json!([]));
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0));
    let second = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(second, first);
    assert_eq!(fake.refresh_token(), second);

    // Reusing the spent token fails exactly like Box.
    let response = http()
        .post(fake.token_url())
        .form(&form(&first))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "Invalid refresh token");

    // The new one works once.
    let response = http()
        .post(fake.token_url())
        .form(&form(&second))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);

    // Wrong client secret.
    let mut bad = form(&fake.refresh_token());
    bad[2].1 = "nope".into();
    let response = http().post(fake.token_url()).form(&bad).send().await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_client");

    // Missing grant type, and a JSON body instead of a form.
    let (status, body) = token_request(&fake, &[("client_id", "x")]).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let response = http()
        .post(fake.token_url())
        .json(&serde_json::json!({"grant_type": "refresh_token"}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let grants = fake.grants();
    assert_eq!(grants.refresh_token, 2);
    assert_eq!(grants.rejected, 3);

    fake.revoke_refresh_token();
    let response = http()
        .post(fake.token_url())
        .form(&form(&second))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let renewed = fake.reauthorize();
    let response = http()
        .post(fake.token_url())
        .form(&form(&renewed))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn client_credentials_act_as_the_service_account_and_list_users() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let token = enterprise_token(&fake).await?;
    let (status, me) = get(&fake, &token, None, "/users/me").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], fake.service_account_id());
    // The service account owns nothing: a crawl must use As-User.
    let (_, root) = get(&fake, &token, None, "/folders/0/items").await?;
    assert_eq!(root["total_count"], 0);

    let (status, users) = get(&fake, &token, None, "/users?limit=2&user_type=all").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["total_count"], 3);
    assert_eq!(users["entries"].as_array().map(Vec::len), Some(2));
    let (_, rest) = get(&fake, &token, None, "/users?offset=2&limit=2&fields=login").await?;
    assert_eq!(rest["entries"][0]["login"], "alan@example.com");
    assert!(rest["entries"][0].get("name").is_none());
    let (_, filtered) = get(&fake, &token, None, "/users?filter_term=gra").await?;
    assert_eq!(ids(&filtered), vec!["11446499".to_string()]);
    // Marker pagination: no total_count, a marker while users remain.
    let (_, first) = get(&fake, &token, None, "/users?usemarker=true&limit=2").await?;
    assert!(first.get("total_count").is_none());
    let marker = first["next_marker"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, second) = get(
        &fake,
        &token,
        None,
        &format!("/users?usemarker=true&limit=2&marker={marker}"),
    )
    .await?;
    assert_eq!(ids(&second), vec!["11446500".to_string()]);
    assert!(second["next_marker"].is_null());
    let (status, _) = get(&fake, &token, None, "/users?usemarker=true&marker=zz").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, groups) = get(&fake, &token, None, "/groups").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups["total_count"], 2);
    let (_, members) = get(&fake, &token, None, "/groups/7800101/memberships").await?;
    assert_eq!(members["total_count"], 2);
    assert_eq!(members["entries"][0]["user"]["id"], "11446499");
    let (_, memberships) = get(&fake, &token, None, "/users/11446500/memberships").await?;
    assert_eq!(memberships["entries"][0]["group"]["name"], "Engineering");

    // Wrong enterprise id.
    let (status, body) = token_request(
        &fake,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &fake.client_id()),
            ("client_secret", &fake.client_secret()),
            ("box_subject_type", "enterprise"),
            ("box_subject_id", "999"),
        ],
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(fake.grants().client_credentials, 1);

    // A free (user) token may not list the enterprise's users.
    let free = free_token(&fake).await?;
    let (status, body) = get(&fake, &free, None, "/users").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["type"], "error");
    assert_eq!(body["status"], 403);
    assert_eq!(body["code"], "access_denied_insufficient_permissions");
    Ok(())
}

#[tokio::test]
async fn as_user_shows_each_users_tree_with_shared_items_in_several() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let token = enterprise_token(&fake).await?;
    let users: Vec<String> = fake
        .users()
        .into_iter()
        .filter(|u| !u.service_account)
        .map(|u| u.id)
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut union = BTreeSet::new();
    for user in &users {
        let (status, me) = get(&fake, &token, Some(user), "/users/me").await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&me["id"], user);
        // Crawl the user's whole tree.
        let mut stack = vec!["0".to_string()];
        let mut found = BTreeSet::new();
        while let Some(folder) = stack.pop() {
            for entry in list_offset(&fake, &token, Some(user), &folder, 1000, "name,type").await? {
                let id = entry["id"].as_str().unwrap_or_default().to_string();
                if entry["type"] == "folder" {
                    stack.push(id.clone());
                }
                found.insert(id);
            }
        }
        let expected: BTreeSet<String> = fake
            .items_for_user(user)?
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(found, expected, "tree of {user}");
        for id in &found {
            *seen.entry(id.clone()).or_default() += 1;
        }
        union.extend(found);
    }
    assert!(
        seen.values().any(|&n| n >= 2),
        "some ids must be shared between users"
    );
    let enterprise: BTreeSet<String> = fake
        .items_for_enterprise()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(union, enterprise);

    // Ada's root shows Grace's shared folder and Alan's shared file.
    let (_, root) = get(
        &fake,
        &token,
        Some(&users[0]),
        "/folders/0/items?fields=name,owned_by",
    )
    .await?;
    let shared: Vec<&Value> = root["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["owned_by"]["id"] != users[0].as_str())
                .collect()
        })
        .unwrap_or_default();
    let shared_names: BTreeSet<&str> = shared.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        shared_names,
        BTreeSet::from(["Budget FY25.csv", "Design Reviews"])
    );

    // As-User needs an enterprise token and a real managed user.
    let free = free_token(&fake).await?;
    let (status, _) = get(&fake, &free, Some(&users[1]), "/folders/0/items").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get(&fake, &token, Some("123"), "/folders/0/items").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");
    let (status, _) = get(
        &fake,
        &token,
        Some(&fake.service_account_id()),
        "/folders/0/items",
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // As a user, admin endpoints are off limits.
    let (status, _) = get(&fake, &token, Some(&users[0]), "/users").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn medium_tree_lists_exactly_with_offsets_and_markers() -> TestResult {
    let fake = FakeBox::start(Tree::medium()).await?;
    let token = free_token(&fake).await?;
    let expected: BTreeMap<String, super::BoxItem> = fake
        .items()
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    assert!(
        expected.len() > 8_000,
        "medium tree has {} items for Ada",
        expected.len()
    );

    // Full crawl with offset pagination, rebuilding paths from the listing itself.
    let mut found = BTreeMap::new();
    let mut stack = vec![("0".to_string(), String::from("/"))];
    let mut requests = 0;
    while let Some((folder, prefix)) = stack.pop() {
        requests += 1;
        for entry in list_offset(
            &fake,
            &token,
            None,
            &folder,
            1000,
            "name,size,modified_at,type,parent",
        )
        .await?
        {
            let id = entry["id"].as_str().unwrap_or_default().to_string();
            let name = entry["name"].as_str().unwrap_or_default();
            let path = format!("{prefix}{name}");
            assert_eq!(entry["parent"]["id"], folder.as_str());
            if entry["type"] == "folder" {
                stack.push((id.clone(), format!("{path}/")));
            }
            let previous = found.insert(
                id.clone(),
                (path, entry["size"].as_u64(), entry["modified_at"].clone()),
            );
            assert!(previous.is_none(), "{id} listed twice");
        }
    }
    assert!(requests > 100);
    assert_eq!(found.len(), expected.len());
    for (id, (path, size, modified)) in &found {
        let want = &expected[id];
        assert_eq!(path, &want.path);
        assert_eq!(*size, Some(want.size));
        assert_eq!(modified, &want.modified_at);
    }

    // The 1 500-file folder: offset pages and marker pages agree, in order, with odd page sizes.
    let scans = fake.find_path("/Scans 2023").unwrap_or_default();
    let by_offset: Vec<Value> = list_offset(&fake, &token, None, &scans, 1000, "name").await?;
    assert_eq!(by_offset.len(), 1_500);
    let by_marker = list_marker(&fake, &token, &scans, 1000).await?;
    let by_small_marker = list_marker(&fake, &token, &scans, 7).await?;
    let id_list = |v: &[Value]| v.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    assert_eq!(id_list(&by_offset), id_list(&by_marker));
    assert_eq!(id_list(&by_offset), id_list(&by_small_marker));
    let names: Vec<&str> = by_offset
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted, "default order is type then name");

    // Limits: default 100, clamped at 1000; offsets past 10 000 are rejected.
    let (_, page) = get(&fake, &token, None, &format!("/folders/{scans}/items")).await?;
    assert_eq!(page["limit"], 100);
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(100));
    assert_eq!(page["order"][0]["by"], "type");
    let (_, page) = get(
        &fake,
        &token,
        None,
        &format!("/folders/{scans}/items?limit=5000"),
    )
    .await?;
    assert_eq!(page["limit"], 1000);
    let (status, body) = get(
        &fake,
        &token,
        None,
        &format!("/folders/{scans}/items?offset=10001"),
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["context_info"]["errors"][0]["name"], "offset");
    let (_, past_end) = get(
        &fake,
        &token,
        None,
        &format!("/folders/{scans}/items?offset=2000"),
    )
    .await?;
    assert_eq!(past_end["total_count"], 1_500);
    assert_eq!(past_end["entries"].as_array().map(Vec::len), Some(0));
    // Sorting by size, descending.
    let (_, by_size) = get(
        &fake,
        &token,
        None,
        &format!("/folders/{scans}/items?sort=size&direction=DESC&fields=size"),
    )
    .await?;
    let sizes: Vec<u64> = by_size["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["size"].as_u64()).collect())
        .unwrap_or_default();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
    Ok(())
}

#[tokio::test]
async fn fields_select_exactly_what_was_asked() -> TestResult {
    let fake = FakeBox::start(Tree::demo()).await?;
    let token = free_token(&fake).await?;
    let contracts = fake.find_path("/Contracts").unwrap_or_default();
    let key_set = |v: &Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<BTreeSet<_>>())
            .unwrap_or_default()
    };

    let (_, page) = get(
        &fake,
        &token,
        None,
        &format!("/folders/{contracts}/items?fields=name,size"),
    )
    .await?;
    for entry in page["entries"].as_array().cloned().unwrap_or_default() {
        assert_eq!(
            key_set(&entry),
            BTreeSet::from(["type", "id", "etag", "name", "size"].map(String::from))
        );
    }
    // Without fields: mini representations.
    let (_, page) = get(&fake, &token, None, &format!("/folders/{contracts}/items")).await?;
    let entries = page["entries"].as_array().cloned().unwrap_or_default();
    let folder = entries
        .iter()
        .find(|e| e["type"] == "folder")
        .cloned()
        .unwrap_or_default();
    let file = entries
        .iter()
        .find(|e| e["type"] == "file")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        key_set(&folder),
        BTreeSet::from(["type", "id", "etag", "sequence_id", "name"].map(String::from))
    );
    assert_eq!(
        key_set(&file),
        BTreeSet::from(
            [
                "type",
                "id",
                "etag",
                "sequence_id",
                "name",
                "sha1",
                "file_version"
            ]
            .map(String::from)
        )
    );

    // Every field Elastic asks for, plus path_collection and extension.
    let all = "name,modified_at,size,type,sequence_id,etag,created_at,content_created_at,content_modified_at,description,created_by,modified_by,owned_by,parent,item_status,path_collection,shared_link,extension";
    let msa = fake
        .find_path("/Contracts/Acme master services agreement.txt")
        .unwrap_or_default();
    let (status, item) = get(
        &fake,
        &token,
        None,
        &format!("/files/{msa}?fields={all},bogus"),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert!(item.get("bogus").is_none());
    assert_eq!(item["extension"], "txt");
    assert_eq!(item["item_status"], "active");
    assert_eq!(item["owned_by"]["login"], "ada@example.com");
    assert_eq!(item["parent"]["id"], contracts.as_str());
    assert_eq!(item["path_collection"]["total_count"], 2);
    assert_eq!(item["path_collection"]["entries"][0]["name"], "All Files");
    assert_eq!(item["path_collection"]["entries"][1]["name"], "Contracts");
    assert!(item["shared_link"].is_null());
    let modified = item["modified_at"].as_str().unwrap_or_default();
    assert!(
        modified.ends_with("-08:00") && modified.len() == 25,
        "{modified}"
    );
    assert_eq!(
        item["size"].as_u64(),
        fake.file_content(&msa).map(|b| b.len() as u64)
    );

    // Standard file and folder objects.
    let (_, standard) = get(&fake, &token, None, &format!("/files/{msa}")).await?;
    assert!(
        standard["path_collection"].is_object() && standard["file_version"]["sha1"].is_string()
    );
    let (_, root) = get(&fake, &token, None, "/folders/0").await?;
    assert_eq!(root["id"], "0");
    assert_eq!(root["name"], "All Files");
    assert!(root["parent"].is_null());
    assert!(
        root["item_collection"]["total_count"]
            .as_u64()
            .is_some_and(|n| n > 5)
    );

    // Errors: unknown ids, wrong type, bad parameters.
    let (status, body) = get(&fake, &token, None, "/folders/123/items").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["type"], "error");
    let (status, _) = get(&fake, &token, None, &format!("/folders/{msa}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        "limit=abc",
        "limit=-3",
        "offset=x",
        "usemarker=true&marker=zz",
        "sort=colour",
        "direction=UP",
    ] {
        let (status, body) = get(&fake, &token, None, &format!("/folders/0/items?{bad}")).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["code"], "bad_request", "{bad}");
    }
    let response = http()
        .get(format!("{}/nope", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = http()
        .delete(format!("{}/folders/0", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

#[tokio::test]
async fn content_redirects_to_a_download_url() -> TestResult {
    let fake = FakeBox::start(Tree::demo()).await?;
    let token = free_token(&fake).await?;
    let msa = fake
        .find_path("/Contracts/Acme master services agreement.txt")
        .unwrap_or_default();

    // Without following redirects: a 302 to the same host and port.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = no_redirects
        .get(format!("{}/files/{msa}/content", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        location.starts_with(&format!("{}/dl/", fake.base_url())),
        "{location}"
    );

    // Following it (no Authorization needed on the download URL).
    let response = http()
        .get(format!("{}/files/{msa}/content", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await?;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("indemnify"));
    assert_eq!(Some(bytes.to_vec()), fake.file_content(&msa));
    let (_, info) = get(&fake, &token, None, &format!("/files/{msa}?fields=sha1")).await?;
    let mut sha = super::util::Sha1::new();
    sha.update(&bytes);
    assert_eq!(info["sha1"], sha.hex_digest());

    // A tampered download URL is refused; trashed files do not redirect at all.
    let response = http().get(format!("{location}0")).send().await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    fake.trash(&msa)?;
    let response = http()
        .get(format!("{}/files/{msa}/content", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = http().get(&location).send().await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The big file is reported by size, and only generated when downloaded.
    let video = fake
        .items()
        .into_iter()
        .find(|i| i.name.ends_with(".mp4"))
        .map(|i| (i.id, i.size))
        .unwrap_or_default();
    assert!(video.1 > 10 * 1024 * 1024);
    let response = http()
        .get(format!("{}/files/{}/content", fake.api_url(), video.0))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.bytes().await?.len() as u64, video.1);
    Ok(())
}

#[tokio::test]
async fn events_since_a_stored_position_are_exact() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let token = free_token(&fake).await?;
    let (_, now) = get(&fake, &token, None, "/events?stream_position=now").await?;
    assert_eq!(now["chunk_size"], 0);
    assert_eq!(now["entries"], serde_json::json!([]));
    let start = now["next_stream_position"].as_u64().unwrap_or_default();
    assert_eq!(start, fake.stream_position());
    // Nothing happened yet.
    let quiet = events_since(&fake, &token, None, start, "all").await?;
    assert_eq!(quiet["chunk_size"], 0);
    assert_eq!(quiet["next_stream_position"], start);

    let folder = fake.create_folder("0", "Incoming")?;
    let file = fake.create_file(&folder, "hello world.txt", "hello")?;
    fake.edit_file(&file, "hello, again")?;
    fake.rename(&file, "greeting.txt")?;
    let other = fake.create_folder("0", "Elsewhere")?;
    fake.move_item(&file, &other)?;
    fake.trash(&file)?;
    fake.restore(&file)?;
    let copy = fake.copy_item(&file, &folder)?;
    fake.delete_permanently(&copy)?;

    let events = events_since(&fake, &token, None, start, "changes").await?;
    assert_eq!(
        event_types(&events),
        [
            "ITEM_CREATE",
            "ITEM_UPLOAD",
            "ITEM_UPLOAD",
            "ITEM_RENAME",
            "ITEM_CREATE",
            "ITEM_MOVE",
            "ITEM_TRASH",
            "ITEM_UNDELETE_VIA_TRASH",
            "ITEM_COPY",
            "ITEM_TRASH",
        ]
    );
    let entries = events["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(events["chunk_size"], entries.len());
    let event_ids: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(event_ids.len(), entries.len(), "event ids are unique");
    for entry in &entries {
        assert_eq!(entry["type"], "event");
        assert!(
            entry["created_at"]
                .as_str()
                .is_some_and(|t| t.ends_with("-08:00"))
        );
        assert!(entry["source"]["path_collection"]["entries"].is_array());
    }
    assert_eq!(entries[2]["source"]["size"], 12);
    assert_eq!(entries[3]["source"]["name"], "greeting.txt");
    assert_eq!(entries[5]["source"]["parent"]["id"], other.as_str());
    assert_eq!(
        entries[5]["source"]["path_collection"]["entries"][1]["name"],
        "Elsewhere"
    );
    assert_eq!(entries[6]["source"]["item_status"], "trashed");
    assert_eq!(entries[7]["source"]["item_status"], "active");
    assert_eq!(entries[8]["source"]["id"], copy.as_str());
    assert_eq!(entries[9]["source"]["item_status"], "deleted");

    // Positions are real: reading from the middle returns exactly the rest.
    let middle = entries
        .iter()
        .position(|e| e["event_type"] == "ITEM_MOVE")
        .unwrap_or_default();
    let (_, page) = get(
        &fake,
        &token,
        None,
        &format!("/events?stream_position={start}&stream_type=changes&limit={middle}"),
    )
    .await?;
    assert_eq!(page["chunk_size"], middle);
    let resume = page["next_stream_position"].as_u64().unwrap_or_default();
    let rest = events_since(&fake, &token, None, resume, "changes").await?;
    assert_eq!(event_types(&rest), event_types(&events)[middle..].to_vec());
    let end = rest["next_stream_position"].as_u64().unwrap_or_default();
    assert_eq!(
        events_since(&fake, &token, None, end, "changes").await?["chunk_size"],
        0
    );

    // Downloads reach the owner's `all` stream only.
    let response = http()
        .get(format!("{}/files/{file}/content", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.text().await?, "hello, again");
    assert_eq!(
        event_types(&events_since(&fake, &token, None, end, "all").await?),
        ["ITEM_DOWNLOAD"]
    );
    let changes = events_since(&fake, &token, None, end, "changes").await?;
    assert_eq!(changes["chunk_size"], 0);
    assert!(
        changes["next_stream_position"]
            .as_u64()
            .is_some_and(|p| p > end)
    );

    // The whole history from 0, and bad positions.
    let all = events_since(&fake, &token, None, 0, "all").await?;
    assert_eq!(all["chunk_size"], 11);
    let (status, body) = get(&fake, &token, None, "/events?stream_position=yesterday").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");
    let (status, _) = get(&fake, &token, None, "/events?stream_type=admin_logs").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Trashed and purged items are gone from listings and lookups.
    assert!(!fake.items().iter().any(|i| i.id == copy));
    let (status, body) = get(&fake, &token, None, &format!("/files/{copy}")).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    fake.trash(&other)?;
    let (status, body) = get(&fake, &token, None, &format!("/files/{file}")).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("trashed"))
    );
    let (_, root) = get(
        &fake,
        &token,
        None,
        "/folders/0/items?limit=1000&fields=name",
    )
    .await?;
    assert!(!names(&root).contains(&"Elsewhere".to_string()));
    let (status, trashed) = get(&fake, &token, None, &format!("/folders/{other}/trash")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trashed["item_status"], "trashed");
    Ok(())
}

#[tokio::test]
async fn events_reach_every_user_who_can_see_the_item() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let token = enterprise_token(&fake).await?;
    let start = fake.stream_position();
    // Grace's folder is shared with Ada: both see a new file in it, Alan does not.
    let design = fake
        .items_for_user("11446499")?
        .into_iter()
        .find(|i| i.path == "/Design Reviews")
        .map(|i| i.id)
        .unwrap_or_default();
    let file = fake.create_file_as("11446499", &design, "Spec.md", "# spec")?;
    for (user, count) in [("11446498", 1), ("11446499", 1), ("11446500", 0)] {
        let events = events_since(&fake, &token, Some(user), start, "changes").await?;
        assert_eq!(events["chunk_size"], count, "{user}");
        if count == 1 {
            assert_eq!(events["entries"][0]["source"]["id"], file.as_str());
            assert_eq!(events["entries"][0]["created_by"]["id"], "11446499");
        }
    }
    // Moving it out of the shared folder tells Ada too (she must drop it).
    fake.move_item(&file, "0")?;
    let ada = events_since(&fake, &token, Some("11446498"), start, "changes").await?;
    assert_eq!(event_types(&ada), ["ITEM_UPLOAD", "ITEM_MOVE"]);
    assert!(!fake.items().iter().any(|i| i.id == file));
    Ok(())
}

#[tokio::test]
async fn duplicate_events_share_event_ids_and_arrive_late() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let token = free_token(&fake).await?;
    let start = fake.stream_position();
    fake.enable_duplicate_events(true);
    let a = fake.create_file("0", "a.txt", "a")?;
    fake.trash(&a)?;
    fake.enable_duplicate_events(false);
    let events = events_since(&fake, &token, None, start, "changes").await?;
    assert_eq!(
        event_types(&events),
        ["ITEM_UPLOAD", "ITEM_TRASH", "ITEM_UPLOAD", "ITEM_TRASH"]
    );
    let entries = events["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries[0]["event_id"], entries[2]["event_id"]);
    assert_eq!(entries[1]["event_id"], entries[3]["event_id"]);
    // The late copy is stale: it still says the file is active.
    assert_eq!(entries[2]["source"]["item_status"], "active");
    let unique: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(unique.len(), 2);

    // Off: single delivery again.
    let mark = fake.stream_position();
    fake.create_file("0", "b.txt", "b")?;
    assert_eq!(
        events_since(&fake, &token, None, mark, "changes").await?["chunk_size"],
        1
    );
    Ok(())
}

#[tokio::test]
async fn collaborations_are_listed_on_the_item_and_inherited_in_access() -> TestResult {
    let fake = FakeBox::start(Tree::demo()).await?;
    let token = free_token(&fake).await?;
    let handbook = fake.find_path("/Team Handbook").unwrap_or_default();
    let (status, collabs) = get(
        &fake,
        &token,
        None,
        &format!("/folders/{handbook}/collaborations"),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(collabs["entries"].as_array().map(Vec::len), Some(1));
    let entry = &collabs["entries"][0];
    assert_eq!(entry["type"], "collaboration");
    assert_eq!(entry["status"], "accepted");
    assert_eq!(entry["role"], "viewer");
    assert_eq!(entry["accessible_by"]["type"], "group");
    assert_eq!(entry["accessible_by"]["name"], "Engineering");
    assert_eq!(entry["item"]["id"], handbook.as_str());

    // Files inside inherit the folder's access, but list no collaborations of their own.
    let welcome = fake
        .find_path("/Team Handbook/Welcome.md")
        .unwrap_or_default();
    let (_, direct) = get(
        &fake,
        &token,
        None,
        &format!("/files/{welcome}/collaborations"),
    )
    .await?;
    assert_eq!(direct["entries"], serde_json::json!([]));
    let access = fake
        .access(&welcome)
        .ok_or_else(|| anyhow::anyhow!("no access for {welcome}"))?;
    assert_eq!(access.owner, "11446498");
    assert_eq!(access.users, ["11446498", "11446499", "11446500"]);
    assert_eq!(access.groups, ["7800101"]);
    let enigma = fake
        .items_for_user("11446500")?
        .into_iter()
        .find(|i| i.name.starts_with("Enigma"))
        .map(|i| i.id)
        .unwrap_or_default();
    assert_eq!(
        fake.access(&enigma).map(|a| a.users),
        Some(vec!["11446500".to_string()])
    );
    // Ada cannot see Alan's private file.
    let (status, _) = get(&fake, &token, None, &format!("/files/{enigma}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Adding a collaboration shows up in the API, the event stream and the access expectation.
    let start = fake.stream_position();
    let msa = fake
        .find_path("/Contracts/Acme master services agreement.txt")
        .unwrap_or_default();
    let collab = fake.add_collaboration(&msa, Collaborator::User("11446499".into()))?;
    let (_, listed) = get(&fake, &token, None, &format!("/files/{msa}/collaborations")).await?;
    assert_eq!(ids(&listed), vec![collab.clone()]);
    assert_eq!(
        listed["entries"][0]["accessible_by"]["login"],
        "grace@example.com"
    );
    assert_eq!(
        event_types(&events_since(&fake, &token, None, start, "changes").await?),
        ["COLLAB_ADD_COLLABORATOR"]
    );
    assert!(
        fake.items_for_user("11446499")?
            .iter()
            .any(|i| i.id == msa && i.path == "/Acme master services agreement.txt")
    );
    fake.remove_collaboration(&collab)?;
    assert!(!fake.items_for_user("11446499")?.iter().any(|i| i.id == msa));
    Ok(())
}

#[tokio::test]
async fn expired_tokens_get_box_style_401s() -> TestResult {
    let fake = FakeBox::start(Tree::empty()).await?;
    let token = free_token(&fake).await?;
    let (status, _) = get(&fake, &token, None, "/folders/0/items").await?;
    assert_eq!(status, StatusCode::OK);
    fake.expire_access_tokens();
    let response = http()
        .get(format!("{}/folders/0/items", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        challenge,
        r#"Bearer realm="Service", error="invalid_token", error_description="The access token provided is invalid.""#
    );
    let response = http()
        .get(format!("{}/users/me", fake.api_url()))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A refresh brings access back.
    let token = free_token(&fake).await?;
    let (status, me) = get(&fake, &token, None, "/users/me").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["login"], "ada@example.com");
    Ok(())
}

#[tokio::test]
async fn fault_plan_wraps_every_route() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let token = free_token(&fake).await?;
    fake.faults()
        .add("/2.0/folders/0/items", 1, rate_limited(3));
    let response = http()
        .get(format!("{}/folders/0/items", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let body: Value = response.json().await?;
    assert_eq!(body["code"], "rate_limit_exceeded");
    let (status, _) = get(&fake, &token, None, "/folders/0/items").await?;
    assert_eq!(status, StatusCode::OK);
    fake.faults()
        .add("/oauth2/token", 1, super::server_error(503));
    let (status, body) = token_request(&fake, &[("grant_type", "refresh_token")]).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "unavailable");
    assert!(fake.faults().exhausted());
    assert_eq!(fake.faults().count("/2.0/folders/0/items"), 2);
    Ok(())
}

#[tokio::test]
async fn trees_are_deterministic_and_shaped_as_promised() -> TestResult {
    let small = Tree::small();
    assert!(
        (95..=105).contains(&small.item_count()),
        "{}",
        small.item_count()
    );
    let a = FakeBox::start(Tree::small()).await?.items();
    let b = FakeBox::start(Tree::small()).await?.items();
    assert_eq!(a, b);
    let kinds: BTreeSet<String> = a
        .iter()
        .filter(|i| i.kind == ItemKind::File)
        .filter_map(|i| i.name.rsplit_once('.').map(|(_, e)| e.to_string()))
        .collect();
    for ext in ["txt", "md", "csv", "json", "html"] {
        assert!(kinds.contains(ext), "{ext} missing from {kinds:?}");
    }

    let medium = FakeBox::start(Tree::medium()).await?;
    let items = medium.items();
    assert!(
        items
            .iter()
            .any(|i| i.size > 10 * 1024 * 1024 && i.kind == ItemKind::File)
    );
    assert!(items.iter().any(|i| i.name.contains('"')));
    assert!(items.iter().any(|i| !i.name.is_ascii()));
    assert!(
        items
            .iter()
            .any(|i| i.kind == ItemKind::File && i.size == 0)
    );
    // Folder sizes add up like Box's.
    let root_total: u64 = items
        .iter()
        .filter(|i| i.parent_id == "0" && i.owner_id == "11446498")
        .map(|i| i.size)
        .sum();
    let file_total: u64 = items
        .iter()
        .filter(|i| i.kind == ItemKind::File && i.owner_id == "11446498")
        .map(|i| i.size)
        .sum();
    assert_eq!(root_total, file_total);

    let demo = FakeBox::start(Tree::demo()).await?;
    assert!(
        demo.find_path("/Contracts/Acme master services agreement.txt")
            .is_some()
    );
    assert!(demo.find_path("/Notes/Café \"menu\" ideas.md").is_some());
    assert!(demo.describe().contains(&demo.refresh_token()));
    Ok(())
}

#[tokio::test]
async fn large_tree_needs_markers_for_its_biggest_folder() -> TestResult {
    let started = std::time::Instant::now();
    let fake = FakeBox::start(Tree::large()).await?;
    let build = started.elapsed();
    let items = fake.items_for_enterprise();
    assert!((95_000..=105_000).contains(&items.len()), "{}", items.len());
    let token = free_token(&fake).await?;
    let scans = fake.find_path("/Scans 2023").unwrap_or_default();
    let (status, _) = get(
        &fake,
        &token,
        None,
        &format!("/folders/{scans}/items?offset=10001"),
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let all = list_marker(&fake, &token, &scans, 1000).await?;
    assert_eq!(all.len(), 10_500);
    assert!(
        build.as_secs() < 30,
        "building the large tree took {build:?}"
    );
    Ok(())
}

#[tokio::test]
async fn hostile_input_gets_box_errors_not_panics() -> TestResult {
    let fake = FakeBox::start(Tree::small()).await?;
    let token = free_token(&fake).await?;
    let enterprise = enterprise_token(&fake).await?;
    let paths = [
        "/folders/%FF%FE/items",
        "/folders/-1/items",
        "/folders/00/items",
        "/folders/99999999999999999999999/items",
        "/folders/0/items?limit=99999999999999999999999",
        "/folders/0/items?offset=-5",
        "/folders/0/items?offset=1e3",
        "/folders/0/items?usemarker=true&marker=02",
        "/folders/0/items?usemarker=true&marker=ff00000000000000000000",
        "/files/0",
        "/files/abc/content",
        "/files/1/collaborations?marker=x",
        "/events?stream_position=-1",
        "/events?limit=0",
        "/events?stream_type=everything",
        "/users/nobody",
        "/groups/nope/memberships",
    ];
    for path in paths {
        let (status, body) = get(&fake, &token, None, path).await?;
        assert!(status.is_client_error(), "{path}: {status}");
        assert_eq!(body["type"], "error", "{path}: {body}");
    }
    for header in ["", "abc", "11446498,11446499"] {
        let (status, body) = get(&fake, &enterprise, Some(header), "/folders/0/items").await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "As-User {header:?}");
        assert_eq!(body["code"], "bad_request");
    }
    for auth in ["Bearer", "Basic abc", "bearer nope", "Bearer caf\u{e9}"] {
        let response = http()
            .get(format!("{}/folders/0/items", fake.api_url()))
            .header("Authorization", auth)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    // A lowercase scheme is accepted, as HTTP auth schemes are case-insensitive.
    let response = http()
        .get(format!("{}/users/me", fake.api_url()))
        .header("Authorization", format!("bearer {token}"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let response = http()
        .get(format!("{}/dl/1-2-zz", fake.base_url()))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = http().post(fake.token_url()).body("%%%").send().await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    Ok(())
}
