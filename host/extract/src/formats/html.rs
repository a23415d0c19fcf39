//! HTML and XHTML: the visible text, tokenised with `html5gum` (a WHATWG-conformant
//! tokenizer; it switches to raw-text states inside `<script>`, `<style>`, `<title>`,
//! `<textarea>`, so markup-looking script code is never mistaken for tags).
//!
//! Dropped: everything in `<head>` (including `<title>`), `<script>`, `<style>`,
//! `<template>`, `<noscript>`, `<iframe>`, `<object>`, comments and doctypes.
//! Block elements (`p`, `div`, headings, list items, rows, …) start new lines or
//! paragraphs, table cells are separated by spaces, `<br>` breaks the line. Character
//! references are decoded by the tokenizer.
//!
//! Bytes are decoded from a BOM, else as UTF-8 when valid, else by the
//! `<meta charset>` / `http-equiv` label found in the first KiB, else Windows-1252
//! (what browsers do).

use html5gum::{DefaultEmitter, Token, Tokenizer};

use crate::detect::find;
use crate::error::Result;
use crate::text::{Sink, decode};

/// Elements whose whole content is invisible.
const HIDDEN: &[&[u8]] = &[
    b"head",
    b"script",
    b"style",
    b"template",
    b"noscript",
    b"iframe",
    b"object",
    b"title",
];
/// Elements allowed inside `<head>`; any other start tag ends an unclosed head.
const HEAD_CONTENT: &[&[u8]] = &[
    b"title",
    b"meta",
    b"link",
    b"base",
    b"script",
    b"style",
    b"noscript",
    b"template",
];
const PARAGRAPH: &[&[u8]] = &[
    b"p",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"blockquote",
    b"pre",
    b"table",
    b"ul",
    b"ol",
    b"dl",
    b"section",
    b"article",
    b"header",
    b"footer",
    b"main",
    b"nav",
    b"aside",
    b"figure",
    b"form",
    b"fieldset",
    b"hr",
    b"body",
];
const LINE: &[&[u8]] = &[
    b"div",
    b"li",
    b"tr",
    b"br",
    b"dd",
    b"dt",
    b"option",
    b"caption",
    b"figcaption",
    b"address",
    b"summary",
    b"details",
    b"legend",
    b"label",
    b"textarea",
    b"thead",
    b"tbody",
    b"tfoot",
];
const CELL: &[&[u8]] = &[b"td", b"th"];

/// Extract HTML bytes.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let text = decode_html(bytes);
    extract_str(&text, sink)
}

/// Extract already-decoded HTML.
pub(crate) fn extract_str(html: &str, sink: &mut Sink) -> Result<()> {
    let mut emitter = DefaultEmitter::default();
    emitter.naively_switch_states(true);
    // (hidden element name, nesting depth of that name)
    let mut hidden: Option<(Vec<u8>, usize)> = None;
    for token in Tokenizer::new_with_emitter(html, emitter) {
        if !sink.proceed()? {
            return Ok(());
        }
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => {
                let name = tag.name.0.to_ascii_lowercase();
                if let Some((hidden_name, depth)) = hidden.as_mut() {
                    if hidden_name == b"head" && !HEAD_CONTENT.contains(&name.as_slice()) {
                        hidden = None; // an unclosed <head> ends at the first body element
                    } else {
                        if *hidden_name == name && !tag.self_closing {
                            *depth += 1;
                        }
                        continue;
                    }
                }
                if HIDDEN.contains(&name.as_slice()) {
                    if !tag.self_closing {
                        hidden = Some((name, 1));
                    }
                    continue;
                }
                separate(&name, sink);
            }
            Token::EndTag(tag) => {
                let name = tag.name.0.to_ascii_lowercase();
                if let Some((hidden_name, depth)) = hidden.as_mut() {
                    if *hidden_name == name {
                        *depth -= 1;
                        if *depth == 0 {
                            hidden = None;
                        }
                    } else if hidden_name == b"head" && (name == b"body" || name == b"html") {
                        hidden = None;
                    }
                    continue;
                }
                separate(&name, sink);
            }
            Token::String(s) => {
                if hidden.is_none() {
                    sink.push(&String::from_utf8_lossy(&s.value.0));
                }
            }
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    Ok(())
}

fn separate(name: &[u8], sink: &mut Sink) {
    if PARAGRAPH.contains(&name) {
        sink.para();
    } else if LINE.contains(&name) {
        sink.line();
    } else if CELL.contains(&name) {
        sink.space();
    }
}

/// Decode HTML bytes (see the module docs for the order of precedence).
pub(crate) fn decode_html(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let has_bom = bytes.starts_with(&[0xEF, 0xBB, 0xBF])
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF]);
    if has_bom || std::str::from_utf8(bytes).is_ok() {
        return decode(bytes);
    }
    let head = &bytes[..bytes.len().min(1024)];
    let lower = head.to_ascii_lowercase();
    if let Some(at) = find(&lower, b"charset=") {
        let label: Vec<u8> = lower[at + 8..]
            .iter()
            .copied()
            .skip_while(|b| *b == b'"' || *b == b'\'' || *b == b' ')
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
            .collect();
        if let Some(enc) = encoding_rs::Encoding::for_label(&label) {
            return std::borrow::Cow::Owned(enc.decode_without_bom_handling(bytes).0.into_owned());
        }
    }
    std::borrow::Cow::Owned(
        encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    )
}
