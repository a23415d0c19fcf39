//! The plain-XML scanner against quick-xml's walk, which it replaces, and against itself fed in
//! pieces. [`random_xml`] also serves the streamed-versus-whole test in `stream`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::Limits;
use crate::limits::Budget;
use crate::tests::rng;

fn sink() -> Sink {
    Sink::new(1 << 20, Budget::new(&Limits::default()))
}

/// The text (or the failure) of the quick-xml walk plain XML was read with before [`Feed`].
fn with_quick_xml(doc: &[u8]) -> Result<(String, bool)> {
    let mut sink = sink();
    walk(doc, Format::Xml, "document", &PLAIN_XML, &mut sink)?;
    Ok(sink.finish())
}

/// The text of [`extract`] (the scanner fed the whole document).
fn with_feed(doc: &[u8]) -> Result<(String, bool)> {
    let mut sink = sink();
    extract(doc, &mut sink)?;
    Ok(sink.finish())
}

/// The text of the scanner fed `doc` in pieces of `size` bytes (cut at character boundaries).
fn in_pieces(doc: &str, size: usize) -> Result<(String, bool)> {
    let mut sink = sink();
    let mut feed = Feed::new();
    let mut rest = doc;
    while !rest.is_empty() {
        let mut cut = size.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        feed.feed(&rest[..cut], false, &mut sink)?;
        rest = &rest[cut..];
    }
    feed.feed("", true, &mut sink)?;
    Ok(sink.finish())
}

fn pick<'a>(next: &mut impl FnMut() -> u64, items: &[&'a str]) -> &'a str {
    items[(next() % items.len() as u64) as usize]
}

const NAMES: &[&str] = &["a", "p:q", "item", "x-y", "日本", "_z"];
const ATTRIBUTES: &[&str] = &[
    " a=\"1\"",
    " b='x>y'",
    " c=\"it's > 2\"",
    " d='say \"hi\">'",
    " e = \"a&amp;b\"",
    " f=\"<\"",
    " g=\"\r\n\"",
    "\n\th='/>'",
];
const TEXT: &[&str] = &[
    "plain",
    "Grüße",
    "日本語のテキスト",
    " two  words ",
    "\r\n",
    "\r",
    "\n\n",
    "\t",
    "a\rb",
    "x\r",
    "\r\r\n",
    ">",
    "]]>",
    "]]",
    "😀",
    "--",
];
const REFERENCES: &[&str] = &[
    "&amp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&apos;",
    "&#65;",
    "&#x42;",
    "&#x1F600;",
    "&#0;",
    "&#xD800;",
    "&#x110000;",
    "&#13;",
    "&#10;",
    "&#9;",
    "&#00065;",
    "&#x00000041;",
    "&#X41;",
    "&#x;",
    "&#;",
    "&#-1;",
    "&#+1;",
    "&#99999999999;",
    "&unknown;",
    "&secret;",
    "&a;",
    "&;",
    "&ampx;",
    "&amp ;",
    "&é;",
];
const CDATA: &[&str] = &[
    "<![CDATA[]]>",
    "<![CDATA[<raw> & ]] ]> text]]>",
    "<![CDATA[a]]]>",
    "<![CDATA[]]]]>",
    "<![CDATA[x\r]]>",
    "<![CDATA[\r\n]]>",
    "<![CDATA[日本 ]>]]>",
];
const COMMENTS: &[&str] = &[
    "<!-- c -->",
    "<!---->",
    "<!-- a -- b -->",
    "<!-- > -->",
    "<!-->-->",
    "<!--->-->",
    "<!-- x --->",
    "<!--\r-->",
];
const PIS: &[&str] = &[
    "<?pi x?>",
    "<?pi a > b ?>",
    "<??>",
    "<?target?>",
    "<?xml-stylesheet href='a?>b'?>",
];
const PROLOGS: &[&str] = &[
    "<?xml version=\"1.0\"?>\n",
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>",
    "<?xml version='1.1'?>\r\n",
];
const DOCTYPES: &[&str] = &[
    "<!DOCTYPE note>",
    "<!DOCTYPE note SYSTEM \"note>.dtd\">",
    "<!DOCTYPE note [<!ENTITY secret \"expanded\">]>",
    "<!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;\"><!ENTITY c '&b;>&b;'>]>",
    "<!doctype x PUBLIC \"-//x//y\" 'z]>' [ <!ELEMENT x (#PCDATA)> <!ATTLIST x y CDATA \"]>\"> <!-- ] > --> <?pi ]> ?> <!NOTATION n SYSTEM \"n>\"> %p; ]>",
    "<!DOCTYPE x [<!ENTITYe \"v>w\"> <!foo bar> <?>?> <!--->--> <!ELEM>]>",
    "<!DocType x [ ] >",
];

/// A random XML document: a prolog, a DOCTYPE (internal subsets and entity declarations
/// included), nested elements with quoted attributes holding `>` and quotes, self-closing tags,
/// text with every kind of reference (invalid and unknown ones too), CDATA, comments, PIs,
/// multi-byte UTF-8, `\r\n` and `\r`. Well-formed as quick-xml sees it (breaking it is the
/// caller's).
pub(crate) fn random_xml(next: &mut impl FnMut() -> u64) -> String {
    let mut out = String::new();
    if next().is_multiple_of(2) {
        out.push_str(pick(next, PROLOGS));
    }
    if next().is_multiple_of(3) {
        misc(next, &mut out);
    }
    if next().is_multiple_of(2) {
        out.push_str(pick(next, DOCTYPES));
        out.push_str(pick(next, &["", "\n", "\r\n"]));
    }
    element(next, 0, &mut out);
    if next().is_multiple_of(3) {
        misc(next, &mut out);
    }
    if next().is_multiple_of(5) {
        // text around the root counts too
        out.push_str(pick(next, TEXT));
    }
    out
}

fn misc(next: &mut impl FnMut() -> u64, out: &mut String) {
    match next() % 3 {
        0 => out.push_str(pick(next, COMMENTS)),
        1 => out.push_str(pick(next, PIS)),
        _ => out.push_str(pick(next, &["\n", " ", "\r\n\t"])),
    }
}

fn element(next: &mut impl FnMut() -> u64, depth: u32, out: &mut String) {
    let name = pick(next, NAMES);
    out.push('<');
    out.push_str(name);
    for _ in 0..next() % 3 {
        out.push_str(pick(next, ATTRIBUTES));
    }
    if next().is_multiple_of(5) {
        out.push_str(pick(next, &["/>", " />"]));
        return;
    }
    out.push('>');
    for _ in 0..next() % 6 {
        match next() % 10 {
            0 | 1 if depth < 5 => element(next, depth + 1, out),
            0..=3 => out.push_str(pick(next, TEXT)),
            4 | 5 => out.push_str(pick(next, REFERENCES)),
            6 => out.push_str(pick(next, CDATA)),
            7 => out.push_str(pick(next, COMMENTS)),
            8 => out.push_str(pick(next, PIS)),
            _ => out.push_str(pick(next, &["\n  ", " ", ""])),
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push_str(pick(next, &[">", " >", "\n>"]));
}

/// Breaks `doc`: a byte removed, or a significant one inserted (ASCII only, at a character
/// boundary: encodings are compared elsewhere).
pub(crate) fn break_xml(next: &mut impl FnMut() -> u64, doc: &mut Vec<u8>) {
    if doc.is_empty() {
        return;
    }
    let mut at = (next() as usize) % doc.len();
    while doc.get(at).is_some_and(|b| b & 0xC0 == 0x80) {
        at += 1;
    }
    const SIGNIFICANT: &[u8] = b"<>&;/!?-[]\"'= x#\r";
    match next() % 2 {
        0 if at == doc.len() => {}
        0 if doc[at].is_ascii() => {
            doc.remove(at);
        }
        _ => doc.insert(
            at,
            SIGNIFICANT[(next() % SIGNIFICANT.len() as u64) as usize],
        ),
    }
}

/// The scanner gives quick-xml's text, or fails where it failed, for generated documents:
/// well-formed ones and broken ones (a byte removed or inserted).
#[test]
fn the_scanner_gives_quick_xmls_text() {
    let mut next = rng(5);
    let mut compared = (0, 0);
    for round in 0..6000 {
        let mut doc = random_xml(&mut next).into_bytes();
        if round % 2 == 1 {
            break_xml(&mut next, &mut doc);
        }
        let shown = String::from_utf8_lossy(&doc);
        match (with_quick_xml(&doc), with_feed(&doc)) {
            (Ok(old), Ok(new)) => {
                assert_eq!(new, old, "{shown:?}");
                compared.0 += 1;
            }
            (Err(_), Err(_)) => compared.1 += 1,
            (old, new) => panic!("{shown:?}: quick-xml {old:?}, scanner {new:?}"),
        }
    }
    // both kinds of outcome were compared, many times
    assert!(compared.0 > 3000 && compared.1 > 300, "{compared:?}");
}

/// Corner cases of quick-xml's reading, each compared with it and fed in pieces of every size.
#[test]
fn corner_cases_read_as_quick_xml_reads_them_in_any_pieces() {
    let cases: &[(&str, Option<&str>)] = &[
        ("", Some("")),
        ("just text", Some("just text")),
        ("<a>x</a>y<b/>z", Some("x y z")),
        ("<a>x</b></c>y", Some("x y")),
        ("<a b='>' c=\"'\">x</a>", Some("x")),
        ("<\"a>b\">x</a>", Some("x")),
        ("<>x< >y</>", Some("x y")),
        ("<<a>x", Some("x")),
        ("a > b ]]> c", Some("a > b ]]> c")),
        ("&amp;&lt;&gt;&quot;&apos;", Some("&<>\"'")),
        ("&#65;&#x42;&#x0043;&#00068;", Some("ABCD")),
        (
            "a&#0;b&#xD800;c&#x110000;d&#X41;e&#x;f&#;g&#+1;h",
            Some("abcdefgh"),
        ),
        ("a&nbsp;b&c d;e&;f", Some("abef")),
        ("AT&T", None),
        ("a & b", None),
        ("a &amp b</a>", None),
        ("<a>&amp</a>", None),
        ("x&", None),
        ("<!-- a -- b > c --->x", Some("x")),
        ("<!-->-->x", Some("x")),
        ("<!--->-->x", Some("x")),
        ("<!---->x", Some("x")),
        ("<!-->x", None),
        ("<!-x-->", None),
        ("<!", None),
        ("<!x>", None),
        ("<", None),
        ("<a", None),
        ("<a b='>", None),
        ("<a b=\">", None),
        ("</a", None),
        ("<![CDATA[x]]>", Some("x")),
        ("<![CDATA[a]]]>", Some("a]")),
        ("<![CDATA[]]]]>", Some("]]")),
        ("<![CDATA[ ]] ]> ]]>", Some("]] ]>")),
        ("<![CDATA[x]]", None),
        ("<![CDATA[x", None),
        ("<![CDAT[x]]>", None),
        ("<![cdata[x]]>", None),
        ("<![]]>", None),
        ("<?pi?>x", Some("x")),
        ("<??>x", Some("x")),
        ("<?>x", None),
        ("<?pi > ?>x", Some("x")),
        ("<?pi", None),
        ("<?xml version='1.0'", None),
        ("<!DOCTYPE x>y", Some("y")),
        ("<!doctype x>y", Some("y")),
        ("<!DOCTYPEx>y", Some("y")),
        ("<!DOCTYPE>", None),
        ("<!DOCTYPE \r\n\t>", None),
        ("<!DOCTYPE [ ]>y", Some("y")),
        ("<!DOCTYP x>", None),
        ("<!D>", None),
        ("<!DOCTYPE x SYSTEM 'a>b' [<!ENTITY e 'c>d'>]>y", Some("y")),
        ("<!DOCTYPE x [<?>?>]>y", Some("y")),
        ("<!DOCTYPE x [<?pi]>?>]>y", Some("y")),
        ("<!DOCTYPE x [<!-->-->]>y", Some("y")),
        ("<!DOCTYPE x [<!ATTLIST a b CDATA ']>'>]>y", Some("y")),
        // `<!ELEMENT` and unknown markup end at their first `>`, quoted or not
        ("<!DOCTYPE x [<!ELEMENT a '>']>y", Some("y")),
        ("<!DOCTYPE x [<!other '>']>y", Some("y")),
        ("<!DOCTYPE x [<x]>y", None),
        // the others at a `>` outside quotes, keyword matched on its bytes alone
        ("<!DOCTYPE x [<!ENTITYx '>'>]>y", Some("y")),
        ("<!DOCTYPE x [<!NOTATIONx '>'>]>y", Some("y")),
        ("<!DOCTYPE x [<!ENTITY x '>']>y", None),
        ("<!DOCTYPE x [<!EL", None),
        ("<!DOCTYPE x [", None),
        ("<!DOCTYPE x ] junk >y", Some("y")),
        ("<!DOCTYPE x 'a", None),
        // \r\n and \r are line ends within one text node or CDATA section, not across
        ("a\r<!-- -->\nb", Some("a\n\nb")),
        ("a\r&bogus;\nb", Some("a\n\nb")),
        ("a\r<?pi?>\r\nb", Some("a\n\nb")),
        ("a\r\nb", Some("a\nb")),
        ("a\r\rb", Some("a\n\nb")),
        ("<![CDATA[a\r]]>\nb", Some("a\n\nb")),
        ("<![CDATA[a\r\n]]>b", Some("a\nb")),
        ("a\r&#10;b", Some("a\n\nb")),
        ("a&#13;\nb", Some("a\nb")),
        ("\u{feff}<a>bom</a>", Some("bom")),
    ];
    for (doc, want) in cases {
        let old = with_quick_xml(doc.as_bytes()).map(|(text, _)| text);
        let new = with_feed(doc.as_bytes()).map(|(text, _)| text);
        assert_eq!(new.as_deref().ok(), *want, "{doc:?}: {new:?}");
        assert_eq!(old.as_deref().ok(), *want, "quick-xml on {doc:?}: {old:?}");
        if let Err(e) = &new {
            assert!(
                e.to_string()
                    .starts_with("extraction failed: xml: malformed XML near byte "),
                "{e}"
            );
        }
        for size in 1..=9 {
            let pieces = in_pieces(doc, size).map(|(text, _)| text);
            assert_eq!(pieces, new, "{doc:?} in pieces of {size}");
        }
    }
}

#[test]
fn generated_documents_read_the_same_in_any_pieces() {
    let mut next = rng(17);
    for round in 0..2000 {
        let mut doc = random_xml(&mut next).into_bytes();
        if round % 2 == 1 {
            break_xml(&mut next, &mut doc);
        }
        let doc = String::from_utf8(doc).unwrap();
        let whole = with_feed(doc.as_bytes());
        let size = 1 + (next() % 11) as usize;
        assert_eq!(in_pieces(&doc, size), whole, "{doc:?} in pieces of {size}");
    }
}

#[test]
fn errors_say_what_was_left_open_and_where() {
    let failed = |doc: &str| with_feed(doc.as_bytes()).unwrap_err().to_string();
    assert_eq!(
        failed("<a>text<!-- never closed"),
        "extraction failed: xml: malformed XML near byte 7: comment not closed: `-->` not found before the end"
    );
    assert_eq!(
        failed("<a>x <![CDATA[y"),
        "extraction failed: xml: malformed XML near byte 5: CDATA section not closed: `]]>` not found before the end"
    );
    assert_eq!(
        failed("<a b='c"),
        "extraction failed: xml: malformed XML near byte 0: attribute value not closed: its quote not found before the end"
    );
    assert_eq!(
        failed("<a>AT&T</a>"),
        "extraction failed: xml: malformed XML near byte 5: reference not closed: `;` not found before `<` or `&`"
    );
}

/// The scanner owns no buffer: its whole state is this small, however long a text node,
/// comment, CDATA section, tag or DOCTYPE is.
#[test]
fn the_scanner_holds_a_few_bytes() {
    assert!(
        std::mem::size_of::<Feed>() <= 48,
        "{}",
        std::mem::size_of::<Feed>()
    );
}

#[test]
fn bodies_are_decoded_as_text_is_or_by_their_declaration() {
    let text = |doc: &[u8]| with_feed(doc).unwrap().0;
    // UTF-16 with a byte-order mark (quick-xml read its bytes as UTF-8)
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("<a>Grüße</a>".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(text(&utf16), "Grüße");
    // a legacy encoding its declaration names
    let cyrillic = b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>\xCF\xF0\xE8</a>";
    assert_eq!(text(cyrillic), "При");
    // undeclared, bytes that are not UTF-8 are Windows-1252, as for text
    assert_eq!(text(b"<a>caf\xE9</a>"), "café");
    // UTF-8 stays UTF-8 whatever the declaration says; a stray bad byte is replaced
    assert_eq!(
        text("<?xml version='1.0' encoding='ISO-8859-1'?><a>Grüße</a>".as_bytes()),
        "Grüße"
    );
    assert_eq!(text(b"<a>Gr\xC3\xBC\xC3\x9Fe \xFF</a>"), "Grüße \u{FFFD}");
    // a declaration naming an encoding that is not ASCII-compatible is not heeded
    assert_eq!(
        text(b"<?xml version='1.0' encoding='utf-16'?><a>caf\xE9</a>"),
        "café"
    );
}

/// Random fragments of markup glued together (mostly malformed): the scanner fails where
/// quick-xml failed and gives its text where it did not, whole and in pieces.
#[test]
fn markup_soup_reads_as_quick_xml_reads_it() {
    const PARTS: &[&str] = &[
        "<",
        ">",
        "/",
        "!",
        "-",
        "--",
        "&",
        ";",
        "#",
        "x",
        "'",
        "\"",
        "=",
        " ",
        "\r",
        "\n",
        "a",
        "]",
        "]]",
        "[",
        "?",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<?",
        "?>",
        "<!DOCTYPE",
        "D",
        "OCTYPE",
        "CDATA[",
        "<!ENTITY",
        "<!ELEMENT",
        "<!ATTLIST",
        "<!NOTATION",
        "amp",
        "lt",
        "#65",
        "#x41",
        "é",
        "日",
        "%p;",
    ];
    let mut next = rng(23);
    let mut compared = (0, 0);
    for _ in 0..20_000 {
        let len = next() % 24;
        let doc: String = (0..len).map(|_| pick(&mut next, PARTS)).collect();
        let new = with_feed(doc.as_bytes());
        match (with_quick_xml(doc.as_bytes()), &new) {
            (Ok(old), Ok(new)) => {
                assert_eq!(new, &old, "{doc:?}");
                compared.0 += 1;
            }
            (Err(_), Err(_)) => compared.1 += 1,
            (old, new) => panic!("{doc:?}: quick-xml {old:?}, scanner {new:?}"),
        }
        let size = 1 + (next() % 5) as usize;
        assert_eq!(in_pieces(&doc, size), new, "{doc:?} in pieces of {size}");
    }
    assert!(compared.0 > 1000 && compared.1 > 1000, "{compared:?}");
}
