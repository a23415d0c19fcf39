//! OpenDocument text, spreadsheet and presentation files (ODT, ODS, ODP): the
//! `content.xml` part of the zip container, in document order.
//!
//! Paragraphs and headings (`text:p`, `text:h`) become paragraphs, `text:line-break`
//! a line break, `text:tab`/`text:s` a space; table cells are separated by spaces and
//! rows by line breaks, so an ODS sheet reads row by row (paragraphs inside ODS cells are
//! just cell text) (a cell repeated with
//! `table:number-columns-repeated` is written once — nothing is expanded, so a
//! "1 048 576 repeated rows" sheet costs nothing). Slides (`draw:page`) and sheets
//! (`table:table`) are separated by blank lines; speaker notes are included. Styles,
//! scripts, embedded binaries, forms and tracked-change (deleted) text are skipped.

use crate::container::Container;
use crate::detect::{Format, odf_from_mimetype};
use crate::error::{ExtractError, Result};
use crate::formats::xml::Rules;
use crate::text::Sink;

const CONTENT: Rules = Rules {
    text_in: Some(&["body"]),
    skip: &[
        "tracked-changes",
        "binary-data",
        "forms",
        "scripts",
        "automatic-styles",
        "font-face-decls",
    ],
    para: &["p", "h", "page", "table", "list-item"],
    line: &["line-break", "table-row"],
    space: &["tab", "s", "table-cell", "covered-table-cell"],
    every_element_spaces: false,
};

/// Spreadsheets: paragraphs inside cells are just cell text.
const SHEET: Rules = Rules {
    text_in: Some(&["body"]),
    skip: CONTENT.skip,
    para: &["table"],
    line: &["table-row", "line-break"],
    space: &["p", "h", "tab", "s", "table-cell", "covered-table-cell"],
    every_element_spaces: false,
};

/// Extract an ODT/ODS/ODP body.
pub(crate) fn extract(bytes: &[u8], format: Format, sink: &mut Sink) -> Result<()> {
    let mut zip = Container::open(bytes, format, sink.budget())?;
    if let Some(mimetype) = zip.read_opt("mimetype", sink.budget())?
        && let Some(actual) = odf_from_mimetype(&mimetype)
        && actual != format
    {
        tracing::debug!(expected = %format, %actual, "ODF mimetype differs from the detected type");
    }
    let rules = if format == Format::Ods {
        &SHEET
    } else {
        &CONTENT
    };
    if zip.walk("content.xml", rules, sink)? {
        Ok(())
    } else {
        Err(ExtractError::failed(
            format,
            "zip entry content.xml is missing (not an OpenDocument file?)",
        ))
    }
}
