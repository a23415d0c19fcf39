//! The way out of a plugin: documents batched into `upsert` calls, deletions, checkpoints, and
//! downloads re-signed when the host reports them refused because a token expired.
//!
//! Invariants:
//! - **Order.** The host sees upserts and deletions in the order the plugin made them: a
//!   deletion first sends the upserts queued before it, so "upsert a, delete a" never turns into
//!   "delete a, upsert a".
//! - **Batches.** Upserts are sent [`Outbox::batch_size`] at a time: when that many are queued,
//!   and at every [`Outbox::flush`], deletion and checkpoint. No call carries more (deletions go
//!   [`DELETE_CHUNK`] ids a call).
//! - **Nothing is sent on drop.** A run ends with [`Outbox::checkpoint`] (or at least
//!   [`Outbox::flush`]); documents still queued when the outbox is dropped are lost.
//! - **Checkpoints.** A checkpoint sends what is queued, then `index.checkpoint(state)`: the
//!   host writes `state` only after every document queued before it is committed, so a crash
//!   resumes from state whose documents are safely indexed.
//! - **Pending downloads.** Every document emitted with a host-side download since the last
//!   checkpoint is kept, as last emitted, until the checkpoint that commits it; emitting the id
//!   again without a download, or deleting it, drops it. Memory is bounded by what the plugin
//!   emits between checkpoints ([`Outbox::pending_fetches`] tells it when to checkpoint early).
//! - **Expired credentials.** Host-side downloads carry the credentials valid when the document
//!   was emitted; when they expire before the host gets to a download, the checkpoint reports a
//!   content failure with HTTP 401. With a [`Resign`] ([`Outbox::checkpoint_with`]), the outbox
//!   then refreshes the credentials once, signs each refused request again, upserts those
//!   documents again and checkpoints (without state) to wait for them — at most
//!   [`RESIGN_ROUNDS`] rounds. Everything else (other failures, a 401 for a document it does not
//!   hold, a 401 still there after the rounds) is returned to the plugin, which decides what a
//!   document without `body` means for it (log it, mark it stale).
//! - **Counts.** [`Outbox::emitted`] counts the plugin's emissions; documents sent again with
//!   new credentials count in [`Outbox::refetched`] only.
//!
//! ```ignore
//! let mut out = Outbox::new(100);
//! for entry in page {
//!     out.emit(document(entry))?;
//! }
//! out.delete(&vanished)?;
//! let failures = out.checkpoint_with(&mut session, vec![cursor_entry])?;
//! ```

use std::collections::{HashMap, HashSet};

use crate::Result;
use crate::docs::Document;
use crate::http::Request;
use crate::tributary::connector::index::{self, Content, ContentFailure};

/// Rounds of "refresh the credentials, re-send the downloads refused with 401" per checkpoint.
pub const RESIGN_ROUNDS: usize = 3;
/// Ids per `delete` call.
pub const DELETE_CHUNK: usize = 1000;

/// A storage write made by a checkpoint: a key and its new bytes (`None` deletes the key).
pub type StateEntry = (String, Option<Vec<u8>>);

/// Renews the credentials of host-side downloads (implemented by a plugin's API session).
pub trait Resign {
    /// Obtains new credentials: the source refused the current ones with 401.
    fn refresh(&mut self) -> Result<()>;
    /// Signs `request` again with the current credentials (e.g. a new `Authorization`).
    fn resign(&mut self, request: &mut Request) -> Result<()>;
}

/// The index calls an outbox makes: [`HostIndex`] in a plugin, a recording fake in tests.
pub trait Index {
    /// Sends documents to the connector's index (or its access-control index).
    fn upsert(&mut self, access_control: bool, documents: &[index::Document]) -> Result<()>;
    /// Deletes documents by id.
    fn delete(&mut self, access_control: bool, ids: &[String]) -> Result<()>;
    /// Keeps already-indexed documents that this full sync could not list.
    fn keep(&mut self, ids: &[String]) -> Result<()>;
    /// Commits everything sent so far, then writes `state`; returns the content failures since
    /// the previous checkpoint.
    fn checkpoint(&mut self, state: &[StateEntry]) -> Result<Vec<ContentFailure>>;
}

/// The host's `index` capability.
#[derive(Debug, Default)]
pub struct HostIndex;

impl Index for HostIndex {
    fn upsert(&mut self, access_control: bool, documents: &[index::Document]) -> Result<()> {
        if access_control {
            index::upsert_access_control(documents)?;
        } else {
            index::upsert(documents)?;
        }
        Ok(())
    }

    fn delete(&mut self, access_control: bool, ids: &[String]) -> Result<()> {
        if access_control {
            index::delete_access_control(ids)?;
        } else {
            index::delete(ids)?;
        }
        Ok(())
    }

    fn keep(&mut self, ids: &[String]) -> Result<()> {
        Ok(index::keep(ids)?)
    }

    fn checkpoint(&mut self, state: &[StateEntry]) -> Result<Vec<ContentFailure>> {
        Ok(index::checkpoint(state)?)
    }
}

/// Documents on their way to the index (see the module docs for what it guarantees).
#[derive(Debug)]
pub struct Outbox<I: Index = HostIndex> {
    index: I,
    access_control: bool,
    batch_size: usize,
    batch: Vec<index::Document>,
    /// Documents with a host-side download since the last checkpoint, by id, as last emitted.
    pending: HashMap<String, index::Document>,
    since_checkpoint: usize,
    emitted: u64,
    deleted: u64,
    refetched: u64,
}

impl Outbox {
    /// An outbox for the connector's index, upserting `batch_size` documents a call.
    pub fn new(batch_size: usize) -> Self {
        Self::with_index(HostIndex, batch_size)
    }

    /// An outbox for the connector's access-control index.
    pub fn access_control(batch_size: usize) -> Self {
        Self {
            access_control: true,
            ..Self::new(batch_size)
        }
    }
}

impl<I: Index> Outbox<I> {
    /// An outbox sending to `index` (tests record the calls).
    pub fn with_index(index: I, batch_size: usize) -> Self {
        Self {
            index,
            access_control: false,
            batch_size: batch_size.max(1),
            batch: Vec::new(),
            pending: HashMap::new(),
            since_checkpoint: 0,
            emitted: 0,
            deleted: 0,
            refetched: 0,
        }
    }

    /// Documents per `upsert` call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Queues a document, sending the batch when it is full.
    pub fn emit(&mut self, document: Document) -> Result<()> {
        let document = document.into_wit();
        if matches!(document.content, Some(Content::Fetch(_))) {
            self.pending.insert(document.id.clone(), document.clone());
        } else {
            self.pending.remove(&document.id);
        }
        self.batch.push(document);
        self.emitted += 1;
        self.since_checkpoint += 1;
        if self.batch.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends what is queued.
    pub fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.index.upsert(self.access_control, &batch)
    }

    /// Deletes documents by id, after the upserts queued before.
    pub fn delete(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.flush()?;
        for id in ids {
            self.pending.remove(id);
        }
        for chunk in ids.chunks(DELETE_CHUNK) {
            self.index.delete(self.access_control, chunk)?;
        }
        self.deleted += ids.len() as u64;
        Ok(())
    }

    /// During a full sync: keeps documents indexed before whose part of the source could not be
    /// listed this time (a skipped folder's known contents), so the host does not delete them
    /// as vanished.
    pub fn keep(&mut self, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(DELETE_CHUNK) {
            self.index.keep(chunk)?;
        }
        Ok(())
    }

    /// Sends what is queued, waits for the host to commit it, then stores `state`. Returns the
    /// content failures since the last checkpoint (a 401 included: nothing is re-signed).
    pub fn checkpoint(&mut self, state: Vec<StateEntry>) -> Result<Vec<ContentFailure>> {
        self.commit(None, state)
    }

    /// [`Self::checkpoint`], re-sending downloads refused with 401 with credentials renewed by
    /// `resign`. Returns the failures that remain.
    pub fn checkpoint_with(
        &mut self,
        resign: &mut dyn Resign,
        state: Vec<StateEntry>,
    ) -> Result<Vec<ContentFailure>> {
        self.commit(Some(resign), state)
    }

    fn commit(
        &mut self,
        resign: Option<&mut dyn Resign>,
        state: Vec<StateEntry>,
    ) -> Result<Vec<ContentFailure>> {
        self.flush()?;
        let mut failures = self.index.checkpoint(&state)?;
        let mut remaining = Vec::new();
        if let Some(resign) = resign {
            for _ in 0..RESIGN_ROUNDS {
                let (expired, other): (Vec<_>, Vec<_>) = failures
                    .into_iter()
                    .partition(|f| f.status == Some(401) && self.pending.contains_key(&f.id));
                remaining.extend(other);
                failures = Vec::new();
                if expired.is_empty() {
                    break;
                }
                crate::info!(
                    "{} download(s) were refused with HTTP 401 (the access token expired while \
                     they waited): refreshing it and fetching them again",
                    expired.len()
                );
                resign.refresh()?;
                let mut again = Vec::with_capacity(expired.len());
                let mut once = HashSet::new();
                for failure in expired {
                    if !once.insert(failure.id.clone()) {
                        continue;
                    }
                    if let Some(document) = self.pending.get(&failure.id) {
                        again.push(resigned(document.clone(), resign)?);
                    }
                }
                for chunk in again.chunks(self.batch_size) {
                    self.index.upsert(self.access_control, chunk)?;
                }
                self.refetched += again.len() as u64;
                failures = self.index.checkpoint(&[])?;
            }
        }
        remaining.extend(failures);
        self.pending.clear();
        self.since_checkpoint = 0;
        Ok(remaining)
    }

    /// Documents emitted since the last checkpoint.
    pub fn since_checkpoint(&self) -> usize {
        self.since_checkpoint
    }

    /// Documents with a host-side download since the last checkpoint.
    pub fn pending_fetches(&self) -> usize {
        self.pending.len()
    }

    /// Documents emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Ids deleted so far.
    pub fn deleted(&self) -> u64 {
        self.deleted
    }

    /// Documents sent again with renewed credentials.
    pub fn refetched(&self) -> u64 {
        self.refetched
    }
}

/// `document` with its download request signed again.
fn resigned(mut document: index::Document, resign: &mut dyn Resign) -> Result<index::Document> {
    if let Some(Content::Fetch(content)) = &mut document.content {
        let mut request = Request::from_wit(content.request.clone());
        resign.resign(&mut request)?;
        content.request = request.to_wit();
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::collections::VecDeque;

    use super::*;
    use crate::Error;
    use crate::docs::Fetch;

    /// One call the outbox made.
    #[derive(Debug, PartialEq)]
    enum Call {
        /// Ids, with the `Authorization` of each download (`-` without one).
        Upsert(bool, Vec<(String, String)>),
        Delete(bool, Vec<String>),
        Keep(Vec<String>),
        Checkpoint(Vec<String>),
    }

    /// Records calls; each checkpoint answers the next scripted list of failures.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<Call>,
        answers: VecDeque<Vec<ContentFailure>>,
    }

    impl Recorder {
        fn answering(answers: impl IntoIterator<Item = Vec<ContentFailure>>) -> Self {
            Self {
                calls: Vec::new(),
                answers: answers.into_iter().collect(),
            }
        }
    }

    impl Index for Recorder {
        fn upsert(&mut self, acl: bool, documents: &[index::Document]) -> Result<()> {
            let ids = documents
                .iter()
                .map(|d| (d.id.clone(), authorization(d)))
                .collect();
            self.calls.push(Call::Upsert(acl, ids));
            Ok(())
        }

        fn delete(&mut self, acl: bool, ids: &[String]) -> Result<()> {
            self.calls.push(Call::Delete(acl, ids.to_vec()));
            Ok(())
        }

        fn keep(&mut self, ids: &[String]) -> Result<()> {
            self.calls.push(Call::Keep(ids.to_vec()));
            Ok(())
        }

        fn checkpoint(&mut self, state: &[StateEntry]) -> Result<Vec<ContentFailure>> {
            self.calls.push(Call::Checkpoint(
                state.iter().map(|(k, _)| k.clone()).collect(),
            ));
            Ok(self.answers.pop_front().unwrap_or_default())
        }
    }

    fn authorization(document: &index::Document) -> String {
        match &document.content {
            Some(Content::Fetch(content)) => content
                .request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            _ => "-".into(),
        }
    }

    /// Tokens `t0`, `t1`, … : each refresh moves to the next.
    #[derive(Default)]
    struct Tokens {
        current: u32,
        refreshes: u32,
        fail_refresh: bool,
    }

    impl Resign for Tokens {
        fn refresh(&mut self) -> Result<()> {
            if self.fail_refresh {
                return Err(Error::Auth("refresh token revoked".into()));
            }
            self.current += 1;
            self.refreshes += 1;
            Ok(())
        }

        fn resign(&mut self, request: &mut Request) -> Result<()> {
            request.set_header("Authorization", format!("Bearer t{}", self.current));
            Ok(())
        }
    }

    fn plain(id: &str) -> Document {
        Document::new(id).field("title", id)
    }

    fn download(id: &str, token: &str) -> Document {
        let request = Request::get(format!("http://127.0.0.1:1/{id}"))
            .bearer(token)
            .header("As-User", "7");
        Document::new(id).fetch(&request, Fetch::new(format!("{id}.txt"), Some(3), 100))
    }

    fn failure(id: &str, status: Option<u16>) -> ContentFailure {
        ContentFailure {
            id: id.into(),
            status,
            message: "refused".into(),
        }
    }

    fn ids(list: &[&str]) -> Vec<(String, String)> {
        list.iter().map(|i| (i.to_string(), "-".into())).collect()
    }

    #[test]
    fn upserts_go_in_batches_and_deletions_after_what_was_queued() {
        let mut out = Outbox::with_index(Recorder::default(), 2);
        for id in ["a", "b", "c"] {
            out.emit(plain(id)).unwrap();
        }
        out.delete(&["a".to_string()]).unwrap();
        out.delete(&[]).unwrap();
        out.emit(plain("a")).unwrap();
        out.checkpoint(vec![("cursor".into(), Some(b"1".to_vec()))])
            .unwrap();
        assert_eq!(
            out.index.calls,
            vec![
                Call::Upsert(false, ids(&["a", "b"])),
                Call::Upsert(false, ids(&["c"])),
                Call::Delete(false, vec!["a".into()]),
                Call::Upsert(false, ids(&["a"])),
                Call::Checkpoint(vec!["cursor".into()]),
            ]
        );
        assert_eq!((out.emitted(), out.deleted(), out.refetched()), (4, 1, 0));
        assert_eq!(out.since_checkpoint(), 0);
    }

    #[test]
    fn large_deletions_are_chunked_and_access_control_goes_to_its_index() {
        let mut out = Outbox::with_index(Recorder::default(), 10);
        out.access_control = true;
        let many: Vec<String> = (0..DELETE_CHUNK + 1).map(|i| i.to_string()).collect();
        out.emit(plain("u")).unwrap();
        out.delete(&many).unwrap();
        let calls = &out.index.calls;
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0], Call::Upsert(true, ids(&["u"])));
        assert!(matches!(&calls[1], Call::Delete(true, c) if c.len() == DELETE_CHUNK));
        assert_eq!(calls[2], Call::Delete(true, vec![DELETE_CHUNK.to_string()]));
    }

    #[test]
    fn downloads_refused_with_401_are_signed_again_and_sent_once_more() {
        let index = Recorder::answering([
            vec![
                failure("a", Some(401)),
                failure("b", Some(404)),
                failure("c", Some(401)),
                failure("gone", Some(401)),
            ],
            vec![],
        ]);
        let mut out = Outbox::with_index(index, 10);
        out.emit(download("a", "t0")).unwrap();
        out.emit(download("b", "t0")).unwrap();
        out.emit(download("c", "t0")).unwrap();
        out.emit(download("gone", "t0")).unwrap();
        out.delete(&["gone".to_string()]).unwrap();
        assert_eq!(out.pending_fetches(), 3);
        let mut tokens = Tokens::default();
        let left = out
            .checkpoint_with(&mut tokens, vec![("cursor".into(), None)])
            .unwrap();
        assert_eq!(tokens.refreshes, 1);
        let left: Vec<_> = left.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(left, ["b", "gone"], "only held 401s are retried");
        let calls = &out.index.calls;
        assert_eq!(
            calls[calls.len() - 2..],
            [
                Call::Upsert(
                    false,
                    vec![
                        ("a".into(), "Bearer t1".into()),
                        ("c".into(), "Bearer t1".into())
                    ]
                ),
                Call::Checkpoint(vec![]),
            ]
        );
        assert_eq!((out.emitted(), out.refetched()), (4, 2));
        assert_eq!(
            out.pending_fetches(),
            0,
            "a checkpoint settles what it held"
        );
    }

    #[test]
    fn re_signed_requests_keep_everything_but_the_credentials() {
        let mut tokens = Tokens {
            current: 5,
            ..Tokens::default()
        };
        let before = download("a", "t0").into_wit();
        let after = resigned(before.clone(), &mut tokens).unwrap();
        let (Some(Content::Fetch(b)), Some(Content::Fetch(a))) = (&before.content, &after.content)
        else {
            panic!("both fetch");
        };
        assert_eq!(a.request.url, b.request.url);
        assert_eq!(a.file_name, b.file_name);
        assert_eq!(
            a.request.headers,
            vec![
                ("As-User".to_string(), "7".to_string()),
                ("Authorization".to_string(), "Bearer t5".to_string())
            ]
        );
        assert_eq!(after.fields, before.fields);
    }

    #[test]
    fn retries_stop_after_the_rounds_and_the_last_401_is_returned() {
        let index = Recorder::answering((0..=RESIGN_ROUNDS).map(|_| vec![failure("a", Some(401))]));
        let mut out = Outbox::with_index(index, 10);
        out.emit(download("a", "t0")).unwrap();
        let mut tokens = Tokens::default();
        let left = out.checkpoint_with(&mut tokens, Vec::new()).unwrap();
        assert_eq!(tokens.refreshes as usize, RESIGN_ROUNDS);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].status, Some(401));
        let checkpoints = out
            .index
            .calls
            .iter()
            .filter(|c| matches!(c, Call::Checkpoint(_)))
            .count();
        assert_eq!(checkpoints, RESIGN_ROUNDS + 1);
    }

    #[test]
    fn a_newer_emission_without_download_is_not_sent_again() {
        let index = Recorder::answering([vec![failure("a", Some(401))]]);
        let mut out = Outbox::with_index(index, 10);
        out.emit(download("a", "t0")).unwrap();
        out.emit(plain("a")).unwrap();
        let mut tokens = Tokens::default();
        let left = out.checkpoint_with(&mut tokens, Vec::new()).unwrap();
        assert_eq!(tokens.refreshes, 0);
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn without_a_resigner_or_when_refresh_fails_nothing_is_sent_again() {
        let index = Recorder::answering([vec![failure("a", Some(401))]]);
        let mut out = Outbox::with_index(index, 10);
        out.emit(download("a", "t0")).unwrap();
        let left = out.checkpoint(Vec::new()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(out.index.calls.len(), 2, "one upsert, one checkpoint");

        let index = Recorder::answering([vec![failure("a", Some(401))]]);
        let mut out = Outbox::with_index(index, 10);
        out.emit(download("a", "t0")).unwrap();
        let mut revoked = Tokens {
            fail_refresh: true,
            ..Tokens::default()
        };
        let err = out.checkpoint_with(&mut revoked, Vec::new()).unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
    }
}
