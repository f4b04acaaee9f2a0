//! Harness of the hostile-checkpoint suite (`tests/hostile.rs`, issue 12): typed edits of a
//! checkpoint copy that keep everything else consistent (the layer file canonical, the
//! index naming its new hash, blob tables and packs matching), hand-made zstd frames
//! (decompression bombs), and running the builder's CLI under a wall-clock bound, an
//! address-space bound and a fresh `HOME`/`TMPDIR`, with the checks every variant shares
//! (exit code, message words, nothing written outside the target, no leftovers).
//!
//! Layering: the frame builder and the message checks are pure; [`CkCopy`] reads and writes
//! the copy; [`run_bounded`] spawns the builder (the only `unsafe`: `setrlimit` between
//! fork and exec).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use checkpoint_builder::checkpoint::manifest::{layer_file_name, Index};
use checkpoint_builder::checkpoint::{Checkpoint, ContentHash, Encoding, Layer, PackedBlob};

use crate::checkpoint::{blake3_hex, masked};
use crate::nix::builder_binary;

/// Address-space limit of every CLI run: a reader that allocates what a hostile checkpoint
/// claims (a 1 GiB attachment, a bomb's output) fails instead of passing.
pub const ADDRESS_SPACE_LIMIT: u64 = 768 << 20;
/// Wall-clock limit of every CLI run; the process group is killed after it.
pub const WALL_CLOCK_LIMIT: Duration = Duration::from_secs(12);
/// What a run may take and still pass (well under the kill limit).
pub const TIME_BOUND: Duration = Duration::from_secs(10);
/// Peak resident memory a run may reach and still pass.
pub const RSS_BOUND_KIB: i64 = 384 << 10;

// ---------------------------------------------------------------------------------------
// Running the CLI with bounds

/// One bounded run of the builder.
#[derive(Debug, Clone)]
pub struct BoundedRun {
    pub command: String,
    /// Exit code; `None` when killed by a signal (or by the wall-clock bound).
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Peak resident set in KiB (`ru_maxrss`).
    pub max_rss_kib: i64,
    /// Killed by the wall-clock bound.
    pub timed_out: bool,
    pub pid: u32,
}

impl BoundedRun {
    /// Command, status, time, memory and both streams, for failure reports.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?} (signal {:?}{}) after {:.2}s, peak RSS {} KiB\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.code,
            self.signal,
            if self.timed_out { ", killed by the time bound" } else { "" },
            self.elapsed.as_secs_f64(),
            self.max_rss_kib,
            truncate(&self.stdout, 3000),
            truncate(&self.stderr, 3000)
        )
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

/// Runs the builder under test with `args`, `input` on stdin, `HOME` and `TMPDIR` set to
/// `home` and `tmp`, in its own process group, with [`ADDRESS_SPACE_LIMIT`] and
/// [`WALL_CLOCK_LIMIT`].
pub fn run_bounded(args: &[&OsStr], input: &[u8], home: &Path, tmp: &Path) -> BoundedRun {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let command = std::iter::once(builder.as_os_str())
        .chain(args.iter().copied())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new(builder);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", tmp)
        .env("TERM", "dumb")
        .current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let limit = ADDRESS_SPACE_LIMIT as libc::rlim_t;
    // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let mut timed_out = false;
    loop {
        // Wait for the exit without reaping: while the leader is a zombie its pid (and so
        // the group's id) cannot be reused, so signalling the group below only reaches
        // processes this run started.
        // SAFETY: plain syscall on our own child; `info` is a valid pointer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if r < 0 {
            panic!("waitid on {command}: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `info` was filled by waitid (zeroed when nothing happened).
        if unsafe { info.si_pid() } == pid as libc::pid_t {
            break;
        }
        if start.elapsed() > WALL_CLOCK_LIMIT && !timed_out {
            timed_out = true;
            // SAFETY: signals our own child's process group (its leader is alive).
            unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    // The group may still hold children (bash under `shell`): end them, then reap.
    // SAFETY: the leader is an unreaped zombie, so the group id is still ours.
    unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
    let (mut status, mut usage) = (0 as libc::c_int, unsafe {
        std::mem::zeroed::<libc::rusage>()
    });
    // SAFETY: plain syscall on our own child; `status` and `usage` are valid pointers.
    if unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) } != pid as libc::pid_t
    {
        panic!("wait4 on {command}: {}", std::io::Error::last_os_error());
    }
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    drop(child); // already reaped by wait4
    BoundedRun {
        command,
        code,
        signal,
        stdout,
        stderr,
        elapsed,
        max_rss_kib: usage.ru_maxrss,
        timed_out,
        pid,
    }
}

// ---------------------------------------------------------------------------------------
// Expectations

/// Exit codes a command may end with (any one of them).
#[derive(Debug, Clone, Copy)]
pub struct Codes(pub &'static [i32]);

pub const OK: Codes = Codes(&[0]);
pub const UNUSABLE: Codes = Codes(&[65]);
/// Refused, as unusable input or as a bad invocation (a bad restore target).
pub const REFUSED: Codes = Codes(&[2, 65]);
/// Either is right (a command that does not need the damaged part).
pub const OK_OR_UNUSABLE: Codes = Codes(&[0, 65]);

impl Codes {
    pub fn allows(&self, code: Option<i32>) -> bool {
        code.is_some_and(|c| self.0.contains(&c))
    }
}

/// Every group must have at least one of its words in `text` (case-insensitive). Pure.
pub fn missing_words(text: &str, groups: &[&[&str]]) -> Vec<String> {
    let lower = text.to_lowercase();
    groups
        .iter()
        .filter(|g| !g.iter().any(|w| lower.contains(&w.to_lowercase())))
        .map(|g| g.join(" | "))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Zstd frames made by hand

/// A zstd frame whose content is `len` copies of `byte`, made of RLE blocks: 4 bytes per
/// 128 KiB of output, so a few KiB inflate to GiBs. No content size in the header, no
/// checksum. Pure.
pub fn zstd_rle_frame(byte: u8, len: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD];
    f.push(0x00); // frame header descriptor: no content size, not single segment
    f.push(7 << 3); // window descriptor: 2^(10+7) = 128 KiB
    let mut left = len;
    loop {
        let n = left.min(BLOCK);
        left -= n;
        let last = u32::from(left == 0);
        let header = last | (1 << 1) | ((n as u32) << 3);
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(byte);
        if left == 0 {
            return f;
        }
    }
}

/// blake3 of `len` copies of `byte`, streamed.
pub fn repeated_hash(byte: u8, len: u64) -> String {
    let chunk = vec![byte; 1 << 20];
    let mut h = blake3::Hasher::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    h.finalize().to_hex().to_string()
}

// ---------------------------------------------------------------------------------------
// Editing a checkpoint copy

/// A writable copy of a checkpoint, edited through the builder's own manifest types so
/// that only the intended rule is broken.
pub struct CkCopy {
    pub dir: PathBuf,
}

impl CkCopy {
    pub fn new(dir: &Path) -> Self {
        CkCopy {
            dir: dir.to_path_buf(),
        }
    }

    pub fn index(&self) -> Index {
        let path = self.dir.join("index.json");
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Index::from_bytes(&bytes, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn write_index(&self, index: &Index) {
        let path = self.dir.join("index.json");
        std::fs::write(&path, index.to_bytes())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The position of the layer named `name`.
    pub fn layer_index(&self, name: &str) -> u32 {
        self.index()
            .layers
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .unwrap_or_else(|| panic!("{} has no layer {name}", self.dir.display()))
    }

    pub fn layer_path(&self, index: u32) -> PathBuf {
        let name = self.index().layers[index as usize].name.clone();
        self.dir.join(layer_file_name(index, &name))
    }

    pub fn layer(&self, index: u32) -> Layer {
        let path = self.layer_path(index);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Layer::from_bytes(&bytes, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn pack_path(&self, index: u32) -> PathBuf {
        self.dir.join(format!("packs/{index:03}.pack"))
    }

    /// Writes the layer's bytes (`text`, which need not parse) and makes the index name
    /// them: their hash, the blob count and pack size of `layer`.
    pub fn write_layer_text(&self, layer: &Layer, text: &[u8]) {
        let path = self.layer_path(layer.index);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        let mut index = self.index();
        let r = &mut index.layers[layer.index as usize];
        r.blake3 = ContentHash::from_hex(&blake3_hex(text)).expect("a hash");
        r.blobs_added = layer.blobs.len() as u64;
        r.blob_bytes_added = layer.blobs.last().map_or(0, |b| b.offset + b.length);
        self.write_index(&index);
    }

    /// Writes `layer` canonically and makes the index name it.
    pub fn put_layer(&self, layer: &Layer) {
        self.write_layer_text(layer, &layer.to_bytes());
    }

    /// Edits layer `index` through its typed form.
    pub fn edit_layer(&self, index: u32, edit: impl FnOnce(&mut Layer)) {
        let mut layer = self.layer(index);
        edit(&mut layer);
        self.put_layer(&layer);
    }

    /// Appends `stored` (encoded as `encoding`, content hash `hash`) to the pack of layer
    /// `index` and to its blob table; the layer and index are rewritten.
    pub fn append_blob(&self, index: u32, hash: &str, stored: &[u8], encoding: Encoding) {
        let pack = self.pack_path(index);
        let mut bytes = std::fs::read(&pack).unwrap_or_default();
        let offset = bytes.len() as u64;
        bytes.extend_from_slice(&masked(stored));
        std::fs::write(&pack, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", pack.display()));
        self.edit_layer(index, |l| {
            l.blobs.push(PackedBlob {
                blake3: ContentHash::from_hex(hash).expect("a hash"),
                offset,
                length: stored.len() as u64,
                encoding,
            })
        });
    }

    /// Stores `content` raw in layer `index`'s pack; its hash.
    pub fn put_raw(&self, index: u32, content: &[u8]) -> String {
        let hash = blake3_hex(content);
        self.append_blob(index, &hash, content, Encoding::Raw);
        hash
    }

    /// The content of blob `hash`, read (and verified) by the builder's own reader; for
    /// pristine copies only.
    pub fn read_blob(&self, hash: &ContentHash) -> Vec<u8> {
        let ck =
            Checkpoint::open(&self.dir).unwrap_or_else(|e| panic!("{}: {e}", self.dir.display()));
        ck.read_blob(hash)
            .unwrap_or_else(|e| panic!("{}: {e}", self.dir.display()))
    }

    /// The shell state attachment of layer `index`, parsed as JSON.
    pub fn shell_state(&self, index: u32) -> serde_json::Value {
        let layer = self.layer(index);
        let hash = layer.meta.attachments["shell-state"];
        serde_json::from_slice(&self.read_blob(&hash)).expect("the shell state is JSON")
    }

    /// Replaces attachment `name` of layer `index` by `content` (stored raw in that layer).
    pub fn set_attachment(&self, index: u32, name: &str, content: &[u8]) -> String {
        let hash = self.put_raw(index, content);
        self.edit_layer(index, |l| {
            l.meta.attachments.insert(
                name.to_owned(),
                ContentHash::from_hex(&hash).expect("a hash"),
            );
        });
        hash
    }

    /// Edits the shell state of layer `index` as JSON.
    pub fn edit_shell_state(&self, index: u32, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut state = self.shell_state(index);
        edit(&mut state);
        let bytes = serde_json::to_vec(&state).expect("JSON");
        self.set_attachment(index, "shell-state", &bytes);
    }
}

/// Every path below `dir` (itself included) with kind, mode, size and mtime, sorted, except
/// the subtrees in `skip`.
pub fn listing_except(dir: &Path, skip: &[PathBuf]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    fn walk(path: &Path, skip: &[PathBuf], out: &mut Vec<String>) {
        if skip.iter().any(|s| s == path) {
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        out.push(format!(
            "{} {:o} {} {}.{:09}",
            path.display(),
            meta.mode(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                for e in entries.flatten() {
                    walk(&e.path(), skip, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, skip, &mut out);
    out.sort();
    out
}

/// Names in `dir` that look like an unfinished restore (`.NAME.restore…-PID…`,
/// `.checkpoint-restore-…`).
pub fn restore_leftovers(dir: &Path) -> Vec<OsString> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name())
                .filter(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with('.') && n.contains("restor")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_frames_inflate_to_their_length() {
        for len in [1u64, 5, 128 << 10, (128 << 10) + 1, 3 << 20] {
            let frame = zstd_rle_frame(b'z', len);
            let mut out = Vec::new();
            let mut dec = zstd::stream::read::Decoder::new(&frame[..]).expect("a decoder");
            dec.read_to_end(&mut out).expect("a valid frame");
            assert_eq!(out.len() as u64, len);
            assert!(out.iter().all(|&b| b == b'z'));
            assert_eq!(repeated_hash(b'z', len), blake3_hex(&out));
        }
        assert!(zstd_rle_frame(0, 1 << 30).len() < 40 << 10);
    }

    #[test]
    fn words_are_grouped() {
        assert!(missing_words(
            "Layer 004-buildPhase.json: Bad",
            &[&["buildphase"], &["bad", "x"]]
        )
        .is_empty());
        assert_eq!(
            missing_words("abc", &[&["x", "y"]]),
            vec!["x | y".to_owned()]
        );
    }
}
