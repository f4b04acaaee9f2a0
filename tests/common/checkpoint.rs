//! Checkpoint outputs in the integration tests: finding a build's `checkpoint` output
//! (read from the `.drv`), running the builder's `inspect`, `verify`, `restore` and `shell`
//! commands, the checks every checkpoint must pass ([`check_checkpoint`]), the case files
//! that add a `checkpoint` output (`tests/checkpoint-cases/`, and generated ones for the
//! real projects), scratch directories, and the byte-level edits the hostile-input tests
//! make to a copy of a checkpoint.
//!
//! Layering: the `.drv` parser and the JSON edits are pure; everything that spawns a
//! process or touches files is in the functions that say so.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::compare::{compare_builds, Comparison};
use crate::error::{HarnessError, IoContext};
use crate::nix::{self, builder_binary, repo_root, BuildResult};
use crate::projects::{self, nix_string, Project};

/// The output the builder fills with layers.
pub const CHECKPOINT_OUTPUT: &str = "checkpoint";
/// The builder's exit code for an unusable checkpoint.
pub const CHECKPOINT_UNUSABLE: i32 = 65;
/// The builder's exit code for bad input (unknown phase, bad invocation).
pub const BAD_INPUT: i32 = 2;
/// The root holding the build directory.
pub const BUILD_ROOT: &str = "build";

/// `tests/checkpoint-cases`.
pub fn checkpoint_cases_dir() -> PathBuf {
    repo_root().join("tests/checkpoint-cases")
}

// ---------------------------------------------------------------------------------------
// Derivation outputs

/// Reads one ATerm string (`"..."` with backslash escapes) at the start of `text`; the
/// string and the rest.
fn aterm_string(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &rest[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
            }
            other => out.push(other),
        }
    }
    None
}

/// The outputs (name, path) of a derivation from the text of its `.drv` file:
/// `Derive([("name","path","",""),...],...)`. Pure.
pub fn parse_drv_outputs(text: &str) -> Option<Vec<(String, String)>> {
    let mut rest = text.strip_prefix("Derive([")?;
    let mut outputs = Vec::new();
    loop {
        rest = rest.strip_prefix('(')?;
        let (name, r) = aterm_string(rest)?;
        let (path, r) = aterm_string(r.strip_prefix(',')?)?;
        let (_, r) = aterm_string(r.strip_prefix(',')?)?;
        let (_, r) = aterm_string(r.strip_prefix(',')?)?;
        rest = r.strip_prefix(')')?;
        outputs.push((name, path));
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else {
            rest.strip_prefix(']')?;
            return Some(outputs);
        }
    }
}

/// The outputs (name, path) of the derivation at `drv_path`, as its `.drv` file lists them.
pub fn drv_outputs(drv_path: &str) -> Result<Vec<(String, PathBuf)>, HarnessError> {
    let text = std::fs::read_to_string(drv_path).io_context("reading", drv_path)?;
    parse_drv_outputs(&text)
        .map(|outs| {
            outs.into_iter()
                .map(|(n, p)| (n, PathBuf::from(p)))
                .collect()
        })
        .ok_or_else(|| HarnessError::Unexpected {
            command: format!("reading {drv_path}"),
            detail: "not a derivation with an output list".to_owned(),
        })
}

// ---------------------------------------------------------------------------------------
// Builds with a checkpoint output

/// A successful build of a derivation with a `checkpoint` output.
#[derive(Debug, Clone)]
pub struct CheckpointBuild {
    /// The build as the harness reports it (all outputs, checkpoint included).
    pub build: BuildResult,
    /// Every output of the derivation (name, path), from the `.drv`.
    pub outputs: Vec<(String, PathBuf)>,
    /// The `checkpoint` output.
    pub checkpoint: PathBuf,
}

impl CheckpointBuild {
    /// Wraps a build: it must have succeeded and have a `checkpoint` output on disk.
    pub fn from_build(build: BuildResult) -> Result<Self, String> {
        if !build.success {
            return Err(format!(
                "the build with a checkpoint output failed: {}\n--- log (tail)\n{}\n--- errors\n{}",
                build.describe(),
                build.log_tail(60),
                build.errors.join("\n")
            ));
        }
        let outputs = drv_outputs(&build.drv_path).map_err(|e| e.to_string())?;
        let checkpoint = outputs
            .iter()
            .find(|(n, _)| n == CHECKPOINT_OUTPUT)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| format!("{} has no `checkpoint` output: {outputs:?}", build.drv_path))?;
        if !checkpoint.is_dir() {
            return Err(format!(
                "{}: the checkpoint output {} is not a directory",
                build.drv_path,
                checkpoint.display()
            ));
        }
        Ok(CheckpointBuild {
            build,
            outputs,
            checkpoint,
        })
    }

    /// The outputs other than `checkpoint` (name, path).
    pub fn other_outputs(&self) -> Vec<(&str, &Path)> {
        self.outputs
            .iter()
            .filter(|(n, _)| n != CHECKPOINT_OUTPUT)
            .map(|(n, p)| (n.as_str(), p.as_path()))
            .collect()
    }

    /// The output called `name`.
    pub fn output(&self, name: &str) -> Option<&Path> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }

    /// The build as if it had no checkpoint output: what [`compare_builds`] compares with a
    /// stock build of the case without one (the checkpoint path stays in the rewrite table).
    pub fn without_checkpoint(&self) -> BuildResult {
        let mut build = self.build.clone();
        build.out_paths.retain(|p| *p != self.checkpoint);
        build
    }
}

/// Builds `case_file` (a case with a `checkpoint` output) with the builder under test.
pub fn build_with_checkpoint(case_file: &Path) -> Result<CheckpointBuild, String> {
    let label = case_file.display();
    let builder = builder_binary().map_err(|e| format!("{label}: {e}"))?;
    let build = nix::nix_build(case_file, Some(builder)).map_err(|e| format!("{label}: {e}"))?;
    CheckpointBuild::from_build(build).map_err(|e| format!("{label}: {e}"))
}

/// Compares the outputs of `ours` other than the checkpoint with a stock build of the same
/// case without a checkpoint output (status, phases, normalised NARs, log as notes).
pub fn compare_with_stock(
    stock: &BuildResult,
    ours: &CheckpointBuild,
) -> Result<Comparison, HarnessError> {
    compare_builds(stock, &ours.without_checkpoint())
}

/// Writes `target/checkpoint-projects/<name>.nix`: a harness case that is
/// `tests/projects/default.nix`'s `<name>` with `builder` set to the builder under test
/// and `checkpoint = true` (it ignores the harness's `mkDrv`). Fetches the sources first.
pub fn project_case_file(project: Project) -> Result<PathBuf, HarnessError> {
    let sources = projects::sources_dir()?;
    // Absolute (a Nix path literal needs it) but not resolved: the store name of the
    // builder stays the one tests/nix/harness.nix gives it.
    let absolute = |p: &Path| -> Result<PathBuf, HarnessError> {
        std::path::absolute(p).io_context("resolving", p)
    };
    let builder = absolute(builder_binary()?)?;
    let stdenv = absolute(&nix::stdenv_nix())?;
    let projects_dir = repo_root().join("tests/projects");
    let name = project.name();
    let text = format!(
        "# Generated by tests/common/checkpoint.rs: tests/projects/default.nix's `{name}` built\n\
         # by the builder under test with a `checkpoint` output, as a harness case.\n\
         {{ mkDrv }}:\n\
         (import (/. + {projects}) {{\n  stdenvNix = /. + {stdenv};\n  builder = /. + {builder};\n  \
         sources = {sources};\n  checkpoint = true;\n}}).{name}\n",
        projects = nix_string(&projects_dir.to_string_lossy()),
        stdenv = nix_string(&stdenv.to_string_lossy()),
        builder = nix_string(&builder.to_string_lossy()),
        sources = nix_string(&sources.to_string_lossy()),
    );
    let dir = repo_root().join("target/checkpoint-projects");
    std::fs::create_dir_all(&dir).io_context("creating", &dir)?;
    let file = dir.join(format!("{name}.nix"));
    if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
        let partial = dir.join(format!(".{name}.nix.{}", std::process::id()));
        std::fs::write(&partial, &text).io_context("writing", &partial)?;
        std::fs::rename(&partial, &file).io_context("renaming into place", &file)?;
    }
    Ok(file)
}

// ---------------------------------------------------------------------------------------
// The CLI

/// One run of a `checkpoint-builder` command.
#[derive(Debug, Clone)]
pub struct CliRun {
    /// The command line, for reports.
    pub command: String,
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// The process id it ran as.
    pub pid: u32,
}

impl CliRun {
    /// Command, exit code, stdout and stderr, for failure reports.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the builder under test with `args`, `input` on its standard input and `envs` added
/// to its environment.
pub fn cli_with(
    args: &[&OsStr],
    input: &[u8],
    envs: &[(&str, &OsStr)],
) -> Result<CliRun, HarnessError> {
    use std::io::Write;
    let builder = builder_binary()?;
    let command = std::iter::once(builder.as_os_str())
        .chain(args.iter().copied())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let spawn_error = |source| HarnessError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = Command::new(builder)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    // From a thread: the command may answer before reading all its input.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().map_err(spawn_error)?;
    // A command that does not read its input (everything but `shell`) closes the pipe.
    let _ = writer.join();
    Ok(CliRun {
        command,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        pid,
    })
}

/// Runs the builder under test with `args` and nothing on its standard input.
pub fn cli(args: &[&OsStr]) -> Result<CliRun, HarnessError> {
    cli_with(args, b"", &[])
}

/// Runs a command that must succeed and print JSON; the parsed JSON.
fn cli_json(args: &[&OsStr]) -> Result<Value, String> {
    let run = cli(args).map_err(|e| e.to_string())?;
    if run.code != Some(0) {
        return Err(run.describe());
    }
    serde_json::from_str(&run.stdout)
        .map_err(|e| format!("{} printed no JSON ({e})\n{}", run.command, run.describe()))
}

/// `inspect CK --json`.
pub fn inspect(ck: &Path) -> Result<Value, String> {
    cli_json(&[OsStr::new("inspect"), ck.as_os_str(), OsStr::new("--json")])
}

/// `verify CK --json`.
pub fn verify(ck: &Path) -> Result<Value, String> {
    cli_json(&[OsStr::new("verify"), ck.as_os_str(), OsStr::new("--json")])
}

/// `restore CK --after PHASE DIR` (not checked).
pub fn restore(ck: &Path, phase: &str, dir: &Path) -> Result<CliRun, HarnessError> {
    cli(&[
        OsStr::new("restore"),
        ck.as_os_str(),
        OsStr::new("--after"),
        OsStr::new(phase),
        dir.as_os_str(),
    ])
}

/// `restore CK --after PHASE DIR`, required to succeed.
pub fn restore_ok(ck: &Path, phase: &str, dir: &Path) -> Result<(), String> {
    let run = restore(ck, phase, dir).map_err(|e| e.to_string())?;
    if run.code == Some(0) {
        Ok(())
    } else {
        Err(run.describe())
    }
}

/// The layer names of an `inspect --json` document, in order.
pub fn layer_names(inspect: &Value) -> Result<Vec<String>, String> {
    inspect["layers"]
        .as_array()
        .ok_or_else(|| format!("inspect --json has no `layers` array: {inspect}"))?
        .iter()
        .map(|l| {
            l["phase"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("a layer without a `phase` name: {l}"))
        })
        .collect()
}

/// The root names of an `inspect --json` document.
pub fn root_names(inspect: &Value) -> Result<Vec<String>, String> {
    inspect["roots"]
        .as_array()
        .ok_or_else(|| format!("inspect --json has no `roots` array: {inspect}"))?
        .iter()
        .map(|r| {
            r.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("a root that is not a string: {r}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The checks every checkpoint passes

/// `nix-store -q --references PATH`.
pub fn references(path: &Path) -> Result<Vec<PathBuf>, HarnessError> {
    let mut cmd = Command::new("nix-store");
    cmd.arg("-q").arg("--references").arg(path);
    let output = nix::run(cmd)?;
    Ok(nix::stdout_lines(&output)
        .into_iter()
        .map(PathBuf::from)
        .collect())
}

/// Whether `path` is the `checkpoint` output of some derivation, judged by its name.
fn looks_like_checkpoint(path: &Path) -> bool {
    path.file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| n.ends_with(&format!("-{CHECKPOINT_OUTPUT}")))
}

/// The reference rules: no other output references the checkpoint; the checkpoint
/// references nothing but itself and its build's other outputs (no input: its closure is
/// what `nix copy` uploads and what keeping it keeps alive, docs/nix-tools.md; an input's
/// store path stored verbatim would add one, as zstd's fast levels leave literals, or as a
/// content under 64 bytes is stored, which none of the tests' builds writes); no output the
/// checkpoint references references it back (no cycle). Every problem found.
pub fn check_references(build: &CheckpointBuild) -> Result<Vec<String>, HarnessError> {
    let ck = &build.checkpoint;
    let mut problems = Vec::new();
    let ck_refs = references(ck)?;
    for (name, path) in build.other_outputs() {
        let refs = references(path)?;
        if refs.contains(ck) {
            let cycle = if ck_refs.iter().any(|r| r == path) {
                " and the checkpoint references it: a reference cycle"
            } else {
                ""
            };
            problems.push(format!(
                "output `{name}` ({}) references the checkpoint {}{cycle}",
                path.display(),
                ck.display()
            ));
        }
    }
    let own: Vec<&Path> = build.other_outputs().iter().map(|(_, p)| *p).collect();
    for r in ck_refs.iter().filter(|r| *r != ck) {
        if looks_like_checkpoint(r) {
            problems.push(format!(
                "the checkpoint {} references another checkpoint, {}",
                ck.display(),
                r.display()
            ));
        } else if !own.contains(&r.as_path()) {
            problems.push(format!(
                "the checkpoint {} references {}, which is not one of its build's outputs",
                ck.display(),
                r.display()
            ));
        }
    }
    Ok(problems)
}

/// Everything every checkpoint must satisfy: `verify --json` succeeds and agrees with
/// `inspect` on the layer count; `inspect --json` lists `setup` then the phases the build
/// announced, in order ([`check_layer_order`]), and the roots `build` plus every other output; the reference rules
/// ([`check_references`]); and the state after the last layer, restored, gives each output
/// NAR-identical to the store path. `Ok` carries summary lines, `Err` every problem.
pub fn check_checkpoint(build: &CheckpointBuild) -> Result<Vec<String>, String> {
    let ck = &build.checkpoint;
    let mut problems = Vec::new();
    let mut summary = Vec::new();

    let inspected = inspect(ck)?;
    let names = layer_names(&inspected)?;
    if let Err(e) = check_layer_order(&inspected, &build.build.phases) {
        problems.push(format!(
            "{e}\n  layers: {}\n  announced phases: {}",
            names.join(" "),
            build.build.phases.join(" ")
        ));
    }
    let roots = root_names(&inspected)?;
    let mut expected_roots: Vec<String> = std::iter::once(BUILD_ROOT.to_owned())
        .chain(build.other_outputs().iter().map(|(n, _)| (*n).to_owned()))
        .collect();
    expected_roots.sort();
    if roots != expected_roots {
        problems.push(format!(
            "roots {roots:?}, expected {expected_roots:?} (`build` and every output but the checkpoint)"
        ));
    }

    match verify(ck) {
        Ok(report) => {
            if report["ok"] != Value::Bool(true) {
                problems.push(format!("verify --json does not say ok: {report}"));
            }
            if report["layers"].as_u64() != Some(names.len() as u64) {
                problems.push(format!(
                    "verify --json counts {} layers, inspect lists {}",
                    report["layers"],
                    names.len()
                ));
            }
            summary.push(format!("verify: {report}"));
        }
        Err(e) => problems.push(format!("verify failed: {e}")),
    }

    match check_references(build) {
        Ok(found) => problems.extend(found),
        Err(e) => problems.push(e.to_string()),
    }
    match references(ck) {
        Ok(refs) => summary.push(format!(
            "checkpoint references: {}",
            refs.iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        Err(e) => problems.push(e.to_string()),
    }

    if let Some(last) = names.last() {
        match restored_outputs_match(build, last) {
            Ok(()) => summary.push(format!(
                "restore --after {last}: every output NAR-identical to the store"
            )),
            Err(e) => problems.push(e),
        }
    }

    summary.insert(0, format!("checkpoint {}", ck.display()));
    summary.insert(1, format!("layers: {}", names.join(" ")));
    summary.insert(
        2,
        format!("announced phases: {}", build.build.phases.join(" ")),
    );
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(format!(
            "checkpoint {}: {} problem(s):\n{}",
            ck.display(),
            problems.len(),
            problems.join("\n\n")
        ))
    }
}

/// The layers of an `inspect --json` document against the phases the build announced
/// (`setPhase` lines): layer 0 is `setup`, then the announced phases in order. The builder
/// also writes a layer for a phase of the list that the stdenv's `runPhase` skips (no
/// `setPhase` line: `checkPhase` without `doCheck`, `unpackPhase` with `dontUnpack`); such a
/// layer must change nothing. Pure.
pub fn check_layer_order(inspect: &Value, announced: &[String]) -> Result<(), String> {
    let layers = inspect["layers"]
        .as_array()
        .ok_or_else(|| format!("inspect --json has no `layers` array: {inspect}"))?;
    let name = |l: &Value| l["phase"].as_str().unwrap_or_default().to_owned();
    match layers.first() {
        Some(first) if name(first) == "setup" => {}
        Some(first) => return Err(format!("layer 0 is `{}`, not `setup`", name(first))),
        None => return Err("the checkpoint has no layers".to_owned()),
    }
    let mut next = announced.iter().peekable();
    for layer in &layers[1..] {
        let phase = name(layer);
        if next.peek().is_some_and(|p| **p == phase) {
            next.next();
            continue;
        }
        let changes = (
            layer["changed_entries"].as_u64(),
            layer["deleted_entries"].as_u64(),
        );
        if changes != (Some(0), Some(0)) {
            return Err(format!(
                "layer {} (`{phase}`) is not the next announced phase ({:?}) but changed \
                 {:?} and deleted {:?} entries",
                layer["index"],
                next.peek(),
                changes.0,
                changes.1
            ));
        }
    }
    match next.next() {
        None => Ok(()),
        Some(missing) => Err(format!(
            "the announced phase `{missing}` (and any after it) has no layer in order"
        )),
    }
}

/// Restores the state after `last` (the last layer) and compares each output's NAR with the
/// store path's.
fn restored_outputs_match(build: &CheckpointBuild, last: &str) -> Result<(), String> {
    let scratch = Scratch::new("last-layer").map_err(|e| e.to_string())?;
    let dir = scratch.path().join("restored");
    restore_ok(&build.checkpoint, last, &dir)?;
    let mut problems = Vec::new();
    for (name, path) in build.other_outputs() {
        let restored = dir.join(name);
        let want = nix::dump(path).map_err(|e| e.to_string())?;
        match nix::dump(&restored) {
            Ok(got) if got == want => {}
            Ok(got) => problems.push(format!(
                "restored `{name}` after {last} differs from {} (NAR {} vs {} bytes)",
                path.display(),
                got.len(),
                want.len()
            )),
            Err(e) => problems.push(format!("restored `{name}` after {last}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------
// Files

/// A fresh directory under the system temporary directory, removed when dropped unless the
/// thread is panicking (then it is kept for inspection and its path printed).
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/checkpoint-tests-<label>-<pid>-<ns>`.
    /// (Not `tempfile`: its random names have capitals, and podman derives a repository
    /// name, which must be lowercase, from an `oci:` layout path inside a scratch directory.)
    pub fn new(label: &str) -> Result<Self, HarnessError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "checkpoint-tests-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).io_context("creating", &path)?;
        Ok(Scratch { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.path.display());
        } else if let Err(e) = remove_tree(&self.path) {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// Makes every directory under `path` writable (restored trees have read-only ones), then
/// removes the tree. Symlinks are never followed.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    fn writable(dir: &Path) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(dir)?;
        if !meta.is_dir() {
            return Ok(());
        }
        let mut perms = meta.permissions();
        perms.set_mode(perms.mode() | 0o700);
        std::fs::set_permissions(dir, perms)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                writable(&entry.path())?;
            }
        }
        Ok(())
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    writable(path)?;
    std::fs::remove_dir_all(path)
}

/// Copies a checkpoint (regular files and directories only) to `dest`, writable.
pub fn copy_checkpoint(src: &Path, dest: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir(dest).io_context("creating", dest)?;
    for entry in std::fs::read_dir(src).io_context("listing", src)? {
        let entry = entry.io_context("listing", src)?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type().io_context("stat", &from)?;
        if kind.is_dir() {
            copy_checkpoint(&from, &to)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to).io_context("copying", &from)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))
                .io_context("chmod", &to)?;
        } else {
            return Err(HarnessError::Unexpected {
                command: format!("copying {}", src.display()),
                detail: format!("{} is neither a file nor a directory", from.display()),
            });
        }
    }
    Ok(())
}

/// Every path under `dir` (itself included) with its kind, mode, size and mtime in ns, one
/// line each, sorted: equal listings mean nothing was created, removed or changed.
pub fn snapshot_listing(dir: &Path) -> Result<Vec<String>, HarnessError> {
    use std::os::unix::fs::MetadataExt;
    fn walk(path: &Path, out: &mut Vec<String>) -> Result<(), HarnessError> {
        let meta = std::fs::symlink_metadata(path).io_context("stat", path)?;
        out.push(format!(
            "{} {:o} {} {}.{:09}",
            path.display(),
            meta.mode(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).io_context("listing", path)? {
                walk(&entry.io_context("listing", path)?.path(), out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Runs `tests/checkpoint-cases/lib/tree-listing.sh` in `dir`; its output.
pub fn tree_listing(dir: &Path) -> Result<String, HarnessError> {
    let mut cmd = Command::new("bash");
    cmd.arg(checkpoint_cases_dir().join("lib/tree-listing.sh"))
        .current_dir(dir);
    let output = nix::run(cmd)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The lines only in `a` and only in `b` (as multisets, in order), for reports.
pub fn line_diff(a: &str, b: &str) -> String {
    let mut only_b: Vec<&str> = b.lines().collect();
    let mut only_a = Vec::new();
    for line in a.lines() {
        if let Some(i) = only_b.iter().position(|l| *l == line) {
            only_b.remove(i);
        } else {
            only_a.push(line);
        }
    }
    let mut out = String::new();
    for line in only_a {
        out.push_str("- ");
        out.push_str(line);
        out.push('\n');
    }
    for line in only_b {
        out.push_str("+ ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------
// Editing a checkpoint copy (hostile inputs)

/// blake3 of `bytes` as 64 lower-case hex digits.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The layer file of the last layer named `name` in the checkpoint at `ck`
/// (`layers/NNN-<name>.json`).
pub fn layer_file(ck: &Path, name: &str) -> Result<PathBuf, HarnessError> {
    let dir = ck.join("layers");
    let suffix = format!("-{name}.json");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .io_context("listing", &dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.ends_with(&suffix))
        })
        .collect();
    found.sort();
    found.pop().ok_or_else(|| HarnessError::Unexpected {
        command: format!("listing {}", dir.display()),
        detail: format!("no layer file ending in {suffix}"),
    })
}

/// `bytes` as a pack holds them: each byte XOR 0x80 (docs/checkpoint-format.md §5), written
/// here from the format document, not from the builder's code. Pure; its own inverse.
pub fn masked(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b ^ 0x80).collect()
}

/// Where the stored bytes of blob `hash` are: the pack of the layer whose blob table lists
/// it (`packs/NNN.pack`), with the offset and length there.
pub fn blob_range(ck: &Path, hash: &str) -> Option<(PathBuf, u64, u64)> {
    let mut layers: Vec<PathBuf> = std::fs::read_dir(ck.join("layers"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    layers.sort();
    layers.iter().find_map(|file| {
        let layer: Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
        let blob = layer["blobs"]
            .as_array()?
            .iter()
            .find(|b| b["blake3"] == hash)?;
        let index = layer["index"].as_u64()?;
        Some((
            ck.join(format!("packs/{index:03}.pack")),
            blob["offset"].as_u64()?,
            blob["length"].as_u64()?,
        ))
    })
}

/// The blake3 of a file entry of root `root` in the layer text (parsed, read only): the
/// largest file, so its blob is surely not shared with an unrelated small file.
pub fn largest_file_hash(layer_text: &str, root: &str) -> Option<String> {
    let layer: Value = serde_json::from_str(layer_text).ok()?;
    layer["roots"][root]["changed"]
        .as_array()?
        .iter()
        .filter(|e| e["kind"] == "file")
        .max_by_key(|e| e["size"].as_u64().unwrap_or(0))
        .and_then(|e| e["blake3"].as_str().map(str::to_owned))
}

/// Flips the lowest bit of the middle byte of `bytes`. Pure.
pub fn flip_middle_byte(bytes: &mut [u8]) {
    let i = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(i) {
        *b ^= 1;
    }
}

/// Changes the first digit of the first `"<key>":<number>` in `text` (0-8 → +1, 9 → 8),
/// keeping the JSON canonical. Pure.
pub fn bump_number(text: &str, key: &str) -> Option<String> {
    let mark = format!("\"{key}\":");
    let at = text.find(&mark)? + mark.len();
    let digit = text[at..].chars().next().filter(char::is_ascii_digit)?;
    let new = if digit == '9' {
        '8'
    } else {
        char::from(digit as u8 + 1)
    };
    Some(format!("{}{new}{}", &text[..at], &text[at + 1..]))
}

/// The checkpoint format version the builder under test writes (docs/checkpoint-format.md).
pub const FORMAT_VERSION: u32 = 5;

/// Replaces the leading `{"format_version":<FORMAT_VERSION>,` of an index or layer file
/// with `found`. Pure.
pub fn set_format_version(text: &str, found: u32) -> Option<String> {
    let rest = text.strip_prefix(&format!("{{\"format_version\":{FORMAT_VERSION},"))?;
    Some(format!("{{\"format_version\":{found},{rest}"))
}

/// The end (exclusive) of the JSON string starting at `start` (which must be `"`).
fn string_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start + 1) {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The end (exclusive) of the JSON object starting at `start` (which must be `{`).
fn object_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&b'{') {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// In a layer's canonical text, inserts before the first entry of `root` with a non-empty
/// path a copy of that entry whose path is `path`. In layer 0 that entry is a top-level one
/// (its parent comes first), so a `path` sorting before it (`../escape` does, before every
/// name not starting with a byte below `.`) keeps the list sorted and unique: only the
/// path itself breaks a rule. Pure; `None` when the layer has no such entry.
pub fn insert_entry_copy(layer_text: &str, root: &str, path: &str) -> Option<String> {
    let list = format!("\"{root}\":{{\"changed\":[");
    let mut at = layer_text.find(&list)? + list.len();
    loop {
        if !layer_text[at..].starts_with("{\"path\":\"") {
            return None;
        }
        let end = object_end(layer_text, at)?;
        let entry = &layer_text[at..end];
        if !entry.starts_with("{\"path\":\"\",") {
            let value_start = "{\"path\":".len();
            let value_end = string_end(entry, value_start)?;
            let copy = format!("{{\"path\":{}{}", Value::from(path), &entry[value_end..]);
            return Some(format!("{}{copy},{}", &layer_text[..at], &layer_text[at..]));
        }
        at = end + 1; // past the comma
    }
}

/// The paths of root `root`'s `changed` list in a layer text (parsed, read only).
pub fn changed_paths(layer_text: &str, root: &str) -> Option<Vec<String>> {
    let layer: Value = serde_json::from_str(layer_text).ok()?;
    layer["roots"][root]["changed"]
        .as_array()?
        .iter()
        .map(|e| e["path"].as_str().map(str::to_owned))
        .collect()
}

/// Writes `new_text` to the layer file and replaces its hash in `index.json`, so the index
/// still matches it.
pub fn rewrite_layer(ck: &Path, layer: &Path, new_text: &str) -> Result<(), String> {
    let old = std::fs::read(layer).map_err(|e| format!("reading {}: {e}", layer.display()))?;
    let (old_hash, new_hash) = (blake3_hex(&old), blake3_hex(new_text.as_bytes()));
    let index_path = ck.join("index.json");
    let index = std::fs::read_to_string(&index_path)
        .map_err(|e| format!("reading {}: {e}", index_path.display()))?;
    let quoted = format!("\"blake3\":\"{old_hash}\"");
    if index.matches(&quoted).count() != 1 {
        return Err(format!(
            "{} does not name {} by its hash {old_hash} exactly once",
            index_path.display(),
            layer.display()
        ));
    }
    let index = index.replace(&quoted, &format!("\"blake3\":\"{new_hash}\""));
    std::fs::write(layer, new_text).map_err(|e| format!("writing {}: {e}", layer.display()))?;
    std::fs::write(&index_path, index).map_err(|e| format!("writing {}: {e}", index_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drv_outputs_are_parsed() {
        let drv = r#"Derive([("checkpoint","/nix/store/aaa-x-checkpoint","",""),("out","/nix/store/bbb-x","","")],[("/nix/store/c.drv",["out"])],[],"x86_64-linux","/b",[],[])"#;
        assert_eq!(
            parse_drv_outputs(drv),
            Some(vec![
                ("checkpoint".into(), "/nix/store/aaa-x-checkpoint".into()),
                ("out".into(), "/nix/store/bbb-x".into())
            ])
        );
        assert_eq!(parse_drv_outputs("Derive([]"), None);
        assert_eq!(parse_drv_outputs("nonsense"), None);
    }

    #[test]
    fn numbers_and_versions_are_edited_in_place() {
        assert_eq!(
            bump_number(r#"{"a":1,"mtime_ns":907}"#, "mtime_ns").as_deref(),
            Some(r#"{"a":1,"mtime_ns":807}"#)
        );
        assert_eq!(
            bump_number(r#"{"mtime_ns":0}"#, "mtime_ns").as_deref(),
            Some(r#"{"mtime_ns":1}"#)
        );
        assert_eq!(bump_number(r#"{"x":0}"#, "mtime_ns"), None);
        let ours = format!(r#"{{"format_version":{FORMAT_VERSION},"meta":{{}}}}"#);
        assert_eq!(
            set_format_version(&ours, 7).as_deref(),
            Some(r#"{"format_version":7,"meta":{}}"#)
        );
        let mut bytes = [0u8, 0, 0];
        flip_middle_byte(&mut bytes);
        assert_eq!(bytes, [0, 1, 0]);
    }

    #[test]
    fn an_entry_copy_goes_before_the_first_non_root_entry() {
        let layer = concat!(
            r#"{"format_version":1,"index":0,"name":"setup","attachments":{},"meta":{},"#,
            r#""roots":{"build":{"changed":[{"path":"","kind":"dir","mode":"0700","mtime_s":5,"mtime_ns":0},"#,
            r#"{"path":"env-\"vars","kind":"file","mode":"0600","mtime_s":5,"mtime_ns":1,"size":3,"blake3":"ab","xattrs":{"user.a":"}"}}],"deleted":[]}}}"#
        );
        let edited = insert_entry_copy(layer, "build", "../escape").expect("an entry");
        assert_eq!(
            changed_paths(&edited, "build"),
            Some(vec!["".into(), "../escape".into(), "env-\"vars".into()])
        );
        assert!(edited.contains(
            r#"{"path":"../escape","kind":"file","mode":"0600","mtime_s":5,"mtime_ns":1,"size":3,"blake3":"ab","xattrs":{"user.a":"}"}},{"path":"env-\"vars""#
        ));
        assert_eq!(insert_entry_copy(layer, "out", "../escape"), None);
    }

    #[test]
    fn the_largest_file_is_chosen() {
        let layer = r#"{"roots":{"build":{"changed":[{"path":"a","kind":"file","size":3,"blake3":"small"},{"path":"b","kind":"file","size":30,"blake3":"big"},{"path":"c","kind":"dir"}]}}}"#;
        assert_eq!(largest_file_hash(layer, "build").as_deref(), Some("big"));
        assert_eq!(largest_file_hash(layer, "out"), None);
    }

    #[test]
    fn layers_follow_the_announced_phases() {
        let doc = |layers: &[(&str, u64)]| -> Value {
            let rows: Vec<Value> = layers
                .iter()
                .enumerate()
                .map(|(i, (p, c))| {
                    serde_json::json!({"index": i, "phase": p, "changed_entries": c, "deleted_entries": 0})
                })
                .collect();
            serde_json::json!({ "layers": rows })
        };
        let phases = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let ok = doc(&[
            ("setup", 2),
            ("unpackPhase", 0),
            ("buildPhase", 3),
            ("checkPhase", 0),
        ]);
        assert_eq!(check_layer_order(&ok, &phases(&["buildPhase"])), Ok(()));
        assert_eq!(
            check_layer_order(&ok, &phases(&["unpackPhase", "buildPhase"])),
            Ok(())
        );
        assert!(check_layer_order(&ok, &phases(&["buildPhase", "installPhase"])).is_err());
        assert!(check_layer_order(&ok, &phases(&[])).is_err());
        let no_setup = doc(&[("unpackPhase", 1)]);
        assert!(check_layer_order(&no_setup, &phases(&["unpackPhase"])).is_err());
        let swapped = doc(&[("setup", 1), ("buildPhase", 1), ("unpackPhase", 1)]);
        assert!(check_layer_order(&swapped, &phases(&["unpackPhase", "buildPhase"])).is_err());
    }

    #[test]
    fn line_diff_lists_both_sides() {
        assert_eq!(line_diff("a\nb\nc\n", "a\nc\nd\n"), "- b\n+ d\n");
        assert_eq!(line_diff("a\n", "a\n"), "");
    }
}
