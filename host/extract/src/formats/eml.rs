//! E-mail messages (RFC 5322 / MIME) with `mail-parser`.
//!
//! Output: `Subject:`, `From:`, `To:`, `Cc:` and `Date:` lines, a blank line, the
//! body (text/plain parts as they are, text/html parts through the HTML extractor's
//! visible-text rules, nested messages' bodies included by mail-parser), then an
//! `Attachments:` line naming every attachment. Attachment contents are not
//! extracted.

use mail_parser::{Address, MessageParser, MimeHeaders, PartType};

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::formats::html;
use crate::text::Sink;

/// Extract an e-mail body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| ExtractError::failed(Format::Eml, "not an RFC 5322 message (no headers)"))?;
    if message.headers().is_empty() {
        return Err(ExtractError::failed(
            Format::Eml,
            "not an RFC 5322 message (no headers)",
        ));
    }
    if let Some(subject) = message.subject() {
        header(sink, "Subject", subject);
    }
    for (name, address) in [
        ("From", message.from()),
        ("To", message.to()),
        ("Cc", message.cc()),
    ] {
        if let Some(address) = address {
            header(sink, name, &addresses(address));
        }
    }
    if let Some(date) = message.date() {
        header(sink, "Date", &date.to_rfc3339());
    }
    for part in message.text_bodies() {
        if !sink.proceed()? {
            return Ok(());
        }
        sink.para();
        match &part.body {
            PartType::Text(text) => sink.push(text),
            PartType::Html(html) => html::extract_str(html, sink)?,
            _ => {}
        }
    }
    let names: Vec<String> = message
        .attachments()
        .map(|a| match (a.attachment_name(), &a.body) {
            (Some(name), _) => name.to_owned(),
            (None, PartType::Message(m)) => m
                .subject()
                .map_or_else(|| "(message)".to_owned(), |s| format!("{s}.eml")),
            (None, _) => "(unnamed)".to_owned(),
        })
        .collect();
    if !names.is_empty() {
        sink.para();
        header(sink, "Attachments", &names.join(", "));
    }
    Ok(())
}

fn header(sink: &mut Sink, name: &str, value: &str) {
    sink.line();
    sink.push(name);
    sink.push(": ");
    sink.push(value);
}

fn addresses(address: &Address<'_>) -> String {
    address
        .iter()
        .map(|a| match (&a.name, &a.address) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}
