//! Running generated kernels from C: a harness compiled by the host's C compiler, linked with
//! the object of the variant each kernel runs on this CPU (objects come in several ISA levels,
//! best first), and run.

use attn_build::{CompiledKernel, CompiledVariant};
use std::{path::Path, process::Command};

/// The variant of `k` this CPU runs.
pub(crate) fn runnable(k: &CompiledKernel) -> &CompiledVariant {
    k.variants
        .iter()
        .find(|v| v.isa.is_none_or(|i| i.supported()))
        .expect("a baseline variant exists")
}

/// Writes `source` to `dir/harness.c`, compiles it with `-D<macro>=<C entry point of kernel>`
/// for every `(macro, kernel)` of `defines`, links every kernel of `compiled`, runs it and
/// returns its standard output. Panics (failing the test) when the C compiler fails or the
/// harness exits with an error, i.e. when a kernel's results differ from the C reference.
pub(crate) fn run(
    dir: &Path,
    source: &str,
    compiled: &[CompiledKernel],
    defines: &[(String, &str)],
) -> String {
    let src = dir.join("harness.c");
    std::fs::write(&src, source).unwrap();
    let exe = dir.join("harness");
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let compiler = cc::Build::new()
        .target(&host)
        .host(&host)
        .opt_level(2)
        .cargo_metadata(false)
        .get_compiler();
    let mut cmd = compiler.to_command();
    for (macro_name, kernel) in defines {
        let k = compiled
            .iter()
            .find(|k| k.name == *kernel)
            .unwrap_or_else(|| panic!("no kernel `{kernel}` was compiled"));
        cmd.arg(format!(
            "-D{macro_name}=_mlir_ciface_{}",
            runnable(k).symbol
        ));
    }
    cmd.arg(&src).arg("-o").arg(&exe);
    for k in compiled {
        cmd.arg(&runnable(k).object);
    }
    cmd.arg("-lm");
    let out = cmd.output().expect("running the C compiler");
    assert!(
        out.status.success(),
        "compiling the harness failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("running the harness");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    println!("{stdout}");
    assert!(
        run.status.success(),
        "results differ from the reference:\n{stdout}"
    );
    stdout
}
