//! The names a shell state may carry: `shopt` and `set -o` options, trap conditions and
//! function names. Pure tables and predicates; the checks that use them live in
//! [`super::validate`].
//!
//! Each of these names ends up as a bare word in generated bash code, so each must come from a
//! closed list or a conservative character set: nothing here may accept a byte that bash would
//! read as anything but part of one word.

/// `shopt` options of bash 5.0–5.3 (`shopt -p` on Debian 12's bash 5.2, plus the few that only
/// other 5.x releases or build options have). Sorted for binary search.
pub const SHOPT_OPTIONS: &[&str] = &[
    "array_expand_once",
    "assoc_expand_once",
    "autocd",
    "bash_source_fullpath",
    "cdable_vars",
    "cdspell",
    "checkhash",
    "checkjobs",
    "checkwinsize",
    "cmdhist",
    "compat31",
    "compat32",
    "compat40",
    "compat41",
    "compat42",
    "compat43",
    "compat44",
    "complete_fullquote",
    "direxpand",
    "dirspell",
    "dotglob",
    "execfail",
    "expand_aliases",
    "extdebug",
    "extglob",
    "extquote",
    "failglob",
    "force_fignore",
    "globasciiranges",
    "globskipdots",
    "globstar",
    "gnu_errfmt",
    "histappend",
    "histreedit",
    "histverify",
    "hostcomplete",
    "huponexit",
    "inherit_errexit",
    "interactive_comments",
    "lastpipe",
    "lithist",
    "localvar_inherit",
    "localvar_unset",
    "login_shell",
    "mailwarn",
    "no_empty_cmd_completion",
    "nocaseglob",
    "nocasematch",
    "noexpand_translation",
    "nullglob",
    "patsub_replacement",
    "progcomp",
    "progcomp_alias",
    "promptvars",
    "restricted_shell",
    "shift_verbose",
    "sourcepath",
    "syslog_history",
    "varredir_close",
    "xpg_echo",
];

/// `set -o` options of bash 5.x (`set -o` on bash 5.2). Sorted.
pub const SET_OPTIONS: &[&str] = &[
    "allexport",
    "braceexpand",
    "emacs",
    "errexit",
    "errtrace",
    "functrace",
    "hashall",
    "histexpand",
    "history",
    "ignoreeof",
    "interactive-comments",
    "keyword",
    "monitor",
    "noclobber",
    "noexec",
    "noglob",
    "nolog",
    "notify",
    "nounset",
    "onecmd",
    "physical",
    "pipefail",
    "posix",
    "privileged",
    "verbose",
    "vi",
    "xtrace",
];

/// Bash's reserved words: never a function name (a header `if () ` would not parse as one).
pub const RESERVED_WORDS: &[&str] = &[
    "!", "[[", "]]", "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for",
    "function", "if", "in", "select", "then", "time", "until", "while", "{", "}",
];

/// Bash 5.2's builtins (`compgen -b`). A function of one of these names shadows the builtin;
/// `builtin` itself would capture every `builtin …` the restore code runs.
pub const BUILTINS: &[&str] = &[
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
];

/// Whether `name` is a `shopt` option bash 5 knows.
pub fn is_shopt_option(name: &str) -> bool {
    SHOPT_OPTIONS.binary_search(&name).is_ok()
}

/// Whether `name` is a `set -o` option bash 5 knows.
pub fn is_set_option(name: &str) -> bool {
    SET_OPTIONS.binary_search(&name).is_ok()
}

/// Whether `name` is a bash builtin.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Whether `name` is a condition `trap -p` prints: `EXIT`, `ERR`, `DEBUG`, `RETURN`, or a
/// signal as bash names it on Linux (`SIGHUP` … `SIGSYS`, `SIGRTMIN`, `SIGRTMIN+N`,
/// `SIGRTMAX-N`, `SIGRTMAX`).
pub fn is_trap_condition(name: &str) -> bool {
    const PSEUDO: &[&str] = &["DEBUG", "ERR", "EXIT", "RETURN"];
    const SIGNALS: &[&str] = &[
        "SIGABRT",
        "SIGALRM",
        "SIGBUS",
        "SIGCHLD",
        "SIGCONT",
        "SIGFPE",
        "SIGHUP",
        "SIGILL",
        "SIGINT",
        "SIGIO",
        "SIGKILL",
        "SIGPIPE",
        "SIGPROF",
        "SIGPWR",
        "SIGQUIT",
        "SIGRTMAX",
        "SIGRTMIN",
        "SIGSEGV",
        "SIGSTKFLT",
        "SIGSTOP",
        "SIGSYS",
        "SIGTERM",
        "SIGTRAP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGUSR1",
        "SIGUSR2",
        "SIGVTALRM",
        "SIGWINCH",
        "SIGXCPU",
        "SIGXFSZ",
    ];
    if PSEUDO.contains(&name) || SIGNALS.contains(&name) {
        return true;
    }
    let offset = |rest: &str, max: u32| {
        !rest.is_empty()
            && !rest.starts_with('0')
            && rest.bytes().all(|b| b.is_ascii_digit())
            && rest.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
    };
    name.strip_prefix("SIGRTMIN+")
        .is_some_and(|r| offset(r, 15))
        || name
            .strip_prefix("SIGRTMAX-")
            .is_some_and(|r| offset(r, 14))
}

/// Whether `name` is a function name the restore code accepts: a conservative subset of what
/// bash allows, `[A-Za-z_][A-Za-z0-9_.:-]*`, not a reserved word and not `builtin` (every
/// `builtin …` of the restore code would call it). This admits every function of nixpkgs'
/// `setup.sh` and its hooks, and never a byte bash reads as quoting, expansion, an operator
/// or the end of a word.
pub fn is_function_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        && !RESERVED_WORDS.contains(&name)
        && name != "builtin"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in [SHOPT_OPTIONS, SET_OPTIONS] {
            let mut sorted = table.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, table);
        }
    }

    /// Every option and signal the installed bash lists is known (the tables may hold more:
    /// other 5.x releases).
    #[test]
    fn tables_cover_the_installed_bash() {
        let run = |script: &str| {
            let out = std::process::Command::new("bash")
                .args(["--norc", "-c", script])
                .output()
                .expect("bash runs");
            String::from_utf8(out.stdout).unwrap()
        };
        for name in run("shopt -p").lines().filter_map(|l| l.split(' ').nth(2)) {
            assert!(is_shopt_option(name), "shopt {name}");
        }
        for name in run("set -o")
            .lines()
            .filter_map(|l| l.split_whitespace().next())
        {
            assert!(is_set_option(name), "set -o {name}");
        }
        for n in 1..=64 {
            if n == 32 || n == 33 {
                continue; // glibc's own, bash has no name for them
            }
            let name = run(&format!("kill -l {n}"));
            let name = format!("SIG{}", name.trim());
            assert!(is_trap_condition(&name), "signal {n}: {name}");
        }
        for name in run("compgen -b").lines() {
            assert!(is_builtin(name), "builtin {name}");
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "nullglob;touch /tmp/x",
            "nullglob ",
            "",
            "$(id)",
            "extglob\n",
            "NULLGLOB",
        ] {
            assert!(!is_shopt_option(bad), "{bad:?}");
            assert!(!is_set_option(bad), "{bad:?}");
        }
        for bad in [
            "EXIT;id",
            "SIGRTMIN+16",
            "SIGRTMIN+01",
            "SIGRTMAX-0",
            "SIGRTMIN+",
            "exit",
            "SIG",
            "0",
            "",
        ] {
            assert!(!is_trap_condition(bad), "{bad:?}");
        }
        for good in [
            "EXIT",
            "ERR",
            "SIGPIPE",
            "SIGRTMIN+15",
            "SIGRTMAX-1",
            "SIGRTMAX",
        ] {
            assert!(is_trap_condition(good), "{good:?}");
        }
        for bad in [
            "x=1", "a b", "f;id", "f()", "$(id)", "-f", "1abc", "", "builtin", "if", "{", "a/b",
            "a\nb", "é", "a'b", "a\"b", "a`b", "a\\b", "a#b", "a*b",
        ] {
            assert!(!is_function_name(bad), "{bad:?}");
        }
        for good in [
            "genericBuild",
            "_multioutConfig",
            "a.b",
            "pkg-config",
            "ns::f",
            "_",
        ] {
            assert!(is_function_name(good), "{good:?}");
        }
    }
}
