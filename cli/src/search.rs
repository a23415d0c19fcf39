//! `tributary search` and `tributary export`: results for people (highlights in bold only on a
//! terminal and never with `NO_COLOR`, through anstream), JSON for programs, and every
//! document of an index as JSON lines.

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use tributary_host::Host;
use tributary_host::sink::{Filter, IndexRef, SearchRequest, SearchResults, Sort, pages};

/// What `tributary search` was asked.
pub struct SearchArgs {
    pub query: String,
    pub indexes: Vec<String>,
    pub tenant: String,
    pub limit: usize,
    pub filters: Vec<Filter>,
    pub sort: Option<Sort>,
    pub after: Option<String>,
    pub count: bool,
    pub facets: Vec<String>,
    pub identities: Vec<String>,
    pub json: bool,
}

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

pub async fn search(host: &Host, args: SearchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.after.is_none() || args.indexes.len() == 1,
        "--after continues one index's results: pass --index too"
    );
    // anstream drops the escape codes unless stdout is a terminal and NO_COLOR is unset.
    let mut out = anstream::stdout();
    for index in &args.indexes {
        let request = SearchRequest {
            filters: args.filters.clone(),
            sort: args.sort.clone(),
            after: args.after.clone().map(tributary_host::sink::Cursor),
            count_only: args.count,
            facets: args.facets.clone(),
            identities: (!args.identities.is_empty()).then(|| args.identities.clone()),
            ..SearchRequest::new(args.query.clone(), args.limit)
        };
        let results = host.search(&args.tenant, index, request).await?;
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&json!({"index": index, "results": results}))?
            )?;
        } else {
            print_results(&mut out, index, &results, args.count)?;
        }
    }
    Ok(())
}

fn print_results(
    out: &mut impl Write,
    index: &str,
    results: &SearchResults,
    count_only: bool,
) -> anyhow::Result<()> {
    writeln!(out, "{index}: {} match(es)", results.total)?;
    if count_only {
        return Ok(());
    }
    for hit in &results.hits {
        writeln!(
            out,
            "  {:.2}  {}  [{}]",
            hit.score,
            hit.title.as_deref().unwrap_or(&hit.id),
            hit.id
        )?;
        if let Some(snippet) = &hit.snippet {
            writeln!(
                out,
                "        {}",
                snippet
                    .replace("<b>", BOLD)
                    .replace("</b>", RESET)
                    .replace('\n', " ")
            )?;
        }
    }
    for (facet, counts) in &results.facets {
        let list: Vec<String> = counts
            .iter()
            .map(|c| format!("{} {}", c.value, c.count))
            .collect();
        writeln!(out, "  {facet}: {}", list.join(", "))?;
    }
    if let Some(next) = &results.next {
        writeln!(out, "  more: --after {}", next.0)?;
    }
    Ok(())
}

/// What `tributary export` was asked.
pub struct ExportArgs {
    pub index: String,
    pub tenant: String,
    pub query: String,
    pub filters: Vec<Filter>,
    pub body: bool,
    pub identities: Vec<String>,
}

/// Writes every matching document as a JSON line, a page at a time.
pub async fn export(host: &Host, args: ExportArgs) -> anyhow::Result<()> {
    // Refuses an unknown index (and checks the query) before printing anything.
    let probe = SearchRequest {
        count_only: true,
        filters: args.filters.clone(),
        ..SearchRequest::new(args.query.clone(), 1)
    };
    host.search(&args.tenant, &args.index, probe).await?;
    let request = SearchRequest {
        filters: args.filters,
        with_body: args.body,
        identities: (!args.identities.is_empty()).then_some(args.identities),
        ..SearchRequest::new(args.query, tributary_host::sink::MAX_PAGE)
    };
    let sink: Arc<dyn tributary_host::sink::Sink> = host.sink().clone();
    let mut stream = pages(sink, IndexRef::new(&args.tenant, &args.index), request);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while let Some(page) = stream.next().await {
        for hit in page? {
            let mut line = json!({"id": hit.id, "connector": hit.connector, "fields": hit.fields});
            if let Some(body) = hit.body {
                line["body"] = json!(body);
            }
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
