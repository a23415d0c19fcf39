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
        let mut timed_out = None;
        let result = Walk {
            sink,
            timed_out: &mut timed_out,
        }
        .deserialize(&mut de);
        if let Some(e) = timed_out {
            return Err(e);
        }
        if let Err(e) = result {
            if sink.is_full() {
                return Ok(());
            }
            return Err(ExtractError::failed(Format::Json, e));
        }
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
