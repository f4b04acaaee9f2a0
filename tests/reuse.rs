//! Reuse of an earlier build's checkpoint (issue 4), with real Nix: which phases are restored,
//! why the others run, that `out` equals a clean build of the same derivation, and that bad
//! checkpoints give a clean build with a clear message.
//!
//! The projects are `tests/reuse-cases/cproject.nix` (make) and `ninja-project.nix` (ninja,
//! configured by CMake or Meson); each build is a generated case file under
//! `target/reuse-cases/` naming the variant and the base checkpoint.

use checkpoint_builder::checkpoint::{Checkpoint, RelPath};
use integration_tests::checkpoint::FORMAT_VERSION;
use integration_tests::forge;
use integration_tests::nix::repo_root;
use integration_tests::outputs::{normalised_nar, normalised_out, output};
use integration_tests::reuse_cases::{base_attr, build_ok, case_file};
use integration_tests::{builder_binary, BuildResult};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A project of `tests/reuse-cases/`: its file, and the attributes it takes besides
/// `variant`, `name`, `salt` and `base`.
#[derive(Clone, Copy)]
struct ReuseProject {
    file: &'static str,
    attrs: &'static str,
    /// Prefix of its case files' labels.
    label: &'static str,
}

const CPROJECT: ReuseProject = ReuseProject {
    file: "cproject",
    attrs: "",
    label: "cproject",
};
/// `cproject` with `checkpointBaseTrust = "any"` (docs/trust.md).
const CPROJECT_TRUSTING: ReuseProject = ReuseProject {
    file: "cproject",
    attrs: "baseTrust = \"any\";",
    label: "cproject",
};
const CMAKE_PROJECT: ReuseProject = ReuseProject {
    file: "ninja-project",
    attrs: "generator = \"cmake\";",
    label: "cmake",
};
/// The CMake project of `ninja-project.nix` generated for make.
const CMAKE_MAKE_PROJECT: ReuseProject = ReuseProject {
    file: "ninja-project",
    attrs: "generator = \"cmake-make\";",
    label: "cmake-make",
};
const MESON_PROJECT: ReuseProject = ReuseProject {
    file: "ninja-project",
    attrs: "generator = \"meson\";",
    label: "meson",
};

/// Each test uses its own package name (same length), so tests running in parallel never
/// build the same derivation.
fn build(test: u32, label: &str, variant: &str, base: Option<&Path>) -> BuildResult {
    build_named(label, variant, &format!("reuse-cproject-{test}"), base)
}

/// The three builds most tests here compare: `a`, a full build of variant `earlier`; `b`,
/// variant `variant` with `a`'s checkpoint as its base; and `clean`, variant `variant` with
/// no base. Case labels `<label>-base`, `<label>-from-a` and `<label>-clean`.
struct Triple {
    a: BuildResult,
    b: BuildResult,
    clean: BuildResult,
}

fn triple(test: u32, label: &str, earlier: &str, variant: &str) -> Triple {
    let a = build(test, &format!("{label}-base"), earlier, None);
    let b = build(
        test,
        &format!("{label}-from-a"),
        variant,
        Some(&output(&a, true)),
    );
    let clean = build(test, &format!("{label}-clean"), variant, None);
    Triple { a, b, clean }
}

fn build_named(label: &str, variant: &str, name: &str, base: Option<&Path>) -> BuildResult {
    build_project(CPROJECT, label, variant, name, base)
}

fn build_project(
    project: ReuseProject,
    label: &str,
    variant: &str,
    name: &str,
    base: Option<&Path>,
) -> BuildResult {
    let attrs = format!(
        "variant = \"{variant}\"; name = \"{name}\"; {} {}",
        base_attr(base),
        project.attrs
    );
    build_ok(
        &case_file("reuse-cases", label, project.file, &attrs),
        label,
    )
}

/// The builder's explanation line for `phase`.
fn decision(result: &BuildResult, phase: &str) -> String {
    result
        .decision_line(phase)
        .unwrap_or_else(|| panic!("no decision line for {phase}\n{}", result.log_tail(40)))
        .to_owned()
}

fn references(path: &Path) -> Vec<String> {
    let out = Command::new("nix-store")
        .arg("-q")
        .arg("--references")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

fn contains_bytes(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .collect()
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(builder_binary().unwrap())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn install_phase_change_restores_up_to_build_and_equals_a_clean_build() {
    let a = build(1, "a", "a", None);
    let a_ck = output(&a, true);
    let b = build(1, "install-from-a", "install", Some(&a_ck));
    let clean = build(1, "install-clean", "install", None);

    for phase in ["unpackPhase", "patchPhase", "configurePhase", "buildPhase"] {
        assert!(
            decision(&b, phase).contains("restored"),
            "{}",
            decision(&b, phase)
        );
        assert!(!b.ran_phase(phase), "{phase} ran in the resumed build");
    }
    assert!(decision(&b, "installPhase").contains("ran: variable postInstall changed"));
    assert!(b.ran_phase("installPhase") && b.ran_phase("fixupPhase"));
    assert!(clean.ran_phase("buildPhase"));
    assert!(
        normalised_out(&b) == normalised_out(&clean),
        "resumed out differs from a clean build"
    );
    // The program was linked in build `a` and must now name this build's output.
    let greet = greet_output(&b);
    let text = String::from_utf8_lossy(&greet.stdout).into_owned();
    assert!(
        text.contains(&*output(&b, false).to_string_lossy()),
        "{text}"
    );

    // The new checkpoint is valid, never references the base, and holds none of its bytes.
    let b_ck = output(&b, true);
    let verify = cli(&["verify", &b_ck.to_string_lossy()]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let a_ck_str = a_ck.to_string_lossy().into_owned();
    assert!(
        !references(&b_ck).contains(&a_ck_str),
        "{:?}",
        references(&b_ck)
    );
    let a_hash = &a_ck.file_name().unwrap().to_string_lossy()[..32];
    assert_eq!(
        contains_bytes(&b_ck, a_hash.as_bytes()),
        Vec::<PathBuf>::new()
    );
    let a_out = output(&a, false);
    let a_out_hash = &a_out.file_name().unwrap().to_string_lossy()[..32];
    assert_eq!(
        contains_bytes(&b_ck, a_out_hash.as_bytes()),
        Vec::<PathBuf>::new()
    );
    assert!(!references(&output(&b, false)).contains(&b_ck.to_string_lossy().into_owned()));

    // `diff` explains the same.
    let diff = cli(&["diff", &a_ck_str, &b_ck.to_string_lossy(), "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    let verdict = |phase: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["phase"] == phase)
            .map(|r| r["verdict"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(verdict("buildPhase"), "same key");
    assert!(verdict("installPhase").contains("postInstall"));
}

#[test]
fn build_flag_change_restores_configure_and_reruns_build() {
    let Triple { b, clean, .. } = triple(2, "flags", "a", "flags");
    assert!(decision(&b, "configurePhase").contains("restored"));
    assert!(!b.ran_phase("configurePhase"));
    assert!(
        decision(&b, "buildPhase").contains("buildFlags"),
        "{}",
        decision(&b, "buildPhase")
    );
    assert!(b.ran_phase("buildPhase"));
    assert!(normalised_out(&b) == normalised_out(&clean));
}

#[test]
fn corrupt_checkpoint_gives_a_clean_build_with_a_message() {
    let a = build(3, "corrupt-base", "a", None);
    // Flip one byte in the middle of the largest pack of blobs.
    let corrupt = store_copy(&output(&a, true), "corrupt-checkpoint", |copy| {
        let mut packs: Vec<PathBuf> = files(&copy.join("packs"));
        packs.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
        let victim = packs.last().expect("a pack").clone();
        let mut bytes = std::fs::read(&victim).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(&victim, bytes).unwrap();
    });

    let b = build(3, "install-from-corrupt", "install", Some(&corrupt));
    let clean = build(3, "install-clean-2", "install", None);
    // A blob's content is checked when it is read: when the base is loaded for the shell
    // states (the flipped byte may be in one: the largest pack of the real stdenv's
    // checkpoint is setup's), by the restore, or after the restores for the blobs none read
    // (docs/trust.md, "When the contents are checked"). The base is dropped with anything
    // restored from it.
    assert!(
        b.log_lines.iter().any(
            |l| (l.contains("rejected") || l.contains("could not be used"))
                && l.contains("is corrupt")
                && l.contains("building from scratch")
        ),
        "{}",
        b.log_tail(30)
    );
    assert!(b.ran_phase("unpackPhase") && b.ran_phase("buildPhase"));
    assert!(normalised_out(&b) == normalised_out(&clean));
}

#[test]
fn another_packages_checkpoint_restores_nothing_and_says_why() {
    // Same name length, so only the source tells them apart.
    let other = build_named("other-package", "source", "other-cproject-4", None);
    let b = build(4, "a-from-other", "a", Some(&output(&other, true)));
    let clean = build(4, "a-clean", "a", None);
    let unpack = decision(&b, "unpackPhase");
    assert!(
        unpack.contains("ran:") && unpack.contains("src"),
        "{unpack}"
    );
    assert!(b.ran_phase("unpackPhase"));
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// The one-line source change: unpack and patch run on the new source, configure is restored,
/// make recompiles the changed file only, and `out` equals a clean build of the new source.
#[test]
fn one_line_source_change_recompiles_that_file_only() {
    let Triple { b, clean, .. } = triple(5, "source", "a", "source");
    assert!(b.ran_phase("unpackPhase") && b.ran_phase("patchPhase"));
    assert!(!b.ran_phase("configurePhase"), "{}", b.log_tail(40));
    assert!(decision(&b, "configurePhase").contains("restored (incremental)"));
    assert!(
        decision(&b, "buildPhase").contains("text.c"),
        "{}",
        decision(&b, "buildPhase")
    );
    assert_compiled_only(&b, "text");
    assert!(
        !b.log_lines.iter().any(|l| l.contains("Clock skew")),
        "{}",
        b.log_tail(40)
    );
    assert_eq!(make_compiles(&clean).len(), 3);
    assert!(normalised_out(&b) == normalised_out(&clean));
    let greet = greet_output(&b);
    assert!(String::from_utf8_lossy(&greet.stdout).starts_with("Hello, changed world"));
}

/// A chain of incremental builds: the change back to the first source, built from the
/// checkpoint of the incremental build (whose configure layer it took over, holding build
/// products). Configure does not run again: its state is adopted as in the first incremental
/// build, make compiles the changed file only, and `out` equals the first (clean) build's.
#[test]
fn an_incremental_build_from_an_incremental_checkpoint_does_not_run_configure_again() {
    let a = build(73, "chained-a", "a", None);
    let b = build(73, "chained-b-from-a", "source", Some(&output(&a, true)));
    let c = build(73, "chained-a-from-b", "a", Some(&output(&b, true)));
    for r in [&b, &c] {
        assert!(!r.ran_phase("configurePhase"), "{}", r.log_tail(40));
        let configure = decision(r, "configurePhase");
        assert!(configure.contains("restored (incremental)"), "{configure}");
        assert_compiled_only(r, "text");
    }
    assert!(normalised_out(&c) == normalised_out(&a));
    let greet = greet_output(&c);
    assert!(String::from_utf8_lossy(&greet.stdout).starts_with("Hello, world"));
    Checkpoint::open(&output(&c, true))
        .unwrap()
        .verify()
        .unwrap();
}

/// The compile command lines a ninja build (`ninja -v`) printed.
fn ninja_compiles(b: &BuildResult) -> Vec<&String> {
    b.log_lines
        .iter()
        .filter(|l| l.starts_with('[') && l.contains(" -c "))
        .collect()
}

/// A project built by ninja whose compile commands name the output path (`-DPREFIX="$out"`,
/// from CMake or Meson): after the restore, `build.ninja` names this build's path, and ninja
/// reruns any command whose hash in `.ninja_log` is not its command line's. The builder
/// moves those hashes with the paths, so
/// - a one-line change recompiles that file only, and `out` equals a clean build;
/// - an installPhase-only change restores the build, and `ninja install` (which first
///   brings `all` up to date) compiles nothing; `out` equals a clean build.
fn ninja_project_reuses_its_objects(project: ReuseProject, name: &str) {
    let p = project.label;
    let a = build_project(project, &format!("{p}-base"), "a", name, None);
    assert_eq!(ninja_compiles(&a).len(), 3, "{}", a.log_tail(40));
    let ck = output(&a, true);

    let b = build_project(project, &format!("{p}-source"), "source", name, Some(&ck));
    let clean = build_project(project, &format!("{p}-source-clean"), "source", name, None);
    assert!(decision(&b, "configurePhase").contains("restored (incremental)"));
    let compiled = ninja_compiles(&b);
    assert_eq!(compiled.len(), 1, "{compiled:?}\n{}", b.log_tail(40));
    assert!(compiled[0].contains("text.c"), "{compiled:?}");
    assert!(
        b.log_lines
            .iter()
            .any(|l| l.contains(".ninja_log: 3 command hash(es) moved")),
        "{}",
        b.log_tail(30)
    );
    assert!(normalised_out(&b) == normalised_out(&clean));
    let greet = greet_output(&b);
    assert_eq!(
        String::from_utf8_lossy(&greet.stdout),
        format!(
            "Hello, changed world from {}\n",
            output(&b, false).display()
        )
    );

    let i = build_project(project, &format!("{p}-install"), "install", name, Some(&ck));
    let clean = build_project(
        project,
        &format!("{p}-install-clean"),
        "install",
        name,
        None,
    );
    for phase in ["unpackPhase", "patchPhase", "configurePhase", "buildPhase"] {
        assert!(
            decision(&i, phase).contains("restored"),
            "{}",
            decision(&i, phase)
        );
    }
    assert!(i.ran_phase("installPhase"));
    let recompiled: Vec<&String> = i
        .log_lines
        .iter()
        .filter(|l| l.starts_with('[') && l.contains("/usr/bin/cc"))
        .collect();
    assert!(recompiled.is_empty(), "{recompiled:?}\n{}", i.log_tail(40));
    assert!(normalised_out(&i) == normalised_out(&clean));
    // The checkpoints that hold translated logs verify.
    for built in [&b, &i] {
        let verify = cli(&["verify", &output(built, true).to_string_lossy()]);
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}

#[test]
fn cmake_ninja_project_reuses_its_objects_although_commands_name_the_output_path() {
    ninja_project_reuses_its_objects(CMAKE_PROJECT, "reuse-cmake-12");
}

#[test]
fn meson_ninja_project_reuses_its_objects_although_commands_name_the_output_path() {
    ninja_project_reuses_its_objects(MESON_PROJECT, "reuse-meson-13");
}

/// Added, deleted, binary, symlink and mode changes of the source all reach `out` exactly.
#[test]
fn tree_changes_are_reflected_exactly() {
    let Triple { b, clean, .. } = triple(6, "tree", "a", "tree");
    assert!(decision(&b, "configurePhase").contains("restored (incremental)"));
    assert!(normalised_out(&b) == normalised_out(&clean));
    let share = output(&b, false).join("share/greet");
    assert!(share.join("added.txt").exists() && !share.join("old.txt").exists());
    assert_eq!(
        std::fs::read_link(share.join("link.txt")).unwrap(),
        PathBuf::from("added.txt")
    );
}

/// A changed makefile template (a comment added to `Makefile.in`, from which configure makes
/// the Makefile): configure reruns over the earlier tree, the Makefile it writes differs in
/// the comment alone, and make compiles nothing; `out` equals a clean build.
#[test]
fn a_makefile_template_change_reruns_configure_and_make_follows_the_new_makefile() {
    let Triple { b, clean, .. } = triple(7, "makefile", "a", "makefile");
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree")
            && configure.contains("build description files changed")
            && configure.contains("Makefile.in"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("differ only in comments or blank lines"),
        "{build_line}"
    );
    assert_eq!(make_compiles(&b).len(), 0, "{}", b.log_tail(40));
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// A value configure changes in a makefile that another one includes (`VERSION` in
/// version.mk, read by util.o's rule in the Makefile): the changed makefile has no rule that
/// reads it, its includer has. util.o is compiled again (nothing else), and `out` equals a
/// clean build.
#[test]
fn a_value_changed_in_an_included_makefile_remakes_what_the_includer_makes_from_it() {
    let Triple { b, clean, .. } = triple(63, "included", "included", "included-bump");
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    assert_compiled_only(&b, "util");
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// A makefile of the source itself changes (rules.mk, which the Makefile includes, gives
/// util.o's own rule other flags): configure reruns over the earlier tree, what changed in
/// rules.mk is followed into the Makefile, and util.o alone is compiled again. When the
/// change reaches the pattern rule every other object is made by (CFLAGS), it cannot be
/// followed: the build starts again from scratch and says why. `out` equals a clean build
/// in both.
#[test]
fn a_changed_source_makefile_remakes_what_its_changed_values_reach() {
    let a = build(64, "mk-base", "mk", None);
    let ck = output(&a, true);
    let b = build(64, "mk-from-a", "mk-bump", Some(&ck));
    let clean = build(64, "mk-clean", "mk-bump", None);
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree") && configure.contains("rules.mk"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("rules.mk") && build_line.contains("MARKFLAGS"),
        "{build_line}"
    );
    assert_compiled_only(&b, "util");
    assert!(normalised_out(&b) == normalised_out(&clean));

    let c = build(64, "mk-cflags-from-a", "mk-cflags", Some(&ck));
    let clean = build(64, "mk-cflags-clean", "mk-cflags", None);
    assert!(
        c.log_lines
            .iter()
            .any(|l| l.contains("CFLAGS reaches the pattern, suffix or special rule")),
        "{}",
        c.log_tail(40)
    );
    assert_eq!(make_compiles(&c).len(), 3, "{}", c.log_tail(40));
    assert!(normalised_out(&c) == normalised_out(&clean));
}

/// `b` did not resume over the earlier tree: configure and build ran, a log line gives
/// `reason` and names `file`, and `out` equals the clean build's.
fn assert_not_laid_over(b: &BuildResult, clean: &BuildResult, reason: &str, file: &str) {
    assert!(
        b.ran_phase("configurePhase") && b.ran_phase("buildPhase"),
        "{}",
        b.log_tail(30)
    );
    assert!(
        b.log_lines
            .iter()
            .any(|l| l.contains(reason) && l.contains(file)),
        "no line says {reason:?} about {file}:\n{}",
        b.log_tail(30)
    );
    assert!(normalised_out(b) == normalised_out(clean));
}

/// A source file the earlier build edited after patchPhase (preConfigure's `sed -i`) and the
/// new source changes: the new version laid over the old tree would lack the edit, so
/// configure and build run on the new tree, and the log says why.
#[test]
fn a_source_file_the_earlier_build_edited_is_not_laid_over() {
    let Triple { b, clean, .. } = triple(10, "edit", "edit", "edit-source");
    assert_not_laid_over(&b, &clean, "the earlier build changed", "text.c");
    let greet = greet_output(&b);
    let text = String::from_utf8_lossy(&greet.stdout).into_owned();
    assert!(text.starts_with("Howdy, changed world"), "{text}");
}

/// A deleted compile unit: its object stays in the earlier tree and `ar r` would keep it in
/// the static library, so configure and build run on the new tree, and the log says why.
#[test]
fn a_deleted_source_file_is_not_laid_over() {
    let Triple { a, b, clean } = triple(11, "wild", "wild", "wild-deleted");
    assert_not_laid_over(&b, &clean, "source files were deleted", "extra.c");
    assert!(
        normalised_out(&a) != normalised_out(&clean),
        "the library should differ without extra.o, or this test proves nothing"
    );
}

/// A new source that moves `SOURCE_DATE_EPOCH` (here set by the derivation; Nix's stdenv takes
/// it from the newest source file): a header generated from it and `__DATE__` carry the earlier
/// date where make cannot see it (issue 14: a wrong output once). Configure reruns over the
/// earlier tree, the products that hold a rendering of the earlier date (the header, the
/// object that uses `__DATE__`, the program) are left out and remade, and `out` shows the new
/// date as a clean build does; the object that holds no date is kept.
#[test]
fn a_changed_source_date_epoch_remakes_what_holds_the_earlier_date() {
    let Triple { b, clean, .. } = triple(30, "date", "date", "date-source");
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree")
            && configure.contains("SOURCE_DATE_EPOCH 1600000000")
            && configure.contains("built.h")
            && configure.contains("util.o"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    let compiled = make_compiles(&b);
    assert_eq!(compiled.len(), 2, "{compiled:?}\n{}", b.log_tail(40));
    assert!(
        compiled.iter().any(|l| l.contains("-o util.o util.c"))
            && compiled.iter().any(|l| l.contains("-o text.o text.c")),
        "{compiled:?}"
    );
    assert!(normalised_out(&b) == normalised_out(&clean));
    let greet = greet_output(&b);
    let text = String::from_utf8_lossy(&greet.stdout).into_owned();
    assert!(
        text.starts_with("Hello, changed world") && text.contains("built 2023-11-14 (Nov 14 2023)"),
        "{text}"
    );
}

/// The same with `strcpy (buf, __DATE__)` at -O1: gcc stores the date in 8-byte immediates
/// (`Sep 13 2`, then `020`), so no file holds the earlier date whole. The object and the
/// program hold 8 bytes of it and are left out, and the program prints the new date; kept,
/// it printed the earlier one.
#[test]
fn a_changed_source_date_epoch_remakes_what_holds_the_earlier_date_in_pieces() {
    let Triple { b, clean, .. } = triple(67, "date-copy", "date-copy", "date-copy-source");
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree")
            && configure.contains("SOURCE_DATE_EPOCH 1600000000")
            && configure.contains("util.o"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    let compiled = make_compiles(&b);
    assert_eq!(compiled.len(), 2, "{compiled:?}\n{}", b.log_tail(40));
    assert!(
        compiled.iter().any(|l| l.contains("-o util.o util.c"))
            && compiled.iter().any(|l| l.contains("-o text.o text.c")),
        "{compiled:?}"
    );
    for r in [&b, &clean] {
        assert_eq!(
            String::from_utf8_lossy(&greet_output(r).stdout),
            format!(
                "Hello, changed world from {}, built Nov 14 2023\n",
                output(r, false).display()
            )
        );
    }
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// A rename that changes the name's length (`…-50` → `…-500`): no path can be rewritten in
/// place, so configure reruns over the earlier tree with every product that still holds the
/// earlier output path left out (the object compiled with `-DPREFIX`, the program, the
/// Makefile, which configure writes again); make compiles that object only, and `out`
/// equals a clean build of the new name.
#[test]
fn a_rename_of_another_length_remakes_what_holds_the_earlier_path() {
    let a = build_named("long-rename-base", "a", "reuse-cproject-50", None);
    let b = build_named(
        "long-rename",
        "a",
        "reuse-cproject-500",
        Some(&output(&a, true)),
    );
    let clean = build_named("long-rename-clean", "a", "reuse-cproject-500", None);
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("left out because they hold the earlier build's output `out`")
            && configure.contains("util.o"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    assert_compiled_only(&b, "util");
    assert!(normalised_out(&b) == normalised_out(&clean));
    let out = output(&b, false);
    assert!(
        contains_bytes(&out, output(&a, false).as_os_str().as_encoded_bytes()).is_empty(),
        "the earlier output path reached out"
    );
}

/// The same rename where a rule writes the prefix into a file that is not its target: that
/// file is left out (it holds the earlier path) and make cannot remake it, so installPhase
/// fails; the builder then discards what it restored, builds from scratch and says why, and
/// `out` equals a clean build.
#[test]
fn a_product_left_out_that_make_cannot_remake_gives_a_clean_build() {
    let a = build_named("side-base", "side-file", "reuse-cproject-51", None);
    let b = build_named(
        "side-rename",
        "side-file",
        "reuse-cproject-510",
        Some(&output(&a, true)),
    );
    let clean = build_named("side-clean", "side-file", "reuse-cproject-510", None);
    assert!(
        b.log_lines.iter().any(|l| l.contains("could not be used")
            && l.contains("installPhase failed")
            && l.contains("were left out (")
            && l.contains("side.txt")
            && l.contains("building from scratch")),
        "{}",
        b.log_tail(60)
    );
    // Once over the earlier tree (util.o, which holds the path), then all three from scratch.
    let compiles: Vec<&String> = make_compiles(&b);
    assert_eq!(compiles.len(), 4, "{compiles:?}\n{}", b.log_tail(60));
    assert!(normalised_out(&b) == normalised_out(&clean));
    let side = std::fs::read_to_string(output(&b, false).join("share/greet/side.txt")).unwrap();
    assert_eq!(side, format!("{}\n", output(&b, false).display()));
}

/// gcc copies a constant path into a buffer in 16-byte pieces, the last overlapping the rest:
/// under the 9-character name `pieces-46`, the last piece of `$out/lib` holds the hash's last
/// character and the name (`z-pieces-46/lib`), which no rewrite of whole paths or hash parts
/// reaches (cpio's `LIBDIR` in docs/corpus.md). A source change elsewhere (`text.c`) keeps
/// `util.o`, so resuming over the earlier tree as it is would link the earlier hash's last
/// character into this build's program: the builder finds the piece in the rewritten object
/// and in the program and leaves both out of the tree it resumes over, so make compiles
/// `util.c` again beside `text.c` (not `main.c`) and links; `out` equals a clean build.
#[test]
fn an_object_holding_a_piece_of_the_earlier_path_is_remade() {
    let a = build_named("pieces-base", "pieces", "pieces-46", None);
    let b = build_named(
        "pieces-from-a",
        "pieces-source",
        "pieces-46",
        Some(&output(&a, true)),
    );
    let clean = build_named("pieces-clean", "pieces-source", "pieces-46", None);
    // Also when both hashes end alike (one build in 32), where the piece itself is right: gcc
    // chose how to store the path by its bytes (seen: 8 more bytes of `.rodata`).
    assert_remade_for_pieces(&b);
    assert!(normalised_out(&b) == normalised_out(&clean));
    assert_eq!(
        String::from_utf8_lossy(&greet_output(&b).stdout),
        format!(
            "Hello, changed world from {}/lib\n",
            output(&b, false).display()
        )
    );
}

/// The same copy at -O1: gcc stores the path in 8-byte immediates between opcodes, so no
/// file holds the whole hash and nothing is rewritten; the builder finds 8 characters of the
/// earlier hash in the object and the program, leaves them out, and make remakes them.
#[test]
fn an_object_holding_the_earlier_path_in_immediates_is_remade() {
    let Triple { b, clean, .. } = triple(47, "immediates", "immediates", "immediates-source");
    assert_remade_for_pieces(&b);
    // The program's own path is split into immediates too, some holding fewer than 8 of its
    // hash characters, which the NAR normaliser cannot tell from other bytes; so the programs'
    // output is the check: each assembles its path from those immediates (with the builder
    // before the check, the resumed one printed the base's whole path).
    for r in [&b, &clean] {
        assert_eq!(
            String::from_utf8_lossy(&greet_output(r).stdout),
            format!(
                "Hello, changed world from {}/lib\n",
                output(r, false).display()
            )
        );
    }
}

/// An install-only change (postInstall) over the same two bases: the layers after
/// patchPhase hold the piece, so they are not restored whole; the build restores through
/// patchPhase, resumes over the earlier tree with `util.o` and the program left out, and make
/// compiles `util.c` alone (with earlier builders the build started from scratch).
#[test]
fn an_install_only_change_remakes_what_holds_a_piece_of_the_earlier_path() {
    // The 9-character name puts the hash's last character and the name in gcc's last 16-byte
    // piece; at -O1 any name is split into 8-byte immediates.
    for (name, base, changed) in [
        ("pieces-48", "pieces", "pieces-install"),
        ("reuse-cproject-48", "immediates", "immediates-install"),
    ] {
        let a = build_named(&format!("{base}-install-base"), base, name, None);
        let b = build_named(
            &format!("{changed}-from-a"),
            changed,
            name,
            Some(&output(&a, true)),
        );
        let clean = build_named(&format!("{changed}-clean"), changed, name, None);
        assert!(
            b.log_lines
                .iter()
                .any(|l| l.contains("holds a piece of output `out`")
                    && l.contains("restoring the phases through patchPhase only")),
            "{base}: {}",
            b.log_tail(40)
        );
        for phase in ["unpackPhase", "patchPhase"] {
            assert!(
                decision(&b, phase).contains("restored: inputs unchanged"),
                "{base}: {phase}: {}",
                decision(&b, phase)
            );
        }
        let build = decision(&b, "buildPhase");
        assert!(
            build.contains("no source path changed")
                && build.contains("left out because they hold a piece of output `out`")
                && build.contains("util.o"),
            "{base}: {build}\n{}",
            b.log_tail(40)
        );
        assert_compiled_only(&b, "util");
        // At -O1 the program's own path is in immediates too, some with fewer than 8 hash
        // characters, which the NAR normaliser cannot tell from other bytes: there the
        // programs' output is the check (as in the test above).
        if base == "pieces" {
            assert!(normalised_out(&b) == normalised_out(&clean), "{base}");
        }
        for r in [&b, &clean] {
            assert!(output(r, false).join("share/greet/extra.txt").is_file());
            assert_eq!(
                String::from_utf8_lossy(&greet_output(r).stdout),
                format!("Hello, world from {}/lib\n", output(r, false).display())
            );
        }
    }
}

/// The piece of `an_object_holding_a_piece_of_the_earlier_path_is_remade` in a library laid
/// out as libtool does: `.libs/util.o` and the archive `.libs/libgreet.a` hold it, while
/// make's targets are their records `util.lo` and `libgreet.la`, which do not. The records
/// are left out with them, so make compiles `util.c` again beside the changed `text.c` and
/// archives and links; kept, make saw `util.lo` up to date, the archive step failed on the
/// missing object, and the build started again from scratch.
#[test]
fn a_libtool_object_holding_a_piece_is_remade_with_its_record() {
    let a = build_named("libtool-pieces-base", "libtool-pieces", "pieces-52", None);
    let b = build_named(
        "libtool-pieces-from-a",
        "libtool-pieces-source",
        "pieces-52",
        Some(&output(&a, true)),
    );
    let clean = build_named(
        "libtool-pieces-clean",
        "libtool-pieces-source",
        "pieces-52",
        None,
    );
    let build = decision(&b, "buildPhase");
    assert!(
        build.contains("ran incrementally over the earlier build's tree")
            && build.contains("left out because they hold a piece of output `out`")
            && build.contains(".libs/util.o")
            && build.contains("libtool's records of those objects and libraries")
            && build.contains("util.lo")
            && build.contains("libgreet.la"),
        "{build}\n{}",
        b.log_tail(40)
    );
    assert!(
        !b.log_lines.iter().any(|l| l.contains("could not be used")),
        "{}",
        b.log_tail(40)
    );
    let compiled = make_compiles(&b);
    assert_eq!(compiled.len(), 2, "{compiled:?}\n{}", b.log_tail(40));
    assert!(
        compiled
            .iter()
            .any(|l| l.contains("-o .libs/util.o util.c"))
            && compiled
                .iter()
                .any(|l| l.contains("-o .libs/text.o text.c")),
        "{compiled:?}"
    );
    assert!(normalised_out(&b) == normalised_out(&clean));
    assert_eq!(
        String::from_utf8_lossy(&greet_output(&b).stdout),
        format!(
            "Hello, changed world from {}/lib\n",
            output(&b, false).display()
        )
    );
}

/// `b` resumed over the earlier tree with `util.o` and the program left out for holding a
/// piece of the earlier `out`: configure restored, make compiled `util.c` (remade) and
/// `text.c` (changed), not `main.c`.
fn assert_remade_for_pieces(b: &BuildResult) {
    assert!(
        decision(b, "configurePhase").contains("restored (incremental)"),
        "{}",
        b.log_tail(40)
    );
    let build = decision(b, "buildPhase");
    assert!(
        build.contains("ran incrementally over the earlier build's tree")
            && build.contains("left out because they hold a piece of output `out`")
            && build.contains("util.o")
            && build.contains("2 file(s)"),
        "{build}\n{}",
        b.log_tail(40)
    );
    let compiled = make_compiles(b);
    assert_eq!(compiled.len(), 2, "{compiled:?}\n{}", b.log_tail(40));
    assert!(
        compiled.iter().any(|l| l.contains("-o util.o util.c"))
            && compiled.iter().any(|l| l.contains("-o text.o text.c")),
        "{compiled:?}"
    );
}

/// Objects compiled with -g keep the -frandom-seed flag (derived from $out) in their debug
/// strings, in an order gcc takes from the seed: reused across a change of $out, they would
/// give an unstripped output that differs from a clean build's. The builder finds this
/// build's seed in an installed object and builds again from scratch; a stripped output keeps
/// the reuse.
#[test]
fn a_compiled_file_larger_than_an_attachment_is_still_checked_and_reused() {
    // big.o (70 MB, ELF magic) is searched for pieces of the earlier paths: a search that
    // read it whole into memory stopped at 64 MB and counted it as holding one, so neither
    // the install-only build nor the incremental one reused anything.
    let a = build(60, "big-a", "big", None);
    let a_ck = output(&a, true);
    let install = build(60, "big-install-from-a", "big-install", Some(&a_ck));
    for phase in ["unpackPhase", "patchPhase", "configurePhase", "buildPhase"] {
        assert!(
            decision(&install, phase).contains("restored"),
            "{phase}: {}",
            decision(&install, phase)
        );
    }
    let source = build(60, "big-source-from-a", "big-source", Some(&a_ck));
    assert!(
        decision(&source, "buildPhase").contains("incrementally"),
        "{}",
        decision(&source, "buildPhase")
    );
    assert_compiled_only(&source, "text");
    let clean = build(60, "big-source-clean", "big-source", None);
    assert!(
        normalised_out(&source) == normalised_out(&clean),
        "the incremental out differs from a clean build"
    );
}

/// make rewrites data.bin (2.7 MB) after the one-line change, and the longer greeting moves
/// every byte after it: the checkpoint stores it as a delta of the earlier build's (format
/// 5), not compressed whole. A build that continues that checkpoint imports the delta with
/// its base, and every output is a clean build's.
#[test]
fn a_rebuilt_file_whose_bytes_moved_is_stored_as_a_delta_of_the_earlier_one() {
    let a = build(61, "shifted-a", "shifted", None);
    let b = build(
        61,
        "shifted-source-from-a",
        "shifted-source",
        Some(&output(&a, true)),
    );
    assert!(
        decision(&b, "buildPhase").contains("incrementally"),
        "{}",
        b.log_tail(40)
    );
    let clean = build(61, "shifted-source-clean", "shifted-source", None);
    assert!(
        normalised_out(&b) == normalised_out(&clean),
        "the incremental out differs from a clean build"
    );
    let open = |r: &BuildResult| Checkpoint::open(&output(r, true)).unwrap();
    let (a_ck, b_ck) = (open(&a), open(&b));
    let data = |ck: &Checkpoint| {
        let last = ck.layers().len() as u32 - 1;
        let state = ck.state_after(last).unwrap();
        let build = state.root("build");
        let (path, entry) = build
            .iter()
            .find(|(p, _)| p.as_bytes().ends_with(b"/data.bin"))
            .expect("data.bin in the build directory");
        let installed = state.root("out")[&RelPath::new("share/greet/data.bin").unwrap()].blob();
        assert_eq!(installed, entry.blob(), "{path:?}");
        entry.blob().expect("data.bin is a file")
    };
    let (before, after) = (data(&a_ck), data(&b_ck));
    assert_ne!(before, after);
    let delta = b_ck
        .blobs()
        .delta_of(&after)
        .unwrap()
        .expect("data.bin is a delta");
    assert_eq!(delta.base, before);
    let (stored, _) = b_ck.blobs().stored_bytes(&after).unwrap();
    assert!(stored.len() < 64 << 10, "a delta of {} bytes", stored.len());
    b_ck.verify().unwrap();

    // The change back, from the checkpoint that holds the delta.
    let c = build(61, "shifted-from-b", "shifted", Some(&output(&b, true)));
    assert!(
        decision(&c, "buildPhase").contains("incrementally"),
        "{}",
        c.log_tail(40)
    );
    assert!(
        normalised_out(&c) == normalised_out(&a),
        "the out built from the delta's checkpoint differs from a clean build"
    );
    open(&c).verify().unwrap();
}

/// A one-line change to text.c: greet-big (2 MiB) and libgreet.a hold text.o, so make links
/// them again whatever the restore writes; the incremental build leaves them out of the tree
/// it resumes on (neither imported nor written) and make remakes them. tool, as large, holds
/// no changed unit: restored, not linked again. Every output is a clean build's, and so it is
/// for the change back from that checkpoint, where the programs are stored as deltas.
#[test]
fn programs_and_archives_that_hold_the_changed_unit_are_left_out_and_linked_again() {
    let Triple { a, b, clean } = triple(62, "linked", "linked", "linked-source");
    let assert_relinked = |r: &BuildResult| {
        let reason = decision(r, "buildPhase");
        assert!(
            reason.contains("incrementally")
                && reason.contains(
                    "left out because they hold a changed compile unit (the build links them \
                     again): 2 file(s)"
                )
                && reason.contains("greet-big")
                && reason.contains("libgreet.a")
                && !reason.contains("tool"),
            "{reason}\n{}",
            r.log_tail(40)
        );
        assert_compiled_only(r, "text");
        let ran = |needle: &str| r.log_lines.iter().any(|l| l.contains(needle));
        assert!(ran("-o greet-big main.o") && ran("ar rcs libgreet.a"));
        assert!(!ran("-o tool tool.o"), "{}", r.log_tail(40));
    };
    assert_relinked(&b);
    assert!(
        normalised_out(&b) == normalised_out(&clean),
        "the incremental out differs from a clean build"
    );
    // The tree the build resumed on, as the layer of configurePhase (taken over) records it.
    let ck = Checkpoint::open(&output(&b, true)).unwrap();
    ck.verify().unwrap();
    let configure = ck
        .layers()
        .iter()
        .position(|l| l.meta.name == "configurePhase")
        .expect("a configurePhase layer");
    let resumed = ck.state_after(configure as u32).unwrap();
    let has = |name: &str| {
        resumed
            .root("build")
            .iter()
            .any(|(p, _)| p.as_bytes().ends_with(format!("/{name}").as_bytes()))
    };
    assert!(!has("greet-big") && !has("libgreet.a") && has("tool") && has("text.o"));

    let c = build(62, "linked-from-b", "linked", Some(&output(&b, true)));
    assert_relinked(&c);
    assert!(
        normalised_out(&c) == normalised_out(&a),
        "the out built from the incremental checkpoint differs from a clean build"
    );
    Checkpoint::open(&output(&c, true))
        .unwrap()
        .verify()
        .unwrap();
}

#[test]
fn debug_information_reused_across_a_seed_change_is_built_again() {
    let compiles = |r: &BuildResult| make_compiles(r).len();
    let a = build(31, "debug-base", "debug", None);
    let b = build(31, "debug-from-a", "debug-install", Some(&output(&a, true)));
    let log = b.log_tail(60);
    // The reuse note: why the checkpoint was not used in the end.
    assert!(
        b.log_lines
            .iter()
            .any(|l| l.contains("keeps gcc's debug information")
                && l.contains("not reused")
                && l.contains("built from scratch")),
        "{log}"
    );
    // The install-only change restored buildPhase (no compile), then the clean run compiled
    // all three units with this build's seed.
    assert_eq!(compiles(&b), 3, "{log}");
    let out = output(&b, false);
    let strings = Command::new("strings")
        .arg("-a")
        .arg(out.join("bin/greet"))
        .output()
        .unwrap();
    let seed = out.file_name().unwrap().to_string_lossy()[..10].to_owned();
    assert!(
        String::from_utf8_lossy(&strings.stdout).contains(&format!("-frandom-seed={seed}")),
        "the clean run's objects carry this build's seed"
    );

    let a = build(31, "debug-stripped-base", "debug-stripped", None);
    let b = build(
        31,
        "debug-stripped-from-a",
        "debug-stripped-install",
        Some(&output(&a, true)),
    );
    assert!(
        decision(&b, "buildPhase").contains("restored"),
        "{}",
        b.log_tail(40)
    );
    assert_eq!(compiles(&b), 0, "{}", b.log_tail(40));
    assert!(!b
        .log_lines
        .iter()
        .any(|l| l.contains("keeps gcc's debug information")));
    // postInstall stripped the program again: the base's stripped program but for the
    // output path it prints, so the snapshot stores it as a patch over that one (brought
    // in from the base with its stored bytes unchanged), not compressed anew.
    let open = |r: &BuildResult| Checkpoint::open(&output(r, true)).unwrap();
    let (a_ck, b_ck) = (open(&a), open(&b));
    let greet = |ck: &Checkpoint| {
        let last = ck.layers().len() as u32 - 1;
        ck.state_after(last).unwrap().root("out")[&RelPath::new("bin/greet").unwrap()]
            .blob()
            .expect("bin/greet is a file")
    };
    let (before, after) = (greet(&a_ck), greet(&b_ck));
    assert_ne!(before, after);
    let patch = b_ck.blobs().patch_of(&after).unwrap();
    assert_eq!(patch.map(|p| p.base), Some(before));
    assert_eq!(
        b_ck.blobs().stored_bytes(&before).unwrap(),
        a_ck.blobs().stored_bytes(&before).unwrap()
    );
}

/// A checkpoint written by an incremental build: its configure layer holds build products, so
/// a later build that changes buildFlags must not restore it as configure's result.
#[test]
fn layers_taken_over_by_an_incremental_build_are_not_restored_as_their_phase() {
    let a = build(8, "chain-a", "a", None);
    let b = build(8, "chain-b", "source", Some(&output(&a, true)));
    assert!(decision(&b, "configurePhase").contains("restored (incremental)"));
    let c = build(8, "chain-c", "source-flags", Some(&output(&b, true)));
    let clean = build(8, "chain-clean", "source-flags", None);
    let configure = decision(&c, "configurePhase");
    assert!(configure.contains("taken over"), "{configure}");
    assert_eq!(make_compiles(&c).len(), 3, "{}", c.log_tail(40));
    assert!(normalised_out(&c) == normalised_out(&clean));
}

/// Copies checkpoint `from`, lets `damage` change the copy, and adds it to the store.
fn store_copy(from: &Path, label: &str, damage: impl Fn(&Path)) -> PathBuf {
    let copy = repo_root().join("target/reuse-cases").join(label);
    let _ = std::fs::remove_dir_all(&copy);
    assert!(Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&copy)
        .status()
        .unwrap();
    damage(&copy);
    let added = Command::new("nix-store")
        .arg("--add")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&added.stdout).trim())
}

/// [`store_copy`] with `edit` applied to the copy's index.json.
fn tampered_copy(from: &Path, label: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    store_copy(from, label, |copy| {
        let index = copy.join("index.json");
        let text = std::fs::read_to_string(&index).unwrap();
        let edited = edit(&text);
        assert_ne!(edited, text, "the edit changed nothing");
        std::fs::write(&index, edited).unwrap();
    })
}

/// A checkpoint of another format version or another system: a clean build that says why.
#[test]
fn other_format_version_or_system_gives_a_clean_build_with_a_message() {
    let a = build(9, "foreign-base", "a", None);
    let clean = build(9, "foreign-clean", "install", None);
    let a_ck = output(&a, true);
    let version = tampered_copy(&a_ck, "other-version", |t| {
        let ours = format!("\"format_version\":{FORMAT_VERSION}");
        t.replacen(&ours, "\"format_version\":7", 1)
    });
    let system = tampered_copy(&a_ck, "other-system", |t| {
        t.replacen(
            "\"system\":\"x86_64-linux\"",
            "\"system\":\"riscv64-linux\"",
            1,
        )
    });
    let other_version = format!("expected {FORMAT_VERSION}, found 7");
    for (label, base, words) in [
        ("from-other-version", version, other_version.as_str()),
        ("from-other-system", system, "riscv64-linux"),
    ] {
        let b = build(9, label, "install", Some(&base));
        let line = b
            .log_lines
            .iter()
            .find(|l| l.contains("rejected"))
            .unwrap_or_else(|| panic!("{label}: no rejection\n{}", b.log_tail(30)))
            .clone();
        assert!(line.contains(words), "{label}: {line}");
        assert!(b.ran_phase("unpackPhase") && b.ran_phase("buildPhase"));
        assert!(normalised_out(&b) == normalised_out(&clean), "{label}");
    }
}

/// Issue 12, defect 5: a base whose buildPhase layer claims a file of 2^63 bytes passed
/// `verify` and failed the build when the layer was restored (exit 70, "cannot record the
/// layer after restore"); `verify` now checks the format's limits as restore does, so the
/// base is rejected when it is loaded and the build is clean, saying why.
#[test]
fn base_beyond_the_format_limits_gives_a_clean_build_with_a_message() {
    use integration_tests::checkpoint::{layer_file, rewrite_layer};
    let a = build(20, "limits-base", "a", None);
    let clean = build(20, "limits-clean", "install", None);
    let bad = store_copy(&output(&a, true), "limits-checkpoint", |copy| {
        let layer = layer_file(copy, "buildPhase").unwrap();
        let text = std::fs::read_to_string(&layer).unwrap();
        let at = text.find("\"size\":").expect("buildPhase changes a file") + 7;
        let end = at + text[at..].find(',').unwrap();
        let edited = format!("{}9223372036854775808{}", &text[..at], &text[end..]);
        rewrite_layer(copy, &layer, &edited).unwrap();
    });
    let b = build(20, "install-from-limits", "install", Some(&bad));
    let line = b
        .log_lines
        .iter()
        .find(|l| l.contains("rejected"))
        .unwrap_or_else(|| panic!("no rejection\n{}", b.log_tail(30)));
    assert!(
        line.contains("building from scratch") && line.contains("larger than 1099511627776"),
        "{line}"
    );
    assert!(b.ran_phase("unpackPhase") && b.ran_phase("buildPhase"));
    assert!(normalised_out(&b) == normalised_out(&clean));
}

// ---------------------------------------------------------------------------------------
// Trust (issue 12, item 2; docs/trust.md)

/// The log line that says why a base was refused.
fn rejection(b: &BuildResult) -> String {
    b.log_lines
        .iter()
        .find(|l| l.contains("rejected") && l.contains("building from scratch"))
        .unwrap_or_else(|| panic!("no rejection in the log\n{}", b.log_tail(40)))
        .clone()
}

/// A copy of checkpoint `from` whose `out` file `share/greet/file.txt` ("data\n") says
/// "EVIL\n" in every layer that records it, every hash fixed so that it verifies, the chain
/// recomputed when `consistent`; added to the store with `nix-store --add`.
fn forged(from: &Path, label: &str, consistent: bool) -> PathBuf {
    let forged = store_copy(from, label, |copy| {
        let edited = forge::replace_file(copy, "out", "share/greet/file.txt", b"EVIL\n");
        assert!(edited >= 1, "no layer records share/greet/file.txt");
        if consistent {
            forge::reseal(copy);
        }
    });
    let verify = cli(&["verify", &forged.to_string_lossy()]);
    assert!(
        verify.status.success(),
        "the forgery does not even verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    forged
}

fn file_txt(b: &BuildResult) -> String {
    std::fs::read_to_string(output(b, false).join("share/greet/file.txt")).unwrap()
}

/// A forged checkpoint (`nix-store --add` of an altered copy, consistent as far as the
/// forger can make it) is refused: the build is clean, says why, and keeps nothing of it.
/// With `checkpointBaseTrust = "any"` it is used (opting in trusts it), unless it is
/// inconsistent.
#[test]
fn forged_checkpoint_is_refused_and_the_build_is_clean() {
    let a = build(12, "trust-base", "a", None);
    let a_ck = output(&a, true);
    let forged_ck = forged(&a_ck, "trust-forged", true);

    // The same derivation as `a` but for its base: every phase would be restored.
    let b = build(12, "trust-from-forged", "a", Some(&forged_ck));
    let line = rejection(&b);
    assert!(
        line.contains("did not come out of a build at this path"),
        "{line}"
    );
    assert!(line.contains("nix-store --add"), "{line}");
    assert!(b.ran_phase("unpackPhase") && b.ran_phase("installPhase"));
    assert_eq!(file_txt(&b), "data\n");
    assert!(
        normalised_out(&b) == normalised_out(&a),
        "out differs from a clean build"
    );
    let b_ck = output(&b, true);
    assert_eq!(contains_bytes(&b_ck, b"EVIL"), Vec::<PathBuf>::new());
    assert_eq!(
        contains_bytes(&output(&b, false), b"EVIL"),
        Vec::<PathBuf>::new()
    );
    let forged_hash = &forged_ck.file_name().unwrap().to_string_lossy()[..32];
    assert_eq!(
        contains_bytes(&b_ck, forged_hash.as_bytes()),
        Vec::<PathBuf>::new()
    );

    // `diff` does not vouch for the forged layers.
    let diff = cli(&[
        "diff",
        &a_ck.to_string_lossy(),
        &forged_ck.to_string_lossy(),
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    let install = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["phase"] == "installPhase")
        .map(|r| r["verdict"].as_str().unwrap().to_owned())
        .unwrap();
    assert_ne!(install, "same key");
    assert!(
        install.contains("different content") && install.contains("not trusted"),
        "{install}"
    );

    // Opting in trusts it: the forged content is what the build gets.
    let name = "reuse-cproject-12";
    let any = build_project(
        CPROJECT_TRUSTING,
        "trust-any-forged",
        "a",
        name,
        Some(&forged_ck),
    );
    assert!(
        any.log_lines
            .iter()
            .any(|l| l.contains("used because checkpointBaseTrust = \"any\"")),
        "{}",
        any.log_tail(40)
    );
    assert!(decision(&any, "installPhase").contains("restored"));
    assert_eq!(file_txt(&any), "EVIL\n");

    // Inconsistent (content changed, chain not recomputed): refused even so.
    let inconsistent = forged(&a_ck, "trust-forged-inconsistent", false);
    let c = build_project(
        CPROJECT_TRUSTING,
        "trust-any-inconsistent",
        "a",
        name,
        Some(&inconsistent),
    );
    let line = rejection(&c);
    assert!(line.contains("inconsistent"), "{line}");
    assert_eq!(file_txt(&c), "data\n");
    assert!(normalised_out(&c) == normalised_out(&a));
}

/// A real checkpoint copied into the store unchanged by `nix-store --add` did not come out
/// of a build at that path: refused without opting in.
#[test]
fn unchanged_copy_added_to_the_store_is_refused() {
    let a = build(13, "trust-copy-base", "a", None);
    let copy = store_copy(&output(&a, true), "trust-plain-copy", |_| {});
    let b = build(13, "trust-from-copy", "a", Some(&copy));
    let line = rejection(&b);
    assert!(
        line.contains("did not come out of a build at this path")
            && line.contains("nix-store --add"),
        "{line}"
    );
    assert!(b.ran_phase("buildPhase"));
    assert!(normalised_out(&b) == normalised_out(&a));
}

/// A base whose content breaks the build after its restore (a directory the next snapshot
/// cannot read) gives a clean build, exit 0, with the reason in the log and nothing of the
/// base left.
#[test]
fn a_base_that_fails_after_its_restore_gives_a_clean_build() {
    let a = build(14, "trust-locked-base", "a", None);
    let clean = build(14, "trust-locked-clean", "install", None);
    let locked = store_copy(&output(&a, true), "trust-locked", |copy| {
        forge::append_entry(
            copy,
            "buildPhase",
            "build",
            r#"{"path":"zzz-locked","kind":"dir","mode":"0000","mtime_s":1,"mtime_ns":0}"#,
        );
        forge::reseal(copy);
    });
    let b = build_project(
        CPROJECT_TRUSTING,
        "trust-from-locked",
        "install",
        "reuse-cproject-14",
        Some(&locked),
    );
    assert!(
        b.log_lines
            .iter()
            .any(|l| l.contains("could not be used") && l.contains("building from scratch")),
        "{}",
        b.log_tail(40)
    );
    assert!(b.ran_phase("unpackPhase") && b.ran_phase("buildPhase"));
    assert!(normalised_out(&b) == normalised_out(&clean));
    assert_eq!(
        contains_bytes(&output(&b, true), b"zzz-locked"),
        Vec::<PathBuf>::new()
    );
    let verify = cli(&["verify", &output(&b, true).to_string_lossy()]);
    assert!(verify.status.success());
}

/// What the `greet` program `b` installed prints (its whole output).
fn greet_output(b: &BuildResult) -> std::process::Output {
    Command::new(output(b, false).join("bin/greet"))
        .output()
        .unwrap()
}

/// `b` compiled exactly one object, `<unit>.o` from `<unit>.c`.
fn assert_compiled_only(b: &BuildResult, unit: &str) {
    let compiled = make_compiles(b);
    assert_eq!(compiled.len(), 1, "{compiled:?}\n{}", b.log_tail(40));
    assert!(
        compiled[0].contains(&format!("-o {unit}.o {unit}.c")),
        "{compiled:?}"
    );
}

/// The compile lines of a cproject build (make echoes each command).
fn make_compiles(b: &BuildResult) -> Vec<&String> {
    b.log_lines
        .iter()
        .filter(|l| l.contains(" -c -o "))
        .collect()
}

/// A version bump that keeps the name's length and the source (issue 14): the phases from
/// configure rerun over the earlier build's tree, configure writes the Makefile as it was
/// (its mtime comes back), and make compiles only the object that holds the output path;
/// `out` equals a clean build of the new name. With a flag the compiler reads besides,
/// configure and build run on the new tree.
#[test]
fn a_same_length_rename_reruns_configure_over_the_earlier_tree_and_compiles_what_holds_the_path() {
    let a = build_named("rename-base", "a", "reuse-cproject-40", None);
    let ck = output(&a, true);
    let b = build_named("rename-from-a", "a", "reuse-cproject-49", Some(&ck));
    let clean = build_named("rename-clean", "a", "reuse-cproject-49", None);
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree") && configure.contains("name"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    assert!(
        decision(&b, "buildPhase").contains("ran incrementally over the earlier build's tree"),
        "{}",
        decision(&b, "buildPhase")
    );
    // util.o holds the output path (-DPREFIX): a rename leaves it out, since a compiler may
    // store a path in pieces no rewrite finds; the other objects are kept.
    assert_compiled_only(&b, "util");
    assert_eq!(make_compiles(&clean).len(), 3);
    assert!(normalised_out(&b) == normalised_out(&clean));
    let greet = greet_output(&b);
    assert_eq!(
        String::from_utf8_lossy(&greet.stdout),
        format!("Hello, world from {}\n", output(&b, false).display())
    );

    let f = build_named("rename-flags", "flags", "reuse-cproject-49", Some(&ck));
    let clean = build_named("rename-flags-clean", "flags", "reuse-cproject-49", None);
    assert!(
        f.log_lines
            .iter()
            .any(|l| l.contains("not rerun over the earlier tree because variable buildFlags")),
        "{}",
        f.log_tail(40)
    );
    assert_eq!(make_compiles(&f).len(), 3, "{}", f.log_tail(40));
    assert!(normalised_out(&f) == normalised_out(&clean));
}

/// A version bump of a package with two outputs (`out`, then `dev`): every output path moves.
/// The earlier build's values are compared with this build's with each output masked by its
/// position among the declared outputs, as the keys mask them; compared by name order
/// instead (`dev` before `out`), every variable holding an output path looked changed, and
/// the phases ran on a fresh tree instead of over the earlier one (the corpus's xz).
#[test]
fn a_rename_of_a_package_with_two_outputs_reruns_configure_over_the_earlier_tree() {
    let a = build_named("two-outputs-base", "dev", "reuse-cproject-56", None);
    let ck = output(&a, true);
    let b = build_named("two-outputs-renamed", "dev", "reuse-cproject-59", Some(&ck));
    let clean = build_named("two-outputs-clean", "dev", "reuse-cproject-59", None);
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree") && configure.contains("name"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    assert_compiled_only(&b, "util");
    let output_named = |r: &BuildResult, suffix: &str| {
        r.out_paths
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .cloned()
            .unwrap_or_else(|| panic!("no {suffix} in {:?}", r.out_paths))
    };
    let out = |r: &BuildResult| output_named(r, "-reuse-cproject-59");
    let (ours, theirs) = (out(&b), out(&clean));
    assert!(normalised_nar(&ours, &ours) == normalised_nar(&theirs, &theirs));
    let header = |r: &BuildResult| {
        let dev = output_named(r, "-reuse-cproject-59-dev");
        std::fs::read(dev.join("include/util.h")).unwrap()
    };
    assert_eq!(header(&b), header(&clean));
}

/// A version bump where configure writes a header holding the output path that no
/// dependency record names (gnulib's `configmake.h`): its includer's object holds the path
/// too, so it is left out for make to remake. The includer itself must not be made newer:
/// the rule that remakes the shipped manual page from it would run (GNU m4's `m4.1:
/// src/m4.c`, by `help2man`), where a clean build installs the page as shipped. With the
/// builder before, the page was remade.
#[test]
fn a_rename_leaves_a_unit_whose_object_was_left_out_for_make_to_compile() {
    let a = build_named(
        "configmake-base",
        "untracked-configmake",
        "reuse-cproject-57",
        None,
    );
    let ck = output(&a, true);
    let b = build_named(
        "configmake-renamed",
        "untracked-configmake",
        "reuse-cproject-58",
        Some(&ck),
    );
    let clean = build_named(
        "configmake-clean",
        "untracked-configmake",
        "reuse-cproject-58",
        None,
    );
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    let build = decision(&b, "buildPhase");
    assert!(
        build.contains("1 unit(s) whose objects were left out for make to remake"),
        "{build}"
    );
    assert_compiled_only(&b, "util");
    let page = std::fs::read_to_string(output(&b, false).join("share/greet/greet.1")).unwrap();
    assert_eq!(page, "shipped manual page\n");
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// A version bump (same length) where the output path reaches an object through a variable
/// no makefile reads (the compiler script adds `-DLIBDIR=$GREET_LIBDIR`, as nixpkgs' wrapper
/// adds `NIX_CFLAGS_COMPILE`), and gcc at -O1 stores the path in 8-byte immediates: no file
/// holds the earlier path or hash whole, yet `util.o` holds pieces of it. The rename must
/// leave `util.o` out (8 characters of the earlier hash in compiler output) so make compiles
/// it again; kept, the program printed the earlier path.
#[test]
fn a_rename_leaves_out_an_object_holding_the_earlier_path_in_immediates() {
    let a = build_named("env-imm-base", "env-immediates", "reuse-cproject-65", None);
    let b = build_named(
        "env-imm-rename",
        "env-immediates",
        "reuse-cproject-66",
        Some(&output(&a, true)),
    );
    let clean = build_named("env-imm-clean", "env-immediates", "reuse-cproject-66", None);
    assert!(
        decision(&b, "configurePhase").contains("ran over the earlier build's tree"),
        "{}",
        b.log_tail(40)
    );
    // As in the test above, the NAR normaliser cannot find the hash in immediates holding
    // fewer than 8 of its characters, so each program's output is the check: it prints the
    // path it assembles from them.
    for r in [&b, &clean] {
        assert_eq!(
            String::from_utf8_lossy(&greet_output(r).stdout),
            format!("Hello, world from {}/lib\n", output(r, false).display()),
            "{}",
            r.log_tail(40)
        );
    }
    assert!(
        b.log_lines.iter().any(|l| l
            .contains("left out because they hold the earlier build's output `out`")
            && l.contains("util.o")),
        "{}",
        b.log_tail(40)
    );
    assert_compiled_only(&b, "util");
}

/// For the cproject variants whose `main.o` prints `$(GREET_MARK)`: `b` and `clean` print
/// `mark` before the greeting, and `b`'s `out` equals `clean`'s.
fn assert_marked_like_a_clean_build(b: &BuildResult, clean: &BuildResult, mark: &str) {
    for r in [b, clean] {
        assert_eq!(
            String::from_utf8_lossy(&greet_output(r).stdout),
            format!("{mark}: Hello, world from {}\n", output(r, false).display()),
            "{}",
            r.log_tail(40)
        );
    }
    assert!(normalised_out(b) == normalised_out(clean));
}

/// A version bump (same length) where a hook, not the derivation, hands make a value derived
/// from the changed name, and `main.o`'s own rule reads `$(GREET_MARK)`: preBuild exports
/// `GREET_MARK=$name` (`hook-env`), passes it in `makeFlagsArray` (`hook-args`), exports it
/// and postBuild unsets it (`hook-unset`: the state after buildPhase does not show it), or
/// runs `make GREET_MARK=$name main.o` (`hook-cmdline`: make's command line only). No
/// makefile reads `$(name)`, and `main.o` holds no output path, so a rerun over the earlier
/// tree kept it and the program printed the earlier name (before the checks). The code
/// buildPhase runs expands the changed name: the phases run on the new tree, decided before
/// anything is restored.
fn a_changed_name_the_build_code_expands(variant: &str, test: u32) {
    let (old, new) = (
        format!("reuse-cproject-{test}"),
        format!("reuse-cproject-{}", test + 1),
    );
    let a = build_named(&format!("{variant}-base"), variant, &old, None);
    let b = build_named(
        &format!("{variant}-rename"),
        variant,
        &new,
        Some(&output(&a, true)),
    );
    let clean = build_named(&format!("{variant}-clean"), variant, &new, None);
    assert_marked_like_a_clean_build(&b, &clean, &new);
    assert!(
        b.log_lines.iter().any(|l| {
            l.contains(
            "not rerun over the earlier tree because the code buildPhase runs expands variable name"
        )
        }),
        "{}",
        b.log_tail(40)
    );
    assert!(
        !b.log_lines
            .iter()
            .any(|l| l.contains("discarding what was restored")),
        "{}",
        b.log_tail(40)
    );
    assert_eq!(make_compiles(&b).len(), 3, "{}", b.log_tail(40));
}

#[test]
fn a_rename_rebuilds_when_a_hook_exports_a_value_make_reads() {
    a_changed_name_the_build_code_expands("hook-env", 68);
}

#[test]
fn a_rename_rebuilds_when_a_hook_passes_make_a_changed_value() {
    a_changed_name_the_build_code_expands("hook-args", 70);
}

#[test]
fn a_rename_runs_on_the_new_tree_when_a_hook_sets_and_unsets_a_changed_value() {
    a_changed_name_the_build_code_expands("hook-unset", 73);
}

#[test]
fn a_rename_runs_on_the_new_tree_when_the_build_code_passes_make_the_changed_name() {
    a_changed_name_the_build_code_expands("hook-cmdline", 75);
}

/// A source change make does not see, reaching it through a hook: preBuild exports
/// `GREET_MARK` read from the source's `mark.txt`, which no rule names, and `main.o`'s own
/// rule reads `$(GREET_MARK)`. The incremental build resumed at buildPhase and make kept
/// `main.o`; the variable buildPhase ended with differs from the earlier build's, so the
/// build starts again from scratch.
#[test]
fn a_source_change_a_hook_hands_to_make_rebuilds() {
    let Triple { b, clean, .. } = triple(72, "hook-source", "hook-source", "hook-source-changed");
    assert_marked_like_a_clean_build(&b, &clean, "mark-2");
    assert!(
        b.log_lines.iter().any(|l| {
            l.contains("discarding what was restored and building from scratch")
                && l.contains("buildPhase ended with")
                && l.contains("GREET_MARK")
        }),
        "{}",
        b.log_tail(40)
    );
}

/// A changed configure flag that changes only `config.h`: configure reruns over the earlier
/// tree, and since no rule names `config.h` (dependency tracking off), the compile unit that
/// includes it counts as changed; the other objects are kept.
#[test]
fn a_changed_configure_flag_recompiles_what_includes_the_changed_header() {
    let Triple { b, clean, .. } = triple(41, "configured", "configured", "configured-loud");
    assert!(
        decision(&b, "configurePhase").contains("ran over the earlier build's tree"),
        "{}",
        b.log_tail(40)
    );
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("config.h") && build_line.contains("1 compile unit(s)"),
        "{build_line}"
    );
    assert_compiled_only(&b, "util");
    assert!(normalised_out(&b) == normalised_out(&clean));
    let greet = greet_output(&b);
    assert!(String::from_utf8_lossy(&greet.stdout).ends_with("!\n"));
}

/// A changed header no rule names (the Makefile lists none): the builder cannot leave it to
/// make, so the units that include it compile again. Their objects are made older than them
/// rather than the units newer: a rule that makes something else from a unit (here a manual
/// page from `util.c`, which a clean build never runs because the shipped page is not older)
/// must not run, or `out` would differ from a clean build (GNU diffutils' `help2man` pages,
/// docs/corpus.md). The three units that include it are all that compile: `other.c`, which
/// does not, stays out even though a header it includes has a line `#include this file …`
/// inside a comment (gnulib's `minmax.h`), which is no computed include.
#[test]
fn an_untracked_header_change_recompiles_its_includers_and_nothing_made_from_them() {
    let Triple { b, clean, .. } = triple(44, "untracked", "untracked", "untracked-header");
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("util.h")
            && build_line.contains("the 3 compile unit(s) that include it")
            && build_line.contains("3 object(s) made older than their sources"),
        "{build_line}\n{}",
        b.log_tail(40)
    );
    assert_eq!(make_compiles(&b).len(), 3, "{}", b.log_tail(40));
    assert!(
        !b.log_lines
            .iter()
            .any(|l| l.contains("regenerated from util.c")),
        "{}",
        b.log_tail(40)
    );
    assert!(normalised_out(&b) == normalised_out(&clean));
    let page = std::fs::read_to_string(output(&b, false).join("share/greet/greet.1")).unwrap();
    assert_eq!(page, "shipped manual page\n");
    assert!(String::from_utf8_lossy(&greet_output(&b).stdout).ends_with("!\n"));
}

/// The same header change where a rule makes a shared library from the units themselves,
/// compiled and linked in one command (lz4's `liblz4.so: $(SRCFILES)`): `util.c` has an
/// object (`util.o`, for the program), so it is not made newer, and only the library's being
/// older than it remakes the library. The builder before left the library as the earlier
/// build made it (MARK without the change), and `out` differed from a clean build's.
#[test]
fn an_untracked_header_change_remakes_a_library_made_from_the_units_themselves() {
    let Triple { a, b, clean } =
        triple(74, "direct", "untracked-direct", "untracked-direct-header");
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("util.h")
            && build_line.contains("3 object(s) made older than their sources, 2 program(s), shared librar(ies) or archive(s) holding them too"),
        "{build_line}\n{}",
        b.log_tail(40)
    );
    assert!(
        b.log_lines
            .iter()
            .any(|l| l.contains("-shared -Wl,--build-id=none -o libdirect.so")),
        "the library is made again: {}",
        b.log_tail(40)
    );
    assert!(
        !b.log_lines
            .iter()
            .any(|l| l.contains("regenerated from util.c")),
        "{}",
        b.log_tail(40)
    );
    // The library alone, each build's own output hash set aside.
    let lib = |r: &BuildResult| {
        let out = output(r, false);
        normalised_nar(&out, &out.join("lib/libdirect.so"))
    };
    assert!(
        lib(&a) != lib(&clean),
        "the header change reaches the library"
    );
    assert!(lib(&b) == lib(&clean), "the library is the clean build's");
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// An edit-build loop that undoes an edit: the earlier build's postPatch edited `util.c`,
/// newer than the shipped manual page, so its make remade the page from it (as a clean build
/// of that source does); the new source has `util.c` as shipped, older than the page, so a
/// clean build installs the shipped page. Over the earlier tree the page is the remade one,
/// and the changed `util.c`, newer than every restored file, would have make remake it again:
/// the builder runs configure and build on the new tree instead, and says why. The builder
/// before installed the remade page (GNU diffutils' `diff.1: diff.c`, docs/corpus.md).
#[test]
fn an_edit_undone_does_not_keep_a_source_file_the_edit_remade() {
    let Triple { a, b, clean } = triple(75, "edit-undone", "untracked-edit", "untracked");
    assert!(
        a.log_lines
            .iter()
            .any(|l| l.contains("regenerated from util.c")),
        "the edit remakes the page: {}",
        a.log_tail(40)
    );
    assert!(
        b.log_lines.iter().any(|l| l.contains(
            "no incremental restore after patchPhase: the earlier build remade \
             cproject-src/greet.1, a file of the source, when cproject-src/util.c was newer"
        )),
        "{}",
        b.log_tail(40)
    );
    let page = std::fs::read_to_string(output(&b, false).join("share/greet/greet.1")).unwrap();
    assert_eq!(page, "shipped manual page\n");
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// The same loop one build longer: the edit's build (a) remakes the page; the next (b), over
/// a's checkpoint, keeps the edit and changes `util.h`, and its tree keeps the remade page;
/// the one after (c), over b's checkpoint, undoes the edit. c's source is header's, whose
/// clean build installs the shipped page: c must not keep the remade one.
#[test]
fn an_edit_undone_two_builds_later_does_not_keep_a_source_file_the_edit_remade() {
    let a = build(76, "undo3-a", "untracked-edit", None);
    let b = build(
        76,
        "undo3-b",
        "untracked-edit-header",
        Some(&output(&a, true)),
    );
    let c = build(76, "undo3-c", "untracked-header", Some(&output(&b, true)));
    let clean = build(76, "undo3-clean", "untracked-header", None);
    let page = |r: &BuildResult| {
        std::fs::read_to_string(output(r, false).join("share/greet/greet.1")).unwrap()
    };
    assert_eq!(page(&a), "regenerated from util.c\n");
    assert!(
        decision(&b, "configurePhase").contains("restored (incremental)"),
        "{}",
        b.log_tail(40)
    );
    assert_eq!(page(&b), "regenerated from util.c\n");
    assert_eq!(page(&clean), "shipped manual page\n");
    assert_eq!(page(&c), "shipped manual page\n", "{}", c.log_tail(40));
    assert!(
        c.log_lines.iter().any(|l| l.contains(
            "no incremental restore after patchPhase: the earlier build remade \
             cproject-src/greet.1, a file of the source, when cproject-src/util.c was newer"
        )),
        "{}",
        c.log_tail(40)
    );
    assert!(normalised_out(&c) == normalised_out(&clean));
}

/// The same header change where a unit includes a header through a macro (`#include
/// OTHER_H`): that could be any header, so that unit counts as including the changed one, as
/// do the units that include it, but not the others (`lone.c`); the log names the file.
#[test]
fn a_computed_include_counts_as_including_the_changed_header_and_the_log_says_where() {
    let a = build(54, "computed-base", "untracked-computed", None);
    let b = build(
        54,
        "computed-header",
        "untracked-computed-header",
        Some(&output(&a, true)),
    );
    let clean = build(
        54,
        "computed-header-clean",
        "untracked-computed-header",
        None,
    );
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains(
            "the 4 compile unit(s) that include it or may (a computed include (`#include \
             MACRO`) in cproject-src/other.c could name any file)"
        ),
        "{build_line}\n{}",
        b.log_tail(40)
    );
    // other.c is no target of the Makefile: the three that are compile again.
    assert_eq!(make_compiles(&b).len(), 3, "{}", b.log_tail(40));
    assert!(normalised_out(&b) == normalised_out(&clean));
    assert!(String::from_utf8_lossy(&greet_output(&b).stdout).ends_with("!\n"));
}

/// A changed source file that a unit includes through a macro (`#include IMPL`, naming
/// `impl.c`) and that no rule names: make would keep the unit's object, so the unit with the
/// computed include is compiled again, and the log says why.
#[test]
fn a_source_file_a_computed_include_may_name_recompiles_that_unit() {
    let Triple { b, clean, .. } = triple(55, "impl", "untracked-impl", "untracked-impl-source");
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("names cproject-src/impl.c")
            && build_line.contains(
                "the 1 compile unit(s) that include it or may (a computed include (`#include \
                 MACRO`) in cproject-src/main.c could name any file)"
            ),
        "{build_line}\n{}",
        b.log_tail(40)
    );
    assert_compiled_only(&b, "main");
    assert!(normalised_out(&b) == normalised_out(&clean));
    assert!(String::from_utf8_lossy(&greet_output(&b).stdout).starts_with("changed: "));
}

/// A changed configure flag that changes the Makefile's compile flags: make would keep the
/// objects compiled with the old ones, so the build starts again from scratch, and says why.
#[test]
fn a_configure_flag_that_changes_the_makefile_builds_from_scratch() {
    let Triple { b, clean, .. } = triple(42, "configured-o2", "configured", "configured-o2");
    assert!(
        b.log_lines.iter().any(|l| l
            .contains("changed in cproject-src/Makefile beyond what can be followed")
            && l.contains("building from scratch")),
        "{}",
        b.log_tail(40)
    );
    assert_eq!(make_compiles(&b).len(), 3, "{}", b.log_tail(40));
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// A same-length rename of a CMake or Meson project: configure reruns over the earlier tree
/// (with CMake's cache, since only the name changed; without meson's, which would stand in
/// for a configure), the object that holds the output path is left out, and ninja compiles
/// it and what else names the path on its command line (every object here: `-DPREFIX`, whose
/// logged command hash a rename does not move); `out` equals a clean build.
fn ninja_project_renamed_equals_a_clean_build(project: ReuseProject, names: [&str; 2]) {
    let p = project.label;
    let a = build_project(project, &format!("{p}-rename-base"), "a", names[0], None);
    let b = build_project(
        project,
        &format!("{p}-rename"),
        "a",
        names[1],
        Some(&output(&a, true)),
    );
    let clean = build_project(project, &format!("{p}-rename-clean"), "a", names[1], None);
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    assert!(
        configure.contains("left out because they hold the earlier build's output `out`"),
        "{configure}"
    );
    let (what, cache) = if p == "meson" {
        (
            "left out so that configure starts afresh: ",
            "/build/meson-private/coredata.dat",
        )
    } else {
        (
            "kept, since only the package's name or version changed and the source did not: ",
            "/build/CMakeCache.txt",
        )
    };
    let listed = configure
        .split_once(what)
        .unwrap_or_else(|| panic!("{configure}"))
        .1;
    assert!(listed.contains(cache), "{configure}");
    if p == "cmake" {
        // With its cache (the earlier prefix in it replaced), cmake does not look for the
        // compiler again; a clean configure does.
        let detects = |r: &BuildResult| {
            r.log_lines
                .iter()
                .any(|l| l.contains("Detecting C compiler ABI info"))
        };
        assert!(detects(&clean) && !detects(&b), "{}", b.log_tail(40));
        let left_out = configure
            .split_once("left out because")
            .map_or("", |(_, l)| l);
        assert!(!left_out.contains("CMakeCache.txt"), "{configure}");
    }
    assert_eq!(ninja_compiles(&clean).len(), 3);
    assert!(normalised_out(&b) == normalised_out(&clean));
}

#[test]
fn cmake_ninja_project_renamed_equals_a_clean_build() {
    ninja_project_renamed_equals_a_clean_build(CMAKE_PROJECT, ["reuse-cmake-43", "reuse-cmake-44"]);
}

#[test]
fn meson_ninja_project_renamed_equals_a_clean_build() {
    ninja_project_renamed_equals_a_clean_build(MESON_PROJECT, ["reuse-meson-45", "reuse-meson-46"]);
}

/// A same-length rename of the CMake project generated for make: cmake reruns over the
/// earlier tree with its cache, and so, not detecting the compiler again, lists fewer files
/// in `CMakeFiles/Makefile.cmake` (CMake's language, which make never reads). Taken for a
/// makefile, that change made the build start again from scratch (the corpus's libyaml and
/// json-c); now make resumes over the earlier tree and `out` equals a clean build.
#[test]
fn cmake_make_project_renamed_resumes_over_the_earlier_tree() {
    let p = CMAKE_MAKE_PROJECT;
    let a = build_project(p, "cmake-make-rename-base", "a", "reuse-cmmk-68", None);
    let b = build_project(
        p,
        "cmake-make-rename",
        "a",
        "reuse-cmmk-69",
        Some(&output(&a, true)),
    );
    let clean = build_project(p, "cmake-make-rename-clean", "a", "reuse-cmmk-69", None);
    let build = decision(&b, "buildPhase");
    assert!(
        build.contains("ran incrementally over the earlier build's tree"),
        "{build}\n{}",
        b.log_tail(40)
    );
    assert!(!cmake_make_compiles(&clean).is_empty());
    assert!(normalised_out(&b) == normalised_out(&clean));
}

/// Build description changes (issue 14): a source file added to the program, and a version
/// given to `project()`. Configure reruns over the earlier tree (without its cache); the
/// build tool compiles the new file and relinks, and for the version compiles nothing.
/// `compiles` reads the compile lines of the project's build tool. Under make (CMake's make
/// generator) the makefiles cmake rewrote are followed: the added file changes explicit
/// rules. `out` equals a clean build each time.
fn description_changes(
    project: ReuseProject,
    name: &str,
    compiles: fn(&BuildResult) -> Vec<&String>,
) {
    let p = project.label;
    let a = build_project(project, &format!("{p}-desc-base"), "a", name, None);
    let ck = output(&a, true);
    assert_eq!(compiles(&a).len(), 3, "{}", a.log_tail(40));
    let make = project.label == CMAKE_MAKE_PROJECT.label;
    for (variant, compiled_files) in [("added", vec!["extra.c"]), ("version", vec![])] {
        let b = build_project(project, &format!("{p}-{variant}"), variant, name, Some(&ck));
        let clean = build_project(
            project,
            &format!("{p}-{variant}-clean"),
            variant,
            name,
            None,
        );
        let configure = decision(&b, "configurePhase");
        assert!(
            configure.contains("ran over the earlier build's tree")
                && configure.contains("build description files changed"),
            "{variant}: {configure}\n{}",
            b.log_tail(40)
        );
        let compiled = compiles(&b);
        assert_eq!(
            compiled.len(),
            compiled_files.len(),
            "{variant}: {compiled:?}\n{}",
            b.log_tail(40)
        );
        for (line, file) in compiled.iter().zip(&compiled_files) {
            assert!(line.contains(file), "{variant}: {compiled:?}");
        }
        if make && variant == "added" {
            let build_line = decision(&b, "buildPhase");
            assert!(build_line.contains("explicit rule(s)"), "{build_line}");
        }
        assert!(
            normalised_out(&b) == normalised_out(&clean),
            "{variant}: out differs from a clean build"
        );
    }
}

#[test]
fn cmake_ninja_project_description_changes_compile_what_they_add() {
    description_changes(CMAKE_PROJECT, "reuse-cmake-47", ninja_compiles);
}

#[test]
fn meson_ninja_project_description_changes_compile_what_they_add() {
    description_changes(MESON_PROJECT, "reuse-meson-48", ninja_compiles);
}

/// A new source whose root directory has another name (a new tarball's `hello-2.12/`, here of
/// another length too): the earlier tree moves to the new name, the phases after patchPhase
/// rerun over it, and make compiles the changed file only; `out` equals a clean build.
#[test]
fn a_renamed_source_root_is_laid_over_under_its_new_name() {
    let Triple { b, clean, .. } = triple(43, "renamed", "a", "renamed-source");
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree")
            && configure.contains("the source root changed (cproject-src → cproject-src-2"),
        "{configure}\n{}",
        b.log_tail(40)
    );
    assert_compiled_only(&b, "text");
    assert!(normalised_out(&b) == normalised_out(&clean));
    let greet = greet_output(&b);
    assert!(String::from_utf8_lossy(&greet.stdout).starts_with("Hello, changed world"));
}

/// One build of `tests/reuse-cases/autotools-project.nix` at `version` (`AC_INIT`'s), with
/// extra.c in the program when `extra`; `test` names the package (`reuse-atdemo-<test>-<version>`),
/// so tests running in parallel never build the same derivation.
fn build_autotools(
    test: u32,
    label: &str,
    version: &str,
    extra: bool,
    base: Option<&Path>,
) -> BuildResult {
    let attrs = format!(
        "version = \"{version}\"; extra = {extra}; name = \"reuse-atdemo-{test}-{version}\"; {}",
        base_attr(base)
    );
    build_ok(
        &case_file("reuse-cases", label, "autotools-project", &attrs),
        label,
    )
}

/// A version bump of an automake project under make (issue 14), released as upstream does:
/// a new tarball whose `configure.ac` and `configure` changed and whose top directory was
/// renamed. Configure reruns over the earlier tree; the files the tarball generated after
/// `configure.ac` keep their order (or make would run aclocal, automake and autoheader, which
/// a clean build does not); the Makefile it writes differs only in the version's values,
/// which among the rules that build files only stamp.h's recipe reads: stamp.h is left out
/// for make to remake. config.h changed and stamp.h will, and no dependency record names
/// either, so version.c and main.c, the
/// units that include them, compile again, and util.c does not. `out` equals a clean build
/// of the new version.
#[test]
fn an_autotools_version_bump_compiles_only_what_includes_the_changed_headers() {
    let a = build_autotools(61, "atdemo-base", "1.0", false, None);
    let b = build_autotools(61, "atdemo-bump", "1.1", false, Some(&output(&a, true)));
    let clean = build_autotools(61, "atdemo-bump-clean", "1.1", false, None);
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree"),
        "{configure}\n{}",
        b.log_tail(60)
    );
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("differ only in the values of")
            && build_line.contains("VERSION")
            && build_line.contains("config.h"),
        "{build_line}\n{}",
        b.log_tail(60)
    );
    for tool in ["aclocal", "automake", "autoconf", "autoheader"] {
        assert!(
            !b.log_lines
                .iter()
                .any(|l| l.contains(&format!("missing' {tool}"))
                    || l.contains(&format!("missing {tool}"))),
            "make ran {tool}:\n{}",
            b.log_tail(60)
        );
    }
    assert!(
        build_line.contains("1 build product(s) whose rules read them or changed were left out")
            && build_line.contains("stamp.h"),
        "{build_line}"
    );
    let mut compiled: Vec<&str> = make_compiles(&b)
        .iter()
        .filter_map(|l| l.rsplit(' ').next())
        .collect();
    compiled.sort();
    assert_eq!(compiled, ["main.c", "version.c"], "{}", b.log_tail(60));
    assert_eq!(make_compiles(&clean).len(), 3, "{}", clean.log_tail(40));
    assert!(normalised_out(&b) == normalised_out(&clean));
    let program = Command::new(output(&b, false).join("bin/atdemo"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&program.stdout),
        "built as atdemo 1.1\nhello from atdemo 1.1\n"
    );
}

/// The objects CMake's makefiles built (`[ 50%] Building C object CMakeFiles/…`).
fn cmake_make_compiles(b: &BuildResult) -> Vec<&String> {
    b.log_lines
        .iter()
        .filter(|l| l.contains("Building C object"))
        .collect()
}

/// The same description changes for CMake's make generator (issue 14): cmake reruns over
/// the earlier tree and rewrites the makefiles, which make would not follow by itself.
#[test]
fn cmake_make_project_description_changes_compile_what_they_add() {
    description_changes(CMAKE_MAKE_PROJECT, "reuse-cmkmk-50", cmake_make_compiles);
}

/// A source file added to an automake program (issue 14): `Makefile.am` and the
/// `Makefile.in` automake made from it change. Configure reruns over the earlier tree and
/// writes a Makefile whose values (the object list) and explicit rules changed; the program,
/// whose rule reads the object list, is left out for make to relink, and only extra.c
/// compiles. `out` equals a clean build.
#[test]
fn a_source_file_added_to_makefile_am_compiles_that_file_and_relinks() {
    let a = build_autotools(62, "atdemo-extra-base", "1.0", false, None);
    let b = build_autotools(62, "atdemo-extra", "1.0", true, Some(&output(&a, true)));
    let clean = build_autotools(62, "atdemo-extra-clean", "1.0", true, None);
    let configure = decision(&b, "configurePhase");
    assert!(
        configure.contains("ran over the earlier build's tree"),
        "{configure}\n{}",
        b.log_tail(60)
    );
    let build_line = decision(&b, "buildPhase");
    assert!(
        build_line.contains("atdemo-1.0/atdemo") && build_line.contains("left out for make"),
        "{build_line}\n{}",
        b.log_tail(60)
    );
    let compiled: Vec<&str> = make_compiles(&b)
        .iter()
        .filter_map(|l| l.rsplit(' ').next())
        .collect();
    assert_eq!(compiled, ["extra.c"], "{}", b.log_tail(60));
    assert!(normalised_out(&b) == normalised_out(&clean));
}
