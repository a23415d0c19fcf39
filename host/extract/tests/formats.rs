//! Every supported format: a generated fixture goes in, the exact known text comes out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fixtures;

use tributary_extract::{Format, Limits, detect, extract};

fn text_of(bytes: &[u8], name: &str, mime: Option<&str>, expect_format: Format) -> String {
    let out =
        extract(bytes, name, mime, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.format, expect_format, "{name}");
    assert!(!out.truncated, "{name}");
    out.text
}

#[test]
fn plain_text_and_markdown() {
    assert_eq!(
        text_of(
            b"  Hello\r\n\tworld  \r\n\r\n\r\nBye \x07 now",
            "a.txt",
            None,
            Format::Text
        ),
        "Hello\nworld\n\nBye now"
    );
    assert_eq!(
        text_of(
            fixtures::MARKDOWN.as_bytes(),
            "README.md",
            None,
            Format::Markdown
        ),
        fixtures::MARKDOWN_TEXT
    );
    // source code and config files count as text
    // (indentation is white space at the start of a line: dropped)
    assert_eq!(
        text_of(b"def f():\n    return 1\n", "x.py", None, Format::Text),
        "def f():\nreturn 1"
    );
    assert_eq!(
        text_of(b"key: value\n", "c.yaml", None, Format::Text),
        "key: value"
    );
    assert_eq!(
        text_of(b"all:\n\tcc x.c\n", "Makefile", None, Format::Text),
        "all:\ncc x.c"
    );
}

#[test]
fn text_encodings() {
    // UTF-8 BOM
    assert_eq!(
        text_of(b"\xEF\xBB\xBFna\xC3\xAFve", "a.txt", None, Format::Text),
        "naïve"
    );
    // UTF-16 LE and BE with BOM
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("héllo wörld".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(text_of(&le, "a.txt", None, Format::Text), "héllo wörld");
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain("日本語".encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    assert_eq!(text_of(&be, "a.txt", None, Format::Text), "日本語");
    // legacy Latin-1 / Windows-1252 without any UTF-8
    assert_eq!(
        text_of(b"caf\xE9 cr\xE8me \x80", "a.txt", None, Format::Text),
        "café crème €"
    );
    // mostly UTF-8 with one broken byte: lossy
    assert_eq!(
        text_of(b"caf\xC3\xA9 \xFF ok", "a.txt", None, Format::Text),
        "café \u{FFFD} ok"
    );
}

#[test]
fn csv_and_tsv() {
    assert_eq!(
        text_of(
            fixtures::CSV.as_bytes(),
            "people.csv",
            Some("text/csv"),
            Format::Csv
        ),
        fixtures::CSV_TEXT
    );
    assert_eq!(
        text_of(fixtures::TSV.as_bytes(), "t.tsv", None, Format::Tsv),
        fixtures::TSV_TEXT
    );
}

#[test]
fn json_and_json_lines() {
    assert_eq!(
        text_of(fixtures::JSON.as_bytes(), "trip.json", None, Format::Json),
        fixtures::JSON_TEXT
    );
    assert_eq!(
        text_of(fixtures::JSONL.as_bytes(), "log.jsonl", None, Format::Json),
        fixtures::JSONL_TEXT
    );
}

#[test]
fn xml_text_nodes_without_entity_expansion() {
    assert_eq!(
        text_of(fixtures::XML.as_bytes(), "note.xml", None, Format::Xml),
        fixtures::XML_TEXT
    );
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><title>Logo</title><path d="M0 0"/><text x="1">Acme</text></svg>"#;
    assert_eq!(text_of(svg, "logo.svg", None, Format::Xml), "Logo Acme");
}

#[test]
fn html_visible_text() {
    assert_eq!(
        text_of(
            fixtures::HTML.as_bytes(),
            "page.html",
            Some("text/html; charset=utf-8"),
            Format::Html
        ),
        fixtures::HTML_TEXT
    );
    // declared legacy charset
    let latin =
        b"<html><head><meta charset=\"iso-8859-1\"></head><body><p>Gr\xFC\xDFe</p></body></html>";
    assert_eq!(text_of(latin, "old.htm", None, Format::Html), "Grüße");
    // head without a closing tag ends at the first body element
    assert_eq!(
        text_of(
            b"<head><title>T</title><p>Body text",
            "x.html",
            None,
            Format::Html
        ),
        "Body text"
    );
}

include!("fixtures/html_cases.rs");

#[test]
fn html_tokenising() {
    for (html, want) in HTML_CASES {
        assert_eq!(
            text_of(html.as_bytes(), "case.html", None, Format::Html),
            *want,
            "{html}"
        );
    }
    // UTF-16 with a BOM, Windows-1252 without a label, a label naming another encoding
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "<p>caf\u{e9} &amp; th\u{e9}</p>"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    assert_eq!(
        text_of(&utf16, "u.html", None, Format::Html),
        "caf\u{e9} & th\u{e9}"
    );
    assert_eq!(
        text_of(b"<p>caf\xE9 \x80</p>", "w.html", None, Format::Html),
        "caf\u{e9} \u{20ac}"
    );
    let sjis = b"<meta charset=shift_jis><p>\x93\xfa\x96\x7b</p>";
    assert_eq!(
        text_of(sjis, "j.html", None, Format::Html),
        "\u{65e5}\u{672c}"
    );
    // long enough to be transcoded in several pieces, with characters split across them
    let mut long = b"<meta charset=shift_jis><p>x".to_vec();
    for _ in 0..40_000 {
        long.extend_from_slice(b"\x93\xfa\x96\x7b &amp;");
    }
    long.extend_from_slice(b"</p><p>end</p>");
    let want = format!("x{}\n\nend", "\u{65e5}\u{672c} &".repeat(40_000));
    assert_eq!(text_of(&long, "j.html", None, Format::Html), want);
}

#[test]
fn legacy_office_formats() {
    assert_eq!(
        text_of(
            &fixtures::doc(),
            "memo.doc",
            Some("application/msword"),
            Format::Doc
        ),
        fixtures::DOC_TEXT
    );
    assert_eq!(
        text_of(&fixtures::ppt(), "deck.ppt", None, Format::Ppt),
        fixtures::PPT_TEXT
    );
    assert_eq!(
        text_of(&fixtures::msg(), "mail.msg", None, Format::Msg),
        fixtures::MSG_TEXT
    );
    assert_eq!(
        text_of(&fixtures::vsd(), "flow.vsd", None, Format::Vsd),
        fixtures::VSD_TEXT
    );
    assert_eq!(
        text_of(&fixtures::vsdx(), "flow.vsdx", None, Format::Vsdx),
        fixtures::VSDX_TEXT
    );
    assert_eq!(detect("blob", None, &fixtures::vsdx()), Some(Format::Vsdx));
    // an 8-bit-only Word file without extra stories, and a message with only an HTML body
    let (word, table) =
        fixtures::doc_streams(&[fixtures::DocPiece::Narrow(b"Only text\r")], 10, 0, 0);
    let doc = fixtures::ole(&[("/WordDocument", &word), ("/1Table", &table)]);
    assert_eq!(text_of(&doc, "a.doc", None, Format::Doc), "Only text");
    let html_msg = fixtures::ole(&[
        ("/__substg1.0_0037001E", b"Hi"),
        (
            "/__substg1.0_10130102",
            b"<html><body><p>Hello <b>there</b></p><script>x</script></body></html>",
        ),
    ]);
    assert_eq!(
        text_of(&html_msg, "h.msg", None, Format::Msg),
        "Subject: Hi\n\nHello there"
    );
}

#[test]
fn legacy_formats_are_detected_by_their_streams() {
    // content wins over the name, whatever the extension says
    for (bytes, format) in [
        (fixtures::doc(), Format::Doc),
        (fixtures::ppt(), Format::Ppt),
        (fixtures::msg(), Format::Msg),
        (fixtures::vsd(), Format::Vsd),
    ] {
        assert_eq!(detect("blob", None, &bytes), Some(format));
        assert_eq!(detect("misnamed.xls", None, &bytes), Some(format));
        assert_eq!(
            detect("x.doc", Some("application/vnd.ms-excel"), &bytes),
            Some(format)
        );
    }
    // only the head of a body: the name or MIME type decides among compound files
    let head = &fixtures::doc()[..512];
    assert_eq!(detect("a.doc", None, head), Some(Format::Doc));
    assert_eq!(detect("a.ppt", None, head), Some(Format::Ppt));
    assert_eq!(
        detect("a", Some("application/vnd.ms-outlook"), head),
        Some(Format::Msg)
    );
    assert_eq!(detect("a.vsd", None, head), Some(Format::Vsd));
    assert_eq!(detect("a.bin", None, head), None);
    // a compound file of another kind
    let other = fixtures::ole(&[("/Contents", b"x")]);
    assert_eq!(detect("a.bin", None, &other), None);
    // CSV served as Excel keeps its name's format; Excel-looking bytes do not
    assert_eq!(
        detect("data.csv", Some("application/vnd.ms-excel"), b"a,b\n1,2\n"),
        Some(Format::Csv)
    );
    assert_eq!(
        detect("data.xls", Some("application/vnd.ms-excel"), b"a,b\n1,2\n"),
        Some(Format::Xls)
    );
    // "Word" and "Excel" files that are really web pages
    let word_html = b"<html xmlns:o='urn:schemas-microsoft-com:office:office'><body><p>Saved from Word</p></body></html>";
    assert_eq!(
        text_of(word_html, "page.doc", None, Format::Html),
        "Saved from Word"
    );
    assert_eq!(
        text_of(
            word_html,
            "sheet.xls",
            Some("application/vnd.ms-excel"),
            Format::Html
        ),
        "Saved from Word"
    );
}

#[test]
fn pdf_pages() {
    let text = text_of(
        &fixtures::pdf_fixture(),
        "doc.pdf",
        Some("application/pdf"),
        Format::Pdf,
    );
    assert_eq!(
        text,
        "Hello PDF world\nSecond line (with parens)\n\nPage two text"
    );
}

#[test]
fn docx_paragraphs_in_order() {
    assert_eq!(
        text_of(&fixtures::docx(), "report.docx", None, Format::Docx),
        fixtures::DOCX_TEXT
    );
}

#[test]
fn pptx_slides_in_presentation_order_with_notes() {
    let bytes = fixtures::pptx(
        &[
            &["First slide", "bullet a"],
            &["Second slide"],
            &["Third slide"],
        ],
        Some("Speaker notes here"),
    );
    assert_eq!(
        text_of(&bytes, "deck.pptx", None, Format::Pptx),
        "First slide\n\nbullet a\n\nSpeaker notes here\n\nSecond slide\n\nThird slide"
    );
}

#[test]
fn xlsx_every_sheet() {
    assert_eq!(
        text_of(&fixtures::xlsx_fixture(), "book.xlsx", None, Format::Xlsx),
        fixtures::XLSX_TEXT
    );
}

/// The XLSX reader writes what calamine's cell reader (which it replaced) makes of the same
/// workbook: random sheets of shared, inline and escaped strings, numbers, booleans, errors,
/// and dates and durations by built-in and custom number formats.
#[test]
fn xlsx_text_is_calamines() {
    use fixtures::Cell as C;
    const WORDS: [&str; 9] = [
        "alpha",
        "R&D",
        "<tag>",
        "\"quoted\"",
        "it's",
        "naïve",
        "日本語",
        "two words",
        "x",
    ];
    let mut next = {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    };
    for round in 0..40 {
        let sheets: Vec<(String, Vec<Vec<C<'_>>>)> = (0..1 + next() % 3)
            .map(|s| {
                let rows = (0..next() % 12)
                    .map(|_| {
                        (0..next() % 6)
                            .map(|_| {
                                let word = WORDS[(next() % WORDS.len() as u64) as usize];
                                let n = (next() % 2_000_000) as f64 / 8.0 - 50_000.0;
                                match next() % 9 {
                                    0 | 1 => C::Str(word),
                                    2 => C::Inline(word),
                                    3 => C::Num(n),
                                    4 => C::Bool(next() % 2 == 0),
                                    5 => C::Date((next() % 60_000) as f64 + 1.0),
                                    6 => C::Formatted(
                                        (next() % 5_000_000) as f64 / 64.0,
                                        (next() % 3) as usize,
                                    ),
                                    7 => C::Error,
                                    _ => C::Num((next() % 1000) as f64),
                                }
                            })
                            .collect()
                    })
                    .collect();
                (format!("Sheet {s}"), rows)
            })
            .collect();
        let refs: Vec<(&str, Vec<Vec<C<'_>>>)> = sheets
            .into_iter()
            .map(|(name, rows)| (&*name.leak(), rows))
            .collect();
        let file = fixtures::xlsx(&refs);
        let ours = extract(&file, "book.xlsx", None, &Limits::default())
            .unwrap()
            .text;
        assert_eq!(ours, calamine_text(&file), "round {round}");
    }
}

/// A workbook whose relationships do not list its shared strings and styles still finds them
/// beside the workbook part, where calamine looked.
#[test]
fn xlsx_parts_missing_from_the_relationships_are_found_beside_the_workbook() {
    use std::io::Read;
    let file = fixtures::xlsx_fixture();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&file[..])).unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == "xl/_rels/workbook.xml.rels" {
            let rels = String::from_utf8(data).unwrap();
            let kept: Vec<&str> = rels
                .split("<Relationship ")
                .filter(|r| !r.contains("/sharedStrings\"") && !r.contains("/styles\""))
                .collect();
            data = kept.join("<Relationship ").into_bytes();
        }
        entries.push((name, data));
    }
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
    let bytes = fixtures::zip(&refs, &[]);
    assert_eq!(
        text_of(&bytes, "book.xlsx", None, Format::Xlsx),
        fixtures::XLSX_TEXT
    );
}

/// What the extractor wrote for an XLSX when calamine read it.
fn calamine_text(file: &[u8]) -> String {
    use calamine::{DataRef, Reader};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(file)).unwrap();
    let mut out = String::new();
    for name in book.sheet_names() {
        let mut cells = book.worksheet_cells_reader(&name).unwrap();
        let mut row = None;
        let mut sheet = String::new();
        while let Some(cell) = cells.next_cell().unwrap() {
            let text = match cell.get_value() {
                DataRef::Empty | DataRef::Error(_) => continue,
                DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
                DataRef::SharedString(s) => (*s).to_owned(),
                DataRef::Int(i) => i.to_string(),
                DataRef::Float(f) => f.to_string(),
                DataRef::Bool(b) => (if *b { "TRUE" } else { "FALSE" }).to_owned(),
                DataRef::DateTime(d) if d.is_datetime() => {
                    let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
                    if (h, mi, s) == (0, 0, 0) {
                        format!("{y:04}-{mo:02}-{da:02}")
                    } else {
                        format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}")
                    }
                }
                DataRef::DateTime(d) => d.as_f64().to_string(),
            };
            let r = cell.get_position().0;
            match row {
                Some(prev) if prev == r => sheet.push(' '),
                Some(_) => sheet.push('\n'),
                None => {}
            }
            row = Some(r);
            sheet.push_str(&text);
        }
        if !sheet.is_empty() {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&sheet);
        }
    }
    out
}

#[test]
fn xlsb_workbook() {
    use fixtures::Cell as C;
    let bytes = fixtures::xlsb(
        &[
            vec![C::Str("Region"), C::Str("Units")],
            vec![C::Str("North"), C::Num(42.0)],
            vec![C::Str("South"), C::Num(3.5)],
        ],
        &[],
    );
    assert_eq!(
        text_of(&bytes, "book.xlsb", None, Format::Xlsb),
        "Region Units\nNorth 42\nSouth 3.5"
    );
}

#[test]
fn xls_legacy_workbook() {
    let bytes = fixtures::xls("Data", &["Name", "Score"], &[7.0, 9.25], &[]);
    assert_eq!(
        text_of(&bytes, "old.xls", None, Format::Xls),
        "Name Score\n7 9.25"
    );
}

#[test]
fn opendocument() {
    assert_eq!(
        text_of(&fixtures::odt(), "notes.odt", None, Format::Odt),
        fixtures::ODT_TEXT
    );
    assert_eq!(
        text_of(&fixtures::ods(), "budget.ods", None, Format::Ods),
        fixtures::ODS_TEXT
    );
    assert_eq!(
        text_of(&fixtures::odp(), "talk.odp", None, Format::Odp),
        fixtures::ODP_TEXT
    );
}

#[test]
fn rtf_plain_text() {
    assert_eq!(
        text_of(fixtures::RTF.as_bytes(), "letter.rtf", None, Format::Rtf),
        fixtures::RTF_TEXT
    );
}

#[test]
fn eml_headers_body_and_attachment_names() {
    assert_eq!(
        text_of(fixtures::EML.as_bytes(), "mail.eml", None, Format::Eml),
        fixtures::EML_TEXT
    );
    assert_eq!(
        text_of(
            fixtures::EML_HTML.as_bytes(),
            "news.eml",
            Some("message/rfc822"),
            Format::Eml
        ),
        fixtures::EML_HTML_TEXT
    );
}

#[test]
fn detection_order_content_then_mime_then_name() {
    let pdf = fixtures::pdf_fixture();
    let docx = fixtures::docx();
    // sniffing wins over the name and the MIME type
    assert_eq!(
        detect(
            "x.docx",
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            &pdf
        ),
        Some(Format::Pdf)
    );
    assert_eq!(
        detect("x.pdf", Some("application/pdf"), &docx),
        Some(Format::Docx)
    );
    assert_eq!(
        detect("x.bin", None, &fixtures::xlsx_fixture()),
        Some(Format::Xlsx)
    );
    assert_eq!(
        detect("x", None, &fixtures::pptx(&[&["a"]], None)),
        Some(Format::Pptx)
    );
    assert_eq!(detect("x.zip", None, &fixtures::ods()), Some(Format::Ods));
    // a partial head: zip part names are found in the local headers
    assert_eq!(
        detect("x", None, &docx[..docx.len() - 40]),
        Some(Format::Docx)
    );
    assert_eq!(
        detect("x.txt", None, fixtures::RTF.as_bytes()),
        Some(Format::Rtf)
    );
    // then MIME, then name; text/plain yields to a specific text type by name
    assert_eq!(
        detect("noext", Some("text/html"), b"<p>x"),
        Some(Format::Html)
    );
    assert_eq!(
        detect("data.json", Some("text/plain"), b"{}"),
        Some(Format::Json)
    );
    assert_eq!(
        detect("data.json", Some("application/octet-stream"), b"{}"),
        Some(Format::Json)
    );
    assert_eq!(detect("script.sh", None, b"echo hi"), Some(Format::Text));
    // no name, no MIME: content decides
    assert_eq!(
        detect("blob", None, b"<!DOCTYPE html><p>x"),
        Some(Format::Html)
    );
    assert_eq!(detect("blob", None, b"plain words"), Some(Format::Text));
    assert_eq!(
        detect("blob", None, b"From: a@b.c\nSubject: x\n\nbody"),
        Some(Format::Eml)
    );
    // unsupported
    assert_eq!(detect("photo.png", None, b"\x89PNG\r\n\x1a\n...."), None);
    assert_eq!(
        detect("old.doc", None, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1...."),
        Some(Format::Doc)
    );
    assert_eq!(
        detect("blob", None, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1...."),
        None
    );
    assert_eq!(
        detect("old.xls", None, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1...."),
        Some(Format::Xls)
    );
    assert_eq!(
        detect("a.zip", None, &fixtures::zip(&[("a.txt", b"x")], &[])),
        None
    );
    // weak magic bytes do not make text binary
    assert_eq!(
        detect("notes.txt", None, b"BMW and MZ are words"),
        Some(Format::Text)
    );
}

#[test]
fn every_format_has_a_fixture_that_extracts() {
    // guard against adding a format without a test above
    let covered = [
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
    for f in Format::ALL {
        assert!(covered.contains(&f), "{f} has no fixture test");
    }
}
