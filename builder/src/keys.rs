//! Layer keys: what a layer's identity is made of, and the chained hash over it.
//!
//! Pure. A layer's *inputs* are the step name, the code bash runs for it as resolved in the
//! state before it (the phase variable's text, else the phase function's), and that state
//! normalised: every output path replaced by a same-length placeholder, volatile variables
//! dropped. The key chains the parent's key (like Docker's layer cache), so a layer can only
//! match when everything before it matched too. The normalisation rules are documented in
//! `docs/keys.md`.

use crate::shell::declare::Value;
use crate::shell::{ByteString, ShellState};
use serde::Serialize;

/// Bumped whenever what goes into a key changes: old keys then never match.
pub const KEY_FORMAT: &str = "checkpoint-builder-key-v1";

/// Variables whose value says nothing about the build's result (log plumbing, parallelism).
pub const VOLATILE: &[&str] = &[
    "NIX_BUILD_CORES",
    "NIX_LOG_FD",
    "SSL_CERT_FILE",
    "NIX_SSL_CERT_FILE",
    "TERM",
    "checkpointBase",
    "checkpointCache",
];

/// What a layer is keyed on, kept in the checkpoint so two layers can be compared and a miss
/// explained.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LayerInputs {
    pub format: String,
    pub step: String,
    /// The code bash runs for this step (empty for `setup`).
    pub code: ByteString,
    /// Normalised variables of the state before the step: name → attributes and value.
    pub variables: Vec<(String, String, ByteString)>,
    /// Normalised function definitions of the state before the step.
    pub functions: ByteString,
}

/// The code `runPhase` evaluates for `phase`: a non-empty variable's text, else the function.
pub fn phase_code(state: &ShellState, phase: &str) -> Vec<u8> {
    if let Some(var) = state.variable(phase) {
        if let Value::Scalar(s) = &var.value {
            if !s.as_bytes().is_empty() {
                return s.as_bytes().to_vec();
            }
        }
    }
    state
        .function_text(phase)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Replaces every output path by a placeholder of the same length (`/nix/store/` + the hash
/// part masked), so the same derivation change pattern gives the same key.
pub fn normalise(bytes: &[u8], output_paths: &[Vec<u8>]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for path in output_paths {
        if path.is_empty() {
            continue;
        }
        let placeholder = placeholder_for(path);
        let mut i = 0;
        while i + path.len() <= out.len() {
            if out[i..].starts_with(path) {
                out[i..i + path.len()].copy_from_slice(&placeholder);
                i += path.len();
            } else {
                i += 1;
            }
        }
    }
    out
}

fn placeholder_for(path: &[u8]) -> Vec<u8> {
    // Keep the name (after the hash) so outputs stay distinguishable; mask the hash part.
    let base = path
        .iter()
        .rposition(|&b| b == b'/')
        .map(|p| p + 1)
        .unwrap_or(0);
    let mut p = path.to_vec();
    for b in p[base..].iter_mut().take(32) {
        *b = b'0';
    }
    p
}

/// The inputs of a step, from the state before it.
pub fn layer_inputs(
    step: &str,
    before: Option<&ShellState>,
    output_paths: &[Vec<u8>],
    strict: bool,
) -> LayerInputs {
    let (variables, functions, code) = match before {
        None => (Vec::new(), ByteString::default(), Vec::new()),
        Some(state) => {
            let variables = state
                .variables
                .iter()
                .filter(|v| strict || !VOLATILE.contains(&v.name.as_str()))
                .map(|v| {
                    let attrs = serde_json::to_string(&v.attributes).unwrap_or_default();
                    let value = serde_json::to_vec(&v.value).unwrap_or_default();
                    (
                        v.name.clone(),
                        attrs,
                        ByteString(normalise(&value, output_paths)),
                    )
                })
                .collect();
            let functions = ByteString(normalise(state.functions.as_bytes(), output_paths));
            let code = normalise(&phase_code(state, step), output_paths);
            (variables, functions, code)
        }
    };
    LayerInputs {
        format: KEY_FORMAT.to_owned(),
        step: step.to_owned(),
        code: ByteString(code),
        variables,
        functions,
    }
}

/// The chained key: blake3 over the parent key and the canonical JSON of the inputs.
pub fn layer_key(parent: &str, inputs: &LayerInputs) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(parent.as_bytes());
    hasher.update(b"\0");
    hasher.update(&serde_json::to_vec(inputs).expect("inputs serialise"));
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_keep_length_and_name() {
        let out = b"/nix/store/abcdefghijklmnopqrstuvwxyz012345-hello".to_vec();
        let text = b"prefix=/nix/store/abcdefghijklmnopqrstuvwxyz012345-hello/bin".to_vec();
        let n = normalise(&text, std::slice::from_ref(&out));
        assert_eq!(n.len(), text.len());
        assert_eq!(
            n,
            b"prefix=/nix/store/00000000000000000000000000000000-hello/bin".to_vec()
        );
    }

    #[test]
    fn keys_chain_on_the_parent() {
        let inputs = layer_inputs("setup", None, &[], false);
        assert_ne!(layer_key("a", &inputs), layer_key("b", &inputs));
        assert_eq!(layer_key("a", &inputs), layer_key("a", &inputs));
    }
}
