//! Word 97-2003 (`.doc`): the text of the `WordDocument` stream, read through the piece
//! table.
//!
//! The File Information Block (FIB) at the start of `WordDocument` gives the character
//! counts of each story and where the CLX lies in the table stream (`0Table` or
//! `1Table`). The CLX's piece table maps character positions to byte ranges of
//! `WordDocument`: 8-bit pieces ("compressed", Windows-1252) or UTF-16LE pieces. A FIB
//! without a CLX (old non-complex files) has its text in one run from `fcMin`.
//!
//! Output: the main text, then (after a blank line) footnotes, headers and footers,
//! comments, endnotes and text boxes. Paragraph marks become line breaks; field codes
//! (`HYPERLINK "…"`, `PAGE`) are dropped and their results kept; a cell mark becomes a
//! space and a row-end mark a line break; other Word control characters (pictures,
//! footnote references, optional hyphens) vanish. Encrypted or obfuscated documents
//! and pre-97 Word files fail with a clear message.

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::ole::{Ole, u16_at, u32_at};
use crate::text::{Sink, cp1252};

fn fail(msg: impl std::fmt::Display) -> ExtractError {
    ExtractError::failed(Format::Doc, msg)
}

/// What the FIB says.
struct Fib {
    table: &'static str,
    /// Character counts: the main text, and all the other stories together.
    ccp_text: u32,
    ccp_rest: u32,
    /// The CLX in the table stream (offset, length); length 0 when absent.
    clx: (u32, u32),
    /// Non-complex fallback: first text byte, and whether the text is UTF-16.
    fc_min: u32,
    wide: bool,
}

impl Fib {
    fn parse(word: &[u8]) -> Result<Fib> {
        let short = || fail("WordDocument stream too short for its FIB");
        match u16_at(word, 0).ok_or_else(short)? {
            0xA5EC => {}
            0xA5DC => return Err(fail("Word 6/95 document (before Word 97): not supported")),
            _ => return Err(fail("not a Word 97-2003 document (no FIB signature)")),
        }
        let flags = u16_at(word, 0x0A).ok_or_else(short)?;
        if flags & 0x0100 != 0 || flags & 0x8000 != 0 {
            return Err(fail(
                "encrypted or obfuscated document (password protected)",
            ));
        }
        let csw = usize::from(u16_at(word, 32).ok_or_else(short)?);
        let cslw_at = 34 + csw * 2;
        let cslw = usize::from(u16_at(word, cslw_at).ok_or_else(short)?);
        let lw = cslw_at + 2;
        // FibRgLw97: ccpText is the 4th long; then Ftn, Hdd, (Mcr), Atn, Edn, Txbx, HdrTxbx
        let ccp = |index: usize| -> u32 {
            if index >= cslw {
                return 0;
            }
            u32_at(word, lw + index * 4)
                .and_then(|v| i32::try_from(v).ok())
                .map_or(0, |v| v.max(0).unsigned_abs())
        };
        let ccp_text = ccp(3);
        let ccp_rest = [4, 5, 7, 8, 9, 10]
            .into_iter()
            .fold(0u32, |sum, i| sum.saturating_add(ccp(i)));
        let cb_at = lw + cslw * 4;
        let cb = usize::from(u16_at(word, cb_at).unwrap_or(0));
        // FibRgFcLcb97: fcClx/lcbClx is the 34th pair
        let clx = if cb > 33 {
            let at = cb_at + 2 + 33 * 8;
            (
                u32_at(word, at).unwrap_or(0),
                u32_at(word, at + 4).unwrap_or(0),
            )
        } else {
            (0, 0)
        };
        Ok(Fib {
            table: if flags & 0x0200 != 0 {
                "/1Table"
            } else {
                "/0Table"
            },
            ccp_text,
            ccp_rest,
            clx,
            fc_min: u32_at(word, 0x18).ok_or_else(short)?,
            wide: flags & 0x1000 != 0,
        })
    }
}

/// One piece: characters `[cp, cp_end)` stored at byte `offset` of `WordDocument`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    cp: u32,
    cp_end: u32,
    offset: usize,
    wide: bool,
}

/// The piece table of a CLX: skip the `Prc` entries (property modifiers), read `Pcdt`.
fn pieces(clx: &[u8]) -> Result<Vec<Piece>> {
    let mut pos = 0usize;
    while let Some(&kind) = clx.get(pos) {
        match kind {
            0x01 => {
                let cb = u16_at(clx, pos + 1).ok_or_else(|| fail("truncated CLX"))?;
                pos += 3 + usize::from(cb);
            }
            0x02 => {
                let lcb = u32_at(clx, pos + 1).ok_or_else(|| fail("truncated CLX"))? as usize;
                let plc = clx
                    .get(pos + 5..(pos + 5).saturating_add(lcb))
                    .ok_or_else(|| fail("piece table runs past the CLX"))?;
                if plc.len() < 16 || (plc.len() - 4) % 12 != 0 {
                    return Err(fail("malformed piece table"));
                }
                let n = (plc.len() - 4) / 12;
                let cp = |i: usize| u32_at(plc, i * 4).unwrap_or(0);
                return Ok((0..n)
                    .map(|i| {
                        let fc = u32_at(plc, (n + 1) * 4 + i * 8 + 2).unwrap_or(0);
                        let compressed = fc & 0x4000_0000 != 0;
                        let fc = fc & 0x3FFF_FFFF;
                        Piece {
                            cp: cp(i),
                            cp_end: cp(i + 1).max(cp(i)),
                            offset: if compressed { fc / 2 } else { fc } as usize,
                            wide: !compressed,
                        }
                    })
                    .collect());
            }
            _ => return Err(fail("malformed CLX")),
        }
    }
    Err(fail("no piece table in the CLX"))
}

/// Extract a `.doc` body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let mut ole = Ole::open(bytes, Format::Doc)?;
    let word = ole.read("/WordDocument", sink.budget())?;
    let fib = Fib::parse(&word)?;
    let pieces = if fib.clx.1 > 0 {
        let table = ole.read(fib.table, sink.budget())?;
        let (fc, lcb) = (fib.clx.0 as usize, fib.clx.1 as usize);
        let clx = table.get(fc..fc.saturating_add(lcb)).ok_or_else(|| {
            fail(format!(
                "the CLX lies outside the {} stream",
                &fib.table[1..]
            ))
        })?;
        pieces(clx)?
    } else {
        let total = fib.ccp_text.saturating_add(fib.ccp_rest);
        vec![Piece {
            cp: 0,
            cp_end: total,
            offset: fib.fc_min as usize,
            wide: fib.wide,
        }]
    };
    let mut text = WordText::new(sink);
    text.range(&word, &pieces, 0, fib.ccp_text)?;
    text.flush();
    text.sink.para();
    text.range(
        &word,
        &pieces,
        fib.ccp_text,
        fib.ccp_text.saturating_add(fib.ccp_rest),
    )?;
    text.flush();
    Ok(())
}

/// Word's text stream to plain text (see the module docs).
struct WordText<'s> {
    sink: &'s mut Sink,
    /// Open fields: `true` while in the field code (before its separator).
    fields: Vec<bool>,
    in_code: usize,
    prev: char,
    buf: String,
}

impl<'s> WordText<'s> {
    fn new(sink: &'s mut Sink) -> Self {
        WordText {
            sink,
            fields: Vec::new(),
            in_code: 0,
            prev: '\0',
            buf: String::new(),
        }
    }

    /// Characters `[from, to)` through the piece table. Each character position is
    /// read once: a (hostile) table whose pieces overlap is read as far as it advances.
    fn range(&mut self, word: &[u8], pieces: &[Piece], from: u32, to: u32) -> Result<()> {
        let mut covered = from;
        for piece in pieces {
            let (start, end) = (covered.max(piece.cp), to.min(piece.cp_end));
            if start >= end {
                continue;
            }
            covered = end;
            // a piece can be megabytes: look at the clock for every one
            self.sink.budget().check_time()?;
            if self.sink.is_full() {
                return Ok(());
            }
            let (skip, count) = ((start - piece.cp) as usize, (end - start) as usize);
            let unit = if piece.wide { 2 } else { 1 };
            let bytes = piece
                .offset
                .checked_add(skip * unit)
                .and_then(|a| Some((a, a.checked_add(count * unit)?)))
                .and_then(|(a, b)| word.get(a..b))
                .ok_or_else(|| fail("a piece lies outside the WordDocument stream"))?;
            if piece.wide {
                let units = bytes
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]));
                for c in char::decode_utf16(units) {
                    self.char(c.unwrap_or('\u{FFFD}'));
                }
            } else {
                for b in bytes {
                    self.char(cp1252(*b));
                }
            }
            if self.sink.is_full() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn char(&mut self, c: char) {
        let prev = std::mem::replace(&mut self.prev, c);
        match c {
            '\u{13}' => {
                self.fields.push(true);
                self.in_code += 1;
                return;
            }
            '\u{14}' => {
                if let Some(code @ true) = self.fields.last_mut() {
                    *code = false;
                    self.in_code -= 1;
                }
                return;
            }
            '\u{15}' => {
                if self.fields.pop() == Some(true) {
                    self.in_code -= 1;
                }
                return;
            }
            _ if self.in_code > 0 => return,
            _ => {}
        }
        self.buf.push(match c {
            '\u{7}' if prev == '\u{7}' => '\n', // cell mark, then row-end mark
            '\u{7}' => '\t',
            '\u{1e}' => '-', // non-breaking hyphen
            c => c,
        });
        if self.buf.len() >= 4096 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.sink.push(&self.buf);
        self.buf.clear();
    }
}
