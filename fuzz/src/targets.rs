//! The fuzz targets: each takes one input (bytes) and calls a parser of the builder the way
//! hostile data reaches it, asserting the properties that must hold for any input (a
//! manifest that parses re-serialises to the same bytes, an accepted shell state yields a
//! restore script). A panic is a finding; so is an abort, a signal or a hang (seen by the
//! supervisor in `main.rs`). Seeds are made here too, from real data: a checkpoint written
//! by the builder's own writer, a state dump of a real bash, hand-written ninja files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use checkpoint_builder::checkpoint::manifest::Index;
use checkpoint_builder::checkpoint::{
    Checkpoint, CheckpointWriter, ContentHash, Layer, LayerMeta, Snapshotter, State,
};
use checkpoint_builder::reuse::incremental::ninja;
use checkpoint_builder::shell::declare::parse_declarations;
use checkpoint_builder::shell::restore::{restore_script, restore_tail};
use checkpoint_builder::shell::state::{parse_state, DumpSections, ProcessFacts, ResourceLimit};
use checkpoint_builder::shell::{ByteString, ShellState};

/// The nonce of seed dumps (the parser is given the same one).
pub const NONCE: &str = "fz";

/// Every target, by name.
pub const TARGETS: &[&str] = &["manifest", "state", "pack", "ninja"];

/// Tokens the mutator inserts, per target.
pub fn dictionary(target: &str) -> Vec<Vec<u8>> {
    let words: &[&str] = match target {
        "manifest" | "pack" => &[
            "\"format_version\":2,",
            "\"kind\":\"dir\"",
            "\"kind\":\"file\"",
            "\"kind\":\"symlink\"",
            "\"kind\":\"char-device\"",
            "\"hardlink\":\"a\"",
            "\"xattrs\":{\"user.a\":\"b\"}",
            "\"path\":\"\"",
            "\"path\":\"..\"",
            "\"path\":\"a/../b\"",
            "%00",
            "%2F",
            "%ZZ",
            "%e9",
            "18446744073709551615",
            "9223372036854775808",
            "-9223372036854775808",
            "-1",
            "1e308",
            "0.5",
            "\"mode\":\"7777\"",
            "\"mode\":\"4755\"",
            "\"mtime_ns\":1000000000",
            "\"deleted\":[\"a\"]",
            "\"encoding\":\"raw\"",
            "\"encoding\":\"zstd\"",
            "\"encoding\":\"patch\"",
            "{}",
            "[]",
            "null",
            "\\u0000",
            "\\ud800",
            "\"",
            "\\",
            ",",
            ":",
        ],
        "state" => &[
            "declare -- ",
            "declare -a ",
            "declare -A ",
            "declare -x ",
            "declare -n ",
            "declare -i ",
            "declare -r ",
            "=\"",
            "$'\\n'",
            "$'\\x00'",
            "[0]=",
            "[\"k\"]=",
            "( ",
            " )",
            "\\\"",
            "\n#CPB-fz variables\n",
            "\n#CPB-fz functions\n",
            "\n#CPB-fz capture\n",
            "\n#CPB-fz set\n",
            "\n#CPB-fz shopt\n",
            "\n#CPB-fz traps\n",
            "\n#CPB-fz function-names\n",
            "\n#CPB-fz dirstack\n",
            "umask 77\n",
            "rlimit 1 18446744073709551615 0\n",
            "environ 99999999999\n",
            "cwd zz\n",
            "fd1 00\n",
            "declare -f x\n",
            "x () \n{ \n    :\n}\n",
            "trap -- 'x' EXIT\n",
            "set -o errexit\n",
            "shopt -s extglob\n",
            "\"kind\":\"assoc\"",
            "\"kind\":\"indexed\"",
        ],
        _ => &[
            "rule ",
            "build ",
            "pool ",
            "default ",
            "include ",
            "subninja ",
            "command = ",
            "depfile = ",
            "rspfile = ",
            "rspfile_content = ",
            "$in",
            "$out",
            "${in}",
            "$\n",
            "$ ",
            "$:",
            "$$",
            "$",
            " | ",
            " || ",
            " |@ ",
            ": ",
            "phony",
            "\n  ",
            "\n",
            "=",
            "# ninja log v5\n",
            "# ninja log v6\n",
            "# ninja log v7\n",
            "\t",
            "0\t1\t2\t",
        ],
    };
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

// ---------------------------------------------------------------------------------------
// Targets

/// Layer and index files: parse; what parses must re-serialise to the same bytes, and
/// fold without panicking; the escaped-path decoder on the same bytes.
pub fn manifest(data: &[u8]) {
    let file = Path::new("fuzz.json");
    if let Ok(layer) = Layer::from_bytes(data, file) {
        assert_eq!(layer.to_bytes(), data, "an accepted layer is not canonical");
        let _ = layer.validate();
        let _ = State::default().apply(&layer);
    }
    if let Ok(index) = Index::from_bytes(data, file) {
        assert_eq!(index.to_bytes(), data, "an accepted index is not canonical");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = checkpoint_builder::checkpoint::RelPath::from_escaped(s) {
            assert_eq!(p.escaped(), s, "an accepted escaped path is not canonical");
        }
    }
}

/// The shell state: `declare -p` output, the capture section, a whole dump, and the JSON
/// a checkpoint stores; every accepted state must give restore code.
pub fn state(data: &[u8]) {
    let _ = parse_declarations(data);
    let _ = ProcessFacts::parse(data);
    let sections = DumpSections::split(data, NONCE);
    if let Ok(state) = parse_state(&sections) {
        let _ = restore_script(&state);
        let _ = restore_tail(&state);
    }
    if let Ok(state) = serde_json::from_slice::<ShellState>(data) {
        let _ = restore_script(&state);
        let _ = restore_tail(&state);
    }
}

/// A ninja manifest (the part before `\n#LOG\n`; includes read the same text) and a ninja
/// log (the part after) translated between the manifest and itself.
pub fn ninja_target(data: &[u8]) {
    let (manifest, log) = match find(data, b"\n#LOG\n") {
        Some(i) => (&data[..i], &data[i + 6..]),
        None => (data, &b""[..]),
    };
    let mut read = |path: &[u8]| -> Option<Vec<u8>> {
        (path == b"build.ninja" || path.ends_with(b".ninja")).then(|| manifest.to_vec())
    };
    if let Ok(m) = ninja::evaluate(b"build.ninja", &mut read) {
        if let Some(t) = ninja::translate_log(log, &m, &m) {
            // The same manifest on both sides: nothing may move.
            assert_eq!(
                t.moved, 0,
                "a log translated onto its own manifest moved entries"
            );
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The pack reader and everything `verify` and `restore` do, on a checkpoint directory
/// whose one file is replaced: the input is `RELATIVE-PATH\n` + the file's new bytes.
pub struct PackTarget {
    dir: PathBuf,
    target: PathBuf,
    pristine: BTreeMap<String, Vec<u8>>,
    last: Option<String>,
    index_dirty: bool,
}

impl PackTarget {
    /// A pack target working in `work` on a copy of the checkpoint whose files are `files`.
    pub fn new(work: &Path, files: BTreeMap<String, Vec<u8>>) -> Self {
        let dir = work.join("checkpoint");
        let _ = std::fs::remove_dir_all(&dir);
        for (name, bytes) in &files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, bytes).expect("write");
        }
        PackTarget {
            dir,
            target: work.join("restored"),
            pristine: files,
            last: None,
            index_dirty: false,
        }
    }

    /// The position in the index of the layer file `name` (`layers/NNN-….json`).
    fn layer_position(&self, name: &str) -> Option<usize> {
        let rest = name.strip_prefix("layers/")?;
        rest.get(..3)?.parse().ok()
    }

    pub fn run(&mut self, data: &[u8]) {
        if let Some(last) = self.last.take() {
            std::fs::write(self.dir.join(&last), &self.pristine[&last]).expect("write");
        }
        if std::mem::take(&mut self.index_dirty) {
            std::fs::write(self.dir.join("index.json"), &self.pristine["index.json"])
                .expect("write");
        }
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            return;
        };
        let Ok(name) = std::str::from_utf8(&data[..nl]) else {
            return;
        };
        if !self.pristine.contains_key(name) {
            return;
        }
        let bytes = &data[nl + 1..];
        std::fs::write(self.dir.join(name), bytes).expect("write");
        self.last = Some(name.to_owned());
        // A changed layer file keeps the index naming it, so the input reaches what comes
        // after the hash check (the index is put back with the layer).
        if let Some(i) = self.layer_position(name) {
            let path = Path::new("index.json");
            let mut index =
                Index::from_bytes(&self.pristine["index.json"], path).expect("the seed index");
            index.layers[i].blake3 = ContentHash::of(bytes);
            std::fs::write(self.dir.join("index.json"), index.to_bytes()).expect("write");
            self.index_dirty = true;
        }
        let Ok(ck) = Checkpoint::open(&self.dir) else {
            return;
        };
        let verified = ck.verify().is_ok();
        let layers = ck.layers().len() as u32;
        for layer in ck.layers() {
            for hash in layer.meta.attachments.values() {
                let _ = ck.read_blob(hash);
            }
        }
        if layers == 0 {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.target);
        let restored = ck.restore(layers - 1, "tree", &self.target);
        // What verify accepts, restore must restore.
        if verified {
            if let Err(e) = restored {
                panic!("verify accepted the checkpoint but restore failed: {e}");
            }
        }
        let _ = make_writable(&self.target);
        let _ = std::fs::remove_dir_all(&self.target);
    }
}

fn make_writable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_dir() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        for e in std::fs::read_dir(dir)?.flatten() {
            let _ = make_writable(&e.path());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Seeds

/// A small real checkpoint written by the builder's writer in `work/seed-src`: three
/// layers over a tree with files (small raw, compressible, incompressible), a symlink, a
/// fifo-free subdirectory, a hardlink, an attachment; its files by relative path.
pub fn seed_checkpoint(work: &Path) -> BTreeMap<String, Vec<u8>> {
    let src = work.join("seed-src");
    let ck = work.join("seed-ck");
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir_all(&ck);
    std::fs::create_dir_all(src.join("tree/sub")).expect("mkdir");
    let tree = src.join("tree");
    let mut writer = CheckpointWriter::create(&ck).expect("a writer");
    let mut snap = Snapshotter::new(vec![("tree".into(), tree.clone())]).expect("a snapshotter");
    let layer = |writer: &mut CheckpointWriter, snap: &mut Snapshotter, name: &str| {
        let blob = writer
            .put_blob(format!("state of {name}").as_bytes())
            .expect("a blob");
        let meta = LayerMeta {
            name: name.into(),
            attachments: [("shell-state".to_string(), blob)].into_iter().collect(),
            meta: serde_json::json!({"key": name}),
        };
        snap.snapshot(writer, meta).expect("a snapshot");
    };
    std::fs::write(tree.join("small"), b"hi\n").expect("write");
    // Over 4 KiB with one output path, which the import below rewrites: a patched blob.
    std::fs::write(
        tree.join("sub/text.c"),
        format!(
            "/* {} */\n{}",
            String::from_utf8_lossy(SEED_OLD_PATH),
            "int main(void) { return 0; }\n".repeat(200)
        ),
    )
    .expect("write");
    layer(&mut writer, &mut snap, "setup");
    let noise: Vec<u8> = (0u32..3000)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(tree.join("sub/noise.bin"), noise).expect("write");
    std::os::unix::fs::symlink("text.c", tree.join("sub/link")).expect("symlink");
    std::fs::hard_link(tree.join("small"), tree.join("small.hard")).expect("link");
    layer(&mut writer, &mut snap, "buildPhase");
    std::fs::remove_file(tree.join("sub/noise.bin")).expect("rm");
    std::fs::write(tree.join("small"), b"changed\n").expect("write");
    layer(&mut writer, &mut snap, "installPhase");
    writer.finish().expect("finish");
    // The seed is that checkpoint imported with its output path rewritten, as a later build
    // imports it: it holds a patched blob and its base.
    let imported = work.join("seed-imported");
    let _ = std::fs::remove_dir_all(&imported);
    let mut again = CheckpointWriter::create(&imported).expect("a writer");
    let earlier = Checkpoint::open(&ck).expect("the seed checkpoint");
    let last = earlier.layers().len() as u32 - 1;
    again
        .import_layers_rewritten(
            &earlier,
            last,
            &[(SEED_OLD_PATH.to_vec(), SEED_NEW_PATH.to_vec())],
        )
        .expect("a rewritten import");
    again.finish().expect("finish");
    let mut files = BTreeMap::new();
    collect(&imported, &imported, &mut files);
    files
}

/// The output path of the seed checkpoint's build, and the one its import rewrites it to.
const SEED_OLD_PATH: &[u8] = b"/nix/store/00000000000000000000000000000000-seed";
const SEED_NEW_PATH: &[u8] = b"/nix/store/11111111111111111111111111111111-seed";

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            let rel = p
                .strip_prefix(root)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            out.insert(rel, std::fs::read(&p).expect("read"));
        }
    }
}

/// A state dump of a real bash (as the builder's epilogue writes it), and its JSON form.
pub fn seed_states() -> Vec<Vec<u8>> {
    let script = r#"
set -e; shopt -s extglob
x=1; declare -a arr=([0]="a b" [5]=$'c\nd'); declare -A assoc=([k]="v" ["sp ace"]=1)
export EXP="/build/x"; declare -i n=3; declare -r ro=1; declare -l low=ABC
f() { echo "$1"; }; g() { local -n ref=$1; ref=2; }
trap 'echo bye' EXIT
m() { builtin printf '\n#CPB-fz %s\n' "$1"; }
m set; set +o; m shopt; shopt -p; m traps; trap -p; trap - EXIT
m function-names; declare -F; m variables; declare -p; m functions; declare -f
m dirstack; declare -p DIRSTACK
"#;
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("bash runs");
    let mut dump = out.stdout;
    let facts = ProcessFacts {
        umask: 0o22,
        limits: vec![ResourceLimit {
            resource: 7,
            soft: 1024,
            hard: u64::MAX,
        }],
        stdout_target: Some(ByteString(b"/build/log".to_vec())),
        stderr_target: None,
        physical_cwd: ByteString(b"/build/src".to_vec()),
        environ: vec![ByteString(b"A=1".to_vec()), ByteString(b"B=\n2".to_vec())],
    };
    dump.extend_from_slice(format!("\n#CPB-{NONCE} capture\n").as_bytes());
    dump.extend_from_slice(&facts.encode());
    dump.extend_from_slice(format!("\n#CPB-{NONCE} end\n").as_bytes());
    let mut seeds = vec![dump.clone()];
    let sections = DumpSections::split(&dump, NONCE);
    let state = parse_state(&sections).expect("the seed dump parses");
    seeds.push(serde_json::to_vec(&state).expect("JSON"));
    if let Some(vars) = sections.get("variables") {
        seeds.push(vars.to_vec());
    }
    seeds.push(facts.encode());
    seeds
}

/// Hand-written ninja manifests (with a log after `\n#LOG\n`).
pub fn seed_ninja() -> Vec<Vec<u8>> {
    [
        "cflags = -O2\nrule cc\n  command = gcc $cflags -c $in -o $out\n  depfile = $out.d\nbuild a.o: cc a.c\nbuild b.o: cc b.c | h.h || gen\n  cflags = -O0\nrule link\n  command = gcc $in -o $out\nbuild prog: link a.o b.o\ndefault prog\n\n#LOG\n# ninja log v5\n0\t10\t0\ta.o\t1a2b3c4d5e6f7a8b\n0\t10\t0\tb.o\t0000000000000001\n",
        "rule r\n  command = sh -c \"echo $$HOME > $out\"\n  rspfile = $out.rsp\n  rspfile_content = $in\nbuild out$ 1 $:x: r in1 in2\nbuild all: phony out$ 1$:x\ninclude sub.ninja\n\n#LOG\n# ninja log v6\n1\t2\t3\tout 1:x\tdeadbeefdeadbeef\n",
        "pool p\n  depth = 1\nrule r\n  command = touch $out $\n    more\n  pool = p\nsubninja s.ninja\nbuild ${x}y: r\nx = 1\n\n#LOG\n# ninja log v7\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}
