//! XLSX workbooks, each part read as it inflates.
//!
//! Invariants:
//! - **Memory is the input, the output and the shared-string table, stored compactly**: the
//!   strings' text back to back and about 1.5 bytes per string (a length, and an offset every
//!   [`STRIDE`] strings), never a `String` per shared string or per cell. calamine, which read
//!   XLSX before, keeps each shared string as its own `String`: a 300 KB workbook listing three
//!   million one-letter strings took 104 MB to extract (`tests/memory.rs`).
//! - **Every part is inflated once, as it is read**, under the container's inflation allowance;
//!   nothing is inflated beforehand to prove the container stays within it.
//! - **The text is calamine's**: sheets in workbook order, cells of a row separated by spaces,
//!   rows by line breaks, sheets by blank lines; numbers in Rust's shortest form, booleans as
//!   `TRUE`/`FALSE`, cells whose number format is a date as ISO 8601 (calamine's
//!   `ExcelDateTime` converts the serial, 1900- or 1904-based); error cells are skipped. A
//!   shared string or inline string counts only its text runs, not its phonetic guide (`rPh`).
//! - A cell or shared string longer than the output limit is cut there: the output could never
//!   hold more of it.

use std::collections::HashMap;
use std::io::BufRead;

use calamine::{DataRef, ExcelDateTime, ExcelDateTimeType};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::container::{Container, relationships, rels_part_for};
use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::formats::ooxml::main_part;
use crate::formats::sheets::put_cell;
use crate::formats::xml::general_ref;
use crate::text::Sink;

/// Shared strings between two stored offsets.
const STRIDE: usize = 32;

/// Custom number formats kept (their ids are 164 and up in practice; a part listing more is
/// not a workbook anyone wrote).
const MAX_CUSTOM_FORMATS: usize = 65_536;

/// Extract an XLSX body.
pub(crate) fn xlsx(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let mut zip = Container::open(bytes, Format::Xlsx, sink.budget())?;
    let workbook = main_part(&mut zip, sink, "xl/workbook.xml")?;
    let max_sheets = sink.budget().max_entries();
    let book = zip
        .read_with(&workbook, sink, |part, sink| {
            read_workbook(part, &workbook, max_sheets, sink)
        })?
        .ok_or_else(|| failed(format!("zip entry {workbook} is missing (not a workbook?)")))?;
    let rels = match zip.read_opt(&rels_part_for(&workbook), sink.budget())? {
        Some(xml) => relationships(&xml, &workbook),
        None => Vec::new(),
    };
    // by relationship, else where calamine looked: beside the workbook part
    let dir = workbook.rsplit_once('/').map_or("", |(dir, _)| dir);
    let target = |kind: &str, usual: &str| {
        rels.iter()
            .find(|(_, ty, _)| ty.ends_with(kind))
            .map(|(_, _, part)| part.clone())
            .unwrap_or_else(|| format!("{dir}/{usual}"))
    };
    let part = target("/styles", "styles.xml");
    let styles = zip
        .read_with(&part, sink, |r, sink| read_styles(r, &part, sink))?
        .unwrap_or_default();
    let cap = sink.max_output_bytes();
    let part = target("/sharedStrings", "sharedStrings.xml");
    let strings = zip
        .read_with(&part, sink, |r, sink| read_strings(r, &part, cap, sink))?
        .unwrap_or_default();
    let context = Context {
        strings: &strings,
        styles: &styles,
        date1904: book.date1904,
    };
    let parts: HashMap<&str, &str> = rels
        .iter()
        .map(|(id, _, part)| (id.as_str(), part.as_str()))
        .collect();
    for rel in &book.sheets {
        if sink.is_full() {
            break;
        }
        sink.para();
        let Some(&part) = parts.get(rel.as_str()) else {
            continue;
        };
        zip.read_with(part, sink, |r, sink| read_sheet(r, part, &context, sink))?;
    }
    Ok(())
}

fn failed(message: String) -> ExtractError {
    ExtractError::failed(Format::Xlsx, message)
}

/// The next event of `part`, or the error naming where it is malformed. Every part's loop looks
/// at the clock here, also those that write nothing (the sheets stop at a full output too).
fn next<'b, R: BufRead>(
    reader: &mut Reader<R>,
    buf: &'b mut Vec<u8>,
    part: &str,
    sink: &mut Sink,
) -> Result<Event<'b>> {
    sink.proceed()?;
    let at = reader.buffer_position();
    reader
        .read_event_into(buf)
        .map_err(|e| failed(format!("{part}: malformed XML near byte {at}: {e}")))
}

fn reader<R: BufRead>(part: R) -> Reader<R> {
    let mut reader = Reader::from_reader(part);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.expand_empty_elements = false;
    reader
}

/// An attribute's value by its local name (`r:id` is `id`).
fn attribute(e: &BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// What the workbook part says: its sheets' relationship ids in order, and the date system.
struct Book {
    sheets: Vec<String>,
    date1904: bool,
}

fn read_workbook(
    part: &mut dyn BufRead,
    name: &str,
    max_sheets: usize,
    sink: &mut Sink,
) -> Result<Book> {
    let mut reader = reader(part);
    let mut buf = Vec::new();
    let mut book = Book {
        sheets: Vec::new(),
        date1904: false,
    };
    loop {
        match next(&mut reader, &mut buf, name, sink)? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                // a sheet needs its own zip entry: more than the container may list cannot be
                "sheet" if book.sheets.len() < max_sheets => {
                    if let Some(id) = attribute(&e, "id") {
                        book.sheets.push(id);
                    }
                }
                "workbookPr" => {
                    book.date1904 = attribute(&e, "date1904")
                        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                }
                _ => {}
            },
            Event::Eof => return Ok(book),
            _ => {}
        }
        buf.clear();
    }
}

/// What a number format makes of a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shown {
    Number,
    Date,
    Duration,
}

/// The cell formats (`cellXfs`), each as what its number format shows.
#[derive(Default)]
struct Styles {
    formats: Vec<Shown>,
}

impl Styles {
    fn of(&self, style: usize) -> Shown {
        self.formats.get(style).copied().unwrap_or(Shown::Number)
    }
}

/// The built-in number formats that show a date or a time (ECMA-376 part 1, 18.8.30, and the
/// East Asian ones Excel adds), and the elapsed-time one.
fn builtin(id: u32) -> Shown {
    match id {
        14..=22 | 27..=36 | 45 | 47 | 50..=58 => Shown::Date,
        46 => Shown::Duration,
        _ => Shown::Number,
    }
}

/// What a custom format code shows, from its first section: a date when it has a day, month,
/// year, hour or second code outside quotes, escapes and brackets; elapsed time when a bracket
/// holds only hours, minutes or seconds (`[h]:mm`).
fn custom(code: &str) -> Shown {
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        match c {
            ';' => break,
            '"' => {
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                }
            }
            // `\x` shows x, `_x` a space as wide as x, `*x` repeats x
            '\\' | '_' | '*' => {
                chars.next();
            }
            '[' => {
                let inner: String = chars.by_ref().take_while(|&b| b != ']').collect();
                if !inner.is_empty()
                    && inner
                        .chars()
                        .all(|b| matches!(b.to_ascii_lowercase(), 'h' | 'm' | 's'))
                {
                    return Shown::Duration;
                }
            }
            c if matches!(c.to_ascii_lowercase(), 'd' | 'm' | 'y' | 'h' | 's') => {
                return Shown::Date;
            }
            _ => {}
        }
    }
    Shown::Number
}

fn read_styles(part: &mut dyn BufRead, name: &str, sink: &mut Sink) -> Result<Styles> {
    let mut reader = reader(part);
    let mut buf = Vec::new();
    let mut customs: HashMap<u32, Shown> = HashMap::new();
    let mut styles = Styles::default();
    let mut in_cell_formats = false;
    loop {
        let event = next(&mut reader, &mut buf, name, sink)?;
        match &event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "numFmt" if customs.len() < MAX_CUSTOM_FORMATS => {
                    let id = attribute(e, "numFmtId").and_then(|v| v.trim().parse().ok());
                    if let (Some(id), Some(code)) = (id, attribute(e, "formatCode")) {
                        customs.insert(id, custom(&code));
                    }
                }
                // an empty `<cellXfs/>` holds no formats
                "cellXfs" => in_cell_formats = matches!(event, Event::Start(_)),
                "xf" if in_cell_formats => {
                    let id = attribute(e, "numFmtId")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let shown = customs.get(&id).copied().unwrap_or_else(|| builtin(id));
                    styles.formats.push(shown);
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "cellXfs" => in_cell_formats = false,
            Event::Eof => return Ok(styles),
            _ => {}
        }
        buf.clear();
    }
}

/// The shared-string table: the strings' text back to back, each string's length as a LEB128
/// varint, and where every [`STRIDE`]th string starts in both.
#[derive(Default)]
struct Strings {
    text: String,
    lengths: Vec<u8>,
    marks: Vec<(usize, usize)>,
    count: usize,
}

impl Strings {
    fn push(&mut self, s: &str) {
        if self.count.is_multiple_of(STRIDE) {
            self.marks.push((self.text.len(), self.lengths.len()));
        }
        let mut n = s.len();
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.lengths.push(low);
                break;
            }
            self.lengths.push(low | 0x80);
        }
        self.text.push_str(s);
        self.count += 1;
    }

    fn get(&self, index: usize) -> Option<&str> {
        if index >= self.count {
            return None;
        }
        let &(mut text, mut at) = self.marks.get(index / STRIDE)?;
        for _ in 0..index % STRIDE {
            let (n, used) = self.length_at(at)?;
            text += n;
            at += used;
        }
        let (n, _) = self.length_at(at)?;
        self.text.get(text..text.checked_add(n)?)
    }

    /// The length stored at `at`, and how many bytes it takes.
    fn length_at(&self, at: usize) -> Option<(usize, usize)> {
        let mut n = 0usize;
        for (i, &b) in self.lengths.get(at..)?.iter().enumerate().take(10) {
            n |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some((n, i + 1));
            }
        }
        None
    }
}

/// Appends `s` to `out`, keeping `out` within `cap` bytes (cut at a character boundary).
fn append_capped(out: &mut String, s: &str, cap: usize) {
    let room = cap.saturating_sub(out.len());
    if s.len() <= room {
        out.push_str(s);
    } else {
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&s[..cut]);
    }
}

/// Appends the text of a text, CDATA or reference event to `out`.
fn append_event(out: &mut String, event: &Event<'_>, cap: usize) {
    match event {
        Event::Text(t) => append_capped(out, &t.xml10_content(), cap),
        Event::CData(t) => append_capped(out, &t.xml10_content(), cap),
        Event::GeneralRef(r) => {
            if let Some(c) = general_ref(r) {
                let mut tmp = [0u8; 4];
                append_capped(out, c.encode_utf8(&mut tmp), cap);
            }
        }
        _ => {}
    }
}

fn read_strings(
    part: &mut dyn BufRead,
    name: &str,
    cap: usize,
    sink: &mut Sink,
) -> Result<Strings> {
    let mut reader = reader(part);
    let mut buf = Vec::new();
    let mut strings = Strings::default();
    let mut current = String::new();
    let mut in_item = false;
    let mut in_text = false;
    let mut phonetic = 0usize;
    loop {
        let event = next(&mut reader, &mut buf, name, sink)?;
        match &event {
            Event::Start(e) => match e.local_name().as_ref() {
                "si" => {
                    in_item = true;
                    current.clear();
                }
                "rPh" => phonetic += 1,
                "t" => in_text = in_item && phonetic == 0,
                _ => {}
            },
            Event::Empty(e) if e.local_name().as_ref() == "si" => strings.push(""),
            Event::End(e) => match e.local_name().as_ref() {
                "si" if in_item => {
                    strings.push(&current);
                    in_item = false;
                    in_text = false;
                    phonetic = 0;
                }
                "rPh" => phonetic = phonetic.saturating_sub(1),
                "t" => in_text = false,
                _ => {}
            },
            Event::Eof => return Ok(strings),
            e if in_text => append_event(&mut current, e, cap),
            _ => {}
        }
        buf.clear();
    }
}

/// What a sheet's cells are read against.
struct Context<'a> {
    strings: &'a Strings,
    styles: &'a Styles,
    date1904: bool,
}

/// A cell's `t`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CellType {
    Number,
    Shared,
    Formula,
    Inline,
    Bool,
    Error,
    Date,
}

impl CellType {
    fn parse(t: Option<&str>) -> CellType {
        match t {
            Some("s") => CellType::Shared,
            Some("str") => CellType::Formula,
            Some("inlineStr") => CellType::Inline,
            Some("b") => CellType::Bool,
            Some("e") => CellType::Error,
            Some("d") => CellType::Date,
            _ => CellType::Number,
        }
    }
}

fn read_sheet(
    part: &mut dyn BufRead,
    name: &str,
    context: &Context<'_>,
    sink: &mut Sink,
) -> Result<()> {
    let cap = sink.max_output_bytes();
    let mut reader = reader(part);
    let mut buf = Vec::new();
    let mut row_number: u32 = 0;
    let mut last_row = None;
    // the open cell: its type and style
    let mut cell: Option<(CellType, usize)> = None;
    let mut value = String::new();
    let mut in_value = false;
    let mut in_inline = false;
    let mut phonetic = 0usize;
    while !sink.is_full() {
        let event = next(&mut reader, &mut buf, name, sink)?;
        match &event {
            Event::Start(e) => match e.local_name().as_ref() {
                "row" => row_number = row_of(e, row_number),
                "c" => {
                    cell = Some(cell_head(e));
                    value.clear();
                    in_inline = false;
                    phonetic = 0;
                }
                "v" => in_value = cell.is_some(),
                "is" => in_inline = cell.is_some(),
                "rPh" => phonetic += 1,
                "t" => in_value = in_inline && phonetic == 0,
                _ => {}
            },
            Event::Empty(e) if e.local_name().as_ref() == "row" => {
                row_number = row_of(e, row_number);
            }
            Event::End(e) => match e.local_name().as_ref() {
                "c" => {
                    if let Some((kind, style)) = cell.take() {
                        put_value(
                            sink,
                            &mut last_row,
                            row_number,
                            kind,
                            style,
                            &value,
                            context,
                        );
                    }
                    in_value = false;
                    in_inline = false;
                }
                "v" | "t" => in_value = false,
                "is" => in_inline = false,
                "rPh" => phonetic = phonetic.saturating_sub(1),
                _ => {}
            },
            Event::Eof => return Ok(()),
            e if in_value => append_event(&mut value, e, cap),
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

/// The row a `row` element starts: its `r` (1-based), or the one after the last.
fn row_of(e: &BytesStart<'_>, last: u32) -> u32 {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref() == "r")
        .and_then(|a| a.value.trim().parse().ok())
        .unwrap_or_else(|| last.saturating_add(1))
}

/// A `c` element's type and style, read in one pass over its attributes, as written (both are
/// plain tokens: no reference to resolve, no copy).
fn cell_head(e: &BytesStart<'_>) -> (CellType, usize) {
    let mut kind = CellType::Number;
    let mut style = 0;
    for a in e.attributes().with_checks(false).flatten() {
        match a.key.local_name().as_ref() {
            "t" => kind = CellType::parse(Some(a.value.trim())),
            "s" => style = a.value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    (kind, style)
}

fn put_value(
    sink: &mut Sink,
    last_row: &mut Option<u32>,
    row: u32,
    kind: CellType,
    style: usize,
    value: &str,
    context: &Context<'_>,
) {
    let data = match kind {
        CellType::Error => return,
        CellType::Shared => match value
            .trim()
            .parse()
            .ok()
            .and_then(|i| context.strings.get(i))
        {
            Some(s) => DataRef::SharedString(s),
            None => return,
        },
        CellType::Formula | CellType::Inline | CellType::Date => DataRef::SharedString(value),
        CellType::Bool => {
            let v = value.trim();
            DataRef::Bool(v == "1" || v.eq_ignore_ascii_case("true"))
        }
        CellType::Number => match value.trim().parse::<f64>() {
            Ok(n) => match context.styles.of(style) {
                Shown::Number => DataRef::Float(n),
                Shown::Date => DataRef::DateTime(ExcelDateTime::new(
                    n,
                    ExcelDateTimeType::DateTime,
                    context.date1904,
                )),
                Shown::Duration => DataRef::DateTime(ExcelDateTime::new(
                    n,
                    ExcelDateTimeType::TimeDelta,
                    context.date1904,
                )),
            },
            Err(_) => DataRef::SharedString(value),
        },
    };
    put_cell(sink, last_row, row, &data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_back_every_string_it_was_given() {
        let mut strings = Strings::default();
        let long = "x".repeat(300);
        let all: Vec<String> = (0..200)
            .map(|i| match i % 4 {
                0 => String::new(),
                1 => format!("s{i}"),
                2 => long.clone(),
                _ => format!("é{i}ü"),
            })
            .collect();
        for s in &all {
            strings.push(s);
        }
        for (i, s) in all.iter().enumerate() {
            assert_eq!(strings.get(i), Some(s.as_str()), "string {i}");
        }
        assert_eq!(strings.get(all.len()), None);
    }

    #[test]
    fn custom_formats_tell_dates_from_numbers() {
        for code in [
            "yyyy-mm-dd",
            "d/m/yy h:mm",
            "hh:mm:ss AM/PM",
            "[$-409]mmmm d, yyyy",
            "[Red]dd",
        ] {
            assert_eq!(custom(code), Shown::Date, "{code}");
        }
        for code in ["[h]:mm:ss", "[mm]:ss", "[ss]"] {
            assert_eq!(custom(code), Shown::Duration, "{code}");
        }
        for code in [
            "General",
            "0.00",
            "#,##0 \"days\"",
            "0\\d",
            "[Red]#,##0.00",
            "0.00E+00",
            "0;[Red]d",
            "_(* #,##0_);_(* (#,##0)",
            "@",
        ] {
            assert_eq!(custom(code), Shown::Number, "{code}");
        }
    }
}
