//! The Nix side (flake, overlay, adapter, CI lib, VM test definitions) evaluated offline
//! against the nixpkgs stub in `tests/nix-eval/`, by `scripts/nix-eval-check.sh`. It must
//! not build anything or need nixpkgs; it needs `nix`, `nix-instantiate` and `nix-store` on
//! `PATH`, and writes only small files and `.drv`s to the store.

use std::path::Path;
use std::process::Command;

#[test]
fn nix_side_evaluates_as_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("scripts/nix-eval-check.sh");
    let output = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}).\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        output.status
    );
    assert!(
        stdout.contains("nix-eval-check: all checks passed"),
        "{} exited 0 without its closing line.\n--- stdout\n{stdout}",
        script.display()
    );
}
