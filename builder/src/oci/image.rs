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
    /// The last history entry's `created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
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
    /// The newest mtime of the trees after the phase (about when it ended), never the
    /// time of the export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
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
    info: &crate::meta::LayerInfo,
    empty: bool,
) -> History {
    let (seconds, status) = (info.seconds, info.status);
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
        created: None,
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

/// `sec` seconds since the epoch as RFC 3339 in UTC (`2026-12-02T07:24:17Z`).
pub fn rfc3339(sec: i64) -> String {
    let days = sec.div_euclid(86_400);
    let rem = sec.rem_euclid(86_400);
    let (year, month, day) = crate::civil_date::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1), "1970-01-01T00:00:01Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_196_257), "2026-12-02T07:24:17Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn nix_systems_map_to_oci_architectures() {
        assert_eq!(architecture(Some("x86_64-linux")), "amd64");
        assert_eq!(architecture(Some("aarch64-linux")), "arm64");
        assert_eq!(architecture(Some("mips64el-linux")), "mips64el");
    }
}
