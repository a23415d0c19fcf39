//! Extra memory of extraction, measured by a counting allocator: the HTML and XML paths need
//! O(output) beyond their input, however large the input and its tokens are, and a streamed
//! XML body needs no more than the pieces it is fed in; a plain text body of known length is
//! written into one allocation, and into the buffer of a text handed back once indexed; the XML
//! parts of Office and OpenDocument files are inflated as they are read, not whole; a
//! workbook's shared strings are held compactly, and an XLSB whose strings or records calamine
//! would blow up is refused before it reads them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fixtures;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tributary_extract::stream::{Begin, HEAD_BYTES, begin};
use tributary_extract::{Limits, extract};

/// Counts live bytes and their peak, per thread (tests run on several threads).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    /// Bytes of blocks of 256 KiB or more that were reallocated (each moved, or remapped).
    static REGROWN: Cell<usize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add_signed(delta);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        if layout.size() >= 256 << 10 {
            let _ = REGROWN.try_with(|r| r.set(r.get() + layout.size()));
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated (beyond what was live before) while extracting `bytes`, and
/// the length of the text.
fn peak_of(bytes: &[u8], name: &str) -> (usize, usize) {
    let limits = Limits::default()
        .with_max_input_bytes(64 << 20)
        .with_max_output_bytes(64 << 20);
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = extract(bytes, name, None, &limits).unwrap();
    let peak = PEAK.with(Cell::get) - base;
    (peak, out.text.len())
}

#[test]
fn html_needs_memory_for_its_output_not_its_input() {
    let attr = "q".repeat(16 << 20);
    let script = "x = '<p>';".repeat(1 << 20);
    let comment = "- > ".repeat(1 << 20);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // one 16 MiB single-quoted attribute (Elastic's fixture shape, taken further)
        (
            "attribute",
            format!("<html><body><p>Hello</p><img src='{attr}'/><p>world</p></body></html>")
                .into_bytes(),
        ),
        (
            "script",
            format!("<p>a</p><script>{script}</script><p>b</p>").into_bytes(),
        ),
        (
            "comment",
            format!("<p>a</p><!--{comment}--><p>b</p>").into_bytes(),
        ),
        // Windows-1252 (not UTF-8): transcoded piece by piece, not as a whole
        (
            "legacy",
            [
                b"<p>caf\xE9</p><img alt='".as_slice(),
                attr.as_bytes(),
                b"'><p>fin</p>",
            ]
            .concat(),
        ),
    ];
    for (what, html) in cases {
        let (peak, text) = peak_of(&html, "big.html");
        eprintln!(
            "{what}: {} input bytes, peak {peak} bytes allocated",
            html.len()
        );
        assert!(text < 32, "{what}: {text} bytes of text");
        assert!(
            peak < 512 * 1024,
            "{what}: {peak} bytes allocated for a {} byte input",
            html.len()
        );
    }
    // and the output itself is what grows: 8 MiB of visible text
    let html = "<p>some visible words</p>\n".repeat(8 << 20 >> 5);
    let (peak, text) = peak_of(html.as_bytes(), "text.html");
    assert!(text > 4 << 20);
    assert!(
        peak < 3 * text,
        "{peak} bytes allocated for {text} bytes of text"
    );
}

/// Peak bytes allocated (beyond what was live before) while extracting `bytes` as a download
/// does (its head, then 64 KiB pieces), and the length of the text.
fn streamed_peak_of(bytes: &[u8], name: &str) -> (usize, usize) {
    let limits = Limits::default()
        .with_max_input_bytes(64 << 20)
        .with_max_output_bytes(64 << 20);
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let head = bytes.len().min(HEAD_BYTES);
    let Begin::Streaming(mut stream) =
        begin(&bytes[..head], head == bytes.len(), name, None, &limits).unwrap()
    else {
        panic!("{name} does not stream");
    };
    for piece in bytes[head..].chunks(64 * 1024) {
        assert!(stream.feed(piece).unwrap());
    }
    let out = stream.finish().unwrap();
    let peak = PEAK.with(Cell::get) - base;
    (peak, out.text.len())
}

#[test]
fn xml_needs_memory_for_its_output_not_its_input() {
    // 8 MiB tokens whose text is (next to) nothing: white space the sink folds away, or markup
    let blank = " \r\n\t".repeat(2 << 20);
    let long = "- > ]] ' \" ".repeat(1 << 20);
    let cases: Vec<(&str, String)> = vec![
        ("text node", format!("<a>x{blank}y</a>")),
        ("CDATA", format!("<a>x<![CDATA[{blank}]]>y</a>")),
        ("comment", format!("<a>x<!--{long}-->y</a>")),
        (
            "attribute",
            format!("<a>x<b c='{}'/>y</a>", "q".repeat(8 << 20)),
        ),
        ("PI", format!("<a>x<?pi {long}?>y</a>")),
        (
            "DOCTYPE",
            format!(
                "<!DOCTYPE a [<!ENTITY e \"{}\"> <!-- {long} -->]><a>x y</a>",
                "v".repeat(4 << 20)
            ),
        ),
    ];
    for (what, xml) in &cases {
        for streamed in [false, true] {
            let (peak, text) = if streamed {
                streamed_peak_of(xml.as_bytes(), "big.xml")
            } else {
                peak_of(xml.as_bytes(), "big.xml")
            };
            eprintln!(
                "{what} (streamed: {streamed}): {} input bytes, peak {peak} bytes allocated",
                xml.len()
            );
            assert!(text < 32, "{what}: {text} bytes of text");
            // streamed: the head and a piece with its decoded copy; whole: nothing but the output
            assert!(
                peak < 512 * 1024,
                "{what} (streamed: {streamed}): {peak} bytes allocated for a {} byte input",
                xml.len()
            );
        }
    }
}

/// A download says how long it is: its plain text goes into one allocation of that size instead
/// of doubling (and being copied) on the way to 8 MB. A body longer than it said still reads
/// whole, and one declared far too long reserves no more than the output cap.
#[test]
fn plain_text_of_a_declared_length_is_not_regrown() {
    let body: Vec<u8> = b"lorem ipsum dolor sit amet\n"
        .iter()
        .copied()
        .cycle()
        .take(8 << 20)
        .collect();
    let limits = Limits::default()
        .with_max_input_bytes(64 << 20)
        .with_max_output_bytes(16 << 20);
    let read = |declared: u64| {
        REGROWN.with(|r| r.set(0));
        let Begin::Streaming(mut stream) =
            begin(&body[..HEAD_BYTES], false, "notes.txt", None, &limits).unwrap()
        else {
            panic!("text does not stream");
        };
        stream.expect_len(declared);
        for piece in body[HEAD_BYTES..].chunks(64 * 1024) {
            assert!(stream.feed(piece).unwrap());
        }
        let out = stream.finish().unwrap();
        (REGROWN.with(Cell::get), out.text)
    };
    let whole = String::from_utf8(body.clone()).unwrap();
    let whole = whole.trim_end();

    let (regrown, text) = read(body.len() as u64);
    assert_eq!(text, whole);
    assert_eq!(regrown, 0, "{regrown} bytes copied by regrowth");
    assert_eq!(text.capacity(), body.len());

    // Declared short: the text still comes out whole, growing past what was said.
    let (regrown, text) = read(1 << 20);
    assert_eq!(text, whole);
    assert!(regrown > 0);

    // Declared far too long: the reservation stops at the output cap.
    let (_, text) = read(1 << 40);
    assert_eq!(text, whole);
    assert_eq!(text.capacity(), 16 << 20);
}

/// Once an indexed document hands its text back, the next plain text of about its length is
/// written into that buffer: no new allocation of its size (each was a fresh mapping, faulted in
/// page by page and unmapped again).
#[test]
fn a_text_handed_back_is_the_next_texts_buffer() {
    // a size no other test of this binary asks the pool for
    let body: Vec<u8> = b"dolor sit amet\n"
        .iter()
        .copied()
        .cycle()
        .take(3_000_000)
        .collect();
    let limits = Limits::default();
    let read = || {
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let Begin::Streaming(mut stream) =
            begin(&body[..HEAD_BYTES], false, "notes.txt", None, &limits).unwrap()
        else {
            panic!("text does not stream");
        };
        stream.expect_len(body.len() as u64);
        for piece in body[HEAD_BYTES..].chunks(64 * 1024) {
            assert!(stream.feed(piece).unwrap());
        }
        let text = stream.finish().unwrap().text;
        (PEAK.with(Cell::get) - base, text)
    };
    let (first_peak, first) = read();
    assert!(first_peak >= body.len(), "{first_peak}");
    let at = first.as_ptr();
    tributary_extract::recycle::give_back(first);
    let (peak, text) = read();
    assert_eq!(text.as_ptr(), at, "the buffer handed back");
    assert_eq!(text, String::from_utf8(body.clone()).unwrap().trim_end());
    // what the read itself allocated: the head's copy and the stream, not a body's worth
    assert!(peak < 256 << 10, "{peak} bytes allocated");
}

/// A DOCX, PPTX or ODT part is walked as it inflates: 16 MiB of markup around a few words takes
/// a buffer, not the part (each part was inflated whole first, up to the 64 MiB inflation limit).
#[test]
fn office_parts_are_inflated_as_they_are_walked() {
    const MARKUP: usize = 16 << 20;
    let runs = |run: &str| run.repeat(MARKUP / run.len());
    let word = runs("<w:p><w:r><w:rPr><w:b/><w:i/></w:rPr></w:r></w:p>");
    let docx = fixtures::docx_from_body(
        &format!(
            "<w:p><w:r><w:t>first</w:t></w:r></w:p>{word}<w:p><w:r><w:t>last</w:t></w:r></w:p>"
        ),
        Some(&format!(
            "<w:footnote>{word}<w:p><w:r><w:t>note</w:t></w:r></w:p></w:footnote>"
        )),
    );
    // empty paragraphs, ~55 bytes of markup each
    let mut slide = vec![""; MARKUP / 55];
    slide[0] = "first";
    *slide.last_mut().unwrap() = "last";
    let pptx = fixtures::pptx(&[&slide], Some("note"));
    let odt = fixtures::odf(
        "application/vnd.oasis.opendocument.text",
        &format!(
            "<office:text><text:p>first</text:p>{}<text:p>last</text:p></office:text>",
            runs("<text:p><text:span text:style-name='T1'/></text:p>")
        ),
    );
    let cases = [
        ("notes.docx", docx, "first\n\nlast\n\nnote"),
        ("deck.pptx", pptx, "first\n\nlast\n\nnote"),
        ("notes.odt", odt, "first\n\nlast"),
    ];
    let limits = Limits::default();
    for (name, file, text) in cases {
        assert!(file.len() < 1 << 20, "{name}: {} bytes zipped", file.len());
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let out = extract(&file, name, None, &limits).unwrap();
        let peak = PEAK.with(Cell::get) - base;
        eprintln!(
            "{name}: {} bytes zipped, peak {peak} bytes allocated",
            file.len()
        );
        assert_eq!(out.text, text, "{name}");
        // the zip's index, one part buffer, the inflater's window, quick-xml's event
        assert!(peak < 1 << 20, "{name}: {peak} bytes allocated");
    }
}

/// A workbook's shared strings are held compactly: three million one-letter strings (51 MB of
/// XML, 300 KB zipped) after the cells' own take a few MB, where a `String` each took 104 MB.
#[test]
fn shared_strings_are_held_compactly() {
    use fixtures::Cell as C;
    const EXTRA: usize = 3_000_000;
    let extra = "<si><t>a</t></si>".repeat(EXTRA);
    let file = fixtures::xlsx_with_extra_strings(
        &[(
            "S",
            vec![
                vec![C::Str("first"), C::Num(1.5)],
                vec![C::Str("last"), C::Date(45352.0)],
            ],
        )],
        &extra,
    );
    assert!(file.len() < 1 << 20, "{} bytes zipped", file.len());
    let limits = Limits::default();
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = extract(&file, "book.xlsx", None, &limits).unwrap();
    let peak = PEAK.with(Cell::get) - base;
    eprintln!(
        "xlsx: {} bytes zipped, peak {peak} bytes allocated",
        file.len()
    );
    assert_eq!(out.text, "first 1.5\nlast 2024-03-01");
    // the table (3 MB of lengths, 3 MB of text, an offset every 32), its growth, the buffers
    assert!(peak < 16 << 20, "{peak} bytes allocated");
}

/// An XLSB whose shared strings calamine would hold in hundreds of MB (three million one-letter
/// strings, 300 KB zipped), or with a record that declares 256 MiB it does not have, is refused
/// before calamine reads it, having allocated little.
#[test]
fn xlsb_strings_and_records_calamine_would_blow_up_are_refused() {
    use fixtures::Cell as C;
    let item = fixtures::xlsb_record(0x0013, &[0, 1, 0, 0, 0, b'a', 0]);
    let many = item.repeat(3_000_000);
    // a BrtSSTItem header claiming 2^28 - 1 bytes, and nothing after it
    let lying = [0x13, 0xff, 0xff, 0xff, 0x7f];
    let rows = [vec![C::Str("first"), C::Num(1.5)]];
    let cases = [
        (
            &many[..],
            "shared strings would take more than the 64 MiB limit",
        ),
        (&lying[..], "declares 268435455 bytes, past the part's end"),
    ];
    for (extra, refusal) in cases {
        let file = fixtures::xlsb(&rows, extra);
        assert!(file.len() < 1 << 20, "{} bytes zipped", file.len());
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let err = extract(&file, "book.xlsb", None, &Limits::default()).unwrap_err();
        let peak = PEAK.with(Cell::get) - base;
        eprintln!(
            "xlsb: {} bytes zipped, peak {peak} bytes allocated: {err}",
            file.len()
        );
        let message = err.to_string();
        assert!(
            message.contains("xlsb: xl/sharedStrings.bin: ") && message.contains(refusal),
            "{message}"
        );
        assert!(peak < 4 << 20, "{peak} bytes allocated");
    }
    // the same workbook without them is read
    let file = fixtures::xlsb(&rows, &item);
    let out = extract(&file, "book.xlsb", None, &Limits::default()).unwrap();
    assert_eq!(out.text, "first 1.5");
}
