//! Tests of continuing an earlier build: rewritten imports, restoring into a directory that
//! stays in place, scanning and overlaying source changes; tests only.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use super::blobs::Expect;
use super::error::CheckpointError;
use super::manifest::{ContentHash, LayerMeta, Timestamp};
use super::overlay::{overlay_changes, overlay_state, OverlayChange};
use super::path::RelPath;
use super::rewrite::{RewritePair, Rewrites};
use super::snapshot::{scan_root, Snapshotter};
use super::state::{max_mtime, RootState, State};
use super::store::{Checkpoint, CheckpointWriter};
use super::tests::{
    assert_same, damage_blob, describe, generate, open_verified, set_mtime, without_setid,
    xattrs_supported, Desc,
};
use super::testutil::TempDir;

fn out_path(hash: &str) -> Vec<u8> {
    format!("/nix/store/{hash}-demo-1.0").into_bytes()
}
fn dev_path(hash: &str) -> Vec<u8> {
    format!("/nix/store/{hash}-demo-1.0-dev").into_bytes()
}
const H_OUT_OLD: &str = "0123456789abcdfghijklmnpqrsvwxyz";
const H_OUT_NEW: &str = "zyxwvsrqpnmlkjihgfdcba9876543210";
const H_DEV_OLD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const H_DEV_NEW: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The build tree before buildPhase: output paths in text, binary, symlink, xattr, names.
fn build_tree(root: &Path) -> bool {
    let xa = xattrs_supported(root.parent().unwrap());
    let old = out_path(H_OUT_OLD);
    let dev = dev_path(H_DEV_OLD);
    let w = |rel: &str, data: &[u8]| {
        let f = root.join(rel);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, data).unwrap();
    };
    w(
        "src/config.h",
        &cat(&[
            b"#define PREFIX \"",
            &old,
            b"\"\n#define DEV \"",
            &dev,
            b"\"\n",
        ]),
    );
    w("src/plain.c", b"int x;\n");
    // Over the streaming threshold, with occurrences across a chunk boundary and at the end.
    let mut big = pseudo_random(5 << 20, 7);
    let at = (1 << 20) - 7;
    big[at..at + old.len()].copy_from_slice(&old);
    let end = big.len() - dev.len();
    big[end..].copy_from_slice(&dev);
    w("big.bin", &big);
    w("big-clean.bin", &pseudo_random(5 << 20, 11));
    symlink(
        OsStr::from_bytes(&cat(&[&old, b"/bin/demo"])),
        root.join("result"),
    )
    .unwrap();
    w("links/a", &cat(&[b"path=", &old, b"\n"]));
    fs::hard_link(root.join("links/a"), root.join("links/b")).unwrap();
    // A name that is rewritten, hardlinked to one that is not; the rewritten name becomes
    // the smallest of the group.
    w("zTOKENOLD", b"see zTOKENOLD\n");
    fs::hard_link(root.join("zTOKENOLD"), root.join("m")).unwrap();
    if xa {
        xattr::set(root.join("src/config.h"), "user.origin", &old).unwrap();
    }
    xa
}

/// `describe(orig)` as it must look after rewriting with `rw`.
fn rewritten_desc(orig: &Path, rw: &Rewrites) -> BTreeMap<Vec<u8>, Desc> {
    let d = describe(orig);
    let new_path = |k: &Vec<u8>| -> Vec<u8> {
        if k.is_empty() {
            return Vec::new();
        }
        rw.apply_path(&RelPath::new(k.clone()).unwrap())
            .unwrap()
            .map_or(k.clone(), |p| p.as_bytes().to_vec())
    };
    let mut leaders: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (k, v) in &d {
        if let Some(g) = &v.group {
            let n = new_path(k);
            let l = leaders.entry(g.clone()).or_insert_with(|| n.clone());
            if n < *l {
                *l = n;
            }
        }
    }
    d.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            let re = |b: Vec<u8>| rw.apply(&b).unwrap_or(b);
            if v.kind == "file" {
                let data = fs::read(orig.join(OsStr::from_bytes(k))).unwrap();
                v.content = Some(ContentHash::of(&re(data)));
            }
            v.target = v.target.map(re);
            v.xattrs = v.xattrs.into_iter().map(|(a, b)| (re(a), re(b))).collect();
            v.group = v.group.map(|g| leaders[&g].clone());
            (new_path(k), v)
        })
        .collect()
}

fn rewrites() -> Vec<RewritePair> {
    vec![
        (out_path(H_OUT_OLD), out_path(H_OUT_NEW)),
        (dev_path(H_DEV_OLD), dev_path(H_DEV_NEW)),
        (b"zTOKENOLD".to_vec(), b"aTOKENNEW".to_vec()),
    ]
}

/// Every byte string a reader of the checkpoint gets: the contents its layers' entries and
/// attachments use (decompressed, patches applied), its index and layer files: (where,
/// bytes). The bases of patched blobs are not among them: only their patches read them.
fn checkpoint_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let ck = Checkpoint::open(dir).unwrap();
    let mut out = Vec::new();
    for h in used_blobs(&ck) {
        out.push((format!("blob {h}"), ck.read_blob(&h).unwrap()));
    }
    out.push((
        "index.json".into(),
        fs::read(dir.join("index.json")).unwrap(),
    ));
    for e in fs::read_dir(dir.join("layers")).unwrap() {
        let p = e.unwrap().path();
        out.push((p.display().to_string(), fs::read(&p).unwrap()));
    }
    out
}

/// The blobs `ck`'s layers use: file contents and attachments.
fn used_blobs(ck: &Checkpoint) -> std::collections::BTreeSet<ContentHash> {
    ck.layers()
        .iter()
        .flat_map(|l| {
            l.roots
                .values()
                .flat_map(|d| d.changed.iter().filter_map(|(_, e)| e.blob()))
                .chain(l.meta.attachments.values().copied())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The blobs `ck` stores that its layers do not use: exactly the bases of its patched blobs.
fn patch_bases(ck: &Checkpoint) -> std::collections::BTreeSet<ContentHash> {
    let used = used_blobs(ck);
    let bases: std::collections::BTreeSet<ContentHash> = used
        .iter()
        .filter_map(|h| ck.blobs().patch_of(h).unwrap())
        .map(|p| p.base)
        .collect();
    let unused: std::collections::BTreeSet<ContentHash> = ck
        .blobs()
        .hashes()
        .into_iter()
        .filter(|h| !used.contains(h))
        .collect();
    assert!(unused.is_subset(&bases), "stored and unused: {unused:?}");
    bases
}

#[test]
fn rewritten_import_restore_adopt_and_snapshot() {
    let t = TempDir::new("rewrite");
    let root = t.path().join("build");
    let out = t.path().join("out");
    fs::create_dir(&root).unwrap();
    let xa = build_tree(&root);
    let (old_out, old_dev) = (out_path(H_OUT_OLD), dev_path(H_DEV_OLD));

    // The earlier build: three layers, attachments and meta naming the outputs.
    let a_dir = t.path().join("ck-a");
    let mut wa = CheckpointWriter::create(&a_dir).unwrap();
    let mut sa = Snapshotter::new(vec![
        ("build".into(), root.clone()),
        ("out".into(), out.clone()),
    ])
    .unwrap();
    let meta = |w: &CheckpointWriter, name: &str| LayerMeta {
        name: name.into(),
        attachments: [
            (
                "shell-state".to_string(),
                w.put_blob(&cat(&[b"declare -x out=\"", &old_out, b"\"\n"]))
                    .unwrap(),
            ),
            (
                "inputs".to_string(),
                w.put_blob(&cat(&[b"{\"dev\":\"", &old_dev, b"\"}"]))
                    .unwrap(),
            ),
            ("timing".to_string(), w.put_blob(b"{\"ms\":12}").unwrap()),
        ]
        .into_iter()
        .collect(),
        meta: serde_json::json!({
            "phase": name,
            "outputs": {"out": String::from_utf8(old_out.clone()).unwrap()},
            "list": [String::from_utf8(old_dev.clone()).unwrap(), 3],
        }),
    };
    let m = meta(&wa, "unpackPhase");
    sa.snapshot(&mut wa, m).unwrap();
    fs::write(
        root.join("src/config.h"),
        cat(&[b"#define PREFIX \"", &old_out, b"\" /* configured */\n"]),
    )
    .unwrap();
    fs::create_dir_all(out.join("bin")).unwrap();
    fs::write(
        out.join("bin/demo"),
        cat(&[
            b"#!/bin/sh\nexec ",
            &old_out,
            b"/libexec/demo --dev ",
            &old_dev,
            b"\n",
        ]),
    )
    .unwrap();
    fs::set_permissions(out.join("bin/demo"), fs::Permissions::from_mode(0o755)).unwrap();
    let m = meta(&wa, "buildPhase");
    sa.snapshot(&mut wa, m).unwrap();
    let rw = Rewrites::new(&rewrites()).unwrap();
    let want_build = rewritten_desc(&root, &rw);
    let want_out = rewritten_desc(&out, &rw);
    fs::write(root.join("later"), b"installPhase only").unwrap();
    let m = meta(&wa, "installPhase");
    sa.snapshot(&mut wa, m).unwrap();
    wa.finish().unwrap();
    let ck_a = open_verified(&a_dir);
    assert!(checkpoint_bytes(&a_dir)
        .iter()
        .any(|(_, b)| contains(b, &old_out)));

    // Refusals leave the writer empty.
    let b_dir = t.path().join("ck-b");
    let mut wb = CheckpointWriter::create(&b_dir).unwrap();
    let bad = vec![(old_out.clone(), b"/nix/store/short".to_vec())];
    assert!(matches!(
        wb.import_layers_rewritten(&ck_a, 1, &bad),
        Err(CheckpointError::InvalidRewrite { .. })
    ));
    assert!(matches!(
        wb.import_layers_rewritten(&ck_a, 3, &rewrites()),
        Err(CheckpointError::NoSuchLayer { .. })
    ));
    assert_eq!(wb.layer_count(), 0);

    // The import.
    let state = wb.import_layers_rewritten(&ck_a, 1, &rewrites()).unwrap();
    assert_eq!(wb.layer_count(), 2);
    assert!(matches!(
        wb.import_layers_rewritten(&ck_a, 1, &rewrites()),
        Err(CheckpointError::WriterNotEmpty { layers: 2 })
    ));
    let ck_b = Checkpoint::open(&b_dir).unwrap();
    assert_eq!(ck_b.state_after(1).unwrap(), state);
    let st_a = ck_a.state_after(1).unwrap();
    // No byte of the old paths anywhere in the new checkpoint; the new ones are there.
    for (place, bytes) in checkpoint_bytes(&b_dir) {
        for old in [&old_out[..], &old_dev[..], b"zTOKENOLD"] {
            assert!(
                !contains(&bytes, old),
                "{place} still holds {}",
                String::from_utf8_lossy(old)
            );
        }
    }
    let b_layer = &ck_b.layers()[0];
    assert_eq!(b_layer.meta.name, "unpackPhase");
    assert_eq!(
        b_layer.meta.meta["outputs"]["out"],
        String::from_utf8(out_path(H_OUT_NEW)).unwrap()
    );
    assert_eq!(
        b_layer.meta.meta["list"][0],
        String::from_utf8(dev_path(H_DEV_NEW)).unwrap()
    );
    assert_eq!(
        ck_b.read_blob(&b_layer.meta.attachments["shell-state"])
            .unwrap(),
        cat(&[b"declare -x out=\"", &out_path(H_OUT_NEW), b"\"\n"])
    );
    // Content without occurrences keeps its hash and its blob file, byte for byte.
    let a_layer = &ck_a.layers()[0];
    assert_eq!(
        a_layer.meta.attachments["timing"],
        b_layer.meta.attachments["timing"]
    );
    for name in ["big-clean.bin", "src/plain.c"] {
        let p = RelPath::new(name).unwrap();
        let h = st_a.root("build")[&p].blob().unwrap();
        assert_eq!(state.root("build")[&p].blob(), Some(h), "{name}");
        assert_eq!(
            ck_a.blobs().stored_bytes(&h).unwrap(),
            ck_b.blobs().stored_bytes(&h).unwrap(),
            "{name}"
        );
    }
    let big = RelPath::new("big.bin").unwrap();
    assert_ne!(
        st_a.root("build")[&big].blob(),
        state.root("build")[&big].blob()
    );
    // The large content with two rewritten paths is stored as a patch of the earlier one,
    // whose stored bytes are copied as they are: the only blob that still holds an old path,
    // read by nothing but its patch. The small one is stored anew.
    let big_new = state.root("build")[&big].blob().unwrap();
    let big_old = st_a.root("build")[&big].blob().unwrap();
    let patch = ck_b
        .blobs()
        .patch_of(&big_new)
        .unwrap()
        .expect("big.bin is patched");
    assert_eq!(patch.base, big_old);
    assert_eq!(patch.regions.len(), 2);
    assert_eq!(
        ck_a.blobs().stored_bytes(&big_old).unwrap(),
        ck_b.blobs().stored_bytes(&big_old).unwrap()
    );
    assert_eq!(patch_bases(&ck_b), [big_old].into_iter().collect());
    let cfg = state.root("build")[&RelPath::new("src/config.h").unwrap()]
        .blob()
        .unwrap();
    assert_eq!(ck_b.blobs().patch_of(&cfg).unwrap(), None);
    assert_eq!(ck_b.verify_unfinished().unwrap().unreferenced_blobs, 0);

    // Restore from the new checkpoint: the build directory in place (it holds junk), an
    // output at a path that does not exist yet.
    let nb = t.path().join("new-build");
    fs::create_dir(&nb).unwrap();
    fs::write(nb.join("junk"), b"junk").unwrap();
    let no = t.path().join("new-out");
    ck_b.restore_state_into(state.root("build"), &nb).unwrap();
    ck_b.restore_state(state.root("out"), &no).unwrap();
    assert_same(&want_build, &describe(&nb));
    assert_same(&want_out, &describe(&no));
    if xa {
        assert_eq!(
            xattr::get(nb.join("src/config.h"), "user.origin")
                .unwrap()
                .unwrap(),
            out_path(H_OUT_NEW)
        );
    }
    assert_eq!(
        fs::read_link(nb.join("result"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        cat(&[&out_path(H_OUT_NEW), b"/bin/demo"])
    );

    // Adopt and continue: nothing is rehashed, nothing spuriously changes.
    let mut sb = Snapshotter::new(vec![
        ("build".into(), nb.clone()),
        ("out".into(), no.clone()),
    ])
    .unwrap();
    sb.adopt(state.clone(), 2).unwrap();
    let l = sb
        .snapshot(
            &mut wb,
            LayerMeta {
                name: "installPhase".into(),
                ..LayerMeta::default()
            },
        )
        .unwrap();
    assert_eq!(l.files_hashed, 0, "restored files are trusted");
    assert!(l.roots.values().all(|r| r.changed == 0 && r.deleted == 0));
    // A later change is seen, even one that keeps size and mtime (ctime moves).
    let cfg = nb.join("src/config.h");
    let before = fs::symlink_metadata(&cfg).unwrap();
    let mut data = fs::read(&cfg).unwrap();
    data[0] ^= 1;
    fs::write(&cfg, &data).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        set_mtime(&cfg, before.mtime(), before.mtime_nsec() as u32);
    }
    let l = sb.snapshot(&mut wb, LayerMeta::default()).unwrap();
    assert_eq!(l.files_hashed, 1);
    assert_eq!(l.roots["build"].changed, 1);
    assert_eq!(
        sb.state().root("build")[&RelPath::new("src/config.h").unwrap()].blob(),
        Some(ContentHash::of(&data))
    );
    wb.finish().unwrap();
    open_verified(&b_dir);
}

/// A patched content imported with a further rewrite is patched over the same base (the
/// earlier patch's regions with the new ones laid over them), never a patch of a patch; an
/// import that rewrites nothing brings the base along with the patch.
#[test]
fn a_patched_content_imported_again_stays_a_patch_of_the_first_base() {
    let t = TempDir::new("repatch");
    let root = t.path().join("build");
    fs::create_dir(&root).unwrap();
    build_tree(&root);
    let a_dir = t.path().join("ck-a");
    let mut wa = CheckpointWriter::create(&a_dir).unwrap();
    let mut sa = Snapshotter::new(vec![("build".into(), root.clone())]).unwrap();
    sa.snapshot(&mut wa, LayerMeta::default()).unwrap();
    wa.finish().unwrap();
    let ck_a = Checkpoint::open(&a_dir).unwrap();
    let big = RelPath::new("big.bin").unwrap();
    let original = ck_a.state_after(0).unwrap().root("build")[&big]
        .blob()
        .unwrap();

    let import = |from: &Checkpoint, name: &str, rw: &[RewritePair]| {
        let dir = t.path().join(name);
        let mut w = CheckpointWriter::create(&dir).unwrap();
        let state = w.import_layers_rewritten(from, 0, rw).unwrap();
        w.finish().unwrap();
        let ck = Checkpoint::open(&dir).unwrap();
        assert_eq!(ck.verify().unwrap().unreferenced_blobs, 0, "{name}");
        let h = state.root("build")[&big].blob().unwrap();
        (ck, dir, h)
    };
    let (ck_b, _, h_b) = import(&ck_a, "ck-b", &rewrites());
    // A third hash for `out`, once more the length of the others.
    let newer = "00000000001111111111222222222233";
    let again = vec![(out_path(H_OUT_NEW), out_path(newer))];
    let (ck_c, c_dir, h_c) = import(&ck_b, "ck-c", &again);
    let patch = ck_c.blobs().patch_of(&h_c).unwrap().expect("patched");
    assert_eq!(patch.base, original, "patched over the first base");
    assert_eq!(patch_bases(&ck_c), [original].into_iter().collect());
    let want = Rewrites::new(&again)
        .unwrap()
        .apply(
            &ck_b
                .blobs()
                .read_expecting(&h_b, Expect::Exactly(5 << 20))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        ck_c.blobs()
            .read_expecting(&h_c, Expect::Exactly(5 << 20))
            .unwrap(),
        want
    );
    for (place, bytes) in checkpoint_bytes(&c_dir) {
        for gone in [out_path(H_OUT_OLD), out_path(H_OUT_NEW)] {
            assert!(!contains(&bytes, &gone), "{place}");
        }
    }
    // Imported without rewriting: the patch and its base, byte for byte.
    let (ck_d, _, h_d) = import(&ck_b, "ck-d", &[]);
    assert_eq!(h_d, h_b);
    for h in [h_b, original] {
        assert_eq!(
            ck_b.blobs().stored_bytes(&h).unwrap(),
            ck_d.blobs().stored_bytes(&h).unwrap()
        );
    }
}

#[test]
fn rewriting_nothing_is_a_verbatim_import() {
    let t = TempDir::new("rewrite-id");
    let root = t.path().join("build");
    fs::create_dir(&root).unwrap();
    build_tree(&root);
    let a_dir = t.path().join("a");
    let mut wa = CheckpointWriter::create(&a_dir).unwrap();
    let mut sa = Snapshotter::new(vec![("build".into(), root.clone())]).unwrap();
    sa.snapshot(&mut wa, LayerMeta::default()).unwrap();
    fs::write(root.join("src/plain.c"), b"int y;\n").unwrap();
    sa.snapshot(&mut wa, LayerMeta::default()).unwrap();
    wa.finish().unwrap();
    let ck = open_verified(&a_dir);
    let verbatim = t.path().join("v");
    let mut wv = CheckpointWriter::create(&verbatim).unwrap();
    wv.import_layer(&ck, 0).unwrap();
    wv.import_layer(&ck, 1).unwrap();
    wv.finish().unwrap();
    for (i, pairs) in [
        vec![],
        vec![(b"absent-string".to_vec(), b"other-string!".to_vec())],
    ]
    .into_iter()
    .enumerate()
    {
        let dir = t.path().join(format!("r{i}"));
        let mut w = CheckpointWriter::create(&dir).unwrap();
        let st = w.import_layers_rewritten(&ck, 1, &pairs).unwrap();
        w.finish().unwrap();
        assert_eq!(st, ck.state_after(1).unwrap());
        for f in ["index.json", "layers/000-.json", "layers/001-.json"] {
            assert_eq!(
                fs::read(verbatim.join(f)).unwrap(),
                fs::read(dir.join(f)).unwrap(),
                "{f}"
            );
        }
        assert_eq!(
            Checkpoint::open(&verbatim).unwrap().blobs().hashes(),
            Checkpoint::open(&dir).unwrap().blobs().hashes()
        );
    }
}

/// The files staged in the staging directory `dir` by the hash of their contents, and how
/// many of its subdirectories hold some (it holds nothing else).
fn staged_contents(dir: &Path) -> (BTreeMap<String, PathBuf>, usize) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let want: Vec<String> = (0..super::staging::SHARDS).map(|i| i.to_string()).collect();
    assert_eq!(names, want);
    let mut hashes = BTreeMap::new();
    let mut used = 0;
    for shard in names {
        let files: Vec<_> = fs::read_dir(dir.join(shard))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        used += usize::from(!files.is_empty());
        for f in files {
            hashes.insert(ContentHash::of(&fs::read(&f).unwrap()).to_hex(), f);
        }
    }
    (hashes, used)
}

fn staging_leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(super::staging::STAGING_PREFIX))
        .collect()
}

/// Regular files with more than one name that are not hardlinked in `d` (a staged file still
/// linked from the staging directory).
fn extra_links(root: &Path, d: &BTreeMap<Vec<u8>, Desc>) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    d.iter()
        .filter(|(k, v)| v.kind == "file" && v.group.is_none() && !k.is_empty())
        .filter(|(k, _)| {
            fs::symlink_metadata(root.join(OsStr::from_bytes(k)))
                .unwrap()
                .nlink()
                != 1
        })
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect()
}

#[test]
fn a_staged_import_restores_each_content_once_and_the_same() {
    let t = TempDir::new("staged");
    let root = t.path().join("build");
    let out = t.path().join("out");
    fs::create_dir(&root).unwrap();
    build_tree(&root);
    let old_out = out_path(H_OUT_OLD);
    // The earlier build: a content replaced by its second layer (never restored), one used
    // twice in the build directory and once more in an output (copies), a rewritten large one
    // in the output.
    let a_dir = t.path().join("ck-a");
    let mut wa = CheckpointWriter::create(&a_dir).unwrap();
    let mut sa = Snapshotter::new(vec![
        ("build".into(), root.clone()),
        ("out".into(), out.clone()),
    ])
    .unwrap();
    sa.snapshot(&mut wa, LayerMeta::default()).unwrap();
    fs::write(root.join("src/plain.c"), b"int configured;\n").unwrap();
    fs::write(root.join("src/again.c"), b"int configured;\n").unwrap();
    fs::create_dir_all(out.join("lib")).unwrap();
    fs::copy(root.join("big-clean.bin"), out.join("lib/clean.bin")).unwrap();
    fs::copy(root.join("big.bin"), out.join("lib/big.bin")).unwrap();
    fs::write(out.join("lib/ro"), cat(&[b"prefix=", &old_out, b"\n"])).unwrap();
    fs::set_permissions(out.join("lib/ro"), fs::Permissions::from_mode(0o444)).unwrap();
    sa.snapshot(&mut wa, LayerMeta::default()).unwrap();
    wa.finish().unwrap();
    let ck_a = open_verified(&a_dir);

    // Unstaged: import, then restore from the new checkpoint.
    let u_dir = t.path().join("ck-u");
    let mut wu = CheckpointWriter::create(&u_dir).unwrap();
    let st_u = wu.import_layers_rewritten(&ck_a, 1, &rewrites()).unwrap();
    wu.finish().unwrap();
    let ck_u = open_verified(&u_dir);
    let (ub, uo) = (t.path().join("u-build"), t.path().join("u-out"));
    fs::create_dir(&ub).unwrap();
    ck_u.restore_state_into(st_u.root("build"), &ub).unwrap();
    ck_u.restore_state(st_u.root("out"), &uo).unwrap();

    // Staged: the import leaves the contents in the build directory (which holds junk), the
    // restores link or copy them into place.
    let s_dir = t.path().join("ck-s");
    let mut ws = CheckpointWriter::create(&s_dir).unwrap();
    let (sb, so) = (t.path().join("s-build"), t.path().join("s-out"));
    fs::create_dir(&sb).unwrap();
    fs::write(sb.join("junk"), b"junk").unwrap();
    ws.stage_in(&sb).unwrap();
    let st_s = ws.import_layers_rewritten(&ck_a, 1, &rewrites()).unwrap();
    assert_eq!(st_s, st_u);
    let staged = sb.join(staging_leftovers(&sb).pop().unwrap());
    // Every content of the final state, the replaced `int x;` not.
    let contents: std::collections::BTreeSet<_> = ["build", "out"]
        .iter()
        .flat_map(|r| st_s.root(r).values().filter_map(|e| e.blob()))
        .map(|h| h.to_hex())
        .collect();
    let (staged_hashes, shards_used) = staged_contents(&staged);
    assert!(staged_hashes.keys().eq(contents.iter()));
    assert!(shards_used > 1, "{} contents in one shard", contents.len());
    let rb = ws.restore_state_into(st_s.root("build"), &sb).unwrap();
    let ro = ws.restore_state(st_s.root("out"), &so).unwrap();
    assert_eq!(staging_leftovers(&sb).len(), 1, "the restore keeps it");
    ws.end_staging().unwrap();
    assert!(staging_leftovers(&sb).is_empty());
    ws.finish().unwrap();
    open_verified(&s_dir);
    assert!(rb.files_written > 0 && ro.files_written > 0);

    // Same trees, same checkpoint bytes, and no file keeps a second name.
    assert_same(&describe(&ub), &describe(&sb));
    assert_same(&describe(&uo), &describe(&so));
    assert!(extra_links(&sb, &describe(&sb)).is_empty());
    assert!(extra_links(&so, &describe(&so)).is_empty());
    let blobs = |dir: &Path| {
        let ck = Checkpoint::open(dir).unwrap();
        let hashes = ck.blobs().hashes();
        let stored: Vec<_> = hashes
            .iter()
            .map(|h| ck.blobs().stored_bytes(h).unwrap())
            .collect();
        (hashes, stored)
    };
    assert!(
        blobs(&u_dir) == blobs(&s_dir),
        "the same blobs, stored alike"
    );
    for rel in ["index.json", "layers/000-.json", "layers/001-.json"] {
        assert_eq!(
            fs::read(u_dir.join(rel)).unwrap(),
            fs::read(s_dir.join(rel)).unwrap(),
            "{rel}"
        );
    }
    for e in fs::read_dir(u_dir.join("packs")).unwrap() {
        let name = e.unwrap().file_name();
        assert_eq!(
            fs::read(u_dir.join("packs").join(&name)).unwrap(),
            fs::read(s_dir.join("packs").join(&name)).unwrap(),
            "{name:?}"
        );
    }

    // In place: a live tree in the state after layer 0 brought to the state after layer 1
    // with the contents staged by the import of that state.
    let mut wi = CheckpointWriter::create(&t.path().join("ck-i")).unwrap();
    let st0 = wi.import_layers_rewritten(&ck_a, 0, &rewrites()).unwrap();
    let (ib, io) = (t.path().join("i-build"), t.path().join("i-out"));
    fs::create_dir(&ib).unwrap();
    wi.restore_state_into(st0.root("build"), &ib).unwrap();
    wi.stage_in(&ib).unwrap();
    let want = wi
        .import_state_rewritten(&ck_a, 1, &rewrites(), &[])
        .unwrap();
    assert_eq!(want, st_u);
    let staged = ib.join(staging_leftovers(&ib).pop().unwrap());
    let fresh = staged_contents(&staged).0;
    let configured = ContentHash::of(b"int configured;\n").to_hex();
    assert!(fresh.contains_key(&configured), "{fresh:?}");
    let rep = wi
        .apply_state_over(st0.root("build"), want.root("build"), &ib)
        .unwrap();
    assert!(rep.files_written >= 2);
    wi.restore_state(want.root("out"), &io).unwrap();
    wi.end_staging().unwrap();
    assert!(staging_leftovers(&ib).is_empty());
    assert_same(&describe(&ub), &describe(&ib));
    assert_same(&describe(&uo), &describe(&io));
    assert!(extra_links(&ib, &describe(&ib)).is_empty());

    // A state that uses the staging directory's name is refused before anything is written.
    let target = t.path().join("named");
    fs::create_dir(&target).unwrap();
    let mut wn = CheckpointWriter::create(&t.path().join("ck-n")).unwrap();
    wn.stage_in(&target).unwrap();
    let st_n = wn.import_layers_rewritten(&ck_a, 1, &rewrites()).unwrap();
    let name = staging_leftovers(&target).pop().unwrap();
    let mut hostile = st_n.root("build").clone();
    let file = hostile[&RelPath::new("src/plain.c").unwrap()].clone();
    // Reads of a staged content come from its staged file, whichever subdirectory holds it:
    // one changed behind the writer's back shows through.
    let plain = file.blob().unwrap();
    let staged_plain = &staged_contents(&target.join(&name)).0[&plain.to_hex()];
    fs::write(staged_plain, b"changed behind its back\n").unwrap();
    assert_eq!(
        wn.read_content(&plain).unwrap(),
        b"changed behind its back\n"
    );
    let mut streamed = Vec::new();
    wn.stream_content(&plain, &mut |c| {
        streamed.extend_from_slice(c);
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(streamed, b"changed behind its back\n");
    hostile.insert(RelPath::new(name.as_bytes()).unwrap(), file);
    let err = wn.restore_state_into(&hostile, &target).unwrap_err();
    assert!(
        matches!(err, CheckpointError::UnsafeRestore { .. }),
        "{err}"
    );
    assert_eq!(fs::read_dir(&target).unwrap().count(), 1);
    drop(wn);
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "removed on drop");

    // A corrupt blob stops the staged import; nothing is left staged.
    let h = ck_a.state_after(1).unwrap().root("out")[&RelPath::new("lib/ro").unwrap()]
        .blob()
        .unwrap();
    damage_blob(&ck_a, &h, 0x20);
    let c_dir = t.path().join("ck-c");
    let mut wc = CheckpointWriter::create(&c_dir).unwrap();
    let cb = t.path().join("c-build");
    fs::create_dir(&cb).unwrap();
    wc.stage_in(&cb).unwrap();
    let err = wc
        .import_layers_rewritten(&ck_a, 1, &rewrites())
        .unwrap_err();
    assert!(matches!(err, CheckpointError::BlobCorrupt { .. }), "{err}");
    wc.end_staging().unwrap();
    assert_eq!(fs::read_dir(&cb).unwrap().count(), 0);
}

// ------------------------------------------------------------------------------------
// Restoring into a directory that stays in place.

fn snapshot_once(root: &Path, ck_dir: &Path) -> (Checkpoint, State) {
    let mut w = CheckpointWriter::create(ck_dir).unwrap();
    let mut s = Snapshotter::new(vec![("build".into(), root.to_owned())]).unwrap();
    s.snapshot(&mut w, LayerMeta::default()).unwrap();
    w.finish().unwrap();
    let ck = open_verified(ck_dir);
    let st = ck.state_after(0).unwrap();
    (ck, st)
}

fn hidden_leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".checkpoint-restore-"))
        .collect()
}

#[test]
fn restore_into_an_existing_directory() {
    let t = TempDir::new("into");
    let root = t.path().join("build");
    let xa = generate(&root);
    let (ck, st) = snapshot_once(&root, &t.path().join("ck"));
    let want = describe(&root);

    // A target full of things in the way, one of them a symlink to outside.
    let target = t.path().join("mnt");
    let outside = t.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep"), b"keep").unwrap();
    fs::create_dir_all(target.join("rojunk/sub")).unwrap();
    fs::write(target.join("rojunk/sub/f"), b"f").unwrap();
    fs::set_permissions(target.join("rojunk/sub"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(target.join("rojunk"), fs::Permissions::from_mode(0o500)).unwrap();
    fs::write(target.join("src"), b"a file where a directory goes").unwrap();
    fs::create_dir(target.join(".checkpoint-restore-1-0")).unwrap();
    symlink(&outside, target.join("escape")).unwrap();
    symlink(&outside, target.join("to-dir")).unwrap();
    if xa {
        xattr::set(&target, "user.junk", b"old").unwrap();
    }
    fs::set_permissions(&target, fs::Permissions::from_mode(0o500)).unwrap();
    let target_ino = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&target).unwrap().ino()
    };

    let rep = ck.restore_state_into(st.root("build"), &target).unwrap();
    assert!(rep.root_present && rep.skipped.is_empty());
    assert_eq!(rep.setid_cleared, [RelPath::new("setgid").unwrap()]);
    assert_same(&without_setid(&want), &describe(&target));
    assert!(hidden_leftovers(&target).is_empty());
    assert_eq!(fs::read(outside.join("keep")).unwrap(), b"keep");
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(&target).unwrap().ino(),
            target_ino,
            "same directory"
        );
    }

    // A corrupt blob: refused before anything of the target is touched.
    let h = st.root("build")[&RelPath::new("src/lib.c").unwrap()]
        .blob()
        .unwrap();
    damage_blob(&ck, &h, 0x20);
    let before = describe(&target);
    let err = ck
        .restore_state_into(st.root("build"), &target)
        .unwrap_err();
    assert!(matches!(err, CheckpointError::BlobCorrupt { .. }), "{err}");
    assert_same(&before, &describe(&target));
    assert!(hidden_leftovers(&target).is_empty());

    // Nothing to restore into a directory that must stay, or a file as the target.
    let err = ck
        .restore_state_into(&RootState::new(), &target)
        .unwrap_err();
    assert!(
        matches!(err, CheckpointError::UnsafeRestore { .. }),
        "{err}"
    );
    assert_same(&before, &describe(&target));
    let file = t.path().join("file");
    fs::write(&file, b"").unwrap();
    assert!(matches!(
        ck.restore_state_into(st.root("build"), &file),
        Err(CheckpointError::TargetNotUsable { .. })
    ));
}

// ------------------------------------------------------------------------------------
// Scanning and overlaying.

#[test]
fn scan_root_matches_a_snapshot() {
    let t = TempDir::new("scan");
    let root = t.path().join("build");
    generate(&root);
    let (_, st) = snapshot_once(&root, &t.path().join("ck"));
    assert_eq!(&scan_root(&root, &[]).unwrap(), st.root("build"));
    let without = scan_root(&root, &[RelPath::new("src").unwrap()]).unwrap();
    assert!(without
        .keys()
        .all(|p| !p.starts_with(&RelPath::new("src").unwrap())));
    assert_eq!(without.len() + 3, st.root("build").len());
    assert!(scan_root(&t.path().join("absent"), &[]).unwrap().is_empty());
    assert!(scan_root(&root, &[RelPath::root()]).is_err());
    assert_eq!(max_mtime(st.root("build")), st.max_mtime());
}

/// A small source tree with every kind of change to come; mtimes from `base`.
fn source_tree(root: &Path, base: i64) {
    let w = |rel: &str, data: &[u8]| {
        let f = root.join(rel);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, data).unwrap();
    };
    w("a.c", b"one");
    w("b.c", b"bee");
    w("del.c", b"gone");
    w(
        "bin.dat",
        &(0..=255u8).cycle().take(3000).collect::<Vec<_>>(),
    );
    symlink("a.c", root.join("link")).unwrap();
    w("mode.sh", b"#!/bin/sh\n");
    fs::set_permissions(root.join("mode.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    w("f2d", b"a file that becomes a directory");
    w("d2f/x", b"in a directory that becomes a file");
    w("sub/keep.c", b"keep");
    w("sub/ch.c", b"ch");
    w("rodir/r.c", b"r");
    stamp(root, base);
    fs::set_permissions(root.join("rodir"), fs::Permissions::from_mode(0o555)).unwrap();
}

/// Stores the content of every regular file below `root` as a blob of `writer`.
fn store_files(writer: &CheckpointWriter, root: &Path) {
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            store_files(writer, &entry.path());
        } else if ft.is_file() {
            writer.blobs().put_file(&entry.path()).unwrap();
        }
    }
}

/// Distinct mtimes `base + i` on every path, directories last.
fn stamp(root: &Path, base: i64) {
    let all: Vec<Vec<u8>> = describe(root).into_keys().collect();
    for (i, rel) in all.iter().enumerate().rev() {
        set_mtime(&root.join(OsStr::from_bytes(rel)), base + i as i64, 0);
    }
}

fn ts((s, ns): (i64, i64)) -> Timestamp {
    Timestamp {
        sec: s,
        nsec: ns as u32,
    }
}

#[test]
fn overlay_brings_source_changes_with_newer_mtimes() {
    let t = TempDir::new("overlay");
    let old_src = t.path().join("old");
    let new_src = t.path().join("new");
    let target = t.path().join("target");
    source_tree(&old_src, 1_500_000_000);
    source_tree(&new_src, 1_500_000_000);
    // The restored tree after buildPhase: the old sources plus build products.
    source_tree(&target, 1_500_000_000);
    fs::set_permissions(target.join("rodir"), fs::Permissions::from_mode(0o755)).unwrap();
    for (f, i) in [
        ("a.o", 1),
        ("sub/keep.o", 2),
        ("d2f/x.o", 3),
        ("rodir/r.o", 4),
    ] {
        fs::write(target.join(f), b"object").unwrap();
        set_mtime(&target.join(f), 1_600_000_000 + i, 0);
    }
    stamp(&target, 1_550_000_000);
    fs::set_permissions(target.join("rodir"), fs::Permissions::from_mode(0o555)).unwrap();
    let old = scan_root(&old_src, &[]).unwrap();

    // This build's sources.
    let n = &new_src;
    fs::write(n.join("a.c"), b"ONE").unwrap();
    set_mtime(&n.join("a.c"), 1_400_000_000, 0);
    fs::write(n.join("new.c"), b"new").unwrap();
    fs::create_dir(n.join("newdir")).unwrap();
    fs::write(n.join("newdir/n.c"), b"n").unwrap();
    fs::remove_file(n.join("del.c")).unwrap();
    let mut bin = fs::read(n.join("bin.dat")).unwrap();
    bin[1000] ^= 0xff;
    fs::write(n.join("bin.dat"), bin).unwrap();
    fs::remove_file(n.join("link")).unwrap();
    symlink("b.c", n.join("link")).unwrap();
    fs::set_permissions(n.join("mode.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(n.join("f2d")).unwrap();
    fs::create_dir(n.join("f2d")).unwrap();
    fs::write(n.join("f2d/inner"), b"inner").unwrap();
    fs::remove_dir_all(n.join("d2f")).unwrap();
    fs::write(n.join("d2f"), b"now a file").unwrap();
    fs::set_permissions(n.join("rodir"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(n.join("rodir/r.c"), b"R").unwrap();
    fs::set_permissions(n.join("rodir"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::write(n.join("sub/ch.c"), b"CH").unwrap();
    set_mtime(&n.join("sub/ch.c"), 1_900_000_000, 5);
    // Same content, another mtime (a fresh unpack): the restored mtime must win.
    set_mtime(&n.join("b.c"), 1_700_000_000, 0);
    set_mtime(&n.join("sub/keep.c"), 1_700_000_000, 0);
    let new = scan_root(n, &[]).unwrap();

    // A build product hardlinked to a source file that changes: the link must go.
    fs::hard_link(target.join("a.c"), target.join("a.c.bak")).unwrap();
    let before = describe(&target);
    let restored = scan_root(&target, &[]).unwrap();
    let min = max_mtime(&restored).unwrap();
    // The same overlay computed as a state, and brought about in place on a copy of the new
    // tree (what an incremental build does), must give exactly what the overlay on disk gives.
    let (computed, computed_report) = overlay_state(&old, &new, &restored, min).unwrap();
    let ck = t.path().join("ck");
    let writer = CheckpointWriter::create(&ck).unwrap();
    store_files(&writer, &target);
    store_files(&writer, n);
    let live = t.path().join("live");
    writer.restore_state(&new, &live).unwrap();
    assert_eq!(scan_root(&live, &[]).unwrap(), new);
    writer.apply_state_over(&new, &computed, &live).unwrap();
    assert_eq!(scan_root(&live, &[]).unwrap(), computed);

    let rep = overlay_changes(&old, &new, n, &target, min).unwrap();
    assert_eq!(computed_report, rep);
    assert_eq!(scan_root(&target, &[]).unwrap(), computed);
    let changes: Vec<(&str, OverlayChange)> = rep
        .changes
        .iter()
        .map(|(p, c)| (std::str::from_utf8(p.as_bytes()).unwrap(), *c))
        .collect();
    use OverlayChange::*;
    assert_eq!(
        changes,
        vec![
            ("a.c", Content),
            ("bin.dat", Content),
            ("d2f", Kind),
            ("d2f/x", Removed),
            ("del.c", Removed),
            ("f2d", Kind),
            ("f2d/inner", Added),
            ("link", Content),
            ("mode.sh", Mode),
            ("new.c", Added),
            ("newdir", Added),
            ("newdir/n.c", Added),
            ("rodir/r.c", Content),
            ("sub/ch.c", Content),
        ]
    );
    assert_eq!(
        (rep.added, rep.removed, rep.changed, rep.mode_changed),
        (4, 2, 7, 1)
    );

    let after = describe(&target);
    let new_desc = describe(n);
    let floor = Timestamp {
        sec: min.sec + 1,
        nsec: min.nsec,
    };
    for (k, want) in &new_desc {
        let got = &after[k];
        let name = String::from_utf8_lossy(k);
        assert_eq!(
            (got.kind, got.mode, got.content, &got.target),
            (want.kind, want.mode, want.content, &want.target),
            "{name}"
        );
        let changed = rep.changes.iter().any(|(p, _)| p.as_bytes() == &k[..]);
        if changed {
            assert!(
                ts(got.mtime) > min,
                "{name} must be newer than the restored tree"
            );
            assert_eq!(ts(got.mtime), floor.max(ts(want.mtime)), "{name}");
        } else if !k.is_empty() {
            assert_eq!(
                got.mtime, before[k].mtime,
                "{name} keeps its restored mtime"
            );
        }
    }
    // Build products stay unless their directory went away.
    for k in ["a.o", "sub/keep.o", "rodir/r.o"] {
        assert_eq!(after[k.as_bytes()], before[k.as_bytes()], "{k}");
    }
    for k in ["d2f/x.o", "del.c", "d2f/x"] {
        assert!(!after.contains_key(k.as_bytes()), "{k}");
    }
    // Directories: a changed entry list bumps, changes inside do not.
    assert_eq!(
        ts(after[&b""[..]].mtime),
        floor.max(ts(new_desc[&b""[..]].mtime))
    );
    for d in ["sub", "rodir"] {
        assert_eq!(after[d.as_bytes()].mtime, before[d.as_bytes()].mtime, "{d}");
    }
    assert_eq!(after[&b"rodir"[..]].mode, 0o555);
    // Overlaying again changes nothing that was not already right.
    let again = scan_root(&target, &[]).unwrap();
    let rep2 = overlay_changes(&new, &new, n, &target, min).unwrap();
    assert!(rep2.changes.is_empty());
    assert_eq!(scan_root(&target, &[]).unwrap(), again);
}

#[test]
fn overlay_never_writes_through_symlinks_and_checks_sources() {
    let t = TempDir::new("overlay-safe");
    let old_src = t.path().join("old");
    let new_src = t.path().join("new");
    let outside = t.path().join("outside");
    fs::create_dir_all(old_src.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let old = scan_root(&old_src, &[]).unwrap();
    fs::create_dir_all(new_src.join("sub")).unwrap();
    fs::write(new_src.join("sub/n"), b"n").unwrap();
    fs::create_dir(new_src.join("newdir")).unwrap();
    fs::write(new_src.join("newdir/m"), b"m").unwrap();
    let new = scan_root(&new_src, &[]).unwrap();
    let min = Timestamp::default();

    // An added directory with a symlink in its place: the symlink is replaced.
    let target = t.path().join("t1");
    fs::create_dir_all(target.join("sub")).unwrap();
    symlink(&outside, target.join("newdir")).unwrap();
    overlay_changes(&old, &new, &new_src, &target, min).unwrap();
    assert!(fs::symlink_metadata(target.join("newdir"))
        .unwrap()
        .is_dir());
    assert_eq!(fs::read(target.join("newdir/m")).unwrap(), b"m");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);

    // An unchanged directory swapped for a symlink on disk: refused, nothing written.
    let target = t.path().join("t2");
    fs::create_dir_all(&target).unwrap();
    symlink(&outside, target.join("sub")).unwrap();
    let err = overlay_changes(&old, &new, &new_src, &target, min).unwrap_err();
    assert!(
        matches!(err, CheckpointError::UnsafeRestore { .. }),
        "{err}"
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);

    // A source that no longer matches its scan.
    let target = t.path().join("t3");
    fs::create_dir_all(target.join("sub")).unwrap();
    fs::write(new_src.join("sub/n"), b"N").unwrap();
    let err = overlay_changes(&old, &new, &new_src, &target, min).unwrap_err();
    assert!(
        matches!(err, CheckpointError::SourceChanged { .. }),
        "{err}"
    );
}

// ------------------------------------------------------------------------------------
// New contents stored from the base checkpoint's blobs.

/// The prior build's files (`v == 1`) or this build's (`v == 2`): `big.bin` (streamed) and
/// `lib.a` (read into memory) differ in the output path they name, `moved/same.bin` is what
/// `same.bin` held, `grown.bin` is longer, `noise.bin` is as long but differs throughout.
fn prior_tree(root: &Path, v: u8) {
    if root.exists() {
        fs::remove_dir_all(root).unwrap();
    }
    fs::create_dir_all(root.join("moved")).unwrap();
    let out = out_path(if v == 1 { H_OUT_OLD } else { H_OUT_NEW });
    let big = cat(&[
        &pseudo_random(3 << 20, 11),
        &out,
        &pseudo_random(3 << 20, 12),
        &out,
    ]);
    fs::write(root.join("big.bin"), big).unwrap();
    let lib = cat(&[&pseudo_random(40_000, 13), &out, &pseudo_random(9_000, 14)]);
    fs::write(root.join("lib.a"), lib).unwrap();
    let same = pseudo_random(200_000, 15);
    fs::write(
        root.join(if v == 1 { "same.bin" } else { "moved/same.bin" }),
        same,
    )
    .unwrap();
    fs::write(
        root.join("grown.bin"),
        pseudo_random(50_000 + usize::from(v), 16),
    )
    .unwrap();
    fs::write(
        root.join("noise.bin"),
        pseudo_random(60_000, u64::from(v) * 100),
    )
    .unwrap();
}

/// A checkpoint in `dir` of `root` as it is, storing new contents against `prior` when
/// given.
fn snapshot_against(root: &Path, dir: &Path, prior: Option<&Checkpoint>) -> (Checkpoint, State) {
    let mut w = CheckpointWriter::create(dir).unwrap();
    let mut s = Snapshotter::new(vec![("build".into(), root.to_owned())]).unwrap();
    if let Some(p) = prior {
        s.store_against(Some(super::snapshot::PriorTrees::of(p).unwrap()));
    }
    s.snapshot(&mut w, LayerMeta::default()).unwrap();
    w.finish().unwrap();
    let ck = open_verified(dir);
    let st = ck.state_after(0).unwrap();
    (ck, st)
}

fn blob_at(st: &State, path: &str) -> ContentHash {
    st.root("build")[&RelPath::new(path).unwrap()]
        .blob()
        .unwrap()
}

/// Each of `paths` reads back from `ck` (state `st`) as the file under `root` holds it.
fn assert_read_back(ck: &Checkpoint, st: &State, root: &Path, paths: &[&str]) {
    for p in paths {
        let want = fs::read(root.join(p)).unwrap();
        let got = ck
            .blobs()
            .read_expecting(&blob_at(st, p), Expect::Exactly(want.len() as u64))
            .unwrap();
        assert!(got == want, "{} {p}", ck.dir().display());
    }
}

#[test]
fn new_contents_are_copied_or_patched_from_the_prior_checkpoint() {
    let t = TempDir::new("prior");
    let root = t.path().join("build");
    prior_tree(&root, 1);
    let (ck_a, st_a) = snapshot_against(&root, &t.path().join("ck-a"), None);
    prior_tree(&root, 2);
    let b_dir = t.path().join("ck-b");
    let (ck_b, st_b) = snapshot_against(&root, &b_dir, Some(&ck_a));

    // Every content reads back as the file it was taken from.
    let all = [
        "big.bin",
        "lib.a",
        "moved/same.bin",
        "grown.bin",
        "noise.bin",
    ];
    assert_read_back(&ck_b, &st_b, &root, &all);
    // The same content, elsewhere: its stored bytes copied.
    let same = blob_at(&st_b, "moved/same.bin");
    assert_eq!(same, blob_at(&st_a, "same.bin"));
    assert_eq!(
        ck_b.blobs().stored_bytes(&same).unwrap(),
        ck_a.blobs().stored_bytes(&same).unwrap()
    );
    // A few bytes apart at the same path, streamed or from memory: a patch over the prior
    // content, which comes along.
    for p in ["big.bin", "lib.a"] {
        let patch = ck_b.blobs().patch_of(&blob_at(&st_b, p)).unwrap();
        assert_eq!(patch.map(|p| p.base), Some(blob_at(&st_a, p)), "{p}");
    }
    assert_eq!(
        patch_bases(&ck_b),
        [blob_at(&st_a, "big.bin"), blob_at(&st_a, "lib.a")]
            .into_iter()
            .collect()
    );
    // Longer, or as long and different throughout: stored whole.
    for p in ["grown.bin", "noise.bin"] {
        assert!(
            ck_b.blobs().patch_of(&blob_at(&st_b, p)).unwrap().is_none(),
            "{p}"
        );
    }
    // The old output path stands only in the bases, masked.
    for (place, bytes) in checkpoint_bytes(&b_dir) {
        assert!(!contains(&bytes, &out_path(H_OUT_OLD)), "{place}");
    }
}

#[test]
fn a_prior_blob_that_lies_is_not_used() {
    let t = TempDir::new("prior-lies");
    let root = t.path().join("build");
    prior_tree(&root, 1);
    let (ck_a, st_a) = snapshot_against(&root, &t.path().join("ck-a"), None);
    // The prior's contents at the paths that would be patched are damaged, and it claims
    // this build's `moved/same.bin` and `noise.bin` for other bytes.
    damage_blob(&ck_a, &blob_at(&st_a, "big.bin"), 0x01);
    damage_blob(&ck_a, &blob_at(&st_a, "lib.a"), 0x01);
    prior_tree(&root, 2);
    let claimed =
        ["noise.bin", "moved/same.bin"].map(|p| ContentHash::of(&fs::read(root.join(p)).unwrap()));
    let forged = t.path().join("ck-forged");
    {
        let mut w = CheckpointWriter::create(&forged).unwrap();
        for h in claimed {
            w.blobs()
                .put_stored(h, &pseudo_random(60_000, 7), super::manifest::Encoding::Raw)
                .unwrap();
        }
        w.write_layer(&super::manifest::Layer {
            index: 0,
            meta: LayerMeta::default(),
            roots: BTreeMap::new(),
            blobs: Vec::new(),
        })
        .unwrap();
        w.finish().unwrap();
    }
    for (name, prior) in [
        ("ck-b", &ck_a),
        ("ck-c", &Checkpoint::open(&forged).unwrap()),
    ] {
        let (ck, st) = snapshot_against(&root, &t.path().join(name), Some(prior));
        let paths = ["big.bin", "lib.a", "moved/same.bin", "noise.bin"];
        assert_read_back(&ck, &st, &root, &paths);
        for p in paths {
            let h = blob_at(&st, p);
            assert!(ck.blobs().patch_of(&h).unwrap().is_none(), "{name} {p}");
        }
        assert_eq!(ck.verify().unwrap().unreferenced_blobs, 0, "{name}");
    }
}

/// A tree whose contents of 1 MiB and more moved by a longer string at version `v`: the
/// string is `v` bytes longer each time, so every later byte shifts.
fn shifted_tree(root: &Path, v: usize) {
    if root.exists() {
        fs::remove_dir_all(root).unwrap();
    }
    fs::create_dir_all(root).unwrap();
    let string = vec![b'v'; 10 + v];
    let out = out_path(H_OUT_OLD);
    // Read into memory (up to 4 MiB) and streamed (beyond), each naming an output path.
    let prog = cat(&[
        &pseudo_random(1000, 21),
        &string,
        &out,
        &pseudo_random(2 << 20, 22),
    ]);
    fs::write(root.join("prog"), prog).unwrap();
    let lib = cat(&[
        &pseudo_random(5 << 20, 23),
        &string,
        &pseudo_random(1 << 20, 24),
    ]);
    fs::write(root.join("lib.a"), lib).unwrap();
    // Shifted too, but under 1 MiB; and as long as before but different throughout.
    let small = cat(&[&string, &pseudo_random(500_000, 25)]);
    fs::write(root.join("small"), small).unwrap();
    fs::write(root.join("noise"), pseudo_random(2 << 20, 26 + v as u64)).unwrap();
}

#[test]
fn shifted_contents_are_stored_as_deltas_of_the_prior_checkpoint() {
    let t = TempDir::new("delta");
    let root = t.path().join("build");
    shifted_tree(&root, 1);
    let (ck_a, st_a) = snapshot_against(&root, &t.path().join("ck-a"), None);
    shifted_tree(&root, 2);
    let (ck_b, st_b) = snapshot_against(&root, &t.path().join("ck-b"), Some(&ck_a));
    let all = ["prog", "lib.a", "small", "noise"];
    assert_read_back(&ck_b, &st_b, &root, &all);
    // Moved bytes of 1 MiB and more: a delta of the content the path held, which comes
    // along, in a few KiB.
    for p in ["prog", "lib.a"] {
        let h = blob_at(&st_b, p);
        let d = ck_b.blobs().delta_of(&h).unwrap().expect(p);
        assert_eq!(d.base, blob_at(&st_a, p), "{p}");
        let (stored, _) = ck_b.blobs().stored_bytes(&h).unwrap();
        assert!(stored.len() < 16 << 10, "{p}: {} bytes", stored.len());
    }
    for p in ["small", "noise"] {
        assert_eq!(
            ck_b.blobs().made_from(&blob_at(&st_b, p)).unwrap(),
            None,
            "{p}"
        );
    }

    // Against a prior whose content is a delta itself: a delta of that delta's base (no
    // chains), which comes along.
    shifted_tree(&root, 3);
    let (ck_c, st_c) = snapshot_against(&root, &t.path().join("ck-c"), Some(&ck_b));
    assert_read_back(&ck_c, &st_c, &root, &all);
    for p in ["prog", "lib.a"] {
        let d = ck_c.blobs().delta_of(&blob_at(&st_c, p)).unwrap().expect(p);
        assert_eq!(d.base, blob_at(&st_a, p), "{p}");
        assert!(ck_c.blobs().contains(&d.base), "{p}");
    }

    // As long as a delta's content and a few bytes apart (the output path it names): a patch
    // over the delta, which comes along with its own base.
    let mut edited = fs::read(root.join("prog")).unwrap();
    let (old, new) = (out_path(H_OUT_OLD), out_path(H_OUT_NEW));
    let at = edited.windows(old.len()).position(|w| w == old).unwrap();
    edited[at..at + new.len()].copy_from_slice(&new);
    fs::write(root.join("prog"), &edited).unwrap();
    let (ck_e, st_e) = snapshot_against(&root, &t.path().join("ck-e"), Some(&ck_c));
    assert_read_back(&ck_e, &st_e, &root, &["prog"]);
    let patch = ck_e.blobs().patch_of(&blob_at(&st_e, "prog")).unwrap();
    assert_eq!(patch.map(|p| p.base), Some(blob_at(&st_c, "prog")));
    assert_eq!(
        ck_e.blobs()
            .delta_of(&blob_at(&st_c, "prog"))
            .unwrap()
            .map(|d| d.base),
        Some(blob_at(&st_a, "prog"))
    );
    fs::write(
        root.join("prog"),
        cat(&[&edited[..at], &old, &edited[at + new.len()..]]),
    )
    .unwrap();

    // An import brings a delta's base along; one that rewrites the content stores it as a
    // patch over the delta.
    for rewrite in [false, true] {
        let dir = t.path().join(format!("ck-import-{rewrite}"));
        let mut w = CheckpointWriter::create(&dir).unwrap();
        if rewrite {
            w.import_layers_rewritten(&ck_c, 0, &rewrites()).unwrap();
        } else {
            w.import_layer(&ck_c, 0).unwrap();
        }
        w.finish().unwrap();
        let ck = open_verified(&dir);
        let st = ck.state_after(0).unwrap();
        let mut want = fs::read(root.join("prog")).unwrap();
        let prog = ck
            .blobs()
            .read_expecting(&blob_at(&st, "prog"), Expect::Exactly(want.len() as u64))
            .unwrap();
        if rewrite {
            let (old, new) = (out_path(H_OUT_OLD), out_path(H_OUT_NEW));
            let at = want.windows(old.len()).position(|w| w == old).unwrap();
            want[at..at + new.len()].copy_from_slice(&new);
            let patch = ck.blobs().patch_of(&blob_at(&st, "prog")).unwrap();
            assert_eq!(patch.map(|p| p.base), Some(blob_at(&st_c, "prog")));
        } else {
            assert_eq!(blob_at(&st, "prog"), blob_at(&st_c, "prog"));
            assert!(ck
                .blobs()
                .delta_of(&blob_at(&st, "prog"))
                .unwrap()
                .is_some());
        }
        assert!(prog == want, "rewrite {rewrite}");
    }
}

#[test]
fn a_prior_delta_or_base_that_lies_is_not_used() {
    let t = TempDir::new("delta-lies");
    let root = t.path().join("build");
    shifted_tree(&root, 1);
    let (ck_a, st_a) = snapshot_against(&root, &t.path().join("ck-a"), None);
    damage_blob(&ck_a, &blob_at(&st_a, "prog"), 0x01);
    damage_blob(&ck_a, &blob_at(&st_a, "lib.a"), 0x01);
    shifted_tree(&root, 2);
    let (ck_b, st_b) = snapshot_against(&root, &t.path().join("ck-b"), Some(&ck_a));
    let all = ["prog", "lib.a", "small", "noise"];
    assert_read_back(&ck_b, &st_b, &root, &all);
    for p in all {
        assert_eq!(
            ck_b.blobs().made_from(&blob_at(&st_b, p)).unwrap(),
            None,
            "{p}"
        );
    }
    assert_eq!(ck_b.verify().unwrap().unreferenced_blobs, 0);
}

#[test]
fn a_content_changed_between_layers_is_a_delta_of_the_previous_one_before_a_copied_base() {
    let t = TempDir::new("delta-here");
    let root = t.path().join("build");
    fs::create_dir_all(&root).unwrap();
    // The earlier checkpoint holds something else at the path.
    fs::write(root.join("prog"), pseudo_random(2 << 20, 31)).unwrap();
    let (ck_a, st_a) = snapshot_against(&root, &t.path().join("ck-a"), None);
    let unrelated = blob_at(&st_a, "prog");
    let dir = t.path().join("ck-b");
    let mut w = CheckpointWriter::create(&dir).unwrap();
    let mut s = Snapshotter::new(vec![("build".into(), root.clone())]).unwrap();
    s.store_against(Some(super::snapshot::PriorTrees::of(&ck_a).unwrap()));
    let v1 = cat(&[
        &pseudo_random(1000, 32),
        b"short",
        &pseudo_random(2 << 20, 33),
    ]);
    fs::write(root.join("prog"), &v1).unwrap();
    s.snapshot(&mut w, LayerMeta::default()).unwrap();
    // Installed and stripped, say: the bytes after the string moved.
    let v2 = cat(&[
        &pseudo_random(1000, 32),
        b"longer",
        &pseudo_random(2 << 20, 33),
    ]);
    fs::write(root.join("prog"), &v2).unwrap();
    s.snapshot(&mut w, LayerMeta::default()).unwrap();
    w.finish().unwrap();
    let ck = open_verified(&dir);
    let (h1, h2) = (ContentHash::of(&v1), ContentHash::of(&v2));
    assert_eq!(ck.blobs().made_from(&h1).unwrap(), None);
    let d = ck.blobs().delta_of(&h2).unwrap().expect("a delta");
    assert_eq!(d.base, h1);
    assert!(
        !ck.blobs().contains(&unrelated),
        "the earlier checkpoint's blob was copied"
    );
    let got = ck
        .blobs()
        .read_expecting(&h2, Expect::Exactly(v2.len() as u64))
        .unwrap();
    assert!(got == v2);
}

/// A large file (streamed, not read into memory at once) written again at its path is
/// stored as a delta of what the path held, whether it is stored as it is read or held for a
/// later store while the file changes again; one written again with a content stored already
/// is not held, and leaves the room for the next layer's new content.
#[test]
fn a_large_file_written_again_is_stored_as_a_delta_of_what_its_path_held() {
    use super::blobs::{Holding, STREAM_THRESHOLD};
    let t = TempDir::new("delta-large-again");
    let root = t.path().join("build");
    fs::create_dir_all(&root).unwrap();
    let size = STREAM_THRESHOLD as usize + (1 << 20);
    let version = |word: &[u8]| {
        cat(&[
            &pseudo_random(1000, 41),
            word,
            &pseudo_random(size - 1000, 42),
        ])
    };
    let (v1, v2, v3) = (version(b"one"), version(b"two!"), version(b"three"));
    let dir = t.path().join("ck");
    let mut w = CheckpointWriter::create(&dir).unwrap();
    let mut s = Snapshotter::new(vec![("build".into(), root.clone())]).unwrap();
    s.set_threads(1);
    fs::write(root.join("a"), &v1).unwrap();
    s.snapshot(&mut w, LayerMeta::default()).unwrap();
    // Stored as it is read (no room to hold it).
    fs::write(root.join("a"), &v2).unwrap();
    let read = s
        .read_layer(&mut w, LayerMeta::default(), &Holding::none())
        .unwrap();
    assert_eq!(read.held_bytes(), 0);
    assert!(w.blobs().contains(&ContentHash::of(&v2)));
    s.store_layer(&mut w, read, 1, None).unwrap();
    // Held, then stored; the file changes in between.
    fs::write(root.join("a"), &v3).unwrap();
    let read = s
        .read_layer(&mut w, LayerMeta::default(), &Holding::up_to(u64::MAX))
        .unwrap();
    assert_eq!(read.held_bytes(), v3.len() as u64);
    fs::write(root.join("a"), &v1).unwrap();
    s.store_layer(&mut w, read, 1, None).unwrap();
    // `a` again holds a stored content: not held, and the room is there for the next
    // layer's new path `b` with a new content.
    let v4 = version(b"four");
    let holding = Holding::up_to(v4.len() as u64);
    let read = s
        .read_layer(&mut w, LayerMeta::default(), &holding)
        .unwrap();
    assert_eq!(read.held_bytes(), 0);
    s.store_layer(&mut w, read, 1, None).unwrap();
    fs::write(root.join("b"), &v4).unwrap();
    let read = s
        .read_layer(&mut w, LayerMeta::default(), &holding)
        .unwrap();
    assert_eq!(read.held_bytes(), v4.len() as u64);
    s.store_layer(&mut w, read, 1, None).unwrap();
    w.finish().unwrap();
    let ck = open_verified(&dir);
    for (v, base) in [(&v2, Some(&v1)), (&v3, Some(&v1)), (&v4, None)] {
        let h = ContentHash::of(v);
        if let Some(base) = base {
            let d = ck.blobs().delta_of(&h).unwrap().expect("a delta");
            assert_eq!(d.base, ContentHash::of(base));
        }
        let got = ck
            .blobs()
            .read_expecting(&h, Expect::Exactly(v.len() as u64))
            .unwrap();
        assert!(got == *v);
    }
}

/// A delta's base decoded once is kept in memory for the next delta over it, whichever
/// checkpoint holds it; a copy of that checkpoint whose stored base is damaged still fails
/// verify, and does not lend its base to an import.
#[test]
fn a_base_kept_in_memory_does_not_vouch_for_another_checkpoints_stored_bytes() {
    let t = TempDir::new("delta-kept");
    let root = t.path().join("build");
    shifted_tree(&root, 1);
    let (ck_a, st_a) = snapshot_against(&root, &t.path().join("ck-a"), None);
    shifted_tree(&root, 2);
    let (ck_b, st_b) = snapshot_against(&root, &t.path().join("ck-b"), Some(&ck_a));
    let prog = blob_at(&st_b, "prog");
    let base = ck_b.blobs().delta_of(&prog).unwrap().expect("a delta").base;
    assert_eq!(base, blob_at(&st_a, "prog"));
    // The copy's base (used only through the delta) is damaged before anything reads it.
    let copy = t.path().join("ck-copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(ck_b.dir())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let damaged = Checkpoint::open(&copy).unwrap();
    damage_blob(&damaged, &base, 0x01);
    let damaged = Checkpoint::open(&copy).unwrap();
    // This process reads the delta from the intact checkpoint: its base is kept.
    let want = fs::read(root.join("prog")).unwrap();
    let got = ck_b
        .blobs()
        .read_expecting(&prog, Expect::Exactly(want.len() as u64))
        .unwrap();
    assert!(got == want);
    let err = damaged.verify().unwrap_err().to_string();
    assert!(err.contains(&base.to_hex()), "{err}");
    // An import of the delta from the damaged copy does not carry its base over unread.
    let dir = t.path().join("ck-import");
    let mut w = CheckpointWriter::create(&dir).unwrap();
    assert!(w.import_layer(&damaged, 0).is_err());
}

/// A delta's base that a read streams whole (a restore writing it) is kept in memory for the
/// deltas over it: reading a delta then does not decode the base's stored bytes again.
#[test]
fn a_delta_base_read_whole_is_kept_for_the_deltas_over_it() {
    let t = TempDir::new("delta-base-streamed");
    let root = t.path().join("build");
    shifted_tree(&root, 7);
    let (ck_a, _) = snapshot_against(&root, &t.path().join("ck-a"), None);
    shifted_tree(&root, 8);
    let (ck_b, st_b) = snapshot_against(&root, &t.path().join("ck-b"), Some(&ck_a));
    let prog = blob_at(&st_b, "prog");
    let d = ck_b.blobs().delta_of(&prog).unwrap().expect("a delta");
    super::blobs::forget_decoded_base(&d.base);
    let reader = Checkpoint::open(ck_b.dir()).unwrap();
    let base = reader
        .blobs()
        .read_expecting(&d.base, Expect::Exactly(d.base_size))
        .unwrap();
    assert_eq!(base.len() as u64, d.base_size);
    damage_blob(&reader, &d.base, 0x01);
    let want = fs::read(root.join("prog")).unwrap();
    let got = reader
        .blobs()
        .read_expecting(&prog, Expect::Exactly(want.len() as u64))
        .unwrap();
    assert!(got == want);
    // The stored base is damaged: read on its own, it is decoded and refused.
    assert!(reader
        .blobs()
        .read_expecting(&d.base, Expect::Exactly(d.base_size))
        .is_err());
}
