//! The supervisor saves panics and aborts as findings (the `selftest` target panics on
//! `!!` and aborts on `@@`), so "0 findings" in a run means none happened.

use std::path::Path;

#[test]
fn panics_and_aborts_are_findings() {
    let dir = std::env::temp_dir().join(format!("checkpoint-fuzz-selftest-{}", std::process::id()));
    let exe = Path::new(env!("CARGO_BIN_EXE_checkpoint-fuzz"));
    let out = std::process::Command::new(exe)
        .args(["run", "selftest", "3"])
        .arg(&dir)
        .output()
        .expect("running the fuzzer");
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<String> = std::fs::read_dir(dir.join("findings"))
        .expect("findings/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("panic-")),
        "{text} {names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("crash-")),
        "{text} {names:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
