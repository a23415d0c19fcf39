//! Text extraction from document bodies, as a host capability: plugins hand the host a
//! downloaded body plus its file name and MIME type, and get back the text to index —
//! or a clear [`ExtractError`] (`Unsupported`, `TooLarge`, `Failed`, `TimedOut`) that
//! leaves the rest of the document (name, path, metadata) indexable.
//!
//! # Formats
//!
//! | [`Format`] | read with | text |
//! | --- | --- | --- |
//! | `Text`, `Markdown` | — | the text (source code, config files, `.rst`, `.yaml`, … count as text) |
//! | `Csv`, `Tsv` | `csv` | cells joined by spaces, rows by line breaks |
//! | `Json` | `serde_json` | string and number values, one per line (keys dropped); JSON Lines too |
//! | `Xml` | own push scanner | text nodes and CDATA (also SVG, RSS, …); DTD entities never expanded |
//! | `Html` | own memchr scanner | visible text: no `head`/`title`/`script`/`style`/`template`/`noscript` |
//! | `Pdf` | `pdf-extract` (`lopdf`) | text of every page, pages separated by blank lines |
//! | `Docx` | `zip` + `quick-xml` | paragraphs in order, then footnotes, endnotes, comments |
//! | `Pptx` | `zip` + `quick-xml` | slides in presentation order, each followed by its notes |
//! | `Xlsx` | `zip` + `quick-xml` (dates by `calamine`) | cell values of every sheet, row by row |
//! | `Xlsb`, `Xls` | `calamine` | cell values of every sheet, row by row |
//! | `Odt`, `Ods`, `Odp` | `zip` + `quick-xml` | `content.xml` text in document order |
//! | `Rtf` | `rtf-parser` | the plain text |
//! | `Eml` | `mail-parser` | Subject/From/To/Cc/Date, the text (or HTML's visible text) body, attachment names |
//! | `Doc` | `cfb` + FIB/piece table | main text, then footnotes, headers, comments, endnotes, text boxes; field codes dropped |
//! | `Ppt` | `cfb` + record walk | text atoms of slides, outlines and notes (masters skipped) |
//! | `Msg` | `cfb` + MAPI properties | Subject/From/To/Cc/Bcc/Date, the text (or HTML) body, attachment names |
//! | `Vsd` | `cfb` | best effort: printable UTF-16 runs of the `VisioDocument` stream |
//! | `Vsdx` | `zip` + `quick-xml` | shape text of every page |
//!
//! Other binary formats (`.pub`, `.one`, …), media and archives are
//! [`ExtractError::Unsupported`]. See [`detect`] for how the format is chosen (content
//! sniffing first, so a PDF named `.docx` is read as a PDF, and a compound file is
//! recognised by the streams it holds).
//!
//! All text is whitespace-normalised: runs of spaces and tabs become one space, line
//! breaks are kept, two or more line breaks become one blank line (paragraph break),
//! and control characters are dropped. Text bodies are decoded as UTF-8 (BOM
//! optional) or UTF-16 (BOM), with a lossy fallback (Windows-1252 for bytes with no
//! UTF-8 in them, otherwise U+FFFD replacements).
//!
//! # Limits and hostile input
//!
//! [`Limits`] (per connector) caps the input size (checked before parsing), the output
//! size (text cut at a char boundary, [`Extracted::truncated`] set), the time per file,
//! and what zip containers, PDF streams and compound-file streams may inflate to (zip
//! bombs, deflate bombs, entry-count bombs, streams sharing sectors). Malformed or
//! truncated files fail with `Failed` naming the format and problem; a parser panic
//! is caught (`catch_unwind`) and reported as `Failed("… parser panicked: …")`. Known
//! recursion hazards in third-party parsers (PDF form/page cycles, deep RTF groups)
//! are defused before parsing, since a stack overflow cannot be caught. Panic containment needs the default `panic = "unwind"`.
//!
//! # Running it
//!
//! A body that arrives in pieces (a download) can be extracted as it arrives with
//! [`stream::begin`]: text, Markdown, CSV, TSV, JSON, XML and HTML are read piece by piece and
//! never held whole; other formats say they need the whole body. Inside a DOCX, PPTX, VSDX or
//! OpenDocument body, each XML part is inflated as it is walked, never whole.
//!
//! [`extract`] is synchronous and runs on the caller's thread. In async code use an
//! [`Extractor`]: it runs each extraction on its own thread (off the async runtime),
//! returns `TimedOut` when the time limit passes, and runs at most `max_parallel`
//! extractions at once. A timed-out parse cannot be killed; it keeps running in the
//! background until its parser returns, bounded by the size limits, and keeps its
//! concurrency slot until then (see [`Extractor`]). [`service::ServiceClient`] sends
//! bodies to an external extraction service instead.
//!
//! ```
//! use std::time::Duration;
//! use tributary_extract::{extract, ExtractError, Extractor, Format, Limits};
//!
//! let limits = Limits { max_input_bytes: 2 * 1024 * 1024, ..Limits::default() };
//!
//! let html = b"<html><head><title>t</title></head><body><p>Hello <b>world</b></p>\
//!              <script>var x = 1;</script></body></html>";
//! let out = extract(html, "page.html", Some("text/html"), &limits)?;
//! assert_eq!(out.format, Format::Html);
//! assert_eq!(out.text, "Hello world");
//! assert!(!out.truncated);
//!
//! // a body that is not what its name says fails cleanly
//! let err = extract(b"\x00\x01 not a pdf", "scan.pdf", None, &limits).unwrap_err();
//! assert!(matches!(err, ExtractError::Failed(_)));
//!
//! // off the async runtime, bounded in time and concurrency
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let extractor = Extractor::new(limits.clone().with_timeout(Duration::from_secs(10)), 2);
//! let out = extractor.extract("a,b\n1,2\n".into(), "t.csv", None).await?;
//! assert_eq!(out.text, "a b\n1 2");
//! # Ok::<(), ExtractError>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod container;
mod detect;
mod error;
mod formats;
mod limits;
mod ole;
pub mod recycle;
mod run;
pub mod service;
pub mod stream;
mod text;

pub use detect::{Format, detect};
pub use error::ExtractError;
pub use limits::Limits;
pub use run::{Extracted, Extractor, extract, extract_as, extract_blocking};

#[cfg(test)]
mod tests;
