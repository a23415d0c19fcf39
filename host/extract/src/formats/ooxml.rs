//! Office Open XML word-processing and presentation documents (DOCX, PPTX), read as
//! zip containers of XML parts.
//!
//! - DOCX: the main document part (found through `_rels/.rels`, usually
//!   `word/document.xml`) in document order, then footnotes, endnotes and comments.
//!   Only `w:t` runs are text (deleted revisions and field codes are skipped), `w:p`
//!   ends a paragraph, `w:br`/`w:cr` break lines, `w:tab` and table cells separate
//!   with spaces, and the `mc:Fallback` copy of text boxes is skipped so nothing is
//!   doubled.
//! - PPTX: slides in presentation order (`p:sldIdLst` → relationships), each followed
//!   by its speaker notes; `a:t` runs, `a:p` paragraphs.
//! - VSDX (Visio): the `Text` of every shape on each page (`visio/pages/pageN.xml` in
//!   page-number order), one paragraph per shape; masters are not read.

use crate::container::{Container, relationships, rels_part_for};
use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::formats::xml::Rules;
use crate::text::Sink;

const WORD: Rules = Rules {
    text_in: Some(&["t"]),
    skip: &["Fallback", "delText", "instrText"],
    para: &["p"],
    line: &["br", "cr", "tr"],
    space: &["tab", "tc", "noBreakHyphen"],
    every_element_spaces: false,
};

const SLIDE: Rules = Rules {
    text_in: Some(&["t"]),
    skip: &["Fallback"],
    para: &["p", "sp"],
    line: &["br", "tr"],
    space: &["tc"],
    every_element_spaces: false,
};

const VISIO: Rules = Rules {
    text_in: Some(&["Text"]),
    skip: &[],
    para: &["Shape"],
    line: &[],
    space: &[],
    every_element_spaces: false,
};

/// Extract a VSDX body.
pub(crate) fn vsdx(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let mut zip = Container::open(bytes, Format::Vsdx, sink.budget())?;
    let mut pages: Vec<(u32, String)> = zip
        .names()
        .into_iter()
        .filter_map(|n| {
            let num = n
                .strip_prefix("visio/pages/page")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((num, n))
        })
        .collect();
    if pages.is_empty() && !zip.has("visio/document.xml") {
        return Err(ExtractError::failed(
            Format::Vsdx,
            "no visio/document.xml (not a Visio drawing?)",
        ));
    }
    pages.sort();
    for (_, part) in pages {
        if sink.is_full() {
            break;
        }
        sink.para();
        zip.walk(&part, &VISIO, sink)?;
    }
    Ok(())
}

/// Extract a DOCX body.
pub(crate) fn docx(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let mut zip = Container::open(bytes, Format::Docx, sink.budget())?;
    let main = main_part(&mut zip, sink, "word/document.xml")?;
    if !zip.walk(&main, &WORD, sink)? {
        return Err(ExtractError::failed(
            Format::Docx,
            format!("zip entry {main} is missing"),
        ));
    }
    let dir = main.rsplit_once('/').map(|(d, _)| d).unwrap_or("word");
    for extra in ["footnotes.xml", "endnotes.xml", "comments.xml"] {
        if sink.is_full() {
            break;
        }
        let part = format!("{dir}/{extra}");
        // A break before a part that is not there is never written.
        sink.para();
        zip.walk(&part, &WORD, sink)?;
    }
    Ok(())
}

/// Extract a PPTX body.
pub(crate) fn pptx(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let mut zip = Container::open(bytes, Format::Pptx, sink.budget())?;
    let presentation = main_part(&mut zip, sink, "ppt/presentation.xml")?;
    let slides = slide_order(&mut zip, &presentation, sink)?;
    if slides.is_empty() && !zip.has(&presentation) {
        return Err(ExtractError::failed(
            Format::Pptx,
            format!("zip entry {presentation} is missing"),
        ));
    }
    for slide in slides {
        if !sink.proceed()? {
            break;
        }
        sink.para();
        if !zip.walk(&slide, &SLIDE, sink)? {
            continue;
        }
        // speaker notes, through the slide's relationships
        if let Some(rels) = zip.read_opt(&rels_part_for(&slide), sink.budget())? {
            for (_, ty, target) in relationships(&rels, &slide) {
                if ty.ends_with("/notesSlide") {
                    sink.para();
                    zip.walk(&target, &SLIDE, sink)?;
                }
            }
        }
    }
    Ok(())
}

/// The package's main part, from `_rels/.rels` (officeDocument relationship).
pub(crate) fn main_part(
    zip: &mut Container<'_>,
    sink: &mut Sink,
    fallback: &str,
) -> Result<String> {
    if let Some(rels) = zip.read_opt("_rels/.rels", sink.budget())? {
        for (_, ty, target) in relationships(&rels, "") {
            if ty.ends_with("/officeDocument") && zip.has(&target) {
                return Ok(target);
            }
        }
    }
    Ok(fallback.to_owned())
}

/// Slide part names in presentation order; falls back to `ppt/slides/slideN.xml`
/// sorted by N when the presentation part cannot be read.
fn slide_order(
    zip: &mut Container<'_>,
    presentation: &str,
    sink: &mut Sink,
) -> Result<Vec<String>> {
    let mut ordered = Vec::new();
    if let (Some(pres), Some(rels)) = (
        zip.read_opt(presentation, sink.budget())?,
        zip.read_opt(&rels_part_for(presentation), sink.budget())?,
    ) {
        let rels = relationships(&rels, presentation);
        for id in slide_ids(&pres) {
            if let Some((_, _, target)) = rels
                .iter()
                .find(|(rid, ty, _)| *rid == id && ty.ends_with("/slide"))
            {
                ordered.push(target.clone());
            }
        }
    }
    if ordered.is_empty() {
        let mut numbered: Vec<(u32, String)> = zip
            .names()
            .into_iter()
            .filter_map(|n| {
                let num = n
                    .strip_prefix("ppt/slides/slide")?
                    .strip_suffix(".xml")?
                    .parse()
                    .ok()?;
                Some((num, n))
            })
            .collect();
        numbered.sort();
        ordered = numbered.into_iter().map(|(_, n)| n).collect();
    }
    Ok(ordered)
}

/// `r:id` values of `p:sldId` elements, in order.
fn slide_ids(presentation_xml: &[u8]) -> Vec<String> {
    use quick_xml::events::Event;
    let mut ids = Vec::new();
    let mut reader = quick_xml::Reader::from_reader(presentation_xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "sldId" => {
                for attr in e.attributes().flatten() {
                    // the relationship id is the prefixed `r:id`; plain `id` is the slide number
                    if attr.key.local_name().as_ref() == "id"
                        && attr.key.prefix().is_some()
                        && let Ok(v) = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    {
                        ids.push(v.into_owned());
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    ids
}
