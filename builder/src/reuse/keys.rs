//! Layer keys: what a layer's identity is made of, and the chained hash over it.
//!
//! Pure. A layer's *inputs* are the step name, the code bash runs for it as resolved in the
//! state before it (the phase variable's text, else the phase function's), and that state
//! normalised: every output path replaced by a same-length placeholder, volatile variables
//! dropped. The key chains the parent's key (like Docker's layer cache), so a layer can only
//! match when everything before it matched too. The normalisation rules are documented in
//! `docs/keys.md`.

use crate::checkpoint::Rewrites;
use crate::shell::declare::Value;
use crate::shell::{ByteString, ShellState};
use serde::Serialize;
use std::collections::HashSet;

/// Bumped whenever what goes into a key changes: old keys then never match.
/// (v2: the build directory is masked in the key, see [`layer_key`]; v3: an output path's
/// name part is masked too, see [`output_masks`].)
pub const KEY_FORMAT: &str = "checkpoint-builder-key-v3";

/// Variables whose value says nothing about the build's result (log plumbing, parallelism).
/// Strict mode keys on them too.
pub const VOLATILE: &[&str] = &[
    "NIX_BUILD_CORES",
    "NIX_LOG_FD",
    "SSL_CERT_FILE",
    "NIX_SSL_CERT_FILE",
    "TERM",
];

/// The builder's own controls: which checkpoint to reuse and how. Never keyed, not even in
/// strict mode (a base is given exactly when a build differs from it in this).
pub const CONTROLS: &[&str] = &[
    "checkpointBase",
    "checkpointBaseTrust",
    "checkpointCache",
    "checkpointStrict",
];

/// True when `name` is left out of keys in the given mode (before the later-phase rule).
pub fn unkeyed(name: &str, strict: bool) -> bool {
    CONTROLS.contains(&name) || (!strict && VOLATILE.contains(&name))
}

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

/// The masks that normalise bytes for keys: every output path replaced by a token naming its
/// position in `output_paths` (`/nix/store/<output 0>`), so a new hash or a rename (a
/// version bump, of any length) gives the same key, and the first ten characters of each
/// output's hash wherever they appear by `<seed>`: that is the `-frandom-seed` nixpkgs
/// derives from `$out` (see `docs/keys.md`). Built once per set of outputs; applied with
/// [`normalise`].
pub fn output_masks(output_paths: &[Vec<u8>]) -> Masks {
    let paths = output_paths
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(i, p)| {
            let store = &p[..base_name_start(p)];
            (
                p.clone(),
                [store, format!("<output {i}>").as_bytes()].concat(),
            )
        });
    let seeds = output_paths
        .iter()
        .filter_map(|p| random_seed_of(p))
        .map(|s| (s, b"<seed>".to_vec()));
    Masks::new(paths.chain(seeds).collect())
}

/// Byte strings replaced by tokens of any length, for keys: one left-to-right scan, the
/// first pair (in order) that matches at a position wins.
#[derive(Debug, Clone)]
pub struct Masks {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// A substring searcher for each pair's pattern, in the order of `pairs`: the scan jumps
    /// from one occurrence to the next instead of trying every byte.
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl Masks {
    /// Empty patterns are dropped.
    pub fn new(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        pairs.retain(|(old, _)| !old.is_empty());
        let finders = pairs
            .iter()
            .map(|(old, _)| memchr::memmem::Finder::new(old).into_owned())
            .collect();
        Masks { pairs, finders }
    }

    fn apply(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        // Each pattern's next occurrence at or after `i` (searched again once `i` passes it).
        let mut next: Vec<Option<usize>> = self.finders.iter().map(|f| f.find(data)).collect();
        let mut i = 0;
        loop {
            for (at, finder) in next.iter_mut().zip(&self.finders) {
                if at.is_some_and(|p| p < i) {
                    *at = finder.find(&data[i..]).map(|p| p + i);
                }
            }
            // No pattern starts between `i` and the nearest occurrence: those bytes are kept.
            let Some(p) = next.iter().flatten().min().copied() else {
                break;
            };
            let (old, token) = self
                .pairs
                .iter()
                .find(|(old, _)| data[p..].starts_with(old))
                .expect("a pattern occurs where one was found");
            out.extend_from_slice(&data[i..p]);
            out.extend_from_slice(token);
            i = p + old.len();
        }
        out.extend_from_slice(&data[i..]);
        out
    }
}

/// `bytes` with `masks` applied (a full path wins over its seed).
pub fn normalise(bytes: &[u8], masks: &Masks) -> Vec<u8> {
    masks.apply(bytes)
}

/// The `-frandom-seed` value nixpkgs' reproducible-builds hook derives from a store path: the
/// first ten characters of its base name (of its hash part).
pub fn random_seed_of(path: &[u8]) -> Option<Vec<u8>> {
    let base = path.iter().rposition(|&b| b == b'/').map(|p| p + 1)?;
    let name = &path[base..];
    (name.len() >= 33 && name[32] == b'-').then(|| name[..10].to_vec())
}

fn base_name_start(path: &[u8]) -> usize {
    path.iter()
        .rposition(|&b| b == b'/')
        .map(|p| p + 1)
        .unwrap_or(0)
}

/// The variables that belong to `phase` and that no earlier phase reads: the phase variable
/// itself and, for `fooPhase`, `preFoo postFoo dontFoo doFoo fooFlags fooFlagsArray fooTarget
/// fooTargets`. (`docs/keys.md` states the rule.)
pub fn phase_variables(phase: &str) -> Vec<String> {
    let mut names = vec![phase.to_owned()];
    if let Some(stem) = phase.strip_suffix("Phase").filter(|s| !s.is_empty()) {
        let mut chars = stem.chars();
        let first = chars.next().expect("non-empty stem");
        let upper: String = first.to_uppercase().chain(chars).collect();
        for prefix in ["pre", "post", "dont", "do"] {
            names.push(format!("{prefix}{upper}"));
        }
        for suffix in ["Flags", "FlagsArray", "Target", "Targets"] {
            names.push(format!("{stem}{suffix}"));
        }
    }
    names
}

/// Variables left out of the key of the phase at `position` in `phases`: those of every later
/// phase (minus any that belong to this phase or an earlier one too).
pub fn later_phase_variables(phases: &[String], position: usize) -> HashSet<String> {
    let mut later: HashSet<String> = phases
        .iter()
        .skip(position + 1)
        .flat_map(|p| phase_variables(p))
        .collect();
    for p in phases.iter().take(position + 1) {
        for v in phase_variables(p) {
            later.remove(&v);
        }
    }
    later
}

/// The inputs of a step, from the state before it. `excluded` names variables left out of the
/// key (those only later phases read); strict mode ignores it and keeps volatile ones too.
pub fn layer_inputs(
    step: &str,
    before: Option<&ShellState>,
    output_paths: &[Vec<u8>],
    strict: bool,
    excluded: &HashSet<String>,
) -> LayerInputs {
    let masks = output_masks(output_paths);
    let (variables, functions, code) = match before {
        None => (Vec::new(), ByteString::default(), Vec::new()),
        Some(state) => {
            let variables = state
                .variables
                .iter()
                .filter(|v| !unkeyed(&v.name, strict) && (strict || !excluded.contains(&v.name)))
                .map(|v| {
                    let attrs = serde_json::to_string(&v.attributes).unwrap_or_default();
                    let value = serde_json::to_vec(&v.value).unwrap_or_default();
                    (v.name.clone(), attrs, ByteString(normalise(&value, &masks)))
                })
                .collect();
            let functions = ByteString(normalise(state.functions.as_bytes(), &masks));
            let code = normalise(&phase_code(state, step), &masks);
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

/// The chained key: blake3 over the parent key and the canonical JSON of the inputs, with
/// every occurrence of the build directory `build_top` (the checkpoint's own, as its index
/// records it) masked by NUL bytes, which canonical JSON never contains.
///
/// The mask keeps a key recomputable after an import: importing layers into a build whose
/// build directory differs rewrites the recorded inputs to the new directory (same length),
/// and the imported key must still be the hash of what the layer records (docs/trust.md).
pub fn layer_key(parent: &str, inputs: &LayerInputs, build_top: &[u8]) -> String {
    let json = serde_json::to_vec(inputs).expect("inputs serialise");
    let masked = match Rewrites::new(&[(build_top.to_vec(), vec![0u8; build_top.len()])]) {
        Ok(mask) if !build_top.is_empty() => mask.apply(&json).unwrap_or(json),
        _ => json,
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(parent.as_bytes());
    hasher.update(b"\0");
    hasher.update(&masked);
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Masks::apply`] as it reads: every position, the first pair that matches there.
    fn masked_byte_by_byte(masks: &Masks, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            match masks
                .pairs
                .iter()
                .find(|(old, _)| data[i..].starts_with(old))
            {
                Some((old, token)) => {
                    out.extend_from_slice(token);
                    i += old.len();
                }
                None => {
                    out.push(data[i]);
                    i += 1;
                }
            }
        }
        out
    }

    #[test]
    fn masks_jump_between_occurrences_as_a_byte_by_byte_scan_would_mask() {
        // Patterns that overlap, share prefixes, contain one another and repeat, in both
        // orders, over texts made of their own letters.
        let pattern_sets: [&[&[u8]]; 4] = [
            &[b"aba", b"ab", b"b"],
            &[b"b", b"ab", b"aba"],
            &[b"aa", b"aaa", b"ba"],
            &[b"/nix/store/abc-x", b"abc", b"c-x/"],
        ];
        let mut state = 0x2545_f491_u32;
        let mut random = |n: u32| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state % n
        };
        for patterns in pattern_sets {
            let masks = Masks::new(
                patterns
                    .iter()
                    .enumerate()
                    .map(|(k, p)| (p.to_vec(), format!("<{k}>").into_bytes()))
                    .collect(),
            );
            let letters: Vec<u8> = patterns.concat();
            for len in 0..40 {
                for _ in 0..25 {
                    let data: Vec<u8> = (0..len)
                        .map(|_| letters[random(letters.len() as u32) as usize])
                        .collect();
                    assert_eq!(
                        masks.apply(&data),
                        masked_byte_by_byte(&masks, &data),
                        "{:?} over {:?}",
                        patterns,
                        String::from_utf8_lossy(&data)
                    );
                }
            }
        }
    }

    #[test]
    fn output_paths_and_seeds_become_tokens() {
        let out = b"/nix/store/abcdefghijklmnopqrstuvwxyz012345-hello".to_vec();
        let text =
            b"prefix=/nix/store/abcdefghijklmnopqrstuvwxyz012345-hello/bin -frandom-seed=abcdefghij"
                .to_vec();
        let n = normalise(&text, &output_masks(std::slice::from_ref(&out)));
        assert_eq!(
            n,
            b"prefix=/nix/store/<output 0>/bin -frandom-seed=<seed>".to_vec()
        );
    }

    #[test]
    fn a_rename_normalises_alike_and_outputs_stay_distinct() {
        let a = [
            b"/nix/store/abcdefghijklmnopqrstuvwxyz012345-lua-5.4.4".to_vec(),
            b"/nix/store/bbcdefghijklmnopqrstuvwxyz012345-lua-5.4.4-dev".to_vec(),
        ];
        let b = [
            b"/nix/store/zzcdefghijklmnopqrstuvwxyz012345-lua-5.4.10".to_vec(),
            b"/nix/store/yycdefghijklmnopqrstuvwxyz012345-lua-5.4.10-dev".to_vec(),
        ];
        let text = |o: &[Vec<u8>]| [o[0].as_slice(), b" ", o[1].as_slice()].concat();
        let (na, nb) = (
            normalise(&text(&a), &output_masks(&a)),
            normalise(&text(&b), &output_masks(&b)),
        );
        assert_eq!(na, nb);
        // Swapped outputs do not normalise alike.
        let swapped = [b[1].clone(), b[0].clone()];
        assert_ne!(na, normalise(&text(&b), &output_masks(&swapped)));
    }

    #[test]
    fn later_phase_variables_follow_the_naming_rule() {
        let phases: Vec<String> = [
            "unpackPhase",
            "configurePhase",
            "buildPhase",
            "installPhase",
            "installCheckPhase",
            "myCustom",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let at_build = later_phase_variables(&phases, 2);
        for v in [
            "installPhase",
            "postInstall",
            "installFlags",
            "installFlagsArray",
            "doInstallCheck",
            "installCheckTarget",
            "myCustom",
        ] {
            assert!(at_build.contains(v), "{v}");
        }
        for v in ["buildFlags", "preBuild", "configureFlags", "makeFlags"] {
            assert!(!at_build.contains(v), "{v}");
        }
        let at_install = later_phase_variables(&phases, 3);
        assert!(!at_install.contains("installFlags"));
        assert!(at_install.contains("installCheckFlags"));
    }

    #[test]
    fn keys_chain_on_the_parent() {
        let inputs = layer_inputs("setup", None, &[], false, &HashSet::new());
        assert_ne!(
            layer_key("a", &inputs, b"/build"),
            layer_key("b", &inputs, b"/build")
        );
        assert_eq!(
            layer_key("a", &inputs, b"/build"),
            layer_key("a", &inputs, b"/build")
        );
    }

    #[test]
    fn keys_mask_the_build_directory() {
        let at = |top: &str| LayerInputs {
            code: ByteString(format!("cd {top}/src").into_bytes()),
            ..layer_inputs("buildPhase", None, &[], false, &HashSet::new())
        };
        let (a, b) = (at("/tmp/nix-build-x-0"), at("/tmp/nix-build-x-1"));
        assert_eq!(
            layer_key("p", &a, b"/tmp/nix-build-x-0"),
            layer_key("p", &b, b"/tmp/nix-build-x-1")
        );
        assert_ne!(
            layer_key("p", &a, b"/tmp/nix-build-x-0"),
            layer_key("p", &b, b"/tmp/nix-build-x-0")
        );
    }
}
