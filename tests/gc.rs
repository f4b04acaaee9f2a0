//! Checkpoints in the store's life cycle (issue 16), with real Nix: what keeps a checkpoint
//! alive, that an old one can be collected once nothing roots it, that a new checkpoint never
//! references its base, that a checkpoint is copied with its build's `out` and nothing else
//! (nor references an input whose path its trees hold), what a build whose base is gone
//! says and does, and what `nix-store --check` says of a checkpointed build. Docs:
//! docs/nix-tools.md.
//!
//! Never runs a store-wide `nix-store --gc` (other tests share the store): it asks
//! `nix-store --delete PATH` about single paths, which refuses while the path is alive.
//! GC roots live in a scratch directory and are removed on drop, also when the test fails.

use integration_tests::checkpoint::Scratch;
use integration_tests::nix::{repo_root, NIX_BUILD_OPTIONS};
use integration_tests::outputs::{normalised_out, output};
use integration_tests::reuse_cases::{base_attr, build_ok, case_file};
use integration_tests::{builder_binary, BuildResult};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAME: &str = "gc-cproject";

fn case(label: &str, variant: &str, base: Option<&Path>, context: bool) -> PathBuf {
    let attrs = format!(
        "variant = \"{variant}\"; name = \"{NAME}\"; {} baseContext = {context};",
        base_attr(base)
    );
    case_file("gc-cases", label, "cproject", &attrs)
}

fn build(label: &str, variant: &str, base: Option<&Path>, context: bool) -> BuildResult {
    build_ok(&case(label, variant, base, context), label)
}

fn nix_store(args: &[&str]) -> Output {
    Command::new("nix-store").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn references(path: &Path) -> Vec<String> {
    let o = nix_store(&["-q", "--references", &path.to_string_lossy()]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `nix-store --delete PATHS` (plus options): whether the first path is gone afterwards.
/// Nix 2.8 deletes a path only together with every referrer it still has (a referrer not
/// named counts as alive), as `nix-store --gc` would collect them together.
fn delete(paths: &[&Path], options: &[&str]) -> (bool, String) {
    let mut args: Vec<String> = options.iter().map(|s| s.to_string()).collect();
    args.push("--delete".into());
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let o = Command::new("nix-store").args(&args).output().unwrap();
    (!paths[0].exists(), text(&o))
}

/// GC roots made with `nix-store --add-root` (as `nix-build -o` makes them), removed on drop.
struct Roots {
    dir: Scratch,
    made: Vec<PathBuf>,
}

impl Roots {
    fn new() -> Self {
        Roots {
            dir: Scratch::new("gc-roots").unwrap(),
            made: Vec::new(),
        }
    }

    fn add(&mut self, name: &str, target: &Path) -> PathBuf {
        let link = self.dir.path().join(name);
        let o = nix_store(&[
            "--add-root",
            &link.to_string_lossy(),
            "--realise",
            &target.to_string_lossy(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        self.made.push(link.clone());
        link
    }

    fn remove(&mut self, link: &Path) {
        std::fs::remove_file(link).unwrap();
        self.made.retain(|l| l != link);
    }
}

impl Drop for Roots {
    fn drop(&mut self) {
        for link in &self.made {
            let _ = std::fs::remove_file(link);
        }
    }
}

#[test]
fn checkpoints_come_and_go_like_store_paths() {
    let mut roots = Roots::new();
    let a = build("a", "a", None, true);
    let a_ck = output(&a, true);
    let a_root = roots.add("a-checkpoint", &a_ck);

    // A checkpoint references its own build's outputs (their paths are in its manifest and
    // layers) and nothing else: rooting it keeps its `out` too.
    let a_refs = references(&a_ck);
    assert!(
        a_refs
            .iter()
            .all(|r| a.out_paths.contains(&PathBuf::from(r))),
        "a checkpoint's references: {a_refs:?}"
    );

    // b reuses a; its checkpoint does not reference a's, nor does its `out`.
    let b = build("b", "install", Some(&a_ck), true);
    let b_ck = output(&b, true);
    let a_ck_s = a_ck.to_string_lossy().into_owned();
    for p in [&b_ck, &output(&b, false)] {
        assert!(
            !references(p).contains(&a_ck_s),
            "{} references its base",
            p.display()
        );
    }
    // b's derivation does: the base is an input. Keeping b's derivation keeps a's checkpoint.
    let b_drv = PathBuf::from(&b.drv_path);
    assert!(
        references(&b_drv).contains(&a_ck_s),
        "{:?}",
        references(&b_drv)
    );

    // While a GC root names it, the checkpoint is alive.
    let (gone, log) = delete(&[&a_ck, &b_drv], &[]);
    assert!(!gone, "a rooted checkpoint was deleted\n{log}");
    assert!(log.contains("alive"), "{log}");

    // Without its root, with only the *next* generation rooted: c reuses b, and c's outputs
    // are rooted (nix-build -o). Under Nix's default keep-derivations = true that keeps the
    // whole history: c's outputs keep c.drv, which names b's checkpoint, which keeps b.drv
    // (its output is alive), which names a's checkpoint.
    roots.remove(&a_root);
    let c = build("c", "install", Some(&b_ck), true);
    let _c_out_root = roots.add("c-out", &output(&c, false));
    let _c_ck_root = roots.add("c-checkpoint", &output(&c, true));
    let (gone, log) = delete(&[&a_ck, &b_drv], &[]);
    assert!(
        !gone,
        "a's checkpoint was collected although c.drv -> b's checkpoint -> b.drv -> a's checkpoint is alive\n{log}"
    );
    // With keep-derivations = false no rooted output keeps a .drv, so nothing keeps b.drv
    // or a's checkpoint: both are collected (as `nix-store --gc` would collect them), and
    // c's outputs are untouched.
    let (gone, log) = delete(&[&a_ck, &b_drv], &["--option", "keep-derivations", "false"]);
    assert!(
        gone,
        "a's checkpoint is still there with nothing rooting it\n{log}"
    );
    assert!(!b_drv.exists(), "b.drv was dead too");
    assert!(output(&c, false).exists() && output(&c, true).exists());
    assert!(b_ck.exists() && output(&b, false).exists());

    // `nix copy` of a checkpoint: its closure is itself and its build's `out`.
    let cache = Scratch::new("gc-cache").unwrap();
    let url = format!("file://{}", cache.path().display());
    let o = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "copy",
            "--to",
            &url,
        ])
        .arg(&b_ck)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let narinfos: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.ends_with(".narinfo").then_some(n)
        })
        .collect();
    assert_eq!(
        narinfos.len(),
        2,
        "the checkpoint and its build's out are copied, nothing else: {narinfos:?}"
    );

    // A base that is gone: `builtins.storePath` fails at evaluation; passed as a plain string
    // (no context) it is not in the sandbox, and the builder says so and builds clean.
    let c = build("c-gone-base", "install", Some(&a_ck), false);
    let line = c
        .log_lines
        .iter()
        .find(|l| {
            l.contains(&format!(
                "checkpointBase {a_ck_s} is not in the build's store"
            ))
        })
        .unwrap_or_else(|| panic!("no missing-base line\n{}", c.log_tail(60)));
    assert!(line.contains("garbage-collected") && line.contains("building from scratch"));
    for phase in [
        "unpackPhase",
        "configurePhase",
        "buildPhase",
        "installPhase",
    ] {
        assert!(
            c.ran_phase(phase),
            "{phase} did not run\n{}",
            c.log_tail(60)
        );
    }
    assert!(
        normalised_out(&c) == normalised_out(&b),
        "the clean build's out differs"
    );
    let o = Command::new("nix-instantiate")
        .arg(repo_root().join("tests/nix/harness.nix"))
        .args(["--arg", "case"])
        .arg(case("c-gone-base-ctx", "install", Some(&a_ck), true))
        .args(["--arg", "stdenvNix"])
        .arg(integration_tests::nix::stdenv_nix())
        .args(["--arg", "builder"])
        .arg(builder_binary().unwrap())
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "storePath of a collected path evaluated"
    );
    assert!(
        text(&o).contains(&a_ck_s),
        "the evaluation error names the path: {}",
        text(&o)
    );
}

#[test]
fn a_checkpoint_does_not_reference_the_inputs_its_trees_name() {
    // Nix records as a reference of an output every input whose hash stands in its bytes.
    // The build directory names the source's store path in a 57-byte file, inside random
    // bytes that do not compress, as a symlink target and in a file name: the checkpoint
    // holds all four, and references only itself and its build's outputs.
    let b = build("input-paths", "input-paths", None, true);
    let ck = output(&b, true);
    let restored = Scratch::new("gc-input-paths").unwrap();
    let dir = restored.path().join("build");
    integration_tests::checkpoint::restore_ok(&ck, "buildPhase", &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let src_dir = std::fs::read_dir(dir.join("build"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("input.txt").exists())
        .expect("the source root with input.txt");
    let src = std::fs::read_to_string(src_dir.join("input.txt")).unwrap();
    let src = src.trim_end();
    assert!(
        src.starts_with("/nix/store/") && Path::new(src).exists(),
        "{src}"
    );
    let noise = std::fs::read(src_dir.join("noise.bin")).unwrap();
    assert!(noise.windows(src.len()).any(|w| w == src.as_bytes()));
    assert_eq!(
        std::fs::read_link(src_dir.join("input-link")).unwrap(),
        Path::new(src).join("configure")
    );
    let stamp = format!("{}.stamp", &src["/nix/store/".len()..]);
    assert!(src_dir.join(&stamp).exists(), "{stamp}");
    let refs = references(&ck);
    assert!(
        !refs.iter().any(|r| r == src),
        "the checkpoint references its input {src}: {refs:?}"
    );
    let own: Vec<String> = b
        .out_paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(
        refs.iter().all(|r| own.contains(r)),
        "the checkpoint references only its build's outputs: {refs:?}, outputs {own:?}"
    );
}

#[test]
fn a_rebuild_check_compares_the_outputs_before_the_checkpoint() {
    // `nix-store --realise --check` builds the derivation again and compares every output with
    // the registered one, stopping at the first that differs. A checkpoint records the mtimes
    // and step times of its build, so it differs on every rebuild; Nix compares an output the
    // checkpoint names (all of them: `output_paths`) before it. The error therefore names the
    // checkpoint when every other output was reproduced, and `out` when it was not.
    let check = |result: &BuildResult| {
        let mut args: Vec<&str> = vec!["--realise"];
        args.extend_from_slice(NIX_BUILD_OPTIONS);
        args.extend_from_slice(&["--check", &result.drv_path]);
        let o = nix_store(&args);
        assert!(!o.status.success(), "the check passed: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        let differs: Vec<String> = stderr
            .lines()
            .filter(|l| l.contains("may not be deterministic"))
            .map(str::to_owned)
            .collect();
        assert_eq!(differs.len(), 1, "one mismatch reported: {}", text(&o));
        differs[0].clone()
    };
    let quoted = |p: &Path| format!("output '{}' differs", p.display());

    let two = build("check-dev", "dev", None, true);
    assert_eq!(
        two.out_paths.len(),
        3,
        "out, dev and checkpoint: {:?}",
        two.out_paths
    );
    // What orders the comparison: the checkpoint references every other output.
    let ck = output(&two, true);
    let refs = references(&ck);
    for p in two.out_paths.iter().filter(|p| **p != ck) {
        assert!(
            refs.contains(&p.to_string_lossy().into_owned()),
            "the checkpoint references {}: {refs:?}",
            p.display()
        );
    }
    let line = check(&two);
    assert!(
        line.contains(&quoted(&ck)),
        "the checkpoint is the output reported, after out and dev matched: {line}"
    );

    let stamped = build("check-stamped", "stamped", None, true);
    let line = check(&stamped);
    assert!(
        line.contains(&quoted(&output(&stamped, false))),
        "out, which differs, is reported before the checkpoint: {line}"
    );
}
