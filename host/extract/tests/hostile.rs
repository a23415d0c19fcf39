//! Hostile and broken inputs: every one must end in a clean `Err` (or a bounded `Ok`),
//! never a panic, an abort, or unbounded memory or time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fixtures;

use std::time::{Duration, Instant};

use tributary_extract::{ExtractError, Extractor, Format, Limits, extract};

const MIB: u64 = 1024 * 1024;

fn failed(r: Result<tributary_extract::Extracted, ExtractError>) -> String {
    match r {
        Err(ExtractError::Failed(m)) => m,
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// Deterministic pseudo-random bytes (no PDF/zip magic).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 0x80
        })
        .collect()
}

#[test]
fn zip_bomb_docx_is_refused() {
    let big = "lorem ".repeat(700_000); // ~4 MiB of text, deflates to a few KiB
    let bomb = fixtures::docx_paragraphs(&[big]);
    assert!(
        bomb.len() < 100_000,
        "fixture should be small: {}",
        bomb.len()
    );
    let limits = Limits {
        max_decompressed_bytes: MIB,
        ..Limits::default()
    };
    let msg = failed(extract(&bomb, "bomb.docx", None, &limits));
    assert_eq!(
        msg,
        "docx: zip entry word/document.xml inflates past the 1 MiB limit"
    );
}

/// Rewrite the uncompressed-size fields of every entry (local and central headers)
/// to `size`, as a bomb that lies about its size would.
fn lie_about_sizes(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 30 < zip.len() {
        match &zip[i..i + 4] {
            b"PK\x03\x04" => zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
            b"PK\x01\x02" => zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes()),
            _ => {}
        }
        i += 1;
    }
}

#[test]
fn zip_bomb_with_lying_headers_is_refused() {
    let big = "lorem ".repeat(700_000);
    let mut bomb = fixtures::docx_paragraphs(&[big]);
    lie_about_sizes(&mut bomb, 100);
    let limits = Limits {
        max_decompressed_bytes: MIB,
        ..Limits::default()
    };
    let msg = failed(extract(&bomb, "bomb.docx", None, &limits));
    assert!(msg.starts_with("docx: zip entry "), "{msg}");
}

/// A part is walked as it inflates, so its checksum is only checked at its end: a part whose
/// bytes do not match it fails the file, naming the entry, whatever text went out before.
#[test]
fn a_part_failing_its_checksum_fails_the_file() {
    let mut docx = fixtures::docx_paragraphs(&["lorem ipsum ".repeat(10_000)]);
    let name = b"word/document.xml";
    let mut spoiled = 0;
    let mut i = 0;
    while i + 30 < docx.len() {
        let header = &docx[i..i + 4];
        // CRC-32 at 14 in a local header, 16 in a central one; the name follows at 30 / 46
        let (crc, at) = match header {
            b"PK\x03\x04" => (i + 14, i + 30),
            b"PK\x01\x02" => (i + 16, i + 46),
            _ => {
                i += 1;
                continue;
            }
        };
        if docx.get(at..at + name.len()) == Some(&name[..]) {
            docx[crc] ^= 0xFF;
            spoiled += 1;
        }
        i += 4;
    }
    assert_eq!(spoiled, 2);
    let msg = failed(extract(&docx, "spoiled.docx", None, &Limits::default()));
    assert!(
        msg.starts_with("docx: zip entry word/document.xml: ") && msg.contains("checksum"),
        "{msg}"
    );
}

#[test]
fn xlsx_bomb_is_refused_before_it_inflates() {
    use fixtures::Cell;
    // 50 000 numeric cells: ~1.5 MiB of sheet XML that deflates to a few KiB
    let rows: Vec<Vec<Cell<'_>>> = (0..5_000)
        .map(|r| (0..10).map(|c| Cell::Num(f64::from(r * 10 + c))).collect())
        .collect();
    let bomb = fixtures::xlsx(&[("S", rows)]);
    let limits = Limits {
        max_decompressed_bytes: MIB,
        ..Limits::default()
    };
    let msg = failed(extract(&bomb, "bomb.xlsx", None, &limits));
    assert!(
        msg.starts_with("xlsx: zip entry xl/worksheets/sheet1.xml inflates past the 1 MiB limit"),
        "{msg}"
    );
}

#[test]
fn too_many_zip_entries() {
    let names: Vec<String> = (0..50).map(|i| format!("word/part{i}.xml")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"<x/>"[..])).collect();
    let zip = fixtures::zip(&entries, &[]);
    let limits = Limits {
        max_archive_entries: 10,
        ..Limits::default()
    };
    let msg = failed(extract(&zip, "many.docx", None, &limits));
    assert_eq!(
        msg,
        "docx: zip container lists 50 entries, more than the limit of 10"
    );
}

#[test]
fn truncated_files_fail_cleanly() {
    let pdf = fixtures::pdf_fixture();
    let msg = failed(extract(
        &pdf[..pdf.len() / 2],
        "cut.pdf",
        None,
        &Limits::default(),
    ));
    assert!(msg.starts_with("pdf: "), "{msg}");

    let docx = fixtures::docx();
    let msg = failed(extract(
        &docx[..docx.len() / 2],
        "cut.docx",
        None,
        &Limits::default(),
    ));
    assert!(msg.starts_with("docx: unreadable zip container"), "{msg}");

    let xlsx = fixtures::xlsx_fixture();
    let msg = failed(extract(
        &xlsx[..xlsx.len() - 30],
        "cut.xlsx",
        None,
        &Limits::default(),
    ));
    assert!(msg.starts_with("xlsx: "), "{msg}");

    let xls = fixtures::xls("S", &["a"], &[1.0], &[]);
    let msg = failed(extract(
        &xls[..xls.len() / 2],
        "cut.xls",
        None,
        &Limits::default(),
    ));
    assert!(msg.starts_with("xls: "), "{msg}");

    let msg = failed(extract(
        &fixtures::JSON.as_bytes()[..40],
        "cut.json",
        None,
        &Limits::default(),
    ));
    assert!(msg.starts_with("json: "), "{msg}");

    // broken XML inside a part: the DOCX opens, the part does not parse
    let docx = fixtures::docx_from_body("<w:p><w:r><w:t>ok</w:t><w:t a=\"unterminated>", None);
    let msg = failed(extract(&docx, "bad.docx", None, &Limits::default()));
    assert!(
        msg.starts_with("docx: word/document.xml: malformed XML"),
        "{msg}"
    );
}

#[test]
fn random_bytes_with_a_document_extension() {
    let junk = noise(4096);
    assert_eq!(
        failed(extract(&junk, "scan.pdf", None, &Limits::default())),
        "pdf: missing %PDF- header (not a PDF)"
    );
    assert_eq!(
        failed(extract(&junk, "letter.docx", None, &Limits::default())),
        "docx: not a zip container (no PK signature)"
    );
    assert_eq!(
        failed(extract(&junk, "sheet.xlsx", None, &Limits::default())),
        "xlsx: not a zip container (no PK signature)"
    );
    assert_eq!(
        failed(extract(&junk, "notes.odt", None, &Limits::default())),
        "odt: not a zip container (no PK signature)"
    );
    assert_eq!(
        failed(extract(&junk, "old.rtf", None, &Limits::default())),
        "rtf: missing {\\rtf header (not an RTF file)"
    );
    // binary content named as text
    let mut nul = b"abc".to_vec();
    nul.extend_from_slice(&[0, 1, 2, 3, 0, 0, 7]);
    assert_eq!(
        failed(extract(&nul, "notes.txt", None, &Limits::default())),
        "text: binary content (NUL bytes), not text"
    );
    // unknown binary with no name: unsupported, not failed
    assert!(matches!(
        extract(
            &[0u8, 159, 146, 150, 0, 1],
            "blob",
            None,
            &Limits::default()
        ),
        Err(ExtractError::Unsupported(_))
    ));
    assert!(
        matches!(extract(b"\x89PNG\r\n\x1a\n\0\0", "image.txt", None, &Limits::default()), Err(ExtractError::Unsupported(m)) if m == "PNG image")
    );
    // a legacy Office name on bytes that are no compound file (nor a web page)
    assert_eq!(
        failed(extract(b"whatever", "old.doc", None, &Limits::default())),
        "doc: not an OLE2 compound file (no D0 CF 11 E0 signature)"
    );
}

#[test]
fn pdf_named_docx_is_read_as_pdf() {
    let out = extract(
        &fixtures::pdf_fixture(),
        "really-a-pdf.docx",
        Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out.format, Format::Pdf);
    assert!(out.text.starts_with("Hello PDF world"), "{:?}", out.text);
    // and a DOCX named .pdf is read as a DOCX
    let out = extract(
        &fixtures::docx(),
        "really-a-docx.pdf",
        Some("application/pdf"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out.format, Format::Docx);
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let limits = Limits::default().with_max_input_bytes(1000);
    // not even a valid PDF: size is checked before anything looks at the bytes
    let body = vec![b'x'; 1001];
    assert_eq!(
        extract(&body, "big.pdf", None, &limits),
        Err(ExtractError::TooLarge {
            size: 1001,
            limit: 1000
        })
    );
    assert!(extract(&body[..1000], "ok.txt", None, &limits).is_ok());
    assert_eq!(Limits::default().max_input_bytes, 10 * MIB);
}

#[test]
fn output_is_truncated_at_a_char_boundary_and_flagged() {
    let text = "é".repeat(10_000); // 2 bytes each
    let limits = Limits::default().with_max_output_bytes(1001);
    let out = extract(text.as_bytes(), "a.txt", None, &limits).unwrap();
    assert!(out.truncated);
    assert_eq!(out.text.len(), 1000);
    assert!(out.text.chars().all(|c| c == 'é'));

    // the same through a structured format and through the PDF path
    let paragraphs: Vec<String> = (0..500).map(|i| format!("paragraph number {i}")).collect();
    let out = extract(
        &fixtures::docx_paragraphs(&paragraphs),
        "long.docx",
        None,
        &limits,
    )
    .unwrap();
    assert!(
        out.truncated && out.text.len() <= 1001 && out.text.starts_with("paragraph number 0\n\n")
    );
    let lines: Vec<String> = (0..40).map(|i| format!("line {i} of many words")).collect();
    let pages: Vec<Vec<String>> = (0..20).map(|_| lines.clone()).collect();
    let out = extract(&fixtures::pdf(&pages, true), "long.pdf", None, &limits).unwrap();
    assert!(
        out.truncated && out.text.len() <= 1001,
        "{}",
        out.text.len()
    );

    // small output: not flagged
    let out = extract(b"short", "a.txt", None, &limits).unwrap();
    assert!(!out.truncated);
}

#[test]
fn pdf_deflate_bomb_is_refused() {
    let big = "BT (x) Tj ET\n".repeat(400_000); // ~5 MiB of content stream
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
        fixtures::stream_object(big.as_bytes(), true, ""),
    ];
    let bomb = fixtures::assemble_pdf(&objects);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let limits = Limits {
        max_decompressed_bytes: MIB,
        ..Limits::default()
    };
    assert_eq!(
        failed(extract(&bomb, "bomb.pdf", None, &limits)),
        "pdf: stream 4 0 inflates past the 1 MiB limit"
    );
}

#[test]
fn pdf_object_stream_bomb_is_refused_while_loading() {
    let mut content = b"7 0 << /A 1 >>".to_vec();
    content.extend(std::iter::repeat_n(b' ', 5 * MIB as usize));
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R >>".to_vec(),
        fixtures::stream_object(&content, true, " /Type /ObjStm /N 1 /First 4"),
    ];
    let bomb = fixtures::assemble_pdf(&objects);
    let limits = Limits {
        max_decompressed_bytes: MIB,
        ..Limits::default()
    };
    assert_eq!(
        failed(extract(&bomb, "objstm.pdf", None, &limits)),
        "pdf: stream 4 0 inflates past the 1 MiB limit"
    );
}

#[test]
fn pdf_recursion_hazards_are_defused() {
    // a form XObject that draws itself: pdf-extract would recurse until the stack
    // overflows (an abort, not a panic)
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /XObject << /Fm1 5 0 R >> /Font << /F1 6 0 R >> >> >>".to_vec(),
        fixtures::stream_object(b"BT /F1 12 Tf 72 700 Td (Before form) Tj ET /Fm1 Do", false, ""),
        fixtures::stream_object(b"/Fm1 Do", false, " /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /Fm1 5 0 R >> >>"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    let out = extract(
        &fixtures::assemble_pdf(&objects),
        "loop.pdf",
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out.text, "Before form");

    // a page tree whose Parent chain loops and lacks the inherited MediaBox
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 2 0 R >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
        fixtures::stream_object(b"BT ET", false, ""),
    ];
    assert_eq!(
        failed(extract(
            &fixtures::assemble_pdf(&objects),
            "tree.pdf",
            None,
            &Limits::default()
        )),
        "pdf: page tree Parent chain loops"
    );
}

#[test]
fn pdf_parser_panic_is_contained() {
    // no MediaBox anywhere: pdf-extract calls .expect("MediaBox") and panics
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
        fixtures::stream_object(b"BT ET", false, ""),
    ];
    let msg = failed(extract(
        &fixtures::assemble_pdf(&objects),
        "nobox.pdf",
        None,
        &Limits::default(),
    ));
    assert_eq!(msg, "pdf: parser panicked: MediaBox");
}

#[test]
fn deep_nesting_fails_cleanly_or_streams() {
    let rtf = format!("{{\\rtf1 {}x{}}}", "{".repeat(100_000), "}".repeat(100_000));
    assert_eq!(
        failed(extract(
            rtf.as_bytes(),
            "deep.rtf",
            None,
            &Limits::default()
        )),
        "rtf: groups nest deeper than 1000 levels"
    );
    let json = "[".repeat(100_000);
    let msg = failed(extract(
        json.as_bytes(),
        "deep.json",
        None,
        &Limits::default(),
    ));
    assert!(msg.contains("recursion limit"), "{msg}");
    // streaming parsers do not recurse: deep XML and HTML are just slow-free text
    let xml = format!("{}deep{}", "<a>".repeat(50_000), "</a>".repeat(50_000));
    assert_eq!(
        extract(xml.as_bytes(), "deep.xml", None, &Limits::default())
            .unwrap()
            .text,
        "deep"
    );
    let html = format!("{}deep", "<div>".repeat(50_000));
    assert_eq!(
        extract(html.as_bytes(), "deep.html", None, &Limits::default())
            .unwrap()
            .text,
        "deep"
    );
}

#[test]
fn xls_with_a_huge_sparse_sheet_is_refused() {
    // two cells at opposite corners: calamine would allocate all 16.7 M cells
    let xls = fixtures::xls("S", &["a"], &[1.0], &[(65_535, 255)]);
    let msg = failed(extract(&xls, "sparse.xls", None, &Limits::default()));
    assert!(
        msg.starts_with("xls: sheets span ") && msg.ends_with("past the 64 MiB limit"),
        "{msg}"
    );
}

#[test]
fn xml_entity_expansion_is_not_performed() {
    let lol = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><l>x &c; y</l>"#;
    assert_eq!(
        extract(lol.as_bytes(), "lol.xml", None, &Limits::default())
            .unwrap()
            .text,
        "x y"
    );
}

#[test]
fn cooperative_deadline_inside_sync_extract() {
    let csv: String = (0..50_000).map(|i| format!("{i},b,c\n")).collect();
    let limits = Limits::default().with_timeout(Duration::ZERO);
    assert_eq!(
        extract(csv.as_bytes(), "big.csv", None, &limits),
        Err(ExtractError::TimedOut(Duration::ZERO))
    );
}

#[tokio::test]
async fn extractor_refuses_oversized_input_without_waiting_for_a_slot() {
    let extractor = Extractor::new(Limits::default().with_max_input_bytes(10), 1);
    let start = Instant::now();
    let r = extractor.extract(vec![0u8; 11].into(), "x.txt", None).await;
    assert_eq!(
        r,
        Err(ExtractError::TooLarge {
            size: 11,
            limit: 10
        })
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn extractor_runs_hostile_files_and_keeps_going() {
    let extractor = Extractor::new(
        Limits {
            max_decompressed_bytes: MIB,
            ..Limits::default()
        },
        2,
    );
    let bomb = fixtures::docx_paragraphs(&["lorem ".repeat(700_000)]);
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
        fixtures::stream_object(b"BT ET", false, ""),
    ];
    let panicky = fixtures::assemble_pdf(&objects);
    let (a, b, c) = tokio::join!(
        extractor.extract(bomb.into(), "bomb.docx", None),
        extractor.extract(panicky.into(), "panic.pdf", None),
        extractor.extract(fixtures::docx().into(), "fine.docx", None),
    );
    assert!(matches!(a, Err(ExtractError::Failed(_))));
    assert!(matches!(b, Err(ExtractError::Failed(ref m)) if m.contains("parser panicked")));
    assert_eq!(c.unwrap().text, fixtures::DOCX_TEXT);
    assert_eq!(extractor.available_slots(), 2);
}

#[test]
fn broken_legacy_office_files_fail_cleanly() {
    let limits = Limits::default();
    let doc_with = |patch: &dyn Fn(&mut Vec<u8>, &mut Vec<u8>)| {
        let (mut word, mut table) =
            fixtures::doc_streams(&[fixtures::DocPiece::Wide("Some text\r")], 10, 0, 0);
        patch(&mut word, &mut table);
        fixtures::ole(&[("/WordDocument", &word), ("/1Table", &table)])
    };
    let clx_pair = 154 + 33 * 8; // fcClx / lcbClx in the FIB
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut.doc", fixtures::doc()[..3000].to_vec(), "doc: "),
        (
            "junk.doc",
            [b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".as_slice(), &noise(5000)].concat(),
            "doc: unreadable OLE2 container",
        ),
        (
            "piece.doc",
            doc_with(&|_, table| {
                // the piece's file offset, far past the stream
                let n = table.len();
                table[n - 6..n - 2].copy_from_slice(&0x3000_0000u32.to_le_bytes());
            }),
            "doc: a piece lies outside the WordDocument stream",
        ),
        (
            "clx.doc",
            doc_with(&|word, _| {
                word[clx_pair..clx_pair + 4].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
            }),
            "doc: the CLX lies outside the 1Table stream",
        ),
        (
            "plc.doc",
            doc_with(&|_, table| {
                // a Pcdt claiming more bytes than the CLX has
                table[22..26].copy_from_slice(&u32::MAX.to_le_bytes());
            }),
            "doc: piece table runs past the CLX",
        ),
        (
            "word95.doc",
            doc_with(&|word, _| word[0..2].copy_from_slice(&0xA5DCu16.to_le_bytes())),
            "doc: Word 6/95 document (before Word 97): not supported",
        ),
        (
            "notword.doc",
            fixtures::ole(&[("/Contents", &[1, 2, 3])]),
            "doc: no WordDocument stream",
        ),
        (
            "huge-record.ppt",
            {
                // a text atom declaring 4 GiB
                let mut record = fixtures::ppt_record(0, 0x0FA0, b"A\0");
                record[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
                fixtures::ole(&[("/PowerPoint Document", &record)])
            },
            "ppt: record at byte 0 runs past the end of the PowerPoint Document stream",
        ),
        (
            "locked.ppt",
            fixtures::ole(&[
                ("/PowerPoint Document", &[0; 16]),
                ("/EncryptedSummary", &[0; 16]),
            ]),
            "ppt: encrypted presentation (password protected)",
        ),
        (
            "novisio.vsd",
            fixtures::ole(&[("/Contents", &[1, 2, 3])]),
            "vsd: no VisioDocument stream",
        ),
    ];
    for (name, bytes, want) in cases {
        let msg = failed(extract(&bytes, name, None, &limits));
        assert!(msg.starts_with(want), "{name}: {msg}");
    }
    let encrypted = {
        let (word, table) =
            fixtures::doc_streams(&[fixtures::DocPiece::Wide("Secret\r")], 7, 0, 0x0100);
        fixtures::ole(&[("/WordDocument", &word), ("/1Table", &table)])
    };
    assert_eq!(
        failed(extract(&encrypted, "locked.doc", None, &limits)),
        "doc: encrypted or obfuscated document (password protected)"
    );
    // streams count against the inflation budget (they may share sectors)
    let small = Limits {
        max_decompressed_bytes: 1024,
        ..Limits::default()
    };
    let msg = failed(extract(&fixtures::doc(), "big.doc", None, &small));
    assert!(
        msg.starts_with("doc: streams read from the container pass the 1 KiB limit"),
        "{msg}"
    );
    // overlapping pieces (all covering the same characters) are read once, not 500 times
    let text: &[u8] = b"Overlap text\r";
    let chars = text.len() as u32;
    let (word, mut table) = fixtures::doc_streams(
        &vec![fixtures::DocPiece::Narrow(text); 1000],
        chars * 1000,
        0,
        0,
    );
    for i in 0..=1000usize {
        let at = 26 + i * 4; // the piece table's character positions
        let cp = if i % 2 == 0 { 0 } else { chars };
        table[at..at + 4].copy_from_slice(&cp.to_le_bytes());
    }
    let overlap = fixtures::ole(&[("/WordDocument", &word), ("/1Table", &table)]);
    assert_eq!(
        extract(&overlap, "overlap.doc", None, &limits)
            .unwrap()
            .text,
        "Overlap text"
    );
    // character counts far beyond the pieces read only what the pieces hold
    let (word, table) = fixtures::doc_streams(
        &[fixtures::DocPiece::Narrow(b"Short\r")],
        i32::MAX as u32,
        0,
        0,
    );
    let big = fixtures::ole(&[("/WordDocument", &word), ("/1Table", &table)]);
    assert_eq!(
        extract(&big, "big.doc", None, &limits).unwrap().text,
        "Short"
    );
}

/// Corrupting any byte of a legacy file gives text or a clean error, never a panic.
#[test]
fn mutated_legacy_office_files_never_panic() {
    let limits = Limits::default();
    for (name, original) in [
        ("a.doc", fixtures::doc()),
        ("a.ppt", fixtures::ppt()),
        ("a.msg", fixtures::msg()),
        ("a.vsd", fixtures::vsd()),
    ] {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..300 {
            let mut bytes = original.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % bytes.len();
                bytes[at] = (x >> 32) as u8;
            }
            match extract(&bytes, name, None, &limits) {
                Ok(_) | Err(ExtractError::Unsupported(_)) => {}
                Err(ExtractError::Failed(m)) => assert!(!m.contains("panicked"), "{name}: {m}"),
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
}

/// The XLSX reader on mangled parts: bytes changed to markup characters, ranges cut or
/// repeated, in the workbook, its relationships, styles, shared strings and sheet. Every
/// result is text or a clean failure, never a contained panic.
#[test]
fn mangled_workbook_parts_fail_cleanly_or_read() {
    use fixtures::Cell as C;
    use std::io::Read;
    let file = fixtures::xlsx(&[
        (
            "Sheet",
            vec![
                vec![C::Str("a & b"), C::Num(1.5), C::Date(45352.25)],
                vec![C::Inline("inline"), C::Bool(true), C::Formatted(2.5, 1)],
                vec![C::Error, C::Str("naïve"), C::Formatted(45000.0, 0)],
            ],
        ),
        ("Other", vec![vec![C::Str("x")]]),
    ]);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&file[..])).unwrap();
    let parts: Vec<(String, Vec<u8>)> = (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let name = entry.name().unwrap().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect();
    let mut x: u64 = 0x5DEE_CE66_D1CE_5EED;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n.max(1) as u64) as usize
    };
    const MARKUP: &[u8] = b"<>/=\"'&;#x0123456789 tsrcvTSRCV";
    // the parts the reader reads: everything under xl/, and the package relationships
    let targets: Vec<usize> = (0..parts.len())
        .filter(|&i| parts[i].0.starts_with("xl/") || parts[i].0 == "_rels/.rels")
        .collect();
    for round in 0..3000 {
        let mut mangled = parts.clone();
        let target = targets[next(targets.len())];
        let data = &mut mangled[target].1;
        for _ in 0..1 + next(4) {
            // half the edits land just inside an attribute value or a text, where the reader
            // parses numbers and indexes
            let mut at = next(data.len());
            if next(2) == 0 {
                let starts: Vec<usize> = (1..data.len())
                    .filter(|&i| matches!(data[i - 1], b'"' | b'>'))
                    .collect();
                if !starts.is_empty() {
                    at = starts[next(starts.len())];
                }
            }
            match next(3) {
                0 => data[at] = MARKUP[next(MARKUP.len())],
                1 => {
                    let end = (at + next(40)).min(data.len());
                    data.drain(at..end);
                }
                _ => {
                    let end = (at + next(40)).min(data.len());
                    let copy = data[at..end].to_vec();
                    data.splice(at..at, copy);
                }
            }
            if data.is_empty() {
                break;
            }
        }
        let refs: Vec<(&str, &[u8])> = mangled.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        let bytes = fixtures::zip(&refs, &[]);
        match extract(&bytes, "book.xlsx", None, &Limits::default()) {
            Ok(_) => {}
            Err(ExtractError::Failed(m)) => assert!(
                !m.contains("panicked"),
                "round {round} ({}): {m}",
                mangled[target].0
            ),
            Err(other) => panic!("round {round} ({}): {other:?}", mangled[target].0),
        }
    }
}
