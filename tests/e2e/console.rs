//! The web console in a real headless Chromium, driven through WebDriver (chromedriver), against
//! a real `tributary serve` on loopback with the fake Dropbox: sign in, create a Dropbox
//! connector through the schema form (a required field left empty is named), a full sync whose
//! counts rise to done, a search with snippets, "view as" an identity, a plugin upload and a
//! roll back; a tenant token sees neither the admin pages nor another tenant's data; API data
//! (a hostile file name) is shown as text, never as markup.
//!
//! Chromium and chromedriver are required (Debian: `apt-get install chromium chromium-driver`;
//! `.ci/run` installs them): without them the test fails saying so. Chromium only reaches
//! loopback: every other host name resolves to nothing (`--host-resolver-rules`) and its
//! background services are off. Screenshots land in `<target>/console-screenshots/`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tributary_fakes::dropbox::{Access, FakeDropbox, Member, Tree};
use tributary_fakes::faults::Fault;
use tributary_host::HostConfig;
use tributary_host::serve::{Service, serve};

use crate::support::shared_cache;

const ADMIN: &str = "admin-token-for-the-console-tests";
/// The longest any one wait may take (a loaded 2-core machine compiles plugins meanwhile).
const WAIT: Duration = Duration::from_secs(90);

/// Where a program is on `PATH`, if anywhere.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

/// chromedriver on a free loopback port, and one headless Chromium session through it.
struct Browser {
    client: Client,
    driver: Child,
    base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group, Chromium and its helpers included: a failed
        // test (no session close) leaves nothing running.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start(base: &str) -> Browser {
        let (Some(chromium), Some(chromedriver)) = (
            which("chromium").or_else(|| which("chromium-browser")),
            which("chromedriver"),
        ) else {
            panic!(
                "the console tests need Chromium and chromedriver on PATH: \
                 `sudo apt-get install -y chromium chromium-driver` (Debian; .ci/run installs them)"
            );
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                    // Loopback only: no other name resolves, no background traffic.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--no-default-browser-check",
                    "--disable-default-apps", "--disable-domain-reliability",
                    "--disable-client-side-phishing-detection", "--no-pings",
                ],
            }),
        );
        // chromedriver takes a moment to listen: retry the session until it does.
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    assert!(Instant::now() < deadline, "no WebDriver session: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Browser {
            client,
            driver,
            base: base.to_string(),
        }
    }

    async fn open(&self, hash: &str) {
        self.client
            .goto(&format!("{}/{hash}", self.base))
            .await
            .unwrap();
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        if !text.is_empty() {
            e.send_keys(text).await.unwrap();
        }
    }

    /// Polls `probe` until it returns `Some`, up to [`WAIT`].
    async fn until<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if Instant::now() > deadline {
                self.shot("timeout").await;
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of `css` once `ok` holds for it.
    async fn text_when(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        self.until(&format!("the text of {css}"), || async {
            let e = self.client.find(Locator::Css(css)).await.ok()?;
            let text = e.text().await.ok()?;
            ok(&text).then_some(text)
        })
        .await
    }

    async fn displayed(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn shot(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        if let Ok(png) = self.client.screenshot().await {
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Signs in with a token alone (the console asks `/v1/whoami` whose it is).
    async fn sign_in(&self, token: &str) {
        self.open("").await;
        // Signed out: the session is the tab's storage.
        self.client
            .execute("sessionStorage.clear()", vec![])
            .await
            .unwrap();
        self.client.refresh().await.unwrap();
        self.until("the sign-in form", || async {
            self.displayed("#token").await.then_some(())
        })
        .await;
        self.type_into("#token", token).await;
        self.click("#sign-in").await;
    }
}

struct Svc {
    base: String,
    _dir: tempfile::TempDir,
    _service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Svc {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start_service() -> Svc {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig {
        data_dir: dir.path().join("data"),
        cache_dir: Some(shared_cache()),
        plugins_dir: Some(dir.path().join("plugins")),
        ..HostConfig::default()
    };
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    // The tenant's connector reaches the loopback fake because the operator allows it.
    config.http.allow_private = vec!["127.0.0.1".parse().unwrap()];
    config.service.insert("admin_token".into(), ADMIN.into());
    config.service.insert("tick_ms".into(), 50.into());
    config.pipeline.download_backoff_ms = 50;
    let host = Arc::new(tributary_host::Host::open(config).await.unwrap());
    let service = Service::open(host, None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(serve(service.clone(), listener, async {
        let _ = rx.await;
    }));
    Svc {
        base,
        _dir: dir,
        _service: service,
        stop: Some(tx),
    }
}

async fn call(base: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let http = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

/// Files for the sync: two mention "aurora" (one shared with Bob), one has a hostile name,
/// and enough others that the downloads (slowed by the fake) take a few seconds.
const FILLER: usize = 12;
const HOSTILE: &str = "<img src=x onerror=window.__pwned=1>.txt";

async fn fake_dropbox() -> (FakeDropbox, String) {
    let fake = FakeDropbox::start(Tree::empty()).await.unwrap();
    fake.add_file(
        "/Notes/aurora-one.txt",
        "The aurora borealis lit the northern sky over the fjord.",
    )
    .unwrap();
    fake.add_file("/Notes/aurora-two.txt", "A second aurora report, private.")
        .unwrap();
    fake.add_file(&format!("/Notes/{HOSTILE}"), "hostile name, harmless body")
        .unwrap();
    for i in 0..FILLER {
        fake.add_file(
            &format!("/Filler/file-{i:02}.txt"),
            format!("filler number {i}"),
        )
        .unwrap();
    }
    let bob = fake
        .account_by_email("bob.smith@acme.example")
        .unwrap()
        .account_id;
    fake.add_file_member(
        "/Notes/aurora-one.txt",
        Member::account(&bob, Access::Viewer),
    )
    .unwrap();
    // Each download waits, so a sync runs long enough to be watched.
    fake.faults().add(
        "/2/files/download",
        10_000,
        Fault::Delay(Duration::from_millis(250)),
    );
    (fake, format!("user_id:{bob}"))
}

/// Status and extracted count of the newest job on the jobs page.
async fn job_row(b: &Browser) -> Option<(String, u64)> {
    let row = b
        .client
        .find(Locator::Css("[data-test=job-row]"))
        .await
        .ok()?;
    let status = row.attr("data-status").await.ok()??;
    let extracted = row
        .find(Locator::Css("[data-test=job-extracted]"))
        .await
        .ok()?
        .text()
        .await
        .ok()?
        .parse()
        .ok()?;
    Some((status, extracted))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let (fake, bob) = fake_dropbox().await;
    let svc = start_service().await;
    let base = svc.base.clone();
    let acme = call(
        &base,
        "POST",
        "/v1/tenants",
        ADMIN,
        Some(json!({"id": "acme"})),
    )
    .await;
    let token = acme["token"].as_str().unwrap().to_string();
    call(
        &base,
        "POST",
        "/v1/tenants",
        ADMIN,
        Some(json!({"id": "other"})),
    )
    .await;
    let b = Browser::start(&base).await;

    // A token the service does not know signs nobody in.
    b.sign_in("trb_not-a-token-of-this-service").await;
    b.text_when("#sign-in-error", |t| {
        t.contains("this token is not known here")
    })
    .await;
    assert!(b.displayed("#view-sign-in").await);

    // Sign in with the tenant's token alone: it opens its own tenant, with no admin link, and
    // the admin page refuses.
    b.sign_in(&token).await;
    b.text_when("#who", |t| t == "tenant acme").await;
    assert!(!b.displayed("#nav-admin").await);
    b.open("#admin").await;
    b.text_when("#admin-error", |t| t.contains("needs the admin token"))
        .await;
    assert!(!b.displayed("#tenants-table").await);
    // The token is in session storage, nowhere else.
    let stored = b
        .client
        .execute(
            "return [sessionStorage.getItem('tributary.token'), localStorage.length, document.cookie]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(stored, json!([token, 0, ""]));

    // Create a Dropbox connector through the schema form.
    b.open("#connectors").await;
    b.click("#new-connector").await;
    b.find("#plugin-select option[value=dropbox]").await;
    b.find("#plugin-select")
        .await
        .select_by_value("dropbox")
        .await
        .unwrap();
    b.text_when("#config-fields legend", |t| t.contains("Dropbox"))
        .await;
    // Labels and tooltips from the schema; hidden settings only on request; `depends-on`.
    b.text_when("label[for=field-app_key]", |t| t.contains("App Key"))
        .await;
    let tooltip = b
        .find("label[for=field-path]")
        .await
        .attr("title")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(tooltip.contains("The folder to sync"), "{tooltip}");
    assert!(!b.displayed("#field-api_base_url").await);
    assert!(
        !b.displayed("[data-field=include_inherited_users_and_groups]")
            .await
    );
    b.click("#field-use_document_level_security").await;
    b.until("the dependent field to show", || async {
        b.displayed("[data-field=include_inherited_users_and_groups]")
            .await
            .then_some(())
    })
    .await;
    b.click("#show-hidden").await;
    b.type_into("#connector-id", "docs").await;
    b.type_into("#field-app_key", fake.app_key()).await;
    b.type_into("#field-app_secret", fake.app_secret()).await;
    for key in ["api_base_url", "content_base_url"] {
        b.type_into(&format!("#field-{key}"), &fake.api_url()).await;
    }
    b.type_into("#field-oauth_base_url", &fake.base_url()).await;
    b.type_into("#field-concurrent_downloads", "1").await;
    // The refresh token is left empty: the form names it and sends nothing.
    b.click("#save-connector").await;
    b.text_when("#field-refresh_token-error", |t| {
        t.contains("Refresh token is required")
    })
    .await;
    // The schedule form: a kind switched on needs its interval or cron expression.
    b.click("#schedule-incremental-on").await;
    b.click("#save-connector").await;
    b.text_when("#schedule-error", |t| {
        t.contains("Incremental syncs need an interval")
    })
    .await;
    b.click("#schedule-incremental-on").await;
    b.click("#schedule-full-on").await;
    b.find("#schedule-full-how")
        .await
        .select_by_value("cron")
        .await
        .unwrap();
    // Once a year, so no scheduled sync runs during the test.
    b.type_into("#schedule-full-value", "0 3 1 1 *").await;
    b.shot("connector-form").await;
    b.type_into("#field-refresh_token", fake.team_refresh_token())
        .await;
    b.click("#save-connector").await;
    b.find("[data-test=connector-row][data-id=docs]").await;
    let created = call(
        &base,
        "GET",
        "/v1/tenants/acme/connectors/docs",
        &token,
        None,
    )
    .await;
    assert_eq!(created["config"]["concurrent_downloads"], 1);
    assert_eq!(created["config"]["use_document_level_security"], true);
    assert_eq!(
        created["secrets_set"],
        json!(["app_key", "app_secret", "refresh_token"])
    );
    assert_eq!(created["schedule"]["full_cron"], "0 3 1 1 *", "{created}");
    assert!(
        created["schedule"]["incremental_every"].is_null(),
        "{created}"
    );

    // Editing shows secrets as set, never their values.
    b.click("[data-test=connector-row][data-id=docs] [data-test=edit]")
        .await;
    b.text_when("[data-field=refresh_token] [data-test=secret-state]", |t| {
        t == "set"
    })
    .await;
    let cron = b
        .find("#schedule-full-value")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(cron.as_deref(), Some("0 3 1 1 *"));
    let shown = b
        .find("#field-refresh_token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(shown, "");
    b.click("#cancel-form").await;

    // A full sync: the jobs page shows the counts rising until it is done.
    b.click("[data-test=connector-row][data-id=docs] [data-test=sync-full]")
        .await;
    let mut seen: Vec<(String, u64)> = Vec::new();
    let deadline = Instant::now() + WAIT;
    let done = loop {
        assert!(
            Instant::now() < deadline,
            "the sync did not finish: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some((status, extracted)) = job_row(&b).await else {
            continue;
        };
        if seen.last() != Some(&(status.clone(), extracted)) {
            seen.push((status.clone(), extracted));
        }
        if status == "running" && extracted > 0 && extracted < 5 {
            b.shot("jobs").await;
        }
        if matches!(status.as_str(), "succeeded" | "failed" | "cancelled") {
            break status;
        }
    };
    assert_eq!(done, "succeeded", "{seen:?}");
    // Start times come as RFC 3339 and are shown in UTC.
    let started = b
        .text_when("[data-test=job-row] [data-test=job-started]", |t| {
            !t.is_empty()
        })
        .await;
    assert!(
        started.len() == 23 && started.ends_with(" UTC") && started.as_bytes()[10] == b' ',
        "{started}"
    );
    let total = (FILLER + 3) as u64;
    assert_eq!(seen.last().unwrap().1, total, "{seen:?}");
    let running: Vec<u64> = seen
        .iter()
        .filter(|(s, _)| s == "running")
        .map(|(_, n)| *n)
        .collect();
    assert!(
        running.windows(2).all(|w| w[0] <= w[1]) && running.iter().any(|n| *n > 0 && *n < total),
        "the counts did not rise while it ran: {seen:?}"
    );
    b.open("#connectors").await;
    b.text_when(
        "[data-test=connector-row][data-id=docs] td:nth-child(4)",
        |t| t == "succeeded",
    )
    .await;
    b.shot("connectors").await;

    // Search: snippets with the match highlighted; "view as" Bob sees only what is shared with him.
    b.open("#search").await;
    b.find("#search-index option[value=docs]").await;
    b.type_into("#search-q", "aurora").await;
    b.click("#search-go").await;
    b.text_when("#search-total", |t| t.starts_with("2 matching"))
        .await;
    let highlighted = b
        .find("[data-test=hit] [data-test=snippet] b")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(highlighted.to_lowercase(), "aurora");
    b.shot("search").await;
    b.type_into("#search-as", &bob).await;
    b.click("#search-go").await;
    b.text_when("#search-total", |t| t.starts_with("1 matching"))
        .await;
    let hit = b.find("[data-test=hit] strong").await.text().await.unwrap();
    assert_eq!(hit, "aurora-one.txt");

    // A hostile file name is text: no element is made of it.
    b.type_into("#search-as", "").await;
    b.type_into("#search-q", "hostile").await;
    b.click("#search-go").await;
    b.text_when("#search-total", |t| t.starts_with("1 matching"))
        .await;
    let title = b.find("[data-test=hit] strong").await.text().await.unwrap();
    assert_eq!(title, HOSTILE);
    let injected = b
        .client
        .execute(
            "return [document.querySelectorAll('#search-results img').length, window.__pwned === undefined]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!([0, true]));

    // Admin: tenants and metrics, upload a new plugin version, roll it back.
    b.sign_in(ADMIN).await;
    b.text_when("#who", |t| t == "admin").await;
    b.find("[data-test=tenant-row][data-id=acme]").await;
    b.text_when("#metrics-glance", |t| {
        t.contains("Resident memory") && t.contains("MiB")
    })
    .await;
    let feed_before = b
        .find("[data-test=plugin-row][data-name=feed][data-active='1']")
        .await
        .attr("data-version")
        .await
        .unwrap()
        .unwrap();
    let next = std::fs::canonicalize(tributary_e2e::FEED_NEXT).unwrap();
    b.find("#plugin-file")
        .await
        .send_keys(&next.to_string_lossy())
        .await
        .unwrap();
    b.click("#upload").await;
    b.text_when("#upload-result", |t| t.starts_with("uploaded feed"))
        .await;
    let feed_after = b
        .until("the new version to be active", || async {
            let row = b
                .client
                .find(Locator::Css(
                    "[data-test=plugin-row][data-name=feed][data-active='1']",
                ))
                .await
                .ok()?;
            let v = row.attr("data-version").await.ok()??;
            (v != feed_before).then_some(v)
        })
        .await;
    b.shot("admin").await;
    b.click("[data-test=plugin-row][data-name=feed][data-active='1'] [data-test=rollback]")
        .await;
    b.text_when("#upload-result", |t| {
        t.contains(&format!("{feed_before} is active"))
    })
    .await;
    let plugins = call(&base, "GET", "/v1/plugins", ADMIN, None).await;
    let active: Vec<&Value> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "feed" && p["active"] == true)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["version"], feed_before.as_str(), "{feed_after}");

    // `/docs`: Swagger UI, embedded and offline, draws the generated document under its
    // script policy (an inline script or a blocked asset would leave the page empty).
    b.click("#api-docs").await;
    b.text_when(".information-container .title", |t| {
        t.contains("tributary service API")
    })
    .await;
    b.find("#operations-service-whoami").await;
    b.find("#operations-connectors-triggerSync").await;
    b.shot("docs").await;

    b.client.clone().close().await.unwrap();

    // The metrics the console glances at: the sync's duration and the connector's last success,
    // which goes away with the connector.
    let metrics = || async {
        reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let text = metrics().await;
    for want in [
        "tributary_connector_last_success_timestamp_seconds{tenant=\"acme\",connector=\"docs\"} ",
        "tributary_job_duration_seconds_count{kind=\"full\",status=\"succeeded\"} 1\n",
        "process_start_time_seconds ",
        "process_cpu_seconds_total ",
        "tributary_jobs_finished_total{status=\"succeeded\"} 1\n",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    reqwest::Client::new()
        .delete(format!("{base}/v1/tenants/acme/connectors/docs"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(!metrics().await.contains("connector=\"docs\""));
}

/// Without a browser: the assets carry their script policy, and the schema route answers any
/// valid token (and only those) with the fields the form is drawn from.
#[tokio::test]
async fn console_assets_and_plugin_schema_over_http() {
    let svc = start_service().await;
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/", svc.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("/console/console.js"));
    for (path, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let r = http
            .get(format!("{}{path}", svc.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }

    let schema = format!("{}/v1/plugins/dropbox/schema", svc.base);
    assert_eq!(http.get(&schema).send().await.unwrap().status(), 401);
    let acme = call(
        &svc.base,
        "POST",
        "/v1/tenants",
        ADMIN,
        Some(json!({"id": "acme"})),
    )
    .await;
    let token = acme["token"].as_str().unwrap();
    let body = call(&svc.base, "GET", "/v1/plugins/dropbox/schema", token, None).await;
    let field = |key: &str| {
        body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("no field {key}: {body}"))
            .clone()
    };
    let secret = field("refresh_token");
    assert_eq!(
        (&secret["sensitive"], &secret["required"], &secret["label"]),
        (&json!(true), &json!(true), &json!("Refresh token"))
    );
    assert_eq!(field("retry_count")["default"], 3);
    assert_eq!(field("api_base_url")["hidden"], true);
    assert_eq!(
        field("include_inherited_users_and_groups")["depends_on"],
        json!([{"field": "use_document_level_security", "value": true}])
    );
    assert_eq!(body["features"]["document_level_security"], true);
    let missing = http
        .get(format!("{}/v1/plugins/nothing/schema", svc.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // `/docs` is embedded: its page and assets come from this origin under their own policy
    // (inline styles, which Swagger UI sets, but scripts from this origin only), pointed at the
    // generated document.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let docs = no_redirect
        .get(format!("{}/docs", svc.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 303);
    assert_eq!(docs.headers()["location"], "/docs/");
    for (path, kind, needle) in [
        ("/docs/", "text/html", "swagger-ui-bundle.js"),
        (
            "/docs/swagger-initializer.js",
            "text/javascript",
            "/v1/openapi.json",
        ),
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript",
            "SwaggerUIBundle",
        ),
        ("/docs/swagger-ui.css", "text/css", ".swagger-ui"),
    ] {
        let r = http
            .get(format!("{}{path}", svc.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let headers = r.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}: {:?}",
            headers["content-type"]
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self';") && csp.contains("style-src 'self' 'unsafe-inline'"),
            "{path}: {csp}"
        );
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }
}
