//! Generated case files for the projects of `tests/reuse-cases/`: one `.nix` file per build
//! under `target/<dir>/`, importing the project with the run's salt and the build's attributes
//! (variant, package name, base, …), and building such a file with the builder under test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::nix::{builder_binary, nix_build, repo_root, BuildResult};
use crate::outputs::run_salt;

/// Writes `target/<dir>/<label>.nix`, which imports `tests/reuse-cases/<project>.nix` with
/// `mkDrv`, the run's salt and `attrs` (Nix attribute bindings, e.g. `variant = "a";`).
pub fn case_file(dir: &str, label: &str, project: &str, attrs: &str) -> PathBuf {
    let dir = repo_root().join("target").join(dir);
    std::fs::create_dir_all(&dir).expect("creating the case directory");
    let file = dir.join(format!("{label}.nix"));
    let text = format!(
        "{{ mkDrv }}:\nimport {} {{ inherit mkDrv; salt = \"{}\"; {attrs} }}\n",
        repo_root()
            .join(format!("tests/reuse-cases/{project}.nix"))
            .display(),
        run_salt(),
    );
    claim_label(&file, &text);
    std::fs::write(&file, text).expect("writing the case file");
    file
}

/// Panics when `file` was written by this test process with other text: tests run in
/// parallel, so two cases under one label could each build the other's file.
fn claim_label(file: &Path, text: &str) {
    static WRITTEN: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
    let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    match written.get(file) {
        Some(earlier) if earlier != text => {
            panic!(
                "{} names two different cases: give each its own label",
                file.display()
            )
        }
        Some(_) => {}
        None => {
            written.insert(file.to_owned(), text.to_owned());
        }
    }
}

/// The `base` binding of a case: the checkpoint's store path as a string, or `null`.
pub fn base_attr(base: Option<&Path>) -> String {
    base.map_or_else(
        || "base = null;".to_owned(),
        |p| format!("base = \"{}\";", p.display()),
    )
}

/// Builds a case file with the builder under test; panics with the log when it fails.
pub fn build_ok(file: &Path, label: &str) -> BuildResult {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let result = nix_build(file, Some(builder)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        result.success,
        "{label}: build failed\n{}\n{}",
        result.log_tail(60),
        result.errors.join("\n")
    );
    result
}
