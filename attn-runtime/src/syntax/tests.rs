use super::*;
use quote::quote;

fn kernels(tokens: proc_macro2::TokenStream) -> syn::Result<Vec<Kernel>> {
    syn::parse2::<Invocation>(tokens)?.check()
}

fn error(tokens: proc_macro2::TokenStream) -> String {
    kernels(tokens).unwrap_err().to_string()
}

#[test]
fn declaration_form_is_attention() {
    let ks = kernels(quote! {
        /// Docs.
        pub fn window(q: [128, 64], k: [128, 64], v: [128, 64]) -> [128, 64];
    })
    .unwrap();
    assert_eq!(ks.len(), 1);
    let k = &ks[0];
    assert_eq!(k.output_shape(), &[128, 64]);
    assert_eq!(
        k.canonical(),
        "window(q:f32[128,64],k:f32[128,64],v:f32[128,64])->f32[128,64]{%3=attention(%0,%1,%2,scale=1.25e-1);return %3}"
    );
    assert!(k.symbol().starts_with("attn_window_"));
    assert_eq!(k.symbol().len(), "attn_window_".len() + 16);
}

#[test]
fn bodies_lets_and_options() {
    let ks = kernels(quote! {
        pub fn scores(q: [64, 32], k: [64, 32]) -> [64, 64] {
            softmax(scale(matmul(q, transpose(k)), 0.125))
        }
        #[attn(scale = 0.5)]
        fn odd(q: [2, 37, 80], k: [2, 53, 80], v: [2, 53, 24]) -> [2, 37, 24];
        fn lets(a: [3, 4], b: [3, 4]) -> [3, 3] {
            let s = add(a, b);
            let t = mul(s, a);
            matmul(t, transpose(s))
        }
        fn with_scale(q: [4, 8], k: [5, 8], v: [5, 2]) -> [4, 2] {
            attention(q, k, v, -1.0)
        }
    })
    .unwrap();
    assert_eq!(ks[0].nodes.len(), 4);
    assert_eq!(ks[1].output_shape(), &[2, 37, 24]);
    assert!(
        ks[1].canonical().contains("scale=5e-1"),
        "{}",
        ks[1].canonical()
    );
    assert_eq!(ks[2].output_shape(), &[3, 3]);
    assert!(ks[3].canonical().contains("scale=-1e0"));
}

#[test]
fn canonical_ignores_formatting_and_let_names() {
    let a =
        kernels(quote! { fn f(x: [2, 3]) -> [3, 2] { let t = transpose(x); softmax(t) } }).unwrap();
    let b = kernels(quote! { pub fn f(x: [2,3]) -> [3,2] { softmax((transpose(x))) } }).unwrap();
    assert_eq!(a[0].canonical(), b[0].canonical());
    assert_eq!(a[0].symbol(), b[0].symbol());
    let c = kernels(quote! { fn f(x: [2, 3]) -> [3, 2] { transpose(softmax(x)) } }).unwrap();
    assert_ne!(a[0].symbol(), c[0].symbol());
}

#[test]
fn errors() {
    let cases = [
        (
            quote! { fn f(x: [2, 2]) -> [2, 2] { relu(x) } },
            "unknown primitive `relu`",
        ),
        (
            quote! { fn f(x: [2, 2]) -> [2, 2] { softmax(x, x) } },
            "`softmax` takes 1 argument, got 2",
        ),
        (
            quote! { fn f(a: [2, 3], b: [4, 5]) -> [2, 5] { matmul(a, b) } },
            "inner dims differ",
        ),
        (
            quote! { fn f(a: [2, 3], b: [3, 2]) -> [2, 3] { add(a, b) } },
            "same shape",
        ),
        (
            quote! { fn f(a: [2, 3]) -> [3, 3] { softmax(a) } },
            "declared output shape [3, 3] differs from the inferred shape [2, 3]",
        ),
        (
            quote! { fn f(a: [0, 3]) -> [0, 3] { softmax(a) } },
            "zero dim",
        ),
        (
            quote! { fn f(a: [99999999999, 3]) -> [2, 3] { softmax(a) } },
            "absurd dim",
        ),
        (
            quote! { fn f(a: [2, 3]) -> [2, 3] { scale(a, a) } },
            "must be an f32 literal",
        ),
        (
            quote! { fn f(a: [2]) -> [2]; fn f(a: [2]) -> [2]; },
            "duplicate kernel name `f`",
        ),
        (
            quote! { #[attn(flash)] fn f(a: [2]) -> [2]; },
            "unknown option `flash`",
        ),
        (
            quote! { #[attn(causal)] fn f(q: [2, 2], k: [2, 2], v: [2, 2]) -> [2, 2]; },
            "not supported yet",
        ),
        (
            quote! { fn f(q: [2, 2], k: [2, 2]) -> [2, 2]; },
            "exactly 3 inputs",
        ),
        (quote! { fn f(a: [1, 1, 1, 1, 1]) -> [1] { a } }, "rank 5"),
        (quote! { fn f(a: [2]) -> [2] { b } }, "unknown name `b`"),
        (
            quote! { fn f(q: [2, 3], k: [2, 4], v: [2, 2]) -> [2, 2]; },
            "same head dim",
        ),
        (
            quote! { fn f(a: [65536, 65536]) -> [65536, 65536] { a } },
            "more than",
        ),
        (
            quote! { #[attn(dtype = f64)] fn f(a: [2]) -> [2] { a } },
            "unsupported dtype",
        ),
        (
            quote! { fn f(a: [2], a: [2]) -> [2] { a } },
            "declared twice",
        ),
        (quote! { fn f(out: [2]) -> [2] { out } }, "reserved"),
        (
            quote! { fn f(a: [2]) -> [2] { a } fn f_into(a: [2]) -> [2] { a } },
            "collides",
        ),
    ];
    for (tokens, want) in cases {
        let got = error(tokens.clone());
        assert!(got.contains(want), "{tokens}: got `{got}`, want `{want}`");
    }
}

#[test]
fn manifest_round_trip() {
    let m = Manifest {
        files: vec![ManifestFile {
            path: "/a/src/lib.rs".into(),
            display: "src/lib.rs".into(),
        }],
        kernels: vec![ManifestKernel {
            name: "f".into(),
            symbol: "attn_f_0".into(),
            location: "src/lib.rs:3".into(),
            canonical: "f(x:f32[2])->f32[2]{return %0}".into(),
        }],
        duplicates: vec![ManifestDuplicate {
            name: "g".into(),
            locations: vec!["src/lib.rs:4".into(), "src/lib.rs:9".into()],
        }],
    };
    assert_eq!(Manifest::parse(&m.render()), m);
}
