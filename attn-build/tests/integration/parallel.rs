//! Parallel compilation: the library, the bindings and the manifest a build writes are the same
//! bytes whatever the number of jobs, the order compilations finish in, or whether objects came
//! from the cache.

use attn_build::{
    Build, Report,
    graph::{Graph, KernelDef, Scale, TensorType},
};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-parallel-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn kernels() -> Vec<KernelDef> {
    let softmax = |name: &str, rank: usize| {
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32_dynamic(rank));
        let y = g.softmax(x).unwrap();
        KernelDef::new(name, g, y)
    };
    let mut g = Graph::new();
    let a = g.input("a", TensorType::f32_static(&[8, 8]));
    let b = g.input("b", TensorType::f32_static(&[8, 8]));
    let s = g.add(a, b).unwrap();
    let y = g.scale(s, 0.5).unwrap();
    let add = KernelDef::new("half_sum", g, y);
    let mut g = Graph::new();
    let q = g.input("q", TensorType::f32_static(&[8, 4]));
    let k = g.input("k", TensorType::f32_static(&[8, 4]));
    let v = g.input("v", TensorType::f32_static(&[8, 4]));
    let o = g.attention(q, k, v, Scale::Constant(0.5)).unwrap();
    let attention = KernelDef::new("window", g, o);
    vec![softmax("sm1", 1), add, softmax("sm2", 2), attention]
}

/// Builds every kernel with `jobs` workers into `dir/out`, caching in `cache`.
fn build(dir: &Path, cache: &Path, jobs: usize) -> Report {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut b = Build::new();
    b.out_dir(&out)
        .cache_dir(cache)
        .cargo_metadata(false)
        .jobs(jobs);
    for k in kernels() {
        b.kernel(k);
    }
    b.compile("kernels").unwrap_or_else(|e| panic!("{e}"))
}

fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["libkernels.a", "kernels.rs", "kernels.attn-manifest"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(dir.join("out").join(f)).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_library_is_the_same_with_one_job_or_three() {
    let root = scratch("jobs");
    let (one, three) = (root.join("one"), root.join("three"));
    let serial = build(&one, &one.join("cache"), 1);
    let parallel = build(&three, &three.join("cache"), 3);
    // Every object was compiled in both builds, into caches of their own.
    assert!(serial.kernels.iter().all(|k| !k.cached));
    assert!(parallel.kernels.iter().all(|k| !k.cached));
    let names = |r: &Report| r.kernels.iter().map(|k| k.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&serial), ["sm1", "half_sum", "sm2", "window"]);
    assert_eq!(names(&serial), names(&parallel));
    let variants: usize = parallel.kernels.iter().map(|k| k.variants.len()).sum();
    assert!(variants >= 4, "{variants} objects");
    for (s, p) in serial.kernels.iter().zip(&parallel.kernels) {
        for (sv, pv) in s.variants.iter().zip(&p.variants) {
            assert_eq!(sv.symbol, pv.symbol);
            assert_eq!(sv.object.file_name(), pv.object.file_name());
            assert!(
                std::fs::read(&sv.object).unwrap() == std::fs::read(&pv.object).unwrap(),
                "{} differs",
                sv.symbol
            );
        }
    }
    let first = outputs(&one);
    assert!(first[0].1.starts_with(b"!<arch>\n"), "not an archive");
    for ((name, a), (_, b)) in first.iter().zip(outputs(&three)) {
        assert!(*a == b, "{name} differs between 1 and 3 jobs");
    }
    // From the cache, its objects touched since (archive members carry no dates): same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = build(&one, &three.join("cache"), 2);
    assert!(again.kernels.iter().all(|k| k.cached));
    for ((name, a), (_, b)) in first.iter().zip(outputs(&one)) {
        assert!(*a == b, "{name} differs when built from the cache");
    }
    let _ = std::fs::remove_dir_all(&root);
}
