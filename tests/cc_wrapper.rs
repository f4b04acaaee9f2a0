//! The compiler wrapper (`tests/nix/cc-wrapper`) acts: a probe
//! (`tests/nix/cc-wrapper-probe.nix`, which names the wrapper itself, so this runs on either
//! stdenv) built through the harness, with the stock builder and with checkpoint-builder,
//! must show NIX_CFLAGS_COMPILE in its object (`-frandom-seed=` and
//! the first ten characters of `$out`'s hash in `DW_AT_producer`), the stdenv's
//! `-rpath $out/lib` and the linker wrapper's run path for the store dependency it links, in
//! that order, as its program's RUNPATH (and not the build tree's library directory), no
//! build-id note (nixpkgs' gcc writes none unless asked), and a program that runs.
//!
//! `CHECKPOINT_BUILDER` and `CHECKPOINT_TEST_STDENV` work as in the other suites.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::elf;
use integration_tests::nix::{builder_binary, nix_build, repo_root, BuildResult};

/// Everything wrong with one build of the probe (empty: the wrapper acted).
fn problems(build: &BuildResult) -> Vec<String> {
    if !build.success {
        return vec![format!(
            "the build failed: {}\n{}",
            build.describe(),
            build.log_tail(40)
        )];
    }
    let out = &build.out_paths[0];
    let Some(dep) = build
        .closure_outputs
        .iter()
        .find(|p| p.ends_with("-cc-wrapper-probe-dep"))
    else {
        return vec![format!(
            "no cc-wrapper-probe-dep among the closure's outputs {:?}",
            build.closure_outputs
        )];
    };
    let mut found = Vec::new();
    let program = out.join("bin/probe");

    let want = format!("{}/lib:{dep}/lib", out.display());
    match elf::runpath(&program) {
        Ok(Some(got)) if got == want => {}
        Ok(got) => found.push(format!(
            "RUNPATH of {}: {got:?}, want {want:?}",
            program.display()
        )),
        Err(e) => found.push(e.to_string()),
    }
    match elf::has_build_id(&program) {
        Ok(false) => {}
        Ok(true) => found.push(format!("{} has a build-id note", program.display())),
        Err(e) => found.push(e.to_string()),
    }
    let seed = seed_flag(out);
    let object = out.join("share/probe/main.o");
    match elf::producers(&object) {
        Ok(p) if !p.is_empty() && p.iter().all(|p| p.contains(&seed)) => {}
        Ok(p) => found.push(format!(
            "{}: DW_AT_producer {p:?} lacks {seed}",
            object.display()
        )),
        Err(e) => found.push(e.to_string()),
    }
    match Command::new(&program).output() {
        Ok(o) if o.status.success() && o.stdout == b"42\n" => {}
        Ok(o) => found.push(format!(
            "{} printed {:?} ({}), want \"42\\n\"",
            program.display(),
            String::from_utf8_lossy(&o.stdout),
            o.status
        )),
        Err(e) => found.push(format!("could not run {}: {e}", program.display())),
    }
    found
}

/// `-frandom-seed=` and the first ten characters of `out`'s hash, as the reproducible-builds
/// hook passes it.
fn seed_flag(out: &Path) -> String {
    let base = out.file_name().unwrap().to_string_lossy();
    format!("-frandom-seed={}", &base[..10])
}

fn probe() -> PathBuf {
    repo_root().join("tests/nix/cc-wrapper-probe.nix")
}

#[test]
fn the_wrapper_acts_with_the_stock_builder() {
    let build = nix_build(&probe(), None).expect("the harness runs");
    let found = problems(&build);
    assert!(
        found.is_empty(),
        "{}:\n{}",
        build.describe(),
        found.join("\n")
    );
}

#[test]
fn the_wrapper_acts_with_checkpoint_builder() {
    let builder = builder_binary().expect("a builder binary");
    let build = nix_build(&probe(), Some(builder)).expect("the harness runs");
    let found = problems(&build);
    assert!(
        found.is_empty(),
        "{}:\n{}",
        build.describe(),
        found.join("\n")
    );
}
