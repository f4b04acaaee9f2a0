//! Hostile checkpoints (issue 12): a table of named variants, each a copy of one real
//! checkpoint (`tests/reuse-cases/cproject.nix`, variant "a", built once per run) broken in
//! one way, and the builder's CLI run on it: `verify`, `inspect`, `diff` (against the
//! pristine checkpoint), `shell --after buildPhase` (stdin `exit`) and `restore --after
//! buildPhase`, each under a wall-clock and an address-space bound with `HOME` and
//! `TMPDIR` in a fresh scratch directory. Every variant asserts, for every command: the exit
//! code it expects (65 for unusable input), the words of its message, the time and memory
//! bounds; then that nothing in the scratch directory changed but the restore target (and
//! `shell`'s own tree when it succeeded), so nothing was written outside the target and no
//! partial tree or `.NAME.restore…` is left; and that the injection canary does not exist.
//!
//! The second half uses forged copies (`nix-store --add` of an edited copy) as
//! `checkpointBase` of real builds, once as the default trust has it and once with
//! `checkpointBaseTrust = "any"` (so the content checks, not only provenance, must refuse
//! the forgery): each build must succeed, its log must say the base was not used, `out` must
//! equal (normalised NAR) a build without a base, and the new checkpoint must not have taken
//! over the forged content.
//!
//! Variants are written against the intended behaviour of issue 12; those whose fix has not
//! landed fail. Nothing is skipped: a missing prerequisite fails the test.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use checkpoint_builder::checkpoint::{
    ContentHash, Encoding, Entry, EntryKind, Layer, RelPath, Timestamp,
};
use integration_tests::checkpoint::{self as ck, Scratch};
use integration_tests::hostile::{
    listing_except, missing_words, repeated_hash, restore_leftovers, run_bounded, zstd_rle_frame,
    BoundedRun, CkCopy, Codes, OK, OK_OR_UNUSABLE, REFUSED, RSS_BOUND_KIB, TIME_BOUND, UNUSABLE,
};
use integration_tests::nix::repo_root;
use integration_tests::outputs::{normalised_out, output, run_salt};
use integration_tests::{builder_binary, nix_build, BuildResult};

/// The package name of every build of this suite (one length, so output paths rewrite).
const NAME: &str = "hostile-cproject";
/// The layer the CLI commands restore and enter.
const PHASE: &str = "buildPhase";
/// The build root's file every variant can lean on.
const GREET: &str = "cproject-src/greet";

// ---------------------------------------------------------------------------------------
// Builds

/// How far a build trusts its base: the default, or `checkpointBaseTrust = "any"` (a copy
/// added with `nix-store --add` is then used if its content checks out, so the checks
/// behind provenance are what refuses a forgery).
#[derive(Clone, Copy, PartialEq)]
enum Trust {
    Default,
    Any,
}

fn case_file(label: &str, variant: &str, base: Option<&Path>, trust: Trust) -> PathBuf {
    let dir = repo_root().join("target/hostile-cases");
    std::fs::create_dir_all(&dir).expect("creating target/hostile-cases");
    let base = base.map_or("null".to_owned(), |p| format!("\"{}\"", p.display()));
    let trust = match trust {
        Trust::Default => "",
        Trust::Any => ".overrideAttrs (_: { checkpointBaseTrust = \"any\"; })",
    };
    let text = format!(
        "{{ mkDrv }}:\n(import {} {{ inherit mkDrv; variant = \"{variant}\"; name = \"{NAME}\"; salt = \"hostile-{}\"; base = {base}; }}){trust}\n",
        repo_root().join("tests/reuse-cases/cproject.nix").display(),
        run_salt(),
    );
    let file = dir.join(format!("{label}.nix"));
    std::fs::write(&file, text).expect("writing a case file");
    file
}

fn build(label: &str, variant: &str, base: Option<&Path>) -> BuildResult {
    build_trusting(label, variant, base, Trust::Default)
}

fn build_trusting(label: &str, variant: &str, base: Option<&Path>, trust: Trust) -> BuildResult {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let result = nix_build(&case_file(label, variant, base, trust), Some(builder))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        result.success,
        "{label}: the build failed: {}\n{}\n{}",
        result.describe(),
        result.log_tail(60),
        result.errors.join("\n")
    );
    result
}

/// The pristine checkpoint every variant copies: cproject "a", built once per process.
fn pristine() -> &'static Path {
    output_ref(pristine_build())
}

/// The build that made [`pristine`]: cproject "a" without a base.
fn pristine_build() -> &'static BuildResult {
    static BUILD: OnceLock<BuildResult> = OnceLock::new();
    BUILD.get_or_init(|| build("base", "a", None))
}

fn output_ref(b: &'static BuildResult) -> &'static Path {
    b.out_paths
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-checkpoint"))
        .map(PathBuf::as_path)
        .unwrap_or_else(|| panic!("no checkpoint output in {:?}", b.out_paths))
}

/// The build every base variant is compared with: "install" without a base.
fn clean_install() -> &'static BuildResult {
    static BUILD: OnceLock<BuildResult> = OnceLock::new();
    BUILD.get_or_init(|| build("clean-install", "install", None))
}

// ---------------------------------------------------------------------------------------
// Edits shared by the variants

/// What a mutation gets: the copy and the canary path an injected command would create.
struct Ctx<'a> {
    copy: CkCopy,
    canary: &'a Path,
    scratch: &'a Path,
}

type Words = Vec<Vec<String>>;

fn words(groups: &[&[&str]]) -> Words {
    groups
        .iter()
        .map(|g| g.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

fn rel(path: &str) -> RelPath {
    RelPath::new(path.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ts(sec: i64) -> Timestamp {
    Timestamp { sec, nsec: 0 }
}

fn entry(kind: EntryKind, mode: u32) -> Entry {
    Entry {
        kind,
        mode,
        mtime: ts(1_700_000_000),
        xattrs: Default::default(),
    }
}

/// Adds `entry` at `path` to root `root` of `layer`, keeping the list sorted.
fn add_entry(layer: &mut Layer, root: &str, path: &str, e: Entry) {
    let diff = layer.roots.entry(root.to_owned()).or_default();
    diff.changed
        .retain(|(p, _)| p.as_bytes() != path.as_bytes());
    diff.changed.push((rel(path), e));
    diff.changed.sort_by(|a, b| a.0.cmp(&b.0));
}

/// The entry at `path` of root `root` in `layer`.
fn entry_mut<'a>(layer: &'a mut Layer, root: &str, path: &str) -> &'a mut Entry {
    layer
        .roots
        .get_mut(root)
        .and_then(|d| {
            d.changed
                .iter_mut()
                .find(|(p, _)| p.as_bytes() == path.as_bytes())
        })
        .map(|(_, e)| e)
        .unwrap_or_else(|| panic!("layer {} has no {root}:{path}", layer.index))
}

/// A regular file entry (mode 644) claiming `size` bytes of content `blake3`.
fn file_claiming(size: u64, blake3: ContentHash) -> Entry {
    entry(
        EntryKind::File {
            size,
            blake3,
            hardlink: None,
        },
        0o644,
    )
}

fn build_layer(c: &Ctx) -> u32 {
    c.copy.layer_index(PHASE)
}

/// The hash of greet's content (a file of the build root in the buildPhase layer).
fn greet_hash(c: &Ctx) -> ContentHash {
    let mut layer = c.copy.layer(build_layer(c));
    entry_mut(&mut layer, "build", GREET)
        .blob()
        .expect("greet is a file")
}

/// Inserts a copy of an existing entry under the (invalid) escaped `path`, by text, into
/// the layer named `layer_name`; the index names the new bytes.
fn insert_bad_path(c: &Ctx, layer_name: &str, path: &str) -> Words {
    let index = c.copy.layer_index(layer_name);
    let layer = c.copy.layer(index);
    let text = String::from_utf8(layer.to_bytes()).expect("UTF-8");
    let edited = ck::insert_entry_copy(&text, "build", path)
        .unwrap_or_else(|| panic!("{layer_name} has no entry to copy"));
    c.copy.write_layer_text(&layer, edited.as_bytes());
    vec![vec![path.to_owned()]]
}

/// Edits layer `index` through its typed form, then replaces `(from, to)` strings in its
/// canonical text (for what the builder's types refuse to hold); the index names the result.
fn edit_layer_text(c: &Ctx, index: u32, edit: impl FnOnce(&mut Layer), replace: &[(&str, &str)]) {
    let mut layer = c.copy.layer(index);
    edit(&mut layer);
    let mut text = String::from_utf8(layer.to_bytes()).expect("UTF-8");
    for (from, to) in replace {
        assert!(text.contains(from), "{from} is not in the layer");
        text = text.replace(from, to);
    }
    c.copy.write_layer_text(&layer, text.as_bytes());
}

fn layer_file_stem(c: &Ctx, index: u32) -> String {
    c.copy
        .layer_path(index)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .expect("a layer file")
}

/// Replaces the bytes of layer `index`'s file by `text`, the index naming them.
fn replace_layer_bytes(c: &Ctx, index: u32, text: &[u8]) -> Words {
    let layer = c.copy.layer(index);
    c.copy.write_layer_text(&layer, text);
    vec![vec![layer_file_stem(c, index)]]
}

/// Where the stored bytes of `hash` lie: pack path, offset, length, encoding.
fn locate(c: &Ctx, hash: &ContentHash) -> (PathBuf, u64, u64, Encoding) {
    let n = c.copy.index().layers.len() as u32;
    for i in 0..n {
        let layer = c.copy.layer(i);
        if let Some(b) = layer.blobs.iter().find(|b| b.blake3 == *hash) {
            return (c.copy.pack_path(i), b.offset, b.length, b.encoding);
        }
    }
    panic!("no blob {hash:?}");
}

fn flip_stored_byte(c: &Ctx, hash: &ContentHash) {
    let (pack, offset, length, _) = locate(c, hash);
    let mut bytes = std::fs::read(&pack).expect("reading a pack");
    let at = (offset + length / 2) as usize;
    bytes[at] ^= 0x10;
    std::fs::write(&pack, bytes).expect("writing a pack");
}

/// Sets the shell state's `variables` entry `name` (added when missing) to a scalar.
fn set_variable(state: &mut serde_json::Value, name: &str, value: &str, exported: bool) {
    let vars = state["variables"].as_array_mut().expect("variables");
    vars.retain(|v| v["name"] != name);
    let attributes = if exported {
        serde_json::json!({"exported": true})
    } else {
        serde_json::json!({})
    };
    vars.push(serde_json::json!({
        "name": name,
        "attributes": attributes,
        "value": {"kind": "scalar", "value": value},
    }));
    vars.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
}

fn touch(c: &Ctx) -> String {
    format!("touch {}", c.canary.display())
}

/// Replaces the leading `{"format_version":N,` of `text` by version 99.
fn other_version(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(text.to_vec()).expect("UTF-8");
    let rest = text.split_once(',').expect("a comma").1;
    format!("{{\"format_version\":99,{rest}").into_bytes()
}

// ---------------------------------------------------------------------------------------
// The variants

/// Expected exit codes per command.
#[derive(Clone, Copy)]
struct Expect {
    verify: Codes,
    restore: Codes,
    shell: Codes,
    inspect: Codes,
    diff: Codes,
}

/// Unusable for every command that reads what is broken; `inspect` reads only the
/// manifests.
const ALL_UNUSABLE: Expect = Expect {
    verify: UNUSABLE,
    restore: UNUSABLE,
    shell: UNUSABLE,
    inspect: UNUSABLE,
    diff: UNUSABLE,
};
/// Manifests fine, content or a state rule broken (or a limit exceeded): `inspect` and
/// `diff` (which reads only the `inputs` attachments) may succeed, the rest must refuse.
const CONTENT_UNUSABLE: Expect = Expect {
    verify: UNUSABLE,
    restore: UNUSABLE,
    shell: UNUSABLE,
    inspect: OK_OR_UNUSABLE,
    diff: OK_OR_UNUSABLE,
};
/// A layout problem only `verify` must see.
const VERIFY_ONLY: Expect = Expect {
    verify: UNUSABLE,
    restore: OK_OR_UNUSABLE,
    shell: OK_OR_UNUSABLE,
    inspect: OK_OR_UNUSABLE,
    diff: OK_OR_UNUSABLE,
};
/// A valid checkpoint (bounds and policies are what is tested).
const ALL_OK: Expect = Expect {
    verify: OK,
    restore: OK,
    shell: OK,
    inspect: OK,
    diff: OK,
};
/// A shell state that must be refused by `shell`; the other commands may refuse the
/// checkpoint too (a state no build could record makes it unusable) or ignore the state.
const SHELL_REFUSES: Expect = Expect {
    verify: OK_OR_UNUSABLE,
    restore: OK_OR_UNUSABLE,
    shell: UNUSABLE,
    inspect: OK_OR_UNUSABLE,
    diff: OK_OR_UNUSABLE,
};

/// A check after the commands ran.
type After = fn(&Outcome) -> Result<(), String>;

struct Variant {
    name: &'static str,
    class: &'static str,
    mutate: fn(&Ctx) -> Words,
    expect: Expect,
    after: Option<After>,
}

/// What the commands did.
struct Outcome {
    target: PathBuf,
    elsewhere: PathBuf,
    runs: Vec<(&'static str, BoundedRun)>,
}

impl Outcome {
    fn run(&self, command: &str) -> &BoundedRun {
        &self
            .runs
            .iter()
            .find(|(c, _)| *c == command)
            .expect("ran")
            .1
    }
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
}

/// A checkpoint `verify` accepts, `restore` restores, and the other way round.
fn verify_and_restore_agree(o: &Outcome) -> Result<(), String> {
    let (v, r) = (o.run("verify").code, o.run("restore").code);
    (v == r)
        .then_some(())
        .ok_or_else(|| format!("verify exited {v:?} but restore {r:?}"))
}

const GIB: u64 = 1 << 30;
/// A decompression bomb's output: far more than any time bound lets a reader inflate.
const BOMB: u64 = 64 * GIB;

fn variants() -> Vec<Variant> {
    vec![
        // ---- classic: paths
        Variant {
            name: "path_dotdot",
            class: "traversal",
            mutate: |c| insert_bad_path(c, "setup", "../escape"),
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "path_dotdot_deep",
            class: "traversal",
            mutate: |c| insert_bad_path(c, "setup", "../../../../../../tmp/escape-deep"),
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "path_absolute",
            class: "traversal",
            mutate: |c| insert_bad_path(c, "setup", "/tmp/escape-absolute"),
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "path_empty_component",
            class: "traversal",
            mutate: |c| insert_bad_path(c, "setup", "a//b"),
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "path_dot_component",
            class: "traversal",
            mutate: |c| insert_bad_path(c, "setup", "./dot"),
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "path_nul_byte",
            class: "traversal",
            mutate: |c| insert_bad_path(c, "setup", "a%00nul"),
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "symlink_escape_then_file_below",
            class: "traversal",
            mutate: |c| {
                let hash = greet_hash(c);
                c.copy.edit_layer(build_layer(c), |l| {
                    add_entry(
                        l,
                        "build",
                        "cproject-src/evil",
                        entry(
                            EntryKind::Symlink {
                                target: b"../../../..".to_vec(),
                            },
                            0o777,
                        ),
                    );
                    add_entry(
                        l,
                        "build",
                        "cproject-src/evil/pwned",
                        file_claiming(16000, hash),
                    );
                });
                words(&[&["cproject-src/evil"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "symlink_escape_in_earlier_layer",
            class: "traversal",
            mutate: |c| {
                let hash = greet_hash(c);
                let configure = c.copy.layer_index("configurePhase");
                c.copy.edit_layer(configure, |l| {
                    add_entry(
                        l,
                        "build",
                        "cproject-src/evil",
                        entry(
                            EntryKind::Symlink {
                                target: b"/".to_vec(),
                            },
                            0o777,
                        ),
                    )
                });
                c.copy.edit_layer(build_layer(c), |l| {
                    add_entry(
                        l,
                        "build",
                        "cproject-src/evil/tmp",
                        file_claiming(16000, hash),
                    )
                });
                words(&[&["cproject-src/evil"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "hardlink_outside_root",
            class: "traversal",
            mutate: |c| {
                let index = build_layer(c);
                let layer = c.copy.layer(index);
                let hash = greet_hash(c).to_hex();
                let text = String::from_utf8(layer.to_bytes()).expect("UTF-8");
                let from = format!("\"blake3\":\"{hash}\"}}");
                assert_eq!(text.matches(&from).count(), 1, "greet's entry is unique");
                let edited = text.replace(
                    &from,
                    &format!("\"blake3\":\"{hash}\",\"hardlink\":\"../../etc/shadow\"}}"),
                );
                c.copy.write_layer_text(&layer, edited.as_bytes());
                words(&[&["../../etc/shadow"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "hardlink_to_missing_path",
            class: "traversal",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    if let EntryKind::File { hardlink, .. } = &mut entry_mut(l, "build", GREET).kind
                    {
                        *hardlink = Some(rel("cproject-src/aaa-missing"));
                    }
                });
                words(&[&["hardlink"], &[GREET, "aaa-missing"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "deleted_path_never_existed",
            class: "manifest",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    l.roots
                        .get_mut("build")
                        .expect("build")
                        .deleted
                        .push(rel("zzz-not-there"));
                });
                words(&[&["zzz-not-there"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "bad_root_name",
            class: "manifest",
            mutate: |c| {
                let index = build_layer(c);
                let layer = c.copy.layer(index);
                let text = String::from_utf8(layer.to_bytes()).expect("UTF-8");
                let edited = text.replacen("\"roots\":{\"build\":", "\"roots\":{\"../x\":", 1);
                c.copy.write_layer_text(&layer, edited.as_bytes());
                words(&[&["../x"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        // ---- classic: JSON
        Variant {
            name: "truncated_layer",
            class: "json",
            mutate: |c| {
                let i = build_layer(c);
                let text = std::fs::read(c.copy.layer_path(i)).expect("layer");
                replace_layer_bytes(c, i, &text[..text.len() / 2])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "truncated_index",
            class: "json",
            mutate: |c| {
                let path = c.copy.dir.join("index.json");
                let text = std::fs::read(&path).expect("index");
                std::fs::write(&path, &text[..text.len() / 2]).expect("writing");
                words(&[&["index.json"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "empty_index",
            class: "json",
            mutate: |c| {
                std::fs::write(c.copy.dir.join("index.json"), b"").expect("writing");
                words(&[&["index.json"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "garbage_layer",
            class: "json",
            mutate: |c| {
                let mut x: u32 = 0x1234_5678;
                let garbage: Vec<u8> = (0..4096)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                replace_layer_bytes(c, build_layer(c), &garbage)
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "non_canonical_layer_whitespace",
            class: "json",
            mutate: |c| {
                let i = build_layer(c);
                let text = std::fs::read(c.copy.layer_path(i)).expect("layer");
                let mut spaced = b"{ ".to_vec();
                spaced.extend_from_slice(&text[1..]);
                let mut w = replace_layer_bytes(c, i, &spaced);
                w.push(vec!["canonical".into()]);
                w
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "non_canonical_layer_escape",
            class: "json",
            mutate: |c| {
                // `\u0063` is `c`: the same JSON value, other bytes.
                let i = build_layer(c);
                let text = String::from_utf8(std::fs::read(c.copy.layer_path(i)).expect("layer"))
                    .expect("UTF-8");
                let edited = text.replacen("\"cproject-src\"", "\"\\u0063project-src\"", 1);
                assert_ne!(edited, text);
                let mut w = replace_layer_bytes(c, i, edited.as_bytes());
                w.push(vec!["canonical".into()]);
                w
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "non_canonical_index_trailing_newline",
            class: "json",
            mutate: |c| {
                let path = c.copy.dir.join("index.json");
                let mut text = std::fs::read(&path).expect("index");
                text.push(b'\n');
                std::fs::write(&path, text).expect("writing");
                words(&[&["index.json"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "format_version_index",
            class: "json",
            mutate: |c| {
                let path = c.copy.dir.join("index.json");
                let text = std::fs::read(&path).expect("index");
                std::fs::write(&path, other_version(&text)).expect("writing");
                words(&[&["index.json"], &["found 99"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "format_version_layer",
            class: "json",
            mutate: |c| {
                let i = build_layer(c);
                let text = std::fs::read(c.copy.layer_path(i)).expect("layer");
                let mut w = replace_layer_bytes(c, i, &other_version(&text));
                w.push(vec!["found 99".into()]);
                w
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "layer_name_differs_from_index",
            class: "json",
            mutate: |c| {
                c.copy
                    .edit_layer(build_layer(c), |l| l.meta.name = "evilPhase".into());
                vec![
                    vec![layer_file_stem(c, build_layer(c))],
                    vec!["name".into()],
                ]
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "layer_hash_mismatch",
            class: "hashes",
            mutate: |c| {
                let path = c.copy.layer_path(build_layer(c));
                let text = std::fs::read_to_string(&path).expect("layer");
                let edited = ck::bump_number(&text, "mtime_ns").expect("an mtime_ns");
                std::fs::write(&path, edited).expect("writing");
                vec![vec![layer_file_stem(c, build_layer(c))]]
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        // ---- classic: files of the checkpoint
        Variant {
            name: "missing_layer_file",
            class: "layout",
            mutate: |c| {
                let path = c.copy.layer_path(build_layer(c));
                std::fs::remove_file(&path).expect("removing");
                vec![vec![layer_file_stem(c, build_layer(c))]]
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "missing_pack",
            class: "layout",
            mutate: |c| {
                std::fs::remove_file(c.copy.pack_path(build_layer(c))).expect("removing");
                words(&[&["004.pack", "missing"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "extra_top_level_file",
            class: "layout",
            mutate: |c| {
                std::fs::write(c.copy.dir.join("evil.sh"), b"touch /tmp/x\n").expect("writing");
                words(&[&["evil.sh"]])
            },
            expect: VERIFY_ONLY,
            after: None,
        },
        Variant {
            name: "extra_pack",
            class: "layout",
            mutate: |c| {
                std::fs::write(c.copy.dir.join("packs/099.pack"), b"junk").expect("writing");
                words(&[&["099.pack"]])
            },
            expect: VERIFY_ONLY,
            after: None,
        },
        Variant {
            name: "pack_is_a_symlink",
            class: "layout",
            mutate: |c| {
                let pack = c.copy.pack_path(build_layer(c));
                let outside = c.scratch.join("outside.pack");
                std::fs::rename(&pack, &outside).expect("moving");
                std::os::unix::fs::symlink(&outside, &pack).expect("symlink");
                words(&[&["004.pack"]])
            },
            expect: VERIFY_ONLY,
            after: None,
        },
        Variant {
            name: "truncated_pack",
            class: "layout",
            mutate: |c| {
                let pack = c.copy.pack_path(build_layer(c));
                let bytes = std::fs::read(&pack).expect("pack");
                std::fs::write(&pack, &bytes[..bytes.len() - 10]).expect("writing");
                words(&[&["004.pack", "004"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        // ---- classic: blobs
        Variant {
            name: "blob_flipped_zstd",
            class: "hashes",
            mutate: |c| {
                let hash = greet_hash(c);
                flip_stored_byte(c, &hash);
                vec![vec![hash.to_hex()]]
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "blob_flipped_raw",
            class: "hashes",
            mutate: |c| {
                // A raw blob of a layer up to buildPhase (referenced, so verify rehashes it).
                let raw = (0..=build_layer(c))
                    .flat_map(|i| c.copy.layer(i).blobs)
                    .find(|b| b.encoding == Encoding::Raw && b.length > 0)
                    .expect("a raw blob up to buildPhase")
                    .blake3;
                flip_stored_byte(c, &raw);
                vec![vec![raw.to_hex()]]
            },
            expect: VERIFY_ONLY,
            after: None,
        },
        Variant {
            name: "blob_table_overlap",
            class: "hashes",
            mutate: |c| {
                c.copy
                    .edit_layer(build_layer(c), |l| l.blobs[1].offset -= 1);
                words(&[&["blob table", "starts at"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "blob_stored_twice",
            class: "hashes",
            mutate: |c| {
                let hash = greet_hash(c);
                let (pack, offset, length, encoding) = locate(c, &hash);
                let stored = std::fs::read(&pack).expect("pack")
                    [offset as usize..(offset + length) as usize]
                    .to_vec();
                let later = c.copy.layer_index("installPhase");
                c.copy.append_blob(later, &hash.to_hex(), &stored, encoding);
                vec![vec![hash.to_hex()]]
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        Variant {
            name: "patched_blob_lies",
            class: "hashes",
            mutate: |c| {
                // A new file claimed to be greet's size of `z`s, stored as a patch of greet
                // that does not give that.
                let base = greet_hash(c);
                let mut layer = c.copy.layer(build_layer(c));
                let EntryKind::File { size, .. } = entry_mut(&mut layer, "build", GREET).kind
                else {
                    panic!("greet is a file")
                };
                let hash = repeated_hash(b'z', size);
                let record = checkpoint_builder::checkpoint::patch::Patch {
                    base,
                    size,
                    regions: vec![checkpoint_builder::checkpoint::patch::Region {
                        offset: 0,
                        bytes: b"z".to_vec(),
                    }],
                }
                .to_bytes();
                let i = build_layer(c);
                c.copy.append_blob(i, &hash, &record, Encoding::Patch);
                let h = ContentHash::from_hex(&hash).expect("hash");
                c.copy.edit_layer(i, |l| {
                    add_entry(
                        l,
                        "build",
                        "cproject-src/patched.bin",
                        file_claiming(size, h),
                    )
                });
                vec![vec![hash]]
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "delta_blob_lies",
            class: "hashes",
            mutate: |c| {
                // A new file claimed to be greet's size of `z`s, stored as a delta of greet
                // whose frame gives greet again.
                let base = greet_hash(c);
                let greet = c.copy.read_blob(&base);
                let size = greet.len() as u64;
                let hash = repeated_hash(b'z', size);
                let frame =
                    checkpoint_builder::checkpoint::delta::encode(&greet, &greet).expect("a frame");
                let record = checkpoint_builder::checkpoint::delta::DeltaHeader {
                    base,
                    base_size: size,
                    size,
                }
                .record(&frame);
                let i = build_layer(c);
                c.copy.append_blob(i, &hash, &record, Encoding::Delta);
                let h = ContentHash::from_hex(&hash).expect("hash");
                c.copy.edit_layer(i, |l| {
                    add_entry(l, "build", "cproject-src/delta.bin", file_claiming(size, h))
                });
                vec![vec![hash]]
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        // ---- decompression bombs
        Variant {
            name: "bomb_file_blob",
            class: "bomb",
            mutate: |c| {
                // 4 KiB of zeros claimed; the frame inflates to 64 GiB.
                let hash = repeated_hash(0, 4096);
                let i = build_layer(c);
                c.copy
                    .append_blob(i, &hash, &zstd_rle_frame(0, BOMB), Encoding::Zstd);
                let h = ContentHash::from_hex(&hash).expect("hash");
                c.copy.edit_layer(i, |l| {
                    add_entry(l, "build", "cproject-src/bomb.bin", file_claiming(4096, h))
                });
                vec![vec![hash]]
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "bomb_shell_state",
            class: "bomb",
            mutate: |c| {
                let i = build_layer(c);
                let hash = repeated_hash(b' ', 100);
                c.copy
                    .append_blob(i, &hash, &zstd_rle_frame(b' ', BOMB), Encoding::Zstd);
                c.copy.edit_layer(i, |l| {
                    l.meta.attachments.insert(
                        "shell-state".into(),
                        ContentHash::from_hex(&hash).expect("hash"),
                    );
                });
                vec![vec![hash]]
            },
            expect: Expect {
                verify: UNUSABLE,
                restore: OK_OR_UNUSABLE,
                shell: UNUSABLE,
                inspect: OK_OR_UNUSABLE,
                diff: OK_OR_UNUSABLE,
            },
            after: None,
        },
        Variant {
            name: "bomb_inputs_attachment",
            class: "bomb",
            mutate: |c| {
                let i = build_layer(c);
                let hash = repeated_hash(b' ', 100);
                c.copy
                    .append_blob(i, &hash, &zstd_rle_frame(b' ', BOMB), Encoding::Zstd);
                c.copy.edit_layer(i, |l| {
                    l.meta
                        .attachments
                        .insert("inputs".into(), ContentHash::from_hex(&hash).expect("hash"));
                });
                vec![vec![hash]]
            },
            expect: Expect {
                verify: UNUSABLE,
                restore: OK_OR_UNUSABLE,
                shell: OK_OR_UNUSABLE,
                inspect: OK_OR_UNUSABLE,
                diff: UNUSABLE,
            },
            after: None,
        },
        // ---- huge content with valid hashes: streamed, or refused at a limit; never allocated
        Variant {
            name: "huge_valid_attachment",
            class: "huge",
            mutate: |c| {
                let i = build_layer(c);
                let hash = repeated_hash(0, GIB);
                c.copy
                    .append_blob(i, &hash, &zstd_rle_frame(0, GIB), Encoding::Zstd);
                c.copy.edit_layer(i, |l| {
                    l.meta
                        .attachments
                        .insert("junk".into(), ContentHash::from_hex(&hash).expect("hash"));
                });
                words(&[&["limit", "too large", "longer than"]])
            },
            expect: Expect {
                verify: OK_OR_UNUSABLE,
                restore: OK_OR_UNUSABLE,
                shell: OK_OR_UNUSABLE,
                inspect: OK_OR_UNUSABLE,
                diff: OK_OR_UNUSABLE,
            },
            after: Some(verify_and_restore_agree),
        },
        Variant {
            name: "huge_valid_shell_state",
            class: "huge",
            mutate: |c| {
                let i = build_layer(c);
                let hash = repeated_hash(b' ', GIB);
                c.copy
                    .append_blob(i, &hash, &zstd_rle_frame(b' ', GIB), Encoding::Zstd);
                c.copy.edit_layer(i, |l| {
                    l.meta.attachments.insert(
                        "shell-state".into(),
                        ContentHash::from_hex(&hash).expect("hash"),
                    );
                });
                words(&[&["shell state", "shell-state", "limit", "longer than"]])
            },
            expect: Expect {
                verify: OK_OR_UNUSABLE,
                restore: OK_OR_UNUSABLE,
                shell: UNUSABLE,
                inspect: OK_OR_UNUSABLE,
                diff: OK_OR_UNUSABLE,
            },
            after: None,
        },
        Variant {
            name: "huge_valid_file",
            class: "huge",
            mutate: |c| {
                let i = build_layer(c);
                let hash = repeated_hash(0, GIB);
                c.copy
                    .append_blob(i, &hash, &zstd_rle_frame(0, GIB), Encoding::Zstd);
                let h = ContentHash::from_hex(&hash).expect("hash");
                c.copy.edit_layer(i, |l| {
                    add_entry(l, "build", "cproject-src/huge.bin", file_claiming(GIB, h))
                });
                vec![]
            },
            expect: ALL_OK,
            after: Some(|o| {
                let path = o.target.join("build/cproject-src/huge.bin");
                let len = std::fs::metadata(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .len();
                (len == GIB)
                    .then_some(())
                    .ok_or_else(|| format!("{} has {len} bytes", path.display()))
            }),
        },
        // ---- verify/restore parity: sizes and kinds
        Variant {
            name: "claimed_size_2_pow_63",
            class: "parity",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    if let EntryKind::File { size, .. } = &mut entry_mut(l, "build", GREET).kind {
                        *size = 1 << 63;
                    }
                });
                words(&[&[GREET], &["size"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "name_300_bytes",
            class: "parity",
            mutate: |c| {
                // The builder's own types refuse such a path now: a 200-byte name is
                // written, then lengthened in the text (it sorts the same). Not of Nix's
                // base-32 alphabet, whose long runs the layer file writes escaped.
                let hash = greet_hash(c);
                let short = "o".repeat(200);
                edit_layer_text(
                    c,
                    build_layer(c),
                    |l| {
                        add_entry(
                            l,
                            "build",
                            &format!("cproject-src/{short}"),
                            file_claiming(16000, hash),
                        )
                    },
                    &[(&short, &"o".repeat(300))],
                );
                words(&[&["oooooooooooooooo"], &["255", "too long", "name"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "path_longer_than_path_max",
            class: "parity",
            mutate: |c| {
                // 25 levels of 100-byte names (within the builder's own limits), each
                // doubled in the text: a path of 5038 bytes.
                let hash = greet_hash(c);
                let component = "u".repeat(100);
                edit_layer_text(
                    c,
                    build_layer(c),
                    |l| {
                        let mut path = "cproject-src".to_owned();
                        for _ in 0..25 {
                            path = format!("{path}/{component}");
                            add_entry(l, "build", &path, entry(EntryKind::Dir, 0o755));
                        }
                        add_entry(
                            l,
                            "build",
                            &format!("{path}/deep"),
                            file_claiming(16000, hash),
                        );
                    },
                    &[(&component, &"u".repeat(200))],
                );
                words(&[&["PATH_MAX", "4096", "too long", "longer than"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "symlink_target_1_mib",
            class: "parity",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    add_entry(
                        l,
                        "build",
                        "cproject-src/biglink",
                        entry(
                            EntryKind::Symlink {
                                target: vec![b'a'; 1 << 20],
                            },
                            0o777,
                        ),
                    )
                });
                words(&[&["cproject-src/biglink"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "xattr_value_1_mib",
            class: "parity",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    entry_mut(l, "build", GREET)
                        .xattrs
                        .insert(b"user.big".to_vec(), vec![b'v'; 1 << 20]);
                });
                words(&[&["user.big"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "xattr_name_300_bytes",
            class: "parity",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    let name = format!("user.{}", "x".repeat(300));
                    entry_mut(l, "build", GREET)
                        .xattrs
                        .insert(name.into_bytes(), b"v".to_vec());
                });
                words(&[&["xattr"], &["255", "too long", "longer", "limit"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "char_device_as_a_root",
            class: "parity",
            mutate: |c| {
                let i = build_layer(c);
                let mut index = c.copy.index();
                index.roots.push("evil".into());
                index.roots.sort();
                std::fs::write(c.copy.dir.join("index.json"), index.to_bytes()).expect("writing");
                c.copy.edit_layer(i, |l| {
                    add_entry(
                        l,
                        "evil",
                        "",
                        entry(EntryKind::CharDevice { rdev: 0x103 }, 0o666),
                    )
                });
                words(&[&["evil"], &["device"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "mtime_far_future",
            class: "parity",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    entry_mut(l, "build", GREET).mtime = ts(i64::MAX / 2);
                });
                words(&[&[GREET], &["mtime"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "mtime_far_past",
            class: "parity",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    entry_mut(l, "build", GREET).mtime = ts(i64::MIN / 2);
                });
                words(&[&[GREET], &["mtime"]])
            },
            expect: CONTENT_UNUSABLE,
            after: None,
        },
        Variant {
            name: "mtime_ns_out_of_range",
            class: "parity",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    entry_mut(l, "build", GREET).mtime.nsec = 1_500_000_000;
                });
                words(&[&[GREET], &["mtime"]])
            },
            expect: ALL_UNUSABLE,
            after: None,
        },
        // ---- policies of restore
        Variant {
            name: "setuid_file_not_restored",
            class: "policy",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    entry_mut(l, "build", GREET).mode = 0o4755
                });
                vec![]
            },
            expect: ALL_OK,
            after: Some(|o| {
                let mode = mode_of(&o.target.join("build").join(GREET));
                (mode & 0o7000 == 0)
                    .then_some(())
                    .ok_or_else(|| format!("restore set the mode {mode:o} on {GREET}"))
            }),
        },
        Variant {
            name: "setgid_dir_not_restored",
            class: "policy",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    entry_mut(l, "build", "cproject-src").mode = 0o2755
                });
                vec![]
            },
            expect: ALL_OK,
            after: Some(|o| {
                let mode = mode_of(&o.target.join("build/cproject-src"));
                (mode & 0o7000 == 0)
                    .then_some(())
                    .ok_or_else(|| format!("restore set the mode {mode:o} on cproject-src"))
            }),
        },
        Variant {
            name: "socket_and_device_reported",
            class: "policy",
            mutate: |c| {
                c.copy.edit_layer(build_layer(c), |l| {
                    add_entry(
                        l,
                        "build",
                        "cproject-src/a.sock",
                        entry(EntryKind::Socket, 0o755),
                    );
                    add_entry(
                        l,
                        "build",
                        "cproject-src/zero-dev",
                        entry(EntryKind::CharDevice { rdev: 0x105 }, 0o666),
                    );
                });
                vec![]
            },
            expect: ALL_OK,
            after: Some(|o| {
                let r = o.run("restore");
                let text = format!("{}{}", r.stdout, r.stderr);
                let missing = missing_words(&text, &[&["a.sock"], &["zero-dev"], &["skip"]]);
                if !missing.is_empty() {
                    return Err(format!(
                        "restore does not report the skipped entries ({missing:?})"
                    ));
                }
                let dev = o.target.join("build/cproject-src/zero-dev");
                (std::fs::symlink_metadata(&dev).is_err())
                    .then_some(())
                    .ok_or_else(|| format!("restore created {}", dev.display()))
            }),
        },
        Variant {
            name: "restore_target_is_a_symlink",
            class: "policy",
            mutate: |c| {
                let target = c.scratch.join("work/restored");
                std::os::unix::fs::symlink(c.scratch.join("elsewhere"), &target).expect("symlink");
                words(&[&["symlink", "restored"]])
            },
            expect: Expect {
                verify: OK,
                restore: REFUSED,
                shell: OK,
                inspect: OK,
                diff: OK,
            },
            after: Some(|o| {
                let left: Vec<_> = std::fs::read_dir(&o.elsewhere)
                    .map(|d| d.flatten().map(|e| e.file_name()).collect())
                    .unwrap_or_default();
                left.is_empty()
                    .then_some(())
                    .ok_or_else(|| format!("restore wrote through the symlink: {left:?}"))
            }),
        },
        // ---- injection through the shell state
        Variant {
            name: "inject_variable_name_semicolon",
            class: "injection",
            mutate: |c| {
                let name = format!("x=1;{};y", touch(c));
                c.copy
                    .edit_shell_state(build_layer(c), |s| set_variable(s, &name, "v", false));
                words(&[&["x=1;touch"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "inject_variable_name_substitution",
            class: "injection",
            mutate: |c| {
                let name = format!("$({})", touch(c));
                c.copy
                    .edit_shell_state(build_layer(c), |s| set_variable(s, &name, "v", true));
                words(&[&["$(touch"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "inject_variable_name_newline",
            class: "injection",
            mutate: |c| {
                let name = format!("a\n{}\nb", touch(c));
                c.copy
                    .edit_shell_state(build_layer(c), |s| set_variable(s, &name, "v", false));
                words(&[&["variable", "name"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "inject_set_option_name",
            class: "injection",
            mutate: |c| {
                let name = format!("errexit; {} #", touch(c));
                c.copy.edit_shell_state(build_layer(c), |s| {
                    s["set_options"]
                        .as_array_mut()
                        .expect("set_options")
                        .push(serde_json::json!([name, true]));
                });
                words(&[&["errexit; touch"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "inject_shopt_option_name",
            class: "injection",
            mutate: |c| {
                let name = format!("extglob; {} #", touch(c));
                c.copy.edit_shell_state(build_layer(c), |s| {
                    s["shopt_options"]
                        .as_array_mut()
                        .expect("shopt_options")
                        .push(serde_json::json!([name, true]));
                });
                words(&[&["extglob; touch"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "inject_function_name",
            class: "injection",
            mutate: |c| {
                let name = format!("f; {}; g", touch(c));
                c.copy.edit_shell_state(build_layer(c), |s| {
                    s["function_names"]
                        .as_array_mut()
                        .expect("function_names")
                        .push(serde_json::json!([name, true]));
                });
                words(&[&["f; touch"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "inject_function_text_closes_early",
            class: "injection",
            mutate: |c| {
                let i = build_layer(c);
                let layer = c.copy.layer(i);
                let mut text = c.copy.read_blob(&layer.meta.attachments["shell-functions"]);
                text.extend_from_slice(
                    format!("zzEvil () \n{{ \n    true\n}}\n{}\n", touch(c)).as_bytes(),
                );
                c.copy.set_attachment(i, "shell-functions", &text);
                words(&[&["function"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "inject_function_text_one_line",
            class: "injection",
            mutate: |c| {
                let i = build_layer(c);
                let layer = c.copy.layer(i);
                let mut text = c.copy.read_blob(&layer.meta.attachments["shell-functions"]);
                // Replaces the body of the first function by one that closes early.
                let at = text
                    .windows(3)
                    .position(|w| w == b"\n{ ")
                    .expect("a function body")
                    + 1;
                text.splice(at..at, format!("{{ :; }}; {}; f2 () ", touch(c)).bytes());
                c.copy.set_attachment(i, "shell-functions", &text);
                words(&[&["function"]])
            },
            expect: SHELL_REFUSES,
            after: None,
        },
        Variant {
            name: "prompt_command_not_run_by_shell",
            class: "injection",
            mutate: |c| {
                let cmd = touch(c);
                c.copy.edit_shell_state(build_layer(c), |s| {
                    set_variable(s, "PROMPT_COMMAND", &cmd, false)
                });
                vec![]
            },
            expect: ALL_OK,
            after: None,
        },
        Variant {
            name: "ps1_substitution_not_run_by_shell",
            class: "injection",
            mutate: |c| {
                let ps1 = format!("$({})> ", touch(c));
                c.copy
                    .edit_shell_state(build_layer(c), |s| set_variable(s, "PS1", &ps1, false));
                vec![]
            },
            expect: ALL_OK,
            after: None,
        },
        Variant {
            name: "ps0_substitution_not_run_by_shell",
            class: "injection",
            mutate: |c| {
                let ps0 = format!("$({})", touch(c));
                c.copy
                    .edit_shell_state(build_layer(c), |s| set_variable(s, "PS0", &ps0, false));
                vec![]
            },
            expect: ALL_OK,
            after: None,
        },
        Variant {
            name: "traps_not_installed_by_shell",
            class: "injection",
            mutate: |c| {
                let t = touch(c);
                let traps = format!(
                    "trap -- '{t}' EXIT\ntrap -- '{t}' DEBUG\ntrap -- '{t}' ERR\ntrap -- '{t}' RETURN\n"
                );
                c.copy
                    .edit_shell_state(build_layer(c), |s| s["traps"] = traps.into());
                vec![]
            },
            expect: ALL_OK,
            after: None,
        },
        Variant {
            name: "value_quoting",
            class: "injection",
            mutate: |c| {
                let t = touch(c);
                let value = format!("'; {t}; '\"$({t})\"`{t}`\n$'\\n'{t}");
                c.copy.edit_shell_state(build_layer(c), |s| {
                    set_variable(s, "innocent", &value, true)
                });
                vec![]
            },
            expect: ALL_OK,
            after: None,
        },
        Variant {
            name: "assoc_key_quoting",
            class: "injection",
            mutate: |c| {
                let key = format!("]=x; {} #", touch(c));
                c.copy.edit_shell_state(build_layer(c), |s| {
                    let vars = s["variables"].as_array_mut().expect("variables");
                    vars.push(serde_json::json!({
                        "name": "zzAssoc",
                        "attributes": {},
                        "value": {"kind": "assoc", "value": [[key, "v"]]},
                    }));
                });
                vec![]
            },
            expect: ALL_OK,
            after: None,
        },
        Variant {
            name: "cwd_quoting",
            class: "injection",
            mutate: |c| {
                let cwd = format!("/nonexistent'; {}; '", touch(c));
                c.copy
                    .edit_shell_state(build_layer(c), |s| s["cwd"] = cwd.into());
                vec![]
            },
            expect: Expect {
                verify: OK,
                restore: OK,
                shell: OK_OR_UNUSABLE,
                inspect: OK,
                diff: OK,
            },
            after: None,
        },
        Variant {
            name: "inject_export_order_name",
            class: "injection",
            mutate: |c| {
                let name = format!("x;{}", touch(c));
                c.copy.edit_shell_state(build_layer(c), |s| {
                    s["export_order"]
                        .as_array_mut()
                        .expect("export_order")
                        .push(name.into());
                });
                vec![]
            },
            expect: Expect {
                verify: OK_OR_UNUSABLE,
                restore: OK,
                shell: OK_OR_UNUSABLE,
                inspect: OK,
                diff: OK_OR_UNUSABLE,
            },
            after: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Running one variant

fn find(name: &str) -> Variant {
    variants()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no variant {name}"))
}

fn check_variant(name: &str) {
    let v = find(name);
    let scratch = Scratch::new(&format!("hostile-{name}")).expect("a scratch directory");
    let root = scratch.path().to_path_buf();
    let (home, tmp, work, elsewhere, canary_dir) = (
        root.join("home"),
        root.join("tmp"),
        root.join("work"),
        root.join("elsewhere"),
        root.join("canary"),
    );
    for d in [&home, &tmp, &work, &elsewhere, &canary_dir.join("sub")] {
        std::fs::create_dir_all(d).expect("creating the scratch tree");
    }
    std::fs::write(canary_dir.join("a.txt"), b"canary\n").expect("writing a canary");
    std::fs::write(canary_dir.join("sub/b.txt"), b"canary\n").expect("writing a canary");
    let canary = root.join("PWNED");
    let copy_dir = root.join("checkpoint");
    ck::copy_checkpoint(pristine(), &copy_dir).expect("copying the checkpoint");
    let ctx = Ctx {
        copy: CkCopy::new(&copy_dir),
        canary: &canary,
        scratch: &root,
    };
    let extra_words = (v.mutate)(&ctx);
    let target = work.join("restored");
    let target_existed = std::fs::symlink_metadata(&target).is_ok();

    // The target's parent and TMPDIR may change (entries made and removed there); their
    // contents are compared entry by entry.
    let parents = [work.display().to_string(), tmp.display().to_string()];
    let without_parent_mtimes = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .map(
                |l| match parents.iter().find(|p| l.starts_with(&format!("{p} "))) {
                    Some(p) => format!("{p} (directory)"),
                    None => l,
                },
            )
            .collect()
    };
    let before = without_parent_mtimes(listing_except(&root, &[]));
    let mut runs = Vec::new();
    let os = OsStr::new;
    let ck_os = copy_dir.as_os_str();
    for (command, args, input) in [
        ("verify", vec![os("verify"), ck_os, os("--json")], &b""[..]),
        ("inspect", vec![os("inspect"), ck_os, os("--json")], b""),
        ("diff", vec![os("diff"), pristine().as_os_str(), ck_os], b""),
        (
            "shell",
            vec![os("shell"), ck_os, os("--after"), os(PHASE)],
            b"exit\n",
        ),
        (
            "restore",
            vec![
                os("restore"),
                ck_os,
                os("--after"),
                os(PHASE),
                target.as_os_str(),
            ],
            b"",
        ),
    ] {
        runs.push((command, run_bounded(&args, input, &home, &tmp)));
    }
    let outcome = Outcome {
        target: target.clone(),
        elsewhere,
        runs,
    };

    let mut problems = Vec::new();
    let mut report = format!("variant {name} ({})\n", v.class);
    for (command, run) in &outcome.runs {
        let expected = match *command {
            "verify" => v.expect.verify,
            "inspect" => v.expect.inspect,
            "diff" => v.expect.diff,
            "shell" => v.expect.shell,
            _ => v.expect.restore,
        };
        report.push_str(&format!(
            "  {command}: {:?} in {:.2}s, {} KiB: {}\n",
            run.code,
            run.elapsed.as_secs_f64(),
            run.max_rss_kib,
            run.stderr.lines().last().unwrap_or("")
        ));
        if !expected.allows(run.code) {
            problems.push(format!(
                "{command} should exit {:?}: {}",
                expected.0,
                run.describe()
            ));
        }
        if run.elapsed > TIME_BOUND {
            problems.push(format!(
                "{command} took longer than {TIME_BOUND:?}: {}",
                run.describe()
            ));
        }
        if run.max_rss_kib > RSS_BOUND_KIB {
            problems.push(format!(
                "{command} used more than {RSS_BOUND_KIB} KiB: {}",
                run.describe()
            ));
        }
        if run.code != Some(0) && run.code.is_some() && !extra_words.is_empty() {
            let groups: Vec<Vec<&str>> = extra_words
                .iter()
                .map(|g| g.iter().map(String::as_str).collect())
                .collect();
            let groups: Vec<&[&str]> = groups.iter().map(Vec::as_slice).collect();
            let missing = missing_words(&run.stderr, &groups);
            if !missing.is_empty() {
                problems.push(format!(
                    "{command}'s message does not name the problem (missing {missing:?}): {}",
                    run.describe()
                ));
            }
        }
        if *command == "verify" && run.code == Some(65) && !run.stdout.trim().is_empty() {
            problems.push(format!(
                "verify printed data for an unusable checkpoint: {}",
                run.describe()
            ));
        }
    }

    // Nothing changed in the scratch directory but the restore target and shell's own tree.
    let restore = outcome.run("restore");
    let shell = outcome.run("shell");
    let mut allowed = Vec::new();
    if restore.code == Some(0) {
        allowed.push(target.clone());
    }
    if shell.code == Some(0) {
        allowed.push(tmp.join(format!("checkpoint-shell-{PHASE}-{}", shell.pid)));
    }
    let after = without_parent_mtimes(listing_except(&root, &allowed));
    let before_kept: Vec<String> = {
        let allowed_prefixes: Vec<String> =
            allowed.iter().map(|p| p.display().to_string()).collect();
        before
            .iter()
            .filter(|l| {
                !allowed_prefixes
                    .iter()
                    .any(|p| l.starts_with(&format!("{p} ")) || l.starts_with(&format!("{p}/")))
            })
            .cloned()
            .collect()
    };
    if before_kept != after {
        problems.push(format!(
            "the commands changed the scratch directory outside the restore target (writes outside, or leftovers):\n{}",
            ck::line_diff(&before_kept.join("\n"), &after.join("\n"))
        ));
    }
    if restore.code != Some(0) && !target_existed && std::fs::symlink_metadata(&target).is_ok() {
        problems.push(format!("restore failed but left {}", target.display()));
    }
    let leftovers = restore_leftovers(&work);
    if !leftovers.is_empty() {
        problems.push(format!("restore left {leftovers:?} in {}", work.display()));
    }
    if canary.exists() {
        problems.push(format!("injected code ran: {} exists", canary.display()));
    }
    if let Some(after) = v.after {
        if let Err(e) = after(&outcome) {
            problems.push(e);
        }
    }
    eprint!("{report}");
    if !problems.is_empty() {
        panic!(
            "{report}{} problem(s):\n\n{}",
            problems.len(),
            problems.join("\n\n")
        );
    }
}

macro_rules! variant_tests {
    ($($name:ident)*) => {
        /// Every variant of the table has a test.
        const TESTED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                check_variant(stringify!($name));
            }
        )*
    };
}

variant_tests! {
    path_dotdot path_dotdot_deep path_absolute path_empty_component path_dot_component
    path_nul_byte symlink_escape_then_file_below symlink_escape_in_earlier_layer
    hardlink_outside_root hardlink_to_missing_path deleted_path_never_existed bad_root_name
    truncated_layer truncated_index empty_index garbage_layer non_canonical_layer_whitespace
    non_canonical_layer_escape non_canonical_index_trailing_newline format_version_index
    format_version_layer layer_name_differs_from_index layer_hash_mismatch missing_layer_file
    missing_pack extra_top_level_file extra_pack pack_is_a_symlink truncated_pack
    blob_flipped_zstd blob_flipped_raw blob_table_overlap blob_stored_twice patched_blob_lies
    delta_blob_lies
    bomb_file_blob
    bomb_shell_state bomb_inputs_attachment huge_valid_attachment huge_valid_shell_state
    huge_valid_file claimed_size_2_pow_63 name_300_bytes path_longer_than_path_max
    symlink_target_1_mib xattr_value_1_mib xattr_name_300_bytes char_device_as_a_root
    mtime_far_future mtime_far_past mtime_ns_out_of_range setuid_file_not_restored
    setgid_dir_not_restored socket_and_device_reported restore_target_is_a_symlink
    inject_variable_name_semicolon inject_variable_name_substitution
    inject_variable_name_newline inject_set_option_name inject_shopt_option_name
    inject_function_name inject_function_text_closes_early inject_function_text_one_line
    prompt_command_not_run_by_shell ps1_substitution_not_run_by_shell
    ps0_substitution_not_run_by_shell traps_not_installed_by_shell value_quoting
    assoc_key_quoting cwd_quoting inject_export_order_name
}

#[test]
fn every_variant_has_a_test_and_there_are_forty() {
    let table: Vec<&str> = variants().iter().map(|v| v.name).collect();
    let mut sorted = table.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), table.len(), "variant names are unique");
    let mut tested: Vec<&str> = TESTED.to_vec();
    tested.sort();
    assert_eq!(sorted, tested, "the table and the tests differ");
    assert!(table.len() >= 40, "{} variants", table.len());
}

// ---------------------------------------------------------------------------------------
// Forged checkpoints as `checkpointBase` of real builds

/// A copy of the pristine checkpoint, edited by `mutate`, added to the store.
fn forged_base(label: &str, mutate: impl FnOnce(&Ctx) -> Words) -> PathBuf {
    forged_copy_of(pristine(), label, mutate)
}

/// A copy of checkpoint `original`, edited by `mutate`, added to the store.
fn forged_copy_of(original: &Path, label: &str, mutate: impl FnOnce(&Ctx) -> Words) -> PathBuf {
    let scratch = Scratch::new(&format!("hostile-base-{label}")).expect("a scratch directory");
    let copy_dir = scratch.path().join(format!("{label}-checkpoint"));
    ck::copy_checkpoint(original, &copy_dir).expect("copying the checkpoint");
    let canary = scratch.path().join("PWNED");
    let ctx = Ctx {
        copy: CkCopy::new(&copy_dir),
        canary: &canary,
        scratch: scratch.path(),
    };
    mutate(&ctx);
    let added = std::process::Command::new("nix-store")
        .arg("--add")
        .arg(&copy_dir)
        .output()
        .expect("running nix-store --add");
    assert!(
        added.status.success(),
        "nix-store --add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&added.stdout).trim())
}

/// When a build finds what is wrong with a base.
#[derive(Clone, Copy)]
enum Found {
    /// When it loads the base, before anything is restored: "rejected", "not trusted", ….
    WhenLoaded,
    /// A blob's content, when a restore reads it or after the restores: "could not be
    /// used", the blob "corrupt" (docs/trust.md, "When the contents are checked").
    WhenRead,
}

/// Builds "install" with `base`, trusting it by default and then with
/// `checkpointBaseTrust = "any"`: each build succeeds, says why the base was not used (as
/// `found` says when the base is trusted), runs from scratch, and `out` equals the clean
/// build's.
fn check_base(label: &str, base: &Path, not_in_new_checkpoint: Option<&str>, found: Found) {
    let mut problems = Vec::new();
    for trust in [Trust::Default, Trust::Any] {
        let suffix = if trust == Trust::Any {
            "-trust-any"
        } else {
            ""
        };
        if let Err(e) = check_base_build(
            &format!("{label}{suffix}"),
            base,
            not_in_new_checkpoint,
            trust,
            found,
        ) {
            problems.push(e);
        }
    }
    if !problems.is_empty() {
        panic!("{}", problems.join("\n\n"));
    }
}

fn check_base_build(
    label: &str,
    base: &Path,
    not_in_new_checkpoint: Option<&str>,
    trust: Trust,
    found: Found,
) -> Result<(), String> {
    let b = build_trusting(&format!("from-{label}"), "install", Some(base), trust);
    let clean = clean_install();
    let mut problems = Vec::new();
    let log = b.log_lines.join("\n");
    // A base added to the store is refused for its provenance before its contents are read,
    // unless the derivation trusts it.
    let found = match trust {
        Trust::Default => Found::WhenLoaded,
        Trust::Any => found,
    };
    let missing = match found {
        Found::WhenLoaded => missing_words(
            &log,
            &[&[
                "rejected",
                "refused",
                "not trusted",
                "untrusted",
                "unusable",
                "not used",
            ]],
        ),
        Found::WhenRead => missing_words(&log, &[&["could not be used"], &["corrupt"]]),
    };
    if !missing.is_empty() {
        problems.push(format!(
            "the log does not say the base was refused:\n{}",
            b.log_tail(30)
        ));
    }
    for line in b.log_lines.iter().filter(|l| {
        missing_words(
            l,
            &[&[
                "rejected",
                "refused",
                "trust",
                "unusable",
                "could not be used",
            ]],
        )
        .is_empty()
    }) {
        eprintln!("{label}: {line}");
    }
    if !(b.ran_phase("unpackPhase") && b.ran_phase("buildPhase")) {
        problems.push(format!(
            "the phases were not run from scratch:\n{}",
            b.log_tail(30)
        ));
    }
    if normalised_out(&b) != normalised_out(clean) {
        problems.push(format!(
            "`out` ({}) differs from the clean build's ({})",
            output(&b, false).display(),
            output(clean, false).display()
        ));
    }
    if let Some(needle) = not_in_new_checkpoint {
        let new_ck = output(&b, true);
        for entry in std::fs::read_dir(new_ck.join("layers"))
            .expect("layers")
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text.contains(needle) {
                problems.push(format!(
                    "the new checkpoint took over forged content {needle}: {}",
                    entry.path().display()
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("base variant {label}:\n{}", problems.join("\n\n")))
    }
}

/// A base variant made from a CLI variant of the table.
fn base_from_table(name: &str, found: Found) {
    let v = find(name);
    let base = forged_base(name, v.mutate);
    check_base(name, &base, None, found);
}

#[test]
fn base_blob_flipped() {
    base_from_table("blob_flipped_zstd", Found::WhenRead);
}

/// A blob no restore reads is wrong ([`flip_installed_extra_txt`]): the build falls back to a
/// clean one.
#[test]
fn base_blob_no_restore_reads_flipped() {
    let base = forged_copy_of(
        output_ref(clean_install()),
        "unread-blob",
        flip_installed_extra_txt,
    );
    let b = build_trusting("a-from-unread-blob", "a", Some(&base), Trust::Any);
    assert!(
        says_unread_blob_unusable(&b),
        "no line says the base could not be used for a blob no restore read:\n{}",
        b.log_tail(40)
    );
    assert!(
        b.ran_phase("unpackPhase") && b.ran_phase("buildPhase"),
        "{}",
        b.log_tail(30)
    );
    assert!(normalised_out(&b) == normalised_out(pristine_build()));
}

/// As [`base_blob_no_restore_reads_flipped`], with an installPhase that fails: the build
/// waits for the check of the blobs no restore read before it reports the failure, so the
/// bad base still sends it to a clean build (which fails the same way, from scratch).
#[test]
fn base_blob_no_restore_reads_flipped_before_a_failing_phase() {
    let base = forged_copy_of(
        output_ref(clean_install()),
        "unread-blob-failing",
        flip_installed_extra_txt,
    );
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let case = case_file(
        "broken-install-from-unread-blob",
        "broken-install",
        Some(&base),
        Trust::Any,
    );
    let b = nix_build(&case, Some(builder)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!b.success, "the installPhase fails:\n{}", b.log_tail(30));
    assert!(
        says_unread_blob_unusable(&b),
        "no line says the base could not be used for a blob no restore read:\n{}",
        b.log_tail(40)
    );
    let failures = b
        .log_lines
        .iter()
        .filter(|l| l.contains("this installPhase fails"))
        .count();
    assert_eq!(
        failures,
        2,
        "installPhase ran over the restored tree, then from scratch:\n{}",
        b.log_tail(40)
    );
    assert!(b.ran_phase("unpackPhase"), "{}", b.log_tail(30));
}

/// Flips a stored byte of `share/greet/extra.txt`, which the "install" build's checkpoint
/// stores in its installPhase layer: a build of another variant from it restores the layers
/// through checkPhase and runs its own installPhase, so nothing reads that blob but the check
/// of the blobs no restore read, which runs beside installPhase and which the build awaits
/// before it ends (docs/trust.md, "When the contents are checked").
fn flip_installed_extra_txt(c: &Ctx) -> Words {
    let install = c.copy.layer(c.copy.layer_index("installPhase"));
    let hash = install.roots["out"]
        .changed
        .iter()
        .find(|(p, _)| p.escaped() == "share/greet/extra.txt")
        .and_then(|(_, e)| e.blob())
        .expect("installPhase makes share/greet/extra.txt");
    assert!(
        install.blobs.iter().any(|b| b.blake3 == hash),
        "the installPhase layer stores extra.txt's content"
    );
    flip_stored_byte(c, &hash);
    vec![]
}

/// Whether a line of `b`'s log says the base could not be used for a corrupt blob no
/// restore read.
fn says_unread_blob_unusable(b: &BuildResult) -> bool {
    b.log_lines.iter().any(|l| {
        missing_words(
            l,
            &[&["could not be used"], &["no restore read"], &["corrupt"]],
        )
        .is_empty()
    })
}

#[test]
fn base_truncated_index() {
    base_from_table("truncated_index", Found::WhenLoaded);
}

#[test]
fn base_format_version_layer() {
    base_from_table("format_version_layer", Found::WhenLoaded);
}

#[test]
fn base_missing_pack() {
    base_from_table("missing_pack", Found::WhenLoaded);
}

#[test]
fn base_path_dotdot() {
    base_from_table("path_dotdot", Found::WhenLoaded);
}

#[test]
fn base_symlink_escape() {
    base_from_table("symlink_escape_in_earlier_layer", Found::WhenLoaded);
}

#[test]
fn base_claimed_size_2_pow_63() {
    base_from_table("claimed_size_2_pow_63", Found::WhenLoaded);
}

#[test]
fn base_mtime_far_future() {
    base_from_table("mtime_far_future", Found::WhenLoaded);
}

#[test]
fn base_hardlink_outside_root() {
    base_from_table("hardlink_outside_root", Found::WhenLoaded);
}

#[test]
fn base_small_bomb() {
    // 256 MiB, not 64 GiB: this reader runs inside the sandbox without our limits.
    let base = forged_base("small-bomb", |c| {
        let hash = greet_hash(c);
        let i = build_layer(c);
        let (pack, offset, length, _) = locate(c, &hash);
        let mut bytes = std::fs::read(&pack).expect("pack");
        let frame = zstd_rle_frame(0, 256 << 20);
        // Replaces greet's stored bytes by the frame; later blobs move.
        let end = (offset + length) as usize;
        bytes.splice(offset as usize..end, frame.iter().copied());
        std::fs::write(&pack, bytes).expect("writing");
        let delta = frame.len() as i64 - length as i64;
        c.copy.edit_layer(i, |l| {
            for b in &mut l.blobs {
                if b.blake3 == hash {
                    b.length = frame.len() as u64;
                } else if b.offset > offset {
                    b.offset = (b.offset as i64 + delta) as u64;
                }
            }
        });
        vec![]
    });
    check_base("small-bomb", &base, None, Found::WhenLoaded);
}

/// A consistent forgery: greet's content replaced by another, with its hash; every hash
/// and table matches. Only binding content to keys (or not trusting an added path) can
/// tell.
#[test]
fn base_forged_content_consistent() {
    let forged = b"#!/bin/sh\necho PWNED\n".to_vec();
    let forged_hash = ck::blake3_hex(&forged);
    let base = forged_base("forged-content", |c| {
        let i = build_layer(c);
        let hash = c.copy.put_raw(i, &forged);
        let h = ContentHash::from_hex(&hash).expect("hash");
        c.copy.edit_layer(i, |l| {
            entry_mut(l, "build", GREET).kind = EntryKind::File {
                size: forged.len() as u64,
                blake3: h,
                hardlink: None,
            };
        });
        vec![]
    });
    check_base(
        "forged-content",
        &base,
        Some(&forged_hash),
        Found::WhenLoaded,
    );
}

/// A consistent forgery of the state: the buildPhase layer's functions define `postInstall`,
/// which the stdenv calls in installPhase.
#[test]
fn base_forged_functions() {
    let base = forged_base("forged-functions", |c| {
        let i = build_layer(c);
        let layer = c.copy.layer(i);
        let mut text = c.copy.read_blob(&layer.meta.attachments["shell-functions"]);
        text.extend_from_slice(b"postInstall () \n{ \n    mkdir -p $out/pwned\n}\n");
        c.copy.set_attachment(i, "shell-functions", &text);
        c.copy.edit_shell_state(i, |s| {
            s["function_names"]
                .as_array_mut()
                .expect("function_names")
                .push(serde_json::json!(["postInstall", false]));
        });
        vec![]
    });
    check_base("forged-functions", &base, None, Found::WhenLoaded);
}

/// An injected variable name that would write into `$out` if evaluated by the build.
#[test]
fn base_injected_variable_name() {
    let base = forged_base("injected-name", |c| {
        let i = build_layer(c);
        c.copy.edit_shell_state(i, |s| {
            set_variable(s, "x=1;mkdir -p $out/pwned;y", "v", false)
        });
        vec![]
    });
    check_base("injected-name", &base, None, Found::WhenLoaded);
}
