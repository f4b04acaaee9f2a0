//! Checkpoint reuse on the real projects (GNU hello, Lua 5.4, zstd from Debian's orig
//! tarballs, and zstd through its CMake build, for ninja and for make), with real Nix: one
//! test per project builds
//!
//! 1. `base`: the project with a `checkpoint` output;
//! 2. `oneline` (one line of one C file changed by `postPatch`, see
//!    `tests/projects/variant.nix`) with `checkpointBase` = that checkpoint, and the same
//!    variant clean (no base, same builder, also with a checkpoint output);
//! 3. `header` (one line of one header changed by `postPatch`) with the base, and clean;
//! 4. `install` (a `postInstall` writing one more file) with the base, and clean.
//!
//! and requires: the resumed `oneline` build ran patchPhase (its `postPatch` changed; the
//! tarball did not, so unpackPhase may be restored), restored configure (decision line;
//! `Running phase: configurePhase` absent), resumed buildPhase over the earlier tree with the
//! changed file as the only change, compiled only the objects of that file (one; two for
//! the CMake builds, whose `zstd` and `zstd-frugal` programs each compile `zstdcli.c`), and its
//! `out` is NAR-identical to the clean build's (own output hash and the 10-character seed
//! prefix normalised, as `tests/reuse.rs` does) and the changed program prints the change;
//! the resumed `header` build restored configure, resumed buildPhase over the earlier tree,
//! compiled what includes the header (hello, configured with `--disable-dependency-tracking`,
//! so no dependency record names the header: `src/hello.o` alone, found through the include
//! directives; lua and zstd: the objects their Makefile rules or depfiles name it for;
//! the CMake builds: those ninja's `.ninja_deps`, or the dependency files CMake's makefiles
//! collect, name it for; fewer than a clean build for every zstd build), and its `out`
//! equals the clean build's and differs from the base's;
//! the `install` build restored every phase up to `buildPhase` (hello: `checkPhase` too), ran
//! install and fixup, and its `out` equals the clean build's. Every check is made and all
//! failures are reported together, with the log lines that show them.
//!
//! Case files are generated under `target/real-reuse/` (like `tests/common/projects.rs`
//! does), importing `tests/projects/<file>.nix` with `tests/projects/mk-drv.nix` for the
//! checkpoint attributes and a salt (`benchSalt = "real-reuse-<run salt>"`): every run builds
//! new derivations, apart from the other suites' and from earlier runs' (whose outputs stay
//! referenced by the `.drv` files that named their checkpoint, so could not be deleted for a
//! rebuild). `CHECKPOINT_BUILDER`, `CHECKPOINT_TEST_STDENV` and `CHECKPOINT_SOURCES` work as in
//! the other suites; nothing is skipped.

use integration_tests::log::strip_ansi;
use integration_tests::nix::{builder_binary, nix_build, repo_root, restore, BuildResult};
use integration_tests::outputs::{normalised_out, output, run_salt};
use integration_tests::projects::{nix_string, sources_dir, Project};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Log lines shown with a failure.
const LOG_TAIL: usize = 60;
/// The text every `oneline` edit adds (tests/projects/variant.nix).
const CHANGE: &str = "(one-line change)";
/// The file the `install` variant adds to `out`.
const INSTALL_FILE: &str = "share/checkpoint-install-variant.txt";

/// What the test needs to know about a project.
struct Spec {
    project: Project,
    /// The file the `oneline` variant edits, relative to the source root.
    changed_file: &'static str,
    /// How many objects a build compiles from that file.
    objects_per_file: usize,
    /// Whether the project has a configure script (hello), so `configurePhase` would run.
    configures: bool,
    /// Phases before `installPhase` that the `install` variant must restore.
    before_install: &'static [&'static str],
    /// The program and arguments that show the change, and the text its stdout must contain.
    shows_change: (&'static str, &'static [&'static str], &'static str),
    /// The header the `header` variant edits, relative to the source root.
    header: &'static str,
    /// Whether the earlier build records no dependency on that header (hello: automake with
    /// `--disable-dependency-tracking`), so the builder itself must make what includes it
    /// (hello: `changed_file`, the only includer) newer than its object.
    header_untracked: bool,
    /// What shows the `header` change, as `shows_change` (None: only `out` shows it).
    header_shows: Option<(&'static str, &'static [&'static str], &'static str)>,
    /// Whether the earlier build's dependency records name the header for some objects
    /// only, so the `header` build compiles fewer objects than a clean build (lua's Makefile
    /// lists `lua.h` for every object).
    header_in_some_objects: bool,
}

const HELLO: Spec = Spec {
    project: Project::Hello,
    changed_file: "src/hello.c",
    objects_per_file: 1,
    configures: true,
    before_install: &[
        "unpackPhase",
        "patchPhase",
        "configurePhase",
        "buildPhase",
        "checkPhase",
    ],
    shows_change: (
        "bin/hello",
        &["--version"],
        "hello (GNU Hello) 2.10 (one-line change)\n",
    ),
    header: "src/system.h",
    header_untracked: true,
    header_shows: Some((
        "bin/hello",
        &["--version"],
        "hello (GNU Hello) 2.10 (one-line change)\n",
    )),
    header_in_some_objects: true,
};

const LUA: Spec = Spec {
    project: Project::Lua,
    changed_file: "src/lua.c",
    objects_per_file: 1,
    configures: false,
    before_install: &["unpackPhase", "patchPhase", "configurePhase", "buildPhase"],
    shows_change: (
        "bin/lua",
        &["-v"],
        "Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio (one-line change)",
    ),
    header: "src/lua.h",
    header_untracked: false,
    header_shows: Some((
        "bin/lua",
        &["-v"],
        "Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio (one-line change)",
    )),
    header_in_some_objects: false,
};

const ZSTD: Spec = Spec {
    project: Project::Zstd,
    changed_file: "programs/zstdcli.c",
    objects_per_file: 1,
    configures: false,
    before_install: &["unpackPhase", "patchPhase", "configurePhase", "buildPhase"],
    shows_change: (
        "bin/zstd",
        &["--version"],
        "*** Zstandard CLI (one-line change) (64-bit) v1.5.4",
    ),
    header: "programs/fileio.h",
    header_untracked: false,
    header_shows: None,
    header_in_some_objects: true,
};

const ZSTD_CMAKE: Spec = Spec {
    project: Project::ZstdCmake,
    objects_per_file: 2,
    configures: true,
    ..ZSTD
};

const ZSTD_CMAKE_MAKE: Spec = Spec {
    project: Project::ZstdCmakeMake,
    ..ZSTD_CMAKE
};

/// Writes the case file `target/real-reuse/<project>-<label>.nix`.
fn case(project: Project, label: &str, variant: &str, base: Option<&Path>) -> PathBuf {
    let sources = sources_dir().unwrap_or_else(|e| panic!("{e}"));
    let dir = repo_root().join("target/real-reuse");
    std::fs::create_dir_all(&dir).unwrap();
    let projects = repo_root().join("tests/projects");
    let file = dir.join(format!("{}-{label}.nix", project.name()));
    let base = base.map_or_else(|| "null".to_owned(), |p| nix_string(&p.to_string_lossy()));
    let text = format!(
        "# Generated by tests/real_reuse.rs: tests/projects/{name}.nix, variant {variant}.\n\
         {{ mkDrv }}:\n\
         import (/. + {file}) {{\n  \
           mkDrv = import (/. + {mk}) {{\n    inherit mkDrv;\n    checkpoint = true;\n    \
             base = {base};\n    benchSalt = \"real-reuse-{salt}\";\n  }};\n  \
           sources = {sources};\n  variant = \"{variant}\";\n  {extra}\n}}\n",
        name = project.file_stem(),
        extra = project.extra_attrs(),
        file = nix_string(
            &projects
                .join(format!("{}.nix", project.file_stem()))
                .to_string_lossy()
        ),
        mk = nix_string(&projects.join("mk-drv.nix").to_string_lossy()),
        sources = nix_string(&sources.to_string_lossy()),
        salt = run_salt(),
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// Builds one variant with the builder under test; a failed build ends the test.
fn build(project: Project, label: &str, variant: &str, base: Option<&Path>) -> BuildResult {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let result = nix_build(&case(project, label, variant, base), Some(builder))
        .unwrap_or_else(|e| panic!("{}: {label}: {e}", project.name()));
    assert!(
        result.success,
        "{} {label}: build failed: {}\n--- log (tail)\n{}\n--- errors\n{}",
        project.name(),
        result.describe(),
        result.log_tail(LOG_TAIL),
        result.errors.join("\n")
    );
    result
}

/// `None` when the two `out`s are NAR-identical (normalised), else what differs: the files
/// `diff -r` names and the first differing bytes of each.
fn out_difference(label: &str, a: &BuildResult, b: &BuildResult) -> Option<String> {
    let (na, nb) = (normalised_out(a), normalised_out(b));
    if na == nb {
        return None;
    }
    let dir = repo_root().join(format!(
        "target/real-reuse/diff-{label}-{}",
        std::process::id()
    ));
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&dir)
        .status();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (da, db) = (dir.join("a"), dir.join("b"));
    restore(&na, &da).unwrap();
    restore(&nb, &db).unwrap();
    let diff = Command::new("diff")
        .args(["-r", "--brief", "--no-dereference"])
        .arg(&da)
        .arg(&db)
        .output()
        .unwrap();
    let mut text = format!(
        "{label}: `out` differs from the clean build ({} vs {}), unpacked in {}:\n{}",
        output(a, false).display(),
        output(b, false).display(),
        dir.display(),
        String::from_utf8_lossy(&diff.stdout)
    );
    for line in String::from_utf8_lossy(&diff.stdout).lines().take(5) {
        if let Some(rest) = line.strip_prefix("Files ") {
            if let Some((fa, fb)) = rest
                .strip_suffix(" differ")
                .and_then(|r| r.split_once(" and "))
            {
                let cmp = Command::new("cmp")
                    .arg("-l")
                    .arg(fa)
                    .arg(fb)
                    .output()
                    .unwrap();
                let out = String::from_utf8_lossy(&cmp.stdout);
                let n = out.lines().count();
                let first: Vec<&str> = out.lines().take(8).collect();
                text.push_str(&format!(
                    "  {fa}: {n} byte(s) differ; first (offset, octal a, octal b): {}\n",
                    first.join(" | ")
                ));
            }
        }
    }
    Some(text)
}

/// The builder's explanation line for `phase`, or a note that there is none.
fn decision(result: &BuildResult, phase: &str) -> String {
    result
        .decision_line(phase)
        .map_or_else(|| format!("(no decision line for {phase})"), str::to_owned)
}

/// The log lines that compile or assemble one object: the compiler command lines of hello's
/// automake (`--disable-dependency-tracking`, no silent rules) and Lua's Makefile
/// (`gcc … -c -o lua.o lua.c`), zstd's quiet `CC obj/conf_…/zstdcli.o` / `AS …` lines, and
/// the commands `ninja -v` prints (`[3/14] /usr/bin/cc … -c /build/…/programs/zstdcli.c`),
/// and CMake's makefiles' `[ 81%] Building C object …/programs/zstdcli.c.o` (which CMake
/// colours: escape sequences are removed).
fn object_lines(project: Project, result: &BuildResult) -> Vec<String> {
    result
        .log_lines
        .iter()
        .map(|l| strip_ansi(l))
        .filter(|l| match project {
            Project::Zstd => {
                (l.starts_with("CC ") || l.starts_with("AS ")) && l.trim_end().ends_with(".o")
            }
            Project::ZstdCmake => l.starts_with('[') && l.contains(" -c "),
            Project::ZstdCmakeMake => l.contains("] Building C object "),
            _ => l.contains(" -c ") && l.contains(".o "),
        })
        .collect()
}

/// Whether an object line compiles `file` (relative to the source root).
fn compiles(project: Project, line: &str, file: &str) -> bool {
    let stem = Path::new(file).file_stem().unwrap().to_string_lossy();
    match project {
        Project::Zstd => line.trim_end().ends_with(&format!("/{stem}.o")),
        Project::ZstdCmake => line.trim_end().ends_with(&format!("/{file}")),
        Project::ZstdCmakeMake => line.trim_end().ends_with(&format!("/{file}.o")),
        Project::Lua => line.trim_end().ends_with(&format!(" {stem}.c")),
        Project::Hello => line.trim_end().ends_with(&format!(" {file}")),
    }
}

fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {}` failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The project's smoke checks that do not print the version (which the `oneline` variant
/// changes), against `out`.
fn smoke(project: Project, out: &Path, problems: &mut Vec<String>, label: &str) {
    for check in project.smoke_checks() {
        if check.args.iter().any(|a| *a == "--version" || *a == "-v") {
            continue;
        }
        if let Err(e) = check.run(out) {
            problems.push(format!("{label}: {e}"));
        }
    }
}

fn verify(checkpoint: &Path, problems: &mut Vec<String>, label: &str) {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(builder)
        .arg("verify")
        .arg(checkpoint)
        .output()
        .unwrap();
    if !out.status.success() {
        problems.push(format!(
            "{label}: `checkpoint-builder verify {}` failed: {}",
            checkpoint.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

/// The `header` variant from `base` and clean; adds what is wrong to `problems` and returns
/// the resumed build's buildPhase decision.
fn check_header(
    spec: &Spec,
    base: &BuildResult,
    base_ck: &Path,
    problems: &mut Vec<String>,
) -> String {
    let project = spec.project;
    let name = project.name();
    let resumed = build(project, "header-from-base", "header", Some(base_ck));
    let clean = build(project, "header-clean", "header", None);
    let label = format!("{name} header from base");
    let configure = decision(&resumed, "configurePhase");
    if !configure.contains("restored") || resumed.ran_phase("configurePhase") {
        problems.push(format!(
            "{label}: configurePhase was not restored: {configure}"
        ));
    }
    let build_decision = decision(&resumed, "buildPhase");
    if !build_decision.contains("ran incrementally") || !build_decision.contains(spec.header) {
        problems.push(format!(
            "{label}: buildPhase did not resume over the earlier tree with {} changed: {build_decision}",
            spec.header
        ));
    }
    let untracked = build_decision.contains("are compiled again");
    // Their objects are found and made older, and so is the program linked from them: the
    // units themselves keep their mtimes, so no other rule with a unit as prerequisite runs
    // (docs/keys.md).
    if untracked
        && !build_decision.contains(
            "1 object(s) made older than their sources, 1 program(s), shared librar(ies) or \
             archive(s) holding them too)",
        )
    {
        problems.push(format!(
            "{label}: expected the one includer's object and the program to be made older: \
             {build_decision}"
        ));
    }
    if untracked != spec.header_untracked {
        problems.push(format!(
            "{label}: expected the header to be {} by the earlier build's dependency records: \
             {build_decision}",
            if spec.header_untracked {
                "named nowhere"
            } else {
                "named"
            }
        ));
    }
    let objects = object_lines(project, &resumed);
    let clean_objects = object_lines(project, &clean);
    let expected = if spec.header_untracked {
        // The include graph bounds it: only hello.c includes src/system.h.
        objects.len() == 1 && compiles(project, &objects[0], spec.changed_file)
    } else if spec.header_in_some_objects {
        !objects.is_empty() && objects.len() < clean_objects.len()
    } else {
        !objects.is_empty()
    };
    if !expected {
        problems.push(format!(
            "{label}: compiled {} object(s), the clean build {}:\n  {}",
            objects.len(),
            clean_objects.len(),
            objects.join("\n  ")
        ));
    }
    if normalised_out(base) == normalised_out(&clean) {
        problems.push(format!(
            "{name} header clean: `out` equals the base's: the header edit changes nothing, so \
             this check could not fail"
        ));
    }
    if let Some(d) = out_difference(&format!("{name}-header"), &resumed, &clean) {
        problems.push(d);
    }
    if let Some((program, args, want)) = spec.header_shows {
        match run(&output(&resumed, false).join(program), args) {
            Ok(text) if text.contains(want) => {}
            other => problems.push(format!(
                "{label}: `{program} {}` should show the change: {other:?}",
                args.join(" ")
            )),
        }
    }
    verify(&output(&resumed, true), problems, &label);
    format!(
        "{build_decision} ({} objects, clean {})",
        objects.len(),
        clean_objects.len()
    )
}

/// The whole scenario for one project; panics with every problem found.
fn check(spec: &Spec) {
    let project = spec.project;
    let name = project.name();
    let mut problems: Vec<String> = Vec::new();

    let base = build(project, "base", "base", None);
    let base_ck = output(&base, true);

    // The one-line change, resumed and clean.
    let resumed = build(project, "oneline-from-base", "oneline", Some(&base_ck));
    let clean = build(project, "oneline-clean", "oneline", None);
    let label = format!("{name} oneline from base");
    // The tarball is the same, so unpackPhase may be restored; the edit is postPatch's.
    let patch = decision(&resumed, "patchPhase");
    if !resumed.ran_phase("patchPhase") || !patch.contains("postPatch") {
        problems.push(format!(
            "{label}: patchPhase should run because postPatch changed: {patch}"
        ));
    }
    let configure = decision(&resumed, "configurePhase");
    if !configure.contains("restored") || resumed.ran_phase("configurePhase") {
        problems.push(format!(
            "{label}: configurePhase was not restored ({}): {configure}",
            if spec.configures {
                "the project has a configure script"
            } else {
                "dontConfigure"
            }
        ));
    }
    let build_decision = decision(&resumed, "buildPhase");
    if !build_decision.contains("ran incrementally") || !build_decision.contains(spec.changed_file)
    {
        problems.push(format!(
            "{label}: buildPhase did not resume over the earlier tree with {} changed: {build_decision}",
            spec.changed_file
        ));
    }
    let objects = object_lines(project, &resumed);
    if objects.len() != spec.objects_per_file
        || !objects
            .iter()
            .all(|o| compiles(project, o, spec.changed_file))
    {
        problems.push(format!(
            "{label}: expected {} object(s) compiled, from {}; got {}:\n  {}",
            spec.objects_per_file,
            spec.changed_file,
            objects.len(),
            objects.join("\n  ")
        ));
    }
    let clean_objects = object_lines(project, &clean);
    if clean_objects.len() < 2 {
        problems.push(format!(
            "{name} oneline clean: the object-line pattern finds {} object(s) in a full build; \
             the pattern is wrong:\n{}",
            clean_objects.len(),
            clean.log_tail(LOG_TAIL)
        ));
    }
    if let Some(l) = resumed.log_lines.iter().find(|l| l.contains("Clock skew")) {
        problems.push(format!("{label}: make warned: {l}"));
    }
    if let Some(d) = out_difference(&format!("{name}-oneline"), &resumed, &clean) {
        problems.push(d);
    }
    let (program, args, want) = spec.shows_change;
    for (which, result) in [("resumed", &resumed), ("clean", &clean)] {
        match run(&output(result, false).join(program), args) {
            Ok(text) if text.contains(want) => {}
            Ok(text) => problems.push(format!(
                "{name} oneline ({which}): `{program} {}` printed {text:?}, expected it to contain {want:?}",
                args.join(" ")
            )),
            Err(e) => problems.push(format!("{name} oneline ({which}): {e}")),
        }
    }
    match run(&output(&base, false).join(program), args) {
        Ok(text) if !text.contains(CHANGE) => {}
        other => problems.push(format!(
            "{name} base: `{program} {}` should not show the change: {other:?}",
            args.join(" ")
        )),
    }
    smoke(project, &output(&resumed, false), &mut problems, &label);
    verify(&output(&resumed, true), &mut problems, &label);

    let header_decision = check_header(spec, &base, &base_ck, &mut problems);

    // The installPhase-only change, resumed and clean.
    let install = build(project, "install-from-base", "install", Some(&base_ck));
    let install_clean = build(project, "install-clean", "install", None);
    let label = format!("{name} install from base");
    for phase in spec.before_install {
        let d = decision(&install, phase);
        if !d.contains("restored") || install.ran_phase(phase) {
            problems.push(format!("{label}: {phase} was not restored: {d}"));
        }
    }
    let d = decision(&install, "installPhase");
    if !d.contains("ran:") || !d.contains("postInstall") {
        problems.push(format!(
            "{label}: installPhase should run because postInstall changed: {d}"
        ));
    }
    for phase in ["installPhase", "fixupPhase"] {
        if !install.ran_phase(phase) {
            problems.push(format!("{label}: {phase} did not run"));
        }
    }
    if !install_clean.ran_phase("buildPhase") {
        problems.push(format!("{name} install clean: buildPhase did not run"));
    }
    if let Some(d) = out_difference(&format!("{name}-install"), &install, &install_clean) {
        problems.push(d);
    }
    match std::fs::read_to_string(output(&install, false).join(INSTALL_FILE)) {
        Ok(text) if text == "installed by the install variant\n" => {}
        other => problems.push(format!("{label}: {INSTALL_FILE}: {other:?}")),
    }
    // Every program, version included: the install variant leaves the source as the base.
    for check in project.smoke_checks() {
        if let Err(e) = check.run(&output(&install, false)) {
            problems.push(format!("{label}: {e}"));
        }
    }
    verify(&output(&install, true), &mut problems, &label);

    println!(
        "{name}: oneline from base compiled {:?} (clean build: {} objects); install from \
         base: {}\n  {}\n  {}\n  header: {}",
        objects,
        clean_objects.len(),
        decision(&install, "installPhase"),
        decision(&resumed, "configurePhase"),
        build_decision,
        header_decision
    );
    assert!(
        problems.is_empty(),
        "{name}: {} problem(s)\n\n{}\n\n--- oneline from base: decisions and log tail\n{}\n\n\
         --- install from base: log tail\n{}",
        problems.len(),
        problems.join("\n\n"),
        resumed.log_tail(LOG_TAIL),
        install.log_tail(30)
    );
}

#[test]
fn hello_one_line_header_and_install_changes_reuse_the_checkpoint() {
    check(&HELLO);
}

#[test]
fn lua_one_line_header_and_install_changes_reuse_the_checkpoint() {
    check(&LUA);
}

#[test]
fn zstd_one_line_header_and_install_changes_reuse_the_checkpoint() {
    check(&ZSTD);
}

#[test]
fn zstd_cmake_one_line_header_and_install_changes_reuse_the_checkpoint() {
    check(&ZSTD_CMAKE);
}

#[test]
fn zstd_cmake_make_one_line_header_and_install_changes_reuse_the_checkpoint() {
    check(&ZSTD_CMAKE_MAKE);
}

/// A version bump of `name` that keeps its length, same source (issue 14): the phases from
/// configure rerun over the earlier build's tree and the build tool compiles at most
/// `holding_path` objects (those whose object holds the output path, which a rename leaves
/// out); `out` equals a clean build of the new name.
fn rename_compiles_at_most(spec: &Spec, holding_path: usize) {
    let project = spec.project;
    let base = build(project, "rename-base", "rename-base", None);
    let renamed = build(project, "rename", "rename", Some(&output(&base, true)));
    let clean = build(project, "rename-clean", "rename", None);
    let compiled = object_lines(project, &renamed);
    assert!(
        compiled.len() <= holding_path,
        "{}: {} object(s) compiled after a rename:\n{}\n--- log (tail)\n{}",
        project.name(),
        compiled.len(),
        compiled.join("\n"),
        renamed.log_tail(LOG_TAIL)
    );
    assert!(
        !object_lines(project, &clean).is_empty(),
        "the clean build's compiles are not recognised"
    );
    if let Some(difference) = out_difference("rename", &renamed, &clean) {
        panic!(
            "{}: out differs from a clean build: {difference}\n--- log (tail)\n{}",
            project.name(),
            renamed.log_tail(LOG_TAIL)
        );
    }
}

/// hello's `hello.o` and gnulib's `localcharset.o` hold `$out/share/locale` or `$out/lib`.
#[test]
fn hello_rename_compiles_what_holds_the_path() {
    rename_compiles_at_most(&HELLO, 2);
}

#[test]
fn lua_rename_compiles_nothing() {
    rename_compiles_at_most(&LUA, 0);
}

#[test]
fn zstd_rename_compiles_nothing() {
    rename_compiles_at_most(&ZSTD, 0);
}

#[test]
fn zstd_cmake_rename_compiles_nothing() {
    rename_compiles_at_most(&ZSTD_CMAKE, 0);
}
