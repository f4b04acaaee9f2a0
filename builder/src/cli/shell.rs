//! `shell CHECKPOINT --after PHASE [--keep DIR]` (or `shell --cache DIR NAME --at PHASE`): an
//! interactive bash on the host in the state after a phase, minus what bash would run by
//! itself.

use super::common::{layer_index, open};
use super::restore::restore;
use super::CliError;
use crate::checkpoint::Checkpoint;
use crate::shell::host::{host_rc, host_state};
use crate::shell::{ByteString, ShellState, Value};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Open an interactive bash with the state after PHASE.
///
/// The checkpoint is restored into a temporary directory (or DIR with --keep) and bash starts
/// in the phase's working directory with its variables, functions and options; nothing of the
/// checkpoint runs by itself (traps, prompt hooks, BASH_ENV, ... are left out).
///
/// With --cache DIR the checkpoint is the newest entry of the development cache in DIR for
/// NAME (a derivation name); PHASE may then be the one that failed. `--at` is another name
/// for `--after`: give one of them, once.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The checkpoint directory, or with --cache the derivation name of a cache entry
    #[arg(value_name = "CHECKPOINT|NAME")]
    pub checkpoint: PathBuf,
    /// The phase whose end state to enter
    #[arg(long, visible_alias = "at", value_name = "PHASE")]
    pub after: String,
    /// Take the checkpoint from the development cache in DIR
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Restore into DIR (absent or empty) instead of a temporary directory
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<i32, CliError> {
    let checkpoint = match &args.cache {
        Some(dir) => super::cache::cache_entry(dir, &args.checkpoint.to_string_lossy())?,
        None => args.checkpoint.clone(),
    };
    shell(&checkpoint, &args.after, args.keep.as_deref())
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
