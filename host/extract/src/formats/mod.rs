//! One module per format family; `run` dispatches a detected format to its extractor.
//! Every extractor writes into the shared [`Sink`], so whitespace normalisation, the
//! output cap and the cooperative deadline behave the same everywhere.

pub(crate) mod delimited;
pub(crate) mod doc;
pub(crate) mod eml;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod msg;
pub(crate) mod odf;
pub(crate) mod ooxml;
pub(crate) mod pdf;
pub(crate) mod ppt;
pub(crate) mod rtf;
pub(crate) mod sheets;
pub(crate) mod vsd;
pub(crate) mod xlsx;
pub(crate) mod xml;

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::{Sink, decode, looks_binary};

/// Extract `bytes` as `format` into `sink`.
pub(crate) fn run(bytes: &[u8], format: Format, sink: &mut Sink) -> Result<()> {
    if format.is_textual() && looks_binary(bytes) {
        return Err(ExtractError::failed(
            format,
            "binary content (NUL bytes), not text",
        ));
    }
    match format {
        Format::Text | Format::Markdown => {
            sink.push(&decode(bytes));
            Ok(())
        }
        Format::Csv | Format::Tsv => delimited::extract(bytes, format, sink),
        Format::Json => json::extract(bytes, sink),
        Format::Xml => xml::extract(bytes, sink),
        Format::Html => html::extract(bytes, sink),
        Format::Pdf => pdf::extract(bytes, sink),
        Format::Docx => ooxml::docx(bytes, sink),
        Format::Pptx => ooxml::pptx(bytes, sink),
        Format::Xlsx => xlsx::xlsx(bytes, sink),
        Format::Xlsb => sheets::xlsb(bytes, sink),
        Format::Xls => sheets::xls(bytes, sink),
        Format::Odt | Format::Ods | Format::Odp => odf::extract(bytes, format, sink),
        Format::Rtf => rtf::extract(bytes, sink),
        Format::Eml => eml::extract(bytes, sink),
        Format::Doc => doc::extract(bytes, sink),
        Format::Ppt => ppt::extract(bytes, sink),
        Format::Msg => msg::extract(bytes, sink),
        Format::Vsd => vsd::extract(bytes, sink),
        Format::Vsdx => ooxml::vsdx(bytes, sink),
    }
}
