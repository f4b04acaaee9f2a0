//! End to end on a real checkpoint made by the engine: a second phase that deletes a file,
//! adds a hardlink to a file of the first and changes an xattr; exported twice.

use super::*;
use crate::checkpoint::testutil::TempDir;
use crate::checkpoint::{Checkpoint, CheckpointWriter, LayerMeta, Snapshotter};
use crate::meta::attachment;
use crate::shell::{Attributes, ByteString, ShellState, Value, Variable};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

fn layer_meta(w: &CheckpointWriter, name: &str, cwd: &str) -> LayerMeta {
    let state = ShellState {
        variables: vec![
            Variable {
                name: "HIDDEN".into(),
                attributes: Attributes::default(),
                value: Value::Scalar(ByteString(b"no".to_vec())),
            },
            Variable {
                name: "out".into(),
                attributes: Attributes {
                    exported: true,
                    ..Attributes::default()
                },
                value: Value::Scalar(ByteString(b"/nix/store/h-x".to_vec())),
            },
        ],
        cwd: ByteString(cwd.as_bytes().to_vec()),
        ..ShellState::default()
    };
    let s = w.put_blob(&serde_json::to_vec(&state).unwrap()).unwrap();
    let f = w.put_blob(b"").unwrap();
    LayerMeta {
        name: name.into(),
        attachments: [
            (attachment::SHELL_STATE.to_owned(), s),
            (attachment::SHELL_FUNCTIONS.to_owned(), f),
        ]
        .into_iter()
        .collect(),
        meta: serde_json::json!({ "seconds": 1.25, "status": 0 }),
    }
}

fn make_checkpoint(t: &TempDir) -> std::path::PathBuf {
    let build = t.path().join("build");
    let out = t.path().join("out");
    fs::create_dir_all(build.join("src")).unwrap();
    fs::write(build.join("src/main.c"), b"int main() { return 0; }\n").unwrap();
    fs::write(build.join("src/gone.txt"), b"deleted in phase two\n").unwrap();
    fs::write(build.join("src/a"), b"linked\n").unwrap();
    fs::hard_link(build.join("src/a"), build.join("src/b")).unwrap();
    let xattrs = xattr::set(build.join("src/main.c"), "user.mime", b"text/x-c").is_ok();
    let ck = t.path().join("ck");
    let mut w = CheckpointWriter::create(&ck).unwrap();
    w.set_meta(
        crate::meta::BuildMeta {
            builder: "checkpoint-builder test".into(),
            name: "demo".into(),
            system: Some("x86_64-linux".into()),
            outputs: vec!["out".into()],
            output_paths: [("out".into(), "/nix/store/h-x".into())].into(),
            build_top: "/build".into(),
            checkpoint_path: None,
            chain: None,
            restored_layers: Some(1),
        }
        .to_json(),
    )
    .unwrap();
    let mut s = Snapshotter::new(vec![
        ("build".into(), build.clone()),
        ("out".into(), out.clone()),
    ])
    .unwrap();
    let m = layer_meta(&w, "unpackPhase", "/build/src");
    s.snapshot(&mut w, m).unwrap();
    fs::remove_file(build.join("src/gone.txt")).unwrap();
    fs::hard_link(build.join("src/a"), build.join("src/c")).unwrap();
    if xattrs {
        xattr::set(build.join("src/main.c"), "user.mime", b"text/plain").unwrap();
    }
    fs::create_dir_all(out.join("bin")).unwrap();
    fs::write(out.join("bin/demo"), b"#!/bin/sh\n").unwrap();
    let m = layer_meta(&w, "installPhase", "/build/src");
    s.snapshot(&mut w, m).unwrap();
    let m = layer_meta(&w, "checkPhase", "/build/src");
    s.snapshot(&mut w, m).unwrap();
    w.finish().unwrap();
    ck
}

fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        m.insert(
            format!("blobs/sha256/{}", e.file_name().to_string_lossy()),
            fs::read(e.path()).unwrap(),
        );
    }
    for f in ["index.json", "oci-layout"] {
        m.insert(f.to_owned(), fs::read(dir.join(f)).unwrap());
    }
    m
}

fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

#[test]
fn export_is_deterministic_and_stacks_the_phases() {
    let t = TempDir::new("oci-export");
    let ck_dir = make_checkpoint(&t);
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let options = ExportOptions {
        upto: 2,
        tag: "latest".into(),
        compression: Compression::Gzip,
    };
    let a = t.path().join("a");
    let b = t.path().join("b");
    let report = export(&ck, &ck_dir, &a, &options).unwrap();
    export(&ck, &ck_dir, &b, &options).unwrap();
    assert_eq!(listing(&a), listing(&b), "two exports differ");
    assert!(report.layers[2].1.is_none(), "checkPhase changed nothing");

    // The config: history per phase, Env of exported variables, WorkingDir.
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&a, &report.manifest.as_ref().unwrap().digest)).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(&a, manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["out=/nix/store/h-x"])
    );
    assert_eq!(config["config"]["WorkingDir"], "/build/src");
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2]["empty_layer"], true);
    assert_eq!(history[1]["comment"], "ran in 1.250 s");
    assert_eq!(
        history[0]["comment"],
        "restored from an earlier build's checkpoint (ran there in 1.250 s)"
    );
    assert_eq!(history[0]["created_by"], "checkpoint-builder: unpackPhase");
    assert!(history[0]["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);

    // Layer two: the whiteout, the whole hardlink group, the output under /nix/store.
    let layer = blob(&a, manifest["layers"][1]["digest"].as_str().unwrap());
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let diff_id = config["rootfs"]["diff_ids"][1].as_str().unwrap();
    let mut h = blob::HashingWriter::new(std::io::sink());
    std::io::Write::write_all(&mut h, &tar_bytes).unwrap();
    assert_eq!(h.finish().1.digest, diff_id);
    let mut entries = BTreeMap::new();
    let mut archive = ::tar::Archive::new(&tar_bytes[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.to_vec()).unwrap());
        let nsec = e
            .pax_extensions()
            .unwrap()
            .into_iter()
            .flatten()
            .flatten()
            .any(|x| x.key() == Ok("mtime"));
        let header = e.header();
        assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
        entries.insert(path, (header.entry_type(), link, nsec));
    }
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert!(names.contains(&"build/src/.wh.gone.txt"), "{names:?}");
    assert!(!names.contains(&"build/src/main.c") || entries["build/src/main.c"].2);
    assert_eq!(entries["build/src/a"].0, ::tar::EntryType::Regular);
    for l in ["build/src/b", "build/src/c"] {
        assert_eq!(entries[l].0, ::tar::EntryType::Link, "{l}");
        assert_eq!(entries[l].1.as_deref(), Some("build/src/a"));
    }
    for d in ["nix/", "nix/store/", "nix/store/h-x/", "nix/store/h-x/bin/"] {
        assert_eq!(entries[d].0, ::tar::EntryType::Directory, "{d}");
    }
    assert!(
        entries["nix/store/h-x/bin/demo"].2,
        "ns mtime as a PAX record"
    );

    // A non-empty target is refused, and left alone.
    let err = export(&ck, &ck_dir, &a, &options).unwrap_err();
    assert_eq!(err.fault(), Fault::Invocation);
    assert_eq!(listing(&a), listing(&b));
}

#[test]
fn zstd_layers_have_their_media_type_and_a_failed_export_leaves_nothing() {
    let t = TempDir::new("oci-zstd");
    let ck_dir = make_checkpoint(&t);
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let dir = t.path().join("z");
    let options = ExportOptions {
        upto: 1,
        tag: "v1".into(),
        compression: Compression::Zstd,
    };
    let report = export(&ck, &ck_dir, &dir, &options).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&dir, &report.manifest.unwrap().digest)).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    // Damage a pack: the blob fails its hash while it streams, the target is removed.
    let pack = ck_dir.join("packs/000.pack");
    let mut bytes = fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&pack, bytes).unwrap();
    let ck = Checkpoint::open(&ck_dir).unwrap();
    let dir = t.path().join("damaged");
    let err = export(&ck, &ck_dir, &dir, &options).unwrap_err();
    assert_eq!(err.fault(), Fault::Checkpoint, "{err}");
    assert!(!dir.exists());
    assert!(
        check_tag("bad:tag").is_err() && check_tag(".x").is_err() && check_tag("ok_1.2-3").is_ok()
    );
}
