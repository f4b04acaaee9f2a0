//! Issue 12 through the real CLI: hand-made hostile checkpoints (no Nix needed) against the
//! format's limits (docs/checkpoint-format.md §5, §8, §10).
//!
//! - a zstd bomb (32 MiB of pack that inflates to 1 TiB) for a file claiming 6 bytes, and a
//!   2 GiB valid-hash attachment in 64 KiB of pack: `verify`, `restore` and `diff` exit 65
//!   in seconds under an address-space limit of 1 GiB (`prlimit`), naming the blob's use;
//! - entries beyond a limit (a 300-byte name, a character device as the root): `verify`
//!   refuses what `restore` refuses, both with 65 and the rule's words, nothing written;
//! - restore: a target that is a symlink leaves nothing behind (exit 2); setuid bits only
//!   with `--keep-setid`; skipped sockets reported; a target too deep for the tree (PATH_MAX)
//!   refused before writing (exit 2).
//!
//! `CHECKPOINT_BUILDER` names the binary as in the other suites.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::checkpoint::{
    self as ck, blake3_hex, CliRun, Scratch, BAD_INPUT, CHECKPOINT_UNUSABLE, FORMAT_VERSION,
};
use integration_tests::nix::builder_binary;

/// What a command under test may use: a bounded reader needs far less.
const ADDRESS_SPACE: u64 = 1 << 30;
/// CPU seconds before the kernel stops a command that decompresses without bound.
const CPU_SECONDS: u64 = 60;

/// Runs the builder with `args` under `prlimit --as=1GiB --cpu=60`.
fn bounded_cli(args: &[&OsStr]) -> (CliRun, Duration) {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={ADDRESS_SPACE}"))
        .arg(format!("--cpu={CPU_SECONDS}"))
        .arg("--")
        .arg(builder)
        .args(args);
    let command = format!("{cmd:?}");
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{command}: {e}"));
    let run = CliRun {
        command,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        pid: 0,
    };
    (run, start.elapsed())
}

/// One blob of the hand-made pack: content hash and stored bytes.
struct Blob {
    hash: String,
    stored: Vec<u8>,
    encoding: &'static str,
}

/// Writes a one-layer checkpoint (layer `p`, root `build`) at `dir`: `entries` are the
/// canonical JSON records of the root's changed entries (sorted by path), `attachments`
/// (name → hash) sorted by name.
fn write_checkpoint(dir: &Path, entries: &[String], attachments: &[(&str, &str)], blobs: &[Blob]) {
    std::fs::create_dir_all(dir.join("layers")).unwrap();
    std::fs::create_dir_all(dir.join("packs")).unwrap();
    let mut pack = Vec::new();
    let mut table = Vec::new();
    for b in blobs {
        table.push(format!(
            r#"{{"blake3":"{}","offset":{},"length":{},"encoding":"{}"}}"#,
            b.hash,
            pack.len(),
            b.stored.len(),
            b.encoding
        ));
        pack.extend_from_slice(&ck::masked(&b.stored));
    }
    if !blobs.is_empty() {
        std::fs::write(dir.join("packs/000.pack"), &pack).unwrap();
    }
    let attachments: Vec<String> = attachments
        .iter()
        .map(|(n, h)| format!(r#""{n}":"{h}""#))
        .collect();
    let layer = format!(
        "{{\"format_version\":{FORMAT_VERSION},\"index\":0,\"name\":\"p\",\"attachments\":{{{}}},\"meta\":null,\"roots\":{{\"build\":{{\"changed\":[{}],\"deleted\":[]}}}},\"blobs\":[{}]}}\n",
        attachments.join(","),
        entries.join(","),
        table.join(",")
    );
    std::fs::write(dir.join("layers/000-p.json"), &layer).unwrap();
    let index = format!(
        "{{\"format_version\":{FORMAT_VERSION},\"meta\":null,\"roots\":[\"build\"],\"layers\":[{{\"index\":0,\"name\":\"p\",\"blake3\":\"{}\",\"blobs_added\":{},\"blob_bytes_added\":{}}}]}}\n",
        blake3_hex(layer.as_bytes()),
        blobs.len(),
        pack.len()
    );
    std::fs::write(dir.join("index.json"), index).unwrap();
}

fn dir_record(path: &str) -> String {
    format!(r#"{{"path":"{path}","kind":"dir","mode":"0755","mtime_s":0,"mtime_ns":0}}"#)
}

fn file_record(path: &str, mode: &str, size: u64, hash: &str) -> String {
    format!(
        r#"{{"path":"{path}","kind":"file","mode":"{mode}","mtime_s":0,"mtime_ns":0,"size":{size},"blake3":"{hash}"}}"#
    )
}

/// One zstd frame of `blocks` RLE blocks of 128 KiB of zeros (4 bytes each, no content
/// size in the header).
fn zstd_rle_bomb(blocks: usize) -> Vec<u8> {
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = (128u32 << 10) << 3 | 1 << 1 | last;
        v.extend_from_slice(&header.to_le_bytes()[..3]);
        v.push(0);
    }
    v
}

/// blake3 of `n` zero bytes.
fn zeros_hash(n: u64) -> String {
    let chunk = vec![0u8; 1 << 20];
    let mut h = blake3::Hasher::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..k]);
        left -= k as u64;
    }
    h.finalize().to_hex().to_string()
}

fn arg(p: &Path) -> &OsStr {
    p.as_os_str()
}

/// Exit 65 within `limit`, stdout empty, stderr holding every needle.
fn assert_unusable(run: &CliRun, took: Duration, limit: Duration, needles: &[&str]) {
    assert_eq!(run.code, Some(CHECKPOINT_UNUSABLE), "{}", run.describe());
    assert!(took < limit, "took {took:?}: {}", run.describe());
    for n in needles {
        assert!(run.stderr.contains(n), "no {n:?} in: {}", run.describe());
    }
    assert!(run.stdout.trim().is_empty(), "{}", run.describe());
}

/// Nothing but `keep` in `dir`.
fn assert_only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "left behind in {}", dir.display());
}

fn restore_args<'a>(ck_dir: &'a Path, target: &'a Path) -> Vec<&'a OsStr> {
    vec![
        OsStr::new("restore"),
        arg(ck_dir),
        OsStr::new("--after"),
        OsStr::new("p"),
        arg(target),
    ]
}

/// Issue 12, defect 3: the tester's bomb, 32 MiB of pack inflating to 1 TiB of zeros, for
/// an entry claiming 6 bytes. Unbounded, `verify` ran until killed.
#[test]
fn zstd_bomb_for_a_six_byte_file() {
    let scratch = Scratch::new("bounds-bomb").unwrap();
    let ck_dir = scratch.path().join("ck");
    let hash = blake3_hex(b"hello\n");
    write_checkpoint(
        &ck_dir,
        &[dir_record(""), file_record("f", "0644", 6, &hash)],
        &[],
        &[Blob {
            hash: hash.clone(),
            stored: zstd_rle_bomb(1 << 23),
            encoding: "zstd",
        }],
    );
    let limit = Duration::from_secs(20);
    let (run, took) = bounded_cli(&[OsStr::new("verify"), arg(&ck_dir)]);
    assert_unusable(
        &run,
        took,
        limit,
        &[
            &hash,
            "longer than the 6 bytes claimed",
            "layer 0, f",
            "000.pack",
        ],
    );
    let target = scratch.path().join("restored");
    let (run, took) = bounded_cli(&restore_args(&ck_dir, &target));
    assert_unusable(
        &run,
        took,
        limit,
        &[&hash, "longer than the 6 bytes claimed"],
    );
    assert_only(scratch.path(), &["ck"]);
}

/// Issue 12, defect 4: a 2 GiB attachment with its true hash, in 64 KiB of pack. It took
/// the builder to the attachment's size before; `diff` aborted. Now every reader stops at
/// the 64 MiB attachment limit.
#[test]
fn a_two_gib_attachment_is_refused_at_the_limit() {
    let scratch = Scratch::new("bounds-attachment").unwrap();
    let ck_dir = scratch.path().join("ck");
    let size = 2u64 << 30;
    let hash = zeros_hash(size);
    write_checkpoint(
        &ck_dir,
        &[dir_record("")],
        &[("shell-state", &hash)],
        &[Blob {
            hash: hash.clone(),
            stored: zstd_rle_bomb((size >> 17) as usize),
            encoding: "zstd",
        }],
    );
    let limit = Duration::from_secs(20);
    let needles = [
        hash.as_str(),
        "longer than the limit of 67108864 bytes",
        "attachment shell-state",
    ];
    let (run, took) = bounded_cli(&[OsStr::new("verify"), arg(&ck_dir)]);
    assert_unusable(&run, took, limit, &needles);
    let (run, took) = bounded_cli(&[OsStr::new("diff"), arg(&ck_dir), arg(&ck_dir)]);
    assert_unusable(
        &run,
        took,
        limit,
        &["is unusable", "longer than the limit of 67108864 bytes"],
    );
    let target = scratch.path().join("restored");
    let (run, took) = bounded_cli(&restore_args(&ck_dir, &target));
    assert_unusable(&run, took, limit, &needles);
    assert_only(scratch.path(), &["ck"]);
}

/// Issue 12, defect 5: what `restore` refuses, `verify` refuses, in the same words.
#[test]
fn verify_refuses_what_restore_refuses() {
    let hash = blake3_hex(b"hello\n");
    let blob = || Blob {
        hash: hash.clone(),
        stored: b"hello\n".to_vec(),
        encoding: "raw",
    };
    let long_name = "N".repeat(300);
    let cases: Vec<(&str, Vec<String>, Vec<Blob>, &str)> = vec![
        (
            "300-byte name",
            vec![dir_record(""), file_record(&long_name, "0644", 6, &hash)],
            vec![blob()],
            "NAME_MAX",
        ),
        (
            "size 2^63",
            vec![dir_record(""), file_record("f", "0644", 1 << 63, &hash)],
            vec![blob()],
            "larger than 1099511627776 bytes",
        ),
        (
            "a character device as the root",
            vec![
                r#"{"path":"","kind":"char-device","mode":"0644","mtime_s":0,"mtime_ns":0,"rdev":259}"#
                    .to_string(),
            ],
            vec![],
            "the root is a char-device, which cannot be restored",
        ),
    ];
    for (what, entries, blobs, needle) in cases {
        let scratch = Scratch::new("bounds-limits").unwrap();
        let ck_dir = scratch.path().join("ck");
        write_checkpoint(&ck_dir, &entries, &[], &blobs);
        let limit = Duration::from_secs(10);
        let (run, took) = bounded_cli(&[OsStr::new("verify"), arg(&ck_dir)]);
        assert_unusable(&run, took, limit, &[needle, "layer 0"]);
        let target = scratch.path().join("restored");
        let (run, took) = bounded_cli(&restore_args(&ck_dir, &target));
        assert_unusable(&run, took, limit, &[needle]);
        assert_only(scratch.path(), &["ck"]);
        eprintln!("{what}: refused");
    }
}

/// A valid checkpoint with a setuid file, a socket and a deep path.
fn valid_checkpoint(dir: &Path, deep: &str) {
    let hash = blake3_hex(b"#!/bin/sh\n");
    let mut entries = vec![dir_record("")];
    let comps: Vec<&str> = deep.split('/').collect();
    for n in 1..comps.len() {
        entries.push(dir_record(&comps[..n].join("/")));
    }
    entries.push(file_record(deep, "0644", 10, &hash));
    entries
        .push(r#"{"path":"s","kind":"socket","mode":"0755","mtime_s":0,"mtime_ns":0}"#.to_string());
    entries.push(file_record("tool", "4755", 10, &hash));
    entries.sort_by_key(|e| {
        let start = e.find("\"path\":\"").unwrap() + 8;
        e[start..].split('"').next().unwrap().to_string()
    });
    write_checkpoint(
        dir,
        &entries,
        &[],
        &[Blob {
            hash,
            stored: b"#!/bin/sh\n".to_vec(),
            encoding: "raw",
        }],
    );
}

fn deep_path() -> String {
    (0..12)
        .map(|i| char::from(b'A' + i).to_string().repeat(250))
        .collect::<Vec<_>>()
        .join("/")
}

/// Issue 12, defect 6: setuid bits only with `--keep-setid`; skipped sockets reported.
#[test]
fn restore_reports_skipped_entries_and_clears_setid() {
    let scratch = Scratch::new("bounds-setid").unwrap();
    let ck_dir = scratch.path().join("ck");
    valid_checkpoint(&ck_dir, "d/f");
    let (run, _) = bounded_cli(&[OsStr::new("verify"), arg(&ck_dir)]);
    assert_eq!(run.code, Some(0), "{}", run.describe());

    let plain = scratch.path().join("plain");
    let (run, _) = bounded_cli(&restore_args(&ck_dir, &plain));
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&plain.join("build/tool")), 0o755);
    for line in [
        "skipped 1 entries of `build` that a restore does not recreate (sockets, devices): s (socket)",
        "setuid/setgid bits not restored on 1 entries of `build` (--keep-setid restores them): tool",
    ] {
        assert!(run.stderr.contains(line), "no {line:?}: {}", run.describe());
    }

    let kept = scratch.path().join("kept");
    let mut args = restore_args(&ck_dir, &kept);
    args.push(OsStr::new("--keep-setid"));
    let (run, _) = bounded_cli(&args);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(mode(&kept.join("build/tool")), 0o4755);
    assert!(!run.stderr.contains("setuid/setgid bits not restored"));

    // Only `restore` takes the flag.
    let (run, _) = bounded_cli(&[
        OsStr::new("verify"),
        arg(&ck_dir),
        OsStr::new("--keep-setid"),
    ]);
    assert_eq!(run.code, Some(BAD_INPUT), "{}", run.describe());
}

/// Issue 12, defect 6: a restore target that is a symlink (to an empty directory, or
/// dangling) is refused before anything is created: no `.NAME.restoring-PID` left.
#[test]
fn a_symlink_target_leaves_nothing_behind() {
    let scratch = Scratch::new("bounds-symlink").unwrap();
    let ck_dir = scratch.path().join("ck");
    valid_checkpoint(&ck_dir, "d/f");
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (link, to) in [
        ("to-empty", empty.clone()),
        ("dangling", PathBuf::from("nowhere")),
    ] {
        let target = scratch.path().join(link);
        std::os::unix::fs::symlink(&to, &target).unwrap();
        let (run, _) = bounded_cli(&restore_args(&ck_dir, &target));
        assert_eq!(run.code, Some(BAD_INPUT), "{}", run.describe());
        assert!(run.stderr.contains("is a symlink"), "{}", run.describe());
        assert!(std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_file(&target).unwrap();
    }
    assert_only(scratch.path(), &["ck", "empty"]);
    assert_only(&empty, &[]);
}

/// Issue 12, defect 6: a tree whose deepest path would pass PATH_MAX under the target is
/// refused before anything is written, as bad input (exit 2: a shorter target takes it).
#[test]
fn a_target_too_deep_for_the_tree_is_refused_before_writing() {
    let scratch = Scratch::new("bounds-path-max").unwrap();
    let ck_dir = scratch.path().join("ck");
    let deep = deep_path();
    valid_checkpoint(&ck_dir, &deep);
    let mut parent = scratch.path().join("p");
    for _ in 0..5 {
        parent = parent.join("q".repeat(220));
    }
    std::fs::create_dir_all(&parent).unwrap();
    let (run, _) = bounded_cli(&restore_args(&ck_dir, &parent.join("t")));
    assert_eq!(run.code, Some(BAD_INPUT), "{}", run.describe());
    assert!(
        run.stderr.contains("too deep for this checkpoint") && run.stderr.contains("PATH_MAX"),
        "{}",
        run.describe()
    );
    assert_only(&parent, &[]);
    let short = scratch.path().join("s");
    let (run, _) = bounded_cli(&restore_args(&ck_dir, &short));
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(short.join("build").join(&deep).is_file());
    let _ = ck::remove_tree(&short);
}
