//! `Build::file`: kernels found in source files compile under the macro's symbols, a manifest
//! lists them, and a rebuild of unchanged kernels compiles nothing.

use attn_build::Build;
use attn_runtime::DType;
use attn_runtime::syntax::{Invocation, MANIFEST_EXTENSION, Manifest};
use std::{fs, path::PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-build-file-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

const SRC: &str = r#"
attn::attention! {
    /// Attention over odd shapes.
    pub fn odd(q: [37, 80], k: [53, 80], v: [53, 24]) -> [37, 24];
}
mod inner {
    attention! {
        pub fn probs(q: [19, 8], k: [23, 8]) -> [19, 23] {
            softmax(scale(matmul(q, transpose(k)), 0.3))
        }
        fn same(x: [4]) -> [4] { softmax(x) }
    }
}
attention! { fn same(x: [4]) -> [4] { softmax(x) } }
attention! { fn copy(x: [2, 3]) -> [2, 3] { x } }
attention! { fn rejected(x: [4]) -> [5] { softmax(x) } }
"#;

#[test]
fn file_kernels_compile_with_macro_symbols() {
    let dir = scratch("compile");
    let src = dir.join("lib.rs");
    fs::write(&src, SRC).unwrap();
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let build = || {
        Build::new()
            .file(&src)
            .file(&src)
            .out_dir(&out)
            .cargo_metadata(false)
            .compile("filekernels")
            .unwrap()
    };
    let report = build();
    let names: Vec<&str> = report.kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["odd", "probs", "copy"]);

    // The symbols are those the macro derives from the same tokens.
    let inv: Invocation =
        syn::parse_str("pub fn odd(q: [37, 80], k: [53, 80], v: [53, 24]) -> [37, 24];").unwrap();
    let k = inv.check().unwrap().remove(0);
    assert_eq!(report.kernels[0].symbol, k.symbol());

    let m = fs::read_to_string(out.join(format!("filekernels.{MANIFEST_EXTENSION}"))).unwrap();
    let m = Manifest::parse(&m);
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.kernels.len(), 3);
    assert_eq!(m.kernels[1].location, format!("{}:8", src.display()));
    assert_eq!(m.duplicates.len(), 1);
    assert_eq!(m.duplicates[0].name, "same");
    assert_eq!(m.duplicates[0].locations.len(), 2);
    assert_eq!(Manifest::read_dir(&out).unwrap().unwrap(), m);

    // The macro declares these kernels itself: the bindings file has none of them.
    let bindings = fs::read_to_string(&report.bindings).unwrap();
    assert!(!bindings.contains("static ODD"), "{bindings}");

    let archive = out.join("libfilekernels.a");
    let bytes = fs::read(&archive).unwrap();
    let needle = format!("_mlir_ciface_{}", k.symbol());
    assert!(bytes.windows(needle.len()).any(|w| w == needle.as_bytes()));

    // Unchanged kernels come from the cache; so does everything after an unrelated edit.
    assert!(build().kernels.iter().all(|k| k.cached));
    fs::write(
        &src,
        format!("// an unrelated edit\nfn helper() {{}}\n{SRC}"),
    )
    .unwrap();
    assert!(build().kernels.iter().all(|k| k.cached));
    let _ = fs::remove_dir_all(&dir);
}

const OPTIONS_SRC: &str = r#"
attn::attention! {
    #[attn(causal, kv_heads = 2, dtype = bf16)]
    pub fn gqa(q: [1, 4, 8, 16], k: [1, 2, 8, 16], v: [1, 2, 8, 16], mask: [1, 1, 8, 8]) -> [1, 4, 8, 16];
    #[attn(dtype = f64)]
    pub fn wide(q: [4, 8], k: [6, 8], bias: [4, 6]) -> [4, 8] {
        attention(q, k, k, mask = bias, causal = true)
    }
    #[attn(dtype = f16)]
    pub fn plain(q: [3, 8], k: [5, 8], v: [5, 8]) -> [3, 8];
    #[attn(dtype = f16, causal)]
    pub fn plain_causal(q: [3, 8], k: [5, 8], v: [5, 8]) -> [3, 8];
}
"#;

#[test]
fn option_kernels_compile_with_their_dtypes() {
    let dir = scratch("options");
    let src = dir.join("lib.rs");
    fs::write(&src, OPTIONS_SRC).unwrap();
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let report = Build::new()
        .file(&src)
        .out_dir(&out)
        .cargo_metadata(false)
        .compile("optionkernels")
        .unwrap();
    let names: Vec<&str> = report.kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["gqa", "wide", "plain", "plain_causal"]);
    let types: Vec<String> = report.kernels[0]
        .args
        .iter()
        .map(|(n, t)| format!("{n}: {t}"))
        .collect();
    assert_eq!(
        types,
        [
            "q: tensor<1x4x8x16xbf16>",
            "k: tensor<1x2x8x16xbf16>",
            "v: tensor<1x2x8x16xbf16>",
            "mask: tensor<1x1x8x8xf32>",
            "out: tensor<1x4x8x16xbf16>"
        ]
    );
    assert_eq!(report.kernels[1].args[2].1.to_string(), "tensor<4x6xf32>");
    assert_eq!(report.kernels[1].args[3].1.to_string(), "tensor<4x8xf64>");

    let kernels = syn::parse_str::<Invocation>(
        OPTIONS_SRC
            .trim()
            .strip_prefix("attn::attention! {")
            .unwrap()
            .strip_suffix('}')
            .unwrap(),
    )
    .unwrap()
    .check()
    .unwrap();
    let m = Manifest::read_dir(&out).unwrap().unwrap();
    for ((r, k), mk) in report.kernels.iter().zip(&kernels).zip(&m.kernels) {
        // The macro's symbols, and the manifest says which element types each argument has.
        assert_eq!(r.symbol, k.symbol());
        assert_eq!(mk.symbol, k.symbol());
        assert_eq!(mk.canonical, k.canonical());
        let want: Vec<DType> = k
            .inputs
            .iter()
            .map(|i| i.dtype)
            .chain([k.output_dtype()])
            .collect();
        assert_eq!(mk.dtypes, want);
    }
    assert_eq!(
        m.kernels[0].dtypes,
        [
            DType::BF16,
            DType::BF16,
            DType::BF16,
            DType::F32,
            DType::BF16
        ]
    );
    // Options are part of the symbol: the causal twin is another kernel.
    assert_ne!(report.kernels[2].symbol, report.kernels[3].symbol);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn missing_files_are_errors() {
    let e = Build::new()
        .file("/nonexistent/attn/src/lib.rs")
        .out_dir(scratch("missing"))
        .cargo_metadata(false)
        .compile("x")
        .unwrap_err();
    assert!(e.to_string().contains("Build::file"), "{e}");
}
