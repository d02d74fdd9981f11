//! Collects every source file of this crate (the kernel generators, the lowering, the pipeline)
//! into `OUT_DIR/generator_sources.txt`, whose hash is part of the object cache key: a changed
//! or added file invalidates cached objects without a hand-kept list.

use std::{fs, path::Path};

fn collect(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).unwrap_or_default();
            out.push((path.display().to_string(), text));
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    let mut files = Vec::new();
    collect(Path::new("src"), &mut files);
    files.sort();
    let mut all = String::new();
    for (path, text) in &files {
        all.push_str(path);
        all.push('\n');
        all.push_str(text);
        all.push('\n');
    }
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    if let Err(e) = fs::write(Path::new(&out).join("generator_sources.txt"), all) {
        println!("cargo::error=cannot write the generator sources: {e}");
    }
}
