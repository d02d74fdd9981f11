//! Build diagnostics: an MLIR failure names the kernel and where it is declared (the `attention!`
//! invocation, or the `Build::kernel` call), and `ATTN_VERBOSE=1` prints progress lines, which
//! are absent otherwise.
//!
//! Cargo hands a build script its target and options through the environment; each case runs one
//! test of this binary in a child process with that environment.

use attn_build::{
    Build,
    graph::{Graph, KernelDef, TensorType},
};
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const CHILD: &str = "ATTN_DIAGNOSTICS_CHILD";

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-diag-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn child(test: &str, dir: &Path, envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        &crate::test_path(module_path!(), test),
        "--exact",
        "--nocapture",
    ])
    .env(CHILD, dir)
    .env("ATTN_CACHE_DIR", dir.join("cache"));
    for var in [
        "ATTN_VERBOSE",
        "TARGET",
        "ATTN_TARGET_CPU",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_CFG_TARGET_FEATURE",
        "ATTN_DUMP_IR",
    ] {
        c.env_remove(var);
    }
    c.envs(envs.iter().copied());
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD).map(PathBuf::from)
}

/// A source file with an `attention!` invocation whose kernel `window` is named on line 4.
const SOURCE: &str = "\
// A crate's source.
attn::attention! {
    /// Attention over 8 tokens.
    pub fn window(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4];
}
";

#[test]
fn an_mlir_failure_names_the_kernel_and_where_it_is_declared() {
    if let Some(dir) = child_dir() {
        let src = dir.join("kernels.rs");
        std::fs::write(&src, SOURCE).unwrap();
        let mut b = Build::new();
        b.out_dir(&dir).cargo_metadata(false).file(&src);
        println!("FILE<<{}>>", b.compile("from_file").unwrap_err());
        let mut g = Graph::new();
        let x = g.input("x", TensorType::f32_dynamic(2));
        let y = g.softmax(x).unwrap();
        let mut b = Build::new();
        b.out_dir(&dir).cargo_metadata(false);
        let line = line!() + 1;
        b.kernel(KernelDef::new("explicit", g, y));
        println!("LINE={line}");
        println!("EXPLICIT<<{}>>", b.compile("explicit").unwrap_err());
        return;
    }
    let dir = scratch("mlir");
    // Cross-compiling to an architecture this LLVM was not set up for: code generation fails.
    let out = child(
        "an_mlir_failure_names_the_kernel_and_where_it_is_declared",
        &dir,
        &[("TARGET", "riscv64gc-unknown-linux-gnu")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let between = |start: &str| {
        let from = stdout.find(start).unwrap_or_else(|| panic!("{stdout}")) + start.len();
        stdout[from..].split(">>").next().unwrap().to_string()
    };
    let file = between("FILE<<");
    let want = format!(
        "kernel `window` (declared at {}:4): MLIR failed at stage `llvm-ir`: unknown target \
         `riscv64gc-unknown-linux-gnu`",
        dir.join("kernels.rs").display()
    );
    assert!(file.starts_with(&want), "{file}\nwanted: {want}");
    let line = between("LINE=").lines().next().unwrap().to_string();
    let explicit = between("EXPLICIT<<");
    let want = format!(
        "kernel `explicit` (declared at {}:{line}): MLIR failed",
        file!()
    );
    assert!(explicit.starts_with(&want), "{explicit}\nwanted: {want}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn attn_verbose_prints_one_progress_line_per_kernel_compiled() {
    if let Some(dir) = child_dir() {
        let src = dir.join("kernels.rs");
        std::fs::write(&src, SOURCE).unwrap();
        let mut b = Build::new();
        // As in a build script: progress lines are `cargo:warning`s.
        b.out_dir(&dir).file(&src);
        b.compile("verbose").unwrap();
        return;
    }
    let run = |name: &str, envs: &[(&str, &str)]| {
        let dir = scratch(name);
        let out = child(
            "attn_verbose_prints_one_progress_line_per_kernel_compiled",
            &dir,
            envs,
        );
        let _ = std::fs::remove_dir_all(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .filter(|l| l.starts_with("cargo:warning="))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let quiet = run("quiet", &[]);
    assert!(quiet.is_empty(), "{quiet:?}");
    let loud = run("loud", &[("ATTN_VERBOSE", "1")]);
    assert_eq!(loud.len(), 2, "{loud:?}");
    assert!(
        loud[0].starts_with("cargo:warning=attn-build: compiled kernel `window` (")
            && loud[0].contains("kernels.rs:4) for "),
        "{loud:?}"
    );
    assert!(
        loud[1].starts_with(
            "cargo:warning=attn-build: done: 1 objects compiled, 0 reused from the cache "
        ),
        "{loud:?}"
    );
}

#[test]
fn with_several_jobs_the_first_failing_kernel_is_reported() {
    if let Some(dir) = child_dir() {
        // The first kernel takes longest to lower: compiled concurrently, the others fail first.
        let mut g = Graph::new();
        let q = g.input("q", TensorType::f32_dynamic(2));
        let k = g.input("k", TensorType::f32_dynamic(2));
        let v = g.input("v", TensorType::f32_dynamic(2));
        let o = g
            .attention(q, k, v, attn_build::graph::Scale::Constant(0.5))
            .unwrap();
        let mut b = Build::new();
        b.out_dir(&dir).cargo_metadata(false).jobs(3);
        b.kernel(KernelDef::new("slow_first", g, o));
        for i in 0..4 {
            let mut g = Graph::new();
            let x = g.input("x", TensorType::f32_static(&[4]));
            let y = g.scale(x, 2.0).unwrap();
            b.kernel(KernelDef::new(&format!("quick{i}"), g, y));
        }
        println!("ERROR<<{}>>", b.compile("several").unwrap_err());
        return;
    }
    let dir = scratch("first-error");
    let out = child(
        "with_several_jobs_the_first_failing_kernel_is_reported",
        &dir,
        &[("TARGET", "riscv64gc-unknown-linux-gnu")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let error = stdout
        .split("ERROR<<")
        .nth(1)
        .and_then(|s| s.split(">>").next())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        error.starts_with(&format!("kernel `slow_first` (declared at {}:", file!())),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
