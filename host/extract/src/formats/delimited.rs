//! CSV and TSV with the `csv` crate: cells of a row joined by spaces, rows by line
//! breaks. Rows may have different lengths; CSV honours RFC 4180 quoting, TSV is read
//! without quoting (as IANA's text/tab-separated-values defines it).

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::{Sink, decode};

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
