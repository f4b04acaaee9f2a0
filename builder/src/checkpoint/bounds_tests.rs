//! Hostile checkpoints against the format's limits (docs/checkpoint-format.md §5, §10):
//! decompression bombs, huge claims, oversized files; every one refused with a typed error,
//! in bounded time, before anything is written. Tests only.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::CheckpointError;
use super::limits::{MAX_ATTACHMENT, MAX_LAYER_FILE};
use super::manifest::{ContentHash, Encoding, Entry, EntryKind, Layer, LayerMeta, RootDiff};
use super::path::RelPath;
use super::store::{Checkpoint, CheckpointWriter};
use super::testutil::{dir_entry, file_entry, TempDir};

/// One zstd frame of `blocks` RLE blocks of 128 KiB of zeros each, without a content size:
/// 4 bytes per 128 KiB, the largest ratio zstd has (`blocks` = 2^23 is 32 MiB → 1 TiB).
pub(super) fn zstd_rle_bomb(blocks: usize) -> Vec<u8> {
    // Magic, frame header descriptor (no content size, not single-segment, no checksum),
    // window descriptor 2^17.
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = (128u32 << 10) << 3 | 1 << 1 | last;
        v.extend_from_slice(&header.to_le_bytes()[..3]);
        v.push(0);
    }
    v
}

/// One zstd frame that asks for a 2^31-byte window and holds `content` in a raw block.
fn zstd_huge_window(content: &[u8]) -> Vec<u8> {
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3];
    let header = (content.len() as u32) << 3 | 1;
    v.extend_from_slice(&header.to_le_bytes()[..3]);
    v.extend_from_slice(content);
    v
}

/// A blob stored as `stored` (whatever it decodes to) under `hash`.
#[derive(Clone)]
struct Forged {
    hash: ContentHash,
    stored: Vec<u8>,
    encoding: Encoding,
}

/// Writes a one-layer checkpoint `ck` whose root `build` holds `files` (path → entry) and
/// whose layer has `attachments`; `forged` blobs are stored as given, every other file
/// content referenced must be in `contents`.
fn forge(
    t: &TempDir,
    files: Vec<(&str, Entry)>,
    attachments: &[(&str, ContentHash)],
    forged: &[Forged],
    contents: &[&[u8]],
) -> PathBuf {
    let dir = t.path().join("ck");
    let mut w = CheckpointWriter::create(&dir).unwrap();
    w.add_roots(["build".to_string()]).unwrap();
    for f in forged {
        w.blobs().put_stored(f.hash, &f.stored, f.encoding).unwrap();
    }
    for c in contents {
        w.blobs().put_bytes(c).unwrap();
    }
    let mut changed = vec![(RelPath::root(), dir_entry())];
    changed.extend(
        files
            .into_iter()
            .map(|(p, e)| (RelPath::new(p.as_bytes().to_vec()).unwrap(), e)),
    );
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    let layer = Layer {
        index: 0,
        meta: LayerMeta {
            name: "p".into(),
            attachments: attachments
                .iter()
                .map(|(n, h)| (n.to_string(), *h))
                .collect(),
            meta: serde_json::Value::Null,
        },
        roots: BTreeMap::from([(
            "build".to_string(),
            RootDiff {
                changed,
                deleted: Vec::new(),
            },
        )]),
        blobs: Vec::new(),
    };
    w.write_layer(&layer).unwrap();
    w.finish().unwrap()
}

fn file_claiming(size: u64, hash: ContentHash) -> Entry {
    Entry {
        kind: EntryKind::File {
            size,
            blake3: hash,
            hardlink: None,
        },
        ..file_entry(b"")
    }
}

/// Runs `f`, which must fail with an error whose text contains `needle`, within `limit`.
fn refused_quickly<T: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    needle: &str,
    f: impl FnOnce() -> super::Result<T>,
) -> CheckpointError {
    let start = Instant::now();
    let err = f().expect_err(what);
    let took = start.elapsed();
    assert!(took < limit, "{what}: took {took:?}");
    let text = err.to_string();
    assert!(text.contains(needle), "{what}: {text:?} lacks {needle:?}");
    err
}

fn assert_nothing_written(parent: &Path) {
    let left: Vec<String> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "ck")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Issue 12, defect 3: 2 MiB that inflate to 64 GiB of zeros, for an entry claiming 6
/// bytes. Unbounded, this takes minutes; bounded, decompression stops at the 7th byte.
#[test]
fn a_zstd_bomb_stops_at_the_claimed_size() {
    let t = TempDir::new("bomb");
    let claimed = b"hello\n";
    let hash = ContentHash::of(claimed);
    let ck_dir = forge(
        &t,
        vec![("f", file_entry(claimed))],
        &[],
        &[Forged {
            hash,
            stored: zstd_rle_bomb(1 << 19),
            encoding: Encoding::Zstd,
        }],
        &[],
    );
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let limit = Duration::from_secs(5);
    let needle = "longer than the 6 bytes claimed";
    let e = refused_quickly("verify", limit, needle, || ck.verify());
    assert!(matches!(e, CheckpointError::BlobCorrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("layer 0, f"), "names the entry: {e}");
    refused_quickly("restore", limit, needle, || {
        ck.restore(0, "build", &t.path().join("target"))
    });
    assert_nothing_written(t.path());
}

/// The same bomb as an attachment (no claimed size): stopped at the attachment limit, by
/// `verify` and by every in-memory read.
#[test]
fn a_zstd_bomb_attachment_stops_at_the_attachment_limit() {
    let t = TempDir::new("bomb-attachment");
    let hash = ContentHash::of(b"{}");
    let ck_dir = forge(
        &t,
        vec![],
        &[("shell-state", hash)],
        &[Forged {
            hash,
            stored: zstd_rle_bomb(1 << 19),
            encoding: Encoding::Zstd,
        }],
        &[],
    );
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let limit = Duration::from_secs(10);
    let needle = format!("longer than the limit of {MAX_ATTACHMENT} bytes");
    let e = refused_quickly("verify", limit, &needle, || ck.verify());
    assert!(e.to_string().contains("attachment shell-state"), "{e}");
    refused_quickly("read_blob", limit, &needle, || ck.read_blob(&hash));
}

/// A frame asking for a 2 GiB window is refused before the decoder allocates it.
#[test]
fn a_zstd_frame_with_a_huge_window_is_refused() {
    let t = TempDir::new("window");
    let content = b"hello\n";
    let hash = ContentHash::of(content);
    let ck_dir = forge(
        &t,
        vec![("f", file_entry(content))],
        &[],
        &[Forged {
            hash,
            stored: zstd_huge_window(content),
            encoding: Encoding::Zstd,
        }],
        &[],
    );
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let e = refused_quickly("verify", Duration::from_secs(5), "too much memory", || {
        ck.verify()
    });
    assert!(matches!(e, CheckpointError::BlobCorrupt { .. }), "{e:?}");
}

/// Claims the stored bytes cannot hold are refused without reading: 2^40 bytes from 10
/// zstd bytes, a raw blob of another length than its entry says.
#[test]
fn claims_the_stored_length_cannot_hold_are_refused() {
    for (size, encoding) in [(1u64 << 40, Encoding::Zstd), (7, Encoding::Raw)] {
        let t = TempDir::new("claims");
        let content = b"hello\n";
        let hash = ContentHash::of(content);
        let stored = match encoding {
            Encoding::Zstd => zstd::bulk::compress(content, 3).unwrap(),
            Encoding::Raw => content.to_vec(),
            Encoding::Patch | Encoding::Delta => unreachable!("not among this test's encodings"),
        };
        let ck_dir = forge(
            &t,
            vec![("f", file_claiming(size, hash))],
            &[],
            &[Forged {
                hash,
                stored,
                encoding,
            }],
            &[],
        );
        let ck = Checkpoint::open(&ck_dir).unwrap();
        let needle = format!("cannot hold the {size} bytes claimed");
        refused_quickly("verify", Duration::from_secs(5), &needle, || ck.verify());
        refused_quickly("restore", Duration::from_secs(5), &needle, || {
            ck.restore(0, "build", &t.path().join("target"))
        });
        assert_nothing_written(t.path());
    }
}

/// A content claimed with two sizes by two entries: `verify` refuses what one of the two
/// restores would.
#[test]
fn one_content_with_two_claimed_sizes_is_refused_by_verify() {
    let t = TempDir::new("two-sizes");
    let content = b"some content, long enough to be compressed by the writer: zzzzzzzzzzzzzz";
    let hash = ContentHash::of(content);
    let ck_dir = forge(
        &t,
        vec![
            ("a", file_entry(content)),
            ("b", file_claiming(content.len() as u64 + 1, hash)),
        ],
        &[],
        &[],
        &[content],
    );
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let e = ck.verify().unwrap_err();
    match &e {
        CheckpointError::Manifest { path, problem, .. } => {
            assert_eq!(path, "b");
            assert!(problem.contains("a file of 72 bytes"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    ck.restore(0, "build", &t.path().join("target"))
        .expect_err("restore refuses it too");
    assert_nothing_written(t.path());
}

/// Writers refuse an attachment readers would not read.
#[test]
fn writers_refuse_an_attachment_beyond_the_limit() {
    let t = TempDir::new("big-attachment");
    let w = CheckpointWriter::create(&t.path().join("ck")).unwrap();
    let big = vec![b'x'; MAX_ATTACHMENT as usize + 1];
    assert!(matches!(
        w.put_blob(&big),
        Err(CheckpointError::TooLarge {
            what: "attachment",
            ..
        })
    ));
    w.put_blob(&big[..MAX_ATTACHMENT as usize]).unwrap();
}

/// A layer file larger than the limit is refused from its size, before it is read (it is
/// sparse here: reading it would still take seconds and 512 MiB).
#[test]
fn a_layer_file_beyond_the_limit_is_not_read() {
    let t = TempDir::new("big-layer");
    let ck_dir = forge(&t, vec![], &[], &[], &[]);
    let layer = ck_dir.join("layers/000-p.json");
    fs::OpenOptions::new()
        .write(true)
        .open(&layer)
        .unwrap()
        .set_len(MAX_LAYER_FILE + 1)
        .unwrap();
    let e = refused_quickly(
        "open",
        Duration::from_secs(2),
        "larger than the limit",
        || Checkpoint::open(&ck_dir),
    );
    assert!(e.to_string().contains("000-p.json"), "{e}");
}

// ------------------------------------------------------------------------------------
// Limits of entries and states (§10): refused by `open`/`verify` exactly as by restore.

/// Replaces `from` by `to` in layer 0's file and fixes its hash in the index, so only the
/// content is wrong.
fn retext(ck_dir: &Path, from: &str, to: &str) {
    let lf = ck_dir.join("layers/000-p.json");
    let old = fs::read_to_string(&lf).unwrap();
    assert!(old.contains(from), "{from:?} not in {old}");
    let new = old.replacen(from, to, 1);
    fs::write(&lf, &new).unwrap();
    let idx = ck_dir.join("index.json");
    let text = fs::read_to_string(&idx).unwrap().replace(
        &ContentHash::of(old.as_bytes()).to_hex(),
        &ContentHash::of(new.as_bytes()).to_hex(),
    );
    fs::write(idx, text).unwrap();
}

#[test]
fn entries_beyond_the_limits_are_refused_when_opening() {
    let content = b"hello\n";
    let h = ContentHash::of(content).to_hex();
    let record = format!(
        r#"{{"path":"f","kind":"file","mode":"0644","mtime_s":0,"mtime_ns":0,"size":6,"blake3":"{h}"}}"#
    );
    let with = |fields: &str| {
        format!(
            r#"{{"path":"f","kind":"file","mode":"0644","mtime_s":0,"mtime_ns":0,"size":6,"blake3":"{h}"{fields}}}"#
        )
    };
    let long_value = "u".repeat(65537);
    let many: Vec<String> = (0..129).map(|i| format!(r#""user.{i:03}":"v""#)).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "300-byte name",
            record.replace(r#""path":"f""#, &format!(r#""path":"{}""#, "o".repeat(300))),
            "NAME_MAX",
        ),
        (
            "path of 3264 bytes",
            record.replace(
                r#""path":"f""#,
                &format!(r#""path":"{}""#, vec!["o".repeat(200); 16].join("/")),
            ),
            "longer than 3072 bytes",
        ),
        (
            "257 components",
            record.replace(
                r#""path":"f""#,
                &format!(r#""path":"{}""#, vec!["d"; 257].join("/")),
            ),
            "more than 256 components",
        ),
        (
            "size 2^63",
            record.replace(r#""size":6"#, r#""size":9223372036854775808"#),
            "larger than 1099511627776 bytes",
        ),
        (
            "mtime in the year 33658",
            record.replace(r#""mtime_s":0"#, r#""mtime_s":1000000000000"#),
            "outside -2147483648..=15032385535",
        ),
        (
            "mtime before 1901",
            record.replace(r#""mtime_s":0"#, r#""mtime_s":-2147483649"#),
            "outside -2147483648..=15032385535",
        ),
        (
            "1 MiB symlink target",
            format!(
                r#"{{"path":"f","kind":"symlink","mode":"0777","mtime_s":0,"mtime_ns":0,"target":"{}"}}"#,
                "t".repeat(1 << 20)
            ),
            "longer than 4095",
        ),
        (
            "xattr value of 65537 bytes",
            with(&format!(r#","xattrs":{{"user.a":"{long_value}"}}"#)),
            "more than 65536",
        ),
        (
            "xattr name of 256 bytes",
            with(&format!(r#","xattrs":{{"user.{}":"v"}}"#, "o".repeat(251))),
            "longer than 255",
        ),
        (
            "129 xattrs",
            with(&format!(r#","xattrs":{{{}}}"#, many.join(","))),
            "more than 128",
        ),
    ];
    for (what, bad, needle) in cases {
        let t = TempDir::new("limits");
        let ck_dir = forge(&t, vec![("f", file_entry(content))], &[], &[], &[content]);
        retext(&ck_dir, &record, &bad);
        let e = Checkpoint::open(&ck_dir).expect_err(what);
        assert!(
            matches!(
                e,
                CheckpointError::Manifest { .. } | CheckpointError::InvalidPath { .. }
            ),
            "{what}: {e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(needle), "{what}: {text:.300}");
        assert!(
            text.contains("layer 0"),
            "{what} names the layer: {text:.300}"
        );
    }
}

/// Issue 12, defect 5: a character device as a root passed `verify` and failed restore;
/// both refuse it now, with the same words.
#[test]
fn a_device_root_is_refused_by_verify_and_restore() {
    let t = TempDir::new("device-root");
    let dir = t.path().join("ck");
    let mut w = CheckpointWriter::create(&dir).unwrap();
    w.add_roots(["build".to_string()]).unwrap();
    let dev = Entry {
        kind: EntryKind::CharDevice { rdev: 0x0103 },
        ..dir_entry()
    };
    let layer = Layer {
        index: 0,
        meta: LayerMeta {
            name: "p".into(),
            ..LayerMeta::default()
        },
        roots: BTreeMap::from([(
            "build".to_string(),
            RootDiff {
                changed: vec![(RelPath::root(), dev)],
                deleted: Vec::new(),
            },
        )]),
        blobs: Vec::new(),
    };
    w.write_layer(&layer).unwrap();
    w.finish().unwrap();
    let ck = Checkpoint::open(&dir).unwrap();
    let needle = "the root is a char-device, which cannot be restored";
    let v = ck.verify().unwrap_err();
    assert!(
        matches!(v, CheckpointError::Manifest { layer: 0, .. }),
        "{v:?}"
    );
    assert!(v.to_string().contains(needle), "{v}");
    let r = ck
        .restore(0, "build", &t.path().join("target"))
        .unwrap_err();
    assert!(r.to_string().contains(needle), "{r}");
    assert_nothing_written(t.path());
}

// ------------------------------------------------------------------------------------
// Restore: setuid/setgid bits, room below PATH_MAX.

/// Issue 12, defect 6: setuid and setgid bits from a checkpoint are not restored unless
/// asked for; the report lists the entries that had them.
#[test]
fn setid_bits_are_cleared_unless_asked_for() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("setid");
    let root = t.path().join("src");
    fs::create_dir_all(root.join("shared")).unwrap();
    fs::write(root.join("shared/tool"), b"#!/bin/sh\n").unwrap();
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    mode(&root.join("shared/tool"), 0o4755);
    mode(&root.join("shared"), 0o2755);
    let ck_dir = t.path().join("ck");
    let mut w = CheckpointWriter::create(&ck_dir).unwrap();
    let mut s = super::Snapshotter::new(vec![("build".into(), root)]).unwrap();
    s.snapshot(&mut w, LayerMeta::default()).unwrap();
    w.finish().unwrap();
    let ck = Checkpoint::open(&ck_dir).unwrap();
    ck.verify().unwrap();
    let got = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;

    let plain = t.path().join("plain");
    let rep = ck.restore(0, "build", &plain).unwrap();
    assert_eq!(got(&plain.join("shared")), 0o755);
    assert_eq!(got(&plain.join("shared/tool")), 0o755);
    let cleared: Vec<String> = rep.setid_cleared.iter().map(|p| p.escaped()).collect();
    assert_eq!(cleared, ["shared", "shared/tool"]);

    let into = t.path().join("into");
    fs::create_dir(&into).unwrap();
    let st = ck.state_after(0).unwrap();
    let rep = ck.restore_state_into(st.root("build"), &into).unwrap();
    assert_eq!(got(&into.join("shared/tool")), 0o755);
    assert_eq!(rep.setid_cleared.len(), 2);

    let kept = t.path().join("kept");
    let keep = super::RestoreOptions { keep_setid: true };
    let rep = ck.restore_with(0, "build", &kept, keep).unwrap();
    assert_eq!(got(&kept.join("shared")), 0o2755);
    assert_eq!(got(&kept.join("shared/tool")), 0o4755);
    assert!(rep.setid_cleared.is_empty());
}

/// Issue 12, defect 6: a tree whose paths would pass `PATH_MAX` under the target is never
/// written (the builder could not snapshot it again, nor Nix delete it).
#[test]
fn a_tree_too_deep_for_its_target_is_never_written() {
    let t = TempDir::new("path-room");
    let comps: Vec<String> = (0..12).map(|i| format!("{i:x}").repeat(250)).collect();
    let mut files: Vec<(String, Entry)> = (1..comps.len())
        .map(|n| (comps[..n].join("/"), dir_entry()))
        .collect();
    let deepest = comps.join("/");
    assert_eq!(deepest.len(), 3011);
    files.push((deepest.clone(), file_entry(b"x")));
    let ck_dir = forge(
        &t,
        files.iter().map(|(p, e)| (p.as_str(), e.clone())).collect(),
        &[],
        &[],
        &[b"x"],
    );
    let ck = Checkpoint::open(&ck_dir).unwrap();
    ck.verify().unwrap();
    // A parent of more than 1100 bytes: target + the deepest path pass 4095 bytes.
    let mut parent = t.path().join("p");
    for _ in 0..5 {
        parent = parent.join("q".repeat(220));
    }
    fs::create_dir_all(&parent).unwrap();
    let target = parent.join("target");
    let e = ck.restore(0, "build", &target).unwrap_err();
    assert!(matches!(e, CheckpointError::PathTooLong { .. }), "{e:?}");
    assert_eq!(
        fs::read_dir(&parent).unwrap().count(),
        0,
        "something was written"
    );
    fs::create_dir(&target).unwrap();
    let st = ck.state_after(0).unwrap();
    let e = ck
        .restore_state_into(st.root("build"), &target)
        .unwrap_err();
    assert!(matches!(e, CheckpointError::PathTooLong { .. }), "{e:?}");
    assert_eq!(
        fs::read_dir(&target).unwrap().count(),
        0,
        "something was written"
    );
    // A short target takes it.
    ck.restore(0, "build", &t.path().join("short")).unwrap();
    assert_eq!(
        fs::read(t.path().join("short").join(&deepest)).unwrap(),
        b"x"
    );
}

/// Patched blobs (encoding `patch`) that lie, loop, point nowhere or claim too much: each
/// refused by verify and restore with its reason, quickly, and nothing restored.
#[test]
fn hostile_patched_blobs_are_refused() {
    use super::limits::MAX_PATCH_RECORD;
    use super::patch::{Patch, Region};
    let base = b"hello world, hello world\n".to_vec();
    let base_hash = ContentHash::of(&base);
    let raw_base = Forged {
        hash: base_hash,
        stored: base.clone(),
        encoding: Encoding::Raw,
    };
    let region = |offset: u64, bytes: &[u8]| Region {
        offset,
        bytes: bytes.to_vec(),
    };
    // "hello WORLD, hello world\n": what a patch of the base at 6 gives.
    let mut patched = base.clone();
    patched[6..11].copy_from_slice(b"WORLD");
    let patched_hash = ContentHash::of(&patched);
    let record = |base: ContentHash, size: u64, regions: Vec<Region>| {
        Patch {
            base,
            size,
            regions,
        }
        .to_bytes()
    };
    let patch_blob = |hash: ContentHash, stored: Vec<u8>| Forged {
        hash,
        stored,
        encoding: Encoding::Patch,
    };
    let size = base.len() as u64;
    let good = record(base_hash, size, vec![region(6, b"WORLD")]);
    let other = ContentHash::of(b"not stored");
    let cases: Vec<(&str, u64, ContentHash, Vec<Forged>)> = vec![
        (
            "more than the limit",
            size,
            patched_hash,
            vec![
                raw_base.clone(),
                patch_blob(patched_hash, vec![0; MAX_PATCH_RECORD as usize + 1]),
            ],
        ),
        (
            "is not stored",
            size,
            patched_hash,
            vec![patch_blob(
                patched_hash,
                record(other, size, vec![region(6, b"WORLD")]),
            )],
        ),
        (
            "a patched blob too",
            size,
            ContentHash::of(b"x"),
            vec![
                raw_base.clone(),
                patch_blob(patched_hash, good.clone()),
                patch_blob(
                    ContentHash::of(b"x"),
                    record(patched_hash, size, vec![region(0, b"H")]),
                ),
            ],
        ),
        (
            "are claimed for it",
            size - 1,
            patched_hash,
            vec![raw_base.clone(), patch_blob(patched_hash, good.clone())],
        ),
        (
            "content hashes to",
            size,
            other,
            vec![raw_base.clone(), patch_blob(other, good.clone())],
        ),
        (
            "with a gap",
            size,
            patched_hash,
            vec![
                raw_base.clone(),
                patch_blob(
                    patched_hash,
                    record(base_hash, size, vec![region(6, b"WOR"), region(8, b"RLD")]),
                ),
            ],
        ),
        (
            "cannot hold the 1099511627776 bytes claimed",
            1 << 40,
            patched_hash,
            vec![
                raw_base.clone(),
                patch_blob(
                    patched_hash,
                    record(base_hash, 1 << 40, vec![region(6, b"WORLD")]),
                ),
            ],
        ),
    ];
    assert_each_refused("patch", cases);
    // The honest one restores what it says.
    let forged = [raw_base, patch_blob(patched_hash, good)];
    assert_restores("patch", patched_hash, &forged, &patched);
}

/// A one-file checkpoint per case (`f` claiming `claimed` bytes of `hash`, the `forged`
/// blobs stored as given): verify and restore each refuse it with an error that contains
/// the case's needle, quickly, and nothing is restored.
fn assert_each_refused(label: &str, cases: Vec<(&str, u64, ContentHash, Vec<Forged>)>) {
    for (needle, claimed, hash, forged) in cases {
        let t = TempDir::new(label);
        let ck_dir = forge(
            &t,
            vec![("f", file_claiming(claimed, hash))],
            &[],
            &forged,
            &[],
        );
        let ck = Checkpoint::open(&ck_dir).unwrap();
        refused_quickly("verify", Duration::from_secs(5), needle, || ck.verify());
        refused_quickly("restore", Duration::from_secs(5), needle, || {
            ck.restore(0, "build", &t.path().join("target"))
        });
        assert_nothing_written(t.path());
    }
}

/// The one-file checkpoint whose `f` is `content` (blob `hash`, made from the `forged`
/// blobs) verifies, with every blob used, and restores `content`.
fn assert_restores(label: &str, hash: ContentHash, forged: &[Forged], content: &[u8]) {
    let t = TempDir::new(label);
    let size = content.len() as u64;
    let ck_dir = forge(&t, vec![("f", file_claiming(size, hash))], &[], forged, &[]);
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let report = ck.verify().unwrap();
    assert_eq!(report.unreferenced_blobs, 0);
    let target = t.path().join("target");
    ck.restore(0, "build", &target).unwrap();
    assert_eq!(fs::read(target.join("f")).unwrap(), content);
}

/// Delta blobs (encoding `delta`) that lie, stand on what they may not, or claim too much:
/// each refused by verify and restore with its reason, quickly, and nothing restored.
#[test]
fn hostile_delta_blobs_are_refused() {
    use super::delta::{self, DeltaHeader};
    use super::limits::MAX_DELTA_CONTENT;
    use super::patch::{Patch, Region};
    let base: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let base_hash = ContentHash::of(&base);
    let base_size = base.len() as u64;
    let raw_base = Forged {
        hash: base_hash,
        stored: base.clone(),
        encoding: Encoding::Raw,
    };
    // The base with a longer string early on: every later byte moved.
    let mut content = base[..100].to_vec();
    content.extend_from_slice(b"inserted");
    content.extend_from_slice(&base[100..]);
    let hash = ContentHash::of(&content);
    let size = content.len() as u64;
    let frame = delta::encode(&base, &content).unwrap();
    let record = |base: ContentHash, base_size: u64, size: u64, frame: &[u8]| {
        DeltaHeader {
            base,
            base_size,
            size,
        }
        .record(frame)
    };
    let delta_blob = |hash: ContentHash, stored: Vec<u8>| Forged {
        hash,
        stored,
        encoding: Encoding::Delta,
    };
    let good = record(base_hash, base_size, size, &frame);
    let other = ContentHash::of(b"not stored");
    // A patched blob to stand on: the base with one byte replaced.
    let mut patched = base.clone();
    patched[0] ^= 1;
    let patched_hash = ContentHash::of(&patched);
    let patch_blob = Forged {
        hash: patched_hash,
        stored: Patch {
            base: base_hash,
            size: base_size,
            regions: vec![Region {
                offset: 0,
                bytes: vec![patched[0]],
            }],
        }
        .to_bytes(),
        encoding: Encoding::Patch,
    };
    let x = ContentHash::of(b"x");
    let cases: Vec<(&str, u64, ContentHash, Vec<Forged>)> = vec![
        (
            "more than the limit",
            MAX_DELTA_CONTENT + 1,
            hash,
            vec![
                raw_base.clone(),
                delta_blob(
                    hash,
                    record(base_hash, base_size, MAX_DELTA_CONTENT + 1, &frame),
                ),
            ],
        ),
        (
            "more than the limit",
            size,
            hash,
            vec![
                raw_base.clone(),
                delta_blob(hash, record(base_hash, MAX_DELTA_CONTENT + 1, size, &frame)),
            ],
        ),
        (
            "shorter than its 48-byte header",
            size,
            hash,
            vec![raw_base.clone(), delta_blob(hash, good[..47].to_vec())],
        ),
        (
            "is not stored",
            size,
            hash,
            vec![delta_blob(hash, record(other, base_size, size, &frame))],
        ),
        (
            "is a delta blob too",
            size,
            x,
            vec![
                raw_base.clone(),
                delta_blob(hash, good.clone()),
                delta_blob(x, record(hash, size, size, &frame)),
            ],
        ),
        (
            "is a patched blob too",
            size,
            hash,
            vec![
                raw_base.clone(),
                patch_blob.clone(),
                delta_blob(hash, record(patched_hash, base_size, size, &frame)),
            ],
        ),
        (
            "are claimed for it",
            size - 1,
            hash,
            vec![raw_base.clone(), delta_blob(hash, good.clone())],
        ),
        (
            "content hashes to",
            size,
            other,
            vec![raw_base.clone(), delta_blob(other, good.clone())],
        ),
        (
            "longer than the 5 bytes of its content",
            5,
            hash,
            vec![
                raw_base.clone(),
                delta_blob(hash, record(base_hash, base_size, 5, &frame)),
            ],
        ),
        // The frame makes more than the record says: decoding stops at the record's size.
        (
            "zstd:",
            size - 8,
            hash,
            vec![
                raw_base.clone(),
                delta_blob(hash, record(base_hash, base_size, size - 8, &frame)),
            ],
        ),
        // ... or less.
        (
            "the delta decodes to",
            size + 8,
            hash,
            vec![
                raw_base.clone(),
                delta_blob(hash, record(base_hash, base_size, size + 8, &frame)),
            ],
        ),
        // The base is not as long as the record says.
        (
            "claimed",
            size,
            hash,
            vec![
                raw_base.clone(),
                delta_blob(hash, record(base_hash, base_size + 1, size, &frame)),
            ],
        ),
        (
            "zstd:",
            size,
            hash,
            vec![
                raw_base.clone(),
                delta_blob(hash, record(base_hash, base_size, size, b"not a frame")),
            ],
        ),
    ];
    assert_each_refused("delta", cases);
    // The honest one restores what it says; its base counts as used.
    assert_restores("delta", hash, &[raw_base, delta_blob(hash, good)], &content);
}
