//! Which layers of an earlier build's checkpoint this build can reuse, and why not the rest.
//!
//! Pure: states and inputs in, a plan with one explanation per phase out. The rule (design §2,
//! `docs/keys.md`): walking the phases in order, phase *i* of the earlier build is reusable when
//! 1. it has the same name and position (same phase list up to there);
//! 2. its keyed inputs are equal: the code that ran, the functions, and every variable of the
//!    state before it, normalised (own output paths masked, volatile variables and variables
//!    that only later phases read left out);
//! 3. no variable that differs between the two builds' setup states was changed by the phase
//!    (a phase that rewrites a variable it does not key on, like `_multioutConfig` prepending to
//!    `installFlags` during configure, must rerun when that variable's input changed).
//!
//! Since the earlier build's states are the only record of what each phase produced, the states
//! compared for phases after the first are the earlier build's, with the variables that differ
//! between the two setups set to this build's values.

use crate::checkpoint::{RewritePair, Rewrites};
use crate::reuse::keys::{
    later_phase_variables, layer_inputs, normalise, output_masks, unkeyed, LayerInputs, Masks,
};
use crate::shell::{ShellState, Variable};
use std::collections::{BTreeMap, BTreeSet};

/// One layer of the earlier build, decoded from its checkpoint.
#[derive(Debug, Clone)]
pub struct BaseLayer {
    pub name: String,
    /// Shell state after the layer's step.
    pub state: ShellState,
    /// The keyed inputs recorded for it.
    pub inputs: LayerInputs,
    /// Recorded by an incremental restore: the tree is not what this phase left.
    pub taken_over: bool,
}

/// What happens to one phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseDecision {
    pub phase: String,
    pub reused: bool,
    pub reason: String,
}

/// The outcome of planning.
#[derive(Debug, Clone)]
pub struct ReusePlan {
    /// Number of phases (after setup) whose layers are reused: layers 0..=depth of the base.
    pub depth: usize,
    pub decisions: Vec<PhaseDecision>,
    /// Variables whose setup values differ between the builds (set to this build's values in
    /// the resumed state).
    pub changed_variables: BTreeSet<String>,
}

impl ReusePlan {
    /// The same plan restoring only the first `depth` phases (at most its own depth): the
    /// phase at `depth` runs, saying `why`, and every later one runs after it.
    pub fn cut_at(mut self, depth: usize, why: &str) -> ReusePlan {
        let depth = depth.min(self.depth);
        for (i, d) in self.decisions.iter_mut().enumerate().skip(depth) {
            d.reused = false;
            d.reason = if i == depth {
                format!("ran: {why}")
            } else {
                "ran: an earlier phase ran".into()
            };
        }
        self.depth = depth;
        self
    }
}

fn normalised_value(var: Option<&Variable>, masks: &Masks) -> Option<Vec<u8>> {
    var.map(|v| {
        let mut bytes = serde_json::to_vec(&v.attributes).unwrap_or_default();
        bytes.extend(serde_json::to_vec(&v.value).unwrap_or_default());
        normalise(&bytes, masks)
    })
}

/// Variables whose normalised values (or existence) differ between two states.
pub fn changed_variables(
    a: &ShellState,
    a_outputs: &[Vec<u8>],
    b: &ShellState,
    b_outputs: &[Vec<u8>],
) -> BTreeSet<String> {
    let (a_masks, b_masks) = (output_masks(a_outputs), output_masks(b_outputs));
    let names: BTreeSet<&str> = a
        .variables
        .iter()
        .chain(b.variables.iter())
        .map(|v| v.name.as_str())
        .collect();
    names
        .into_iter()
        .filter(|n| {
            normalised_value(a.variable(n), &a_masks) != normalised_value(b.variable(n), &b_masks)
        })
        .map(str::to_owned)
        .collect()
}

/// `state` with every variable in `names` set as in `source` (removed where `source` lacks it).
pub fn with_variables_from(
    state: &ShellState,
    names: &BTreeSet<String>,
    source: &ShellState,
) -> ShellState {
    let mut out = state.clone();
    out.variables.retain(|v| !names.contains(&v.name));
    out.variables.extend(
        source
            .variables
            .iter()
            .filter(|v| names.contains(&v.name))
            .cloned(),
    );
    out.variables.sort_by(|a, b| a.name.cmp(&b.name));
    out.export_order.retain(|n| !names.contains(n));
    for n in &source.export_order {
        if names.contains(n) {
            out.export_order.push(n.clone());
        }
    }
    out
}

/// Replaces each `old` byte string by its `new` (same length) everywhere in `state`: variable
/// values, functions, traps, cwd. Used to move an earlier build's state to this build's
/// output paths.
///
/// As a checkpoint's import rewrites the two attachments a state is stored in: the function
/// text as the bytes it is, the rest as its JSON (a rewrite that leaves that JSON unreadable
/// leaves the rest as it was).
pub fn rewrite_state(state: &ShellState, rewrites: &[(Vec<u8>, Vec<u8>)]) -> ShellState {
    let Ok(rewrites) = Rewrites::new(rewrites) else {
        return state.clone();
    };
    let rest = state.without_functions();
    let bytes = serde_json::to_vec(&rest).expect("state serialises");
    let mut moved = match rewrites.apply(&bytes) {
        Some(rewritten) => serde_json::from_slice(&rewritten).unwrap_or(rest),
        None => rest,
    };
    moved.functions = match rewrites.apply(state.functions.as_bytes()) {
        Some(rewritten) => rewritten.into(),
        None => state.functions.clone(),
    };
    moved
}

/// Explains why two inputs differ, in words for the log.
pub fn explain_difference(old: &LayerInputs, new: &LayerInputs) -> String {
    let mut parts = Vec::new();
    if old.format != new.format {
        parts.push(format!(
            "key format changed ({} → {})",
            old.format, new.format
        ));
    }
    if old.code != new.code {
        parts.push("its code changed".to_owned());
    }
    let old_vars: BTreeMap<&str, _> = old
        .variables
        .iter()
        .map(|(n, a, v)| (n.as_str(), (a, v)))
        .collect();
    let new_vars: BTreeMap<&str, _> = new
        .variables
        .iter()
        .map(|(n, a, v)| (n.as_str(), (a, v)))
        .collect();
    let mut changed: Vec<&str> = old_vars
        .keys()
        .chain(new_vars.keys())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|n| old_vars.get(n) != new_vars.get(n))
        .collect();
    if !changed.is_empty() {
        let more = changed.len().saturating_sub(8);
        changed.truncate(8);
        let mut text = format!(
            "variable{} {} changed",
            if changed.len() + more > 1 { "s" } else { "" },
            changed.join(", ")
        );
        if more > 0 {
            text.push_str(&format!(" (and {more} more)"));
        }
        parts.push(text);
    }
    if old.functions != new.functions {
        parts.push("shell functions changed".to_owned());
    }
    if parts.is_empty() {
        "inputs differ".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Plans reuse of `base` (layer 0 = setup, then one layer per phase) for a build whose setup
/// produced `setup` and whose phase list is `phases`.
///
/// `rewrites` maps the earlier build's output paths to this build's (same lengths).
pub fn plan(
    base: &[BaseLayer],
    base_outputs: &[Vec<u8>],
    setup: &ShellState,
    outputs: &[Vec<u8>],
    rewrites: &[(Vec<u8>, Vec<u8>)],
    phases: &[String],
    strict: bool,
) -> ReusePlan {
    plan_ignoring(
        base,
        base_outputs,
        setup,
        outputs,
        rewrites,
        phases,
        strict,
        &BTreeSet::new(),
        false,
    )
}

/// Variables that describe the source rather than how it is built: an incremental build after
/// a source change compares the phases after `patchPhase` without them (the new values still
/// reach the resumed state).
///
/// `SOURCE_DATE_EPOCH` is not one of them although a new source moves it (the stdenv takes it
/// from the newest source file): its effect is not only in the tree. Generated files and
/// objects carry it (a header written from it, `__DATE__`, which gcc takes from it, man page
/// dates) and make does not know they depend on it, so laying a source with another value
/// over the earlier tree would keep the earlier dates. A changed value therefore reruns the
/// phases from configure on the new tree.
pub const SOURCE_VARIABLES: &[&str] = &["src", "srcs", "curSrc"];

fn without(inputs: &LayerInputs, ignored: &BTreeSet<String>) -> LayerInputs {
    let mut out = inputs.clone();
    out.variables.retain(|(n, _, _)| !ignored.contains(n));
    out
}

/// [`plan`] with the variables in `ignored` left out of every comparison.
///
/// `accept_taken_over`: whether a layer an incremental build took over (its tree also holds
/// that build's products) may match. [`plan`] refuses it, since restoring such a layer as its
/// phase's result would bring build products the next phase takes as up to date. An
/// incremental restore accepts it: of the layers up to `buildPhase` it takes only the shell
/// states, and resumes on the tree after `buildPhase`, whose products it checks itself.
#[allow(clippy::too_many_arguments)]
pub fn plan_ignoring(
    base: &[BaseLayer],
    base_outputs: &[Vec<u8>],
    setup: &ShellState,
    outputs: &[Vec<u8>],
    rewrites: &[(Vec<u8>, Vec<u8>)],
    phases: &[String],
    strict: bool,
    ignored: &BTreeSet<String>,
    accept_taken_over: bool,
) -> ReusePlan {
    let mut decisions = Vec::new();
    let Some(base_setup) = base.first() else {
        return ReusePlan {
            depth: 0,
            decisions: phases
                .iter()
                .map(|p| PhaseDecision {
                    phase: p.clone(),
                    reused: false,
                    reason: "the checkpoint has no layers".into(),
                })
                .collect(),
            changed_variables: BTreeSet::new(),
        };
    };
    let changed = changed_variables(&base_setup.state, base_outputs, setup, outputs);
    let base_masks = output_masks(base_outputs);
    let mut depth = 0;
    let mut miss: Option<String> = None;
    for (i, phase) in phases.iter().enumerate() {
        if miss.is_none() {
            let reason = (|| -> Option<String> {
                let layer = base.get(i + 1)?;
                if layer.taken_over && !accept_taken_over {
                    return Some(
                        "the checkpoint's layer was taken over by an incremental build (its tree also holds build products)"
                            .into(),
                    );
                }
                if layer.name == format!("failed:{phase}") {
                    return Some("the earlier build failed in this phase".into());
                }
                if &layer.name != phase {
                    return Some(format!(
                        "the phase list differs here (the checkpoint has `{}`)",
                        layer.name
                    ));
                }
                let excluded = later_phase_variables(phases, i);
                // The state before this phase, as this build would have it.
                let before = if i == 0 {
                    setup.clone()
                } else {
                    with_variables_from(&rewrite_state(&base[i].state, rewrites), &changed, setup)
                };
                let ours = layer_inputs(phase, Some(&before), outputs, strict, &excluded);
                let (ours, theirs) = (without(&ours, ignored), without(&layer.inputs, ignored));
                if ours != theirs {
                    return Some(explain_difference(&theirs, &ours));
                }
                let rewritten: Vec<&String> = changed
                    .iter()
                    .filter(|n| !unkeyed(n, strict))
                    .filter(|n| !ignored.contains(*n))
                    .filter(|n| {
                        normalised_value(base[i].state.variable(n), &base_masks)
                            != normalised_value(layer.state.variable(n), &base_masks)
                    })
                    .collect();
                if !rewritten.is_empty() {
                    return Some(format!(
                        "it rewrites {} whose input value changed",
                        rewritten
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                None
            })();
            match (reason, base.get(i + 1)) {
                (None, Some(_)) => {
                    depth = i + 1;
                    decisions.push(PhaseDecision {
                        phase: phase.clone(),
                        reused: true,
                        reason: "restored: inputs unchanged".into(),
                    });
                    continue;
                }
                (None, None) => miss = Some("the checkpoint has no layer for it".into()),
                (Some(r), _) => miss = Some(r),
            }
            decisions.push(PhaseDecision {
                phase: phase.clone(),
                reused: false,
                reason: format!("ran: {}", miss.as_deref().unwrap_or("")),
            });
        } else {
            decisions.push(PhaseDecision {
                phase: phase.clone(),
                reused: false,
                reason: "ran: an earlier phase ran".into(),
            });
        }
    }
    ReusePlan {
        depth,
        decisions,
        changed_variables: changed,
    }
}

/// One earlier checkpoint as [`choose_base`] sees it.
#[derive(Debug)]
pub struct Candidate<'a> {
    pub layers: &'a [BaseLayer],
    /// Its output paths.
    pub outputs: Vec<Vec<u8>>,
    /// The path rewrites that move it to this build, or why it cannot be moved.
    pub rewrites: Result<Vec<RewritePair>, String>,
    /// Why its layers cannot be restored as they are although it can be moved (an output
    /// path whose length changed): only a rerun over its tree may use it.
    pub unmovable: Option<String>,
}

/// The base a build continues and how far.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Index of the chosen candidate.
    pub index: usize,
    pub rewrites: Vec<RewritePair>,
    pub plan: ReusePlan,
}

/// Plans every candidate (a given checkpoint, or development cache entries, newest first)
/// and keeps the deepest reuse, the newest on a tie. Also returns the reason the last
/// candidate that could not be moved to this build was skipped.
pub fn choose_base(
    candidates: &[Candidate<'_>],
    setup: &ShellState,
    outputs: &[Vec<u8>],
    phases: &[String],
    strict: bool,
) -> (Option<Choice>, Option<String>) {
    let mut best: Option<Choice> = None;
    let mut skipped = None;
    for (index, c) in candidates.iter().enumerate() {
        let rewrites = match &c.rewrites {
            Ok(r) => r,
            Err(reason) => {
                skipped = Some(reason.clone());
                continue;
            }
        };
        let mut plan = plan(
            c.layers, &c.outputs, setup, outputs, rewrites, phases, strict,
        );
        if let Some(why) = &c.unmovable {
            plan.depth = 0;
            for d in plan.decisions.iter_mut().filter(|d| d.reused) {
                d.reused = false;
                d.reason = format!("ran: {why}, so no layer is restored as it is");
            }
        }
        if best.as_ref().is_none_or(|b| plan.depth > b.plan.depth) {
            best = Some(Choice {
                index,
                rewrites: rewrites.clone(),
                plan,
            });
        }
    }
    (best, skipped)
}

/// The decisions when no base is used: every phase runs.
pub fn no_base_decisions(phases: &[String], had_candidates: bool) -> Vec<PhaseDecision> {
    let reason = if had_candidates {
        "ran: checkpoint not reused"
    } else {
        "ran: no earlier checkpoint to reuse"
    };
    phases
        .iter()
        .map(|p| PhaseDecision {
            phase: p.clone(),
            reused: false,
            reason: reason.into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::declare::{Attributes, Value};
    use crate::shell::ByteString;
    use std::collections::HashSet;

    fn var(name: &str, value: &str) -> Variable {
        Variable {
            name: name.into(),
            attributes: Attributes::default(),
            value: Value::Scalar(ByteString::from(value)),
        }
    }

    fn state(vars: &[(&str, &str)]) -> ShellState {
        let mut variables: Vec<Variable> = vars.iter().map(|(n, v)| var(n, v)).collect();
        variables.sort_by(|a, b| a.name.cmp(&b.name));
        ShellState {
            variables,
            ..ShellState::default()
        }
    }

    #[test]
    fn a_rewritten_state_moves_the_function_text_as_bytes_and_the_rest_as_its_json() {
        let old = b"/nix/store/aaaa-x".to_vec();
        let new = b"/nix/store/bbbb-x".to_vec();
        let mut s = state(&[("out", "/nix/store/aaaa-x"), ("other", "kept")]);
        // Not UTF-8: its JSON form is hex, but the import rewrites the bytes.
        let mut text = b"f () \n{ \n    echo /nix/store/aaaa-x/bin \xff\n}\n".to_vec();
        s.function_names = vec![("f".into(), false)];
        s.functions = ByteString(text.clone());
        s.cwd = ByteString::from("/nix/store/aaaa-x/src");
        let moved = rewrite_state(&s, &[(old.clone(), new.clone())]);
        let at = text.windows(old.len()).position(|w| w == old).unwrap();
        text[at..at + new.len()].copy_from_slice(&new);
        assert_eq!(moved.functions.as_bytes(), &text[..]);
        assert_eq!(moved.cwd, ByteString::from("/nix/store/bbbb-x/src"));
        assert_eq!(
            moved.variable("out").map(|v| &v.value),
            Some(&Value::Scalar(ByteString::from("/nix/store/bbbb-x")))
        );
        assert_eq!(moved.variable("other"), s.variable("other"));
        assert_eq!(
            ShellState {
                functions: s.functions.clone(),
                ..moved.without_functions()
            },
            ShellState {
                cwd: moved.cwd.clone(),
                variables: moved.variables.clone(),
                ..s.clone()
            }
        );
        // Nothing to rewrite: the same state.
        assert_eq!(
            rewrite_state(&s, &[(b"/nowhere".to_vec(), b"/nothere".to_vec())]),
            s
        );
    }

    fn phases() -> Vec<String> {
        ["configurePhase", "buildPhase", "installPhase"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// A base "build" of three phases from `setup`, where configure appends to installFlags.
    fn base_from(setup: &ShellState, out: &[Vec<u8>]) -> Vec<BaseLayer> {
        let ph = phases();
        let mut layers = vec![BaseLayer {
            name: "setup".into(),
            state: setup.clone(),
            inputs: layer_inputs("setup", None, out, false, &HashSet::new()),
            taken_over: false,
        }];
        let mut current = setup.clone();
        for (i, p) in ph.iter().enumerate() {
            let inputs = layer_inputs(
                p,
                Some(&current),
                out,
                false,
                &later_phase_variables(&ph, i),
            );
            let mut next = current.clone();
            if p == "configurePhase" {
                let flags = match current.variable("installFlags").map(|v| &v.value) {
                    Some(Value::Scalar(s)) => format!("pc= {s}"),
                    _ => "pc=".into(),
                };
                next.variables.retain(|v| v.name != "installFlags");
                next.variables.push(var("installFlags", &flags));
                next.variables.sort_by(|a, b| a.name.cmp(&b.name));
            }
            layers.push(BaseLayer {
                name: p.clone(),
                state: next.clone(),
                inputs,
                taken_over: false,
            });
            current = next;
        }
        layers
    }

    #[test]
    fn install_phase_change_reuses_up_to_build() {
        let out_a = vec![b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".to_vec()];
        let out_b = vec![b"/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-x".to_vec()];
        let a = state(&[
            ("out", "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"),
            ("installPhase", "make install"),
            ("buildFlags", "-O2"),
        ]);
        let b = state(&[
            ("out", "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-x"),
            ("installPhase", "make install DESTDIR="),
            ("buildFlags", "-O2"),
        ]);
        let base = base_from(&a, &out_a);
        let rw = vec![(out_a[0].clone(), out_b[0].clone())];
        let p = plan(&base, &out_a, &b, &out_b, &rw, &phases(), false);
        assert_eq!(p.depth, 2, "{:?}", p.decisions);
        assert!(
            p.decisions[2].reason.contains("installPhase"),
            "{:?}",
            p.decisions[2]
        );
        // Strict mode keys on every variable: installPhase is keyed from the first phase on.
        let strict = plan(&base, &out_a, &b, &out_b, &rw, &phases(), true);
        assert_eq!(strict.depth, 0);
    }

    #[test]
    fn a_cut_plan_restores_less_and_says_why_the_next_phase_runs() {
        let out_a = vec![b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".to_vec()];
        let out_b = vec![b"/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-x".to_vec()];
        let a = state(&[("out", "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x")]);
        let b = state(&[("out", "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-x")]);
        let rw = vec![(out_a[0].clone(), out_b[0].clone())];
        let p = plan(
            &base_from(&a, &out_a),
            &out_a,
            &b,
            &out_b,
            &rw,
            &phases(),
            false,
        );
        assert_eq!(p.depth, 3, "{:?}", p.decisions);
        let cut = p.clone().cut_at(1, "a later layer holds a piece");
        assert_eq!(cut.depth, 1);
        let reasons: Vec<(&str, bool)> = cut
            .decisions
            .iter()
            .map(|d| (d.reason.as_str(), d.reused))
            .collect();
        assert_eq!(
            reasons,
            [
                ("restored: inputs unchanged", true),
                ("ran: a later layer holds a piece", false),
                ("ran: an earlier phase ran", false),
            ]
        );
        // Never deeper than the plan itself.
        assert_eq!(p.cut_at(5, "no").depth, 3);
    }

    #[test]
    fn a_taken_over_layer_matches_only_for_an_incremental_restore() {
        let out = vec![b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".to_vec()];
        let a = state(&[("buildFlags", "-O2")]);
        let mut base = base_from(&a, &out);
        base[1].taken_over = true;
        let refused = plan(&base, &out, &a, &out, &[], &phases(), false);
        assert_eq!(refused.depth, 0);
        assert!(
            refused.decisions[0].reason.contains("taken over"),
            "{:?}",
            refused.decisions
        );
        let none = BTreeSet::new();
        let accepted = plan_ignoring(&base, &out, &a, &out, &[], &phases(), false, &none, true);
        assert_eq!(accepted.depth, 3, "{:?}", accepted.decisions);
    }

    #[test]
    fn build_flag_change_reruns_from_build() {
        let out = vec![b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".to_vec()];
        let a = state(&[("buildFlags", "-O2")]);
        let b = state(&[("buildFlags", "-O3")]);
        let p = plan(&base_from(&a, &out), &out, &b, &out, &[], &phases(), false);
        assert_eq!(p.depth, 1);
        assert!(
            p.decisions[1].reason.contains("buildFlags"),
            "{:?}",
            p.decisions
        );
        assert_eq!(p.decisions[2].reason, "ran: an earlier phase ran");
    }

    #[test]
    fn a_variable_rewritten_by_an_earlier_phase_forces_a_rerun_there() {
        let out = vec![b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".to_vec()];
        let a = state(&[("installFlags", "A")]);
        let b = state(&[("installFlags", "B")]);
        let p = plan(&base_from(&a, &out), &out, &b, &out, &[], &phases(), false);
        assert_eq!(p.depth, 0, "{:?}", p.decisions);
        assert!(
            p.decisions[0].reason.contains("rewrites installFlags"),
            "{:?}",
            p.decisions
        );
    }

    #[test]
    fn identical_builds_reuse_everything() {
        let out = vec![b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".to_vec()];
        let a = state(&[("x", "1")]);
        let p = plan(&base_from(&a, &out), &out, &a, &out, &[], &phases(), false);
        assert_eq!(p.depth, 3);
    }

    #[test]
    fn the_deepest_base_wins_and_the_newest_on_a_tie() {
        let out_a = vec![b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".to_vec()];
        let setup = state(&[
            ("out", "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"),
            ("installPhase", "make install"),
            ("buildFlags", "-O2"),
        ]);
        let other_flags = state(&[
            ("out", "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"),
            ("installPhase", "make install"),
            ("buildFlags", "-O0"),
        ]);
        let shallow = base_from(&other_flags, &out_a);
        let deep = base_from(&setup, &out_a);
        let candidate = |layers| Candidate {
            layers,
            outputs: out_a.clone(),
            rewrites: Ok(Vec::new()),
            unmovable: None,
        };
        let moved_away = Candidate {
            layers: &deep,
            outputs: out_a.clone(),
            rewrites: Err("it cannot move".into()),
            unmovable: None,
        };
        let list = [
            moved_away,
            candidate(&shallow),
            candidate(&deep),
            candidate(&deep),
        ];
        let (choice, skipped) = choose_base(&list, &setup, &out_a, &phases(), false);
        let choice = choice.expect("a base");
        assert_eq!(
            choice.index, 2,
            "deepest, and the first of two equally deep"
        );
        assert_eq!(choice.plan.depth, 3);
        assert_eq!(skipped.as_deref(), Some("it cannot move"));
        let (none, _) = choose_base(&[], &setup, &out_a, &phases(), false);
        assert!(none.is_none());
    }

    #[test]
    fn without_a_base_every_phase_runs_and_says_why() {
        let d = no_base_decisions(&phases(), true);
        assert!(d
            .iter()
            .all(|d| !d.reused && d.reason == "ran: checkpoint not reused"));
        let d = no_base_decisions(&phases(), false);
        assert_eq!(d[0].reason, "ran: no earlier checkpoint to reuse");
        assert_eq!(d.len(), 3);
    }
}
