//! CSV and TSV with the `csv` crate: cells of a row joined by spaces, rows by line
//! breaks. Rows may have different lengths; CSV honours RFC 4180 quoting, TSV is read
//! without quoting (as IANA's text/tab-separated-values defines it).

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::{Sink, decode};

/// A delimited body fed in pieces of decoded text (a download): `csv-core`'s reader, the one the
/// `csv` crate runs, so the cells are the same as [`extract`]'s; a cell is written to the sink
/// as it is read, never held whole.
pub(crate) struct Feed {
    reader: csv_core::Reader,
    /// Unquoted bytes of the current cell not written yet: a UTF-8 character cut at the end of
    /// the last output (at most 3 bytes).
    carry: Vec<u8>,
    out: Box<[u8]>,
    /// Whether the next cell starts a record.
    record_start: bool,
    /// Whether a cell has started and not ended.
    in_field: bool,
    done: bool,
}

impl Feed {
    pub(crate) fn new(format: Format) -> Self {
        let tsv = format == Format::Tsv;
        let reader = csv_core::ReaderBuilder::new()
            .delimiter(if tsv { b'\t' } else { b',' })
            .quoting(!tsv)
            .build();
        Feed {
            reader,
            carry: Vec::new(),
            out: vec![0; 8 * 1024].into_boxed_slice(),
            record_start: true,
            in_field: false,
            done: false,
        }
    }

    /// Reads the next piece of text; `last` marks the end of the body.
    pub(crate) fn feed(&mut self, mut text: &[u8], last: bool, sink: &mut Sink) -> Result<()> {
        use csv_core::ReadFieldResult as Read;
        while !self.done {
            // `csv-core` takes empty input for the end of the body
            if text.is_empty() && !last {
                return Ok(());
            }
            if !sink.proceed()? {
                return Ok(());
            }
            let (result, used, made) = self.reader.read_field(text, &mut self.out);
            text = text.get(used..).unwrap_or_default();
            if made > 0 || matches!(result, Read::Field { .. }) {
                self.open_field(sink);
            }
            self.write(made, sink);
            match result {
                Read::InputEmpty | Read::OutputFull => {}
                Read::Field { record_end } => {
                    self.close_field(sink);
                    self.record_start = record_end;
                }
                Read::End => self.done = true,
            }
        }
        Ok(())
    }

    fn open_field(&mut self, sink: &mut Sink) {
        if self.in_field {
            return;
        }
        if self.record_start {
            sink.line();
            self.record_start = false;
        }
        sink.space();
        self.in_field = true;
    }

    /// Writes the first `made` bytes of the output, keeping a cut character for later.
    fn write(&mut self, made: usize, sink: &mut Sink) {
        let Some(made) = self.out.get(..made) else {
            return;
        };
        self.carry.extend_from_slice(made);
        let whole = match std::str::from_utf8(&self.carry) {
            Ok(_) => self.carry.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.carry.len(),
        };
        if whole > 0 {
            sink.push(&String::from_utf8_lossy(&self.carry[..whole]));
            self.carry.drain(..whole);
        }
    }

    fn close_field(&mut self, sink: &mut Sink) {
        if !self.carry.is_empty() {
            sink.push(&String::from_utf8_lossy(&self.carry));
            self.carry.clear();
        }
        self.in_field = false;
    }
}

/// Extract a delimited body.
pub(crate) fn extract(bytes: &[u8], format: Format, sink: &mut Sink) -> Result<()> {
    let text = decode(bytes);
    let tsv = format == Format::Tsv;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(if tsv { b'\t' } else { b',' })
        .quoting(!tsv)
        .from_reader(text.as_bytes());
    let mut record = csv::ByteRecord::new();
    loop {
        if !sink.proceed()? {
            return Ok(());
        }
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                sink.line();
                for field in record.iter() {
                    sink.space();
                    sink.push(&String::from_utf8_lossy(field));
                }
            }
            Err(e) => return Err(ExtractError::failed(format, e)),
        }
    }
}
