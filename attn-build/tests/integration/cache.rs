//! The object cache: builds sharing one cache concurrently, failed compiles, the default location
//! shared by a workspace's crates and profiles, the size bound (least recently used first),
//! and `ATTN_CACHE_DIR` / `ATTN_CACHE_MAX_MB`.

use attn_build::{
    Build,
    graph::{Graph, KernelDef, TensorType},
};
use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

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

/// Sets an entry's last use (its modification time) `age` in the past.
fn age(path: &Path, age: Duration) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "o"));
    v.sort();
    v
}

fn size(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A fake target directory as Cargo lays it out, with the OUT_DIR of a build script in it.
fn cargo_out_dir(target: &Path, rel: &str) -> PathBuf {
    std::fs::create_dir_all(target).unwrap();
    std::fs::write(
        target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    let out = target.join(rel);
    std::fs::create_dir_all(&out).unwrap();
    out
}

#[test]
fn the_default_cache_is_shared_by_the_crates_and_profiles_of_a_workspace() {
    assert!(
        std::env::var_os("ATTN_CACHE_DIR").is_none(),
        "this test checks the default location: unset ATTN_CACHE_DIR"
    );
    let dir = scratch("shared");
    let target = dir.join("target");
    // One crate's debug build...
    let mut b = Build::new();
    b.out_dir(cargo_out_dir(
        &target,
        "debug/build/first-0123456789abcdef/out",
    ))
    .cargo_metadata(false)
    .kernel(softmax_kernel("shared_sm", 2));
    let first = b.compile("first").unwrap();
    assert!(!first.kernels[0].cached);
    for v in &first.kernels[0].variants {
        assert_eq!(v.object.parent().unwrap(), target.join("attn-cache"));
    }
    // ...and another crate's release build, for another target triple, find its objects.
    for rel in [
        "release/build/second-fedcba9876543210/out",
        "x86_64-unknown-linux-gnu/release/build/third-00/out",
    ] {
        let mut b = Build::new();
        b.out_dir(cargo_out_dir(&target, rel))
            .cargo_metadata(false)
            .kernel(softmax_kernel("shared_sm", 2));
        let k = &b.compile_objects().unwrap()[0];
        assert!(k.cached, "{rel}: {:?}", k.object);
        assert_eq!(k.object, first.kernels[0].object);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn least_recently_used_objects_are_evicted_above_the_bound() {
    let dir = scratch("evict");
    let cache = dir.join("cache");
    let build = |max: u64, name: &str| {
        let mut b = Build::new();
        b.out_dir(&dir)
            .cache_dir(&cache)
            .cache_max_bytes(max)
            .cargo_metadata(false)
            .kernel(softmax_kernel(name, 1));
        b.compile("evict").unwrap()
    };
    let first = build(u64::MAX, "kept");
    let mine = objects(&cache);
    assert_eq!(mine.len(), first.kernels[0].variants.len());
    // Entries of other builds, used two days, one day and a minute ago.
    let entry = |name: &str, kib: usize, used: Duration| {
        let p = cache.join(name);
        std::fs::write(&p, vec![0u8; kib << 10]).unwrap();
        age(&p, used);
        p
    };
    let oldest = entry("attn_a_000000000001-0000000000000001.o", 64, 2 * DAY);
    let older = entry("attn_b_000000000002-0000000000000002.o", 64, DAY);
    let recent = entry(
        "attn_c_000000000003-0000000000000003.o",
        64,
        Duration::from_secs(60),
    );
    let stale_tmp = entry("attn_d_000000000004-0000000000000004.o.tmp77-0", 1, DAY);
    // This build's own objects are old too, but in use: kept.
    for p in &mine {
        age(p, 3 * DAY);
    }
    // Room for this build's objects and two 64 KiB entries: the oldest goes.
    let bound = size(&mine) + (128 << 10) + 1024;
    build(bound, "kept");
    assert!(!oldest.exists());
    assert!(older.exists() && recent.exists());
    assert!(
        !stale_tmp.exists(),
        "temporaries of interrupted builds are removed"
    );
    assert!(mine.iter().all(|p| p.exists()));
    // A build of something else, with no room at all: every stale entry goes, including the
    // first build's objects once unused for long enough, but not the entry used a minute ago (a
    // concurrent build may be about to archive it).
    for p in &mine {
        age(p, 2 * DAY);
    }
    let other = build(0, "other");
    assert!(!older.exists());
    assert!(mine.iter().all(|p| !p.exists()));
    assert!(recent.exists());
    assert!(other.kernels[0].variants.iter().all(|v| v.object.exists()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cache_hit_counts_as_a_use() {
    let dir = scratch("recency");
    let cache = dir.join("cache");
    let mut b = Build::new();
    b.out_dir(&dir)
        .cache_dir(&cache)
        .cargo_metadata(false)
        .kernel(softmax_kernel("touched", 3));
    b.compile("touched").unwrap();
    for p in objects(&cache) {
        age(&p, 5 * DAY);
    }
    let again = b.compile("touched").unwrap();
    assert!(again.kernels[0].cached);
    for p in objects(&cache) {
        let used = std::fs::metadata(&p).unwrap().modified().unwrap();
        assert!(
            used.elapsed().unwrap_or_default() < Duration::from_secs(600),
            "{p:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs one test of this binary in a child process with `envs` (the cache variables are read
/// from the environment, which a test must not change in-process).
fn child(test: &str, envs: &[(&str, &Path)], extra: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([test, "--exact", "--nocapture"])
        .env("ATTN_CACHE_TEST_CHILD", "1")
        .env_remove("ATTN_CACHE_DIR")
        .env_remove("ATTN_CACHE_MAX_MB");
    for (k, v) in envs {
        c.env(k, v);
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn attn_cache_dir_and_attn_cache_max_mb_configure_the_cache() {
    if std::env::var_os("ATTN_CACHE_TEST_CHILD").is_some() {
        // The child: a build configured by the environment only.
        let out = PathBuf::from(std::env::var_os("ATTN_CACHE_TEST_OUT").unwrap());
        let mut b = Build::new();
        b.out_dir(&out)
            .cargo_metadata(false)
            .kernel(softmax_kernel("relocated", 2));
        match b.compile("relocated") {
            Ok(r) => println!("CACHED={}", r.kernels[0].cached),
            Err(e) => println!("ERROR={e}"),
        }
        return;
    }
    let dir = scratch("env");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let stdout = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let test = &crate::test_path(
        module_path!(),
        "attn_cache_dir_and_attn_cache_max_mb_configure_the_cache",
    );
    let first = dir.join("first");
    let s = stdout(child(
        test,
        &[("ATTN_CACHE_DIR", &first), ("ATTN_CACHE_TEST_OUT", &out)],
        &[],
    ));
    assert!(s.contains("CACHED=false"), "{s}");
    assert!(!objects(&first).is_empty());
    assert!(!out.join("attn-cache").exists());
    // The cache holds no paths: moved elsewhere, it still serves the build.
    let moved = dir.join("moved");
    std::fs::rename(&first, &moved).unwrap();
    let stale = moved.join("attn_z_000000000009-0000000000000009.o");
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    age(&stale, DAY);
    let s = stdout(child(
        test,
        &[("ATTN_CACHE_DIR", &moved), ("ATTN_CACHE_TEST_OUT", &out)],
        &[("ATTN_CACHE_MAX_MB", "0")],
    ));
    assert!(s.contains("CACHED=true"), "{s}");
    assert!(
        !stale.exists(),
        "ATTN_CACHE_MAX_MB=0 evicts what this build does not use"
    );
    let s = stdout(child(
        test,
        &[("ATTN_CACHE_DIR", &moved), ("ATTN_CACHE_TEST_OUT", &out)],
        &[("ATTN_CACHE_MAX_MB", "lots")],
    ));
    assert!(
        s.contains("ERROR=ATTN_CACHE_MAX_MB=`lots` is not a whole number of MiB"),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
