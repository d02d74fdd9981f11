//! UI tests of `attention!`: every kind of bad input gives a compile error at the offending
//! token (`tests/ui/*.rs` with `.stderr` snapshots), and valid kernels get typed signatures
//! (`tests/pass/*.rs`).
//!
//! The macro reads the manifest that the build script leaves in `OUT_DIR`. These test crates have
//! no build script, so this test writes a manifest listing every valid kernel of the test files
//! (except those of `not_compiled.rs`, and with a duplicate record for `twice`) and points
//! `OUT_DIR` at it, as a build script running `attn_build::Build::file` would.

use attn_runtime::syntax::{
    Invocation, MANIFEST_EXTENSION, Manifest, ManifestDuplicate, ManifestKernel,
};
use std::{fs, path::Path};

fn scan(items: &[syn::Item], file: &str, out: &mut Manifest) {
    for item in items {
        match item {
            syn::Item::Macro(m)
                if m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "attention") =>
            {
                let Ok(inv) = syn::parse2::<Invocation>(m.mac.tokens.clone()) else {
                    continue;
                };
                let Ok(kernels) = inv.check() else { continue };
                for k in kernels {
                    out.kernels.push(ManifestKernel::new(&k, file));
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    scan(items, file, out);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifest = Manifest::default();
    for dir in ["tests/ui", "tests/pass"] {
        let mut files: Vec<_> = fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.extension().is_none_or(|e| e != "rs") || name == "not_compiled.rs" {
                continue;
            }
            let parsed = syn::parse_file(&fs::read_to_string(&path).unwrap()).unwrap();
            scan(&parsed.items, &format!("{dir}/{name}"), &mut manifest);
        }
    }
    manifest.kernels.retain(|k| k.name != "twice");
    manifest.duplicates.push(ManifestDuplicate {
        name: "twice".into(),
        locations: vec!["src/a.rs:3".into(), "src/b.rs:10".into()],
    });
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("attn-macros-ui-out-dir");
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(
        out_dir.join(format!("ui.{MANIFEST_EXTENSION}")),
        manifest.render(),
    )
    .unwrap();
    // SAFETY: this test binary runs this one test only, so no other thread reads the environment.
    unsafe { std::env::set_var("OUT_DIR", out_dir.canonicalize().unwrap()) };

    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/pass/*.rs");
}
