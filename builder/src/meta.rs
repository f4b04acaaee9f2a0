//! What the builder writes into a checkpoint's metadata, typed: [`BuildMeta`] for the whole
//! checkpoint (`index.json`'s `meta`), [`LayerInfo`] for each layer (its `meta`) and the
//! names of each layer's [`attachment`]s. The
//! engine in [`crate::checkpoint`] treats both as opaque JSON; reuse, `inspect`, `diff` and
//! the OCI export read them through these types only (docs/checkpoint-format.md §3, §4).
//!
//! Read from untrusted checkpoints: a field of the wrong type is an error, a field this
//! version does not know is ignored.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// The attachments of every layer: the shell state after the step and the step's keyed
/// inputs, each as JSON without its function definitions, which are stored apart. Those
/// rarely change from one phase to the next, so one blob serves every layer instead of
/// being repeated in each (about 9 KB compressed, twice, per layer).
pub mod attachment {
    /// [`crate::shell::ShellState`] as JSON, `functions` empty.
    pub const SHELL_STATE: &str = "shell-state";
    /// The state's `functions` (`declare -f` output).
    pub const SHELL_FUNCTIONS: &str = "shell-functions";
    /// [`crate::reuse::keys::LayerInputs`] as JSON, `functions` empty.
    pub const INPUTS: &str = "inputs";
    /// The inputs' normalised `functions`.
    pub const INPUT_FUNCTIONS: &str = "input-functions";
}

/// The checkpoint-wide metadata of a checkpoint written by a build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMeta {
    /// `checkpoint-builder VERSION`.
    pub builder: String,
    /// The derivation's `name`.
    pub name: String,
    /// The derivation's `system` (`null` when it had none).
    pub system: Option<String>,
    /// The outputs recorded as roots, in the derivation's order (the `checkpoint` output is
    /// not one).
    pub outputs: Vec<String>,
    /// Output name → store path in the build that wrote the checkpoint.
    pub output_paths: BTreeMap<String, String>,
    /// The build directory of that build.
    pub build_top: String,
    /// The store path of the `checkpoint` output the layers were written for; `null` for a
    /// development cache entry of a build without one (docs/trust.md).
    pub checkpoint_path: Option<String>,
    /// One chain digest per layer ([`crate::reuse::trust::chain_link`]); absent before the
    /// first layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Vec<String>>,
    /// How many leading layers were restored from an earlier checkpoint rather than run
    /// (absent when none were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_layers: Option<u32>,
}

/// One layer's metadata, as the recorder writes it after every step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The layer key (docs/keys.md); a reader checks it against the recorded inputs.
    #[serde(default)]
    pub key: Option<String>,
    /// The key of the layer before it (the key format's name for the first layer).
    #[serde(default)]
    pub parent_key: Option<String>,
    /// The step's exit status.
    #[serde(default)]
    pub status: Option<i32>,
    /// How long the step's own code ran (`null` when unknown).
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Whether an incremental restore took the layer over: its tree also holds the earlier
    /// build's products, so no later build restores it as its phase's result.
    #[serde(default)]
    pub taken_over: bool,
}

/// Metadata that is not what this builder writes.
#[derive(Debug, Error, PartialEq)]
pub enum MetaError {
    #[error("its metadata is not a build's: {0}")]
    Build(String),
    #[error("layer {index} (`{name}`): its metadata is not a build's: {reason}")]
    Layer {
        index: u32,
        name: String,
        reason: String,
    },
}

impl BuildMeta {
    /// Reads the checkpoint-wide metadata.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, MetaError> {
        BuildMeta::deserialize(value).map_err(|e| MetaError::Build(e.to_string()))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("build metadata serialises")
    }
}

impl LayerInfo {
    /// Reads layer `index`'s metadata.
    pub fn from_json(index: u32, name: &str, value: &serde_json::Value) -> Result<Self, MetaError> {
        LayerInfo::deserialize(value).map_err(|e| MetaError::Layer {
            index,
            name: name.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The metadata of `layer` of a checkpoint.
    pub fn of(layer: &crate::checkpoint::Layer) -> Result<Self, MetaError> {
        LayerInfo::from_json(layer.index, &layer.meta.name, &layer.meta.meta)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("layer metadata serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn build_meta_round_trips_with_the_documented_field_names() {
        let meta = BuildMeta {
            builder: "checkpoint-builder 0.1.0".into(),
            name: "hello-2.10".into(),
            system: Some("x86_64-linux".into()),
            outputs: vec!["out".into()],
            output_paths: [("out".into(), "/nix/store/x-hello".into())].into(),
            build_top: "/build".into(),
            checkpoint_path: None,
            chain: Some(vec!["ab".into()]),
            restored_layers: None,
        };
        let value = meta.to_json();
        assert_eq!(
            value,
            json!({
                "builder": "checkpoint-builder 0.1.0", "name": "hello-2.10",
                "system": "x86_64-linux", "outputs": ["out"],
                "output_paths": {"out": "/nix/store/x-hello"}, "build_top": "/build",
                "checkpoint_path": null, "chain": ["ab"],
            })
        );
        assert_eq!(BuildMeta::from_json(&value), Ok(meta));
    }

    #[test]
    fn a_missing_or_mistyped_build_field_is_named() {
        let err = BuildMeta::from_json(&json!({"builder": "x"})).unwrap_err();
        assert!(err.to_string().contains("missing field `name`"), "{err}");
        let mut value = BuildMeta::default().to_json();
        value["build_top"] = json!(7);
        let err = BuildMeta::from_json(&value).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn layer_info_round_trips_and_defaults_what_is_absent() {
        let info = LayerInfo {
            key: Some("k".into()),
            parent_key: Some("p".into()),
            status: Some(0),
            seconds: Some(1.5),
            taken_over: true,
        };
        let value = info.to_json();
        assert_eq!(
            value,
            json!({"key": "k", "parent_key": "p", "status": 0, "seconds": 1.5, "taken_over": true})
        );
        assert_eq!(LayerInfo::from_json(0, "setup", &value), Ok(info));
        assert_eq!(
            LayerInfo::from_json(0, "setup", &json!({})),
            Ok(LayerInfo::default())
        );
        let err = LayerInfo::from_json(3, "buildPhase", &json!({"key": 1})).unwrap_err();
        assert!(
            err.to_string().starts_with("layer 3 (`buildPhase`)"),
            "{err}"
        );
    }
}
