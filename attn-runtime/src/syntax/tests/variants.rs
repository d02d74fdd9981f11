//! The variant options: window, softcap, sinks and ALiBi.

use super::super::*;
use super::{error, kernel};
use crate::DType;
use quote::quote;

#[test]
fn window_softcap_sinks_and_alibi() {
    let k = kernel(quote! {
        #[attn(causal, window = (63, 0), softcap = 30.0)]
        fn local(q: [1, 4, 16, 32], k: [1, 2, 16, 32], v: [1, 2, 16, 32], sinks: [4], alibi: [4]) -> [1, 4, 16, 32];
    });
    assert_eq!(
        k.canonical(),
        "local(q:f32[1,4,16,32],k:f32[1,2,16,32],v:f32[1,2,16,32],sinks:f32[4],alibi:f32[4])->f32[1,4,16,32]{%5=attention(%0,%1,%2,scale=1.7677669e-1,window=(63,0),softcap=3e1,sinks=%3,alibi=%4,causal);return %5}"
    );
    // Inputs after q, k, v in any order; sinks and alibi stay f32 in other dtypes.
    let k = kernel(quote! {
        #[attn(dtype = bf16)]
        fn f(q: [2, 8], k: [5, 8], v: [5, 8], alibi: [2], mask: [2, 5]) -> [2, 8];
    });
    assert_eq!(
        k.inputs.iter().map(|i| i.dtype).collect::<Vec<_>>(),
        [
            DType::BF16,
            DType::BF16,
            DType::BF16,
            DType::F32,
            DType::F32
        ]
    );
    assert!(
        k.canonical().contains(",mask=%4,alibi=%3)"),
        "{}",
        k.canonical()
    );
    // Named arguments in bodies override the kernel's options; usize::MAX is unbounded.
    let k = kernel(quote! {
        #[attn(window = (4, 4), softcap = 5.0)]
        fn b(q: [3, 8], k: [6, 8], v: [6, 8], s: [3], a: [3]) -> [3, 8] {
            attention(q, k, v, window = (18446744073709551615, 0), softcap = 2.5, sinks = s, alibi = a)
        }
    });
    match &k.nodes[0].op {
        Op::Attention {
            sinks,
            alibi,
            options,
            ..
        } => {
            assert_eq!(options.window, Some((usize::MAX, 0)));
            assert_eq!(options.softcap, Some(2.5));
            assert_eq!(
                (*sinks, *alibi),
                (Some(Value::Input(3)), Some(Value::Input(4)))
            );
        }
        other => panic!("{other:?}"),
    }
    // Different options are different kernels.
    let plain = kernel(quote! { fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4]; });
    let w = kernel(
        quote! { #[attn(window = (2, 2))] fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4]; },
    );
    let c =
        kernel(quote! { #[attn(softcap = 2.0)] fn f(q: [8, 4], k: [8, 4], v: [8, 4]) -> [8, 4]; });
    assert_ne!(plain.symbol(), w.symbol());
    assert_ne!(plain.symbol(), c.symbol());
    assert_ne!(w.symbol(), c.symbol());
}

#[test]
fn window_softcap_sinks_and_alibi_errors() {
    let cases = [
        (
            quote! { #[attn(window = 3)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "`window` is `(left, right)`, two integer literals",
        ),
        (
            quote! { #[attn(window = (1, 2, 3))] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "got 3 values",
        ),
        (
            quote! { #[attn(window = (-1, 2))] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "a side cannot be negative",
        ),
        (
            quote! { #[attn(window = (1.5, 2))] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "this one is not an integer literal",
        ),
        (
            quote! { #[attn(window)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "`window` takes a value",
        ),
        (
            quote! { #[attn(softcap = -30.0)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "option `softcap`: the softcap must be positive and finite, got -30",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, softcap = 0.0) } },
            "option `softcap`: the softcap must be positive and finite, got 0",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, softcap = q) } },
            "the softcap must be an f32 literal",
        ),
        (
            quote! { #[attn(softcap = 2.0, softcap = 3.0)] fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8]; },
            "option `softcap` is given twice",
        ),
        (
            quote! { #[attn(window = (1, 1))] fn f(x: [4, 8]) -> [4, 8] { softmax(x) } },
            "`window` is an option of `attention`, which this kernel does not compute",
        ),
        (
            quote! { fn f(q: [2, 4, 8], k: [2, 4, 8], v: [2, 4, 8], sinks: [3]) -> [2, 4, 8]; },
            "sinks has shape [3] but must be [Hq] = [2]: one sink logit per query head of q [2, 4, 8]",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8], alibi: [1]) -> [4, 8]; },
            "alibi has shape [1] but must be [Sq] = [4]: one ALiBi slope per query row (rank 2: one head) of q [4, 8]",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8], sink: [1]) -> [4, 8]; },
            "must be named `mask`, `sinks` or `alibi`, not `sink`",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8], s: [4]) -> [4, 8] { attention(q, k, v, sinks = s, sinks = s) } },
            "`sinks` is given twice in this `attention`",
        ),
        (
            quote! { #[attn(dtype = f16)] fn f(q: [4, 8], k: [4, 8], v: [4, 8], s: [1]) -> [4, 8] { attention(q, k, v, alibi = softmax(s)) } },
            "`softmax` has no f16 lowering",
        ),
        (
            quote! { #[attn(dtype = f64)] fn f(q: [4, 8], k: [4, 8], v: [4, 8], s: [1]) -> [4, 8] { attention(q, k, v, alibi = softmax(s)) } },
            "`alibi` (the ALiBi slopes) is f32: in a `dtype = f64` kernel it must be an input",
        ),
        (
            quote! { fn f(q: [4, 8], k: [4, 8], v: [4, 8]) -> [4, 8] { attention(q, k, v, sink = q) } },
            "unknown argument of `attention`",
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
