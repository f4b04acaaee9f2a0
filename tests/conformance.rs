//! Conformance cases: every file in `tests/cases/` built with the stock builder and with
//! checkpoint-builder; status, exit code, phase order and normalised outputs must agree
//! (see `tests/cases/README.md` for what each case proves).
//!
//! `CHECKPOINT_BUILDER` names the binary under test (default: `scripts/build-static.sh`);
//! `CHECKPOINT_BUILDER=/bin/bash` runs the suite against bash itself, which checks the
//! cases and the harness. `CHECKPOINT_TEST_STDENV` swaps the stdenv file.

use integration_tests::{check_case, Expectation, Outcome};

use Expectation::{Divergent, Identical};
use Outcome::{ExitCode, NixFailure, Success};

/// One test per case file: `name, "file.nix", stock outcome, expectation`.
macro_rules! cases {
    ($($test:ident, $file:literal, $outcome:expr, $expect:expr;)*) => {
        /// Every case file the macro lists.
        const LISTED: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $test() {
                match check_case($file, $outcome, $expect) {
                    Ok(summary) => eprintln!("{summary}"),
                    Err(report) => panic!("{report}"),
                }
            }
        )*
    };
}

cases! {
    case_01_autotools_like, "01-autotools-like.nix", Success, Identical;
    case_02_function_across_phases, "02-function-across-phases.nix", Success, Identical;
    case_03_assoc_and_arrays, "03-assoc-and-arrays.nix", Success, Identical;
    case_04_integer_readonly_nameref, "04-integer-readonly-nameref.nix", Success, Identical;
    case_04c_error_message_location, "04c-error-message-location.nix", Success,
        Divergent("bash error messages inside functions name the builder's restore file as where the function was defined");
    case_04b_readonly_assignment_fails, "04b-readonly-assignment-fails.nix", ExitCode(1), Identical;
    case_05_unset_declared_empty, "05-unset-declared-empty.nix", Success, Identical;
    case_06_exports, "06-exports.nix", Success, Identical;
    case_07a_source_root_spaces_nested, "07a-source-root-spaces-nested.nix", Success, Identical;
    case_07b_set_source_root, "07b-set-source-root.nix", Success, Identical;
    case_07c_two_directories_fail, "07c-two-directories-fail.nix", ExitCode(1), Identical;
    case_08a_dont_unpack, "08a-dont-unpack.nix", Success, Identical;
    case_08b_no_source_fail, "08b-no-source-fail.nix", ExitCode(1), Identical;
    case_09_working_directory, "09-working-directory.nix", Success, Identical;
    case_10a_custom_phases, "10a-custom-phases.nix", Success, Identical;
    case_10b_custom_phases_structured, "10b-custom-phases-structured.nix", Success, Identical;
    case_10c_unknown_phase_fail, "10c-unknown-phase-fail.nix", ExitCode(127), Identical;
    case_11a_explicit_phases_frozen, "11a-explicit-phases-frozen.nix", Success, Identical;
    case_11b_post_phases_frozen, "11b-post-phases-frozen.nix", Success, Identical;
    case_12_flags_read_at_phase_start, "12-flags-read-at-phase-start.nix", Success, Identical;
    case_13_phase_variables, "13-phase-variables.nix", Success, Identical;
    case_14_phase_text_arguments, "14-phase-text-arguments.nix", Success, Identical;
    case_15a_build_command, "15a-build-command.nix", Success, Identical;
    case_15b_build_command_pass_as_file, "15b-build-command-pass-as-file.nix", Success, Identical;
    case_16_structured_attrs, "16-structured-attrs.nix", Success, Identical;
    case_17a_multiple_outputs, "17a-multiple-outputs.nix", Success, Identical;
    case_17b_missing_output_fail, "17b-missing-output-fail.nix", NixFailure, Identical;
    case_18a_fail_make, "18a-fail-make.nix", ExitCode(2), Identical;
    case_18b_fail_exit7, "18b-fail-exit7.nix", ExitCode(7), Identical;
    case_18c_failure_hook, "18c-failure-hook.nix", Success, Identical;
    case_18d_fail_errexit_in_function, "18d-fail-errexit-in-function.nix", ExitCode(1), Identical;
    case_19a_exit_hook, "19a-exit-hook.nix", Success, Identical;
    case_19b_succeed_on_failure, "19b-succeed-on-failure.nix", Success, Identical;
    case_19c_exit_0_early, "19c-exit-0-early.nix", Success, Identical;
    case_20a_nounset_off_in_phases, "20a-nounset-off-in-phases.nix", Success, Identical;
    case_20b_nounset_in_hooks_fail, "20b-nounset-in-hooks-fail.nix", ExitCode(1), Identical;
    case_21a_options_carried, "21a-options-carried.nix", Success, Identical;
    case_21b_set_u_carried_fail, "21b-set-u-carried-fail.nix", ExitCode(1), Identical;
    case_22_pipefail, "22-pipefail.nix", Success, Identical;
    case_23_umask_ulimit, "23-umask-ulimit.nix", Success, Identical;
    case_24_traps, "24-traps.nix", Success, Identical;
    case_24b_return_trap_after_last_phase, "24b-return-trap-after-last-phase.nix", Success, Identical;
    case_25_exec_redirect, "25-exec-redirect.nix", Success, Identical;
    case_26_source_date_epoch_home, "26-source-date-epoch-home.nix", Success, Identical;
    case_27a_nix_debug_6, "27a-nix-debug-6.nix", Success, Identical;
    case_27b_nix_debug_7, "27b-nix-debug-7.nix", Success, Identical;
    case_27c_nix_debug_invalid_fail, "27c-nix-debug-invalid-fail.nix", ExitCode(1), Identical;
    case_27d_build_stats_no_env_vars, "27d-build-stats-no-env-vars.nix", Success, Identical;
    case_28_mkshell_like, "28-mkshell-like.nix", Success, Identical;
    case_29a_setup_hooks_strictdeps_false, "29a-setup-hooks-strictdeps-false.nix", Success, Identical;
    case_29b_setup_hooks_strictdeps_true, "29b-setup-hooks-strictdeps-true.nix", Success, Identical;
    case_30_no_hook_rerun, "30-no-hook-rerun.nix", Success, Identical;
    case_31_background_job_pid, "31-background-job-pid.nix", Success,
        Divergent("bash is the sandbox's PID 1 in stock, a child of the builder here");
    case_32a_custom_builder_script, "32a-custom-builder-script.nix", Success, Identical;
    case_32b_custom_args, "32b-custom-args.nix", Success, Identical;
    case_34_patches, "34-patches.nix", Success, Identical;
    case_35_unpack_hooks_srcs, "35-unpack-hooks-srcs.nix", Success, Identical;
    case_36_make_flags, "36-make-flags.nix", Success, Identical;
    case_37a_bash_compat, "37a-bash-compat.nix", Success, Identical;
    case_38a_xtrace_nesting, "38a-xtrace-nesting.nix", Success, Identical;
    case_38b_xtrace_nesting_build_command, "38b-xtrace-nesting-build-command.nix", Success, Identical;
    case_39a_setup_time_traps, "39a-setup-time-traps.nix", Success, Identical;
    case_40_funcname_frames, "40-funcname-frames.nix", Success, Identical;
    case_40b_frames_unnested_builder, "40b-frames-unnested-builder.nix", Success, Identical;
    case_41_bash_source_in_hook_function, "41-bash-source-in-hook-function.nix", Success, Identical;
    case_42_one_process_across_phases, "42-one-process-across-phases.nix", Success, Identical;
}

/// Every `tests/cases/*.nix` has a test above, and every listed file exists.
#[test]
fn every_case_file_is_listed() {
    let dir = integration_tests::nix::cases_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".nix"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/cases/*.nix and the list in conformance.rs differ"
    );
}

/// A phase failing under errexit prints what it prints in stock: its own output, then
/// whatever bash prints while it unwinds the function frames (bash 5.2 before the upstream
/// fix: one `pop_var_context` line per frame, in stock too), nothing more and nothing less.
/// Only the `FILE: line N: ` prefix of bash's messages may differ (case 04c).
#[test]
fn failing_phases_print_what_stock_prints() {
    use integration_tests::nix::{builder_binary, cases_dir, nix_build};
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    for (file, phase, own_line) in [
        ("18a-fail-make.nix", "buildPhase", "about to fail"),
        (
            "18d-fail-errexit-in-function.nix",
            "installPhase",
            "failingStep runs in installPhase",
        ),
    ] {
        let case = cases_dir().join(file);
        let stock = nix_build(&case, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        let ours = nix_build(&case, Some(builder)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            !stock.success && !ours.success,
            "{file}: both builds must fail\n--- stock\n{}\n--- ours\n{}",
            stock.log_tail(20),
            ours.log_tail(20)
        );
        let expected = integration_tests::failure_output(&stock, phase);
        assert!(
            expected.iter().any(|l| l == own_line),
            "{file}: the stock log has no `{own_line}` after the {phase} header, so this test \
             proves nothing:\n{}",
            stock.log_tail(20)
        );
        let printed = integration_tests::failure_output(&ours, phase);
        assert_eq!(
            printed,
            expected,
            "{file}: what the failing {phase} printed differs from stock\n--- our log (tail)\n{}",
            ours.log_tail(20)
        );
    }
}

/// Signals the build was started with ignored (`nohup`, a background job of a
/// non-interactive shell, some CI runners) stay ignored in every phase, as they do in the
/// stock builder's bash, which lists them as `trap -- '' SIGHUP`: neither the builder's own
/// signal forwarding nor Rust's reset of SIGPIPE in children may turn them back to their
/// default action.
#[test]
fn signals_ignored_at_start_stay_ignored_in_every_phase() {
    use integration_tests::nix::{builder_binary, nix_build_ignoring_signals, repo_root};
    let case = repo_root().join("tests/signal-cases/inherited-ignored-signals.nix");
    let signals = ["HUP", "INT", "QUIT", "PIPE"];
    let stock = nix_build_ignoring_signals(&case, None, &signals).unwrap_or_else(|e| panic!("{e}"));
    assert!(stock.success, "stock: {}", stock.log_tail(30));
    let out = stock.out_paths.first().expect("an output").clone();
    let traps = std::fs::read_to_string(out.join("traps-install")).unwrap();
    for signal in ["SIGHUP", "SIGPIPE"] {
        assert!(
            traps.contains(&format!("trap -- '' {signal}")),
            "the stock build did not start with {signal} ignored, so this test proves nothing:\n{traps}"
        );
    }
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let ours = nix_build_ignoring_signals(&case, Some(builder), &signals)
        .unwrap_or_else(|e| panic!("{e}"));
    let comparison =
        integration_tests::compare_builds(&stock, &ours).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        comparison.differences.is_empty(),
        "{}",
        comparison.differences.join("\n\n")
    );
}
