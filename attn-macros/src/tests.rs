use super::*;
use attn_runtime::syntax::{ManifestFile, ManifestKernel};

fn ctx(out_dir: Option<&Path>) -> Context {
    Context {
        out_dir: out_dir.map(Path::to_path_buf),
        manifest_dir: None,
        file: None,
        docs_rs: false,
    }
}

fn kernel(tokens: TokenStream) -> Kernel {
    syn::parse2::<Invocation>(tokens)
        .unwrap()
        .check()
        .unwrap()
        .remove(0)
}

#[test]
fn generates_typed_functions() {
    let tokens = quote! {
        /// Docs.
        pub fn window(q: [4, 8], k: [6, 8], v: [6, 2]) -> [4, 2];
    };
    let text = expand(
        tokens,
        &Context {
            docs_rs: true,
            ..ctx(None)
        },
    )
    .to_string();
    for want in [
        "pub fn window (q : & [[f32 ; 8usize] ; 4usize] , k : & [[f32 ; 8usize] ; 6usize] , v : & [[f32 ; 2usize] ; 6usize]) -> :: std :: boxed :: Box < [[f32 ; 2usize] ; 4usize] >",
        "pub fn window_into (q : & [[f32 ; 8usize] ; 4usize] , k : & [[f32 ; 8usize] ; 6usize] , v : & [[f32 ; 2usize] ; 6usize] , out : & mut [[f32 ; 2usize] ; 4usize])",
        "KernelFn :: A4 (__attn_entry)",
        "zeroed_box",
        "# [doc = r\" Docs.\"]",
    ] {
        assert!(text.contains(want), "missing `{want}` in {text}");
    }
    assert!(!text.contains("compile_error"), "{text}");
    let k = kernel(quote!(fn window(q: [4, 8], k: [6, 8], v: [6, 2]) -> [4, 2];));
    assert!(
        text.contains(&format!("_mlir_ciface_{}", k.symbol())),
        "{text}"
    );
}

#[test]
fn manifest_decides() {
    let k = kernel(quote!(fn f(x: [2, 3]) -> [2, 3] { softmax(x) }));
    let dir = std::env::temp_dir().join(format!("attn-macros-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let e = built(&ctx(None), None, &k).unwrap_err();
    assert!(e.contains("no build script"), "{e}");
    let e = built(&ctx(Some(&dir)), None, &k).unwrap_err();
    assert!(e.contains("compiled no `attention!` kernels"), "{e}");

    let mut m = Manifest::default();
    m.files.push(ManifestFile {
        path: "/nowhere/src/other.rs".into(),
        display: "src/other.rs".into(),
    });
    let e = built(&ctx(Some(&dir)), Some(&m), &k).unwrap_err();
    assert!(e.contains("add `.file(\"src/lib.rs\")`"), "{e}");

    m.kernels.push(ManifestKernel {
        name: "f".into(),
        symbol: "attn_f_0000".into(),
        location: "src/other.rs:3".into(),
        canonical: "f(..)".into(),
        dtypes: Vec::new(),
    });
    let e = built(&ctx(Some(&dir)), Some(&m), &k).unwrap_err();
    assert!(e.contains("different definition"), "{e}");

    m.kernels[0].symbol = k.symbol();
    assert!(built(&ctx(Some(&dir)), Some(&m), &k).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn grammar_errors_become_compile_errors() {
    let text = expand(quote!(fn f(x: [2]) -> [3] { softmax(x) }), &ctx(None)).to_string();
    assert!(text.contains("compile_error"), "{text}");
    assert!(text.contains("differs from the inferred shape"), "{text}");
    assert!(!text.contains("fn f"), "{text}");
}

#[test]
fn element_types_and_masks_reach_the_signatures() {
    let tokens = quote! {
        #[attn(causal, kv_heads = 2, dtype = bf16)]
        pub fn gqa(q: [1, 4, 3, 8], k: [1, 2, 5, 8], v: [1, 2, 5, 8], mask: [3, 5]) -> [1, 4, 3, 8];
    };
    let text = expand(
        tokens.clone(),
        &Context {
            docs_rs: true,
            ..ctx(None)
        },
    )
    .to_string();
    let bf = "[[[[:: attn :: half :: bf16 ; 8usize] ; 3usize] ; 4usize] ; 1usize]";
    let kv = "[[[[:: attn :: half :: bf16 ; 8usize] ; 5usize] ; 2usize] ; 1usize]";
    for want in [
        format!(
            "pub fn gqa (q : & {bf} , k : & {kv} , v : & {kv} , mask : & [[f32 ; 5usize] ; 3usize]) -> :: std :: boxed :: Box < {bf} >"
        ),
        format!(
            "pub fn gqa_into (q : & {bf} , k : & {kv} , v : & {kv} , mask : & [[f32 ; 5usize] ; 3usize] , out : & mut {bf})"
        ),
        "ArgSpec :: input (\"q\" , :: attn :: __private :: DType :: BF16 , 4usize)".into(),
        "ArgSpec :: input (\"mask\" , :: attn :: __private :: DType :: F32 , 2usize)".into(),
        "ArgSpec :: output (\"out\" , :: attn :: __private :: DType :: BF16 , 4usize)".into(),
        "KernelFn :: A5 (__attn_entry)".into(),
        "mask: f32[3, 5]) -> bf16[1, 4, 3, 8]` (causal, 2 key/value heads)".into(),
    ] {
        assert!(text.contains(&want), "missing `{want}` in {text}");
    }
    assert!(!text.contains("compile_error"), "{text}");
    let k = kernel(tokens);
    assert!(text.contains(&format!("_mlir_ciface_{}", k.symbol())));

    let text = expand(
        quote! { #[attn(dtype = f64)] fn s(x: [2, 3]) -> [2, 3] { softmax(x) } },
        &Context {
            docs_rs: true,
            ..ctx(None)
        },
    )
    .to_string();
    assert!(
        text.contains("fn s (x : & [[f64 ; 3usize] ; 2usize]) -> :: std :: boxed :: Box < [[f64 ; 3usize] ; 2usize] >"),
        "{text}"
    );
    assert!(text.contains("DType :: F64"), "{text}");
    let text = expand(
        quote! { #[attn(dtype = f16)] fn h(q: [2, 4], k: [2, 4], v: [2, 4]) -> [2, 4]; },
        &Context {
            docs_rs: true,
            ..ctx(None)
        },
    )
    .to_string();
    assert!(text.contains(":: attn :: half :: f16 ; 4usize"), "{text}");
    assert!(text.contains("DType :: F16"), "{text}");
}

#[test]
fn a_build_of_other_options_is_a_different_definition() {
    let plain = kernel(quote!(fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8];));
    let causal = kernel(quote!(#[attn(causal)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8];));
    let dir = std::env::temp_dir().join(format!("attn-macros-test-opt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = Manifest::default();
    m.kernels.push(attn_runtime::syntax::ManifestKernel::new(
        &plain,
        "src/lib.rs:3",
    ));
    let e = built(&ctx(Some(&dir)), Some(&m), &causal).unwrap_err();
    assert!(
        e.contains("different definition") && e.contains(",causal)"),
        "{e}"
    );
    assert!(built(&ctx(Some(&dir)), Some(&m), &plain).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
