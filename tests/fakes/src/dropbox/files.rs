//! `users/*`, `check/*` and `files/*` endpoints: listing with real change cursors, metadata,
//! downloads, Paper export and `search_v2`.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::content::{self, Flavor};
use super::http::{ApiError, Ctx, Payload, Reply, decode_cursor, encode_cursor};
use super::state::{ChangeKind, LAZY_LIMIT, Lookup, Node, NodeKind, State, View, child_prefix};

pub(crate) fn get_current_account(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    ctx.args.none()?;
    Ok(Reply::Json(state.full_account(ctx.member)))
}

pub(crate) fn get_account(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let id = ctx.args.req_str("account_id")?;
    let index = state
        .account_index(id)
        .ok_or_else(|| ApiError::tag("no_account"))?;
    Ok(Reply::Json(state.basic_account(index, ctx.member)))
}

pub(crate) fn check(_state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let query = ctx.args.opt_str("query")?.unwrap_or("");
    Ok(Reply::Json(json!({ "result": query })))
}

// ----- path helpers --------------------------------------------------------------------------

fn resolve(state: &State, view: &View, path: &str) -> Result<String, ApiError> {
    state.resolve(view, path).map_err(|e| match e {
        Lookup::Malformed(msg) => ApiError::bad(format!("request body: path: {msg}")),
        Lookup::NotFound => ApiError::path("not_found"),
    })
}

/// Resolves an existing file or folder (not the view root).
fn existing<'s>(state: &'s State, view: &View, path: &str) -> Result<(String, &'s Node), ApiError> {
    let key = resolve(state, view, path)?;
    let node = state
        .nodes
        .get(&key)
        .ok_or_else(|| ApiError::path("not_found"))?;
    Ok((key, node))
}

// ----- list_folder ---------------------------------------------------------------------------

/// Everything a `list_folder` cursor needs to resume: the view, the listed folder, the options,
/// and either the last key emitted by the initial listing or a position in the change log.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct FolderCursor {
    m: usize,
    r: String,
    rd: String,
    t: bool,
    /// Listed folder (global key).
    p: String,
    rec: bool,
    /// include_non_downloadable_files.
    nd: bool,
    /// Still in the initial listing.
    l: bool,
    /// Last key the initial listing emitted.
    k: Option<String>,
    /// Change-log position the listing started from / the changes were read up to.
    pos: usize,
    /// Page size requested by `list_folder` (continue calls keep it).
    n: usize,
}

impl FolderCursor {
    fn view(&self) -> View {
        View {
            member: self.m,
            root: self.r.clone(),
            root_display: self.rd.clone(),
            team_root: self.t,
        }
    }

    /// Whether a change at `path` concerns this listing.
    fn in_scope(&self, state: &State, view: &View, path: &str) -> bool {
        if path == self.p {
            return self.rec && self.p != view.root && state.visible(view, path);
        }
        let prefix = child_prefix(&self.p);
        path.starts_with(&prefix)
            && (self.rec || !path[prefix.len()..].contains('/'))
            && state.visible(view, path)
    }
}

const FOLDER_CURSOR: &str = "lf";

struct ListArgs {
    key: String,
    rec: bool,
    nd: bool,
    limit: usize,
}

fn list_args(state: &State, ctx: &Ctx) -> Result<ListArgs, ApiError> {
    let path = ctx.args.req_str("path")?;
    if path == "/" {
        return Err(ApiError::bad(
            "request body: path: Specify the root folder as an empty string rather than as \"/\".",
        ));
    }
    let rec = ctx.args.bool_or("recursive", false)?;
    ctx.args.bool_or("include_deleted", false)?;
    ctx.args.bool_or("include_media_info", false)?;
    ctx.args
        .bool_or("include_has_explicit_shared_members", false)?;
    ctx.args.bool_or("include_mounted_folders", true)?;
    let nd = ctx.args.bool_or("include_non_downloadable_files", true)?;
    let limit = ctx.args.uint_or("limit", 2000, 1, 2000)? as usize;
    let key = resolve(state, &ctx.view, path)?;
    if key != ctx.view.root {
        match state.nodes.get(&key) {
            None => return Err(ApiError::path("not_found")),
            Some(n) if n.file().is_some() => return Err(ApiError::path("not_folder")),
            Some(_) => {}
        }
    }
    Ok(ListArgs {
        key,
        rec,
        nd,
        limit,
    })
}

pub(crate) fn list_folder(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let a = list_args(state, ctx)?;
    let cursor = FolderCursor {
        m: ctx.member,
        r: ctx.view.root.clone(),
        rd: ctx.view.root_display.clone(),
        t: ctx.view.team_root,
        p: a.key,
        rec: a.rec,
        nd: a.nd,
        l: true,
        k: None,
        pos: state.log.len(),
        n: a.limit,
    };
    Ok(Reply::Json(folder_page(state, cursor)))
}

pub(crate) fn get_latest_cursor(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let a = list_args(state, ctx)?;
    let cursor = FolderCursor {
        m: ctx.member,
        r: ctx.view.root.clone(),
        rd: ctx.view.root_display.clone(),
        t: ctx.view.team_root,
        p: a.key,
        rec: a.rec,
        nd: a.nd,
        l: false,
        k: None,
        pos: state.log.len(),
        n: a.limit,
    };
    Ok(Reply::Json(
        json!({ "cursor": encode_cursor(state, FOLDER_CURSOR, cursor) }),
    ))
}

fn decode_folder_cursor(state: &State, cursor: &str) -> Result<FolderCursor, ApiError> {
    let c: FolderCursor =
        decode_cursor(state, FOLDER_CURSOR, cursor).ok_or_else(|| ApiError::tag("reset"))?;
    if c.pos > state.log.len() {
        return Err(ApiError::tag("reset"));
    }
    if c.p != c.r && !state.nodes.contains_key(&c.p) {
        return Err(ApiError::path("not_found"));
    }
    Ok(c)
}

pub(crate) fn list_folder_continue(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c = decode_folder_cursor(state, cursor)?;
    Ok(Reply::Json(folder_page(state, c)))
}

/// Whether `cursor` would return entries now (for longpoll).
pub(crate) fn pending_changes(state: &State, cursor: &str) -> Result<bool, ApiError> {
    let c = decode_folder_cursor(state, cursor)?;
    if c.l {
        return Ok(true);
    }
    let view = c.view();
    Ok(state.log[c.pos..]
        .iter()
        .any(|ch| c.in_scope(state, &view, &ch.path)))
}

/// One page of a listing: initial entries first, then changes from the log.
fn folder_page(state: &State, mut c: FolderCursor) -> Value {
    let view = c.view();
    let limit = c.n.max(1);
    let mut entries = Vec::new();
    let mut has_more = false;
    if c.l {
        // Recursive listings of a non-root folder start with the folder itself.
        if c.k.is_none() && c.rec && c.p != view.root {
            if let Some(node) = state.nodes.get(&c.p)
                && state.visible(&view, &c.p)
            {
                entries.push(state.metadata(&view, &c.p, node, true));
            }
            c.k = Some(c.p.clone());
        }
        let prefix = child_prefix(&c.p);
        let start = match &c.k {
            Some(k) if k.starts_with(&prefix) => Bound::Excluded(k.as_str()),
            _ => Bound::Included(prefix.as_str()),
        };
        let mut last = None;
        for (key, node) in state
            .nodes
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            if !c.rec && key[prefix.len()..].contains('/') {
                continue;
            }
            if !state.visible(&view, key) || (!c.nd && node.is_paper()) {
                continue;
            }
            if entries.len() >= limit {
                has_more = true;
                break;
            }
            entries.push(state.metadata(&view, key, node, true));
            last = Some(key.clone());
        }
        if has_more {
            c.k = last.or(c.k);
        } else {
            // The snapshot is done; from now on the cursor reads the change log from where the
            // listing started, so nothing that changed during pagination is missed.
            c.l = false;
            c.k = None;
        }
    } else {
        let end = state.log.len();
        let mut i = c.pos;
        while i < end {
            let Some(change) = state.log.get(i) else {
                break;
            };
            if c.in_scope(state, &view, &change.path) {
                let emitted = match &change.kind {
                    // Only the latest change of a path is reported, with its current metadata.
                    ChangeKind::Upsert => (state.last_change.get(&change.path) == Some(&i))
                        .then(|| state.nodes.get(&change.path))
                        .flatten()
                        .filter(|node| c.nd || !node.is_paper())
                        .map(|node| state.metadata(&view, &change.path, node, true)),
                    ChangeKind::Deleted { display, name } => state
                        .rel(&view, &change.path, display)
                        .map(|(lower, display)| {
                            json!({
                                ".tag": "deleted",
                                "name": name,
                                "path_lower": lower,
                                "path_display": display,
                            })
                        }),
                };
                if let Some(v) = emitted {
                    if entries.len() >= limit {
                        has_more = true;
                        break;
                    }
                    entries.push(v);
                }
            }
            i += 1;
        }
        c.pos = i;
    }
    json!({
        "entries": entries,
        "cursor": encode_cursor(state, FOLDER_CURSOR, c),
        "has_more": has_more,
    })
}

// ----- metadata and content ------------------------------------------------------------------

pub(crate) fn get_metadata(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let path = ctx.args.req_str("path")?;
    if path.is_empty() || path == "/" {
        return Err(ApiError::bad(
            "request body: path: The root folder is unsupported.",
        ));
    }
    let include_deleted = ctx.args.bool_or("include_deleted", false)?;
    ctx.args.bool_or("include_media_info", false)?;
    ctx.args
        .bool_or("include_has_explicit_shared_members", false)?;
    let key = resolve(state, &ctx.view, path)?;
    if let Some(node) = state.nodes.get(&key) {
        return Ok(Reply::Json(state.metadata(&ctx.view, &key, node, true)));
    }
    if include_deleted
        && let Some(change) = state.last_change.get(&key).and_then(|i| state.log.get(*i))
        && let ChangeKind::Deleted { display, name } = &change.kind
        && let Some((lower, display)) = state.rel(&ctx.view, &key, display)
    {
        return Ok(Reply::Json(json!({
            ".tag": "deleted",
            "name": name,
            "path_lower": lower,
            "path_display": display,
        })));
    }
    Err(ApiError::path("not_found"))
}

pub(crate) fn download(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let path = ctx.args.req_str("path")?;
    let rev = ctx.args.opt_str("rev")?;
    let (key, node) = existing(state, &ctx.view, path)?;
    let NodeKind::File(f) = &node.kind else {
        return Err(ApiError::path("not_file"));
    };
    if rev.is_some_and(|r| r != f.rev) {
        return Err(ApiError::path("not_found"));
    }
    if node.is_paper() {
        return Err(ApiError::tag("unsupported_file"));
    }
    Ok(Reply::Content {
        result: state.metadata(&ctx.view, &key, node, false),
        body: Payload::from_body(&f.body, f.size, &node.name),
    })
}

pub(crate) fn export(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let path = ctx.args.req_str("path")?;
    let format = ctx.args.opt_str("export_format")?;
    let (key, node) = existing(state, &ctx.view, path)?;
    let NodeKind::File(f) = &node.kind else {
        return Err(ApiError::path("not_file"));
    };
    if !node.is_paper() {
        return Err(ApiError::tag("non_exportable"));
    }
    let (ext, format) = match format.unwrap_or("markdown") {
        "markdown" => ("md", "markdown"),
        "html" => ("html", "html"),
        "plain_text" => ("txt", "plain_text"),
        _ => return Err(ApiError::tag("invalid_export_format")),
    };
    let markdown = f.body.materialise(f.size, &node.name);
    let bytes = if format == "markdown" {
        (*markdown).clone()
    } else {
        content::render_markdown(&String::from_utf8_lossy(&markdown), format).into_bytes()
    };
    let stem = node
        .name
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(&node.name);
    let result = json!({
        "export_metadata": {
            "name": format!("{stem}.{ext}"),
            "size": bytes.len(),
            "export_hash": content::content_hash(&bytes),
            "paper_revision": 1,
        },
        "file_metadata": state.metadata(&ctx.view, &key, node, false),
    });
    Ok(Reply::Content {
        result,
        body: Payload::Bytes(std::sync::Arc::new(bytes)),
    })
}

// ----- search_v2 -----------------------------------------------------------------------------

/// Dropbox's `FileCategory` for a name (folders are `folder`).
pub(crate) fn category(name: &str, is_folder: bool) -> &'static str {
    if is_folder {
        return "folder";
    }
    match content::extension(name).as_str() {
        "paper" => "paper",
        "jpg" | "jpeg" | "png" | "gif" | "bmp" | "tif" | "tiff" | "heic" | "webp" | "svg"
        | "psd" | "raw" | "ico" => "image",
        "pdf" => "pdf",
        "doc" | "docx" | "docm" | "dot" | "dotx" | "odt" | "ott" | "rtf" | "txt" | "text"
        | "md" | "markdown" | "rst" | "pages" | "wpd" | "wps" | "tex" | "gdoc" => "document",
        "xls" | "xlsx" | "xlsm" | "xlsb" | "xlt" | "ods" | "csv" | "tsv" | "numbers" | "gsheet" => {
            "spreadsheet"
        }
        "ppt" | "pptx" | "pps" | "ppsx" | "pot" | "potx" | "odp" | "key" | "gslides" => {
            "presentation"
        }
        "mp3" | "wav" | "flac" | "m4a" | "aac" | "ogg" | "wma" | "aiff" | "opus" => "audio",
        "mp4" | "mov" | "avi" | "mkv" | "webm" | "wmv" | "m4v" | "mpg" | "mpeg" | "3gp" => "video",
        _ => "others",
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct SearchCursor {
    m: usize,
    r: String,
    rd: String,
    t: bool,
    q: String,
    /// Scope (global key).
    p: String,
    max: usize,
    deleted: bool,
    fname: bool,
    exts: Vec<String>,
    cats: Vec<String>,
    by_time: bool,
    hl: bool,
    off: usize,
}

const SEARCH_CURSOR: &str = "sr";

pub(crate) fn search_v2(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let query = ctx.args.req_str("query")?;
    if query.trim().is_empty() {
        return Err(ApiError::bad("request body: query: must not be empty"));
    }
    if query.chars().count() > 1000 {
        return Err(ApiError::bad(
            "request body: query: longer than 1000 characters",
        ));
    }
    let options = ctx.args.sub("options")?;
    let scope = match options.opt_str("path")? {
        None | Some("") => ctx.view.root.clone(),
        Some(path) => {
            let (key, node) = existing(state, &ctx.view, path)?;
            if node.file().is_some() {
                return Err(ApiError::path("not_folder"));
            }
            key
        }
    };
    let max = options.uint_or("max_results", 100, 1, 1000)? as usize;
    let deleted = match options.opt_tag("file_status")? {
        None | Some("active") => false,
        Some("deleted") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "request body: options.file_status: unknown tag '{other}'"
            )));
        }
    };
    let by_time = match options.opt_tag("order_by")? {
        None | Some("relevance") => false,
        Some("last_modified_time") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "request body: options.order_by: unknown tag '{other}'"
            )));
        }
    };
    let fname = options.bool_or("filename_only", false)?;
    options.opt_str("account_id")?;
    let exts = options
        .str_list("file_extensions")?
        .into_iter()
        .map(|e| e.trim_start_matches('.').to_lowercase())
        .collect();
    let cats = options
        .tag_list("file_categories")?
        .into_iter()
        .map(str::to_string)
        .collect();
    let mfo = ctx.args.sub("match_field_options")?;
    let hl = mfo.bool_or("include_highlights", false)?
        || ctx.args.bool_or("include_highlights", false)?;
    let cursor = SearchCursor {
        m: ctx.member,
        r: ctx.view.root.clone(),
        rd: ctx.view.root_display.clone(),
        t: ctx.view.team_root,
        q: query.to_string(),
        p: scope,
        max,
        deleted,
        fname,
        exts,
        cats,
        by_time,
        hl,
        off: 0,
    };
    Ok(Reply::Json(search_page(state, cursor)))
}

pub(crate) fn search_continue_v2(state: &mut State, ctx: &Ctx) -> Result<Reply, ApiError> {
    let cursor = ctx.args.req_str("cursor")?;
    let c: SearchCursor = decode_cursor(state, SEARCH_CURSOR, cursor).ok_or_else(|| {
        ApiError::Endpoint(
            json!({".tag": "invalid_argument", "invalid_argument": "invalid cursor"}),
        )
    })?;
    Ok(Reply::Json(search_page(state, c)))
}

fn passes_filters(c: &SearchCursor, name: &str, is_folder: bool) -> bool {
    // As Dropbox documents for the Elastic connector: categories win over extensions.
    if !c.cats.is_empty() {
        let cat = category(name, is_folder);
        c.cats.iter().any(|x| x == cat)
    } else if !c.exts.is_empty() {
        !is_folder && c.exts.contains(&content::extension(name))
    } else {
        true
    }
}

fn highlight(name: &str, tokens: &[String]) -> Value {
    let lower = name.to_lowercase();
    if lower.len() != name.len() {
        return json!([{"highlight_str": name, "is_highlighted": false}]);
    }
    let mut marks = vec![false; name.len()];
    for t in tokens {
        let mut from = 0;
        while let Some(i) = lower[from..].find(t.as_str()) {
            let start = from + i;
            for m in marks.iter_mut().skip(start).take(t.len()) {
                *m = true;
            }
            from = start + t.len().max(1);
            if from >= lower.len() {
                break;
            }
        }
    }
    let mut spans = Vec::new();
    let mut start = 0;
    for i in 1..=name.len() {
        let boundary = i == name.len() || (marks[i] != marks[start] && name.is_char_boundary(i));
        if boundary {
            if let Some(text) = name.get(start..i) {
                spans.push(json!({"highlight_str": text, "is_highlighted": marks[start]}));
            }
            start = i;
        }
    }
    Value::Array(spans)
}

fn search_page(state: &State, mut c: SearchCursor) -> Value {
    let view = View {
        member: c.m,
        root: c.r.clone(),
        root_display: c.rd.clone(),
        team_root: c.t,
    };
    let tokens: Vec<String> =
        c.q.to_lowercase()
            .split_whitespace()
            .map(str::to_string)
            .collect();
    let name_matches = |name: &str| {
        let lower = name.to_lowercase();
        tokens.iter().all(|t| lower.contains(t.as_str()))
    };
    let prefix = child_prefix(&c.p);
    // (sort key, global key, match type, metadata)
    let mut found: Vec<(bool, i64, String, &'static str, Value)> = Vec::new();
    if c.deleted {
        for (path, idx) in &state.last_change {
            if !path.starts_with(&prefix) || state.nodes.contains_key(path) {
                continue;
            }
            let Some(ChangeKind::Deleted { display, name }) =
                state.log.get(*idx).map(|ch| &ch.kind)
            else {
                continue;
            };
            if !passes_filters(&c, name, false) || !name_matches(name) {
                continue;
            }
            if let Some((lower, display)) = state.rel(&view, path, display) {
                found.push((
                    true,
                    0,
                    path.clone(),
                    "filename",
                    json!({".tag": "deleted", "name": name, "path_lower": lower, "path_display": display}),
                ));
            }
        }
    } else {
        for (key, node) in state
            .nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let file = node.file();
            if !state.visible(&view, key) || !passes_filters(&c, &node.name, file.is_none()) {
                continue;
            }
            let by_name = name_matches(&node.name);
            let searchable = file.filter(|f| {
                !c.fname && f.size <= LAZY_LIMIT && Flavor::for_name(&node.name).is_text()
            });
            let by_content = match searchable {
                Some(f) => {
                    let body = f.body.materialise(f.size, &node.name);
                    let text = String::from_utf8_lossy(&body).to_lowercase();
                    let name = node.name.to_lowercase();
                    tokens
                        .iter()
                        .all(|t| text.contains(t.as_str()) || name.contains(t.as_str()))
                        && tokens.iter().any(|t| text.contains(t.as_str()))
                }
                None => false,
            };
            let match_type = match (by_name, by_content) {
                (true, true) => "filename_and_content",
                (true, false) => "filename",
                (false, true) => "file_content",
                (false, false) => continue,
            };
            let mtime = file.map(|f| f.server_modified).unwrap_or(0);
            found.push((
                by_name,
                mtime,
                key.clone(),
                match_type,
                state.metadata(&view, key, node, true),
            ));
        }
    }
    if c.by_time {
        found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.2.cmp(&b.2)));
    } else {
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
    }
    let total = found.len();
    let matches: Vec<Value> = found
        .into_iter()
        .skip(c.off)
        .take(c.max)
        .map(|(_, _, _, match_type, metadata)| {
            let name = metadata
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut m = json!({
                "match_type": {".tag": match_type},
                "metadata": {".tag": "metadata", "metadata": metadata},
            });
            if c.hl
                && let Some(obj) = m.as_object_mut()
            {
                obj.insert("highlight_spans".into(), highlight(&name, &tokens));
            }
            m
        })
        .collect();
    c.off = c.off.saturating_add(c.max);
    let has_more = c.off < total;
    let mut out = json!({ "matches": matches, "has_more": has_more });
    if has_more && let Some(obj) = out.as_object_mut() {
        obj.insert(
            "cursor".into(),
            json!(encode_cursor(state, SEARCH_CURSOR, c)),
        );
    }
    out
}
