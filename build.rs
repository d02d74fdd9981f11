//! Compiles the default kernel set of `attn`: dynamic-shape f32 kernels for every primitive and
//! for attention, through the MLIR pipeline of `attn-build`.

use attn_build::{
    Build,
    graph::{AttentionOptions, Codegen, Dim, ElementType, Graph, KernelDef, Scale, TensorType},
};

fn dynamic(rank: usize) -> TensorType {
    TensorType::f32_dynamic(rank)
}

fn kernels() -> Result<Vec<KernelDef>, attn_build::GraphError> {
    let mut out = Vec::new();
    for rank in [2, 3] {
        let mut g = Graph::new();
        let (a, b) = (g.input("a", dynamic(rank)), g.input("b", dynamic(rank)));
        let c = g.matmul(a, b)?;
        out.push(KernelDef::new(&format!("matmul_r{rank}"), g, c));
    }
    for rank in 2..=4 {
        let mut g = Graph::new();
        let x = g.input("x", dynamic(rank));
        let y = g.transpose(x)?;
        out.push(KernelDef::new(&format!("transpose_r{rank}"), g, y));
    }
    for rank in 1..=4 {
        let mut g = Graph::new();
        let x = g.input("x", dynamic(rank));
        let y = g.softmax(x)?;
        if rank == 2 {
            // The loop pipeline's softmax: the baseline of `attn::baseline::softmax`.
            out.push(KernelDef::new("softmax_loops_r2", g.clone(), y).with_codegen(Codegen::Loops));
        }
        out.push(KernelDef::new(&format!("softmax_r{rank}"), g, y));

        for (name, op) in [
            ("add", Graph::add as fn(&mut Graph, _, _) -> _),
            ("mul", Graph::mul),
        ] {
            let mut g = Graph::new();
            let (a, b) = (g.input("a", dynamic(rank)), g.input("b", dynamic(rank)));
            let c = op(&mut g, a, b)?;
            out.push(KernelDef::new(&format!("{name}_r{rank}"), g, c));
        }

        // `attn::scale` takes its factor at run time: a rank-0 operand of `transformer.mul`.
        let mut g = Graph::new();
        let (x, s) = (g.input("x", dynamic(rank)), g.input("factor", dynamic(0)));
        let y = g.mul(x, s)?;
        out.push(KernelDef::new(&format!("scale_r{rank}"), g, y));
    }
    // Attention over [Sq, D] x [Sk, D] x [Sk, Dv]; batch and head dims are walked from Rust,
    // which calls this kernel on sub-views (and splits the work across threads).
    let mut g = Graph::new();
    let q = g.input("q", dynamic(2));
    let k = g.input("k", dynamic(2));
    let v = g.input("v", dynamic(2));
    let s = g.input("scale", dynamic(0));
    let o = g.attention(q, k, v, Scale::Input(s))?;
    out.push(KernelDef::new("attention_r2", g.clone(), o));
    // The same graph through the tutorial's loop pipeline (no fusion, no tiling): the baseline
    // that benchmarks compare against (`attn::baseline`).
    out.push(KernelDef::new("attention_loops_r2", g, o).with_codegen(Codegen::Loops));
    // Every dtype: dense (`attention[_<dtype>]_r2`; the f32 one is `attention_r2` above), and
    // every option at run time (below).
    for element in ElementType::ALL {
        let suffix = match element {
            ElementType::F32 => String::new(),
            other => format!("_{}", other.name()),
        };
        if element != ElementType::F32 {
            let ty = |rank| TensorType::new(element, &vec![Dim::Dynamic; rank]);
            let mut g = Graph::new();
            let q = g.input("q", ty(2));
            let k = g.input("k", ty(2));
            let v = g.input("v", ty(2));
            let s = g.input("scale", TensorType::new(element.compute(), &[]));
            let o = g.attention_with(
                q,
                k,
                v,
                AttentionOptions {
                    scale_input: Some(s),
                    ..AttentionOptions::default()
                },
            )?;
            out.push(KernelDef::new(&format!("attention{suffix}_r2"), g, o));
        }
        // Every option at run time (`attention_opts[_mask][_<dtype>]_r2`): per-row positions
        // (f32), a window `(left, right)` (f32 [2]; causal is right = min(right, 0)), a softcap
        // (f32 []; not positive: off), per-row sinks and ALiBi slopes (f32 [Sq]; -inf / 0: none),
        // and the rows' log-sum-exp as a second output (`lse`, compute type).
        for (variant, mask) in [("_opts", false), ("_opts_mask", true)] {
            let ty = |rank| TensorType::new(element, &vec![Dim::Dynamic; rank]);
            let mut g = Graph::new();
            let q = g.input("q", ty(2));
            let k = g.input("k", ty(2));
            let v = g.input("v", ty(2));
            let s = g.input("scale", TensorType::new(element.compute(), &[]));
            let mask = mask.then(|| g.input("mask", dynamic(2)));
            let positions = g.input("positions", dynamic(1));
            let window = g.input("window", TensorType::f32(&[Dim::Static(2)]));
            let softcap = g.input("softcap", dynamic(0));
            let sinks = g.input("sinks", dynamic(1));
            let slopes = g.input("slopes", dynamic(1));
            let (o, lse) = g.attention_lse(
                q,
                k,
                v,
                AttentionOptions {
                    scale_input: Some(s),
                    mask,
                    positions: Some(positions),
                    window_input: Some(window),
                    softcap_input: Some(softcap),
                    sinks: Some(sinks),
                    alibi: Some(slopes),
                    ..AttentionOptions::default()
                },
            )?;
            out.push(
                KernelDef::new(&format!("attention{variant}{suffix}_r2"), g, o)
                    .with_output("lse", lse),
            );
        }
    }
    Ok(out)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let defs = match kernels() {
        Ok(defs) => defs,
        Err(e) => return fail(&e.to_string()),
    };
    let mut build = Build::new();
    // docs.rs: no LLVM there, so write the kernels' declarations without compiling anything (the
    // same happens without the `codegen` feature, which docs.rs turns off; see Cargo.toml).
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    if std::env::var_os("DOCS_RS").is_some() {
        build.skip_codegen(true);
    }
    for def in defs {
        build.kernel(def);
    }
    // Statically shaped kernels declared with `attn::attention!` in the examples.
    build.file("examples/custom_kernel.rs");
    // Score and mask mods, and the tutorial's composition fused (examples/mods.rs).
    build.file("examples/mods.rs");
    if let Err(e) = build.compile("attn_kernels") {
        fail(&e.to_string());
    }
}

/// Fails the build with one `cargo::error=` line per line of the message (no panic backtrace).
fn fail(message: &str) {
    for line in message.lines() {
        println!("cargo::error={line}");
    }
}
