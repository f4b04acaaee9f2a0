//! The `checkpoint` output, built by real Nix (see `tests/checkpoint-cases/`):
//!
//! - conformance cases and the real projects (hello, lua, zstd) built with a `checkpoint`
//!   output: every other output NAR-identical (normalised) to the stock build without one,
//!   `verify` passes, `inspect` lists `setup` then the announced phases (a layer the
//!   builder writes for a phase the stdenv skips must change nothing), no output references
//!   the checkpoint, and the last layer restores the outputs exactly;
//! - a real C build (`c-build.nix`) restored after `buildPhase`: the source root equals, in
//!   every recorded detail, the listing the build itself took at the end of `buildPhase`,
//!   and its objects are newer than their sources (`make -q` finds nothing to do);
//! - hostile copies of that checkpoint (a flipped blob byte, an edited layer, another
//!   format version, an escaping path): `verify` exits 65 naming the problem, `restore`
//!   fails and writes nothing;
//! - `shell` after `buildPhase` runs commands with that phase's state.
//!
//! Each derivation is built by exactly one test (the harness deletes a derivation's
//! outputs before building it), the C build once for all its tests. `CHECKPOINT_BUILDER`,
//! `CHECKPOINT_TEST_STDENV` and `CHECKPOINT_SOURCES` work as in the other suites. Nothing is
//! skipped: a missing prerequisite fails the test.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use integration_tests::checkpoint::{
    self as ck, build_with_checkpoint, check_checkpoint, checkpoint_cases_dir, compare_with_stock,
    CheckpointBuild, Scratch, BAD_INPUT, BUILD_ROOT, CHECKPOINT_UNUSABLE,
};
use integration_tests::nix::{self, BuildResult};
use integration_tests::projects::{self, Project};

/// Log lines shown when a build fails.
const LOG_TAIL: usize = 60;

fn require_success(label: &str, build: &BuildResult) -> Result<(), String> {
    if build.success {
        return Ok(());
    }
    Err(format!(
        "the {label} build failed: {}\n--- log (tail)\n{}\n--- errors\n{}",
        build.describe(),
        build.log_tail(LOG_TAIL),
        build.errors.join("\n")
    ))
}

/// The stock build `stock` against `ours` (the same derivation plus a checkpoint output),
/// then every checkpoint check; `Ok` is a summary.
fn check_against_stock(
    label: &str,
    stock: &BuildResult,
    ours: &CheckpointBuild,
) -> Result<String, String> {
    require_success("stock", stock).map_err(|e| format!("{label}: {e}"))?;
    let comparison = compare_with_stock(stock, ours).map_err(|e| format!("{label}: {e}"))?;
    if !comparison.differences.is_empty() {
        return Err(format!(
            "{label}: the build with a checkpoint output differs from stock\n  stock: {}\n  ours:  {}\n{}",
            stock.describe(),
            ours.build.describe(),
            comparison.differences.join("\n\n")
        ));
    }
    let lines = check_checkpoint(ours).map_err(|e| format!("{label}: {e}"))?;
    let mut summary = format!(
        "{label}\n  stock: {}\n  ours:  {}",
        stock.describe(),
        ours.build.describe()
    );
    for line in &lines {
        summary.push_str("\n  ");
        summary.push_str(line);
    }
    for note in &comparison.notes {
        summary.push_str("\n  note: ");
        summary.push_str(note);
    }
    Ok(summary)
}

fn run(result: Result<String, String>) {
    match result {
        Ok(summary) => eprintln!("{summary}"),
        Err(report) => panic!("{report}"),
    }
}

// ---------------------------------------------------------------------------------------
// 1 and 2: conformance cases and real projects with a checkpoint output

/// Builds `tests/cases/<file>` stock and `tests/checkpoint-cases/cases/<file>` (the same
/// case with a checkpoint output) with the builder under test, and checks everything.
fn check_case(file: &str) -> Result<String, String> {
    let stock = nix::nix_build(&nix::cases_dir().join(file), None)
        .map_err(|e| format!("{file} (stock): {e}"))?;
    let ours = build_with_checkpoint(&checkpoint_cases_dir().join("cases").join(file))?;
    check_against_stock(file, &stock, &ours)
}

/// One test per wrapped case: `name, "file.nix"`.
macro_rules! cases {
    ($($test:ident, $file:literal;)*) => {
        /// Every case file the macro lists.
        const LISTED: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $test() {
                run(check_case($file));
            }
        )*
    };
}

cases! {
    case_01_autotools_like, "01-autotools-like.nix";
    case_03_assoc_and_arrays, "03-assoc-and-arrays.nix";
    case_07a_source_root_spaces_nested, "07a-source-root-spaces-nested.nix";
    case_09_working_directory, "09-working-directory.nix";
    case_10a_custom_phases, "10a-custom-phases.nix";
    case_16_structured_attrs, "16-structured-attrs.nix";
    case_17a_multiple_outputs, "17a-multiple-outputs.nix";
    case_21a_options_carried, "21a-options-carried.nix";
    case_23_umask_ulimit, "23-umask-ulimit.nix";
}

/// Every `tests/checkpoint-cases/cases/*.nix` has a test above and wraps the conformance
/// case of the same name.
#[test]
fn every_wrapped_case_is_listed() {
    let dir = checkpoint_cases_dir().join("cases");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".nix"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/checkpoint-cases/cases/*.nix and the list in checkpoint.rs differ"
    );
    for file in LISTED {
        let wrapper = std::fs::read_to_string(dir.join(file)).expect("listed files exist");
        assert!(
            wrapper.contains(&format!("../../cases/{file}")),
            "{file} does not wrap tests/cases/{file}"
        );
        assert!(
            nix::cases_dir().join(file).is_file(),
            "tests/cases/{file} is missing"
        );
    }
}

/// Builds `project` stock (as `tests/real_projects.rs` does) and through
/// `tests/projects/default.nix` with `checkpoint = true`, checks everything and runs the
/// programs built with the checkpoint output.
fn check_project(project: Project) -> Result<String, String> {
    let name = project.name();
    let harness = |e: integration_tests::HarnessError| format!("{name}: {e}");
    let stock_case = projects::case_file(project).map_err(harness)?;
    let stock = nix::nix_build(&stock_case, None).map_err(harness)?;
    let our_case = ck::project_case_file(project).map_err(harness)?;
    let ours = build_with_checkpoint(&our_case)?;
    let mut summary = check_against_stock(name, &stock, &ours)?;
    let out = ours
        .output("out")
        .ok_or_else(|| format!("{name}: no `out` output"))?;
    for check in project.smoke_checks() {
        let line = check.run(out).map_err(|e| format!("{name} (ours): {e}"))?;
        summary.push_str("\n  ");
        summary.push_str(&line);
    }
    Ok(summary)
}

#[test]
fn hello_with_checkpoint() {
    run(check_project(Project::Hello));
}

#[test]
fn lua_with_checkpoint() {
    run(check_project(Project::Lua));
}

#[test]
fn zstd_with_checkpoint() {
    run(check_project(Project::Zstd));
}

// ---------------------------------------------------------------------------------------
// The C build, shared by tests 3, 4 and 5

/// The C build of `tests/checkpoint-cases/c-build.nix`, built once per test process.
fn c_build() -> &'static CheckpointBuild {
    static BUILD: OnceLock<Result<CheckpointBuild, String>> = OnceLock::new();
    match BUILD.get_or_init(|| build_with_checkpoint(&checkpoint_cases_dir().join("c-build.nix"))) {
        Ok(build) => build,
        Err(e) => panic!("c-build.nix: {e}"),
    }
}

/// The C build's `out`.
fn c_build_out() -> &'static Path {
    c_build().output("out").expect("c-build.nix has an `out`")
}

/// A file of the C build's `out`, as text.
fn out_text(name: &str) -> String {
    let path = c_build_out().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn mtime_ns(path: &Path) -> i128 {
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

#[test]
fn c_build_checkpoint_passes_every_check() {
    let lines = check_checkpoint(c_build()).unwrap_or_else(|e| panic!("c-build.nix: {e}"));
    eprintln!("c-build.nix\n  {}", lines.join("\n  "));
}

/// The listing the build took in `postBuild` says what this test relies on: every kind of
/// entry is there and mtimes have nanoseconds.
#[test]
fn c_build_listing_records_what_the_restore_test_compares() {
    let listing = out_text("tree-after-build.txt");
    let entry = |path: &str| -> Vec<String> {
        listing
            .lines()
            .find(|l| l.split('\t').next() == Some(path))
            .unwrap_or_else(|| panic!("{path} is not in the listing:\n{listing}"))
            .split('\t')
            .map(str::to_owned)
            .collect()
    };
    // path, type, mode, links, mtime, size, target
    assert_eq!(entry("./dangling-link")[1], "l");
    assert_eq!(entry("./dangling-link")[6], "does-not-exist");
    assert_eq!(entry("./link-to-prog")[6], "prog");
    assert_eq!(entry("./a-fifo")[1], "p");
    assert_eq!(entry("./empty-dir")[1], "d");
    assert_eq!(entry("./read-only.txt")[2], "444");
    assert_eq!(entry("./read-only-dir")[2], "555");
    assert_eq!(entry("./prog")[3], "2");
    assert_eq!(entry("./prog.hardlink")[3], "2");
    assert_eq!(entry("./file with space.txt")[1], "f");
    assert_eq!(entry("./100%.txt")[1], "f");
    assert_eq!(entry("./sparse.bin")[5], "1048581");
    // Larger than what a snapshot reads into memory at once (blobs::STREAM_THRESHOLD).
    assert_eq!(entry("./large.txt")[5], "4788895");
    let mtimes: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split('\t').nth(4))
        .collect();
    assert!(
        mtimes.iter().all(|m| m
            .split_once('.')
            .is_some_and(|(s, f)| !s.is_empty() && f.len() >= 9)),
        "find's %T@ does not print nanoseconds: {mtimes:?}"
    );
    assert!(
        mtimes.iter().any(|m| m
            .split_once('.')
            .is_some_and(|(_, f)| !f.trim_matches('0').is_empty())),
        "no mtime has a sub-second part, so the comparison would not prove nanoseconds: {mtimes:?}"
    );
    assert!(
        listing.contains("  ./prog\n") && listing.contains("  ./main.o\n"),
        "no sha256 lines in the listing:\n{listing}"
    );
}

// ---------------------------------------------------------------------------------------
// 3: restore after buildPhase is the build directory of that moment

/// The layer after a phase that starts no process is recorded without walking the trees
/// only while no process of the build runs: with a job of buildPhase still running,
/// checkPhase's layer is a walk; after the job has ended, installCheckPhase's and
/// distPhase's are not. The job's file is in the layers from installPhase on.
#[test]
fn a_phase_without_a_process_skips_the_walk_only_when_nothing_runs() {
    let file = checkpoint_cases_dir().join("background-job.nix");
    let built = build_with_checkpoint(&file).unwrap_or_else(|e| panic!("{e}"));
    let note = |phase: &str| -> String {
        let prefix = format!("checkpoint-builder:   snapshot after {phase}: ");
        built
            .build
            .log_lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no note for {phase}:\n{}", built.build.log_tail(40)))
            .clone()
    };
    let unchanged = "(unchanged: no process ran since the last walk)";
    assert!(
        note("checkPhase").contains("hashed") && !note("checkPhase").contains(unchanged),
        "a job was running: {}",
        note("checkPhase")
    );
    for phase in ["installCheckPhase", "distPhase"] {
        assert!(note(phase).ends_with(unchanged), "{}", note(phase));
    }
    let inspect = ck::inspect(&built.checkpoint).unwrap_or_else(|e| panic!("{e}"));
    let names = ck::layer_names(&inspect).unwrap_or_else(|e| panic!("{e}"));
    let scratch = Scratch::new("background-job").expect("a scratch directory");
    for phase in ["installPhase", "installCheckPhase", "distPhase"] {
        let dir = scratch.path().join(phase);
        ck::restore_ok(&built.checkpoint, phase, &dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(dir.join("build/late")).unwrap(),
            "written by the job\n",
            "{phase}"
        );
    }
    assert!(names.iter().any(|n| n == "checkPhase"), "{names:?}");
}

#[test]
fn restore_after_build_phase_equals_the_build_tree() {
    let build = c_build();
    let recorded = out_text("tree-after-build.txt");
    let source_root = out_text("source-root").trim_end().to_owned();
    assert!(
        !source_root.is_empty() && !source_root.starts_with('/'),
        "source-root should be relative to $NIX_BUILD_TOP: {source_root:?}"
    );
    let scratch = Scratch::new("restore-build").expect("a scratch directory");
    let dir = scratch.path().join("restored");
    ck::restore_ok(&build.checkpoint, "buildPhase", &dir)
        .unwrap_or_else(|e| panic!("restore after buildPhase: {e}"));
    let tree = dir.join(BUILD_ROOT).join(&source_root);
    let listing = ck::tree_listing(&tree).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        listing == recorded,
        "the tree restored after buildPhase ({}) differs from the one the build listed \
         at the end of buildPhase ({}):\n{}",
        tree.display(),
        c_build_out().join("tree-after-build.txt").display(),
        ck::line_diff(&recorded, &listing)
    );

    // Real mtimes, objects newer than their sources: make finds nothing to do.
    let config_h = mtime_ns(&tree.join("config.h"));
    assert!(
        config_h > 1_000_000_000,
        "config.h (generated by configurePhase) has mtime {config_h} ns: not a real one"
    );
    let prog = mtime_ns(&tree.join("prog"));
    for stem in ["main", "util", "greet"] {
        let object = mtime_ns(&tree.join(format!("{stem}.o")));
        assert!(object > 1_000_000_000, "{stem}.o has mtime {object} ns");
        for source in [format!("{stem}.c"), "util.h".into(), "config.h".into()] {
            let source_mtime = mtime_ns(&tree.join(&source));
            assert!(
                object >= source_mtime,
                "{stem}.o ({object} ns) is older than {source} ({source_mtime} ns)"
            );
        }
        assert!(prog >= object, "prog is older than {stem}.o");
    }
    let make = Command::new("make")
        .args(["-q", "prog", "libutil.a"])
        .current_dir(&tree)
        .output()
        .expect("make runs");
    assert!(
        make.status.success(),
        "`make -q prog libutil.a` in the restored tree says something is out of date ({}):\n{}{}",
        make.status,
        String::from_utf8_lossy(&make.stdout),
        String::from_utf8_lossy(&make.stderr)
    );

    // postInstall overwrote bytes of two files buildPhase left, in place, while buildPhase's
    // layer may still have been being stored: that layer holds them as buildPhase left them
    // (compared in the listing above), installPhase's as postInstall did.
    let after_install = scratch.path().join("after-install");
    ck::restore_ok(&build.checkpoint, "installPhase", &after_install)
        .unwrap_or_else(|e| panic!("restore after installPhase: {e}"));
    let installed_tree = after_install.join(BUILD_ROOT).join(&source_root);
    let large = std::fs::read(installed_tree.join("large.txt")).expect("large.txt");
    assert_eq!(
        &large[1000..1026],
        b"overwritten by postInstall",
        "large.txt after installPhase"
    );
    assert_eq!(
        std::fs::read(installed_tree.join("file with space.txt")).expect("file with space.txt"),
        b"A space\n",
        "file with space.txt after installPhase"
    );
    assert_eq!(
        std::fs::read(tree.join("file with space.txt")).expect("file with space.txt"),
        b"a space\n",
        "file with space.txt after buildPhase"
    );

    // `out` as it was after buildPhase: the two files postBuild wrote.
    let restored_listing = dir.join("out/tree-after-build.txt");
    assert_eq!(
        std::fs::read_to_string(&restored_listing)
            .unwrap_or_else(|e| panic!("reading {}: {e}", restored_listing.display())),
        recorded,
        "out/tree-after-build.txt restored after buildPhase differs from the store's"
    );
}

// ---------------------------------------------------------------------------------------
// 4: hostile checkpoints

/// A writable copy of the C build's checkpoint in a fresh scratch directory.
fn hostile_copy(label: &str) -> (Scratch, PathBuf) {
    let scratch = Scratch::new(label).expect("a scratch directory");
    let copy = scratch.path().join("checkpoint");
    ck::copy_checkpoint(&c_build().checkpoint, &copy).expect("copying the checkpoint");
    (scratch, copy)
}

/// `verify` exits 65 and its message contains every one of `needles`; `restore` after
/// buildPhase exits 65, leaves no target directory, and changes nothing in the scratch
/// directory (the checkpoint copy included).
fn assert_rejected(scratch: &Scratch, copy: &Path, needles: &[&str]) {
    let verify = ck::cli(&[OsStr::new("verify"), copy.as_os_str(), OsStr::new("--json")])
        .expect("running verify");
    assert_eq!(
        verify.code,
        Some(CHECKPOINT_UNUSABLE),
        "verify should exit {CHECKPOINT_UNUSABLE}: {}",
        verify.describe()
    );
    for needle in needles {
        assert!(
            verify.stderr.contains(needle),
            "verify's message does not name the problem ({needle:?}): {}",
            verify.describe()
        );
    }
    eprintln!("verify {}:\n{}", copy.display(), verify.stderr);
    assert!(
        verify.stdout.trim().is_empty(),
        "verify printed data for an unusable checkpoint: {}",
        verify.describe()
    );

    let target = scratch.path().join("restored");
    let before = ck::snapshot_listing(scratch.path()).expect("listing the scratch directory");
    let restore = ck::restore(copy, "buildPhase", &target).expect("running restore");
    let after = ck::snapshot_listing(scratch.path()).expect("listing the scratch directory");
    assert_eq!(
        restore.code,
        Some(CHECKPOINT_UNUSABLE),
        "restore should exit {CHECKPOINT_UNUSABLE}: {}",
        restore.describe()
    );
    if std::fs::symlink_metadata(&target).is_ok() {
        let left = ck::snapshot_listing(&target).unwrap_or_default();
        panic!(
            "restore failed but left the target {} ({} entries, first ones:\n  {})\n{}",
            target.display(),
            left.len(),
            left.iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  "),
            restore.describe()
        );
    }
    assert_eq!(
        before,
        after,
        "restore changed the scratch directory:\n{}",
        ck::line_diff(&before.join("\n"), &after.join("\n"))
    );
}

/// Flips one byte of the blob of the largest file of `root` that buildPhase changed.
fn flip_blob_of(root: &str, label: &str) {
    let (scratch, copy) = hostile_copy(label);
    let layer = ck::layer_file(&copy, "buildPhase").expect("a buildPhase layer");
    let text = std::fs::read_to_string(&layer).expect("reading the layer");
    let hash = ck::largest_file_hash(&text, root)
        .unwrap_or_else(|| panic!("{} changes no file of `{root}`", layer.display()));
    let (pack, offset, length) =
        ck::blob_range(&copy, &hash).unwrap_or_else(|| panic!("no blob for {hash}"));
    let mut bytes = std::fs::read(&pack).expect("reading the pack");
    let range = offset as usize..(offset + length) as usize;
    ck::flip_middle_byte(&mut bytes[range]);
    std::fs::write(&pack, bytes).expect("writing the pack");
    assert_rejected(&scratch, &copy, &[&hash]);
}

#[test]
fn hostile_flipped_blob_byte() {
    flip_blob_of(BUILD_ROOT, "flipped-blob");
}

/// The same in `out`, which is restored after `build`: the failure comes once `build` is
/// complete, and nothing of it may stay.
#[test]
fn hostile_flipped_blob_byte_in_a_later_root() {
    flip_blob_of("out", "flipped-blob-out");
}

#[test]
fn hostile_edited_layer() {
    let (scratch, copy) = hostile_copy("edited-layer");
    let layer = ck::layer_file(&copy, "buildPhase").expect("a buildPhase layer");
    let text = std::fs::read_to_string(&layer).expect("reading the layer");
    let edited = ck::bump_number(&text, "mtime_ns").expect("an mtime_ns in the layer");
    std::fs::write(&layer, edited).expect("writing the layer");
    let file_name = layer.file_name().and_then(OsStr::to_str).expect("a name");
    assert_rejected(&scratch, &copy, &[file_name]);
}

#[test]
fn hostile_format_version_in_index() {
    let (scratch, copy) = hostile_copy("version-index");
    let index = copy.join("index.json");
    let text = std::fs::read_to_string(&index).expect("reading index.json");
    let (ours, other) = (ck::FORMAT_VERSION, ck::FORMAT_VERSION + 1);
    let edited = ck::set_format_version(&text, other).expect("index.json starts with our version");
    std::fs::write(&index, edited).expect("writing index.json");
    let why = format!("expected {ours}, found {other}");
    assert_rejected(&scratch, &copy, &["index.json", &why]);
}

#[test]
fn hostile_format_version_in_layer() {
    let (scratch, copy) = hostile_copy("version-layer");
    let layer = ck::layer_file(&copy, "buildPhase").expect("a buildPhase layer");
    let text = std::fs::read_to_string(&layer).expect("reading the layer");
    let (ours, other) = (ck::FORMAT_VERSION, ck::FORMAT_VERSION + 1);
    let edited = ck::set_format_version(&text, other).expect("the layer starts with our version");
    // The index names the new bytes: only the version is wrong.
    ck::rewrite_layer(&copy, &layer, &edited).unwrap_or_else(|e| panic!("{e}"));
    let file_name = layer.file_name().and_then(OsStr::to_str).expect("a name");
    let why = format!("expected {ours}, found {other}");
    assert_rejected(&scratch, &copy, &[file_name, &why]);
}

#[test]
fn hostile_escaping_path() {
    let (scratch, copy) = hostile_copy("escaping-path");
    let layer = ck::layer_file(&copy, "setup").expect("a setup layer");
    let text = std::fs::read_to_string(&layer).expect("reading the layer");
    let edited = ck::insert_entry_copy(&text, BUILD_ROOT, "../escape")
        .unwrap_or_else(|| panic!("{} has no entry to copy", layer.display()));
    let paths = ck::changed_paths(&edited, BUILD_ROOT).expect("the edited layer parses");
    let mut sorted = paths.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        paths, sorted,
        "the edit must keep the changed list sorted and unique"
    );
    // The index names the new bytes: only the path is wrong.
    ck::rewrite_layer(&copy, &layer, &edited).unwrap_or_else(|e| panic!("{e}"));
    assert_rejected(&scratch, &copy, &["../escape"]);
    assert!(
        !scratch.path().join("escape").exists() && !scratch.path().join("restored/escape").exists(),
        "something was written to an `escape` path"
    );
}

#[test]
fn restore_after_an_unknown_phase_is_bad_input() {
    let scratch = Scratch::new("unknown-phase").expect("a scratch directory");
    let target = scratch.path().join("restored");
    let run = ck::restore(&c_build().checkpoint, "noSuchPhase", &target).expect("running restore");
    assert_eq!(run.code, Some(BAD_INPUT), "{}", run.describe());
    assert!(
        run.stderr.contains("noSuchPhase") && run.stderr.contains("buildPhase"),
        "the message should name the phase asked for and the ones there are: {}",
        run.describe()
    );
    assert!(
        !target.exists(),
        "restore left {} after failing",
        target.display()
    );
}

// ---------------------------------------------------------------------------------------
// 5: shell

#[test]
fn shell_after_build_phase_has_the_phase_state() {
    let build = c_build();
    let scratch = Scratch::new("shell").expect("a scratch directory");
    let source_root = out_text("source-root").trim_end().to_owned();
    let input = concat!(
        "echo \"$curPhase|$PWD|$(type -t countObjects)|$NIX_BUILD_TOP|$(countObjects)\"\n",
        "exit\n"
    );
    let run = ck::cli_with(
        &[
            OsStr::new("shell"),
            build.checkpoint.as_os_str(),
            OsStr::new("--after"),
            OsStr::new("buildPhase"),
        ],
        input.as_bytes(),
        &[("TMPDIR", scratch.path().as_os_str())],
    )
    .expect("running shell");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    // Documented default: the tree goes to $TMPDIR/checkpoint-shell-<phase>-<pid>.
    let base = scratch
        .path()
        .join(format!("checkpoint-shell-buildPhase-{}", run.pid));
    let top = base.join(BUILD_ROOT);
    let expected = format!(
        "buildPhase|{}|function|{}|3\n",
        top.join(&source_root).display(),
        top.display()
    );
    assert_eq!(run.stdout, expected, "{}", run.describe());
    assert!(
        top.join(&source_root).join("prog").is_file(),
        "the shell's restored tree is not in {}",
        base.display()
    );
}
