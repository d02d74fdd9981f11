use super::*;
use crate::DType;
use crate::options::AttentionOptions;
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
            quote! { fn f(q: [2, 2], k: [2, 2]) -> [2, 2]; },
            "exactly 3 inputs",
        ),
        (quote! { fn f(a: [1, 1, 1, 1, 1]) -> [1] { a } }, "rank 5"),
        (quote! { fn f(a: [2]) -> [2] { b } }, "unknown name `b`"),
        (
            quote! { fn f(q: [2, 3], k: [2, 4], v: [2, 2]) -> [2, 2]; },
            "k has shape [2, 4] but q has shape [2, 3]; the last dimensions (head dim D: 4 and 3) must match",
        ),
        (
            quote! { fn f(a: [65536, 65536]) -> [65536, 65536] { a } },
            "more than",
        ),
        (
            quote! { #[attn(dtype = f8)] fn f(a: [2]) -> [2] { a } },
            "unknown dtype `f8`",
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
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(tokens, want)| {
            let got = error(tokens.clone());
            (!got.contains(want)).then(|| format!("{tokens}: got `{got}`, want `{want}`"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
            dtypes: vec![DType::BF16, DType::F32, DType::BF16],
        }],
        duplicates: vec![ManifestDuplicate {
            name: "g".into(),
            locations: vec!["src/lib.rs:4".into(), "src/lib.rs:9".into()],
        }],
    };
    assert_eq!(Manifest::parse(&m.render()), m);
}

#[test]
fn manifests_without_dtypes_still_parse() {
    let m =
        Manifest::parse("# attn kernel manifest v1\nkernel\tf\tattn_f_0\tsrc/lib.rs:3\tf(..)\n");
    assert_eq!(m.kernels.len(), 1);
    assert!(m.kernels[0].dtypes.is_empty());
    let k = &kernels(quote! {
        #[attn(dtype = f16)]
        fn g(q: [4, 8], k: [4, 8], v: [4, 8], mask: [4, 4]) -> [4, 8];
    })
    .unwrap()[0];
    let r = ManifestKernel::new(k, "src/lib.rs:1");
    assert_eq!(
        r.dtypes,
        [DType::F16, DType::F16, DType::F16, DType::F32, DType::F16]
    );
    assert_eq!(r.symbol, k.symbol());
    let m = Manifest {
        kernels: vec![r],
        ..Manifest::default()
    };
    assert_eq!(Manifest::parse(&m.render()), m);
}

/// The one kernel of `tokens`.
fn kernel(tokens: proc_macro2::TokenStream) -> Kernel {
    kernels(tokens).unwrap().remove(0)
}

#[test]
fn options_parse_in_one_or_several_attributes() {
    let a = kernel(quote! {
        #[attn(causal, kv_heads = 2, dtype = f16, scale = 0.125)]
        fn f(q: [1, 4, 8, 16], k: [1, 2, 8, 16], v: [1, 2, 8, 16]) -> [1, 4, 8, 16];
    });
    let b = kernel(quote! {
        #[attn(dtype = f16)]
        #[attn(scale = 0.125, causal)]
        #[attn(kv_heads = 2)]
        fn f(q: [1, 4, 8, 16], k: [1, 2, 8, 16], v: [1, 2, 8, 16]) -> [1, 4, 8, 16];
    });
    assert_eq!(a, b);
    assert_eq!(a.dtype, DType::F16);
    assert_eq!(
        a.canonical(),
        "f(q:f16[1,4,8,16],k:f16[1,2,8,16],v:f16[1,2,8,16])->f16[1,4,8,16]{%3=attention(%0,%1,%2,scale=1.25e-1,causal);return %3}"
    );
    let item = syn::parse2::<Invocation>(quote! {
        #[attn(causal, kv_heads = 2, dtype = bf16)]
        fn f(q: [4, 8, 16], k: [2, 8, 16], v: [2, 8, 16]) -> [4, 8, 16];
    })
    .unwrap()
    .kernels
    .remove(0);
    assert!(item.options.attention.causal);
    assert!(item.options.attention_span("causal").is_some());
    assert_eq!(item.options.kv_heads.map(|k| k.0), Some(2));
    assert_eq!(item.options.dtype.map(|d| d.0), Some(DType::BF16));
    assert!(item.attrs.is_empty());
}

#[test]
fn causal_kernels_are_accepted_and_distinct() {
    let plain = kernel(quote! { fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4]; });
    let causal =
        kernel(quote! { #[attn(causal)] fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4]; });
    assert!(matches!(
        causal.nodes[0].op,
        Op::Attention {
            options: AttentionOptions {
                causal: true,
                scale: Some(0.5),
                ..
            },
            mask: None,
            ..
        }
    ));
    assert!(
        causal
            .canonical()
            .ends_with("scale=5e-1,causal);return %3}")
    );
    assert_ne!(plain.symbol(), causal.symbol());
    // A call's named arguments override the kernel's options.
    let overridden = kernel(
        quote! { #[attn(causal, scale = 0.25)] fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4] { attention(q, k, v, causal = false) } },
    );
    assert!(matches!(
        overridden.nodes[0].op,
        Op::Attention {
            options: AttentionOptions {
                causal: false,
                scale: Some(0.25),
                ..
            },
            ..
        }
    ));
    // The pre-option spec is unchanged for kernels without options.
    assert_eq!(
        plain.canonical(),
        "f(q:f32[8,4],k:f32[8,4],v:f32[8,4])->f32[8,4]{%3=attention(%0,%1,%2,scale=5e-1);return %3}"
    );
    // Sq != Sk (bottom-right aligned) at ranks 2 to 4.
    kernel(quote! { #[attn(causal)] fn f(q: [3, 4], k: [8, 4], v: [8, 2]) -> [3, 2]; });
    kernel(quote! { #[attn(causal)] fn f(q: [2, 3, 4], k: [2, 8, 4], v: [2, 8, 2]) -> [2, 3, 2]; });
    kernel(
        quote! { #[attn(causal)] fn f(q: [2, 2, 9, 4], k: [2, 2, 8, 4], v: [2, 2, 8, 2]) -> [2, 2, 9, 2]; },
    );
}

#[test]
fn grouped_query_heads() {
    let k = kernel(quote! {
        #[attn(kv_heads = 2)]
        fn gqa(q: [3, 6, 5, 8], k: [3, 2, 7, 8], v: [3, 2, 7, 4]) -> [3, 6, 5, 4];
    });
    assert_eq!(k.output_shape(), &[3, 6, 5, 4]);
    // kv_heads is an assertion: the spec (and symbol) is that of the same shapes without it.
    let without = kernel(quote! {
        fn gqa(q: [3, 6, 5, 8], k: [3, 2, 7, 8], v: [3, 2, 7, 4]) -> [3, 6, 5, 4];
    });
    assert_eq!(k.symbol(), without.symbol());
    // Multi-query (one KV head) at rank 3.
    kernel(
        quote! { #[attn(kv_heads = 1)] fn mqa(q: [4, 5, 8], k: [1, 7, 8], v: [1, 7, 8]) -> [4, 5, 8]; },
    );
}

#[test]
fn masks_in_declarations_and_bodies() {
    let k = kernel(quote! {
        fn m(q: [2, 4, 5, 8], k: [2, 2, 7, 8], v: [2, 2, 7, 8], mask: [5, 7]) -> [2, 4, 5, 8];
    });
    assert_eq!(k.inputs[3].dtype, DType::F32);
    assert!(
        k.canonical()
            .contains("attention(%0,%1,%2,scale=3.5355338e-1,mask=%3)"),
        "{}",
        k.canonical()
    );
    for mask in [
        quote!([5, 7]),
        quote!([1, 1, 5, 7]),
        quote!([2, 1, 5, 7]),
        quote!([1, 4, 5, 7]),
        quote!([2, 4, 5, 7]),
    ] {
        kernel(quote! {
            #[attn(dtype = bf16)]
            fn m(q: [2, 4, 5, 8], k: [2, 2, 7, 8], v: [2, 2, 7, 8], mask: #mask) -> [2, 4, 5, 8];
        });
    }
    // In a body: named arguments, after an optional positional scale.
    let k = kernel(quote! {
        #[attn(dtype = f64, causal)]
        fn b(q: [4, 8], k: [6, 8], v: [6, 8], bias: [4, 6]) -> [4, 8] {
            let a = attention(q, k, v, mask = bias, causal = false);
            attention(a, k, v, 0.5, mask = bias)
        }
    });
    assert_eq!(k.dtype, DType::F64);
    let dtypes: Vec<DType> = k.inputs.iter().map(|i| i.dtype).collect();
    assert_eq!(dtypes, [DType::F64, DType::F64, DType::F64, DType::F32]);
    assert_eq!(k.output_dtype(), DType::F64);
    assert_eq!(
        k.canonical(),
        "b(q:f64[4,8],k:f64[6,8],v:f64[6,8],bias:f32[4,6])->f64[4,8]{%4=attention(%0,%1,%2,scale=3.5355338e-1,mask=%3);%5=attention(%4,%1,%2,scale=5e-1,mask=%3,causal);return %5}"
    );
    // f32 kernels may compute their masks.
    kernel(quote! {
        fn c(q: [4, 8], k: [6, 8], v: [6, 8], a: [4, 6], b: [4, 6]) -> [4, 8] {
            attention(q, k, v, scale = 0.25, mask = add(a, b))
        }
    });
}

#[test]
fn dtypes_reach_every_value() {
    let k = kernel(quote! {
        #[attn(dtype = f64)]
        fn p(q: [4, 8], k: [6, 8]) -> [4, 6] { softmax(scale(matmul(q, transpose(k)), 0.5)) }
    });
    assert!(k.nodes.iter().all(|n| n.dtype == DType::F64));
    assert!(
        k.canonical()
            .starts_with("p(q:f64[4,8],k:f64[6,8])->f64[4,6]{")
    );
    let f32 = kernel(quote! {
        fn p(q: [4, 8], k: [6, 8]) -> [4, 6] { softmax(scale(matmul(q, transpose(k)), 0.5)) }
    });
    assert_ne!(k.symbol(), f32.symbol());
    let explicit = kernel(quote! {
        #[attn(dtype = f32)]
        fn p(q: [4, 8], k: [6, 8]) -> [4, 6] { softmax(scale(matmul(q, transpose(k)), 0.5)) }
    });
    assert_eq!(explicit.symbol(), f32.symbol());
    let symbols: std::collections::HashSet<String> = ["f32", "f64", "bf16", "f16"]
        .iter()
        .map(|d| {
            let d = syn::Ident::new(d, proc_macro2::Span::call_site());
            kernel(quote! { #[attn(dtype = #d)] fn a(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; })
                .symbol()
        })
        .collect();
    assert_eq!(symbols.len(), 4);
    // A copy is no primitive: fine in bf16.
    let c = kernel(quote! { #[attn(dtype = bf16)] fn c(x: [2, 3]) -> [2, 3] { x } });
    assert_eq!(c.canonical(), "c(x:bf16[2,3])->bf16[2,3]{return %0}");
}

#[test]
fn option_errors() {
    let cases = [
        (
            quote! { #[attn(kv_heads = 3)] fn f(q: [1, 6, 4, 8], k: [1, 2, 4, 8], v: [1, 2, 4, 8]) -> [1, 6, 4, 8]; },
            "`kv_heads = 3`, but k [1, 2, 4, 8] and v [1, 2, 4, 8] have 2 key/value heads",
        ),
        (
            quote! { #[attn(kv_heads = 2)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "needs heads",
        ),
        (
            quote! { #[attn(kv_heads = 0)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "integer literal",
        ),
        (
            quote! { #[attn(kv_heads = two)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "integer literal",
        ),
        (
            quote! { fn f(q: [1, 6, 4, 8], k: [1, 4, 4, 8], v: [1, 4, 4, 8]) -> [1, 6, 4, 8]; },
            "k has shape [1, 4, 4, 8] but q has shape [1, 6, 4, 8]; the query heads (6) must be a multiple of the key/value heads (4)",
        ),
        (
            quote! { fn f(q: [6, 4, 8], k: [2, 4, 8], v: [3, 4, 8]) -> [6, 4, 8]; },
            "v has shape [3, 4, 8] but k has shape [2, 4, 8]; k and v must have the same number of heads (Hkv: 3 and 2)",
        ),
        (
            quote! { fn f(q: [2, 6, 4, 8], k: [1, 2, 4, 8], v: [1, 2, 4, 8]) -> [2, 6, 4, 8]; },
            "k has shape [1, 2, 4, 8] but q has shape [2, 6, 4, 8]; the leading (batch) dimensions (B: 1 and 2) must match",
        ),
        (
            quote! { fn f(q: [4, 8], k: [5, 8], v: [5, 8], mask: [5, 4]) -> [4, 8]; },
            "mask has shape [5, 4]; compiled kernels take a mask [Sq, Sk] = [4, 5]; its dim 0 (5) must be Sq = 4",
        ),
        (
            quote! { fn f(q: [2, 3, 4, 8], k: [2, 3, 5, 8], v: [2, 3, 5, 8], mask: [3, 3, 4, 5]) -> [2, 3, 4, 8]; },
            "or of q's rank with each leading dim 1 or q's: [1|2, 1|3, 4, 5]; its dim 0 (3) must be 1 or B = 2",
        ),
        (
            quote! { fn f(q: [2, 3, 4, 8], k: [2, 3, 5, 8], v: [2, 3, 5, 8], mask: [3, 4, 5]) -> [2, 3, 4, 8]; },
            "mask has shape [3, 4, 5]; compiled kernels take a mask [Sq, Sk] = [4, 5], or of q's rank",
        ),
        (
            quote! { fn f(q: [4, 8], k: [5, 8], v: [5, 8], bias: [4, 5]) -> [4, 8]; },
            "must be named `mask`, `sinks` or `alibi`, not `bias`",
        ),
        (
            quote! { #[attn(dtype = bf16)] fn f(a: [2, 2], b: [2, 2]) -> [2, 2] { matmul(a, b) } },
            "`matmul` has no bf16 lowering",
        ),
        (
            quote! { #[attn(dtype = f16)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 4] { softmax(attention(q, k, v)) } },
            "`softmax` has no f16 lowering",
        ),
        (
            quote! { #[attn(dtype = half::bf16)] fn f(a: [2]) -> [2] { a } },
            "unknown dtype `half :: bf16`",
        ),
        (
            quote! { #[attn(causal = true)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "`causal` takes no value",
        ),
        (
            quote! { #[attn(causal, causal)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "option `causal` is given twice",
        ),
        (
            quote! { #[attn(scale = 0.5)] #[attn(scale = 0.5)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "option `scale` is given twice",
        ),
        (
            quote! { #[attn(causal)] fn f(x: [4, 8]) -> [4, 8] { softmax(x) } },
            "`causal` is an option of `attention`, which this kernel does not compute",
        ),
        (
            quote! { #[attn(kv_heads = 1)] fn f(x: [4, 8]) -> [4, 8] { softmax(x) } },
            "`kv_heads` is an option of `attention`",
        ),
        (
            quote! { #[attn(scale = 1e40)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "option `scale`: the scale must be finite, got inf",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, scale = -1e40) } },
            "option `scale`: the scale must be finite, got -inf",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, 1e40) } },
            "option `scale`: the scale must be finite",
        ),
        (
            quote! { #[attn(scale)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "`scale` takes a value, like `scale = ..`",
        ),
        (
            quote! { #[attn(kv_heads)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "`kv_heads` takes a value",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, causal = true, causal = false) } },
            "`causal` is given twice in this `attention`",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8], m: [1, 4]) -> [4, 8] { attention(q, k, v, mask = m) } },
            "mask has shape [1, 4]; compiled kernels take a mask [Sq, Sk] = [4, 4]; its dim 0 (1) must be Sq = 4",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, bias = q) } },
            "unknown argument of `attention`",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, 0.5, scale = 0.5) } },
            "`scale` is given twice",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, causal = yes) } },
            "`causal` is `true` or `false`",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, q) } },
            "must be an f32 literal",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, 0.5, q) } },
            "expected a named argument",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8]) -> [4, 8] { attention(q, k) } },
            "`attention` takes q, k and v, got 2 arguments",
        ),
        (
            quote! { #[attn(dtype = bf16)] fn f(q: [4, 4], k: [4, 4], v: [4, 4]) -> [4, 4] { attention(q, k, v, mask = q) } },
            "used both as an attention mask (always f32) and as a bf16 tensor",
        ),
        (
            quote! { #[attn(dtype = f64)] fn f(q: [4, 4], k: [4, 4], v: [4, 4], a: [4, 4]) -> [4, 4] { attention(q, k, v, mask = softmax(a)) } },
            "it must be an input of the kernel, not a computed (f64) value",
        ),
        (
            quote! { #[attn(dtype = bf16)] fn f(q: [4, 4], k: [4, 4], v: [4, 4], m: [4, 4]) -> [4, 4] { let o = attention(q, k, v, mask = m); m } },
            "used both as an attention mask",
        ),
    ];
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(tokens, want)| {
            let got = error(tokens.clone());
            (!got.contains(want)).then(|| format!("{tokens}: got `{got}`, want `{want}`"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

mod variants;
