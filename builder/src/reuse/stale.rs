//! Values of the earlier build that cannot be rewritten in place (issue 14): an output path or
//! build directory whose length changed (a rename such as `hello-2.9` → `hello-2.10`), and
//! the renderings of an earlier `SOURCE_DATE_EPOCH` (a generated header's date, `__DATE__`).
//! A build product that still holds one is left out of the tree a rerun resumes over, so the
//! build remakes it and no stale value reaches an output. Also the pieces of an earlier output
//! path that a compiler stored apart ([`pieces_or_windows_held`]): a reused file holding one
//! is not used.
//!
//! Pure: patterns in, the paths that hold them out ([`holding`]); contents come through the
//! caller's reader, which the searches of build products call from every core.

use crate::checkpoint::parallel::{all_cores, run_parallel};
use crate::checkpoint::{ContentHash, EntryKind, RelPath, RootState};
use crate::civil_date::civil_from_days;
use memchr::memmem;
use std::ops::ControlFlow;

/// A byte string of the earlier build and what this build has in its place (`None` when it
/// has nothing that corresponds, like a date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleValue {
    pub old: Vec<u8>,
    pub new: Option<Vec<u8>>,
    /// What it is, for the log (`output out`, `SOURCE_DATE_EPOCH 1600000000`).
    pub what: String,
}

/// Reads a content by its hash, passing it to the sink in chunks of any size until the sink
/// stops it; `false` when it cannot be read (what was passed until then does not count). The
/// searches below never hold a whole content in memory, and stop reading once they have
/// decided: a build product may be gigabytes.
pub type ReadChunks<'a> =
    &'a (dyn Fn(&ContentHash, &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> bool + Sync);

/// A content searched as it arrives in chunks: each search sees the last `keep` bytes of
/// what came before (fewer at the start) followed by the new chunk.
struct Overlapped {
    keep: usize,
    buf: Vec<u8>,
}

impl Overlapped {
    /// Appends `chunk` and calls `search(buf, carried)`: the buffer and how many of its
    /// first bytes came before (a match ending there was seen already).
    fn feed(&mut self, chunk: &[u8], search: &mut dyn FnMut(&[u8], usize)) {
        let carried = self.buf.len();
        self.buf.extend_from_slice(chunk);
        search(&self.buf, carried);
        let drop = self.buf.len().saturating_sub(self.keep);
        self.buf.drain(..drop);
    }
}

/// Streams `hash` through `read` into an [`Overlapped`] search, until `search` finds
/// something; `None` when it cannot be read, else what `search` found.
fn search_chunks<T>(
    read: ReadChunks<'_>,
    hash: &ContentHash,
    keep: usize,
    mut search: impl FnMut(&[u8], usize) -> Option<T>,
) -> Option<Option<T>> {
    let mut window = Overlapped {
        keep,
        buf: Vec::new(),
    };
    let mut found: Option<T> = None;
    let readable = read(hash, &mut |chunk| {
        // A reader that reads on after a stop does not undo the find.
        if found.is_none() {
            window.feed(chunk, &mut |buf, carried| found = search(buf, carried));
        }
        match found {
            Some(_) => ControlFlow::Break(()),
            None => ControlFlow::Continue(()),
        }
    });
    readable.then_some(found)
}

/// Why moved paths keep an earlier build's layers from being restored as they are (`None`
/// when nothing moved in length): for the log.
pub fn describe_moved_paths(stale: &[StaleValue]) -> Option<String> {
    let mut what: Vec<&str> = stale
        .iter()
        .filter(|v| !v.what.contains("seed"))
        .map(|v| v.what.as_str())
        .collect();
    what.dedup();
    (!what.is_empty()).then(|| {
        format!(
            "{} renamed since the checkpoint, so paths in its files are not rewritten in place",
            what.join(", ")
        )
    })
}

/// The stale values of an earlier `SOURCE_DATE_EPOCH` (its renderings, nothing in their
/// place).
pub fn epoch_values(epoch: i64) -> Vec<StaleValue> {
    epoch_renderings(epoch)
        .into_iter()
        .map(|old| StaleValue {
            old,
            new: None,
            what: format!("SOURCE_DATE_EPOCH {epoch}"),
        })
        .collect()
}

/// The renderings of `epoch` (seconds, UTC) that tools derive from `SOURCE_DATE_EPOCH`: the
/// decimal value; `date +%F` and ISO 8601 (`2020-09-13`, also `20200913`); gcc's `__DATE__`
/// (`Sep 13 2020`, the day padded with a space) and `__TIME__` (`12:26:40`); `ctime` and
/// `date`'s default (`Sep 13 12:26:40`); RFC 2822 (`13 Sep 2020`); and the long forms
/// documentation tools write (`13 September 2020`, `September 13, 2020`, `September 2020`).
pub fn epoch_renderings(epoch: i64) -> Vec<Vec<u8>> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let long = MONTHS[(m - 1) as usize];
    let short = &long[..3];
    let time = format!("{hh:02}:{mm:02}:{ss:02}");
    [
        epoch.to_string(),
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{y:04}{m:02}{d:02}"),
        format!("{short} {d:>2} {y}"),
        time.clone(),
        format!("{short} {d:>2} {time}"),
        format!("{d} {short} {y}"),
        format!("{d} {long} {y}"),
        format!("{long} {d}, {y}"),
        format!("{long} {y}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// The paths of `tree` that hold one of `values`: files whose content (read with `read`)
/// contains an `old` byte string, and symlinks whose target does. Paths `keep` accepts (this
/// build's own source, whose content is what it is) are not looked at. With the first value
/// found in each.
pub fn holding<'v>(
    tree: &RootState,
    values: &'v [StaleValue],
    keep: impl Fn(&RelPath) -> bool,
    read: ReadChunks<'_>,
) -> Vec<(RelPath, &'v StaleValue)> {
    let finders: Vec<(memmem::Finder<'_>, &StaleValue)> = values
        .iter()
        .filter(|v| !v.old.is_empty())
        .map(|v| (memmem::Finder::new(&v.old), v))
        .collect();
    if finders.is_empty() {
        return Vec::new();
    }
    let longest = finders.iter().map(|(_, v)| v.old.len()).max().unwrap_or(0);
    let found_in = |bytes: &[u8]| {
        finders
            .iter()
            .find(|(f, _)| f.find(bytes).is_some())
            .map(|(_, v)| *v)
    };
    let mut held = Vec::new();
    for (path, entry) in tree {
        if keep(path) {
            continue;
        }
        let value = match &entry.kind {
            EntryKind::File { blake3, .. } => {
                let found = search_chunks(read, blake3, longest, |buf, carried| {
                    // A match that ends in what came before was seen then.
                    finders
                        .iter()
                        .find(|(f, v)| f.find_iter(buf).any(|i| i + v.old.len() > carried))
                        .map(|(_, v)| *v)
                });
                match found {
                    Some(found) => found,
                    // Unreadable: it cannot be shown clean, so it is left out.
                    None => finders.first().map(|(_, v)| *v),
                }
            }
            EntryKind::Symlink { target } => found_in(target),
            _ => None,
        };
        if let Some(v) = value {
            held.push((path.clone(), v));
        }
    }
    held
}

/// Characters of a store path's hash part.
const HASH_LEN: usize = 32;

/// Whether the byte at `i` of `buf` (a hash character) ends a whole store path hash: the 31
/// bytes before it are hash characters (nix's base32) and a `/` precedes them.
fn ends_a_whole_hash(buf: &[u8], i: usize) -> bool {
    let is_hash_char = |b: &u8| crate::reuse::store_path::NIX_BASE32_ALPHABET.contains(b);
    i >= HASH_LEN && buf[i - HASH_LEN] == b'/' && buf[i - HASH_LEN + 1..i].iter().all(is_hash_char)
}

/// The search for pieces alone, as [`pieces_or_windows_held`] makes it: the reference its
/// tests hold it to.
#[cfg(test)]
pub fn pieces_held<'v>(
    tree: &RootState,
    earlier: &std::collections::HashSet<ContentHash>,
    pieces: &'v [StaleValue],
    read: ReadChunks<'_>,
) -> Vec<(RelPath, &'v StaleValue)> {
    if pieces.is_empty() {
        return Vec::new();
    }
    let search = PieceSearch::of(pieces);
    let files = files_of(tree, |_, _, blake3| !earlier.contains(blake3));
    let values = search_each(&files, |blake3| {
        match search_chunks(read, blake3, search.keep, |buf, carried| {
            search.held_in(buf, carried)
        }) {
            Some(found) => found,
            None => pieces.first(),
        }
    });
    files
        .iter()
        .zip(values)
        .filter_map(|((path, ..), value)| Some(((*path).clone(), value?)))
        .collect()
}

/// The search for pieces of [`pieces_or_windows_held`] over one content's chunks.
struct PieceSearch<'v> {
    pieces: &'v [StaleValue],
    /// The bytes each search must see before a new chunk: a match ending in the chunk
    /// together with the bytes before it up to a whole hash (a match starting less than
    /// that into the buffer is at the start of the content).
    keep: usize,
}

impl<'v> PieceSearch<'v> {
    fn of(pieces: &'v [StaleValue]) -> Self {
        let keep = pieces
            .iter()
            .map(|v| v.old.len() + v.new.as_ref().map_or(0, Vec::len).max(HASH_LEN))
            .max()
            .unwrap_or(0);
        PieceSearch { pieces, keep }
    }

    /// The first piece with a match in `buf` that ends after its first `carried` bytes.
    fn held_in(&self, buf: &[u8], carried: usize) -> Option<&'v StaleValue> {
        self.pieces.iter().find(|v| {
            memmem::find_iter(buf, &v.old).any(|i| {
                i + v.old.len() > carried
                    && !ends_a_whole_hash(buf, i)
                    && match &v.new {
                        Some(whole) => i < whole.len() || buf[i - whole.len()..i] != whole[..],
                        None => true,
                    }
            })
        })
    }
}

/// The files of `tree` that still hold a piece of an earlier output path no rewrite
/// reached, each read once for both of these searches:
///
/// - In the files a rewrite changed (content not among `earlier`, the contents of the same
///   layer before rewriting), one of `pieces` ([`crate::reuse::base::path_pieces`]). A match
///   right after a piece's `new` (the end of this build's whole hash) is not one, nor is one
///   that ends any whole hash of a store path (`/` and 31 more hash characters before it):
///   another path whose name starts with the output's, such as the `checkpoint` output's or
///   the earlier checkpoint's in `env-vars` (`…l-pkg-1.0-checkpoint` for `l-pkg-1.0`), which
///   a whole-path rewrite would have moved had it been the output's.
/// - In the other files that look like compiler output, 8 characters of one of `hashes` (no
///   dates), as [`windows_holding`] looks for them.
///
/// Each with the piece or the hash, and for a hash the window (the first one for a file that
/// cannot be read; such a file counts as holding). In the tree's order.
///
/// Compiler output is an ELF object, program or library or an `ar` archive, judged by name
/// or executable mode, then by its magic. A compiler may split a constant path so that no
/// file holds the whole hash (gcc at `-O1` copies it in 8-byte immediates between opcodes),
/// and then no rewrite reaches it; after the rewrite every whole hash is the new one, so 8
/// characters of an old one (`hashes`: the hash parts of earlier outputs that moved) are
/// always such a piece. Every such file is read: the cost grows with the compiler output of
/// the tree, not with the change.
pub fn pieces_or_windows_held<'v>(
    tree: &RootState,
    earlier: &std::collections::HashSet<ContentHash>,
    pieces: &'v [StaleValue],
    hashes: &'v [StaleValue],
    read: ReadChunks<'_>,
) -> Vec<(RelPath, &'v StaleValue, Option<&'v [u8]>)> {
    const WINDOW: usize = Windows::WINDOW;
    let search = PieceSearch::of(pieces);
    let windows = Windows::of(
        hashes
            .iter()
            .map(|v| (v.old.as_slice(), v.new.as_deref(), false)),
    );
    let piece_file = |blake3: &ContentHash| !pieces.is_empty() && !earlier.contains(blake3);
    let window_file = |path: &RelPath, mode: u32| {
        !windows.windows.is_empty() && looks_compiled(path.as_bytes(), mode)
    };
    let files = files_of(tree, |path, mode, blake3| {
        piece_file(blake3) || window_file(path, mode)
    });
    let held = run_parallel(&files, all_cores(), |&(path, blake3, mode)| {
        let pieces_wanted = piece_file(blake3);
        let windows_wanted = window_file(path, mode);
        // What each search found so far: a piece ends the read; a window or a head that
        // is not compiler output ends the windows' search only.
        let mut piece: Option<&StaleValue> = None;
        let mut window: Option<usize> = None;
        let mut windows_done = !windows_wanted;
        let mut head = Head::default();
        let found = search_chunks(read, blake3, search.keep.max(WINDOW - 1), |buf, carried| {
            if pieces_wanted {
                piece = search.held_in(buf, carried);
                if piece.is_some() {
                    return Some(());
                }
            }
            if !windows_done {
                windows_done = !head.feed(buf, carried);
                if !windows_done {
                    window = windows.finder.find(buf);
                    windows_done = window.is_some();
                }
            }
            (windows_done && !pieces_wanted).then_some(())
        });
        let in_window = |i: usize| {
            let (window, owner) = windows.found(i);
            (&hashes[owner], Some(window))
        };
        let value = match found {
            // Unreadable: it cannot be shown clean.
            None if pieces_wanted => pieces.first().map(|p| (p, None)),
            None => Some(in_window(0)),
            Some(_) => match piece {
                Some(p) => Some((p, None)),
                None => window.filter(|_| head.is_compiled()).map(in_window),
            },
        };
        Ok(value)
    })
    .unwrap_or_else(|e| panic!("a search of the build products failed: {e}"));
    files
        .iter()
        .zip(held)
        .filter_map(|((path, ..), value)| {
            let (value, window) = value?;
            Some(((*path).clone(), value, window))
        })
        .collect()
}

/// The regular files of `tree` (path, content and mode) that `wanted` accepts (given path,
/// mode and content), in the tree's order.
fn files_of(
    tree: &RootState,
    wanted: impl Fn(&RelPath, u32, &ContentHash) -> bool,
) -> Vec<(&RelPath, &ContentHash, u32)> {
    tree.iter()
        .filter_map(|(path, entry)| match &entry.kind {
            EntryKind::File { blake3, .. } if wanted(path, entry.mode, blake3) => {
                Some((path, blake3, entry.mode))
            }
            _ => None,
        })
        .collect()
}

/// `search` over the content of each of `files`, on every core (a search mostly waits for
/// its reads: the 5,000 objects of a 400 MB build directory took 0.3 s on one); the results
/// in `files`' order.
fn search_each<R: Send>(
    files: &[(&RelPath, &ContentHash, u32)],
    search: impl Fn(&ContentHash) -> R + Sync,
) -> Vec<R> {
    run_parallel(files, all_cores(), |(_, blake3, _)| Ok(search(blake3)))
        .unwrap_or_else(|e| panic!("a search of the build products failed: {e}"))
}

/// Every file of `tree` that looks like compiler output (as [`pieces_or_windows_held`] judges it)
/// and holds 8 consecutive bytes of the `old` of one of `hashes` (the hash parts of renamed
/// outputs) that its `new` does not hold, or of one of `dates` (the renderings of an earlier
/// `SOURCE_DATE_EPOCH`), with the value: a piece that no search for the whole value finds. A
/// compiler that copies a constant string into a buffer may keep it in pieces (gcc at `-O1`
/// stores `strcpy (buf, PREFIX)` or `strcpy (buf, __DATE__)` in 8-byte immediates, so
/// `.text` holds `Sep 13 2` and `020`, never `Sep 13 2020`). Not looked for: a window of one
/// repeated byte (`00000000` of `1600000000`), and a window of a date without a digit (a
/// month's name, `November`, which any program with a table of month names holds). Paths
/// `keep` accepts are not read.
pub fn windows_holding<'v>(
    tree: &RootState,
    hashes: &'v [StaleValue],
    dates: &'v [StaleValue],
    keep: impl Fn(&RelPath) -> bool,
    read: ReadChunks<'_>,
) -> Vec<(RelPath, &'v StaleValue)> {
    let values: Vec<&StaleValue> = hashes.iter().chain(dates).collect();
    let windows = Windows::of(
        hashes
            .iter()
            .map(|v| (v.old.as_slice(), v.new.as_deref(), false))
            .chain(dates.iter().map(|v| (v.old.as_slice(), None, true))),
    );
    let mut held = Vec::new();
    windows.scan(tree, keep, read, &mut |path, i| {
        held.push((path.clone(), values[windows.found(i).1]));
        true
    });
    held
}

/// The 8-byte windows of some values (hash parts, dates), each with the index of the value
/// it is a piece of.
struct Windows<'a> {
    windows: Vec<&'a [u8]>,
    owners: Vec<usize>,
    finder: WindowFinder,
}

impl<'a> Windows<'a> {
    const WINDOW: usize = 8;

    /// The windows of each `(old, new, date)`, but those `new` holds too (the seed
    /// rewritten into the start of an old hash is this build's); of a date, also those of
    /// one repeated byte and those without an ASCII digit, which other text holds as well.
    fn of(values: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>, bool)>) -> Self {
        let mut windows: Vec<&[u8]> = Vec::new();
        let mut owners = Vec::new();
        for (owner, (old, new, date)) in values.enumerate() {
            for window in old.windows(Self::WINDOW) {
                let common = window.iter().all(|&b| b == window[0])
                    || !window.iter().any(u8::is_ascii_digit);
                if new.is_some_and(|n| memmem::find(n, window).is_some()) || (date && common) {
                    continue;
                }
                windows.push(window);
                owners.push(owner);
            }
        }
        let finder = WindowFinder::new(&windows);
        Windows {
            windows,
            owners,
            finder,
        }
    }

    /// Window `i` and the index of the value it is a piece of.
    fn found(&self, i: usize) -> (&'a [u8], usize) {
        (self.windows[i], self.owners[i])
    }

    /// Calls `found(path, window index)` for each file of `tree` that looks like compiler
    /// output and holds a window, until it returns false; one that cannot be read counts as
    /// holding the first window. Paths `keep` accepts are not read.
    fn scan(
        &self,
        tree: &RootState,
        keep: impl Fn(&RelPath) -> bool,
        read: ReadChunks<'_>,
        found: &mut dyn FnMut(&RelPath, usize) -> bool,
    ) {
        const WINDOW: usize = Windows::WINDOW;
        if self.windows.is_empty() {
            return;
        }
        let files = files_of(tree, |path, mode, _| {
            !keep(path) && looks_compiled(path.as_bytes(), mode)
        });
        // Where a window is in each file (0 for one that cannot be read: it cannot be shown
        // clean), searched on every core; then `found` sees them in the tree's order.
        let hits = search_each(&files, |blake3| {
            // The search stops at a head that is not compiler output.
            let mut head = Head::default();
            let result = search_chunks(read, blake3, WINDOW - 1, |buf, carried| {
                if !head.feed(buf, carried) {
                    return Some(None);
                }
                self.finder.find(buf).map(Some)
            });
            match result {
                None => Some(0),
                Some(Some(Some(i))) if head.is_compiled() => Some(i),
                Some(_) => None,
            }
        });
        for ((path, ..), hit) in files.iter().zip(hits) {
            if let Some(i) = hit {
                if !found(path, i) {
                    return;
                }
            }
        }
    }
}

/// Finds any of a set of 8-byte windows in a content: a window can only sit in a run of 8
/// or more bytes that occur in some window (for hash parts: the 32 characters of Nix's
/// base 32), which are short and rare in compiler output, so the scan skips ahead 8 bytes
/// at a time past other bytes and looks each full run position up as one 64-bit word.
/// On ELF programs and libraries it ran 4 to 10 times as fast as the `aho-corasick` search
/// it replaces (docs/benchmarks.md).
struct WindowFinder {
    /// Bytes that occur in some window.
    member: [bool; 256],
    /// Each window as a little-endian word, with its index in the caller's list; sorted.
    words: Vec<(u64, usize)>,
}

impl WindowFinder {
    fn new(windows: &[&[u8]]) -> WindowFinder {
        let mut member = [false; 256];
        let mut words = Vec::with_capacity(windows.len());
        for (i, w) in windows.iter().enumerate() {
            let Ok(bytes) = <[u8; 8]>::try_from(*w) else {
                continue;
            };
            for &b in &bytes {
                member[b as usize] = true;
            }
            words.push((u64::from_le_bytes(bytes), i));
        }
        words.sort_unstable();
        words.dedup_by_key(|(word, _)| *word);
        WindowFinder { member, words }
    }

    /// The index of a window `content` holds (the first found, scanning from the start).
    /// A window can only end where the 8 bytes up to there are all members, so the scan
    /// looks at the last byte of each candidate first and jumps past a non-member.
    fn find(&self, content: &[u8]) -> Option<usize> {
        let member = |i: usize| self.member[content[i] as usize];
        let mut end = 7;
        while end < content.len() {
            if !member(end) {
                end += 8;
                continue;
            }
            match (1..8).find(|&k| !member(end - k)) {
                // content[end - k] cannot be in a window: the next one ends 8 after it.
                Some(k) => end = end - k + 8,
                None => {
                    let word = u64::from_le_bytes(content[end - 7..=end].try_into().ok()?);
                    if let Ok(k) = self.words.binary_search_by_key(&word, |&(w, _)| w) {
                        return Some(self.words[k].1);
                    }
                    end += 1;
                }
            }
        }
        None
    }
}

/// Whether a file may be compiler output, by its name (`.o`, `.obj`, `.os`, `.a`, `.so`,
/// `.so.N`) or its executable mode.
fn looks_compiled(path: &[u8], mode: u32) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    mode & 0o111 != 0
        || [&b".o"[..], b".obj", b".os", b".a", b".so"]
            .iter()
            .any(|s| name.ends_with(s))
        || memmem::find(name, b".so.").is_some()
}

/// The first 8 bytes of a content, gathered as its chunks arrive: they tell compiler output
/// (ELF, `ar`) from anything else.
#[derive(Default)]
struct Head(Vec<u8>);

impl Head {
    const LEN: usize = Windows::WINDOW;

    /// Takes what `buf` (whose first `carried` bytes came before) adds to the head; false
    /// once the head is whole and not compiler output.
    fn feed(&mut self, buf: &[u8], carried: usize) -> bool {
        if self.0.len() < Self::LEN {
            let more = (Self::LEN - self.0.len()).min(buf.len() - carried);
            self.0.extend_from_slice(&buf[carried..carried + more]);
            if self.0.len() == Self::LEN && !self.is_compiled() {
                return false;
            }
        }
        true
    }

    fn is_compiled(&self) -> bool {
        crate::reuse::debug_info::is_object_file(&self.0)
    }
}

/// `content` with every `old` of `values` replaced by its `new` (lengths may differ); `None`
/// when a value held has no `new`.
pub fn substituted(content: &[u8], values: &[StaleValue]) -> Option<Vec<u8>> {
    let mut out = content.to_vec();
    for v in values.iter().filter(|v| !v.old.is_empty()) {
        if memmem::find(&out, &v.old).is_none() {
            continue;
        }
        let new = v.new.as_ref()?;
        let mut next = Vec::with_capacity(out.len());
        let mut rest = out.as_slice();
        while let Some(i) = memmem::find(rest, &v.old) {
            next.extend_from_slice(&rest[..i]);
            next.extend_from_slice(new);
            rest = &rest[i + v.old.len()..];
        }
        next.extend_from_slice(rest);
        out = next;
    }
    Some(out)
}

/// A [`ReadChunks`] over whole contents, passing each in chunks of `size` bytes (tests
/// search across every chunk boundary with it).
#[cfg(test)]
#[allow(clippy::type_complexity)]
pub(crate) fn in_chunks(
    size: usize,
    get: impl Fn(&ContentHash) -> Option<Vec<u8>>,
) -> impl Fn(&ContentHash, &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> bool {
    move |h: &ContentHash, sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>| match get(h) {
        Some(content) => {
            let _ = content.chunks(size.max(1)).try_for_each(&mut *sink);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testutil::tree_of;
    use std::collections::BTreeMap;

    /// A tree of files (path, content, mode) and their contents by hash.
    fn files_of(files: &[(&str, &[u8], u32)]) -> (RootState, BTreeMap<ContentHash, Vec<u8>>) {
        let mut tree = tree_of(&files.iter().map(|(p, _, _)| (*p, "")).collect::<Vec<_>>());
        let mut contents = BTreeMap::new();
        for (p, c, mode) in files {
            let h = ContentHash::of(c);
            contents.insert(h, c.to_vec());
            let e = tree
                .get_mut(&RelPath::new(p.as_bytes().to_vec()).unwrap())
                .unwrap();
            e.mode = *mode;
            if let EntryKind::File { blake3, size, .. } = &mut e.kind {
                *blake3 = h;
                *size = c.len() as u64;
            }
        }
        (tree, contents)
    }

    #[test]
    fn eight_characters_of_a_moved_hash_in_compiler_output_are_found() {
        let hash = b"3chry7afr35hrm6a1csd2vy6qvi8lmiw".to_vec();
        // gcc -O1: `movabs` immediates, 8 bytes each, between opcode bytes.
        let program = b"\x7fELF....\x48\xb8re/3chry\x48\xba7afr35hr\x48\xb8m6a1csd2";
        let (tree, contents) = files_of(&[
            ("greet", program, 0o755),
            ("notes.txt", b"7afr35hr in a text file", 0o644),
            ("clean.o", b"\x7fELF nothing here", 0o644),
        ]);
        let hashes = [StaleValue {
            old: hash,
            new: None,
            what: "a piece of output `out`".to_owned(),
        }];
        let earlier = std::collections::HashSet::new();
        let held = |tree: &RootState, read: ReadChunks<'_>| -> Vec<(String, String, Vec<u8>)> {
            pieces_or_windows_held(tree, &earlier, &[], &hashes, read)
                .into_iter()
                .map(|(p, v, w)| (p.to_string(), v.what.clone(), w.expect("a window").to_vec()))
                .collect()
        };
        for size in [1, 3, 7, 8, 1 << 20] {
            let read = in_chunks(size, |h| contents.get(h).cloned());
            let found = held(&tree, &read);
            assert_eq!(found.len(), 1, "chunks of {size}");
            let (path, what, window) = &found[0];
            assert_eq!(path, "greet");
            assert_eq!(what, "a piece of output `out`");
            assert!(window.len() == 8 && memmem::find(program, window).is_some());
            let mut without = tree.clone();
            without.remove(&RelPath::new(b"greet".to_vec()).unwrap());
            assert!(held(&without, &read).is_empty(), "text files are not read");
        }
        // A content that cannot be read cannot be shown clean.
        let unreadable = |_: &ContentHash, _: &mut dyn FnMut(&[u8]) -> ControlFlow<()>| false;
        assert_eq!(held(&tree, &unreadable).len(), 2, "greet and clean.o");
    }

    /// A renamed output's hash: every compiler output holding 8 of its characters is named
    /// (not only the first), but not for characters this build's hash holds too (the seed
    /// rewritten into the start of an earlier hash), and not in files `keep` accepts.
    #[test]
    fn every_compiler_output_holding_a_piece_of_a_renamed_hash_is_named() {
        let old = b"3chry7afr35hrm6a1csd2vy6qvi8lmiw".to_vec();
        // The new hash starts with the earlier one's first ten characters, as the rewrite of
        // the seed leaves an earlier hash: those are not a piece.
        let new = b"3chry7afr3zzzzzzzzzzzzzzzzzzzzzz".to_vec();
        let (tree, contents) = files_of(&[
            ("greet", b"\x7fELF\x48\xb8re/3chry\x48\xba7afr35hr", 0o755),
            ("util.o", b"\x7fELF\x48\xb8m6a1csd2", 0o644),
            ("seeded.o", b"\x7fELF\x48\xb83chry7afr3", 0o644),
            ("src/shipped.o", b"\x7fELFm6a1csd2", 0o644),
            ("notes.txt", b"7afr35hr", 0o644),
        ]);
        let hashes = [StaleValue {
            old,
            new: Some(new),
            what: "output `out`".to_owned(),
        }];
        let keep = |p: &RelPath| p.as_bytes().starts_with(b"src/");
        for size in [1, 5, 8, 1 << 20] {
            let read = in_chunks(size, |h| contents.get(h).cloned());
            let held: Vec<String> = windows_holding(&tree, &hashes, &[], keep, &read)
                .into_iter()
                .map(|(p, v)| {
                    assert_eq!(v.what, "output `out`");
                    p.to_string()
                })
                .collect();
            assert_eq!(held, ["greet", "util.o"], "chunks of {size}");
        }
    }

    /// The earlier date in pieces: `strcpy (buf, __DATE__)` at -O1 leaves `Sep 13 2` in an
    /// immediate; eight zeros of the decimal value, and the month's name alone, are no piece
    /// of it (but eight equal characters of a hash are).
    #[test]
    fn compiler_output_holding_a_piece_of_the_earlier_date_is_named() {
        let (tree, contents) = files_of(&[
            ("util.o", b"\x7fELF\x48\xb8Sep 13 2\xc7\x40\x08020", 0o644),
            ("zeros.o", b"\x7fELF 00000000 0000000000", 0o644),
            ("clean.o", b"\x7fELF Sep 14 2020", 0o644),
            ("months.o", b"\x7fELF August\0September\0October", 0o644),
        ]);
        let values = epoch_values(1_600_000_000);
        let read = in_chunks(3, |h| contents.get(h).cloned());
        let held: Vec<(String, &str)> = windows_holding(&tree, &[], &values, |_| false, &read)
            .into_iter()
            .map(|(p, v)| (p.to_string(), v.what.as_str()))
            .collect();
        assert_eq!(
            held,
            [("util.o".to_owned(), "SOURCE_DATE_EPOCH 1600000000")]
        );
        // Those exceptions are for dates: eight equal characters of a hash are a piece of it.
        let hashes = [StaleValue {
            old: b"00000000zzzzzzzzzzzzzzzzzzzzzzzz".to_vec(),
            new: Some(b"11111111zzzzzzzzzzzzzzzzzzzzzzzz".to_vec()),
            what: "output `out`".to_owned(),
        }];
        let held: Vec<String> = windows_holding(&tree, &hashes, &[], |_| false, &read)
            .into_iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(held, ["zeros.o"]);
    }

    /// [`pieces_or_windows_held`] reports what [`pieces_held`] and then [`windows_holding`]
    /// over the other files report (each file read twice), reading each file once: files with a piece, a window,
    /// both or neither, compiler output or not by name, mode and head, rewritten or not,
    /// unreadable, across every chunk boundary; and with either list of values empty.
    #[test]
    fn one_read_for_pieces_and_windows_finds_what_the_two_searches_find() {
        let piece = StaleValue {
            old: b"w-cpio-2.13".to_vec(),
            new: Some(b"ywxiaxyl3nidpgrg1s55zgiw0fp4j8j".to_vec()),
            what: "a piece of output `out`".into(),
        };
        let hash = StaleValue {
            old: b"3chry7afr35hrm6a1csd2vy6qvi8lmiw".to_vec(),
            new: Some(b"3chry7afr3zzzzzzzzzzzzzzzzzzzzzz".to_vec()),
            what: "output `out`".into(),
        };
        let heads: [&[u8]; 3] = [b"\x7fELF\x02\x01\x01\0", b"!<arch>\n", b"text fil"];
        let bodies: [&[u8]; 6] = [
            b"nothing to see",
            b"..qqw-cpio-2.13/lib..",
            b"\x48\xb8re/3chry\x48\xba7afr35hr",
            b"w-cpio-2.13 and m6a1csd2 both",
            b"/nix/store/ywxiaxyl3nidpgrg1s55zgiw0fp4j8jw-cpio-2.13/lib",
            b"seeded 3chry7afr3 only",
        ];
        let names = [
            "bin/greet",
            "lib/a.o",
            "lib/liba.a",
            "notes.txt",
            "lib/b.so.1",
        ];
        let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            for (j, head) in heads.iter().enumerate() {
                for (k, name) in names.iter().enumerate() {
                    let mode = if (i + j + k) % 2 == 0 { 0o755 } else { 0o644 };
                    let mut content = head.to_vec();
                    content.extend_from_slice(&b"x".repeat(i * 7 + j * 3 + k * 37));
                    content.extend_from_slice(body);
                    files.push((format!("{name}.{i}.{j}.{k}"), content, mode));
                }
            }
        }
        let spec: Vec<(&str, &[u8], u32)> = files
            .iter()
            .map(|(p, c, m)| (p.as_str(), c.as_slice(), *m))
            .collect();
        let (tree, mut contents) = files_of(&spec);
        // Every third content was not rewritten (its hash is among the earlier contents);
        // every eleventh cannot be read.
        let earlier: std::collections::HashSet<ContentHash> = files
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 3 == 0)
            .map(|(_, (_, c, _))| ContentHash::of(c))
            .collect();
        for (n, (_, c, _)) in files.iter().enumerate() {
            if n % 11 == 5 {
                contents.remove(&ContentHash::of(c));
            }
        }
        let sorted = |held: Vec<(RelPath, &StaleValue)>| {
            let mut held: Vec<(String, String)> = held
                .into_iter()
                .map(|(p, v)| (p.to_string(), v.what.clone()))
                .collect();
            held.sort();
            held
        };
        let (pieces, hashes) = (vec![piece], vec![hash]);
        let none: Vec<StaleValue> = Vec::new();
        for (pieces, hashes) in [(&pieces, &hashes), (&pieces, &none), (&none, &hashes)] {
            for size in [1, 3, 7, 8, 13, 1 << 20] {
                let read = in_chunks(size, |h| contents.get(h).cloned());
                let mut expected = pieces_held(&tree, &earlier, pieces, &read);
                let found: std::collections::HashSet<RelPath> =
                    expected.iter().map(|(p, _)| p.clone()).collect();
                expected.extend(windows_holding(
                    &tree,
                    hashes,
                    &[],
                    |p| found.contains(p),
                    &read,
                ));
                let expected = sorted(expected);
                let merged = pieces_or_windows_held(&tree, &earlier, pieces, hashes, &read);
                for (path, value, window) in &merged {
                    // A window is reported with a hash, and is a piece of it.
                    if let Some(w) = window {
                        assert!(hashes.iter().any(|h| std::ptr::eq(h, *value)), "{path}");
                        assert!(memmem::find(&value.old, w).is_some(), "{path}");
                    } else {
                        assert!(pieces.iter().any(|p| std::ptr::eq(p, *value)), "{path}");
                    }
                }
                let merged = sorted(merged.into_iter().map(|(p, v, _)| (p, v)).collect());
                assert_eq!(merged, expected, "chunks of {size}");
                if size == 8 && !pieces.is_empty() && !hashes.is_empty() {
                    assert!(
                        expected.iter().any(|(_, w)| w == "output `out`"),
                        "a window"
                    );
                    assert!(expected.iter().any(|(_, w)| w.contains("piece")), "a piece");
                    assert!(expected.len() < files.len(), "clean files");
                }
            }
        }
    }

    #[test]
    fn the_window_finder_finds_what_a_naive_search_finds() {
        let hash = b"3chry7afr35hrm6a1csd2vy6qvi8lmiw";
        let other = b"0a9bxlq1jw2kzn5r6g0m3yhs8cdvp4i7";
        let windows: Vec<&[u8]> = hash.windows(8).chain(other.windows(8)).collect();
        let finder = WindowFinder::new(&windows);
        let naive = |c: &[u8]| windows.iter().any(|w| memmem::find(c, w).is_some());
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789abcdfghijklmnpqrsvwxyz_.";
        for round in 0..5000 {
            let len = (next() % 128) as usize;
            let mut c: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if round % 3 == 0 && len >= 8 {
                let w = windows[(next() % windows.len() as u64) as usize];
                let at = (next() % (len as u64 - 7)) as usize;
                c[at..at + 8].copy_from_slice(w);
            }
            let found = finder.find(&c);
            assert_eq!(
                found.is_some(),
                naive(&c),
                "{:?}",
                String::from_utf8_lossy(&c)
            );
            if let Some(i) = found {
                assert!(memmem::find(&c, windows[i]).is_some());
            }
        }
        // A window right at the end, and runs broken by other bytes.
        assert!(finder.find(b"\x00\x00r35hrm6a").is_some());
        assert!(finder.find(b"r35h\x00rm6a\x001csd").is_none());
    }

    fn strings(epoch: i64) -> Vec<String> {
        epoch_renderings(epoch)
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn renderings_of_an_epoch() {
        // 1600000000 = 2020-09-13T12:26:40Z; `date -u -d @1600000000`.
        let r = strings(1_600_000_000);
        for want in [
            "1600000000",
            "2020-09-13",
            "20200913",
            "Sep 13 2020",
            "12:26:40",
            "Sep 13 12:26:40",
            "13 Sep 2020",
            "13 September 2020",
            "September 13, 2020",
            "September 2020",
        ] {
            assert!(r.contains(&want.to_owned()), "{want} not in {r:?}");
        }
        // gcc pads a one-digit day with a space: 1980-01-01 is "Jan  1 1980".
        assert!(strings(315_532_800).contains(&"Jan  1 1980".to_owned()));
        assert!(strings(951_782_400).contains(&"2000-02-29".to_owned()));
    }

    #[test]
    fn products_that_hold_a_value_and_not_the_kept_source() {
        let files = [
            ("src/a.c", "#include \"built.h\""),
            ("src/ChangeLog", "2020-09-13 release"),
            ("built.h", "#define BUILT \"2020-09-13\""),
            ("a.o", "... Sep 13 2020 ..."),
            ("b.o", "nothing"),
        ];
        let tree = tree_of(&files);
        let contents: BTreeMap<ContentHash, Vec<u8>> = files
            .iter()
            .map(|(_, c)| (ContentHash::of(c.as_bytes()), c.as_bytes().to_vec()))
            .collect();
        let values: Vec<StaleValue> = epoch_renderings(1_600_000_000)
            .into_iter()
            .map(|old| StaleValue {
                old,
                new: None,
                what: "SOURCE_DATE_EPOCH".into(),
            })
            .collect();
        for size in [1, 3, 1 << 20] {
            let read = in_chunks(size, |h| contents.get(h).cloned());
            let held = holding(&tree, &values, |p| p.as_bytes().starts_with(b"src/"), &read);
            let paths: Vec<String> = held.iter().map(|(p, _)| p.to_string()).collect();
            assert_eq!(paths, ["a.o", "built.h"], "chunks of {size}");
        }
    }

    #[test]
    fn substitution_of_values_of_another_length() {
        let v = [StaleValue {
            old: b"/nix/store/h-hello-2.9".to_vec(),
            new: Some(b"/nix/store/i-hello-2.10".to_vec()),
            what: "output out".into(),
        }];
        assert_eq!(
            substituted(
                b"prefix=/nix/store/h-hello-2.9 x /nix/store/h-hello-2.9/bin",
                &v
            )
            .unwrap(),
            b"prefix=/nix/store/i-hello-2.10 x /nix/store/i-hello-2.10/bin".to_vec()
        );
        let date = [StaleValue {
            old: b"2020".to_vec(),
            new: None,
            what: "SOURCE_DATE_EPOCH".into(),
        }];
        assert_eq!(substituted(b"no date", &date).unwrap(), b"no date".to_vec());
        assert!(substituted(b"in 2020", &date).is_none());
    }
}
