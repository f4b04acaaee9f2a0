//! The inspection commands: `inspect`, `verify`, `restore`, `shell`, `diff`, `cache` (`export-oci`
//! lives in [`crate::oci::command`]).
//!
//! People's output goes to stderr, data to stdout (`--json` where a program reads it).

use crate::checkpoint::{Checkpoint, CheckpointError, RelPath, RestoreOptions, RestoreReport};
use crate::shell::host::{host_rc, host_state};
use crate::shell::{ByteString, ShellState, Value};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error("checkpoint {path} is unusable")]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: CheckpointError,
    },
    #[error("checkpoint {path} has no layer named `{phase}` (it has: {available})")]
    NoSuchLayer {
        path: PathBuf,
        phase: String,
        available: String,
    },
    /// A development cache directory that cannot be used, or has no such entry: a bad
    /// argument, not a bad checkpoint.
    #[error("development cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
    /// A checkpoint whose layers cannot be decoded (attachments, keys).
    #[error("checkpoint {path} is unusable: {reason}")]
    Undecodable { path: PathBuf, reason: String },
    #[error("restore target {path} {problem}")]
    Target {
        path: PathBuf,
        problem: &'static str,
    },
    /// The checkpoint's deepest path does not fit below this target (a shorter one works).
    #[error("restore target {path} is too deep for this checkpoint")]
    TargetTooDeep {
        path: PathBuf,
        #[source]
        source: CheckpointError,
    },
    #[error("layer `{phase}` has no usable shell state: {reason}")]
    NoShellState { phase: String, reason: String },
    /// A layer's shell state cannot be restored without running code it carries (or is
    /// unreadable): the whole checkpoint is refused, whatever the command.
    #[error("checkpoint {path} is unusable: {reason}")]
    ShellState { path: PathBuf, reason: String },
    #[error("{what}: {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// Whether the checkpoint itself is at fault (exit code `CHECKPOINT_UNUSABLE`).
    pub fn is_checkpoint_fault(&self) -> bool {
        matches!(
            self,
            CliError::Checkpoint { .. }
                | CliError::Undecodable { .. }
                | CliError::NoShellState { .. }
                | CliError::ShellState { .. }
        )
    }

    /// The status the command exits with: 65 when the checkpoint is at fault, 2 otherwise
    /// (a bad argument or target; an I/O error on the user's side).
    pub fn exit_code(&self) -> i32 {
        if self.is_checkpoint_fault() {
            crate::exit_codes::CHECKPOINT_UNUSABLE
        } else {
            crate::exit_codes::BUILDER_INPUT
        }
    }

    /// What to try next, where the error suggests something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::TargetTooDeep { .. } => Some("restore into a directory with a shorter path"),
            CliError::Target { .. } => Some("restore into a new or empty directory"),
            _ => None,
        }
    }
}

/// Writes data to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_data(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|_| out.flush());
}

fn open(path: &Path) -> Result<Checkpoint, CliError> {
    Checkpoint::open(path).map_err(|source| CliError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })
}

/// Finds the layer called `phase` (the last one of that name).
/// `failed:PHASE` (the tree a failed build left, kept by the development cache) answers for
/// PHASE when there is no completed layer of that name.
pub fn layer_index(ck: &Checkpoint, path: &Path, phase: &str) -> Result<u32, CliError> {
    let find = |name: &str| {
        ck.layers()
            .iter()
            .rev()
            .find(|l| l.meta.name == name)
            .map(|l| l.index)
    };
    find(phase)
        .or_else(|| find(&format!("failed:{phase}")))
        .ok_or_else(|| CliError::NoSuchLayer {
            path: path.to_path_buf(),
            phase: phase.to_owned(),
            available: layer_names(ck),
        })
}

/// The names of a checkpoint's layers, in order, for a "no such layer" message.
pub fn layer_names(ck: &Checkpoint) -> String {
    ck.layers()
        .iter()
        .map(|l| l.meta.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads and validates the shell state of every layer that has one
/// ([`crate::shell::validate`]): a checkpoint with one state that could run code when restored
/// is unusable for every command but `inspect`.
fn check_shell_states(ck: &Checkpoint, path: &Path) -> Result<(), CliError> {
    // A checkpoint the engine wrote for another caller has no shell states: nothing to check
    // (`shell` itself needs one and says so).
    for layer in ck.layers().iter().filter(|l| {
        l.meta
            .attachments
            .contains_key(crate::meta::attachment::SHELL_STATE)
    }) {
        crate::reuse::base::read_shell_state(ck, layer).map_err(|reason| CliError::ShellState {
            path: path.to_path_buf(),
            reason,
        })?;
    }
    Ok(())
}

/// `inspect`: one row per layer.
pub fn inspect(path: &Path, json: bool) -> Result<(), CliError> {
    let ck = open(path)?;
    let rows: Vec<serde_json::Value> = ck
        .layers()
        .iter()
        .zip(ck.index().layers.iter())
        .map(|(layer, r)| {
            let changed: usize = layer.roots.values().map(|d| d.changed.len()).sum();
            let deleted: usize = layer.roots.values().map(|d| d.deleted.len()).sum();
            serde_json::json!({
                "index": layer.index,
                "phase": layer.meta.name,
                "seconds": layer.meta.meta.get("seconds"),
                "key": layer.meta.meta.get("key"),
                "changed_entries": changed,
                "deleted_entries": deleted,
                "blobs_added": r.blobs_added,
                "blob_bytes_added": r.blob_bytes_added,
            })
        })
        .collect();
    if json {
        let doc = serde_json::json!({ "meta": ck.meta(), "roots": ck.roots(), "layers": rows });
        print_data(&serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    eprintln!("checkpoint {}", path.display());
    eprintln!("  {}", serde_json::to_string(ck.meta()).unwrap_or_default());
    eprintln!(
        "  {:>3}  {:<24} {:>9} {:>8} {:>8} {:>12}  key",
        "#", "phase", "seconds", "changed", "deleted", "new bytes"
    );
    for row in &rows {
        let key = row["key"].as_str().unwrap_or("-");
        eprintln!(
            "  {:>3}  {:<24} {:>9} {:>8} {:>8} {:>12}  {}",
            row["index"],
            row["phase"].as_str().unwrap_or(""),
            row["seconds"]
                .as_f64()
                .map(|s| format!("{s:.3}"))
                .unwrap_or_else(|| "-".into()),
            row["changed_entries"].to_string(),
            row["deleted_entries"].to_string(),
            row["blob_bytes_added"].to_string(),
            &key[..key.len().min(16)]
        );
    }
    Ok(())
}

/// `verify`: every hash and invariant.
pub fn verify(path: &Path, json: bool) -> Result<(), CliError> {
    let ck = open(path)?;
    let report = ck.verify().map_err(|source| CliError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })?;
    check_shell_states(&ck, path)?;
    if json {
        print_data(
            &serde_json::json!({
                "ok": true,
                "layers": report.layers,
                "blobs_verified": report.blobs_verified,
                "bytes_verified": report.bytes_verified,
                "unreferenced_blobs": report.unreferenced_blobs,
            })
            .to_string(),
        );
    } else {
        eprintln!(
            "checkpoint {} is valid: {} layers, {} blobs ({} bytes) rehashed, {} unreferenced blobs",
            path.display(),
            report.layers,
            report.blobs_verified,
            report.bytes_verified,
            report.unreferenced_blobs
        );
    }
    Ok(())
}

/// `restore`: every root of the state after `phase` into `dir/<root>`. All or nothing: the
/// roots are restored into a temporary sibling of `dir`, renamed into place only when every
/// one succeeded. `dir` must not exist or be an empty directory (not a symlink to one).
/// Setuid and setgid bits are cleared.
pub fn restore(path: &Path, phase: &str, dir: &Path) -> Result<(), CliError> {
    restore_with(path, phase, dir, RestoreOptions::default())
}

/// [`restore`] with `opts` (`--keep-setid`). Entries that are not recreated (sockets,
/// devices) and setuid/setgid bits that are not restored are reported on stderr.
pub fn restore_with(
    path: &Path,
    phase: &str,
    dir: &Path,
    opts: RestoreOptions,
) -> Result<(), CliError> {
    let ck = open(path)?;
    let index = layer_index(&ck, path, phase)?;
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| CliError::Io {
            what,
            path: p,
            source,
        }
    };
    let target = |problem| CliError::Target {
        path: dir.to_path_buf(),
        problem,
    };
    // The target itself, never followed: a symlink (even to an empty directory) is refused
    // before anything is created.
    let exists = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => return Err(target("is a symlink")),
        Ok(m) if !m.is_dir() => return Err(target("exists and is not a directory")),
        Ok(_) => {
            let empty = std::fs::read_dir(dir)
                .map_err(io("cannot read the target directory", dir))?
                .next()
                .is_none();
            if !empty {
                return Err(target("is not empty"));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io("cannot inspect the target directory", dir)(e)),
    };
    let unusable = |source| CliError::Checkpoint {
        path: path.to_path_buf(),
        source,
    };
    // Every hash and invariant first: a corrupt checkpoint is refused before anything is
    // written, not even a temporary directory. (A development cache entry of a failed build
    // is unfinished: its tmp/ is ignored, everything its index lists is checked.)
    ck.verify_unfinished().map_err(unusable)?;
    check_shell_states(&ck, path)?;
    let state = ck.state_after(index).map_err(unusable)?;
    for root in ck.roots() {
        crate::checkpoint::restore::check_path_room(&dir.join(root), state.root(root)).map_err(
            |source| CliError::TargetTooDeep {
                path: dir.to_path_buf(),
                source,
            },
        )?;
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "restore".into());
    let staging = dir.with_file_name(format!(".{name}.restoring-{}", std::process::id()));
    if let Some(parent) = staging.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("cannot create a directory", parent))?;
    }
    std::fs::create_dir(&staging).map_err(io("cannot create a directory", &staging))?;
    let mut reports = Vec::new();
    let result = (|| {
        for root in ck.roots() {
            let report = ck
                .restore_state_with(state.root(root), &staging.join(root), opts)
                .map_err(unusable)?;
            reports.push((root.as_str(), report));
        }
        if exists {
            std::fs::remove_dir(dir).map_err(io("cannot replace the target directory", dir))?;
        }
        std::fs::rename(&staging, dir).map_err(io("cannot move the restored tree into place", dir))
    })();
    if let Err(e) = result {
        let _ = crate::checkpoint::restore::remove_tree(&staging);
        return Err(e);
    }
    for (root, report) in &reports {
        if state.root(root).is_empty() {
            eprintln!("`{root}` did not exist yet after {phase}");
        } else {
            eprintln!(
                "restored `{root}` after {phase} into {}",
                dir.join(root).display()
            );
        }
        for line in restore_notes(root, report) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// The lines that tell a person what a restore of `root` did not recreate.
pub fn restore_notes(root: &str, report: &RestoreReport) -> Vec<String> {
    const SHOWN: usize = 10;
    let list = |paths: &mut dyn Iterator<Item = String>, n: usize| {
        let mut shown: Vec<String> = paths.take(SHOWN).collect();
        if n > SHOWN {
            shown.push(format!("… and {} more", n - SHOWN));
        }
        shown.join(", ")
    };
    let mut notes = Vec::new();
    if !report.skipped.is_empty() {
        let n = report.skipped.len();
        notes.push(format!(
            "skipped {n} entries of `{root}` that a restore does not recreate (sockets, devices): {}",
            list(
                &mut report.skipped.iter().map(|(p, kind)| format!("{p} ({kind})")),
                n
            )
        ));
    }
    if !report.setid_cleared.is_empty() {
        let n = report.setid_cleared.len();
        notes.push(format!(
            "setuid/setgid bits not restored on {n} entries of `{root}` (--keep-setid restores them): {}",
            list(&mut report.setid_cleared.iter().map(RelPath::escaped), n)
        ));
    }
    notes
}

/// The shell state recorded with a layer.
fn layer_shell_state(ck: &Checkpoint, index: u32, phase: &str) -> Result<ShellState, CliError> {
    let layer = ck.layer(index).map_err(|source| CliError::Checkpoint {
        path: PathBuf::new(),
        source,
    })?;
    crate::reuse::base::read_shell_state(ck, layer).map_err(|reason| CliError::NoShellState {
        phase: phase.to_owned(),
        reason,
    })
}

fn replace_prefix(value: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() || !value.starts_with(from) {
        return None;
    }
    let rest = &value[from.len()..];
    (rest.is_empty() || rest[0] == b'/').then(|| [to, rest].concat())
}

/// Moves a state recorded in the sandbox (build directory `/build`, say) to `new_top`.
pub fn relocate(state: &mut ShellState, new_top: &Path) {
    let old_top = match state.variable("NIX_BUILD_TOP").map(|v| &v.value) {
        Some(Value::Scalar(s)) => s.as_bytes().to_vec(),
        _ => return,
    };
    let new_top = new_top.as_os_str().as_bytes();
    if let Some(cwd) = replace_prefix(state.cwd.as_bytes(), &old_top, new_top) {
        state.cwd = ByteString(cwd);
    }
    for var in state.variables.iter_mut() {
        if let Value::Scalar(s) = &var.value {
            if let Some(v) = replace_prefix(s.as_bytes(), &old_top, new_top) {
                var.value = Value::Scalar(ByteString(v));
            }
        }
    }
    state.stdout_target = None;
    state.stderr_target = None;
}

/// `shell`: restore the state after `phase` into a temporary directory and open an interactive
/// bash there with that point's variables, functions, options and cwd, minus everything bash
/// would run by itself ([`crate::shell::host`]; one stderr line lists what was left out).
pub fn shell(path: &Path, phase: &str, keep: Option<&Path>) -> Result<i32, CliError> {
    let ck = open(path)?;
    let index = layer_index(&ck, path, phase)?;
    let base = match keep {
        Some(dir) => dir.to_path_buf(),
        None => {
            std::env::temp_dir().join(format!("checkpoint-shell-{}-{}", phase, std::process::id()))
        }
    };
    restore(path, phase, &base)?;
    let mut state = layer_shell_state(&ck, index, phase)?;
    let build = base.join("build");
    relocate(&mut state, &build);
    // On the host, outside any sandbox: nothing of the checkpoint may run by itself (traps,
    // prompt hooks, history files, `BASH_ENV`, `LD_*` …): see `shell::host`.
    let report = host_state(&mut state).map_err(|e| CliError::NoShellState {
        phase: phase.to_owned(),
        reason: e.to_string(),
    })?;
    eprintln!("{}", report.left_out_line());
    if let Some(line) = report.functions_line() {
        eprintln!("{line}");
    }
    let rc = base.join("shell-rc.sh");
    let script = host_rc(&state, phase, &base.display().to_string());
    // A new file, never through whatever the restored tree put at that name (a root of the
    // checkpoint could be a symlink called so).
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&rc)
        .and_then(|mut f| std::io::Write::write_all(&mut f, script.as_bytes()))
        .map_err(|source| CliError::Io {
            what: "cannot write the shell's rc file",
            path: rc.clone(),
            source,
        })?;
    let bash = std::env::var_os("CHECKPOINT_SHELL_BASH").unwrap_or_else(|| "bash".into());
    let status = std::process::Command::new(&bash)
        .arg("--rcfile")
        .arg(&rc)
        .arg("-i")
        .env_clear()
        .env(
            "TERM",
            std::env::var_os("TERM").unwrap_or_else(|| "xterm".into()),
        )
        .status()
        .map_err(|source| CliError::Io {
            what: "cannot start bash",
            path: PathBuf::from(bash),
            source,
        })?;
    if keep.is_none() {
        eprintln!(
            "checkpoint-builder: the restored tree stays in {}",
            base.display()
        );
    }
    Ok(status.code().unwrap_or(1))
}

/// `diff A B`: why the layers of two checkpoints differ, layer by layer, in the words a
/// build uses to explain a miss.
pub fn diff(a: &Path, b: &Path, json: bool) -> Result<(), CliError> {
    let ca = open(a)?;
    let cb = open(b)?;
    // Decoding reads every layer's shell state through `read_shell_state`, which validates
    // it: an unsafe state makes the checkpoint unusable here as in `verify` and `restore`.
    let decode = |ck: &Checkpoint, path: &Path| {
        crate::reuse::base::decode_layers(ck).map_err(|reason| CliError::Undecodable {
            path: path.to_path_buf(),
            reason,
        })
    };
    let (la, lb) = (decode(&ca, a)?, decode(&cb, b)?);
    // A key only vouches for a layer's content in a checkpoint whose keys, chain and
    // provenance check (docs/trust.md): a forged copy keeps the real keys.
    let untrusted: Vec<String> = [(&ca, &la, "the first"), (&cb, &lb, "the second")]
        .into_iter()
        .filter_map(|(ck, layers, which)| {
            crate::reuse::base::trust_problem(ck, layers)
                .map(|why| format!("{which} ({}) is not trusted: {why}", ck.dir().display()))
        })
        .collect();
    for u in &untrusted {
        eprintln!("checkpoint-builder diff: {u}");
    }
    let mut rows = Vec::new();
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        let key = |ck: &Checkpoint| {
            ck.layers().get(i).and_then(|l| {
                l.meta
                    .meta
                    .get("key")
                    .and_then(|k| k.as_str())
                    .map(str::to_owned)
            })
        };
        let verdict = match (x, y) {
            (Some(x), Some(y)) if x.name != y.name => {
                format!("different phases: `{}` vs `{}`", x.name, y.name)
            }
            (Some(x), Some(y)) if x.inputs == y.inputs => {
                if key(&ca) == key(&cb) && untrusted.is_empty() {
                    "same key".to_owned()
                } else if key(&ca) == key(&cb) {
                    let same_content = ca.index().layers.get(i).map(|r| r.blake3)
                        == cb.index().layers.get(i).map(|r| r.blake3);
                    format!(
                        "same key recorded, {} content, but {}",
                        if same_content { "same" } else { "different" },
                        untrusted.join("; ")
                    )
                } else {
                    "same inputs, an earlier layer differs".to_owned()
                }
            }
            (Some(x), Some(y)) => crate::reuse::plan::explain_difference(&x.inputs, &y.inputs),
            (Some(_), None) => "only in the first".to_owned(),
            (None, Some(_)) => "only in the second".to_owned(),
            (None, None) => unreachable!(),
        };
        let phase = x.or(y).map(|l| l.name.clone()).unwrap_or_default();
        rows.push(serde_json::json!({ "index": i, "phase": phase, "verdict": verdict }));
    }
    if json {
        print_data(&serde_json::to_string_pretty(&rows).expect("json"));
    } else {
        for r in &rows {
            eprintln!(
                "{:>3}  {:<24} {}",
                r["index"],
                r["phase"].as_str().unwrap_or(""),
                r["verdict"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `cache ls`: what the development cache keeps.
pub fn cache_ls(dir: &Path, json: bool) -> Result<(), CliError> {
    let cache = crate::dev_cache::DevCache::open(dir).map_err(|reason| CliError::Cache {
        path: dir.to_path_buf(),
        reason,
    })?;
    let entries = cache.list();
    if json {
        print_data(&serde_json::to_string_pretty(&entries).expect("json"));
        return Ok(());
    }
    eprintln!(
        "{:<28} {:>10} {:>8}  {:<9} phases",
        "name", "bytes", "age", "state"
    );
    for e in &entries {
        let last = e.layers.last().map(String::as_str).unwrap_or("-");
        let state = if last.starts_with("failed:") {
            "failed"
        } else if e.complete {
            "complete"
        } else {
            "partial"
        };
        eprintln!(
            "{:<28} {:>10} {:>7}s  {:<9} {}\n  {}",
            e.name,
            e.bytes,
            e.age_seconds,
            state,
            e.layers.join(" "),
            e.path.display()
        );
    }
    Ok(())
}

/// `cache gc --max-size`: least recently used entries go first.
pub fn cache_gc(dir: &Path, max_bytes: u64) -> Result<(), CliError> {
    let cache = crate::dev_cache::DevCache::open(dir).map_err(|reason| CliError::Cache {
        path: dir.to_path_buf(),
        reason,
    })?;
    let removed = cache.gc(max_bytes);
    eprintln!(
        "removed {} entr{}",
        removed.len(),
        if removed.len() == 1 { "y" } else { "ies" }
    );
    for r in removed {
        eprintln!("  {}", r.display());
    }
    Ok(())
}

/// The newest cache entry for `name` (a derivation name, or an entry directory's name).
pub fn cache_entry(dir: &Path, name: &str) -> Result<PathBuf, CliError> {
    let cache = crate::dev_cache::DevCache::open(dir).map_err(|reason| CliError::Cache {
        path: dir.to_path_buf(),
        reason,
    })?;
    cache
        .list()
        .into_iter()
        .find(|e| {
            e.name == name
                || e.path
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(name))
        })
        .map(|e| e.path)
        .ok_or_else(|| CliError::Cache {
            path: dir.to_path_buf(),
            reason: format!("no cache entry for `{name}`"),
        })
}

/// Parses `123`, `10K`, `500M`, `2G` (powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1u64 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        'T' | 't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}
