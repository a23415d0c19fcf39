//! The directory an embedded index lives in: tantivy's `MmapDirectory`, except that document
//! stores are written around the page cache.
//!
//! Invariants:
//! - every file reads back exactly as written, whatever the sizes of the writes and wherever
//!   tantivy flushes, and is on disk once tantivy terminates it (as `MmapDirectory`'s: data synced
//!   at terminate, the directory at commit);
//! - a document store (`*.store`: the stored bodies, most of an index's bytes, read only to show
//!   a hit or to merge) is written with `O_DIRECT` in aligned blocks of [`BLOCK`] bytes, each
//!   at its own offset and up to [`DEPTH`] at once, so a sync neither fills the page cache with
//!   it nor pays for copying it there; whatever cannot go out as a whole aligned block (the end
//!   of the file, or what a flush asks for) is written through the cache, and so is everything
//!   after it;
//! - a filesystem that refuses `O_DIRECT` (when the flag is set, or on a write) gets the file
//!   through the cache, as `MmapDirectory` writes it: nothing fails because of it;
//! - everything else (reads through `mmap`, locks, `meta.json`, deletes, watches) is
//!   `MmapDirectory`'s own.
//!
//! Why: the page cache a process dirties is charged to its memory cgroup, and the bench's Box mix
//! (2.5 GB of 1 MB bodies) spent 59 % of its CPU in the kernel copying stores into fresh cache
//! pages (`perf`, `sync_memory --bench box`) that tantivy then synced and never read again,
//! evicting the term dictionaries that searches do read. Databases make the same choice for
//! their bulk writes (RocksDB's `use_direct_io_for_flush_and_compaction`). The other files are
//! small and read by every query, so they stay cached.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
};

/// Bytes written per `O_DIRECT` write.
#[cfg(target_os = "linux")]
const BLOCK: usize = 1024 * 1024;
/// `O_DIRECT` writes of one store in flight at once. A single 1 MiB write at a time left the
/// device idle between writes: on the Box mix the indexing thread waited about 0.9 s of a 2.3 s
/// sync for buffers, and this machine's disk took 1.7 s for 2.5 GB written 1 MiB at a time
/// against 1.45 s two at a time (`dd oflag=direct`), as fast as 4 MiB writes for 3 MiB of buffers
/// instead of 8.
#[cfg(target_os = "linux")]
const DEPTH: usize = 2;

/// An index directory (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct IndexDirectory {
    inner: MmapDirectory,
    root: PathBuf,
}

impl IndexDirectory {
    pub(super) fn open(root: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            inner: MmapDirectory::open(root)?,
            root: root.to_path_buf(),
        })
    }
}

impl Directory for IndexDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        #[cfg(target_os = "linux")]
        if path.extension().is_some_and(|e| e == "store") {
            return direct::create(&self.root.join(path))
                .map(|w| {
                    io::BufWriter::new(Box::new(w) as Box<dyn tantivy::directory::TerminatingWrite>)
                })
                .map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => {
                        OpenWriteError::FileAlreadyExists(path.to_path_buf())
                    }
                    _ => OpenWriteError::wrap_io_error(e, path.to_path_buf()),
                });
        }
        self.inner.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

#[cfg(target_os = "linux")]
mod direct {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Write};
    use std::os::unix::fs::FileExt;
    use std::path::Path;
    use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    use rustix::fs::OFlags;
    use tantivy::directory::{AntiCallToken, TerminatingWrite};

    use super::{BLOCK, DEPTH};

    /// The alignment `O_DIRECT` asks of offsets, lengths and memory (the largest logical block
    /// size of common devices).
    const ALIGN: usize = 4096;

    /// Creates `path` (it must not exist) for writing with `O_DIRECT` where the filesystem
    /// allows it.
    pub(super) fn create(path: &Path) -> io::Result<DirectWriter> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        // Set after the file exists, so a refusal leaves a file to write through the cache.
        let direct = rustix::fs::fcntl_getfl(&file)
            .and_then(|flags| rustix::fs::fcntl_setfl(&file, flags | OFlags::DIRECT))
            .is_ok();
        Ok(DirectWriter {
            file: Arc::new(file),
            block: Block::new(),
            len: 0,
            offset: 0,
            direct,
            behind: None,
            #[cfg(test)]
            gate: Arc::default(),
        })
    }

    /// [`create`], with writes behind waiting while `gate` is held for writing.
    #[cfg(test)]
    pub(super) fn create_gated(
        path: &Path,
        gate: Arc<std::sync::RwLock<()>>,
    ) -> io::Result<DirectWriter> {
        create(path).map(|w| DirectWriter { gate, ..w })
    }

    /// A buffer holding an aligned window of [`BLOCK`] bytes somewhere in its first [`ALIGN`]
    /// bytes (a `Vec` never moves while it lives).
    struct Block(Vec<u8>);

    impl Block {
        fn new() -> Self {
            Self(vec![0; BLOCK + ALIGN])
        }

        fn window(&self, from: usize, to: usize) -> &[u8] {
            let start = self.0.as_ptr().align_offset(ALIGN);
            &self.0[start + from..start + to]
        }

        fn window_mut(&mut self, from: usize, to: usize) -> &mut [u8] {
            let start = self.0.as_ptr().align_offset(ALIGN);
            &mut self.0[start + from..start + to]
        }
    }

    /// One file being written: whole aligned blocks with `O_DIRECT` while `direct`, plain
    /// writes once it is not (it never becomes direct again). Every write names its offset
    /// (`offset` is where the next byte goes), so blocks may land in any order.
    ///
    /// Full blocks are written behind, by the file's own threads, while the next one fills: the
    /// indexing thread that fills them would otherwise wait for the device at every block, and
    /// the one indexing thread sets a sync's pace. [`DEPTH`] blocks are in flight at most, so a
    /// file holds `DEPTH + 1` buffers; every write of this side (a partial block, a cached
    /// write, the sync) first waits for all of them.
    pub(super) struct DirectWriter {
        file: Arc<File>,
        /// The block being filled.
        block: Block,
        /// Bytes held in it.
        len: usize,
        /// Where the block being filled starts in the file.
        offset: u64,
        direct: bool,
        /// Started at the first full block.
        behind: Option<Behind>,
        /// Tests hold it to keep blocks in flight.
        #[cfg(test)]
        gate: Arc<std::sync::RwLock<()>>,
    }

    /// The threads writing full blocks, one per block in flight.
    struct Behind {
        blocks: Option<SyncSender<(Block, u64)>>,
        /// Behind a lock only because tantivy needs its writers `Sync`; never contended.
        done: Mutex<Receiver<(Block, io::Result<bool>)>>,
        /// Buffers neither being filled nor in flight.
        spare: Vec<Block>,
        /// Blocks sent and not reported back yet.
        in_flight: usize,
        threads: Vec<JoinHandle<()>>,
    }

    impl Behind {
        fn start(file: Arc<File>, #[cfg(test)] gate: Arc<std::sync::RwLock<()>>) -> Option<Self> {
            let (blocks, todo) = sync_channel::<(Block, u64)>(DEPTH);
            let todo = Arc::new(Mutex::new(todo));
            let (finished, done) = channel();
            let mut threads = Vec::with_capacity(DEPTH);
            for _ in 0..DEPTH {
                let (file, todo, finished) = (file.clone(), todo.clone(), finished.clone());
                #[cfg(test)]
                let gate = gate.clone();
                let spawned = std::thread::Builder::new()
                    .name("tributary-store".into())
                    .spawn(move || {
                        let mut direct = true;
                        loop {
                            // The lock is held only while waiting for the next block.
                            let next = todo.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok((block, at)) = next else { return };
                            #[cfg(test)]
                            let _open = gate.read().unwrap_or_else(|p| p.into_inner());
                            let result = put(&file, block.window(0, BLOCK), at, &mut direct);
                            if finished.send((block, result.map(|()| direct))).is_err() {
                                return;
                            }
                        }
                    });
                // Fewer threads than asked only means fewer blocks written at once.
                if let Ok(thread) = spawned {
                    threads.push(thread);
                }
            }
            (!threads.is_empty()).then(|| Self {
                blocks: Some(blocks),
                done: Mutex::new(done),
                spare: Vec::with_capacity(DEPTH),
                in_flight: 0,
                threads,
            })
        }

        /// Waits for one block in flight to be written; its buffer becomes a spare. `false` once
        /// a thread turned the file to cached writes.
        fn settle_one(&mut self) -> io::Result<bool> {
            let (block, result) = self
                .done
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .recv()
                .map_err(|_| stopped())?;
            self.in_flight -= 1;
            self.spare.push(block);
            result
        }

        /// Waits for every block in flight; the first error, once all are back.
        fn settle(&mut self) -> io::Result<bool> {
            let mut outcome = Ok(true);
            while self.in_flight > 0 {
                match (self.settle_one(), &outcome) {
                    (Ok(direct), Ok(all)) => outcome = Ok(direct && *all),
                    (Err(e), Ok(_)) => outcome = Err(e),
                    (_, Err(_)) => {}
                }
            }
            outcome
        }

        /// Sends a full block, to be written at `at`.
        fn send(&mut self, full: Block, at: u64) -> io::Result<()> {
            let blocks = self.blocks.as_ref().ok_or_else(stopped)?;
            blocks.send((full, at)).map_err(|_| stopped())?;
            self.in_flight += 1;
            Ok(())
        }
    }

    fn stopped() -> io::Error {
        io::Error::other("the store's writing thread stopped")
    }

    impl Drop for Behind {
        fn drop(&mut self) {
            // no more blocks: the threads write what they hold and end
            self.blocks.take();
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        }
    }

    /// Writes `bytes` in full at `at`. A direct write the kernel refuses (an unsupported
    /// filesystem, or a short write that left the offset unaligned) turns the file to cached
    /// writes and goes on from where it stopped.
    fn put(file: &File, mut bytes: &[u8], mut at: u64, direct: &mut bool) -> io::Result<()> {
        while !bytes.is_empty() {
            match file.write_at(bytes, at) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    bytes = &bytes[n..];
                    at += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if *direct
                        && rustix::io::Errno::from_io_error(&e)
                            == Some(rustix::io::Errno::INVAL) =>
                {
                    cached(file, direct)?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Turns `O_DIRECT` off for the rest of the file.
    fn cached(file: &File, direct: &mut bool) -> io::Result<()> {
        if *direct {
            let flags = rustix::fs::fcntl_getfl(file)?;
            rustix::fs::fcntl_setfl(file, flags - OFlags::DIRECT)?;
            *direct = false;
        }
        Ok(())
    }

    impl DirectWriter {
        /// Waits for the blocks in flight, if any (before any write of this side).
        fn settle(&mut self) -> io::Result<()> {
            if let Some(behind) = &mut self.behind {
                self.direct &= behind.settle()?;
            }
            Ok(())
        }

        /// Sends the full block to be written behind, and goes on in another buffer (once
        /// [`DEPTH`] blocks are in flight, the first to be written). Without a thread (none
        /// could be started) the block is written here.
        fn hand_over(&mut self) -> io::Result<()> {
            if self.behind.is_none() {
                self.behind = Behind::start(
                    self.file.clone(),
                    #[cfg(test)]
                    self.gate.clone(),
                );
            }
            let Some(behind) = &mut self.behind else {
                return self.drain();
            };
            if behind.in_flight == DEPTH {
                self.direct &= behind.settle_one()?;
            }
            let next = behind.spare.pop().unwrap_or_else(Block::new);
            let full = std::mem::replace(&mut self.block, next);
            behind.send(full, self.offset)?;
            self.offset += BLOCK as u64;
            self.len = 0;
            Ok(())
        }

        /// Writes out the block being filled, here: its aligned part direct, the rest through
        /// the cache.
        fn drain(&mut self) -> io::Result<()> {
            self.settle()?;
            let aligned = self.len / ALIGN * ALIGN;
            put(
                &self.file,
                self.block.window(0, aligned),
                self.offset,
                &mut self.direct,
            )?;
            if aligned < self.len {
                cached(&self.file, &mut self.direct)?;
                put(
                    &self.file,
                    self.block.window(aligned, self.len),
                    self.offset + aligned as u64,
                    &mut self.direct,
                )?;
            }
            self.offset += self.len as u64;
            self.len = 0;
            Ok(())
        }
    }

    impl Write for DirectWriter {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if !self.direct {
                self.settle()?;
                let n = self.file.write_at(data, self.offset)?;
                self.offset += n as u64;
                return Ok(n);
            }
            let n = data.len().min(BLOCK - self.len);
            self.block
                .window_mut(self.len, self.len + n)
                .copy_from_slice(&data[..n]);
            self.len += n;
            if self.len == BLOCK {
                self.hand_over()?;
            }
            Ok(n)
        }

        /// Makes everything written so far readable: a partial block goes out through the
        /// cache (and so does the rest of the file).
        fn flush(&mut self) -> io::Result<()> {
            self.drain()
        }
    }

    impl TerminatingWrite for DirectWriter {
        fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
            self.drain()?;
            self.file.sync_data()
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::io::Write;

    use tantivy::directory::TerminatingWrite;

    use super::*;

    /// `(pages of path in the page cache, pages of path)`, by `mincore` over a mapping.
    #[allow(unsafe_code)]
    pub(in crate::sink) fn cached_pages(path: &Path) -> (usize, usize) {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        if len == 0 {
            return (0, 0);
        }
        let page = 4096;
        let pages = len.div_ceil(page);
        let mut resident = vec![0u8; pages];
        // SAFETY: a read-only shared mapping of a file this test owns (shared, so `mincore` sees
        // the page cache), only passed to `mincore`, never read through, and unmapped before
        // returning.
        unsafe {
            let at = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(at, libc::MAP_FAILED);
            assert_eq!(libc::mincore(at, len, resident.as_mut_ptr()), 0);
            libc::munmap(at, len);
        }
        (resident.iter().filter(|&&b| b & 1 == 1).count(), pages)
    }

    /// `n` bytes that differ with position and seed (a misplaced piece shows).
    pub(in crate::sink) fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_store_goes_to_disk_without_filling_the_page_cache_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let directory = IndexDirectory::open(dir.path()).unwrap();
        let data = bytes(4 * BLOCK + 100, 1);
        let mut w = directory.open_write(Path::new("seg.store")).unwrap();
        for piece in data.chunks(12_345) {
            w.write_all(piece).unwrap();
        }
        w.terminate().unwrap();
        let path = dir.path().join("seg.store");
        // Only the last partial page went through the cache.
        let (cached, pages) = cached_pages(&path);
        assert_eq!(pages, (4 * BLOCK + 100).div_ceil(4096));
        assert!(
            cached <= 1,
            "{cached} of {pages} pages of the store are cached"
        );
        assert_eq!(std::fs::read(&path).unwrap(), data);
        // Read as tantivy reads it, through the directory's mapping.
        let slice = directory.open_read(Path::new("seg.store")).unwrap();
        assert_eq!(slice.read_bytes().unwrap().as_slice(), &data[..]);
    }

    /// The filler hands over two full blocks and fills a third while neither of them
    /// has reached the device; the file still reads back exactly.
    #[test]
    fn blocks_are_written_behind_several_at_a_time() {
        use std::sync::{Arc, RwLock, mpsc};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.store");
        let data = bytes(2 * BLOCK + 4096, 3);
        let gate = Arc::new(RwLock::new(()));
        let closed = gate.write().unwrap();
        let w = super::direct::create_gated(&path, gate.clone()).unwrap();
        let (filled, returned) = mpsc::channel();
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || {
                let mut w = w;
                w.write_all(&data).unwrap();
                filled.send(()).unwrap();
                w
            })
        };
        let outcome = returned.recv_timeout(Duration::from_secs(10));
        drop(closed);
        let w = writer.join().unwrap();
        assert!(
            outcome.is_ok(),
            "the filler waited for the device with one block in flight"
        );
        w.terminate().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn other_files_are_written_as_mmap_directory_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let directory = IndexDirectory::open(dir.path()).unwrap();
        let data = bytes(2 * BLOCK, 2);
        let mut w = directory.open_write(Path::new("seg.term")).unwrap();
        w.write_all(&data).unwrap();
        w.terminate().unwrap();
        let path = dir.path().join("seg.term");
        let (cached, pages) = cached_pages(&path);
        assert_eq!(
            cached, pages,
            "a term dictionary stays cached for the queries that read it"
        );
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Writes of any size with flushes anywhere (each flush turns the rest of the file to
        /// cached writes, some only after blocks went out direct): the file holds exactly what
        /// was written, at every flush and at the end.
        #[test]
        fn any_mix_of_writes_and_flushes_reads_back_exactly(
            len in 0..3 * BLOCK,
            seed in proptest::prelude::any::<u64>(),
            pieces in proptest::collection::vec((1usize..300_000, 0u8..8), 1..40),
            quiet_blocks in 0..4usize,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let directory = IndexDirectory::open(dir.path()).unwrap();
            let data = bytes(len, seed);
            let path = dir.path().join("f.store");
            let mut w = directory.open_write(Path::new("f.store")).unwrap();
            let mut at = 0;
            for (n, flush) in pieces.iter().cycle() {
                if at == data.len() {
                    break;
                }
                let n = (*n).min(data.len() - at);
                w.write_all(&data[at..at + n]).unwrap();
                at += n;
                if at >= quiet_blocks * BLOCK && *flush == 0 {
                    w.flush().unwrap();
                    proptest::prop_assert_eq!(std::fs::read(&path).unwrap(), &data[..at]);
                }
            }
            w.terminate().unwrap();
            proptest::prop_assert_eq!(std::fs::read(&path).unwrap(), data);
        }
    }

    #[test]
    fn a_store_that_exists_is_not_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let directory = IndexDirectory::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("seg.store"), b"kept").unwrap();
        match directory.open_write(Path::new("seg.store")) {
            Err(OpenWriteError::FileAlreadyExists(p)) => assert_eq!(p, Path::new("seg.store")),
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(
            std::fs::read(dir.path().join("seg.store")).unwrap(),
            b"kept"
        );
    }
}
