//! The pinned upstream sources, without the network: `scripts/fetch-sources.sh` and
//! `tests/projects/orig-tarball.nix` given a temporary pin file (`CHECKPOINT_SOURCES_LOCK`,
//! `{ sources; lock; }`) that pins a made-up package to the sha256 of some bytes, and a
//! cached tarball holding those bytes or others.
//!
//! - a cached file that does not match its pin is an error naming the package, the version,
//!   the expected and the actual sha256, and the file is left as it was (never replaced);
//! - a matching one is accepted and listed as `<project> <path>`;
//! - the Nix side refuses the wrong bytes with both hashes, and adds the right ones to the
//!   store as the flat fixed-output path of the pinned hash.
//!
//! - the projects named on the command line are fetched and listed, and no other: a pin
//!   whose source apt does not have fails a run that fetches everything, not one that leaves
//!   it out; a name the pin file does not have is an error naming it;
//! - a pinned version apt no longer has is taken from another version of the same source
//!   package whose file list has the same orig tarball, and only when its bytes are the pinned
//!   ones.
//!
//! Every run pins bytes of its own (pid and time in them), so the store never already holds
//! the path the Nix test adds. The sha256 is computed with coreutils' `sha256sum`, not by the
//! code under test. Nothing here uses the network: where the script must ask apt, it is given
//! an apt of its own ([`local_apt`], `APT_CONFIG`) whose only source is a local repository of
//! source packages in the scratch directory, read through apt's `copy:` method.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use integration_tests::checkpoint::Scratch;
use integration_tests::nix::{repo_root, require_nix};

const PROJECT: &str = "fake";
const PACKAGE: &str = "fake-src";
const VERSION: &str = "1.2-3+test1";
const FILE: &str = "fake-src_1.2.orig.tar.xz";

/// Bytes no earlier run (and no other test of this run) produced.
fn unique_bytes(label: &str) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "checkpoint-builder tests/sources.rs: {label}, pid {}, {nanos} ns\n",
        std::process::id()
    )
    .into_bytes()
}

/// The sha256 of a file, by coreutils.
fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sha256sum: {e}"));
    assert!(out.status.success(), "sha256sum {} failed", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let hash = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(hash.len(), 64, "sha256sum printed {text:?}");
    hash
}

fn sha256_of_bytes(scratch: &Path, bytes: &[u8]) -> String {
    let path = scratch.join("hash-me");
    std::fs::write(&path, bytes).unwrap();
    let hash = sha256_of(&path);
    std::fs::remove_file(&path).unwrap();
    hash
}

/// A scratch directory with a pin file pinning [`FILE`] to `pinned` bytes, and a sources
/// directory whose [`FILE`] holds `cached` bytes.
struct Setup {
    /// Removed when the test ends (kept when it fails).
    _scratch: Scratch,
    lock: PathBuf,
    sources: PathBuf,
    tarball: PathBuf,
    expected: String,
}

/// A pin line: project, source package, version, orig tarball, sha256.
type Pin<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// Writes a pin file in the format of sources.lock.
fn write_lock(path: &Path, pins: &[Pin]) {
    let mut text = "# A pin file for tests/sources.rs, in the format of sources.lock.\n\
                    #\n\
                    # project source-package version orig-tarball sha256\n"
        .to_owned();
    for (project, package, version, file, sha256) in pins {
        text.push_str(&format!(
            "{project}  {package}  {version}  {file}  {sha256}\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn setup(label: &str, pinned: &[u8], cached: &[u8]) -> Setup {
    let scratch = Scratch::new(label).unwrap();
    let expected = sha256_of_bytes(scratch.path(), pinned);
    let lock = scratch.path().join("test.lock");
    write_lock(&lock, &[(PROJECT, PACKAGE, VERSION, FILE, &expected)]);
    let sources = scratch.path().join("sources");
    std::fs::create_dir(&sources).unwrap();
    let tarball = sources.join(FILE);
    std::fs::write(&tarball, cached).unwrap();
    Setup {
        _scratch: scratch,
        lock,
        sources,
        tarball,
        expected,
    }
}

fn fetch_sources(setup: &Setup) -> Output {
    fetch_sources_of(&setup.lock, &setup.sources, &[], None)
}

/// `fetch-sources.sh --dir SOURCES PROJECT...` with the pin file `lock`, and with the apt of
/// `apt_config` ([`local_apt`]) when given.
fn fetch_sources_of(
    lock: &Path,
    sources: &Path,
    projects: &[&str],
    apt_config: Option<&Path>,
) -> Output {
    let script = repo_root().join("scripts/fetch-sources.sh");
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .arg("--dir")
        .arg(sources)
        .args(projects)
        .env("CHECKPOINT_SOURCES_LOCK", lock)
        .env_remove("CHECKPOINT_SOURCES");
    if let Some(config) = apt_config {
        command.env("APT_CONFIG", config);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

/// One version of a source package in [`local_apt`]'s repository, with its files.
struct SourceVersion<'a> {
    package: &'a str,
    version: &'a str,
    /// File name and content.
    files: Vec<(&'a str, Vec<u8>)>,
}

/// An apt configuration (the file to give as `APT_CONFIG`) under `root` whose only source is
/// a local repository of `versions` (`deb-src [trusted=yes] copy:…`), each version's files in
/// a directory of their own, with apt's state and cache under `root` and none of the machine's
/// configuration read (`Dir::Etc::parts` is ours), its index built by `apt-get update`.
fn local_apt(root: &Path, versions: &[SourceVersion]) -> PathBuf {
    let repo = root.join("repo");
    let etc = root.join("etc");
    for dir in [
        repo.clone(),
        etc.join("apt.conf.d"),
        etc.join("sources.list.d"),
        etc.join("preferences.d"),
        root.join("state/lists/partial"),
        root.join("cache/archives/partial"),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
    }
    std::fs::write(root.join("state/status"), "").unwrap();
    let mut index = String::new();
    for (i, v) in versions.iter().enumerate() {
        let dir = format!("v{i}");
        std::fs::create_dir(repo.join(&dir)).unwrap();
        let (mut md5, mut sha) = (String::new(), String::new());
        for (name, bytes) in &v.files {
            let path = repo.join(&dir).join(name);
            std::fs::write(&path, bytes).unwrap();
            let out = Command::new("md5sum").arg(&path).output().unwrap();
            assert!(out.status.success(), "md5sum {}", path.display());
            let md5sum = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            md5.push_str(&format!("\n {md5sum} {} {name}", bytes.len()));
            sha.push_str(&format!("\n {} {} {name}", sha256_of(&path), bytes.len()));
        }
        index.push_str(&format!(
            "Package: {}\nVersion: {}\nDirectory: {dir}\nFiles:{md5}\nChecksums-Sha256:{sha}\n\n",
            v.package, v.version
        ));
    }
    std::fs::write(repo.join("Sources"), index).unwrap();
    std::fs::write(
        etc.join("sources.list"),
        format!("deb-src [trusted=yes] copy:{} ./\n", repo.display()),
    )
    .unwrap();
    let config = root.join("apt.conf");
    let d = |p: &str| root.join(p).display().to_string();
    std::fs::write(
        &config,
        format!(
            "Dir::Etc \"{}\";\n\
             Dir::Etc::sourcelist \"{}\";\n\
             Dir::Etc::sourceparts \"{}\";\n\
             Dir::Etc::parts \"{}\";\n\
             Dir::Etc::preferencesparts \"{}\";\n\
             Dir::State \"{}\";\n\
             Dir::State::status \"{}\";\n\
             Dir::Cache \"{}\";\n\
             APT::Sandbox::User \"root\";\n\
             Debug::NoLocking \"true\";\n",
            d("etc"),
            d("etc/sources.list"),
            d("etc/sources.list.d"),
            d("etc/apt.conf.d"),
            d("etc/preferences.d"),
            d("state"),
            d("state/status"),
            d("cache"),
        ),
    )
    .unwrap();
    let update = Command::new("apt-get")
        .args(["update", "-q"])
        .env("APT_CONFIG", &config)
        .output()
        .unwrap_or_else(|e| panic!("cannot run apt-get: {e}"));
    assert!(
        update.status.success(),
        "apt-get update of the local repository: {}",
        describe(&update)
    );
    config
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `output` is a successful run that fetched `PROJECT` alone (`what` says which run): its
/// stdout and `orig-tarballs.txt` are the one `<project> <path>` line.
fn assert_listed_alone(output: &Output, setup: &Setup, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        describe(output)
    );
    let line = format!("{PROJECT} {}\n", setup.tarball.display());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        line,
        "{what}: stdout is not the one `<project> <path>` line of {PROJECT}: {}",
        describe(output)
    );
    assert_eq!(
        std::fs::read_to_string(setup.sources.join("orig-tarballs.txt")).unwrap(),
        line,
        "{what}: orig-tarballs.txt is not that line"
    );
}

/// The files in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The line of `text` that contains `word` contains `hash`.
fn line_with_has(text: &str, word: &str, hash: &str) -> bool {
    text.lines().any(|l| l.contains(word) && l.contains(hash))
}

#[test]
fn fetch_sources_refuses_a_cached_tarball_that_does_not_match_its_pin() {
    let cached = unique_bytes("the wrong bytes");
    let setup = setup("sources-wrong", &unique_bytes("the pinned bytes"), &cached);
    let actual = sha256_of(&setup.tarball);
    assert_ne!(actual, setup.expected);
    let before = listing(&setup.sources);

    let output = fetch_sources(&setup);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "fetch-sources.sh accepted a file that does not match its pin: {}",
        describe(&output)
    );
    for (what, text) in [
        ("the package", PACKAGE),
        ("the version", VERSION),
        ("the file", FILE),
    ] {
        assert!(
            stderr.contains(text),
            "stderr does not name {what} ({text}): {}",
            describe(&output)
        );
    }
    assert!(
        line_with_has(&stderr, "expected", &setup.expected),
        "stderr has no `expected` line with the pinned sha256 {}: {}",
        setup.expected,
        describe(&output)
    );
    assert!(
        line_with_has(&stderr, "actual", &actual),
        "stderr has no `actual` line with the file's sha256 {actual}: {}",
        describe(&output)
    );
    assert!(
        output.stdout.is_empty(),
        "a failed fetch listed tarballs: {}",
        describe(&output)
    );

    // The file is left as it was and nothing was added beside it (no download, no list).
    let now = std::fs::read(&setup.tarball)
        .unwrap_or_else(|e| panic!("the cached file {} is gone: {e}", setup.tarball.display()));
    assert_eq!(now, cached, "the cached file was changed");
    let after: Vec<String> = listing(&setup.sources)
        .into_iter()
        .filter(|n| n != ".fetch.lock")
        .collect();
    assert_eq!(
        after,
        before,
        "files appeared or vanished in {}",
        setup.sources.display()
    );
}

#[test]
fn fetch_sources_accepts_a_cached_tarball_that_matches_its_pin() {
    let bytes = unique_bytes("the pinned bytes");
    let setup = setup("sources-right", &bytes, &bytes);

    let output = fetch_sources(&setup);
    assert_listed_alone(&output, &setup, "fetch-sources.sh");
    assert_eq!(
        std::fs::read(&setup.tarball).unwrap(),
        bytes,
        "the cached file was changed"
    );
}

/// `nix-instantiate --eval --read-write-mode` of orig-tarball.nix for [`PROJECT`], with
/// `{ sources; lock; }`; read-write so that the path really is added to the store.
fn eval_orig_tarball(setup: &Setup) -> Output {
    require_nix().unwrap();
    let expr = format!(
        "import (/. + \"{}\") {{ sources = \"{}\"; lock = /. + \"{}\"; }} \"{PROJECT}\"",
        repo_root()
            .join("tests/projects/orig-tarball.nix")
            .display(),
        setup.sources.display(),
        setup.lock.display()
    );
    Command::new("nix-instantiate")
        .args([
            "--option",
            "build-users-group",
            "",
            "--option",
            "substituters",
            "",
        ])
        .args(["--eval", "--read-write-mode", "--expr", &expr])
        .output()
        .unwrap_or_else(|e| panic!("cannot run nix-instantiate: {e}"))
}

#[test]
fn orig_tarball_nix_refuses_the_wrong_bytes_naming_both_hashes() {
    let setup = setup(
        "sources-nix-wrong",
        &unique_bytes("the pinned bytes"),
        &unique_bytes("the wrong bytes"),
    );
    let actual = sha256_of(&setup.tarball);

    let output = eval_orig_tarball(&setup);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "orig-tarball.nix accepted a file that does not match its pin: {}",
        describe(&output)
    );
    assert!(
        stderr.contains(&format!("expected sha256 {}", setup.expected)),
        "the error does not give the pinned sha256 {}: {}",
        setup.expected,
        describe(&output)
    );
    assert!(
        stderr.contains(&format!("actual sha256 {actual}")),
        "the error does not give the file's sha256 {actual}: {}",
        describe(&output)
    );
    for text in [PACKAGE, VERSION] {
        assert!(
            stderr.contains(text),
            "the error does not name {text}: {}",
            describe(&output)
        );
    }
    assert!(output.stdout.is_empty(), "{}", describe(&output));
}

#[test]
fn orig_tarball_nix_adds_the_right_bytes_as_the_pinned_fixed_output_path() {
    let bytes = unique_bytes("the pinned bytes");
    let setup = setup("sources-nix-right", &bytes, &bytes);

    let output = eval_orig_tarball(&setup);
    assert!(
        output.status.success(),
        "orig-tarball.nix failed: {}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .trim()
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a string: {}", describe(&output)));
    let path = Path::new(path);

    // What `fetchurl` with this sha256 and name gives: a flat fixed-output path.
    let fixed = Command::new("nix-store")
        .args(["--print-fixed-path", "sha256", &setup.expected, FILE])
        .output()
        .unwrap();
    assert!(
        fixed.status.success(),
        "nix-store --print-fixed-path: {}",
        describe(&fixed)
    );
    let fixed = String::from_utf8_lossy(&fixed.stdout);
    assert_eq!(
        path,
        Path::new(fixed.trim()),
        "not the flat fixed-output path of the pin"
    );

    let meta = std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{} is not in the store: {e}", path.display()));
    assert!(meta.is_file(), "{} is not a regular file", path.display());
    assert_eq!(
        sha256_of(path),
        setup.expected,
        "{}'s content is not the pinned one",
        path.display()
    );
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    let valid = Command::new("nix-store")
        .arg("--check-validity")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{} is not valid: {}",
        path.display(),
        describe(&valid)
    );
}

#[test]
fn fetch_sources_fetches_only_the_projects_it_is_given() {
    let bytes = unique_bytes("the pinned bytes");
    let setup = setup("sources-subset", &bytes, &bytes);
    // A second pin whose source apt does not have and that is not in the cache.
    let gone_sha = sha256_of_bytes(setup.sources.parent().unwrap(), b"never published");
    write_lock(
        &setup.lock,
        &[
            (PROJECT, PACKAGE, VERSION, FILE, &setup.expected),
            (
                "gone",
                "gone-src",
                "4.5-6",
                "gone-src_4.5.orig.tar.gz",
                &gone_sha,
            ),
        ],
    );
    let apt = local_apt(&setup.sources.parent().unwrap().join("apt"), &[]);

    // Everything: the missing pin fails the run, naming its package.
    let all = fetch_sources_of(&setup.lock, &setup.sources, &[], Some(&apt));
    assert!(
        !all.status.success(),
        "a pin apt does not have was fetched: {}",
        describe(&all)
    );
    assert!(
        String::from_utf8_lossy(&all.stderr).contains("apt has no source package gone-src"),
        "the failure does not name the missing source package: {}",
        describe(&all)
    );

    // The other project alone: listed, and nothing else fetched or needed.
    let output = fetch_sources_of(&setup.lock, &setup.sources, &[PROJECT], Some(&apt));
    assert_listed_alone(&output, &setup, &format!("fetching {PROJECT} alone"));
    assert_eq!(
        listing(&setup.sources),
        [".fetch.lock", FILE, "orig-tarballs.txt"],
        "files other than the requested tarball and the list in {}",
        setup.sources.display()
    );
    assert_eq!(std::fs::read(&setup.tarball).unwrap(), bytes);
}

#[test]
fn fetch_sources_refuses_a_project_the_pin_file_does_not_have_naming_it() {
    let bytes = unique_bytes("the pinned bytes");
    let setup = setup("sources-unknown", &bytes, &bytes);
    let before = listing(&setup.sources);

    let output = fetch_sources_of(
        &setup.lock,
        &setup.sources,
        &[PROJECT, "no-such-project"],
        None,
    );
    assert!(
        !output.status.success(),
        "an unknown project was accepted: {}",
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("error") && l.contains("no-such-project")),
        "no error line names the unknown project: {}",
        describe(&output)
    );
    assert!(
        output.stdout.is_empty(),
        "a failed fetch listed tarballs: {}",
        describe(&output)
    );
    let after: Vec<String> = listing(&setup.sources)
        .into_iter()
        .filter(|n| n != ".fetch.lock")
        .collect();
    assert_eq!(
        after,
        before,
        "a refused run changed {}",
        setup.sources.display()
    );
}

/// A setup whose cache is empty, and an apt whose repository has [`PACKAGE`] at versions other
/// than the pinned [`VERSION`]: `1.2-3+test0` with another orig tarball, `1.2-3+test2` with
/// [`FILE`] holding `served`.
fn revision_bump(label: &str, pinned: &[u8], served: &[u8]) -> (Setup, PathBuf) {
    let setup = setup(label, pinned, b"");
    std::fs::remove_file(&setup.tarball).unwrap();
    let apt = local_apt(
        &setup.sources.parent().unwrap().join("apt"),
        &[
            SourceVersion {
                package: PACKAGE,
                version: "1.2-3+test0",
                files: vec![("fake-src_1.1.orig.tar.xz", pinned.to_vec())],
            },
            SourceVersion {
                package: PACKAGE,
                version: "1.2-3+test2",
                files: vec![(FILE, served.to_vec())],
            },
        ],
    );
    (setup, apt)
}

#[test]
fn fetch_sources_takes_the_pinned_tarball_from_another_version_of_the_package() {
    let bytes = unique_bytes("the pinned bytes");
    let (setup, apt) = revision_bump("sources-bump", &bytes, &bytes);

    let output = fetch_sources_of(&setup.lock, &setup.sources, &[PROJECT], Some(&apt));
    assert_listed_alone(&output, &setup, "taking the tarball of another version");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("1.2-3+test2") && l.contains(VERSION)),
        "stderr does not say which version supplied the file: {}",
        describe(&output)
    );
    assert_eq!(
        std::fs::read(&setup.tarball).unwrap(),
        bytes,
        "the downloaded file is not the pinned bytes"
    );
    assert!(
        !std::fs::symlink_metadata(&setup.tarball)
            .unwrap()
            .file_type()
            .is_symlink(),
        "{} is a symlink",
        setup.tarball.display()
    );
}

#[test]
fn fetch_sources_refuses_another_versions_tarball_with_other_bytes() {
    let (setup, apt) = revision_bump(
        "sources-bump-wrong",
        &unique_bytes("the pinned bytes"),
        &unique_bytes("other bytes under the same name"),
    );

    let output = fetch_sources_of(&setup.lock, &setup.sources, &[PROJECT], Some(&apt));
    assert!(
        !output.status.success(),
        "a tarball whose bytes are not the pinned ones was accepted: {}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&setup.expected),
        "the failure does not give the pinned sha256: {}",
        describe(&output)
    );
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    assert_eq!(
        listing(&setup.sources),
        [".fetch.lock"],
        "something was kept in {}",
        setup.sources.display()
    );
}
