//! The command line's shape: what is a build, what each command accepts, and the help texts
//! and the README's CLI section checked against the clap definition.

use super::*;
use crate::oci::Compression;
use clap::CommandFactory;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let mut all = vec!["checkpoint-builder"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all)
}

#[test]
fn the_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn anything_but_a_command_is_a_build_with_every_argument() {
    let stdenv = [
        "-e",
        "/nix/store/x-source-stdenv.sh",
        "/nix/store/y-default-builder.sh",
    ];
    assert_eq!(classify(&os(&stdenv)), Invocation::Build(os(&stdenv)));
    assert_eq!(classify(&[]), Invocation::Build(vec![]));
    assert_eq!(
        classify(&os(&["./my-builder.sh", "--help"])),
        Invocation::Build(os(&["./my-builder.sh", "--help"]))
    );
    // `build` hands on what follows it, options included.
    assert_eq!(
        classify(&os(&["build", "--help", "-e", "x"])),
        Invocation::Build(os(&["--help", "-e", "x"]))
    );
    for word in [
        "inspect",
        "export-oci",
        "__capture",
        "--help",
        "-h",
        "help",
        "--version",
    ] {
        assert_eq!(classify(&os(&[word, "x"])), Invocation::Command, "{word}");
    }
    assert_eq!(classify(&os(&["-V"])), Invocation::Build(os(&["-V"])));
}

#[test]
fn each_command_takes_only_its_own_options() {
    assert!(parse(&["restore", "ck", "--after", "p", "dir", "--keep-setid"]).is_ok());
    for bad in [
        &["verify", "ck", "--keep-setid"][..],
        &["inspect", "ck", "--after", "p"],
        &["restore", "ck", "dir"],
        &["restore", "ck", "--after", "p", "dir", "--json"],
        &["diff", "a"],
        &["cache", "ls"],
        &["cache", "gc", "dir"],
        &["cache", "gc", "dir", "--max-size", "lots"],
        &["cache", "frob", "dir"],
        &["shell", "ck"],
        &["frob"],
    ] {
        let e = parse(bad).expect_err(&format!("{bad:?}"));
        assert_eq!(e.exit_code(), 2, "{bad:?}");
    }
    match parse(&["cache", "gc", "d", "--max-size", "10G"])
        .unwrap()
        .command
    {
        Command::Cache(cache::Args {
            command: cache::CacheCommand::Gc { max_size, .. },
        }) => assert_eq!(max_size, 10 << 30),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shell_takes_at_or_after_once() {
    for flag in ["--at", "--after"] {
        match parse(&["shell", "--cache", "c", "hello", flag, "installPhase"])
            .unwrap()
            .command
        {
            Command::Shell(a) => {
                assert_eq!(a.after, "installPhase");
                assert_eq!(a.cache.as_deref(), Some(Path::new("c")));
                assert_eq!(a.checkpoint, PathBuf::from("hello"));
            }
            other => panic!("{other:?}"),
        }
    }
    let e = parse(&["shell", "ck", "--after", "a", "--at", "b"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().contains("cannot be used multiple times"),
        "{e}"
    );
}

#[test]
fn export_oci_arguments() {
    let args = |a: &[&str]| {
        let mut all = vec!["export-oci"];
        all.extend_from_slice(a);
        parse(&all).map(|cli| match cli.command {
            Command::ExportOci(a) => a,
            other => panic!("{other:?}"),
        })
    };
    let a = args(&["ck", "dir"]).unwrap();
    assert_eq!(
        (a.after, a.tag.as_str(), a.compression),
        (None, "latest", Compression::Gzip)
    );
    let a = args(&[
        "--after",
        "buildPhase",
        "ck",
        "--tag",
        "b",
        "dir",
        "--compression",
        "zstd",
    ])
    .unwrap();
    assert_eq!(a.after.as_deref(), Some("buildPhase"));
    assert_eq!((a.tag.as_str(), a.compression), ("b", Compression::Zstd));
    assert_eq!(a.dir, PathBuf::from("dir"));
    for bad in [
        &["ck"][..],
        &["ck", "dir", "extra"],
        &["ck", "dir", "--after"],
        &["ck", "dir", "--compression", "xz"],
        &["ck", "dir", "--json"],
    ] {
        assert!(args(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn help_and_version_succeed_usage_errors_exit_2() {
    for ok in [
        &["--help"][..],
        &["--version"],
        &["verify", "--help"],
        &["help", "cache"],
    ] {
        assert_eq!(parse(ok).unwrap_err().exit_code(), 0, "{ok:?}");
    }
    assert!(parse(&["-V"]).is_err_and(|e| e.exit_code() == 2));
    let e = parse(&["verify", "ck", "--keep-setid"]).unwrap_err();
    let message = usage_message(&e.render().to_string());
    assert!(
        message.starts_with("unexpected argument '--keep-setid' found"),
        "{message}"
    );
    assert!(
        message.contains("Usage: checkpoint-builder verify"),
        "{message}"
    );
    assert!(!message.contains("error:"), "{message}");
}

/// Every visible command, as the words that name it (`["cache", "gc"]`), with its clap
/// definition; the top level is `[]`.
fn commands() -> Vec<(Vec<String>, clap::Command)> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() == "help" {
                continue;
            }
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            walk(sub, p, out);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, Vec::new(), &mut out);
    out
}

/// `--help` of every command against `builder/tests/help/*.txt`; `UPDATE_HELP=1` rewrites
/// the files.
#[test]
fn help_texts_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/help");
    let update = std::env::var_os("UPDATE_HELP").is_some_and(|v| v == "1");
    let mut expected_files = BTreeSet::new();
    let mut stale = Vec::new();
    for (path, mut cmd) in commands() {
        let name = if path.is_empty() {
            "checkpoint-builder".to_owned()
        } else {
            path.join("-")
        };
        let file = dir.join(format!("{name}.txt"));
        expected_files.insert(file.clone());
        let text = cmd.render_long_help().to_string();
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &text).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("{}:\n{text}", file.display()));
        }
    }
    let present: BTreeSet<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        present, expected_files,
        "one snapshot per command, no others"
    );
    assert!(
        stale.is_empty(),
        "help texts differ from their snapshots (UPDATE_HELP=1 rewrites them):\n{}",
        stale.join("\n")
    );
}

/// The README's "The CLI" synopsis: `checkpoint-builder WORDS…` lines for every leaf command
/// that together name exactly its long options (visible aliases may be named too).
#[test]
fn the_readme_names_every_command_and_option() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("\n## The CLI\n")
        .nth(1)
        .expect("a `## The CLI` section")
        .split("\n## ")
        .next()
        .unwrap();
    let synopsis: Vec<Vec<&str>> = section
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("checkpoint-builder "))
        .map(|l| l.split('#').next().unwrap().split_whitespace().collect())
        .collect();
    assert!(!synopsis.is_empty());
    let mut documented = BTreeSet::new();
    for (path, cmd) in commands() {
        if path.is_empty() || cmd.has_subcommands() {
            continue;
        }
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let lines: Vec<&Vec<&str>> = synopsis.iter().filter(|l| l.starts_with(&words)).collect();
        assert!(!lines.is_empty(), "no README line for `{}`", path.join(" "));
        let named: BTreeSet<&str> = lines
            .iter()
            .flat_map(|l| l.iter())
            .flat_map(|w| w.split(['[', ']', '|']))
            .filter(|w| w.starts_with("--"))
            .collect();
        let longs: BTreeSet<&str> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_id() != "help")
            .filter_map(|a| a.get_long())
            .collect();
        let aliases: BTreeSet<&str> = cmd
            .get_arguments()
            .flat_map(|a| a.get_visible_aliases().unwrap_or_default())
            .collect();
        for long in &longs {
            assert!(
                named.contains(format!("--{long}").as_str()),
                "README: `{}` does not name --{long}",
                path.join(" ")
            );
        }
        for flag in &named {
            let bare = flag.trim_start_matches("--");
            assert!(
                longs.contains(bare) || aliases.contains(bare),
                "README: `{}` names {flag}, which it does not take",
                path.join(" ")
            );
        }
        documented.insert(words.join(" "));
    }
    // No README line for a command that does not exist.
    for line in &synopsis {
        assert!(
            documented
                .iter()
                .any(|c| line.join(" ").starts_with(c.as_str())),
            "README names `{}`, which is no command",
            line.join(" ")
        );
    }
}
