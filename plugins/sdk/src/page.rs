//! Pagination: cursor, offset and marker listings as iterators of `Result` items.
//!
//! A pager calls a page function until the source says it is done. It never stops silently:
//! a failed page is yielded as an `Err` (and the pager ends after it), and a source that does not
//! advance (the same cursor twice, a truncated page without items, more pages than the limit) is
//! a `Protocol` error rather than an endless loop or a quietly short listing.
//!
//! ```ignore
//! use tributary_sdk::page::{self, Page};
//!
//! for item in page::cursor(|token: Option<&String>| {
//!     let answer: Answer = client.send(&request(token))?.json()?;
//!     Ok(Page::from_token(answer.items, answer.next_page_token))
//! }) {
//!     out.emit(document(item?))?;
//! }
//! ```

use std::collections::VecDeque;
use std::fmt::Debug;

use crate::{Error, Result};

/// One page of a listing and where the next one starts (`None`: this was the last page).
#[derive(Clone, Debug)]
pub struct Page<T, C> {
    /// The items of this page, in order.
    pub items: Vec<T>,
    /// The position of the next page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page with the position of the next one.
    pub fn new(items: Vec<T>, next: Option<C>) -> Self {
        Self { items, next }
    }

    /// The last page.
    pub fn last(items: Vec<T>) -> Self {
        Self { items, next: None }
    }
}

impl<T> Page<T, String> {
    /// A page whose next-page token may be absent or empty (both mean "done").
    pub fn from_token(items: Vec<T>, token: Option<String>) -> Self {
        Self {
            items,
            next: token.filter(|t| !t.is_empty()),
        }
    }
}

type Fetch<'a, T, C> = Box<dyn FnMut(Option<&C>) -> Result<Page<T, C>> + 'a>;

/// Pages through a listing; an [`Iterator`] of `Result<T>` (see the module docs).
pub struct Pager<'a, T, C> {
    fetch: Fetch<'a, T, C>,
    position: Option<C>,
    buffer: VecDeque<T>,
    started: bool,
    done: bool,
    pages: u32,
    max_pages: u32,
}

/// A listing where each page names the next one with an opaque cursor or token. The page
/// function receives `None` for the first page.
pub fn cursor<'a, T, C, F>(fetch: F) -> Pager<'a, T, C>
where
    C: Clone + PartialEq + Debug,
    F: FnMut(Option<&C>) -> Result<Page<T, C>> + 'a,
{
    Pager {
        fetch: Box::new(fetch),
        position: None,
        buffer: VecDeque::new(),
        started: false,
        done: false,
        pages: 0,
        max_pages: u32::MAX,
    }
}

/// One page of an offset listing.
#[derive(Clone, Debug)]
pub struct OffsetPage<T> {
    /// The items.
    pub items: Vec<T>,
    /// The total the source reports, when it does.
    pub total: Option<u64>,
}

/// A listing by `offset` and `limit` (`?offset=100&limit=50`). It ends at a short or empty page,
/// or when `offset` reaches the reported total.
pub fn offset<'a, T, F>(limit: u64, mut fetch: F) -> Pager<'a, T, u64>
where
    F: FnMut(u64, u64) -> Result<OffsetPage<T>> + 'a,
{
    let limit = limit.max(1);
    cursor(move |position: Option<&u64>| {
        let start = position.copied().unwrap_or(0);
        let page = fetch(start, limit)?;
        let got = page.items.len() as u64;
        let end = start.saturating_add(got);
        let more = got >= limit && page.total.is_none_or(|total| end < total);
        Ok(Page::new(page.items, more.then_some(end)))
    })
}

/// One page of a marker listing.
#[derive(Clone, Debug)]
pub struct MarkerPage<T> {
    /// The items.
    pub items: Vec<T>,
    /// Whether more items follow this page.
    pub truncated: bool,
}

/// A listing that continues after the last item seen (`?marker=<last key>`, S3 style): the next
/// page starts at `marker_of(last item)` while the source says the listing is truncated.
pub fn marker<'a, T, M, F, K>(mut fetch: F, marker_of: K) -> Pager<'a, T, M>
where
    M: Clone + PartialEq + Debug,
    F: FnMut(Option<&M>) -> Result<MarkerPage<T>> + 'a,
    K: Fn(&T) -> M + 'a,
{
    cursor(move |position: Option<&M>| {
        let page = fetch(position)?;
        if !page.truncated {
            return Ok(Page::last(page.items));
        }
        let next = page.items.last().map(&marker_of).ok_or_else(|| {
            Error::Protocol("the source said the listing continues but sent no items".into())
        })?;
        Ok(Page::new(page.items, Some(next)))
    })
}

impl<'a, T, C: Clone + PartialEq + Debug> Pager<'a, T, C> {
    /// Starts after a position saved earlier (e.g. a page token checkpointed mid-listing).
    pub fn resume_from(mut self, position: C) -> Self {
        self.position = Some(position);
        self
    }

    /// Fails (rather than stopping) when the listing needs more than `pages` pages.
    pub fn max_pages(mut self, pages: u32) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Where the next page starts: `None` before the first page and after the last.
    pub fn position(&self) -> Option<&C> {
        self.position.as_ref()
    }

    /// The remaining items, whole pages at a time (a page's items, then the next page's…).
    pub fn next_page(&mut self) -> Option<Result<Vec<T>>> {
        if !self.buffer.is_empty() {
            return Some(Ok(self.buffer.drain(..).collect()));
        }
        if self.done {
            return None;
        }
        if self.started && self.position.is_none() {
            self.done = true;
            return None;
        }
        if self.pages >= self.max_pages {
            self.done = true;
            return Some(Err(Error::Protocol(format!(
                "the listing did not end within {} pages",
                self.max_pages
            ))));
        }
        self.started = true;
        let page = match (self.fetch)(self.position.as_ref()) {
            Ok(page) => page,
            Err(err) => {
                self.done = true;
                return Some(Err(err));
            }
        };
        self.pages += 1;
        if let (Some(next), Some(current)) = (&page.next, &self.position)
            && next == current
        {
            self.done = true;
            return Some(Err(Error::Protocol(format!(
                "pagination did not advance: the source answered position {current:?} with the same position"
            ))));
        }
        self.position = page.next;
        Some(Ok(page.items))
    }

    /// Every remaining item, or the first error.
    pub fn collect_all(self) -> Result<Vec<T>> {
        self.collect()
    }
}

impl<T, C: Clone + PartialEq + Debug> Iterator for Pager<'_, T, C> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(Ok(item));
            }
            match self.next_page()? {
                Ok(items) => self.buffer.extend(items),
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursor_pages_until_no_token() {
        let mut calls = Vec::new();
        let items: Vec<u32> = cursor(|token: Option<&String>| {
            calls.push(token.cloned());
            Ok(match token.map(String::as_str) {
                None => Page::from_token(vec![1, 2], Some("b".into())),
                Some("b") => Page::from_token(vec![3], Some("c".into())),
                _ => Page::from_token(vec![4], Some(String::new())),
            })
        })
        .collect_all()
        .unwrap();
        assert_eq!(items, [1, 2, 3, 4]);
        assert_eq!(calls, [None, Some("b".into()), Some("c".into())]);
    }

    #[test]
    fn an_error_is_yielded_and_ends_the_listing() {
        let mut pager = cursor(|token: Option<&u32>| match token {
            None => Ok(Page::new(vec!["a"], Some(1))),
            Some(_) => Err(Error::Transient("HTTP 503".into())),
        });
        assert_eq!(pager.next().unwrap().unwrap(), "a");
        assert!(matches!(pager.next(), Some(Err(Error::Transient(_)))));
        assert!(pager.next().is_none());
        assert_eq!(pager.pages(), 1);
    }

    #[test]
    fn a_source_that_does_not_advance_is_an_error() {
        let result =
            cursor(|_: Option<&String>| Ok(Page::new(vec![1], Some("same".into())))).collect_all();
        assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("did not advance")));
        let result = cursor(|t: Option<&u32>| Ok(Page::new(vec![1], Some(t.map_or(0, |t| t + 1)))))
            .max_pages(5)
            .collect_all();
        assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("within 5 pages")));
    }

    #[test]
    fn offset_stops_at_a_short_page_or_the_total() {
        let data: Vec<u32> = (0..7).collect();
        let mut offsets = Vec::new();
        let all = offset(3, |start, limit| {
            offsets.push(start);
            let s = start as usize;
            let e = (s + limit as usize).min(data.len());
            Ok(OffsetPage {
                items: data[s..e].to_vec(),
                total: None,
            })
        })
        .collect_all()
        .unwrap();
        assert_eq!(all, data);
        assert_eq!(offsets, [0, 3, 6]);

        // Exactly full pages: the reported total ends it without an extra empty request.
        let mut calls = 0;
        let all = offset(2, |start, _| {
            calls += 1;
            Ok(OffsetPage {
                items: vec![start, start + 1],
                total: Some(4),
            })
        })
        .collect_all()
        .unwrap();
        assert_eq!((all, calls), (vec![0, 1, 2, 3], 2));
    }

    #[test]
    fn marker_continues_after_the_last_item() {
        let keys = ["a", "b", "c", "d", "e"];
        let mut seen = Vec::new();
        let all = marker(
            |after: Option<&String>| {
                seen.push(after.cloned());
                let start = after.map_or(0, |m| keys.iter().position(|k| k == m).unwrap() + 1);
                let end = (start + 2).min(keys.len());
                Ok(MarkerPage {
                    items: keys[start..end].iter().map(|k| k.to_string()).collect(),
                    truncated: end < keys.len(),
                })
            },
            |k: &String| k.clone(),
        )
        .collect_all()
        .unwrap();
        assert_eq!(all, keys);
        assert_eq!(seen, [None, Some("b".into()), Some("d".into())]);

        let truncated_but_empty = marker(
            |_: Option<&String>| {
                Ok(MarkerPage::<String> {
                    items: vec![],
                    truncated: true,
                })
            },
            |k: &String| k.clone(),
        )
        .collect_all();
        assert!(matches!(truncated_but_empty, Err(Error::Protocol(_))));
    }

    #[test]
    fn whole_pages_and_resume() {
        let mut pager = cursor(|t: Option<&u32>| {
            let n = t.copied().unwrap_or(0);
            Ok(Page::new(
                vec![n * 10, n * 10 + 1],
                (n < 2).then_some(n + 1),
            ))
        })
        .resume_from(1);
        assert_eq!(pager.next_page().unwrap().unwrap(), [10, 11]);
        assert_eq!(pager.position(), Some(&2));
        assert_eq!(pager.next_page().unwrap().unwrap(), [20, 21]);
        assert!(pager.next_page().is_none());
    }
}
