//! A fake news site publishing the same entries as RSS 2.0 (`/feed.xml`) and Atom
//! (`/atom.xml`), the source of the JavaScript example plugin (`plugins/js-rss`).
//!
//! Like a real feed it lists only the newest `window` entries, newest first, and answers
//! conditional requests: every change moves its `ETag`, and `If-None-Match` with the current one
//! gets `304 Not Modified`. Dates come from a deterministic clock (one minute per publication,
//! from 2024-01-01T00:00:00Z) unless a test picks the minute itself — two entries may share a
//! date, as they do in real feeds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{FakeServer, FaultPlan};

#[derive(Clone, Debug)]
struct Entry {
    title: String,
    /// HTML, as feeds carry it.
    summary: String,
    minute: u64,
    category: Option<String>,
}

#[derive(Debug)]
struct Site {
    entries: BTreeMap<String, Entry>,
    clock: u64,
    revision: u64,
    window: usize,
    base: String,
}

#[derive(Clone)]
struct Shared(Arc<Mutex<Site>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Site> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake feed site.
pub struct FakeRss {
    server: FakeServer,
    shared: Shared,
    faults: FaultPlan,
}

impl FakeRss {
    /// Starts a site with no entries and a window of 20 entries.
    pub async fn start() -> anyhow::Result<Self> {
        let shared = Shared(Arc::new(Mutex::new(Site {
            entries: BTreeMap::new(),
            clock: 0,
            revision: 0,
            window: 20,
            base: String::new(),
        })));
        let faults = FaultPlan::new();
        let router = axum::Router::new()
            .route("/feed.xml", get(rss))
            .route("/atom.xml", get(atom))
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                faults.clone(),
                FaultPlan::middleware,
            ));
        let server = FakeServer::start(router).await?;
        shared.lock().base = server.url();
        Ok(Self {
            server,
            shared,
            faults,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.url()
    }

    /// The RSS URL.
    pub fn rss_url(&self) -> String {
        format!("{}/feed.xml", self.server.url())
    }

    /// The Atom URL.
    pub fn atom_url(&self) -> String {
        format!("{}/atom.xml", self.server.url())
    }

    /// Scripted faults and the request log.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// Publishes (or republishes, with a new date) an entry at the next minute of the clock.
    pub fn publish(&self, guid: &str, title: &str, summary_html: &str) {
        let minute = {
            let mut site = self.shared.lock();
            site.clock += 1;
            site.clock
        };
        self.publish_at(guid, title, summary_html, minute);
    }

    /// Publishes an entry dated `minute` minutes after 2024-01-01T00:00:00Z.
    pub fn publish_at(&self, guid: &str, title: &str, summary_html: &str, minute: u64) {
        let mut site = self.shared.lock();
        site.clock = site.clock.max(minute);
        site.revision += 1;
        let category = site.entries.get(guid).and_then(|e| e.category.clone());
        site.entries.insert(
            guid.into(),
            Entry {
                title: title.into(),
                summary: summary_html.into(),
                minute,
                category,
            },
        );
    }

    /// Tags an entry with a category.
    pub fn categorize(&self, guid: &str, category: &str) {
        let mut site = self.shared.lock();
        site.revision += 1;
        if let Some(entry) = site.entries.get_mut(guid) {
            entry.category = Some(category.into());
        }
    }

    /// Lists only the newest `n` entries from now on.
    pub fn set_window(&self, n: usize) {
        let mut site = self.shared.lock();
        site.revision += 1;
        site.window = n;
    }

    /// The current `ETag`.
    pub fn etag(&self) -> String {
        etag(self.shared.lock().revision)
    }

    /// The ISO 8601 date of `minute`, as the plugin stores it.
    pub fn iso_date(minute: u64) -> String {
        let (day, hour, min) = split(minute);
        format!("2024-01-{day:02}T{hour:02}:{min:02}:00Z")
    }
}

fn etag(revision: u64) -> String {
    format!("\"rev-{revision}\"")
}

fn split(minute: u64) -> (u64, u64, u64) {
    (1 + minute / (24 * 60), (minute / 60) % 24, minute % 60)
}

/// RFC 822 date, as RSS wants it (2024-01-01 was a Monday; the fake stays in January).
fn rfc822(minute: u64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let (day, hour, min) = split(minute);
    let weekday = DAYS[((day - 1) % 7) as usize];
    format!("{weekday}, {day:02} Jan 2024 {hour:02}:{min:02}:00 GMT")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The entries in the window, newest first (ties by guid), the ETag and the base URL; `Err` with
/// the ETag when the client already has this revision (a 304).
/// What one listing shows: entries newest first, the ETag and the base URL.
type Listing = (Vec<(String, Entry)>, String, String);

fn visible(shared: &Shared, headers: &HeaderMap) -> Result<Listing, String> {
    let site = shared.lock();
    let tag = etag(site.revision);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag)
    {
        return Err(tag);
    }
    let mut entries: Vec<(String, Entry)> = site
        .entries
        .iter()
        .map(|(g, e)| (g.clone(), e.clone()))
        .collect();
    entries.sort_by(|a, b| b.1.minute.cmp(&a.1.minute).then(a.0.cmp(&b.0)));
    entries.truncate(site.window);
    Ok((entries, tag, site.base.clone()))
}

fn not_modified(tag: String) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response()
}

async fn rss(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let (entries, tag, base) = match visible(&shared, &headers) {
        Ok(v) => v,
        Err(tag) => return not_modified(tag),
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\">\n<channel>\n<title>Fake News</title>\n",
    );
    xml.push_str(&format!(
        "<link>{base}/</link>\n<description>Entries &amp; updates</description>\n"
    ));
    for (guid, e) in entries {
        xml.push_str("<item>\n");
        xml.push_str(&format!("  <title>{}</title>\n", escape(&e.title)));
        xml.push_str(&format!("  <link>{base}/posts/{guid}</link>\n"));
        xml.push_str(&format!(
            "  <guid isPermaLink=\"false\">{}</guid>\n",
            escape(&guid)
        ));
        xml.push_str(&format!("  <pubDate>{}</pubDate>\n", rfc822(e.minute)));
        if let Some(c) = &e.category {
            xml.push_str(&format!("  <category>{}</category>\n", escape(c)));
        }
        // Half the entries carry their HTML in CDATA, half escaped: feeds do both.
        if guid.len() % 2 == 0 {
            xml.push_str(&format!(
                "  <description><![CDATA[{}]]></description>\n",
                e.summary
            ));
        } else {
            xml.push_str(&format!(
                "  <description>{}</description>\n",
                escape(&e.summary)
            ));
        }
        xml.push_str("</item>\n");
    }
    xml.push_str("</channel>\n</rss>\n");
    (
        [
            (
                header::CONTENT_TYPE,
                "application/rss+xml; charset=utf-8".to_string(),
            ),
            (header::ETAG, tag),
        ],
        xml,
    )
        .into_response()
}

async fn atom(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let (entries, tag, base) = match visible(&shared, &headers) {
        Ok(v) => v,
        Err(tag) => return not_modified(tag),
    };
    let updated = entries
        .first()
        .map(|(_, e)| FakeRss::iso_date(e.minute))
        .unwrap_or_else(|| FakeRss::iso_date(0));
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<title>Fake News</title>\n<id>{base}/</id>\n<updated>{updated}</updated>\n"
    );
    for (guid, e) in entries {
        xml.push_str("<entry>\n");
        xml.push_str(&format!(
            "  <title type=\"text\">{}</title>\n",
            escape(&e.title)
        ));
        xml.push_str(&format!(
            "  <link rel=\"alternate\" href=\"{base}/posts/{guid}\"/>\n"
        ));
        xml.push_str(&format!("  <id>{}</id>\n", escape(&guid)));
        xml.push_str(&format!(
            "  <updated>{}</updated>\n",
            FakeRss::iso_date(e.minute)
        ));
        if let Some(c) = &e.category {
            xml.push_str(&format!("  <category term=\"{}\"/>\n", escape(c)));
        }
        xml.push_str(&format!(
            "  <summary type=\"html\">{}</summary>\n",
            escape(&e.summary)
        ));
        xml.push_str("</entry>\n");
    }
    xml.push_str("</feed>\n");
    (
        [
            (
                header::CONTENT_TYPE,
                "application/atom+xml; charset=utf-8".to_string(),
            ),
            (header::ETAG, tag),
        ],
        xml,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn serves_rss_and_atom_newest_first_with_etags() {
        let site = FakeRss::start().await.unwrap();
        site.publish("a1", "First & foremost", "<p>Hello <b>world</b></p>");
        site.publish("b", "Second", "plain");
        site.set_window(1);
        let client = reqwest::Client::new();
        let answer = client.get(site.rss_url()).send().await.unwrap();
        let tag = answer.headers()["etag"].to_str().unwrap().to_string();
        let body = answer.text().await.unwrap();
        assert!(
            body.contains("<guid isPermaLink=\"false\">b</guid>"),
            "{body}"
        );
        assert!(!body.contains(">a1<"), "outside the window: {body}");
        assert!(body.contains("<pubDate>Mon, 01 Jan 2024 00:02:00 GMT</pubDate>"));
        let again = client
            .get(site.rss_url())
            .header("If-None-Match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        site.set_window(5);
        let atom = client
            .get(site.atom_url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            atom.contains("<title type=\"text\">First &amp; foremost</title>"),
            "{atom}"
        );
        assert!(atom.contains("&lt;p&gt;Hello"), "{atom}");
        assert_eq!(rfc822(3 * 24 * 60), "Thu, 04 Jan 2024 00:00:00 GMT");
    }
}
