//! JSON and JSON Lines, walked with serde without building a tree.
//!
//! Kept: every string value and every number, one per line, in document order.
//! Dropped: object keys (schema words such as `id`, `name`, `metadata` rather than
//! content), booleans and nulls. A sequence of top-level values (JSON Lines,
//! concatenated JSON) is read value by value. Nesting deeper than serde_json's
//! recursion limit (128) fails cleanly instead of overflowing the stack.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::detect::Format;
use crate::error::{ExtractError, Result};
use crate::text::{Sink, decode};

/// Extract a JSON body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let text = decode(bytes);
    let mut de = serde_json::Deserializer::from_str(&text);
    loop {
        // skip white space between top-level values, stop at the end
        if de.end().is_ok() {
            return Ok(());
        }
        if !sink.proceed()? {
            return Ok(());
        }
        walk_value(&mut de, sink)?;
    }
}

/// Walks one value of `de` into `sink`. A walk the full output stopped is `Ok` (what follows
/// would be cut anyway; the caller sees `sink.is_full()`); a malformed value or the deadline is
/// `Err`.
fn walk_value<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    sink: &mut Sink,
) -> Result<()> {
    let mut timed_out = None;
    let result = Walk {
        sink,
        timed_out: &mut timed_out,
    }
    .deserialize(de);
    if let Some(e) = timed_out {
        return Err(e);
    }
    match result {
        Err(e) if !sink.is_full() => Err(failed(e)),
        _ => Ok(()),
    }
}

/// A seed that pushes scalars into the sink as it deserialises.
struct Walk<'s, 't> {
    sink: &'s mut Sink,
    timed_out: &'t mut Option<ExtractError>,
}

impl Walk<'_, '_> {
    fn reborrow(&mut self) -> Walk<'_, '_> {
        Walk {
            sink: self.sink,
            timed_out: self.timed_out,
        }
    }

    /// Err stops deserialising: the output is full or the deadline passed.
    fn step<E: serde::de::Error>(&mut self) -> std::result::Result<(), E> {
        match self.sink.proceed() {
            Ok(true) => Ok(()),
            Ok(false) => Err(E::custom("output limit reached")),
            Err(e) => {
                *self.timed_out = Some(e);
                Err(E::custom("deadline passed"))
            }
        }
    }

    fn scalar<E: serde::de::Error>(&mut self, s: &str) -> std::result::Result<(), E> {
        self.step()?;
        self.sink.line();
        self.sink.push(s);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> std::result::Result<(), E> {
        self.scalar(v)
    }

    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> std::result::Result<(), E> {
        self.scalar(&v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(mut self, v: u64) -> std::result::Result<(), E> {
        self.scalar(&v.to_string())
    }

    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> std::result::Result<(), E> {
        self.scalar(&v.to_string())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(self.reborrow())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> std::result::Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(self.reborrow())?;
        }
        Ok(())
    }
}

/// Most containers open at once: serde_json's recursion limit (128), so a body nested too
/// deeply fails the same way whole or in pieces.
const MAX_DEPTH: usize = 127;
/// Longest number kept while it is read (a number is formatted by serde_json once complete).
const MAX_NUMBER: usize = 64 * 1024;

/// A JSON body fed in pieces of decoded text (a download): the same scalars, in the same order
/// and spelling, as [`extract`] gives for the whole text, and an error where it fails (the
/// grammar, serde_json's string rules and its nesting limit). A string is written to the sink
/// as it is read, never held whole; a number is held until it ends and then formatted by
/// serde_json, so it reads exactly as [`extract`] writes it.
///
/// One difference, on purpose: when the output fills up inside a string that is malformed
/// further on, the text so far is kept (cut, as any full output), where [`extract`], which checks
/// a string before writing it, fails.
pub(crate) struct Feed {
    /// Open containers, innermost last: `true` for an object.
    stack: Vec<bool>,
    state: State,
    number: String,
}

#[derive(Clone, Copy)]
enum State {
    /// Between top-level values.
    Top,
    /// A value; `close`: right after `[`, so `]` may come instead.
    Value {
        close: bool,
    },
    /// An object key; `close`: right after `{`, so `}` may come instead.
    Key {
        close: bool,
    },
    Colon,
    /// After a value inside a container: `,` or the container's end.
    After,
    /// Inside a string (a key is checked but not written).
    Str {
        key: bool,
        escape: Escape,
    },
    Number(Num),
    /// The rest of `true`, `false` or `null`.
    Literal(&'static [u8]),
}

#[derive(Clone, Copy)]
enum Escape {
    No,
    Backslash,
    /// `\u` and the hex digits so far; `high`: the leading surrogate this one must complete.
    Hex {
        digits: u8,
        value: u32,
        high: Option<u32>,
    },
    /// After a leading surrogate: its trailing one must follow, `\` first …
    Trail(u32),
    /// … then `u`.
    TrailU(u32),
}

/// Where a number is in its grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl Num {
    /// Whether the number may end here.
    fn complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::Exp)
    }

    /// The state after `b`, `None` when `b` does not continue the number.
    fn next(self, b: u8) -> Option<Num> {
        match (self, b) {
            (Num::Minus, b'0') => Some(Num::Zero),
            (Num::Minus, b'1'..=b'9') => Some(Num::Int),
            (Num::Int, b'0'..=b'9') => Some(Num::Int),
            (Num::Zero | Num::Int, b'.') => Some(Num::Dot),
            (Num::Dot | Num::Frac, b'0'..=b'9') => Some(Num::Frac),
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Some(Num::E),
            (Num::E, b'+' | b'-') => Some(Num::ESign),
            (Num::E | Num::ESign | Num::Exp, b'0'..=b'9') => Some(Num::Exp),
            _ => None,
        }
    }
}

fn failed(message: impl fmt::Display) -> ExtractError {
    ExtractError::failed(Format::Json, message)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Feed {
    pub(crate) fn new() -> Self {
        Feed {
            stack: Vec::new(),
            state: State::Top,
            number: String::new(),
        }
    }

    /// Reads the next piece of text; `last` marks the end of the body.
    pub(crate) fn feed(&mut self, text: &str, last: bool, sink: &mut Sink) -> Result<()> {
        let bytes = text.as_bytes();
        let mut i = 0;
        // Once the output is full nothing after it counts, a syntax error included (as for the
        // whole body, whose walk stops at the next value).
        while i < bytes.len() && !sink.is_full() {
            i = self.step(text, i, sink)?;
        }
        if last && !sink.is_full() {
            if let State::Number(num) = self.state {
                if !num.complete() {
                    return Err(failed("EOF while parsing a number"));
                }
                self.end_number(sink)?;
            }
            if !matches!(self.state, State::Top) && !sink.is_full() {
                return Err(failed("EOF while parsing a value"));
            }
        }
        Ok(())
    }

    /// Reads from `text[i..]` (one byte, or a run of plain string text) and answers where to go
    /// on.
    fn step(&mut self, text: &str, i: usize, sink: &mut Sink) -> Result<usize> {
        let bytes = text.as_bytes();
        let b = bytes[i];
        match self.state {
            State::Top | State::Value { .. } | State::After | State::Colon | State::Key { .. }
                if is_space(b) =>
            {
                Ok(bytes[i..]
                    .iter()
                    .position(|&c| !is_space(c))
                    .map_or(bytes.len(), |n| i + n))
            }
            State::Top => {
                // For the deadline: `feed` steps only while the output has room.
                sink.proceed()?;
                self.value(b, false, sink)?;
                Ok(i + 1)
            }
            State::Value { close } => {
                self.value(b, close, sink)?;
                Ok(i + 1)
            }
            State::Key { close } => {
                match b {
                    b'"' => {
                        self.state = State::Str {
                            key: true,
                            escape: Escape::No,
                        }
                    }
                    b'}' if close => self.close(),
                    _ => return Err(failed("key must be a string")),
                }
                Ok(i + 1)
            }
            State::Colon => {
                if b != b':' {
                    return Err(failed("expected `:`"));
                }
                self.state = State::Value { close: false };
                Ok(i + 1)
            }
            State::After => {
                let object = self.stack.last().copied().unwrap_or(false);
                match (b, object) {
                    (b',', true) => self.state = State::Key { close: false },
                    (b',', false) => self.state = State::Value { close: false },
                    (b'}', true) | (b']', false) => self.close(),
                    _ => return Err(failed("expected `,` or the container's end")),
                }
                Ok(i + 1)
            }
            State::Literal(rest) => {
                let Some((&want, rest)) = rest.split_first() else {
                    return Err(failed("expected a value"));
                };
                if b != want {
                    return Err(failed("expected ident"));
                }
                if rest.is_empty() {
                    self.ended();
                } else {
                    self.state = State::Literal(rest);
                }
                Ok(i + 1)
            }
            State::Number(num) => match num.next(b) {
                Some(next) => {
                    if self.number.len() >= MAX_NUMBER {
                        return Err(failed("a number longer than 64 KiB"));
                    }
                    self.number.push(char::from(b));
                    self.state = State::Number(next);
                    Ok(i + 1)
                }
                // A leading zero is a number of its own only when no digit follows.
                None if num.complete() && !(num == Num::Zero && b.is_ascii_digit()) => {
                    self.end_number(sink)?;
                    // `b` is read again in the state after the number.
                    Ok(i)
                }
                None => Err(failed("invalid number")),
            },
            State::Str { key, escape } => self.string(text, i, key, escape, sink),
        }
    }

    /// The first byte of a value.
    fn value(&mut self, b: u8, close: bool, sink: &mut Sink) -> Result<()> {
        match b {
            b'"' => {
                sink.proceed()?;
                sink.line();
                self.state = State::Str {
                    key: false,
                    escape: Escape::No,
                };
            }
            b'[' | b'{' => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(failed("recursion limit exceeded"));
                }
                let object = b == b'{';
                self.stack.push(object);
                self.state = if object {
                    State::Key { close: true }
                } else {
                    State::Value { close: true }
                };
            }
            b']' if close => self.close(),
            b't' => self.state = State::Literal(b"rue"),
            b'f' => self.state = State::Literal(b"alse"),
            b'n' => self.state = State::Literal(b"ull"),
            b'-' | b'0'..=b'9' => {
                self.number.clear();
                self.number.push(char::from(b));
                self.state = State::Number(if b == b'-' {
                    Num::Minus
                } else if b == b'0' {
                    Num::Zero
                } else {
                    Num::Int
                });
            }
            _ => return Err(failed("expected value")),
        }
        Ok(())
    }

    /// A container ends.
    fn close(&mut self) {
        self.stack.pop();
        self.ended();
    }

    /// A value ends.
    fn ended(&mut self) {
        self.state = if self.stack.is_empty() {
            State::Top
        } else {
            State::After
        };
    }

    /// Writes the number read, formatted by serde_json as [`extract`] formats it.
    fn end_number(&mut self, sink: &mut Sink) -> Result<()> {
        // The common case without serde: an integer that fits 64 bits is written as read (the
        // grammar leaves no leading zeros; `-0` is a float to serde_json, so it is not here).
        let digits = self.number.strip_prefix('-');
        let short = match digits {
            Some(d) => d.len() <= 18 && d != "0",
            None => self.number.len() <= 19,
        };
        if short && self.number.bytes().skip(1).all(|b| b.is_ascii_digit()) {
            sink.proceed()?;
            sink.line();
            sink.push(&self.number);
            self.ended();
            return Ok(());
        }
        walk_value(&mut serde_json::Deserializer::from_str(&self.number), sink)?;
        self.ended();
        Ok(())
    }

    /// Reads string text from `text[i..]`.
    fn string(
        &mut self,
        text: &str,
        i: usize,
        key: bool,
        escape: Escape,
        sink: &mut Sink,
    ) -> Result<usize> {
        let bytes = text.as_bytes();
        let b = bytes[i];
        let next = match escape {
            Escape::No => {
                // A run of plain characters, written at once: up to the next quote or
                // backslash (memchr), or the first control character before it.
                let rest = &bytes[i..];
                let stop = |c: u8| c == b'"' || c == b'\\' || c < 0x20;
                // Most strings are short: a plain look at their first bytes, memchr past that.
                let near = rest.len().min(32);
                let end = match rest[..near].iter().position(|&c| stop(c)) {
                    Some(n) => n,
                    None => {
                        let far = &rest[near..];
                        let mut end = memchr::memchr2(b'"', b'\\', far).unwrap_or(far.len());
                        // A fold without early exit, which the compiler vectorises; a rare
                        // control character is then found exactly.
                        if far[..end].iter().fold(false, |any, &c| any | (c < 0x20)) {
                            end = far[..end].iter().position(|&c| c < 0x20).unwrap_or(end);
                        }
                        near + end
                    }
                };
                let end = i + end;
                if end > i {
                    if !key {
                        sink.push(&text[i..end]);
                    }
                    return Ok(end);
                }
                match b {
                    b'"' => {
                        self.ended_string(key);
                        return Ok(i + 1);
                    }
                    b'\\' => Escape::Backslash,
                    _ => return Err(failed("control character found while parsing a string")),
                }
            }
            Escape::Backslash => {
                let plain = match b {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        self.state = State::Str {
                            key,
                            escape: Escape::Hex {
                                digits: 0,
                                value: 0,
                                high: None,
                            },
                        };
                        return Ok(i + 1);
                    }
                    _ => return Err(failed("invalid escape")),
                };
                if !key {
                    sink.push(plain.encode_utf8(&mut [0; 4]));
                }
                Escape::No
            }
            Escape::Hex {
                digits,
                value,
                high,
            } => {
                let digit = char::from(b)
                    .to_digit(16)
                    .ok_or_else(|| failed("invalid escape"))?;
                let value = value * 16 + digit;
                if digits < 3 {
                    Escape::Hex {
                        digits: digits + 1,
                        value,
                        high,
                    }
                } else {
                    self.code_unit(key, value, high, sink)?
                }
            }
            Escape::Trail(high) => {
                if b != b'\\' {
                    return Err(failed("unexpected end of hex escape"));
                }
                Escape::TrailU(high)
            }
            Escape::TrailU(high) => {
                if b != b'u' {
                    return Err(failed("unexpected end of hex escape"));
                }
                Escape::Hex {
                    digits: 0,
                    value: 0,
                    high: Some(high),
                }
            }
        };
        self.state = State::Str { key, escape: next };
        Ok(i + 1)
    }

    /// A complete `\uXXXX`: surrogates must pair, in keys too (serde_json reads keys as
    /// strings even when it ignores them).
    fn code_unit(
        &mut self,
        key: bool,
        unit: u32,
        high: Option<u32>,
        sink: &mut Sink,
    ) -> Result<Escape> {
        let point = match high {
            Some(high) if (0xDC00..=0xDFFF).contains(&unit) => {
                0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00)
            }
            Some(_) => return Err(failed("lone leading surrogate in hex escape")),
            None if (0xDC00..=0xDFFF).contains(&unit) => {
                return Err(failed("lone leading surrogate in hex escape"));
            }
            None if (0xD800..=0xDBFF).contains(&unit) => return Ok(Escape::Trail(unit)),
            None => unit,
        };
        let c = char::from_u32(point).ok_or_else(|| failed("invalid unicode code point"))?;
        if !key {
            sink.push(c.encode_utf8(&mut [0; 4]));
        }
        Ok(Escape::No)
    }

    fn ended_string(&mut self, key: bool) {
        if key {
            self.state = State::Colon;
        } else {
            self.ended();
        }
    }
}
