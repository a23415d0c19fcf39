//! The `default` analyzer of the embedded index (the `words` field and text queries), as one
//! tokenizer instead of tantivy's chain of three.
//!
//! Invariants:
//! - **Same tokens as tantivy's `default`** (`SimpleTokenizer`, then `RemoveLongFilter` at 40
//!   bytes, then `LowerCaser`): a token is a maximal run of `char::is_alphanumeric`
//!   characters; runs of 40 bytes or more are dropped but still take their position; text is
//!   lower-cased (ASCII in place, other characters by `char::to_lowercase`); offsets are byte
//!   offsets of the original run. Indexes written before keep matching the same queries. The
//!   property test below holds the two to the same output.
//! - A dropped run is skipped, never copied.
//!
//! Why: on the Box mix of `sync_memory` (1 MB files, each one run of random letters, as in
//! Elastic's fixtures) a third of the sync's CPU was `SimpleTokenStream::advance`: it decodes
//! every character and copies each run whole before the filter drops it. Here ASCII is
//! classified 16 bytes at a time, then by a table, and only the characters of kept tokens are
//! copied.

use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};

/// Runs this long (in bytes) or longer are not indexed (tantivy's `default` limit).
const LONGEST: usize = 40;

/// ASCII letters and digits: what `char::is_alphanumeric` says for bytes below 0x80.
const ALNUM: [bool; 128] = {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 128 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    t
};

/// The analyzer registered as `default` on every index the host opens.
pub(super) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::from(Words::default())
}

#[derive(Clone, Default)]
pub(super) struct Words {
    token: Token,
}

pub(super) struct WordStream<'a> {
    text: &'a str,
    /// Byte offset where the next search starts (always a character boundary).
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            at: 0,
            token: &mut self.token,
        }
    }
}

impl WordStream<'_> {
    /// Whether the character at byte `i` (a boundary) is alphanumeric, and its length.
    fn class(&self, i: usize) -> (bool, usize) {
        let b = self.text.as_bytes()[i];
        if b < 0x80 {
            return (ALNUM[usize::from(b)], 1);
        }
        match self.text.get(i..).and_then(|s| s.chars().next()) {
            Some(c) => (c.is_alphanumeric(), c.len_utf8()),
            None => (false, 1),
        }
    }

    /// The end of the run of alphanumeric characters starting at `i`.
    fn run_end(&self, mut i: usize) -> usize {
        let bytes = self.text.as_bytes();
        loop {
            // 16 ASCII letters or digits at a time (a fold the compiler vectorises)
            while let Some(block) = bytes.get(i..i + 16) {
                let all = block.iter().fold(true, |all, &b| {
                    all & (((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10))
                });
                if !all {
                    break;
                }
                i += 16;
            }
            while let Some(&b) = bytes.get(i) {
                if b >= 0x80 || !ALNUM[usize::from(b)] {
                    break;
                }
                i += 1;
            }
            if i >= bytes.len() || bytes[i] < 0x80 {
                return i;
            }
            match self.class(i) {
                (true, len) => i += len,
                (false, _) => return i,
            }
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        let n = self.text.len();
        loop {
            let mut i = self.at;
            loop {
                if i >= n {
                    self.at = n;
                    return false;
                }
                match self.class(i) {
                    (true, _) => break,
                    (false, len) => i += len,
                }
            }
            let start = i;
            let end = self.run_end(start);
            self.at = end;
            self.token.position = self.token.position.wrapping_add(1);
            if end - start >= LONGEST {
                continue;
            }
            let run = &self.text[start..end];
            self.token.offset_from = start;
            self.token.offset_to = end;
            self.token.text.clear();
            if run.is_ascii() {
                self.token.text.push_str(run);
                self.token.text.make_ascii_lowercase();
            } else {
                self.token
                    .text
                    .extend(run.chars().flat_map(char::to_lowercase));
            }
            return true;
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tantivy::tokenizer::{
        LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenStream,
    };

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token();
            out.push((t.text.clone(), t.offset_from, t.offset_to, t.position));
        }
        out
    }

    fn tantivy_default() -> TextAnalyzer {
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .build()
    }

    fn same(text: &str) {
        assert_eq!(
            tokens(&mut super::analyzer(), text),
            tokens(&mut tantivy_default(), text),
            "{text:?}"
        );
    }

    #[test]
    fn the_cases_that_differ_between_bytes_and_characters() {
        same("");
        same("Hello, happy TAX payer!");
        // Exactly 39 and 40 bytes: the first is kept, the second dropped but counted.
        same(&format!("a {} b {} c", "x".repeat(39), "y".repeat(40)));
        // Multi-byte letters reaching the limit in bytes before characters.
        same(&format!("{} ok", "é".repeat(20)));
        same(&format!("{} ok", "é".repeat(19)));
        // Lower-casing that changes length (İ → i̇), Σ, ß, digits of other scripts, marks and
        // symbols that are not alphanumeric, CJK, emoji, an alphanumeric run ending the text.
        same("İstanbul ΣΊΣΥΦΟΣ Straße ٣٤ café\u{301} 東京タワー 🙂x 12ab");
        same("\u{301}a\u{301}b  ,,\t\n");
        same(&"w".repeat(1_000_000));
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9]{1,12}",
            "[ ,.;:!?()\\t\\n-]{1,3}",
            "[éÉßİΣσςЖж٣東京\u{301}\u{200b}🙂]{1,6}",
            (35usize..45).prop_map(|n| "Q".repeat(n)),
            (15usize..25).prop_map(|n| "é".repeat(n)),
        ]
    }

    proptest! {
        #[test]
        fn any_text_gives_tantivys_default_tokens(pieces in prop::collection::vec(piece(), 0..40)) {
            same(&pieces.concat());
        }
    }
}
