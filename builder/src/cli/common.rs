//! What the commands share: opening a checkpoint, finding a layer by phase, checking every
//! shell state, printing data on stdout.

use super::CliError;
use crate::checkpoint::Checkpoint;
use std::path::Path;

/// Writes data to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn print_data(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|_| out.flush());
}

pub(crate) fn open(path: &Path) -> Result<Checkpoint, CliError> {
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
pub(crate) fn check_shell_states(ck: &Checkpoint, path: &Path) -> Result<(), CliError> {
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
