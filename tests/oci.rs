//! `export-oci` against the real container tools (issue 15), on the C build of
//! `tests/checkpoint-cases/oci-layers.nix` (a symlink, hardlinks whose group grows in a
//! later phase, a fifo, an executable, a read-only directory, and files that `installPhase`
//! deletes again; no xattrs, which the Nix sandbox refuses, see the case file):
//!
//! - `skopeo inspect` lists one layer per phase that changed something and one history
//!   entry per phase, in order, with `Env` and `WorkingDir` from the shell state;
//! - `umoci unpack` gives, under the recorded build directory and output paths, trees
//!   equal to `restore --after PHASE` (kinds, contents, modes, symlink targets, hardlink
//!   groups, mtimes in ns, user xattrs), after `buildPhase` and after the last phase; the
//!   deleted files are whiteouts in the `installPhase` layer and absent after unpacking;
//! - podman (rootful, vfs storage in a scratch root) pulls the layout and `podman image
//!   mount` shows the same trees;
//! - a build resumed from an earlier checkpoint (`tests/reuse-cases/cproject.nix`, variant
//!   `install`) exports a history that says which phases were restored and which ran;
//! - two exports are byte-identical; a bad target, phase or checkpoint is refused with the
//!   documented exit codes and leaves nothing behind.
//!
//! Nothing is skipped: a missing tool fails the test and names scripts/install-deps.sh.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use integration_tests::checkpoint::{
    self as ck, build_with_checkpoint, checkpoint_cases_dir, CheckpointBuild, CliRun, Scratch,
    BAD_INPUT, CHECKPOINT_UNUSABLE,
};
use serde_json::Value;

const TAG: &str = "test";

/// The case, built once per test process.
fn build() -> &'static CheckpointBuild {
    static BUILD: OnceLock<Result<CheckpointBuild, String>> = OnceLock::new();
    match BUILD
        .get_or_init(|| build_with_checkpoint(&checkpoint_cases_dir().join("oci-layers.nix")))
    {
        Ok(b) => b,
        Err(e) => panic!("oci-layers.nix: {e}"),
    }
}

/// The path of `tool`, or a failure that says how to install it.
fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` is not installed: run scripts/install-deps.sh (as root), which \
                 installs skopeo, umoci, podman and attr from Debian"
            )
        })
}

/// Runs a tool; its stdout, or a failure with the command line and output.
fn run(mut cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if !out.status.success() {
        panic!(
            "{shown} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn export(args: &[&OsStr]) -> CliRun {
    let mut all = vec![OsStr::new("export-oci")];
    all.extend_from_slice(args);
    ck::cli(&all).unwrap_or_else(|e| panic!("{e}"))
}

/// `export-oci CK DIR --tag test [extra]`, required to succeed.
fn export_ok(dir: &Path, extra: &[&str]) {
    let mut args = vec![
        build().checkpoint.as_os_str(),
        dir.as_os_str(),
        OsStr::new("--tag"),
        OsStr::new(TAG),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let r = export(&args);
    assert_eq!(r.code, Some(0), "{}", r.describe());
}

fn json_file(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").expect("a sha256 digest"))
}

/// The manifest and the config of the layout's only image.
fn manifest_and_config(dir: &Path) -> (Value, Value) {
    let index = json_file(&dir.join("index.json"));
    let manifest = json_file(&blob_path(
        dir,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let config = json_file(&blob_path(
        dir,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    (manifest, config)
}

/// The checkpoint's meta and layer names (`inspect --json`).
fn inspect() -> (Value, Vec<String>) {
    let doc = ck::inspect(&build().checkpoint).unwrap_or_else(|e| panic!("{e}"));
    let names = ck::layer_names(&doc).unwrap_or_else(|e| panic!("{e}"));
    (doc["meta"].clone(), names)
}

/// Where each root lives in the image: `build` at the build directory, outputs at their paths.
fn root_paths() -> Vec<(String, String)> {
    let (meta, _) = inspect();
    let mut roots = vec![(
        "build".to_owned(),
        meta["build_top"].as_str().expect("build_top").to_owned(),
    )];
    for (name, path) in meta["output_paths"].as_object().expect("output_paths") {
        roots.push((name.clone(), path.as_str().unwrap().to_owned()));
    }
    roots
}

/// Every entry below `root` (itself included) with what a checkpoint records: kind, mode,
/// mtime in ns, size and blake3 of files, symlink target, hardlink group (the smallest
/// path sharing the inode), user xattrs. Keys are paths relative to `root`.
fn describe(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(String, std::fs::Metadata)>) {
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        let is_dir = meta.is_dir();
        out.push((rel.to_string_lossy().into_owned(), meta));
        if is_dir {
            for e in std::fs::read_dir(&path).unwrap() {
                walk(root, &rel.join(e.unwrap().file_name()), out);
            }
        }
    }
    let mut entries = Vec::new();
    walk(root, Path::new(""), &mut entries);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut leaders: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for (p, m) in &entries {
        if m.is_file() && m.nlink() > 1 {
            leaders
                .entry((m.dev(), m.ino()))
                .or_insert_with(|| p.clone());
        }
    }
    let mut out = BTreeMap::new();
    for (p, m) in &entries {
        let full = root.join(p);
        let ft = m.file_type();
        let detail = if ft.is_file() {
            let data = std::fs::read(&full).unwrap();
            let group = leaders
                .get(&(m.dev(), m.ino()))
                .map(|l| format!(" link-group={l}"))
                .unwrap_or_default();
            format!(
                "file size={} blake3={}{group}",
                data.len(),
                ck::blake3_hex(&data)
            )
        } else if ft.is_dir() {
            "dir".to_owned()
        } else if ft.is_symlink() {
            format!(
                "symlink -> {}",
                std::fs::read_link(&full).unwrap().display()
            )
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_fifo() {
                "fifo".to_owned()
            } else {
                format!("other {ft:?}")
            }
        };
        let mut xattrs = Vec::new();
        if !ft.is_symlink() {
            for name in xattr::list(&full).unwrap_or_else(|e| panic!("xattrs of {p}: {e}")) {
                let name = name.to_string_lossy().into_owned();
                if name.starts_with("user.") {
                    let v = xattr::get(&full, &name).unwrap().unwrap_or_default();
                    xattrs.push(format!(" {name}={}", String::from_utf8_lossy(&v)));
                }
            }
        }
        let mode = if ft.is_symlink() {
            0
        } else {
            m.mode() & 0o7777
        };
        out.insert(
            p.clone(),
            format!(
                "{detail} mode={mode:04o} mtime={}.{:09}{}",
                m.mtime(),
                m.mtime_nsec(),
                xattrs.concat()
            ),
        );
    }
    out
}

/// Differences between two descriptions, for a failure message ("" when equal).
fn differences(
    what: &str,
    want: &BTreeMap<String, String>,
    got: &BTreeMap<String, String>,
) -> String {
    let mut d = String::new();
    for (p, w) in want {
        match got.get(p) {
            Some(g) if g == w => {}
            Some(g) => d.push_str(&format!(
                "  {what}/{p}:\n    restore: {w}\n    image:   {g}\n"
            )),
            None => d.push_str(&format!("  {what}/{p}: missing from the image ({w})\n")),
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        d.push_str(&format!("  {what}/{p}: only in the image ({})\n", got[p]));
    }
    d
}

/// Requires every root under `rootfs` to equal `restore --after phase`.
fn assert_same_as_restore(rootfs: &Path, phase: &str, scratch: &Path) {
    let restored = scratch.join(format!("restored-{phase}"));
    ck::restore_ok(&build().checkpoint, phase, &restored).unwrap_or_else(|e| panic!("{e}"));
    let mut report = String::new();
    for (root, abs) in root_paths() {
        let want_dir = restored.join(&root);
        let got_dir = rootfs.join(abs.trim_start_matches('/'));
        match (want_dir.exists(), got_dir.exists()) {
            (false, false) => continue,
            (true, true) => {}
            (w, g) => {
                report.push_str(&format!("  {root}: in restore {w}, in the image {g}\n"));
                continue;
            }
        }
        report.push_str(&differences(
            &root,
            &describe(&want_dir),
            &describe(&got_dir),
        ));
    }
    assert!(
        report.is_empty(),
        "after {phase}, the image differs from restore:\n{report}"
    );
}

/// Lists a gzip layer tar (`tar -tzvf`'s names).
fn layer_names(blob: &Path) -> Vec<String> {
    let mut cmd = Command::new("tar");
    cmd.arg("-tzf").arg(blob);
    run(cmd).lines().map(str::to_owned).collect()
}

#[test]
fn skopeo_lists_a_layer_per_phase_and_the_history() {
    let skopeo = require_tool("skopeo");
    let scratch = Scratch::new("oci-skopeo").unwrap();
    let dir = scratch.path().join("image");
    export_ok(&dir, &[]);
    let (_, phases) = inspect();
    let image = format!("oci:{}:{TAG}", dir.display());
    let mut cmd = Command::new(&skopeo);
    cmd.args(["inspect", &image]);
    let doc: Value = serde_json::from_str(&run(cmd)).unwrap();
    let mut cmd = Command::new(&skopeo);
    cmd.args(["inspect", "--config", &image]);
    let config: Value = serde_json::from_str(&run(cmd)).unwrap();

    let history = config["history"].as_array().expect("history");
    let names: Vec<String> = history
        .iter()
        .map(|h| {
            h["created_by"]
                .as_str()
                .unwrap()
                .trim_start_matches("checkpoint-builder: ")
                .to_owned()
        })
        .collect();
    assert_eq!(names, phases, "one history entry per phase, in order");
    let non_empty = history.iter().filter(|h| h["empty_layer"] != true).count();
    let layers = doc["Layers"].as_array().expect("Layers");
    assert_eq!(
        layers.len(),
        non_empty,
        "a layer per phase that changed something"
    );
    assert!(
        non_empty >= 4,
        "setup, unpack, configure, build, install all change files"
    );
    for h in history {
        let c = h["comment"].as_str().unwrap();
        assert!(c.starts_with("ran in "), "{c}");
    }
    let out = build()
        .output("out")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let env: Vec<&str> = doc["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&format!("out={out}").as_str()), "{env:?}");
    let (meta, _) = inspect();
    let workdir = config["config"]["WorkingDir"].as_str().expect("WorkingDir");
    assert!(
        workdir.starts_with(meta["build_top"].as_str().unwrap()),
        "{workdir}"
    );
    let labels = &doc["Labels"];
    assert_eq!(
        labels["dev.checkpoint-builder.derivation"],
        "checkpoint-oci-layers"
    );
    assert_eq!(
        labels["dev.checkpoint-builder.phase"],
        phases.last().unwrap().as_str()
    );
    assert_eq!(
        labels["dev.checkpoint-builder.checkpoint"],
        build()
            .checkpoint
            .canonicalize()
            .unwrap()
            .to_string_lossy()
            .as_ref()
    );
    assert_eq!(doc["Architecture"], "amd64");
    eprintln!(
        "skopeo: {} layers, {} history entries",
        layers.len(),
        history.len()
    );
}

#[test]
fn umoci_unpacks_what_restore_gives_with_whiteouts_for_deletions() {
    let umoci = require_tool("umoci");
    let scratch = Scratch::new("oci-umoci").unwrap();
    let (_, phases) = inspect();
    let last = phases.last().unwrap().clone();
    for phase in ["buildPhase", last.as_str()] {
        let dir = scratch.path().join(format!("image-{phase}"));
        export_ok(&dir, &["--after", phase]);
        let bundle = scratch.path().join(format!("bundle-{phase}"));
        let mut cmd = Command::new(&umoci);
        cmd.args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{TAG}", dir.display()))
            .arg(&bundle);
        run(cmd);
        let rootfs = bundle.join("rootfs");
        assert_same_as_restore(&rootfs, phase, scratch.path());

        let source = root_paths()[0].1.clone() + "/" + &source_root();
        let in_image = |p: &str| rootfs.join(source.trim_start_matches('/')).join(p);
        let doomed_present = std::fs::symlink_metadata(in_image("doomed.txt")).is_ok();
        let scratch_present = std::fs::symlink_metadata(in_image("scratch")).is_ok();
        let after_install = phase != "buildPhase";
        assert_eq!(doomed_present, !after_install, "doomed.txt after {phase}");
        assert_eq!(scratch_present, !after_install, "scratch/ after {phase}");
        // The sanity of the comparison: the things this case adds are really there.
        let link = in_image("prog.third-link");
        if after_install {
            let a = std::fs::metadata(in_image("prog")).unwrap();
            let b = std::fs::metadata(&link).unwrap();
            assert_eq!(a.ino(), b.ino(), "prog.third-link is a hardlink of prog");
            assert_eq!(a.nlink(), 3);
            assert_eq!(
                std::fs::read(in_image("rewritten.txt")).unwrap(),
                b"as installed\n"
            );
        }

        if after_install {
            // The install layer's tar holds the whiteouts.
            let (manifest, config) = manifest_and_config(&dir);
            let mut layer = 0;
            let mut found = None;
            for h in config["history"].as_array().unwrap() {
                if h["empty_layer"] == true {
                    continue;
                }
                if h["created_by"] == "checkpoint-builder: installPhase" {
                    found = Some(layer);
                }
                layer += 1;
            }
            let i = found.expect("installPhase changed files");
            let digest = manifest["layers"][i]["digest"].as_str().unwrap();
            let names = layer_names(&blob_path(&dir, digest));
            let rel = source.trim_start_matches('/');
            for w in [
                format!("{rel}/.wh.doomed.txt"),
                format!("{rel}/.wh.scratch"),
            ] {
                assert!(
                    names.contains(&w),
                    "{w} not in the install layer: {names:?}"
                );
            }
            assert!(
                !names.iter().any(|n| n.contains("scratch/")),
                "one whiteout covers scratch/: {names:?}"
            );
        }
    }
}

/// The source root relative to the build directory (`c-build` unpacks into one directory).
fn source_root() -> String {
    let scratch = Scratch::new("oci-source-root").unwrap();
    let restored = scratch.path().join("r");
    ck::restore_ok(&build().checkpoint, "unpackPhase", &restored).unwrap();
    let dirs: Vec<String> = std::fs::read_dir(restored.join("build"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 1, "one source root: {dirs:?}");
    dirs[0].clone()
}

#[test]
fn podman_pulls_and_mounts_the_image_as_root() {
    let podman = require_tool("podman");
    // Rootful podman needs uid 0; rootless would need subuids and a user namespace,
    // which this test does not set up.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    assert_eq!(
        uid, 0,
        "the podman test runs rootful podman: run the tests as root"
    );
    let scratch = Scratch::new("oci-podman").unwrap();
    let dir = scratch.path().join("image");
    export_ok(&dir, &[]);
    let storage = scratch.path().join("storage");
    // podman refuses a runroot longer than 50 bytes: a short one of its own.
    let runroot = PathBuf::from(format!("/tmp/oci-run-{}", std::process::id()));
    let podman_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&podman);
        cmd.arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(&runroot)
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .args(args);
        cmd
    };
    let image = format!("oci:{}:{TAG}", dir.display());
    let id = run(podman_cmd(&["pull", "-q", &image])).trim().to_owned();
    let history = run(podman_cmd(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        &id,
    ]));
    let (_, phases) = inspect();
    assert_eq!(history.lines().count(), phases.len(), "{history}");
    let mount = run(podman_cmd(&["image", "mount", &id])).trim().to_owned();
    assert_same_as_restore(Path::new(&mount), phases.last().unwrap(), scratch.path());
    run(podman_cmd(&["image", "unmount", &id]));
    run(podman_cmd(&["rmi", "-f", &id]));
    ck::remove_tree(&runroot).unwrap_or_else(|e| panic!("{}: {e}", runroot.display()));
}

/// Every file of a layout, with its bytes.
fn layout_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn two_exports_are_byte_identical() {
    let scratch = Scratch::new("oci-determinism").unwrap();
    for compression in ["gzip", "zstd"] {
        let a = scratch.path().join(format!("a-{compression}"));
        let b = scratch.path().join(format!("b-{compression}"));
        export_ok(&a, &["--compression", compression]);
        export_ok(&b, &["--compression", compression]);
        let (fa, fb) = (layout_files(&a), layout_files(&b));
        assert!(fa.len() > 3, "{:?}", fa.keys());
        assert_eq!(
            fa.keys().collect::<Vec<_>>(),
            fb.keys().collect::<Vec<_>>(),
            "{compression}: different files"
        );
        for (k, v) in &fa {
            assert!(fb[k] == *v, "{compression}: {k} differs");
        }
        let (manifest, _) = manifest_and_config(&a);
        let media = manifest["layers"][0]["mediaType"].as_str().unwrap();
        assert_eq!(
            media,
            format!("application/vnd.oci.image.layer.v1.tar+{compression}")
        );
    }
}

#[test]
fn bad_targets_phases_and_checkpoints_are_refused() {
    let scratch = Scratch::new("oci-refused").unwrap();
    let ckp = build().checkpoint.as_os_str();
    // A target that is not empty is left as it was.
    let full = scratch.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep"), b"x").unwrap();
    let r = export(&[ckp, full.as_os_str()]);
    assert_eq!(r.code, Some(BAD_INPUT), "{}", r.describe());
    assert_eq!(layout_files(&full).len(), 1);
    // An unknown phase, a bad tag.
    let dir = scratch.path().join("x");
    let r = export(&[
        ckp,
        dir.as_os_str(),
        OsStr::new("--after"),
        OsStr::new("noPhase"),
    ]);
    assert_eq!(r.code, Some(BAD_INPUT), "{}", r.describe());
    assert!(r.stderr.contains("noPhase"), "{}", r.describe());
    let r = export(&[ckp, dir.as_os_str(), OsStr::new("--tag"), OsStr::new("a:b")]);
    assert_eq!(r.code, Some(BAD_INPUT), "{}", r.describe());
    assert!(!dir.exists());
    // A damaged blob: 65, and no image directory left.
    let copy = scratch.path().join("ck");
    ck::copy_checkpoint(&build().checkpoint, &copy).unwrap();
    let layer = ck::layer_file(&copy, "buildPhase").unwrap();
    let text = std::fs::read_to_string(&layer).unwrap();
    let hash = ck::largest_file_hash(&text, "build").expect("buildPhase stores a file");
    let (pack, offset, len) = ck::blob_range(&copy, &hash).expect("the blob is in a pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    ck::flip_middle_byte(&mut bytes[offset as usize..(offset + len) as usize]);
    std::fs::write(&pack, bytes).unwrap();
    let r = export(&[copy.as_os_str(), dir.as_os_str()]);
    assert_eq!(r.code, Some(CHECKPOINT_UNUSABLE), "{}", r.describe());
    assert!(!dir.exists(), "a failed export leaves nothing");
}

/// A case file of `tests/reuse-cases/cproject.nix` (variant, optional base checkpoint).
fn reuse_case(label: &str, variant: &str, base: Option<&Path>) -> PathBuf {
    let dir = integration_tests::nix::repo_root().join("target/oci-cases");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{label}.nix"));
    let base = base.map_or("null".to_owned(), |p| format!("\"{}\"", p.display()));
    let text = format!(
        "{{ mkDrv }}:\nimport {} {{ inherit mkDrv; variant = \"{variant}\"; name = \"oci-cproject\"; salt = \"{}\"; base = {base}; }}\n",
        integration_tests::nix::repo_root()
            .join("tests/reuse-cases/cproject.nix")
            .display(),
        integration_tests::outputs::run_salt(),
    );
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn history_says_which_phases_a_resumed_build_restored() {
    let base =
        build_with_checkpoint(&reuse_case("oci-base", "a", None)).unwrap_or_else(|e| panic!("{e}"));
    let resumed = build_with_checkpoint(&reuse_case(
        "oci-install-from-base",
        "install",
        Some(&base.checkpoint),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let scratch = Scratch::new("oci-resumed").unwrap();
    let dir = scratch.path().join("image");
    let r = export(&[resumed.checkpoint.as_os_str(), dir.as_os_str()]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    let (_, config) = manifest_and_config(&dir);
    let comments: BTreeMap<String, String> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("checkpoint-builder: ")
                    .to_owned(),
                h["comment"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for phase in ["setup", "unpackPhase", "configurePhase", "buildPhase"] {
        assert!(
            comments[phase].starts_with("restored from an earlier build's checkpoint"),
            "{phase}: {comments:?}"
        );
    }
    assert!(
        comments["installPhase"].starts_with("ran in "),
        "{comments:?}"
    );
}
