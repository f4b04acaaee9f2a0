//! Whether an earlier build's checkpoint may be used as `checkpointBase` (design §6, the rules
//! in `docs/trust.md`): its layer keys recomputed, each layer's content bound to its key by a
//! chain, and its provenance (a checkpoint is used as a base only when it is at the store path
//! of the build that wrote it, unless the derivation opts in).
//!
//! Pure: records in, a verdict with a typed reason out. Reading the checkpoint is
//! [`crate::reuse::base`]'s; writing the chain is [`crate::build::recorder`]'s.

use crate::checkpoint::ContentHash;
use crate::reuse::keys::{layer_key, LayerInputs, KEY_FORMAT};
use thiserror::Error;

/// Bumped when what the chain hashes changes.
pub const CHAIN_FORMAT: &str = "checkpoint-builder-chain-v1";

/// The derivation attribute that opts in to a base that did not come out of a build.
pub const TRUST_ATTRIBUTE: &str = "checkpointBaseTrust";

/// Keys of the checkpoint-wide `meta` (index.json) this module reads and the recorder writes.
pub mod meta {
    /// The store path the writing build gave its `checkpoint` output (absent for a
    /// development cache entry of a build without one).
    pub const CHECKPOINT_PATH: &str = "checkpoint_path";
    /// One chain digest per layer, in order (see [`super::chain_link`]).
    pub const CHAIN: &str = "chain";
}

/// How far a base is trusted before its provenance is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseTrust {
    /// Default for `checkpointBase`: only a checkpoint at the path its build wrote it to.
    Built,
    /// `checkpointBaseTrust = "any"`: whatever store path the derivation names; the
    /// consistency checks still apply.
    Any,
    /// A development cache entry: the user's own directory, bound into the sandbox by them.
    OwnCache,
}

impl BaseTrust {
    /// The policy a `checkpointBaseTrust` value asks for: unset, empty or `"built"` →
    /// [`BaseTrust::Built`], `"any"` → [`BaseTrust::Any`]; anything else is an error (the
    /// build then keeps the default and says so).
    pub fn from_attribute(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or("") {
            "" | "built" => Ok(BaseTrust::Built),
            "any" => Ok(BaseTrust::Any),
            other => Err(format!(
                "{TRUST_ATTRIBUTE} = {other:?} is not one of \"built\", \"any\""
            )),
        }
    }
}

/// What the checks need of one layer.
#[derive(Debug, Clone)]
pub struct LayerRecord<'a> {
    pub name: &'a str,
    /// `meta.key` and `meta.parent_key` of the layer file.
    pub key: Option<&'a str>,
    pub parent_key: Option<&'a str>,
    /// The recorded inputs (attachments `inputs` and `input-functions`).
    pub inputs: &'a LayerInputs,
    /// blake3 of the layer file, as the index names it.
    pub file: ContentHash,
}

/// Why a checkpoint is not used as a base.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TrustError {
    #[error(
        "layer {index} `{name}` was keyed by another builder version (key format {found}, this builder's is {KEY_FORMAT})"
    )]
    KeyFormat {
        index: usize,
        name: String,
        found: String,
    },
    #[error("layer {index} `{name}` records no key")]
    NoKey { index: usize, name: String },
    #[error(
        "layer {index} `{name}`: its parent key is not the key of the layer before it: the checkpoint is inconsistent"
    )]
    ParentKey { index: usize, name: String },
    #[error(
        "layer {index} `{name}`: its key {stored} is not the hash of its recorded inputs and its parent's key ({computed}): the checkpoint is inconsistent"
    )]
    Key {
        index: usize,
        name: String,
        stored: String,
        computed: String,
    },
    #[error(
        "it records no chain binding its layers to their keys ({found} entries for {layers} layers; written by an older builder?)"
    )]
    NoChain { found: usize, layers: usize },
    #[error(
        "layer {index} `{name}`: its content is not what the chain binds to its key: the checkpoint is inconsistent (edited after it was written?)"
    )]
    Chain { index: usize, name: String },
    #[error(
        "it did not come out of a build at this path: it was written as {recorded}, but it is {actual}{hint}; a derivation that trusts it sets {TRUST_ATTRIBUTE} = \"any\""
    )]
    NotBuiltHere {
        recorded: String,
        actual: String,
        /// How it came to be at `actual`, when that is known (`nix-store --add`).
        hint: String,
    },
    #[error(
        "it records no path of its own, so nothing shows that it came out of a build (written by an older builder?); a derivation that trusts it sets {TRUST_ATTRIBUTE} = \"any\""
    )]
    NoProvenance,
}

/// The chain digest of a layer: blake3 over the chain format, the previous layer's digest
/// (empty for layer 0), the layer's key and the hash of its layer file. The layer file names
/// the hash of every blob its entries and attachments (shell state, inputs) hold, so the
/// digest covers the layer's whole content.
pub fn chain_link(previous: &str, key: &str, layer_file: &ContentHash) -> String {
    let mut h = blake3::Hasher::new();
    for part in [
        CHAIN_FORMAT.as_bytes(),
        previous.as_bytes(),
        key.as_bytes(),
        layer_file.to_hex().as_bytes(),
    ] {
        h.update(part);
        h.update(b"\0");
    }
    h.finalize().to_hex().to_string()
}

/// The chain of a sequence of (key, layer file hash).
pub fn chain_of<'a>(layers: impl IntoIterator<Item = (&'a str, ContentHash)>) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for (key, file) in layers {
        let link = chain_link(chain.last().map_or("", String::as_str), key, &file);
        chain.push(link);
    }
    chain
}

/// Checks that every key is the hash of its recorded inputs and its parent's key (the parent
/// being the layer before), and that `chain` (the index's) binds each layer file to its key.
/// `build_top` is the build directory the checkpoint records (masked in keys).
pub fn check_consistency(
    layers: &[LayerRecord<'_>],
    chain: Option<&[String]>,
    build_top: &[u8],
) -> Result<(), TrustError> {
    let mut parent = KEY_FORMAT.to_owned();
    for (index, l) in layers.iter().enumerate() {
        let name = l.name.to_owned();
        if l.inputs.format != KEY_FORMAT {
            return Err(TrustError::KeyFormat {
                index,
                name,
                found: l.inputs.format.clone(),
            });
        }
        let Some(key) = l.key else {
            return Err(TrustError::NoKey { index, name });
        };
        if l.parent_key != Some(parent.as_str()) {
            return Err(TrustError::ParentKey { index, name });
        }
        let computed = layer_key(&parent, l.inputs, build_top);
        if computed != key {
            return Err(TrustError::Key {
                index,
                name,
                stored: key.to_owned(),
                computed,
            });
        }
        parent = computed;
    }
    let chain = chain.unwrap_or(&[]);
    if chain.len() != layers.len() {
        return Err(TrustError::NoChain {
            found: chain.len(),
            layers: layers.len(),
        });
    }
    let want = chain_of(layers.iter().map(|l| (l.key.unwrap_or(""), l.file)));
    if let Some(index) = (0..layers.len()).find(|&i| want[i] != chain[i]) {
        return Err(TrustError::Chain {
            index,
            name: layers[index].name.to_owned(),
        });
    }
    Ok(())
}

/// Checks where a base came from. A build records its `checkpoint` output's store path in
/// the checkpoint; a copy added to the store by content (`nix-store --add`, a fixed-output
/// path) is at a path computed from that content, which therefore cannot name it, so a
/// recorded path equal to the actual one means the checkpoint is the output of the build that
/// wrote it. `hint` says how it got to `actual` when the caller knows (empty otherwise).
pub fn check_provenance(
    recorded: Option<&str>,
    actual: &str,
    trust: BaseTrust,
    hint: impl FnOnce() -> String,
) -> Result<(), TrustError> {
    if trust != BaseTrust::Built {
        return Ok(());
    }
    let actual = actual.trim_end_matches('/');
    match recorded {
        None => Err(TrustError::NoProvenance),
        Some(r) if r == actual => Ok(()),
        Some(r) => Err(TrustError::NotBuiltHere {
            recorded: r.to_owned(),
            actual: actual.to_owned(),
            hint: hint(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reuse::keys::layer_inputs;
    use crate::shell::ByteString;
    use std::collections::HashSet;

    struct Fixture {
        inputs: Vec<LayerInputs>,
        keys: Vec<String>,
        parents: Vec<String>,
        files: Vec<ContentHash>,
    }

    fn fixture() -> Fixture {
        let mut inputs = Vec::new();
        let (mut keys, mut parents, mut files) = (Vec::new(), Vec::new(), Vec::new());
        let mut parent = KEY_FORMAT.to_owned();
        for (i, step) in ["setup", "unpackPhase", "buildPhase"].iter().enumerate() {
            let mut inp = layer_inputs(step, None, &[], false, &HashSet::new());
            inp.code = ByteString(format!("cd /build/src; step {i}").into_bytes());
            let key = layer_key(&parent, &inp, b"/build");
            parents.push(parent.clone());
            keys.push(key.clone());
            files.push(ContentHash::of(format!("layer file {i}").as_bytes()));
            inputs.push(inp);
            parent = key;
        }
        Fixture {
            inputs,
            keys,
            parents,
            files,
        }
    }

    fn records(f: &Fixture) -> Vec<LayerRecord<'_>> {
        (0..f.inputs.len())
            .map(|i| LayerRecord {
                name: ["setup", "unpackPhase", "buildPhase"][i],
                key: Some(&f.keys[i]),
                parent_key: Some(&f.parents[i]),
                inputs: &f.inputs[i],
                file: f.files[i],
            })
            .collect()
    }

    fn chain(f: &Fixture) -> Vec<String> {
        chain_of(
            f.keys
                .iter()
                .map(String::as_str)
                .zip(f.files.iter().copied()),
        )
    }

    #[test]
    fn a_consistent_checkpoint_passes() {
        let f = fixture();
        assert_eq!(
            check_consistency(&records(&f), Some(&chain(&f)), b"/build"),
            Ok(())
        );
    }

    #[test]
    fn changed_inputs_without_a_new_key_are_caught() {
        let mut f = fixture();
        let c = chain(&f);
        f.inputs[1].code = ByteString(b"rm -rf /".to_vec());
        let err = check_consistency(&records(&f), Some(&c), b"/build").unwrap_err();
        assert!(matches!(err, TrustError::Key { index: 1, .. }), "{err}");
    }

    #[test]
    fn a_key_not_chained_on_its_parent_is_caught() {
        let mut f = fixture();
        f.parents[2] = "something else".into();
        let c = chain(&f);
        let err = check_consistency(&records(&f), Some(&c), b"/build").unwrap_err();
        assert!(
            matches!(err, TrustError::ParentKey { index: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn changed_content_without_a_new_chain_is_caught() {
        let mut f = fixture();
        let c = chain(&f);
        f.files[2] = ContentHash::of(b"EVIL");
        let err = check_consistency(&records(&f), Some(&c), b"/build").unwrap_err();
        assert!(matches!(err, TrustError::Chain { index: 2, .. }), "{err}");
        // An earlier layer changed: the chain differs from there on.
        let mut f = fixture();
        let c = chain(&f);
        f.files[0] = ContentHash::of(b"EVIL");
        let err = check_consistency(&records(&f), Some(&c), b"/build").unwrap_err();
        assert!(matches!(err, TrustError::Chain { index: 0, .. }), "{err}");
    }

    #[test]
    fn a_missing_or_short_chain_is_caught() {
        let f = fixture();
        let c = chain(&f);
        assert!(matches!(
            check_consistency(&records(&f), None, b"/build"),
            Err(TrustError::NoChain { found: 0, .. })
        ));
        assert!(matches!(
            check_consistency(&records(&f), Some(&c[..2]), b"/build"),
            Err(TrustError::NoChain { found: 2, .. })
        ));
    }

    #[test]
    fn another_key_format_is_named() {
        let mut f = fixture();
        f.inputs[0].format = "checkpoint-builder-key-v1".into();
        let err = check_consistency(&records(&f), Some(&chain(&f)), b"/build").unwrap_err();
        assert!(err
            .to_string()
            .contains("key format checkpoint-builder-key-v1"));
    }

    #[test]
    fn keys_survive_a_moved_build_directory() {
        // An import into a build at /tmp/nix-build-b-1 rewrites the recorded inputs; the
        // keys stay those computed at /tmp/nix-build-b-0 and still check.
        let mut f = fixture();
        for (i, inp) in f.inputs.iter_mut().enumerate() {
            inp.code = ByteString(format!("cd /tmp/nix-build-b-0/src; step {i}").into_bytes());
        }
        let mut parent = KEY_FORMAT.to_owned();
        for i in 0..3 {
            f.parents[i] = parent.clone();
            f.keys[i] = layer_key(&parent, &f.inputs[i], b"/tmp/nix-build-b-0");
            parent = f.keys[i].clone();
        }
        let c = chain(&f);
        for inp in f.inputs.iter_mut() {
            let text = String::from_utf8(inp.code.as_bytes().to_vec()).unwrap();
            inp.code = ByteString(text.replace("-b-0", "-b-1").into_bytes());
        }
        assert_eq!(
            check_consistency(&records(&f), Some(&c), b"/tmp/nix-build-b-1"),
            Ok(())
        );
    }

    #[test]
    fn provenance_is_the_recorded_path() {
        let at = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x-checkpoint";
        let ok = |r: Option<&str>, a: &str, t| check_provenance(r, a, t, String::new);
        assert_eq!(ok(Some(at), at, BaseTrust::Built), Ok(()));
        assert_eq!(ok(Some(at), &format!("{at}/"), BaseTrust::Built), Ok(()));
        let added = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-x-checkpoint";
        let err = ok(Some(at), added, BaseTrust::Built).unwrap_err();
        assert!(matches!(err, TrustError::NotBuiltHere { .. }));
        assert!(err.to_string().contains("checkpointBaseTrust = \"any\""));
        assert_eq!(
            ok(None, added, BaseTrust::Built),
            Err(TrustError::NoProvenance)
        );
        assert_eq!(ok(Some(at), added, BaseTrust::Any), Ok(()));
        assert_eq!(ok(None, added, BaseTrust::OwnCache), Ok(()));
    }

    #[test]
    fn the_attribute_values() {
        assert_eq!(BaseTrust::from_attribute(None), Ok(BaseTrust::Built));
        assert_eq!(BaseTrust::from_attribute(Some("")), Ok(BaseTrust::Built));
        assert_eq!(
            BaseTrust::from_attribute(Some("built")),
            Ok(BaseTrust::Built)
        );
        assert_eq!(BaseTrust::from_attribute(Some("any")), Ok(BaseTrust::Any));
        assert!(BaseTrust::from_attribute(Some("yes")).is_err());
    }
}
