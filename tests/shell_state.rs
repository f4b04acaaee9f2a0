//! Issue 12: code injection from a checkpoint's shell state. A real checkpoint (the C build
//! of `tests/checkpoint-cases/c-build.nix`) is copied and its last layer's shell state
//! edited the way an attacker would (a new `raw` blob appended to that layer's pack, the
//! attachment, blob table, index counts and layer hash fixed, so every hash still matches):
//!
//! - a variable named `x=1;touch CANARY;y`, and a function whose text closes early and runs
//!   `touch CANARY`: `verify` and `restore` exit 65 naming the layer, the attachment and the
//!   offending name; `shell` exits 65; no canary file appears;
//! - `PROMPT_COMMAND`, `PS1` (through a name reference), `PS0`, traps and a
//!   `command_not_found_handle` that all touch a canary (legitimate names): `verify` and
//!   `restore` accept the checkpoint, `shell` enters the state, says on stderr what it left
//!   out, runs the commands given on its input, and no canary file appears.
//!
//! - a build whose `checkpointBase` carries such a state (`tests/reuse-cases/cproject.nix`):
//!   the base is rejected with a log line naming the layer and the name, every phase runs,
//!   and `out` equals a clean build's.
//!
//! Nothing is skipped: a missing prerequisite fails the test.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use integration_tests::checkpoint::{
    self as ck, build_with_checkpoint, checkpoint_cases_dir, CheckpointBuild, CliRun, Scratch,
    CHECKPOINT_UNUSABLE,
};
use integration_tests::nix::repo_root;
use integration_tests::outputs::{normalised_out, output};
use integration_tests::reuse_cases::{base_attr, build_ok, case_file};
use integration_tests::BuildResult;
use serde_json::Value;

fn c_build() -> &'static CheckpointBuild {
    static BUILD: OnceLock<Result<CheckpointBuild, String>> = OnceLock::new();
    match BUILD.get_or_init(|| build_with_checkpoint(&checkpoint_cases_dir().join("c-build.nix"))) {
        Ok(build) => build,
        Err(e) => panic!("c-build.nix: {e}"),
    }
}

/// The name of the last layer of a checkpoint (`inspect --json`).
fn last_layer(ckpt: &Path) -> String {
    let inspect = ck::inspect(ckpt).unwrap_or_else(|e| panic!("{e}"));
    ck::layer_names(&inspect)
        .unwrap_or_else(|e| panic!("{e}"))
        .pop()
        .expect("at least one layer")
}

/// Replaces the blob of attachment `attachment` of the last layer named `layer` by
/// `content`: appended raw to that layer's pack, named in its blob table and attachments;
/// the index's counts and the layer's hash follow.
fn replace_attachment(ckpt: &Path, layer: &str, attachment: &str, content: &[u8]) {
    let layer_path = ck::layer_file(ckpt, layer).expect("the layer file");
    let text = std::fs::read_to_string(&layer_path).expect("reading the layer");
    let parsed: Value = serde_json::from_str(&text).expect("the layer parses");
    let old_hash = parsed["attachments"][attachment]
        .as_str()
        .unwrap_or_else(|| panic!("no attachment {attachment} in {}", layer_path.display()))
        .to_owned();
    let index = parsed["index"].as_u64().expect("a layer index");
    let new_hash = ck::blake3_hex(content);
    let pack = ckpt.join(format!("packs/{index:03}.pack"));
    let mut bytes = std::fs::read(&pack).unwrap_or_else(|e| {
        panic!(
            "reading {} (the layer stores no blob?): {e}",
            pack.display()
        )
    });
    let offset = bytes.len();
    bytes.extend_from_slice(&ck::masked(content));
    std::fs::write(&pack, &bytes).expect("writing the pack");

    let old_ref = format!("\"{attachment}\":\"{old_hash}\"");
    assert_eq!(text.matches(&old_ref).count(), 1, "{old_ref} in {text}");
    let mut edited = text.replace(&old_ref, &format!("\"{attachment}\":\"{new_hash}\""));
    let record = format!(
        ",{{\"blake3\":\"{new_hash}\",\"offset\":{offset},\"length\":{},\"encoding\":\"raw\"}}",
        content.len()
    );
    let tail = "]}\n";
    assert!(
        edited.ends_with(tail) && !edited.ends_with("\"blobs\":[]}\n"),
        "the layer does not end with a non-empty blob table: {edited}"
    );
    edited.insert_str(edited.len() - tail.len(), &record);

    // The index: this layer's blob count and pack size, then (rewrite_layer) its hash.
    let index_path = ckpt.join("index.json");
    let index_text = std::fs::read_to_string(&index_path).expect("reading index.json");
    let index_json: Value = serde_json::from_str(&index_text).expect("index.json parses");
    let entry = index_json["layers"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["index"].as_u64() == Some(index)))
        .expect("the layer in the index");
    let (blobs, pack_bytes) = (
        entry["blobs_added"].as_u64().expect("blobs_added"),
        entry["blob_bytes_added"]
            .as_u64()
            .expect("blob_bytes_added"),
    );
    let old_counts = format!("\"blobs_added\":{blobs},\"blob_bytes_added\":{pack_bytes}");
    let new_counts = format!(
        "\"blobs_added\":{},\"blob_bytes_added\":{}",
        blobs + 1,
        bytes.len()
    );
    let layer_hash = entry["blake3"].as_str().expect("the layer's hash");
    let needle = format!("\"blake3\":\"{layer_hash}\",{old_counts}");
    assert_eq!(
        index_text.matches(&needle).count(),
        1,
        "{needle} in {index_text}"
    );
    let index_text = index_text.replace(
        &needle,
        &format!("\"blake3\":\"{layer_hash}\",{new_counts}"),
    );
    std::fs::write(&index_path, index_text).expect("writing index.json");
    ck::rewrite_layer(ckpt, &layer_path, &edited).unwrap_or_else(|e| panic!("{e}"));
}

/// The stored content of attachment `attachment` of the last layer named `layer`.
fn read_attachment(ckpt: &Path, layer: &str, attachment: &str) -> Vec<u8> {
    let layer_path = ck::layer_file(ckpt, layer).expect("the layer file");
    let parsed: Value =
        serde_json::from_slice(&std::fs::read(&layer_path).expect("reading the layer"))
            .expect("the layer parses");
    let hash = parsed["attachments"][attachment]
        .as_str()
        .expect("the attachment")
        .to_owned();
    let (pack, offset, length) = ck::blob_range(ckpt, &hash).expect("the blob's pack");
    let bytes = ck::masked(&std::fs::read(pack).expect("reading the pack"));
    let stored = &bytes[offset as usize..(offset + length) as usize];
    let encoding = ckpt_blob_encoding(ckpt, &hash);
    let content = match encoding.as_str() {
        "raw" => stored.to_vec(),
        "zstd" => zstd_decode(stored),
        other => panic!("encoding {other}"),
    };
    assert_eq!(ck::blake3_hex(&content), hash, "the attachment's content");
    content
}

fn ckpt_blob_encoding(ckpt: &Path, hash: &str) -> String {
    for entry in std::fs::read_dir(ckpt.join("layers")).expect("layers/") {
        let layer: Value =
            serde_json::from_slice(&std::fs::read(entry.expect("entry").path()).expect("read"))
                .expect("parses");
        if let Some(b) = layer["blobs"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["blake3"] == hash))
        {
            return b["encoding"].as_str().expect("encoding").to_owned();
        }
    }
    panic!("no blob {hash}");
}

/// zstd through the `zstd` command (the harness has no zstd crate).
fn zstd_decode(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the zstd command runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("zstd ends");
    writer.join().expect("writer").expect("writing to zstd");
    assert!(out.status.success(), "zstd -d failed");
    out.stdout
}

/// A writable copy of the C build's checkpoint, and its last layer's name.
fn copy(label: &str) -> (Scratch, PathBuf, String) {
    let scratch = Scratch::new(label).expect("a scratch directory");
    let copy = scratch.path().join("checkpoint");
    ck::copy_checkpoint(&c_build().checkpoint, &copy).expect("copying the checkpoint");
    let last = last_layer(&copy);
    (scratch, copy, last)
}

fn shell(ckpt: &Path, phase: &str, scratch: &Path, input: &str) -> CliRun {
    ck::cli_with(
        &[
            OsStr::new("shell"),
            ckpt.as_os_str(),
            OsStr::new("--after"),
            OsStr::new(phase),
        ],
        input.as_bytes(),
        &[("TMPDIR", scratch.as_os_str())],
    )
    .expect("running shell")
}

/// Files whose name starts with `canary` anywhere under `dir`.
fn canaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with("canary") {
                found.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    found
}

/// `verify`, `restore` and `shell` all refuse the copy with exit 65, naming every needle;
/// nothing is restored and no canary appears.
fn assert_refused_everywhere(scratch: &Scratch, ckpt: &Path, phase: &str, needles: &[&str]) {
    let verify = ck::cli(&[OsStr::new("verify"), ckpt.as_os_str()]).expect("running verify");
    let target = scratch.path().join("restored");
    let restore = ck::restore(ckpt, phase, &target).expect("running restore");
    let shell_run = shell(ckpt, phase, scratch.path(), "echo entered\nexit\n");
    for run in [&verify, &restore, &shell_run] {
        assert_eq!(run.code, Some(CHECKPOINT_UNUSABLE), "{}", run.describe());
        for needle in needles {
            assert!(
                run.stderr.contains(needle),
                "the message does not name {needle:?}: {}",
                run.describe()
            );
        }
        eprintln!("{}: {}", run.command, run.stderr.trim());
    }
    assert!(
        !shell_run.stdout.contains("entered"),
        "{}",
        shell_run.describe()
    );
    assert!(!target.exists(), "restore left {}", target.display());
    let left = canaries(scratch.path());
    assert!(left.is_empty(), "code from the state ran: {left:?}");
}

#[test]
fn issue_12_variable_name_injection_is_refused() {
    let (scratch, ckpt, last) = copy("issue12-variable");
    let canary = scratch.path().join("canary-variable");
    let name = format!("x=1;touch {};y", canary.display());
    let mut state: Value =
        serde_json::from_slice(&read_attachment(&ckpt, &last, "shell-state")).expect("JSON");
    state["variables"]
        .as_array_mut()
        .expect("variables")
        .push(serde_json::json!({"name": name, "value": {"kind": "scalar", "value": "1"}}));
    replace_attachment(
        &ckpt,
        &last,
        "shell-state",
        &serde_json::to_vec(&state).expect("JSON"),
    );
    assert_refused_everywhere(
        &scratch,
        &ckpt,
        &last,
        &[&format!("layer `{last}`"), "shell-state", &name],
    );
}

#[test]
fn issue_12_function_closing_early_is_refused() {
    let (scratch, ckpt, last) = copy("issue12-function");
    let canary = scratch.path().join("canary-function");
    let functions = read_attachment(&ckpt, &last, "shell-functions");
    let state: Value =
        serde_json::from_slice(&read_attachment(&ckpt, &last, "shell-state")).expect("JSON");
    let name = state["function_names"][0][0]
        .as_str()
        .expect("a function")
        .to_owned();
    let header = format!("{name} () \n{{ \n");
    let text = String::from_utf8(functions).expect("UTF-8 functions");
    assert!(text.starts_with(&header), "{text:.200}");
    // NAME's body ends at once, `touch` runs, and the rest of NAME's original body becomes a
    // function of another name: every brace still balances.
    let hostile = format!(
        "{header}    :\n}}\ntouch {}\n__rest () \n{{ \n{}",
        canary.display(),
        &text[header.len()..]
    );
    replace_attachment(&ckpt, &last, "shell-functions", hostile.as_bytes());
    assert_refused_everywhere(
        &scratch,
        &ckpt,
        &last,
        &[
            &format!("layer `{last}`"),
            "shell-functions",
            &format!("`{name}`"),
        ],
    );
}

#[test]
fn issue_12_host_shell_runs_nothing_by_itself() {
    let (scratch, ckpt, last) = copy("issue12-prompt");
    let canary = |tag: &str| {
        format!(
            "touch {}",
            scratch.path().join(format!("canary-{tag}")).display()
        )
    };
    let mut state: Value =
        serde_json::from_slice(&read_attachment(&ckpt, &last, "shell-state")).expect("JSON");
    let scalar = |name: &str, value: String| serde_json::json!({"name": name, "value": {"kind": "scalar", "value": value}});
    let vars = state["variables"].as_array_mut().expect("variables");
    vars.retain(|v| {
        !matches!(
            v["name"].as_str(),
            Some("PS1" | "PS0" | "PS4" | "PROMPT_COMMAND" | "HISTFILE" | "evil")
        )
    });
    vars.push(scalar("PROMPT_COMMAND", canary("prompt-command")));
    vars.push(scalar("PS0", format!("$({})", canary("ps0"))));
    vars.push(scalar("PS4", format!("$({})", canary("ps4"))));
    vars.push(scalar("evil", format!("$({})", canary("ps1"))));
    vars.push(
        serde_json::json!({"name": "PS1", "attributes": {"nameref": true},
        "value": {"kind": "scalar", "value": "evil"}}),
    );
    vars.push(serde_json::json!({"name": "HISTFILE", "attributes": {"readonly": true},
        "value": {"kind": "scalar", "value": scratch.path().join("canary-histfile").display().to_string()}}));
    state["traps"] = Value::from(format!(
        "trap -- '{}' EXIT\ntrap -- '{}' DEBUG\ntrap -- '{}' ERR\n",
        canary("exit"),
        canary("debug"),
        canary("err")
    ));
    let functions = read_attachment(&ckpt, &last, "shell-functions");
    let handler = format!(
        "command_not_found_handle () \n{{ \n    {}\n}}\n",
        canary("not-found")
    );
    // `declare -f` order: command_not_found_handle sorts before every stdenv function but
    // those starting with `_` or an upper-case letter; put it (and its name) first.
    let mut with_handler = handler.into_bytes();
    with_handler.extend_from_slice(&functions);
    let names = state["function_names"].as_array_mut().expect("names");
    names.insert(0, serde_json::json!(["command_not_found_handle", false]));
    replace_attachment(
        &ckpt,
        &last,
        "shell-state",
        &serde_json::to_vec(&state).expect("JSON"),
    );
    replace_attachment(&ckpt, &last, "shell-functions", &with_handler);

    let verify = ck::cli(&[OsStr::new("verify"), ckpt.as_os_str()]).expect("running verify");
    assert_eq!(verify.code, Some(0), "{}", verify.describe());
    let run = shell(
        &ckpt,
        &last,
        scratch.path(),
        "no-such-command-for-issue-12\nfalse\necho \"entered:$curPhase\"\nexit\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(run.stdout.contains("entered:"), "{}", run.describe());
    for item in [
        "trap EXIT",
        "trap DEBUG",
        "trap ERR",
        "variable PROMPT_COMMAND",
        "variable PS1",
        "variable PS0",
        "variable HISTFILE",
        "function command_not_found_handle",
    ] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("checkpoint-builder: left out") && l.contains(item)),
            "the left-out line does not list {item:?}: {}",
            run.describe()
        );
    }
    let left = canaries(scratch.path());
    assert!(
        left.is_empty(),
        "code from the state ran: {left:?}\n{}",
        run.describe()
    );
    eprintln!("{}", run.describe());
}

/// A build of `tests/reuse-cases/cproject.nix` (`variant`, optional base) with the builder
/// under test; the package name is this file's own, so no other suite builds it.
fn cproject(label: &str, variant: &str, base: Option<&Path>) -> BuildResult {
    let attrs = format!(
        "variant = \"{variant}\"; name = \"issue12-cproject\"; {}",
        base_attr(base)
    );
    build_ok(
        &case_file("shell-state-cases", label, "cproject", &attrs),
        label,
    )
}

#[test]
fn issue_12_build_with_a_hostile_base_is_a_clean_build() {
    let a = cproject("issue12-base", "a", None);
    let copy = repo_root().join("target/shell-state-cases/issue12-hostile-checkpoint");
    let _ = ck::remove_tree(&copy);
    ck::copy_checkpoint(&output(&a, true), &copy).expect("copying the checkpoint");
    let name = "x=1;touch /build/canary;y";
    let mut state: Value =
        serde_json::from_slice(&read_attachment(&copy, "setup", "shell-state")).expect("JSON");
    state["variables"]
        .as_array_mut()
        .expect("variables")
        .push(serde_json::json!({"name": name, "value": {"kind": "scalar", "value": "1"}}));
    replace_attachment(
        &copy,
        "setup",
        "shell-state",
        &serde_json::to_vec(&state).expect("JSON"),
    );
    let added = std::process::Command::new("nix-store")
        .arg("--add")
        .arg(&copy)
        .output()
        .expect("nix-store runs");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let hostile = PathBuf::from(String::from_utf8_lossy(&added.stdout).trim());

    let b = cproject("issue12-from-hostile", "install", Some(&hostile));
    let clean = cproject("issue12-clean", "install", None);
    assert!(
        b.log_lines.iter().any(|l| l.contains("rejected")
            && l.contains("building from scratch")
            && l.contains("layer `setup`")
            && l.contains(name)),
        "{}",
        b.log_tail(30)
    );
    assert!(b.ran_phase("unpackPhase") && b.ran_phase("buildPhase"));
    assert!(normalised_out(&b) == normalised_out(&clean));
}
