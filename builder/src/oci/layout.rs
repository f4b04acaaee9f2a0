//! Writes the OCI image layout of a checkpoint into a directory that must be absent or
//! empty: one layer blob per phase that changed something, the config, the manifest,
//! `index.json` and `oci-layout` last. Effectful; on error everything written is removed.

use super::blob::{BlobDir, Compression, Digest};
use super::error::OciError;
use super::image::{self, Config, Descriptor, Index, Manifest, Origin, RootFs, RunConfig};
use super::plan::{check_disjoint, lossy, plan_layer, Mount};
use super::tar::{write_plan, TarError};
use crate::checkpoint::{Checkpoint, State};
use crate::meta::{BuildMeta, LayerInfo};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The last layer exported (index into the checkpoint's layers).
    pub upto: u32,
    /// The tag the manifest is named by in `index.json`.
    pub tag: String,
    pub compression: Compression,
}

/// What an export wrote, per checkpoint layer.
#[derive(Clone, Debug, Default)]
pub struct ExportReport {
    /// `(phase, layer blob)`; `None` for a phase that changed nothing (an empty layer in
    /// the history only).
    pub layers: Vec<(String, Option<LayerBlob>)>,
    pub manifest: Option<Digest>,
    /// Paths left out (sockets: a tar cannot hold them).
    pub skipped_sockets: Vec<String>,
    /// Exported variables left out of `Env` (their value is not UTF-8).
    pub skipped_variables: Vec<String>,
}

/// One written layer.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    pub diff_id: Digest,
    pub blob: Digest,
    pub entries: usize,
}

/// A valid tag: what `skopeo`/`umoci` accept after `DIR:` (Docker's tag grammar).
pub fn check_tag(tag: &str) -> Result<(), OciError> {
    let ok = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(OciError::BadTag {
            tag: tag.to_owned(),
        })
    }
}

/// Where each root lived: `build` at the recorded build directory, every other root at the
/// output path the checkpoint's metadata records for it.
pub fn mounts(ck: &Checkpoint, meta: &BuildMeta) -> Result<Vec<Mount>, String> {
    let mut mounts = Vec::new();
    for root in ck.roots() {
        let abs = if root == "build" {
            meta.build_top.as_str()
        } else {
            meta.output_paths
                .get(root)
                .ok_or_else(|| format!("the metadata records no path for output `{root}`"))?
        };
        mounts.push(Mount::new(root, abs.as_bytes())?);
    }
    check_disjoint(&mounts)?;
    Ok(mounts)
}

/// Exports `ck` into `dir` (absent or an empty directory). `checkpoint_path` is recorded in
/// the labels.
pub fn export(
    ck: &Checkpoint,
    checkpoint_path: &Path,
    dir: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, OciError> {
    check_tag(&options.tag)?;
    let created = prepare_target(dir)?;
    let result = write_layout(ck, checkpoint_path, dir, options);
    if result.is_err() {
        // Only what this export wrote: the target was absent or empty.
        if created {
            let _ = std::fs::remove_dir_all(dir);
        } else if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    result
}

/// Checks that `dir` is absent (then creates it: `true`) or an empty directory (`false`).
fn prepare_target(dir: &Path) -> Result<bool, OciError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if !m.is_dir() => Err(OciError::TargetNotUsable {
            path: dir.to_owned(),
            problem: "exists and is not a directory",
        }),
        Ok(_) => {
            let mut rd = std::fs::read_dir(dir).map_err(OciError::io("cannot read", dir))?;
            if rd.next().is_some() {
                return Err(OciError::TargetNotUsable {
                    path: dir.to_owned(),
                    problem: "is not empty (the image layout needs an absent or empty directory)",
                });
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(OciError::io("cannot create", dir))?;
            Ok(true)
        }
        Err(e) => Err(OciError::Io {
            what: "cannot stat",
            path: dir.to_owned(),
            source: e,
        }),
    }
}

fn write_layout(
    ck: &Checkpoint,
    checkpoint_path: &Path,
    dir: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, OciError> {
    let ck_err = |source| OciError::Checkpoint {
        path: checkpoint_path.to_owned(),
        source,
    };
    let meta_err = |problem| OciError::Meta {
        path: checkpoint_path.to_owned(),
        problem,
    };
    let last = ck.layer(options.upto).map_err(ck_err)?;
    let meta = BuildMeta::from_json(ck.meta()).map_err(|e| meta_err(e.to_string()))?;
    let mounts = mounts(ck, &meta).map_err(meta_err)?;
    let shell = crate::reuse::base::read_shell_state(ck, last).map_err(|reason| {
        OciError::NoShellState {
            phase: last.meta.name.clone(),
            reason,
        }
    })?;
    let restored_layers = u64::from(meta.restored_layers.unwrap_or(0));

    let mut blobs = BlobDir::create(dir)?;
    let mut report = ExportReport::default();
    let mut state = State::default();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for layer in &ck.layers()[..=options.upto as usize] {
        state.apply(layer).map_err(ck_err)?;
        let phase = layer.meta.name.clone();
        let info = LayerInfo::of(layer).map_err(|e| meta_err(e.to_string()))?;
        let (plan, sockets) =
            plan_layer(layer, &state, &mounts).map_err(|u| OciError::Unrepresentable {
                layer: layer.index,
                phase: phase.clone(),
                path: u.path,
                problem: u.problem,
            })?;
        report
            .skipped_sockets
            .extend(sockets.iter().map(|s| lossy(s)));
        let origin = if u64::from(layer.index) < restored_layers {
            Origin::Restored
        } else if info.taken_over {
            Origin::TakenOver
        } else {
            Origin::Ran
        };
        let mut entry = image::history_entry(&phase, origin, &info, plan.is_empty());
        entry.created = state.max_mtime().map(|t| image::rfc3339(t.sec));
        history.push(entry);
        if plan.is_empty() {
            report.layers.push((phase, None));
            continue;
        }
        let written = blobs
            .put_layer(options.compression, |out| {
                write_plan(&plan, ck.blobs(), out)
            })?
            .map_err(|e| match e {
                TarError::Blob(source) => ck_err(source),
                TarError::Write(source) => OciError::Io {
                    what: "cannot write a layer into",
                    path: dir.to_owned(),
                    source,
                },
                TarError::SizeMismatch { path, .. } => OciError::Unrepresentable {
                    layer: layer.index,
                    phase: phase.clone(),
                    path,
                    problem: "the file's content does not have the size its entry records",
                },
                TarError::XattrName { path, .. } => OciError::Unrepresentable {
                    layer: layer.index,
                    phase: phase.clone(),
                    path,
                    problem: "an xattr name contains `=`, which a PAX record cannot hold",
                },
            })?;
        let (diff_id, blob) = written;
        diff_ids.push(diff_id.digest.clone());
        layers.push(Descriptor {
            media_type: options.compression.layer_media_type().to_owned(),
            digest: blob.digest.clone(),
            size: blob.size,
            annotations: BTreeMap::new(),
        });
        report.layers.push((
            phase,
            Some(LayerBlob {
                diff_id,
                blob,
                entries: plan.len(),
            }),
        ));
    }

    let (env, skipped) = image::environment(&shell);
    report.skipped_variables = skipped;
    let mut labels = BTreeMap::new();
    let label = |k: &str| format!("{}{k}", image::LABEL_PREFIX);
    labels.insert(label("derivation"), meta.name.clone());
    labels.insert(label("built-by"), meta.builder.clone());
    labels.insert(
        label("exported-by"),
        format!("checkpoint-builder {}", env!("CARGO_PKG_VERSION")),
    );
    labels.insert(
        label("checkpoint"),
        checkpoint_path.to_string_lossy().into_owned(),
    );
    labels.insert(label("phase"), last.meta.name.clone());
    labels.insert(
        label("outputs"),
        serde_json::to_string(&meta.output_paths).expect("output paths serialise"),
    );
    let config = Config {
        created: history.last().and_then(|h| h.created.clone()),
        architecture: image::architecture(meta.system.as_deref()),
        os: "linux",
        config: RunConfig {
            env,
            working_dir: std::str::from_utf8(shell.cwd.as_bytes())
                .ok()
                .filter(|c| c.starts_with('/'))
                .map(str::to_owned),
            labels,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
        history,
    };
    let config = blobs.put_bytes(&image::to_bytes(&config))?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: image::MEDIA_MANIFEST,
        config: Descriptor {
            media_type: image::MEDIA_CONFIG.to_owned(),
            digest: config.digest,
            size: config.size,
            annotations: BTreeMap::new(),
        },
        layers,
    };
    let manifest = blobs.put_bytes(&image::to_bytes(&manifest))?;
    let index = Index {
        schema_version: 2,
        media_type: image::MEDIA_INDEX,
        manifests: vec![Descriptor {
            media_type: image::MEDIA_MANIFEST.to_owned(),
            digest: manifest.digest.clone(),
            size: manifest.size,
            annotations: [(image::REF_NAME.to_owned(), options.tag.clone())]
                .into_iter()
                .collect(),
        }],
    };
    write_file(dir, "index.json", &image::to_bytes(&index))?;
    write_file(dir, "oci-layout", image::OCI_LAYOUT)?;
    report.manifest = Some(manifest);
    Ok(report)
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), OciError> {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).map_err(OciError::io("cannot write", &path))
}
