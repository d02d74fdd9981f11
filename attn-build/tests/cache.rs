//! Build robustness: builds sharing one cache concurrently, and failed compiles.

use attn_build::{
    Build,
    graph::{Graph, KernelDef, TensorType},
};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-cache-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn softmax_kernel(name: &str, rank: usize) -> KernelDef {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32_dynamic(rank));
    let y = g.softmax(x).unwrap();
    KernelDef::new(name, g, y)
}

#[test]
fn concurrent_builds_share_a_cache_without_corrupting_it() {
    let dir = scratch("concurrent");
    let cache = dir.join("cache");
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (dir, cache) = (dir.join(format!("out{i}")), cache.clone());
            std::thread::spawn(move || {
                std::fs::create_dir_all(&dir).unwrap();
                let mut b = Build::new();
                b.out_dir(&dir).cache_dir(&cache).cargo_metadata(false);
                b.kernel(softmax_kernel("sm1", 1))
                    .kernel(softmax_kernel("sm2", 2));
                b.compile(&format!("lib{i}"))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        })
        .collect();
    let reports: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Everyone agrees on the objects, which are complete ELF files; no temporary is left.
    for r in &reports {
        assert_eq!(r.kernels[0].object, reports[0].kernels[0].object);
        for k in &r.kernels {
            let bytes = std::fs::read(&k.object).unwrap();
            assert!(bytes.starts_with(b"\x7fELF") && bytes.len() > 64);
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".o"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A later build is served from the cache.
    let mut b = Build::new();
    b.out_dir(dir.join("out0"))
        .cache_dir(&cache)
        .cargo_metadata(false);
    b.kernel(softmax_kernel("sm1", 1));
    assert!(b.compile_objects().unwrap()[0].cached);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_build_leaves_no_artifact() {
    let dir = scratch("failed");
    let cache = dir.join("cache");
    let mut b = Build::new();
    b.out_dir(&dir).cache_dir(&cache).cargo_metadata(false);
    // Duplicate names are rejected before anything is written.
    b.kernel(softmax_kernel("same", 1))
        .kernel(softmax_kernel("same", 2));
    let e = b.compile("dup").unwrap_err().to_string();
    assert!(e.contains("same"), "{e}");
    assert!(!dir.join("libdup.a").exists());
    assert!(!dir.join("dup.rs").exists());
    let entries = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 0);
    // An invalid kernel name is rejected too.
    let mut b = Build::new();
    b.out_dir(&dir)
        .cache_dir(&cache)
        .cargo_metadata(false)
        .kernel(softmax_kernel("not-an-ident", 1));
    assert!(b.compile("x").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
