//! Forging a checkpoint the way an attacker with the builder's documentation would
//! (docs/trust.md): a file of a root changed in every layer that records it, the new content
//! stored in a pack, every hash fixed so that the copy passes `verify`, and, for a
//! consistent forgery, the chain of the index recomputed. Used by the trust tests of
//! `tests/reuse.rs` on a copy of a real checkpoint.
//!
//! Edits are made on the canonical text of the files (the format's field order is kept by
//! inserting and replacing text, never by re-serialising).

use crate::checkpoint::{blake3_hex, masked, rewrite_layer};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The chain link of docs/trust.md: blake3 over the chain format, the previous link (empty
/// for layer 0), the layer's key and the hex hash of its layer file, each followed by a NUL.
pub fn chain_link(previous: &str, key: &str, layer_file_hex: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in ["checkpoint-builder-chain-v1", previous, key, layer_file_hex] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_hex().to_string()
}

fn layer_files(ck: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(ck.join("layers"))
        .expect("layers/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// Recomputes the chain in `index.json` from the layer files as they are now.
pub fn reseal(ck: &Path) {
    let index_path = ck.join("index.json");
    let text = std::fs::read_to_string(&index_path).expect("index.json");
    let mut chain = Vec::<String>::new();
    for file in layer_files(ck) {
        let bytes = std::fs::read(&file).expect("layer file");
        let layer: Value = serde_json::from_slice(&bytes).expect("layer json");
        let key = layer["meta"]["key"].as_str().expect("a key").to_owned();
        let link = chain_link(
            chain.last().map_or("", String::as_str),
            &key,
            &blake3_hex(&bytes),
        );
        chain.push(link);
    }
    let start = text.find("\"chain\":[").expect("a chain in index.json") + "\"chain\":".len();
    let end = start + text[start..].find(']').expect("end of the chain") + 1;
    let new = format!(
        "{}{}{}",
        &text[..start],
        serde_json::to_string(&chain).unwrap(),
        &text[end..]
    );
    std::fs::write(&index_path, new).expect("write index.json");
}

/// Replaces the content of file `path` of root `root` with `content` (same length, so the
/// entries' sizes stay) in every layer that records it. The new blob is stored raw in the pack
/// of the first such layer. Layer hashes in the index are fixed; the chain is not (see
/// [`reseal`]). Returns how many layers were edited.
pub fn replace_file(ck: &Path, root: &str, path: &str, content: &[u8]) -> usize {
    let new_hash = blake3_hex(content);
    let mut stored = false;
    let mut edited = 0;
    for file in layer_files(ck) {
        let mut text = std::fs::read_to_string(&file).expect("layer file");
        let Some(list) = text.find(&format!("\"{root}\":{{\"changed\":[")) else {
            continue;
        };
        let entry = format!("{{\"path\":{},", Value::from(path));
        let Some(at) = text[list..].find(&entry).map(|p| p + list) else {
            continue;
        };
        let mark = "\"blake3\":\"";
        let hash_at = at + text[at..].find(mark).expect("a file entry") + mark.len();
        let old_size: u64 = {
            let s = at + text[at..].find("\"size\":").unwrap() + "\"size\":".len();
            let e = s + text[s..].find(',').unwrap();
            text[s..e].parse().unwrap()
        };
        assert_eq!(old_size, content.len() as u64, "same length content only");
        text.replace_range(hash_at..hash_at + 64, &new_hash);
        if !stored {
            text = add_raw_blob(ck, &text, &new_hash, content);
            stored = true;
        }
        rewrite_layer(ck, &file, &text).expect("rewrite layer");
        edited += 1;
    }
    edited
}

/// Appends `content` raw to the pack of the layer whose text is `text`, and its record to
/// the layer's blob table (the last field). Returns the new text.
fn add_raw_blob(ck: &Path, text: &str, hash: &str, content: &[u8]) -> String {
    let layer: Value = serde_json::from_str(text).unwrap();
    let index = layer["index"].as_u64().unwrap();
    let pack = ck.join(format!("packs/{index:03}.pack"));
    std::fs::create_dir_all(ck.join("packs")).unwrap();
    let offset = std::fs::metadata(&pack).map(|m| m.len()).unwrap_or(0);
    let mut bytes = std::fs::read(&pack).unwrap_or_default();
    bytes.extend_from_slice(&masked(content));
    std::fs::write(&pack, bytes).unwrap();
    let record = format!(
        "{{\"blake3\":\"{hash}\",\"offset\":{offset},\"length\":{},\"encoding\":\"raw\"}}",
        content.len()
    );
    let body = text
        .strip_suffix("]}\n")
        .expect("the blob table ends the layer");
    if body.ends_with("\"blobs\":[") {
        format!("{body}{record}]}}\n")
    } else {
        format!("{body},{record}]}}\n")
    }
}

/// Adds the entry `entry` (canonical JSON of one entry record, whose path sorts after every
/// path of the list) at the end of root `root`'s `changed` list in the layer named
/// `layer_name`. Layer hashes in the index are fixed; the chain is not.
pub fn append_entry(ck: &Path, layer_name: &str, root: &str, entry: &str) {
    let file = crate::checkpoint::layer_file(ck, layer_name).expect("layer");
    let text = std::fs::read_to_string(&file).unwrap();
    let list = text
        .find(&format!("\"{root}\":{{\"changed\":["))
        .expect("the root changes in this layer");
    let end = list
        + text[list..]
            .find("],\"deleted\":")
            .expect("end of the list");
    let sep = if text[..end].ends_with('[') { "" } else { "," };
    let new = format!("{}{sep}{entry}{}", &text[..end], &text[end..]);
    rewrite_layer(ck, &file, &new).expect("rewrite layer");
}
