//! Real upstream projects (GNU hello, Lua 5.4, zstd; Debian orig tarballs fetched by
//! `scripts/fetch-sources.sh`) built from scratch with the stock builder and with
//! checkpoint-builder: both must succeed, announce the same phases and give NAR-identical
//! outputs once each build's own store-path hashes are placeholders, and the programs
//! built by each must run and, on a stdenv that gets the compiler wrapper (every one but
//! tests/stdenv), carry `$out/lib` in their RUNPATH (the stdenv's `-rpath $out/lib`, as in
//! nixpkgs).
//!
//! `CHECKPOINT_BUILDER` names the binary under test (default: `scripts/build-static.sh`),
//! `CHECKPOINT_TEST_STDENV` the stdenv (default: `tests/stdenv/stdenv.nix`),
//! `CHECKPOINT_SOURCES` the tarball cache (default: `target/sources`). Sources that cannot
//! be fetched fail the tests; they are never skipped.

use integration_tests::elf;
use integration_tests::nix::{builder_binary, nix_build, repo_root, stdenv_nix, BuildResult};
use integration_tests::projects::{case_file, Project};
use integration_tests::{compare_builds, HarnessError};

/// Log lines shown when a build fails.
const LOG_TAIL: usize = 60;

/// Every smoke check of `project` against the first output of `build`.
fn run_programs(project: Project, build: &BuildResult) -> Result<Vec<String>, String> {
    let out = build
        .out_paths
        .first()
        .ok_or_else(|| format!("{} has no output path", build.drv_path))?;
    project
        .smoke_checks()
        .iter()
        .map(|check| check.run(out))
        .collect()
}

/// Whether the builds get the compiler wrapper: on every stdenv but tests/stdenv, which
/// declines it (`testCcWrapper = false`, see tests/projects/README.md).
fn wrapper_expected() -> bool {
    stdenv_nix() != repo_root().join("tests/stdenv/stdenv.nix")
}

/// With the compiler wrapper among `build`'s inputs (and it must be there exactly when
/// [`wrapper_expected`]), each program `project` runs from the first output must list that
/// output's `lib` in its RUNPATH (the stdenv's `-rpath $out/lib` reached the link); without
/// it, none may (Debian's gcc ignores NIX_LDFLAGS).
fn require_self_runpath(project: Project, build: &BuildResult) -> Result<(), String> {
    let out = build
        .out_paths
        .first()
        .ok_or_else(|| format!("{} has no output path", build.drv_path))?;
    let wrapped = build
        .closure_outputs
        .iter()
        .any(|p| p.ends_with("-checkpoint-test-cc-wrapper"));
    if wrapped != wrapper_expected() {
        return Err(format!(
            "the compiler wrapper is {}among the inputs of {} on {}",
            if wrapped { "" } else { "not " },
            build.drv_path,
            stdenv_nix().display()
        ));
    }
    let want = format!("{}/lib", out.display());
    for check in project.smoke_checks() {
        let program = out.join(check.program);
        let runpath = elf::runpath(&program).map_err(|e| e.to_string())?;
        let has = runpath
            .as_deref()
            .is_some_and(|r| r.split(':').any(|d| d == want));
        if has != wrapped {
            return Err(format!(
                "RUNPATH of {} is {runpath:?}: {want} should be there exactly when the compiler wrapper is (it is {})",
                program.display(),
                if wrapped { "there" } else { "not" }
            ));
        }
    }
    Ok(())
}

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

/// Builds `project` both ways and checks everything; `Ok` is a summary for the test log.
fn check(project: Project) -> Result<String, String> {
    let name = project.name();
    let harness = |e: HarnessError| format!("{name}: {e}");
    let case = case_file(project).map_err(harness)?;

    let stock = nix_build(&case, None).map_err(harness)?;
    require_success("stock", &stock)?;
    let stock_runs = run_programs(project, &stock).map_err(|e| format!("{name} (stock): {e}"))?;
    require_self_runpath(project, &stock).map_err(|e| format!("{name} (stock): {e}"))?;

    let ours = nix_build(&case, Some(builder_binary().map_err(harness)?)).map_err(harness)?;
    require_success("checkpoint-builder", &ours)?;
    let comparison = compare_builds(&stock, &ours).map_err(harness)?;
    if !comparison.differences.is_empty() {
        return Err(format!(
            "{name}: stock and checkpoint-builder differ\n  stock: {}\n  ours:  {}\n{}",
            stock.describe(),
            ours.describe(),
            comparison.differences.join("\n\n")
        ));
    }
    let our_runs = run_programs(project, &ours).map_err(|e| format!("{name} (ours): {e}"))?;
    require_self_runpath(project, &ours).map_err(|e| format!("{name} (ours): {e}"))?;

    let mut summary = format!(
        "{name}\n  stock: {}\n  ours:  {}\n  phases: {}",
        stock.describe(),
        ours.describe(),
        stock.phases.join(" ")
    );
    for line in stock_runs.iter().chain(&our_runs) {
        summary.push_str("\n  ");
        summary.push_str(line);
    }
    for note in &comparison.notes {
        summary.push_str("\n  note: ");
        summary.push_str(note);
    }
    Ok(summary)
}

fn run(project: Project) {
    match check(project) {
        Ok(summary) => eprintln!("{summary}"),
        Err(report) => panic!("{report}"),
    }
}

#[test]
fn hello_matches_stock() {
    run(Project::Hello);
}

#[test]
fn lua_matches_stock() {
    run(Project::Lua);
}

#[test]
fn zstd_matches_stock() {
    run(Project::Zstd);
}
