//! Text cut to a byte budget: log lines, error messages, ids and bodies are bounded before
//! they are logged, stored or indexed.

/// `s` cut to at most `max` bytes at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut in place to at most `max` bytes at a character boundary (no copy of the kept text).
pub fn truncate_owned(mut s: String, max: usize) -> String {
    let end = truncate(&s, max).len();
    s.truncate(end);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_owned_text_in_place() {
        let s = String::from("héllo");
        let ptr = s.as_ptr();
        let cut = truncate_owned(s, 2);
        assert_eq!(cut, "h");
        assert_eq!(cut.as_ptr(), ptr, "the same buffer, not a copy");
        assert_eq!(truncate_owned("abc".into(), 10), "abc");
    }

    #[test]
    fn truncates_at_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
