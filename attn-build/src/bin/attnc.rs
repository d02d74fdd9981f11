//! `attnc`: compiles an `attention!` kernel spec and prints the IR of any pipeline stage, the
//! assembly, and the kernel's C ABI.
//!
//! ```text
//! cargo run -p attn-build --bin attnc -- 'fn k(q: [64, 32], k: [64, 32], v: [64, 32]) -> [64, 32];' --emit linalg
//! ```
//!
//! Exit codes: 0 success, 1 the compiler failed (an MLIR or LLVM error), 2 bad arguments or a
//! spec the grammar rejects.

use attn_build::{
    Stage,
    graph::{KernelDef, Layout},
    pipeline::Compiler,
    scan::kernel_def,
    target::{OutputKind, TargetSpec},
};
use attn_runtime::DType;
use attn_runtime::syntax::{Invocation, Kernel};
use attn_runtime::tuning::Tiling;
use std::{
    fmt::Write as _,
    process::ExitCode,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

const USAGE: &str = "\
usage: attnc '<kernel spec>' [--emit STAGE] [--target TRIPLE] [--cpu NAME] [--features +f,..]
             [--kernel NAME] [--layout contiguous|strided] [--tiling TAG] [--mca]

Compiles kernels written in the `attention!` grammar and prints one stage of the pipeline,
preceded by the kernel's C ABI (as comments).

  <kernel spec>   one or more kernels, e.g.
                    'fn k(q: [64, 32], k: [64, 32], v: [64, 32]) -> [64, 32];'
                    'fn s(q: [8, 4], k: [8, 4]) -> [8, 8] { softmax(matmul(q, transpose(k))) }'
  --emit STAGE    transformer | linalg | bufferized | loops | llvm | llvm-ir | asm | abi
                  (default: transformer; abi prints the C ABI only)
  --target TRIPLE LLVM target triple (default: the host's); --cpu NAME: CPU (default: the
                  host's, or `generic` with --target); --features: LLVM feature string
  --kernel NAME   only this kernel of the spec (default: every kernel)
  --layout L      argument layout at the ABI: contiguous (what attention! kernels use, the
                  default) or strided (any strides and offset)
  --tiling TAG    register tiling of the fused kernel (e.g. w16r8c2p3q256; default: the
                  target's, or ATTN_TILING)
  --mca           mark the hot loops with LLVM-MCA-BEGIN/END regions (with --emit asm, feed the
                  output to llvm-mca; see scripts/mca.sh)

Set ATTN_VERBOSE=1 for progress lines on stderr.";

/// What to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Emit {
    Stage(Stage),
    Asm,
    Abi,
}

impl Emit {
    fn parse(s: &str) -> Option<Emit> {
        match s {
            "asm" | "assembly" => Some(Emit::Asm),
            "abi" => Some(Emit::Abi),
            _ => Stage::from_name(s).map(Emit::Stage),
        }
    }
}

struct Args {
    spec: String,
    emit: Emit,
    triple: Option<String>,
    cpu: Option<String>,
    features: Option<String>,
    kernel: Option<String>,
    layout: Layout,
    tiling: Option<String>,
    mca: bool,
}

/// A usage error: printed with the usage line, exit code 2.
struct Usage(String);

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, Usage> {
    let mut spec = None;
    let mut args = Args {
        spec: String::new(),
        emit: Emit::Stage(Stage::Transformer),
        triple: None,
        cpu: None,
        features: None,
        kernel: None,
        layout: Layout::Contiguous,
        tiling: None,
        mca: false,
    };
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| Usage(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--emit" => {
                let v = value("--emit")?;
                args.emit = Emit::parse(&v).ok_or_else(|| {
                    Usage(format!(
                        "unknown --emit `{v}`: expected transformer, linalg, bufferized, loops, \
                         llvm, llvm-ir, asm or abi"
                    ))
                })?;
            }
            "--target" => args.triple = Some(value("--target")?),
            "--cpu" => args.cpu = Some(value("--cpu")?),
            "--features" => args.features = Some(value("--features")?),
            "--kernel" => args.kernel = Some(value("--kernel")?),
            "--tiling" => args.tiling = Some(value("--tiling")?),
            "--mca" => args.mca = true,
            "--layout" => {
                args.layout = match value("--layout")?.as_str() {
                    "contiguous" => Layout::Contiguous,
                    "strided" => Layout::Strided,
                    other => {
                        return Err(Usage(format!(
                            "unknown --layout `{other}`: expected contiguous or strided"
                        )));
                    }
                }
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(Usage(format!("unknown option `{f}`")));
            }
            _ if spec.is_none() => spec = Some(a),
            _ => return Err(Usage(format!("unexpected argument `{a}` (one spec only)"))),
        }
    }
    args.spec = spec.ok_or_else(|| Usage("missing the kernel spec".into()))?;
    Ok(Some(args))
}

/// Parses and checks the spec with the grammar of `attention!`; errors point into the spec.
fn parse_spec(spec: &str) -> Result<Vec<Kernel>, String> {
    let at = |e: &syn::Error| {
        let start = e.span().start();
        let line = spec.lines().nth(start.line.saturating_sub(1)).unwrap_or("");
        let caret = " ".repeat(line[..start.column.min(line.len())].chars().count());
        format!(
            "error: {e}\n --> spec:{}:{}\n  | {line}\n  | {caret}^",
            start.line,
            start.column + 1
        )
    };
    let inv: Invocation = syn::parse_str(spec).map_err(|e| {
        if e.to_string() == "cannot parse string into token stream" {
            // A lexer error (unbalanced brackets, a stray quote) has no useful span.
            "error: the spec is not valid Rust tokens: check that every `(`, `[` and `{` is \
             closed, e.g. 'fn k(q: [64, 32], k: [64, 32], v: [64, 32]) -> [64, 32];'"
                .to_string()
        } else {
            at(&e)
        }
    })?;
    if inv.kernels.is_empty() {
        return Err("error: the spec declares no kernel, e.g. \
                    'fn k(q: [64, 32], k: [64, 32], v: [64, 32]) -> [64, 32];'"
            .into());
    }
    inv.check().map_err(|e| at(&e))
}

fn verbose() -> bool {
    std::env::var("ATTN_VERBOSE").is_ok_and(|v| v == "1")
}

fn progress(start: Instant, msg: &str) {
    if verbose() {
        eprintln!(
            "attnc: [{:>7.1} ms] {msg}",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn target_of(args: &Args) -> TargetSpec {
    match (&args.triple, &args.cpu) {
        (None, None) => TargetSpec::host(),
        (None, Some(cpu)) => TargetSpec::new(&TargetSpec::host().triple, cpu),
        (Some(t), cpu) => TargetSpec::new(t, cpu.as_deref().unwrap_or("generic")),
    }
    .with_features(args.features.as_deref())
}

trait WithFeatures {
    fn with_features(self, features: Option<&str>) -> Self;
}

impl WithFeatures for TargetSpec {
    fn with_features(mut self, features: Option<&str>) -> Self {
        if let Some(f) = features {
            self.features = f.to_string();
        }
        self
    }
}

fn pointer_bytes(target: &TargetSpec) -> usize {
    match target.arch() {
        "i386" | "i586" | "i686" | "arm" | "armv7" | "thumbv7em" | "wasm32" | "riscv32" => 4,
        _ => 8,
    }
}

/// The C declarations of the kernel's entry point: one memref descriptor struct per rank used,
/// then the `_mlir_ciface_` prototype.
/// The C type of one element, and how its name reads in the descriptor's comment.
fn c_element(d: DType) -> (&'static str, &'static str) {
    match d {
        DType::F64 => ("double", "f64"),
        DType::BF16 => ("uint16_t", "attn::half::bf16 (bit pattern)"),
        DType::F16 => ("uint16_t", "attn::half::f16 (bit pattern)"),
        DType::I32 => ("int32_t", "i32"),
        _ => ("float", "f32"),
    }
}

fn c_abi(kernel: &Kernel, def: &KernelDef, symbol: &str, target: &TargetSpec) -> String {
    let ptr = pointer_bytes(target);
    let mut args: Vec<(String, Vec<usize>, DType, &str)> = kernel
        .inputs
        .iter()
        .map(|i| (i.name.clone(), i.shape.clone(), i.dtype, "const "))
        .collect();
    args.push((
        "out".into(),
        kernel.output_shape().to_vec(),
        kernel.output_dtype(),
        "",
    ));
    let mut types: Vec<(&str, usize, DType)> =
        args.iter().map(|a| (a.2.name(), a.1.len(), a.2)).collect();
    types.sort_unstable_by_key(|t| (t.0, t.1));
    types.dedup_by_key(|t| (t.0, t.1));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "C ABI of kernel `{}` ({}; {}):",
        kernel.name,
        target.triple,
        match def.layout {
            Layout::Contiguous => "contiguous arguments: strides must be row-major, offset 0",
            Layout::Strided => "strided arguments: any strides and offset",
        }
    );
    let _ = writeln!(s, "#include <stdint.h>");
    for (name, r, dtype) in &types {
        let (cty, shown) = c_element(*dtype);
        let (sizes, strides) = (2 * ptr + 8, 2 * ptr + 8 + 8 * r);
        let _ = writeln!(
            s,
            "/* MLIR's ranked memref descriptor, rank {r}, elements {shown}: attn::MemRefDescriptor<{}, {r}> */",
            match dtype {
                DType::BF16 => "attn::half::bf16",
                DType::F16 => "attn::half::f16",
                _ => name,
            }
        );
        let _ = writeln!(s, "struct attn_memref_{name}_r{r} {{");
        let pad = " ".repeat(8usize.saturating_sub(cty.len()).max(1));
        let _ = writeln!(s, "    {cty}{pad}*allocated;   /* offset 0 */");
        let _ = writeln!(s, "    {cty}{pad}*aligned;     /* offset {ptr} */");
        let _ = writeln!(
            s,
            "    int64_t  offset;      /* offset {}, in elements */",
            2 * ptr
        );
        if *r > 0 {
            let _ = writeln!(s, "    int64_t  sizes[{r}];    /* offset {sizes} */");
            let _ = writeln!(
                s,
                "    int64_t  strides[{r}];  /* offset {strides}, in elements */"
            );
        }
        let _ = writeln!(s, "}};  /* {} bytes, align 8 */", strides + 8 * r);
    }
    let params: Vec<String> = args
        .iter()
        .map(|(name, shape, dtype, c)| {
            format!(
                "{c}struct attn_memref_{}_r{} *{name} /* {shape:?} */",
                dtype.name(),
                shape.len()
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "/* `out` is written; the kernel reads its inputs only. */\nvoid _mlir_ciface_{symbol}(\n    {});",
        params.join(",\n    ")
    );
    let _ = writeln!(
        s,
        "/* Scratch memory: the kernel calls these (Rust programs get them from attn-runtime;\n   elsewhere define them, e.g. as malloc and free). */\n\
         void *_mlir_memref_to_llvm_alloc(uint64_t size);\nvoid _mlir_memref_to_llvm_free(void *ptr);"
    );
    s
}

fn comment(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                prefix.trim_end().to_string()
            } else {
                format!("{prefix}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn temp_path(symbol: &str) -> std::path::PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("attnc-{}-{nanos}-{symbol}.s", std::process::id()))
}

fn run(args: &Args) -> Result<String, (u8, String)> {
    let start = Instant::now();
    let kernels = parse_spec(&args.spec).map_err(|e| (2, e))?;
    let kernels: Vec<Kernel> = match &args.kernel {
        None => kernels,
        Some(name) => {
            let names: Vec<String> = kernels.iter().map(|k| k.name.clone()).collect();
            let picked: Vec<Kernel> = kernels.into_iter().filter(|k| &k.name == name).collect();
            if picked.is_empty() {
                return Err((
                    2,
                    format!("error: no kernel `{name}` in the spec (it declares {names:?})"),
                ));
            }
            picked
        }
    };
    progress(start, &format!("parsed {} kernel(s)", kernels.len()));
    let target = target_of(args);
    if !matches!(target.arch(), "x86_64" | "aarch64") {
        return Err((
            2,
            format!(
                "error: unsupported --target `{}`: attn-build generates code for x86_64 and \
                 aarch64 triples",
                target.triple
            ),
        ));
    }
    let compiler = if args.emit == Emit::Abi {
        None
    } else {
        progress(
            start,
            &format!("MLIR context for {} ({})", target.triple, target.cpu),
        );
        let mut c = Compiler::for_target(target.clone()).map_err(|e| (1, format!("error: {e}")))?;
        let mut tiling = match &args.tiling {
            Some(tag) => Tiling::parse(tag).map_err(|e| (2, format!("error: --tiling: {e}")))?,
            None => c.tiling(),
        };
        tiling.mca_markers |= args.mca;
        c.set_tiling(tiling);
        Some(c)
    };
    let mut out = String::new();
    for kernel in &kernels {
        let def = kernel_def(kernel)
            .map_err(|e| (2, format!("error: {e}")))?
            .with_layout(args.layout);
        let symbol = kernel.symbol();
        let abi = c_abi(kernel, &def, &symbol, &target);
        let Some(c) = &compiler else {
            out.push_str(&abi);
            continue;
        };
        let (prefix, want_ir) = match args.emit {
            Emit::Stage(Stage::LlvmIr) => ("; ", true),
            Emit::Asm if target.arch() == "x86_64" => ("# ", false),
            _ => ("// ", false),
        };
        out.push_str(&comment(&abi, prefix));
        out.push('\n');
        let layout_map = match def.layout {
            Layout::Strided => "fully-dynamic-layout-map",
            Layout::Contiguous => "identity-layout-map",
        };
        let ir = def.to_transformer_ir(&symbol);
        let mut printed = None;
        let mut last = Instant::now();
        let module = c
            .lower(
                &kernel.name,
                &ir,
                layout_map,
                |stage, ir| {
                    progress(
                        start,
                        &format!(
                            "`{}`: {} ({:.1} ms)",
                            kernel.name,
                            stage.name(),
                            last.elapsed().as_secs_f64() * 1e3
                        ),
                    );
                    last = Instant::now();
                    if args.emit == Emit::Stage(stage) {
                        printed = Some(ir.text());
                    }
                },
                want_ir,
            )
            .map_err(|e| (1, format!("error: {e}")))?;
        match args.emit {
            Emit::Asm => {
                let path = temp_path(&symbol);
                let result = c
                    .emit(&kernel.name, &module, &path, OutputKind::Assembly)
                    .map_err(|e| (1, format!("error: {e}")))
                    .and_then(|times| {
                        let text = std::fs::read_to_string(&path)
                            .map_err(|e| (1, format!("error: reading {}: {e}", path.display())))?;
                        Ok((text, times))
                    });
                let _ = std::fs::remove_file(&path);
                let (text, times) = result?;
                progress(
                    start,
                    &format!(
                        "`{}`: assembly (translation {:.1} ms, LLVM optimization {:.1} ms, \
                         code generation {:.1} ms)",
                        kernel.name,
                        times.translate.as_secs_f64() * 1e3,
                        times.optimize.as_secs_f64() * 1e3,
                        times.codegen.as_secs_f64() * 1e3
                    ),
                );
                out.push_str(&text);
            }
            _ => out.push_str(&printed.unwrap_or_default()),
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    progress(start, "done");
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Usage(msg)) => {
            eprintln!("attnc: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err((code, msg)) => {
            eprintln!("{msg}");
            ExitCode::from(code)
        }
    }
}
