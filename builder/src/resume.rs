//! Loads an earlier build's checkpoint (untrusted input, design §6) and moves its layers into
//! this build: layers rewritten to this build's output paths, trees restored, snapshots adopted.
//!
//! Effectful. Deciding *what* to reuse is pure and lives in [`crate::reuse`].

use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointWriter, Layer, RewritePair, Snapshotter, State,
};
use crate::keys::{random_seed_of, LayerInputs};
use crate::recording::attachment;
use crate::reuse::BaseLayer;
use crate::shell::ShellState;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An earlier build's checkpoint that passed every check.
pub struct BaseCheckpoint {
    pub dir: PathBuf,
    pub checkpoint: Checkpoint,
    pub layers: Vec<BaseLayer>,
    /// Output name → path in the earlier build.
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// The earlier build's build directory.
    pub build_top: Vec<u8>,
}

/// Opens and checks `dir`; `Err` is the reason, for a log line ("checkpoint rejected: …").
pub fn load_base(dir: &Path, system: Option<&str>) -> Result<BaseCheckpoint, String> {
    load_base_with(dir, system, false)
}

/// [`load_base`], optionally for a checkpoint that may be unfinished (a development cache
/// entry of a build that failed or was killed: only the layers its index lists count).
pub fn load_base_with(
    dir: &Path,
    system: Option<&str>,
    unfinished: bool,
) -> Result<BaseCheckpoint, String> {
    let checkpoint = Checkpoint::open(dir).map_err(|e| chain(&e))?;
    if unfinished {
        checkpoint.verify_unfinished().map_err(|e| chain(&e))?;
    } else {
        checkpoint.verify().map_err(|e| chain(&e))?;
    }
    let meta = checkpoint.meta();
    let their_system = meta.get("system").and_then(|s| s.as_str());
    if their_system != system {
        return Err(format!(
            "it was made for system {}, this build is for {}",
            their_system.unwrap_or("(unknown)"),
            system.unwrap_or("(unknown)")
        ));
    }
    let outputs: BTreeMap<String, Vec<u8>> = meta
        .get("output_paths")
        .and_then(|o| o.as_object())
        .ok_or("it does not record its output paths")?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.as_bytes().to_vec())))
        .collect();
    let build_top = meta
        .get("build_top")
        .and_then(|b| b.as_str())
        .ok_or("it does not record its build directory")?
        .as_bytes()
        .to_vec();
    let layers = decode_layers(&checkpoint)?;
    if layers.first().map(|l| l.name.as_str()) != Some("setup") {
        return Err("its first layer is not `setup`".into());
    }
    Ok(BaseCheckpoint {
        dir: dir.to_path_buf(),
        checkpoint,
        layers,
        outputs,
        build_top,
    })
}

/// Every layer's name, shell state and keyed inputs.
pub fn decode_layers(checkpoint: &Checkpoint) -> Result<Vec<BaseLayer>, String> {
    let mut layers = Vec::new();
    for layer in checkpoint.layers() {
        let state = read_shell_state(checkpoint, layer)?;
        let mut inputs: LayerInputs =
            serde_json::from_slice(&read_attachment(checkpoint, layer, attachment::INPUTS)?)
                .map_err(|e| format!("layer `{}`: inputs unreadable: {e}", layer.meta.name))?;
        inputs.functions = read_attachment(checkpoint, layer, attachment::INPUT_FUNCTIONS)?.into();
        let taken_over = layer
            .meta
            .meta
            .get("taken_over")
            .and_then(|t| t.as_bool())
            .unwrap_or(false);
        layers.push(BaseLayer {
            name: layer.meta.name.clone(),
            state,
            inputs,
            taken_over,
        });
    }
    Ok(layers)
}

fn read_attachment(checkpoint: &Checkpoint, layer: &Layer, name: &str) -> Result<Vec<u8>, String> {
    let hash = layer
        .meta
        .attachments
        .get(name)
        .ok_or_else(|| format!("layer `{}` has no {name}", layer.meta.name))?;
    checkpoint.read_blob(hash).map_err(|e| chain(&e))
}

/// The shell state recorded with `layer` (its JSON and its function definitions), refused
/// unless it can be restored without running anything it carries
/// ([`crate::shell::validate`]).
pub fn read_shell_state(checkpoint: &Checkpoint, layer: &Layer) -> Result<ShellState, String> {
    use crate::shell::validate::{load_state, LoadError, UnsafeState};
    let json = read_attachment(checkpoint, layer, attachment::SHELL_STATE)?;
    let functions = read_attachment(checkpoint, layer, attachment::SHELL_FUNCTIONS)?;
    load_state(&json, &functions).map_err(|e| {
        let which = match &e {
            LoadError::Unsafe(UnsafeState::Function(_)) => attachment::SHELL_FUNCTIONS,
            _ => attachment::SHELL_STATE,
        };
        format!(
            "layer `{}`: shell state (attachment `{which}`): {}",
            layer.meta.name,
            chain(&e)
        )
    })
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Old → new byte strings for the earlier build's output paths and build directory. `Err`
/// when an output is missing here or a path's length differs (a renamed package): such
/// references cannot be rewritten in place, so nothing is reused.
pub fn path_rewrites(
    base: &BaseCheckpoint,
    outputs: &[(String, PathBuf)],
    build_top: &Path,
) -> Result<Vec<RewritePair>, String> {
    let mut rewrites = Vec::new();
    for (name, old) in &base.outputs {
        let new = outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_os_str().as_bytes().to_vec())
            .ok_or_else(|| format!("this build has no output `{name}`"))?;
        if new.len() != old.len() {
            return Err(format!(
                "output `{name}` changed length ({} → {} bytes: a renamed package), so paths baked into files cannot be rewritten",
                old.len(),
                new.len()
            ));
        }
        if &new != old {
            if let (Some(a), Some(b)) = (random_seed_of(old), random_seed_of(&new)) {
                rewrites.push((old.clone(), new.clone()));
                rewrites.push((a, b));
            } else {
                rewrites.push((old.clone(), new));
            }
        }
    }
    let top = build_top.as_os_str().as_bytes().to_vec();
    if top != base.build_top {
        if top.len() != base.build_top.len() {
            return Err("the build directory's path changed length".into());
        }
        rewrites.push((base.build_top.clone(), top));
    }
    Ok(rewrites)
}

/// Files of the build directory that belong to this build, not to the restored one: kept
/// across the restore (structured attributes carry this derivation's values).
const OWN_BUILD_FILES: &[&str] = &[".attrs.json", ".attrs.sh"];

/// Imports layers `0..=depth` of the base into `writer` (rewritten), restores their trees into
/// the build directory and the outputs, and hands the state to `snapshotter`.
pub fn resume_trees(
    base: &BaseCheckpoint,
    depth: u32,
    rewrites: &[(Vec<u8>, Vec<u8>)],
    writer: &mut CheckpointWriter,
    snapshotter: &mut Snapshotter,
    build_top: &Path,
    outputs: &[(String, PathBuf)],
) -> Result<State, CheckpointError> {
    let state = writer.import_layers_rewritten(&base.checkpoint, depth, rewrites)?;
    let imported = Checkpoint::open(writer.dir())?;
    let kept: Vec<(PathBuf, Vec<u8>)> = OWN_BUILD_FILES
        .iter()
        .map(|f| build_top.join(f))
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect();
    imported.restore_state_into(state.root("build"), build_top)?;
    for (path, bytes) in kept {
        std::fs::write(&path, bytes).map_err(|e| CheckpointError::io("write", &path, e))?;
    }
    for (name, path) in outputs {
        let root = state.root(name);
        if !root.is_empty() && !path.exists() {
            imported.restore_state(root, path)?;
        }
    }
    snapshotter.adopt(state.clone(), depth + 1)?;
    Ok(state)
}
