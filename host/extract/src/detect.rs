//! Format detection: content sniffing first (where it is cheap and reliable), then the
//! MIME type, then the file name.
//!
//! Sniffing recognises PDF (`%PDF-` in the first KiB), RTF (`{\rtf`), zip containers
//! (looking inside for `[Content_Types].xml` parts or the ODF `mimetype` entry to pick
//! DOCX/XLSX/XLSB/PPTX/VSDX/ODT/ODS/ODP), OLE2 compound files (opened to see which streams
//! they hold: `WordDocument` → DOC, `PowerPoint Document` → PPT, `Workbook` → XLS,
//! `VisioDocument` → VSD, `__substg1.0_…` properties → MSG) and common binary
//! media/archive signatures. So a PDF named `.docx` is read as a PDF, and a zip
//! named `.pdf` is looked into; bytes that match nothing and claim a binary format by
//! name fail cleanly in that format's parser.

use std::fmt;
use std::io::Cursor;

/// A body format this crate can extract text from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Plain text, source code, configuration files and other text types.
    Text,
    /// Markdown (extracted as text; the markup characters stay).
    Markdown,
    /// Comma-separated values.
    Csv,
    /// Tab-separated values.
    Tsv,
    /// JSON and JSON Lines.
    Json,
    /// XML (also SVG, RSS, Atom, …): text nodes.
    Xml,
    /// HTML / XHTML: visible text.
    Html,
    /// PDF.
    Pdf,
    /// Word (OOXML) documents, including macro-enabled and templates.
    Docx,
    /// Excel (OOXML) workbooks.
    Xlsx,
    /// Excel binary workbooks (`.xlsb`).
    Xlsb,
    /// Legacy Excel 97-2003 workbooks (`.xls`).
    Xls,
    /// PowerPoint (OOXML) presentations.
    Pptx,
    /// OpenDocument text.
    Odt,
    /// OpenDocument spreadsheet.
    Ods,
    /// OpenDocument presentation.
    Odp,
    /// Rich Text Format.
    Rtf,
    /// An RFC 822 / MIME e-mail message.
    Eml,
    /// Legacy Word 97-2003 documents (`.doc`).
    Doc,
    /// Legacy PowerPoint 97-2003 presentations (`.ppt`).
    Ppt,
    /// Outlook messages (`.msg`).
    Msg,
    /// Legacy Visio drawings (`.vsd`), best effort.
    Vsd,
    /// Visio (OOXML) drawings (`.vsdx`, `.vsdm`).
    Vsdx,
}

impl Format {
    /// Short lower-case name, used in error messages ("docx", "pdf", …).
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Xml => "xml",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Xlsb => "xlsb",
            Format::Xls => "xls",
            Format::Pptx => "pptx",
            Format::Odt => "odt",
            Format::Ods => "ods",
            Format::Odp => "odp",
            Format::Rtf => "rtf",
            Format::Eml => "eml",
            Format::Doc => "doc",
            Format::Ppt => "ppt",
            Format::Msg => "msg",
            Format::Vsd => "vsd",
            Format::Vsdx => "vsdx",
        }
    }

    /// Every format, in declaration order.
    pub const ALL: [Format; 23] = [
        Format::Text,
        Format::Markdown,
        Format::Csv,
        Format::Tsv,
        Format::Json,
        Format::Xml,
        Format::Html,
        Format::Pdf,
        Format::Docx,
        Format::Xlsx,
        Format::Xlsb,
        Format::Xls,
        Format::Pptx,
        Format::Odt,
        Format::Ods,
        Format::Odp,
        Format::Rtf,
        Format::Eml,
        Format::Doc,
        Format::Ppt,
        Format::Msg,
        Format::Vsd,
        Format::Vsdx,
    ];

    /// Formats whose body is a zip container.
    pub(crate) fn is_zip(self) -> bool {
        matches!(
            self,
            Format::Docx
                | Format::Xlsx
                | Format::Xlsb
                | Format::Pptx
                | Format::Odt
                | Format::Ods
                | Format::Odp
                | Format::Vsdx
        )
    }

    /// Formats whose body is an OLE2 compound file.
    pub(crate) fn is_ole(self) -> bool {
        matches!(
            self,
            Format::Xls | Format::Doc | Format::Ppt | Format::Msg | Format::Vsd
        )
    }

    /// Formats that are decoded as text before parsing.
    pub(crate) fn is_textual(self) -> bool {
        matches!(
            self,
            Format::Text
                | Format::Markdown
                | Format::Csv
                | Format::Tsv
                | Format::Json
                | Format::Xml
                | Format::Html
                | Format::Eml
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the crate decided about a body, with the reason when it has no format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Detection {
    Format(Format),
    /// Recognised, but not text-bearing for us (the string says what it is).
    Unsupported(String),
}

/// Decide the format of a body from its name, MIME type and first bytes.
///
/// `head` may be the whole body (that lets zip containers be opened and looked into)
/// or just its first few KiB (then zip contents are guessed from the entry names that
/// appear in it, and a compound file is taken to be what its name or MIME type says).
/// Returns `None` for bodies this crate does not extract (images, archives, unknown
/// binaries).
///
/// ```
/// use tributary_extract::{detect, Format};
/// assert_eq!(detect("report.pdf", None, b"%PDF-1.7\n"), Some(Format::Pdf));
/// // content wins over a wrong extension
/// assert_eq!(detect("report.docx", None, b"%PDF-1.4\n"), Some(Format::Pdf));
/// assert_eq!(detect("notes.txt", Some("text/plain"), b"hello"), Some(Format::Text));
/// assert_eq!(detect("data.csv", Some("text/plain"), b"a,b"), Some(Format::Csv));
/// assert_eq!(detect("photo.jpg", None, b"\xFF\xD8\xFF\xE0"), None);
/// ```
pub fn detect(file_name: &str, mime: Option<&str>, head: &[u8]) -> Option<Format> {
    match detect_inner(file_name, mime, head) {
        Detection::Format(f) => Some(f),
        Detection::Unsupported(_) => None,
    }
}

pub(crate) fn detect_inner(file_name: &str, mime: Option<&str>, head: &[u8]) -> Detection {
    let by_mime = mime.and_then(from_mime);
    let by_name = from_name(file_name);
    let claimed = match (by_mime, by_name) {
        // text/plain is often a server's generic guess: a specific text type from the
        // name (csv, json, markdown, …) is better.
        (Some(Claim::Format(Format::Text)), Some(Claim::Format(n))) if n.is_textual() => {
            Some(Claim::Format(n))
        }
        (Some(m), _) => Some(m),
        (None, n) => n,
    };

    match sniff(head) {
        Sniff::Format(f) => Detection::Format(f),
        Sniff::Zip => match zip_kind(head) {
            Some(f) => Detection::Format(f),
            None => match claimed {
                // a partial head may not show the part names: trust a zip-based claim
                Some(Claim::Format(f)) if f.is_zip() => Detection::Format(f),
                _ => Detection::Unsupported("zip archive".into()),
            },
        },
        Sniff::Ole2 => match crate::ole::kind(head) {
            Some(f) => Detection::Format(f),
            None => match claimed {
                // a partial head cannot be opened: trust a compound-file claim
                Some(Claim::Format(f)) if f.is_ole() => Detection::Format(f),
                _ => Detection::Unsupported("OLE2 compound file of an unknown kind".into()),
            },
        },
        Sniff::Binary(what) => Detection::Unsupported(what.into()),
        Sniff::Unknown => match claimed {
            // "Word" or "Excel" files that are really HTML, XML or a mail (web exports),
            // and text served as `application/vnd.ms-excel` (CSV, often) with a text name
            Some(Claim::Format(f)) if f.is_ole() => match (sniff_text(head), by_name) {
                (Some(text @ (Format::Html | Format::Xml | Format::Eml)), _) => {
                    Detection::Format(text)
                }
                (Some(_), Some(Claim::Format(named))) if named.is_textual() => {
                    Detection::Format(named)
                }
                _ => Detection::Format(f),
            },
            Some(Claim::Format(f)) => Detection::Format(f),
            Some(Claim::Unsupported(what)) => Detection::Unsupported(what.into()),
            None => match sniff_text(head) {
                Some(f) => Detection::Format(f),
                None => Detection::Unsupported("unknown format".into()),
            },
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Format(Format),
    Unsupported(&'static str),
}

enum Sniff {
    Format(Format),
    Zip,
    Ole2,
    Binary(&'static str),
    Unknown,
}

fn sniff(head: &[u8]) -> Sniff {
    let body = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
    if find(&head[..head.len().min(1024)], b"%PDF-").is_some() {
        return Sniff::Format(Format::Pdf);
    }
    if body.starts_with(b"{\\rtf") {
        return Sniff::Format(Format::Rtf);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Sniff::Zip;
    }
    if head.starts_with(&crate::ole::MAGIC) {
        return Sniff::Ole2;
    }
    // (signature, what it is, weak: only trusted when the body also looks binary)
    const MAGIC: &[(&[u8], &str, bool)] = &[
        (b"\x89PNG\r\n\x1a\n", "PNG image", false),
        (b"\xFF\xD8\xFF", "JPEG image", false),
        (b"GIF87a", "GIF image", false),
        (b"GIF89a", "GIF image", false),
        (b"II*\0", "TIFF image", false),
        (b"MM\0*", "TIFF image", false),
        (b"BM", "BMP image", true),
        (b"\x1F\x8B", "gzip data", false),
        (b"BZh", "bzip2 data", true),
        (b"\xFD7zXZ\0", "xz data", false),
        (b"(\xB5/\xFD", "zstd data", false),
        (b"7z\xBC\xAF\x27\x1C", "7-zip archive", false),
        (b"Rar!\x1A\x07", "RAR archive", false),
        (b"\x7FELF", "ELF executable", false),
        (b"MZ", "Windows executable", true),
        (b"\0asm", "WebAssembly module", false),
        (b"OggS", "Ogg media", true),
        (b"ID3", "MP3 audio", true),
        (b"fLaC", "FLAC audio", true),
        (b"RIFF", "RIFF media", true),
        (b"\x1A\x45\xDF\xA3", "Matroska/WebM media", false),
        (b"SQLite format 3\0", "SQLite database", false),
        (b"bplist00", "binary property list", false),
        (b"%!PS", "PostScript", true),
        (b"wOFF", "web font", true),
        (b"wOF2", "web font", true),
    ];
    for (magic, what, weak) in MAGIC {
        if head.starts_with(magic) && (!weak || crate::text::looks_binary(head)) {
            return Sniff::Binary(what);
        }
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Sniff::Binary("MP4/QuickTime/HEIF media");
    }
    Sniff::Unknown
}

/// Which OOXML/ODF format a zip body is. Opens the archive when `head` is the whole
/// body; otherwise looks for part names in the raw bytes.
fn zip_kind(head: &[u8]) -> Option<Format> {
    // ODF: the first entry is an uncompressed "mimetype" naming the type.
    if head.len() > 38 && &head[30..38] == b"mimetype" {
        let rest = &head[38..head.len().min(38 + 80)];
        if let Some(f) = odf_from_mimetype(rest) {
            return Some(f);
        }
    }
    if let Ok(archive) = zip::ZipArchive::new(Cursor::new(head)) {
        let has = |name: &str| archive.index_for_name(name).is_some();
        if has("word/document.xml") {
            return Some(Format::Docx);
        }
        if has("xl/workbook.bin") {
            return Some(Format::Xlsb);
        }
        if has("xl/workbook.xml") {
            return Some(Format::Xlsx);
        }
        if has("ppt/presentation.xml") {
            return Some(Format::Pptx);
        }
        if has("visio/document.xml") {
            return Some(Format::Vsdx);
        }
        if has("[Content_Types].xml") {
            // OOXML with unusual part names: ask the content types.
            return None;
        }
        return None;
    }
    // Partial head: part names appear in local file headers.
    if find(head, b"word/").is_some() {
        Some(Format::Docx)
    } else if find(head, b"xl/workbook.bin").is_some() {
        Some(Format::Xlsb)
    } else if find(head, b"xl/").is_some() {
        Some(Format::Xlsx)
    } else if find(head, b"ppt/").is_some() {
        Some(Format::Pptx)
    } else if find(head, b"visio/").is_some() {
        Some(Format::Vsdx)
    } else {
        None
    }
}

pub(crate) fn odf_from_mimetype(bytes: &[u8]) -> Option<Format> {
    const ODF: &[(&[u8], Format)] = &[
        (b"application/vnd.oasis.opendocument.text", Format::Odt),
        (
            b"application/vnd.oasis.opendocument.spreadsheet",
            Format::Ods,
        ),
        (
            b"application/vnd.oasis.opendocument.presentation",
            Format::Odp,
        ),
    ];
    ODF.iter()
        .find(|(m, _)| bytes.starts_with(m) && bytes.get(m.len()).is_none_or(|b| *b != b'-'))
        .map(|(_, f)| *f)
}

/// Last resort for a body with no useful name or MIME type: text-like content.
fn sniff_text(head: &[u8]) -> Option<Format> {
    if crate::text::looks_binary(head) {
        return None;
    }
    let text = crate::text::decode(&head[..head.len().min(4096)]);
    let t = text.trim_start();
    let lower: String = t.chars().take(64).collect::<String>().to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        return Some(Format::Html);
    }
    if lower.starts_with("<?xml") || lower.starts_with("<svg") || lower.starts_with("<rss") {
        return Some(Format::Xml);
    }
    const MAIL_HEADERS: &[&str] = &[
        "return-path:",
        "received:",
        "delivered-to:",
        "mime-version:",
        "message-id:",
        "from:",
        "date:",
        "subject:",
    ];
    if MAIL_HEADERS.iter().any(|h| lower.starts_with(h))
        && (t.contains("\n\n") || t.contains("\r\n\r\n"))
    {
        return Some(Format::Eml);
    }
    // Mostly printable? Then it is text.
    let total = text.chars().count().max(1);
    let odd = text
        .chars()
        .filter(|c| *c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()))
        .count();
    (odd * 20 <= total).then_some(Format::Text)
}

fn from_mime(mime: &str) -> Option<Claim> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let f = match essence.as_str() {
        "" | "application/octet-stream" | "binary/octet-stream" | "application/unknown" => {
            return None;
        }
        "text/markdown" | "text/x-markdown" => Format::Markdown,
        "text/csv" | "application/csv" => Format::Csv,
        "text/tab-separated-values" => Format::Tsv,
        "application/json"
        | "text/json"
        | "application/x-ndjson"
        | "application/jsonl"
        | "application/ld+json"
        | "application/geo+json" => Format::Json,
        "text/html" | "application/xhtml+xml" => Format::Html,
        "application/xml" | "text/xml" | "image/svg+xml" => Format::Xml,
        "application/pdf" | "application/x-pdf" => Format::Pdf,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.template"
        | "application/vnd.ms-word.document.macroenabled.12"
        | "application/vnd.ms-word.template.macroenabled.12" => Format::Docx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
        | "application/vnd.ms-excel.sheet.macroenabled.12"
        | "application/vnd.ms-excel.template.macroenabled.12" => Format::Xlsx,
        "application/vnd.ms-excel.sheet.binary.macroenabled.12" => Format::Xlsb,
        "application/vnd.ms-excel" => Format::Xls,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        | "application/vnd.openxmlformats-officedocument.presentationml.slideshow"
        | "application/vnd.openxmlformats-officedocument.presentationml.template"
        | "application/vnd.ms-powerpoint.presentation.macroenabled.12"
        | "application/vnd.ms-powerpoint.slideshow.macroenabled.12" => Format::Pptx,
        "application/vnd.oasis.opendocument.text"
        | "application/vnd.oasis.opendocument.text-template" => Format::Odt,
        "application/vnd.oasis.opendocument.spreadsheet"
        | "application/vnd.oasis.opendocument.spreadsheet-template" => Format::Ods,
        "application/vnd.oasis.opendocument.presentation"
        | "application/vnd.oasis.opendocument.presentation-template" => Format::Odp,
        "application/rtf" | "text/rtf" | "application/x-rtf" => Format::Rtf,
        "message/rfc822" => Format::Eml,
        "application/msword" => Format::Doc,
        "application/vnd.ms-powerpoint" => Format::Ppt,
        "application/vnd.ms-outlook" | "application/x-ole-storage" => Format::Msg,
        "application/vnd.visio" | "application/x-visio" => Format::Vsd,
        "application/vnd.ms-visio.drawing"
        | "application/vnd.ms-visio.drawing.main+xml"
        | "application/vnd.ms-visio.drawing.macroenabled.12"
        | "application/vnd.ms-visio.drawing.macroenabled.main+xml" => Format::Vsdx,
        "application/javascript"
        | "application/x-javascript"
        | "application/ecmascript"
        | "application/x-sh"
        | "application/x-shellscript"
        | "application/x-yaml"
        | "application/yaml"
        | "application/toml"
        | "application/sql"
        | "application/x-python"
        | "application/x-tex"
        | "application/x-latex"
        | "application/x-httpd-php"
        | "application/graphql" => Format::Text,
        e if e.ends_with("+json") => Format::Json,
        e if e.ends_with("+xml") => Format::Xml,
        e if e.starts_with("text/") => Format::Text,
        e if e.starts_with("image/")
            || e.starts_with("audio/")
            || e.starts_with("video/")
            || e.starts_with("font/") =>
        {
            return Some(Claim::Unsupported("media file"));
        }
        _ => return None,
    };
    Some(Claim::Format(f))
}

fn from_name(file_name: &str) -> Option<Claim> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let lower = base.to_ascii_lowercase();
    const TEXT_NAMES: &[&str] = &[
        "makefile",
        "dockerfile",
        "containerfile",
        "readme",
        "license",
        "licence",
        "copying",
        "notice",
        "changelog",
        "changes",
        "authors",
        "contributors",
        "contributing",
        "todo",
        "gemfile",
        "rakefile",
        "procfile",
        "vagrantfile",
        "jenkinsfile",
        "justfile",
        "cmakelists.txt",
    ];
    if TEXT_NAMES.contains(&lower.as_str()) {
        return Some(Claim::Format(Format::Text));
    }
    let (_, ext) = lower.rsplit_once('.')?;
    let f = match ext {
        "md" | "markdown" | "mdown" | "mkd" | "mkdn" | "mdx" => Format::Markdown,
        "csv" => Format::Csv,
        "tsv" | "tab" => Format::Tsv,
        "json" | "jsonl" | "ndjson" | "geojson" | "ipynb" | "har" => Format::Json,
        "xml" | "xsd" | "xsl" | "xslt" | "svg" | "rss" | "atom" | "kml" | "gpx" | "xlf"
        | "xliff" | "resx" | "wsdl" | "dita" | "opf" | "ncx" | "xaml" | "plist" | "nuspec"
        | "pom" => Format::Xml,
        "html" | "htm" | "xhtml" | "shtml" => Format::Html,
        "pdf" => Format::Pdf,
        "docx" | "docm" | "dotx" | "dotm" => Format::Docx,
        "xlsx" | "xlsm" | "xltx" | "xltm" => Format::Xlsx,
        "xlsb" => Format::Xlsb,
        "xls" | "xlt" => Format::Xls,
        "pptx" | "pptm" | "potx" | "potm" | "ppsx" | "ppsm" => Format::Pptx,
        "odt" | "ott" => Format::Odt,
        "ods" | "ots" => Format::Ods,
        "odp" | "otp" => Format::Odp,
        "rtf" => Format::Rtf,
        "eml" => Format::Eml,
        "doc" | "dot" => Format::Doc,
        "ppt" | "pps" => Format::Ppt,
        "msg" => Format::Msg,
        "vsd" | "vss" | "vst" => Format::Vsd,
        "vsdx" | "vsdm" | "vstx" | "vstm" | "vssx" | "vssm" => Format::Vsdx,
        "pub" | "mpp" | "wpd" | "wps" | "pages" | "key" | "numbers" | "odg" | "one" => {
            return Some(Claim::Unsupported("unsupported office document"));
        }
        "txt" | "text" | "log" | "ini" | "cfg" | "conf" | "config" | "properties" | "env"
        | "rst" | "adoc" | "asciidoc" | "org" | "tex" | "latex" | "bib" | "srt" | "vtt" | "py"
        | "pyi" | "pyw" | "rb" | "sh" | "bash" | "zsh" | "fish" | "ps1" | "psm1" | "bat"
        | "cmd" | "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" | "cs" | "java"
        | "kt" | "kts" | "scala" | "sc" | "go" | "rs" | "swift" | "m" | "mm" | "js" | "mjs"
        | "cjs" | "ts" | "mts" | "cts" | "tsx" | "jsx" | "vue" | "svelte" | "css" | "scss"
        | "sass" | "less" | "php" | "pl" | "pm" | "lua" | "r" | "jl" | "dart" | "ex" | "exs"
        | "erl" | "hrl" | "hs" | "elm" | "clj" | "cljs" | "edn" | "groovy" | "gradle" | "sql"
        | "yaml" | "yml" | "toml" | "diff" | "patch" | "proto" | "graphql" | "gql" | "tf"
        | "hcl" | "nix" | "cmake" | "mk" | "vim" | "el" | "lisp" | "scm" | "ml" | "mli" | "fs"
        | "fsx" | "v" | "sv" | "vhd" | "vhdl" | "asm" | "s" | "awk" | "sed" | "csh" | "ksh"
        | "ics" | "vcf" | "nfo" | "json5" | "gitignore" | "gitattributes" | "editorconfig"
        | "dockerignore" | "htaccess" | "csproj" | "sln" | "xcconfig" | "pbxproj" | "lock"
        | "sum" | "mod" | "tpl" | "tmpl" | "j2" | "jinja" | "hbs" | "mustache" | "erb" | "haml"
        | "pug" | "twig" | "liquid" | "po" | "pot" | "strings" | "desc" | "me" | "1st" => {
            Format::Text
        }
        _ => return None,
    };
    Some(Claim::Format(f))
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}
