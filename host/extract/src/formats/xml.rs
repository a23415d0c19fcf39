//! A streaming XML text walker (quick-xml) shared by plain XML, DOCX, PPTX and
//! OpenDocument, parameterised by per-format [`Rules`].
//!
//! quick-xml does not expand DTD-defined entities, so "billion laughs" documents
//! cannot blow up: only the five predefined entities and character references are
//! resolved, anything else is dropped.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::Sink;

/// Which elements carry text and which ones separate it. Names are local names
/// (namespace prefixes are ignored, so `w:p`, `a:p` and `text:p` are all `p`).
pub(crate) struct Rules {
    /// Only text inside one of these elements is kept; `None` keeps all text.
    pub text_in: Option<&'static [&'static str]>,
    /// Subtrees dropped entirely.
    pub skip: &'static [&'static str],
    /// Elements that start and end paragraphs.
    pub para: &'static [&'static str],
    /// Elements that start and end lines (rows, line breaks).
    pub line: &'static [&'static str],
    /// Elements that are separated by a space (tabs, cells, ODF `text:s`).
    pub space: &'static [&'static str],
    /// Separate every element boundary by a space (generic XML).
    pub every_element_spaces: bool,
}

/// Generic XML: all text nodes (and CDATA), separated at element boundaries.
pub(crate) const PLAIN_XML: Rules = Rules {
    text_in: None,
    skip: &[],
    para: &[],
    line: &[],
    space: &[],
    every_element_spaces: true,
};

/// Extract a generic XML document.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    walk(bytes, Format::Xml, "document", &PLAIN_XML, sink)
}

/// Walk one XML part, pushing its text to `sink` under `rules`. `part` names the part
/// in error messages.
pub(crate) fn walk(
    bytes: &[u8],
    format: Format,
    part: &str,
    rules: &Rules,
    sink: &mut Sink,
) -> Result<()> {
    let mut reader = Reader::from_reader(bytes);
    {
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.expand_empty_elements = false;
    }
    let mut buf = Vec::new();
    let mut skip_depth = 0usize;
    let mut text_depth = 0usize;
    let keep = |skip_depth: usize, text_depth: usize| {
        skip_depth == 0 && (rules.text_in.is_none() || text_depth > 0)
    };
    loop {
        if !sink.proceed()? {
            return Ok(());
        }
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            ExtractError::failed(
                format,
                format!(
                    "{part}: malformed XML near byte {}: {e}",
                    reader.buffer_position()
                ),
            )
        })?;
        match event {
            Event::Start(e) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if skip_depth > 0 || rules.skip.contains(&name) {
                    skip_depth += 1;
                } else {
                    boundary(name, rules, sink);
                    if rules.text_in.is_some_and(|t| t.contains(&name)) {
                        text_depth += 1;
                    }
                }
            }
            Event::Empty(e) => {
                if skip_depth == 0 {
                    let local = e.local_name();
                    boundary(local.as_ref(), rules, sink);
                }
            }
            Event::End(e) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if skip_depth > 0 {
                    skip_depth -= 1;
                } else {
                    if rules.text_in.is_some_and(|t| t.contains(&name)) {
                        text_depth = text_depth.saturating_sub(1);
                    }
                    boundary(name, rules, sink);
                }
            }
            Event::Text(t) => {
                if keep(skip_depth, text_depth) {
                    sink.push(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if keep(skip_depth, text_depth) {
                    sink.push(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if keep(skip_depth, text_depth) {
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        Ok(None) => match &*r {
                            "amp" => Some('&'),
                            "lt" => Some('<'),
                            "gt" => Some('>'),
                            "quot" => Some('"'),
                            "apos" => Some('\''),
                            // entities declared in a DTD are never expanded
                            _ => None,
                        },
                        Err(_) => None,
                    };
                    if let Some(c) = c {
                        let mut tmp = [0u8; 4];
                        sink.push(c.encode_utf8(&mut tmp));
                    }
                }
            }
            Event::Eof => return Ok(()),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
}

fn boundary(name: &str, rules: &Rules, sink: &mut Sink) {
    if rules.para.contains(&name) {
        sink.para();
    } else if rules.line.contains(&name) {
        sink.line();
    } else if rules.space.contains(&name) || rules.every_element_spaces {
        sink.space();
    }
}
