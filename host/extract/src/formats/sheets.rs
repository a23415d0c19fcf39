//! Spreadsheets read with calamine: XLSB through calamine's streaming cell reader (nothing is
//! materialised, so a sheet with cells at A1 and XFD1048576 costs two cells), legacy XLS
//! through calamine's eager reader after a guard pass. XLSX has its own reader (`xlsx.rs`), and
//! [`put_cell`] is how every spreadsheet cell is written.
//!
//! Output: every sheet in workbook order, cells of a row separated by spaces, rows by
//! line breaks, sheets by blank lines. Numbers print in Rust's shortest form (`3.5`,
//! `42`), booleans as `TRUE`/`FALSE`, date cells as ISO 8601 (`2024-03-01`,
//! `2024-03-01 12:30:00`), error cells are skipped.
//!
//! Guards: for XLSB every zip entry is inflated once (output discarded) before
//! calamine opens the body, so the container provably stays within
//! `max_decompressed_bytes`. For XLS, calamine allocates each sheet's whole bounding
//! box of cells; the BIFF records are scanned first (via the `cfb` crate) and the
//! workbook is refused when those boxes would take more than `max_decompressed_bytes`
//! of memory.

use std::io::{Cursor, Read};

use calamine::{DataRef, Reader};

use crate::container::Container;
use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::limits::human_bytes;
use crate::text::Sink;

/// Extract an XLSB body.
pub(crate) fn xlsb(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let limit = sink.budget().inflate_limit();
    Container::open(bytes, Format::Xlsb, sink.budget())?
        .check_all(sink.budget(), |name, part| {
            guard_xlsb_part(name, part, limit)
        })?;
    let fail = |e: calamine::XlsbError| ExtractError::failed(Format::Xlsb, e);
    let mut book = calamine::Xlsb::new(Cursor::new(bytes)).map_err(fail)?;
    for name in book.sheet_names() {
        let mut cells = book.worksheet_cells_reader(&name).map_err(fail)?;
        let mut row = None;
        sink.para();
        while let Some(cell) = cells.next_cell().map_err(fail)? {
            if !sink.proceed()? {
                return Ok(());
            }
            put_cell(sink, &mut row, cell.get_position().0, cell.get_value());
        }
    }
    Ok(())
}

/// Extract a legacy XLS body.
pub(crate) fn xls(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    guard_xls(bytes, sink.budget().inflate_limit())?;
    sink.budget().check_time()?;
    let mut book =
        calamine::Xls::new(Cursor::new(bytes)).map_err(|e| ExtractError::failed(Format::Xls, e))?;
    for (_, range) in book.worksheets() {
        sink.para();
        let mut row = None;
        for (r, _, value) in range.used_cells() {
            if !sink.proceed()? {
                return Ok(());
            }
            let value: DataRef<'_> = match value {
                calamine::Data::Int(i) => DataRef::Int(*i),
                calamine::Data::Float(f) => DataRef::Float(*f),
                calamine::Data::String(s) => DataRef::SharedString(s),
                calamine::Data::Bool(b) => DataRef::Bool(*b),
                calamine::Data::DateTime(d) => DataRef::DateTime(*d),
                calamine::Data::DateTimeIso(s) => DataRef::SharedString(s),
                calamine::Data::DurationIso(s) => DataRef::SharedString(s),
                calamine::Data::Error(_) | calamine::Data::Empty => DataRef::Empty,
            };
            put_cell(sink, &mut row, u32::try_from(r).unwrap_or(u32::MAX), &value);
        }
    }
    Ok(())
}

pub(crate) fn put_cell(sink: &mut Sink, row: &mut Option<u32>, r: u32, value: &DataRef<'_>) {
    let text = match value {
        DataRef::Empty | DataRef::Error(_) => return,
        DataRef::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        DataRef::SharedString(s) => std::borrow::Cow::Borrowed(*s),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => std::borrow::Cow::Borrowed(s.as_str()),
        DataRef::Int(i) => std::borrow::Cow::Owned(i.to_string()),
        DataRef::Float(f) => std::borrow::Cow::Owned(f.to_string()),
        DataRef::Bool(b) => std::borrow::Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
        DataRef::DateTime(d) if d.is_datetime() => {
            let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
            std::borrow::Cow::Owned(if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{da:02}")
            } else {
                format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}")
            })
        }
        DataRef::DateTime(d) => std::borrow::Cow::Owned(d.as_f64().to_string()),
    };
    if text.trim().is_empty() {
        return;
    }
    match row {
        Some(prev) if *prev == r => sink.space(),
        Some(_) => sink.line(),
        None => {}
    }
    *row = Some(r);
    sink.push(&text);
}

/// Binary records of an XLSB part that calamine reads (the workbook, its styles, shared
/// strings and sheets), checked before it reads them:
/// - a record that declares more bytes than the part has left is refused: calamine would
///   allocate (and zero) the whole declared size, up to 256 MiB, before finding the part short;
/// - the shared strings are refused when calamine would hold them in more than `limit`
///   bytes: it keeps each as its own `String`, so a few hundred KB of zipped one-letter strings
///   would take hundreds of MB. Each costs its slot in a vector that doubles (twice a
///   `String`) and a heap block of at least 32 bytes, or of its length in UTF-16 units, each at
///   least one byte of UTF-8.
fn guard_xlsb_part(name: &str, part: &mut dyn Read, limit: u64) -> Result<()> {
    let records = name.starts_with("xl/worksheets/")
        || name.starts_with("xl/chartsheets/")
        || name.starts_with("xl/dialogsheets/")
        || matches!(
            name,
            "xl/workbook.bin" | "xl/styles.bin" | "xl/sharedStrings.bin"
        );
    if !records || !name.ends_with(".bin") {
        return Ok(());
    }
    let strings = name == "xl/sharedStrings.bin";
    let fail = |m: String| ExtractError::failed(Format::Xlsb, format!("{name}: {m}"));
    let mut part = std::io::BufReader::with_capacity(64 * 1024, part);
    let string_bytes = std::mem::size_of::<String>() as u64 * 2;
    let mut held: u64 = 0;
    let mut count = 0u64;
    for record in 0u64.. {
        let Some(kind) = varint(&mut part, 2).map_err(|e| fail(e.to_string()))? else {
            return Ok(());
        };
        let size = varint(&mut part, 4)
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail(format!("record {record} ends inside its header")))?;
        let mut body = (&mut part).take(size);
        if strings && kind == 0x0013 {
            // BrtSSTItem: flags, then the string's length in UTF-16 units
            let mut head = [0u8; 5];
            if body.read_exact(&mut head).is_ok() {
                let units = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
                count += 1;
                held = held
                    .saturating_add(string_bytes)
                    .saturating_add(u64::from(units).max(32));
                if held > limit {
                    return Err(fail(format!(
                        "its first {count} shared strings would take more than the {} limit \
                         once read",
                        human_bytes(limit)
                    )));
                }
            }
        }
        std::io::copy(&mut body, &mut std::io::sink()).map_err(|e| fail(e.to_string()))?;
        if body.limit() > 0 {
            let left = size - body.limit();
            return Err(fail(format!(
                "record {record} declares {size} bytes, past the part's end (it has {left} more)"
            )));
        }
    }
    Ok(())
}

/// An XLSB record header's number: 7 bits a byte, the high bit saying another follows, at most
/// `bytes` bytes (`None` at the part's end).
fn varint(part: &mut impl Read, bytes: u32) -> std::io::Result<Option<u64>> {
    let mut n = 0u64;
    for i in 0..bytes {
        let mut b = [0u8; 1];
        if part.read(&mut b)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the part ends inside a record header",
                ))
            };
        }
        n |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    Ok(Some(n))
}

/// Refuse XLS workbooks whose sheets calamine would materialise into more than
/// `limit` bytes (it allocates every cell of each sheet's bounding box).
fn guard_xls(bytes: &[u8], limit: u64) -> Result<()> {
    let fail = |m: String| ExtractError::failed(Format::Xls, m);
    let mut cf = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|e| fail(format!("unreadable OLE2 container: {e}")))?;
    let stream_name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|n| cf.is_stream(n))
        .ok_or_else(|| fail("no Workbook stream (not an Excel file?)".into()))?;
    let mut stream = cf
        .open_stream(stream_name)
        .map_err(|e| fail(format!("Workbook stream: {e}")))?;
    let mut data = Vec::new();
    stream
        .by_ref()
        .take(bytes.len() as u64 * 2)
        .read_to_end(&mut data)
        .map_err(|e| fail(format!("Workbook stream: {e}")))?;

    let cell_bytes = std::mem::size_of::<calamine::Data>() as u64;
    let formula_bytes = std::mem::size_of::<String>() as u64;
    let mut total: u64 = 0;
    let mut cells = BoundingBox::default();
    let mut formulas = BoundingBox::default();
    let mut pos = 0usize;
    while pos + 4 <= data.len() {
        let kind = u16::from_le_bytes([data[pos], data[pos + 1]]);
        let len = usize::from(u16::from_le_bytes([data[pos + 2], data[pos + 3]]));
        let body = &data[pos + 4..data.len().min(pos + 4 + len)];
        pos += 4 + len;
        let rc = |at: usize| -> Option<u32> {
            Some(u32::from(u16::from_le_bytes([
                *body.get(at)?,
                *body.get(at + 1)?,
            ])))
        };
        match kind {
            // BOF: a new substream (sheet) starts
            0x0809 | 0x0009 | 0x0209 | 0x0409 => {
                total = total
                    .saturating_add(cells.area().saturating_mul(cell_bytes))
                    .saturating_add(formulas.area().saturating_mul(formula_bytes));
                cells = BoundingBox::default();
                formulas = BoundingBox::default();
            }
            // cell records that start with (row, col)
            0x0006 | 0x0406 | 0x00FD | 0x0203 | 0x027E | 0x0204 | 0x0205 | 0x0201 | 0x00D6
            | 0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x0005 | 0x0206 => {
                if let (Some(r), Some(c)) = (rc(0), rc(2)) {
                    cells.add(r, c);
                    if matches!(kind, 0x0006 | 0x0406 | 0x0206) {
                        formulas.add(r, c);
                    }
                }
            }
            // MULRK / MULBLANK: row, first col, …, last col
            0x00BD | 0x00BE if body.len() >= 6 => {
                if let (Some(r), Some(c0), Some(c1)) = (rc(0), rc(2), rc(body.len() - 2)) {
                    cells.add(r, c0);
                    cells.add(r, c1);
                }
            }
            _ => {}
        }
    }
    total = total
        .saturating_add(cells.area().saturating_mul(cell_bytes))
        .saturating_add(formulas.area().saturating_mul(formula_bytes));
    // calamine keeps every sheet and hands out a clone of the one asked for
    let total = total.saturating_mul(2);
    if total > limit {
        return Err(fail(format!(
            "sheets span {} of cells once materialised, past the {} limit",
            human_bytes(total),
            human_bytes(limit)
        )));
    }
    Ok(())
}

#[derive(Default)]
struct BoundingBox(Option<(u32, u32, u32, u32)>);

impl BoundingBox {
    fn add(&mut self, r: u32, c: u32) {
        self.0 = Some(match self.0 {
            None => (r, r, c, c),
            Some((r0, r1, c0, c1)) => (r0.min(r), r1.max(r), c0.min(c), c1.max(c)),
        });
    }

    fn area(&self) -> u64 {
        match self.0 {
            None => 0,
            Some((r0, r1, c0, c1)) => u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1),
        }
    }
}
