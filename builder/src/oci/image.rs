//! The JSON documents of an OCI image layout: `oci-layout`, `index.json`, the image
//! manifest and the image config (history, `Env`, `WorkingDir`, labels). Pure: serde
//! structs whose field order is fixed and maps sorted, serialised compactly, so equal
//! content gives equal bytes and digests.

use crate::shell::{ShellState, Value};
use serde::Serialize;
use std::collections::BTreeMap;

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The annotation that names a manifest of an index (what `DIR:TAG` selects).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Label prefix of what the export records about the checkpoint.
pub const LABEL_PREFIX: &str = "dev.checkpoint-builder.";

/// `oci-layout`.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Serialize, Clone, PartialEq, Eq, Debug)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Debug)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: &'static str,
    pub manifests: Vec<Descriptor>,
}

#[derive(Serialize, Debug)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: &'static str,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Serialize, Debug)]
pub struct Config {
    pub architecture: String,
    pub os: &'static str,
    pub config: RunConfig,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

#[derive(Serialize, Debug, Default)]
pub struct RunConfig {
    #[serde(rename = "Env")]
    pub env: Vec<String>,
    #[serde(rename = "WorkingDir", skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize, Debug)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub diff_ids: Vec<String>,
}

#[derive(Serialize, Clone, PartialEq, Debug)]
pub struct History {
    pub created_by: String,
    pub comment: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Compact JSON bytes of a document.
pub fn to_bytes(doc: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(doc).expect("OCI documents serialise")
}

/// The OCI architecture of a Nix system (`x86_64-linux` → `amd64`); other CPUs keep
/// their Nix name.
pub fn architecture(system: Option<&str>) -> String {
    let cpu = system.and_then(|s| s.split('-').next()).unwrap_or("x86_64");
    match cpu {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i386" => "386",
        "armv7l" | "armv6l" => "arm",
        "powerpc64le" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
    .to_owned()
}

/// How a layer came to be, from its recorded meta and whether the build restored it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    Ran,
    /// Imported from an earlier build's checkpoint (its phase did not run).
    Restored,
    /// Laid over by an incremental restore (the tree is not what the phase alone left).
    TakenOver,
}

/// One history entry: the phase, how it came about and how long it took.
pub fn history_entry(
    phase: &str,
    origin: Origin,
    meta: &serde_json::Value,
    empty: bool,
) -> History {
    let seconds = meta.get("seconds").and_then(|s| s.as_f64());
    let status = meta.get("status").and_then(|s| s.as_i64());
    let took = match seconds {
        Some(s) => format!("{s:.3} s"),
        None => "unknown time".to_owned(),
    };
    let mut comment = match origin {
        Origin::Ran => format!("ran in {took}"),
        Origin::Restored => {
            format!("restored from an earlier build's checkpoint (ran there in {took})")
        }
        Origin::TakenOver => {
            "restored incrementally (tree taken over from an earlier build)".to_owned()
        }
    };
    if let Some(st) = status.filter(|s| *s != 0) {
        comment.push_str(&format!(", exit status {st}"));
    }
    History {
        created_by: format!("checkpoint-builder: {phase}"),
        comment,
        empty_layer: empty,
    }
}

/// `Env` from a shell state: the exported scalar variables as `NAME=VALUE`, by name.
/// Returns the names left out because their value is not UTF-8 (JSON cannot hold it).
pub fn environment(state: &ShellState) -> (Vec<String>, Vec<String>) {
    let mut env = Vec::new();
    let mut skipped = Vec::new();
    for v in &state.variables {
        if !v.attributes.exported {
            continue;
        }
        let Value::Scalar(s) = &v.value else {
            continue; // bash exports only scalars
        };
        match std::str::from_utf8(s.as_bytes()) {
            Ok(text) => env.push(format!("{}={text}", v.name)),
            Err(_) => skipped.push(v.name.clone()),
        }
    }
    (env, skipped)
}
