//! The score/mask mod grammar of `attention`: the three examples of the README, canonical
//! specs, and errors at the offending tokens.

use super::*;
use crate::DType;
use crate::mods::{Kind, Var};
use quote::quote;

fn kernels(tokens: proc_macro2::TokenStream) -> syn::Result<Vec<Kernel>> {
    syn::parse2::<Invocation>(tokens)?.check()
}

/// The message and the source text of the tokens it points at.
fn error(src: &str) -> (String, String) {
    let e = syn::parse_str::<Invocation>(src)
        .and_then(|i| i.check())
        .unwrap_err();
    let at = e.span().source_text().unwrap_or_default();
    (e.to_string(), at)
}

fn mods_of(k: &Kernel) -> &AttentionMods {
    match &k.nodes.last().unwrap().op {
        Op::Attention { mods: Some(m), .. } => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_readme_examples_check() {
    let ks = kernels(quote! {
        #[attn(causal)]
        pub fn docs(q: [4, 256, 64], k: [4, 256, 64], v: [4, 256, 64], doc: [256] as i32) -> [4, 256, 64] {
            attention(q, k, v, mask_mod = |b, h, i, j| doc[i] == doc[j])
        }
        pub fn prefix_lm(q: [2, 128, 32], k: [2, 128, 32], v: [2, 128, 32]) -> [2, 128, 32] {
            attention(q, k, v, mask_mod = |b, h, i, j| j <= i || j < 64)
        }
        pub fn relpos(q: [2, 64, 32], k: [2, 64, 32], v: [2, 64, 32], bias: [2, 127]) -> [2, 64, 32] {
            attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 63])
        }
    })
    .unwrap();
    assert_eq!(ks[0].inputs[3].dtype, DType::I32);
    assert_eq!(
        ks[0].canonical(),
        "docs(q:f32[4,256,64],k:f32[4,256,64],v:f32[4,256,64],doc:i32[256])->f32[4,256,64]\
         {%4=attention(%0,%1,%2,scale=1.25e-1,causal,mask_mod=(%3[i]==%3[j]));return %4}"
    );
    assert_eq!(mods_of(&ks[0]).inputs, vec![Value::Input(3)]);
    assert!(ks[1].canonical().contains("mask_mod=((j<=i)||(j<64))"));
    assert_eq!(ks[2].inputs[3].dtype, DType::F32);
    assert!(
        ks[2]
            .canonical()
            .contains("score_mod=(s+%3[h][((j-i)+63)])"),
        "{}",
        ks[2].canonical()
    );
    // Parameter names are free; the canonical spec names them by position.
    let renamed = kernels(quote! {
        pub fn prefix_lm(q: [2, 128, 32], k: [2, 128, 32], v: [2, 128, 32]) -> [2, 128, 32] {
            attention(q, k, v, mask_mod = |_batch, _, row, col| col <= row || col < 64)
        }
    })
    .unwrap();
    assert_eq!(renamed[0].symbol(), ks[1].symbol());
}

#[test]
fn every_construct_converts() {
    let ks = kernels(quote! {
        #[attn(dtype = bf16, kv_heads = 1)]
        fn all(q: [2, 4, 16, 8], k: [2, 1, 16, 8], v: [2, 1, 16, 8], t: [16] as i32, w: [4, 16] as f32) -> [2, 4, 16, 8] {
            attention(q, k, v,
                score_mod = |s, b, h, i, j| {
                    (if (i - j) % 2 == 0 && !(b > 0) { s * 0.5 } else { tanh(s).max(-1.0) + w[h][min(j, 15)] })
                        + exp(-(abs(i - j) as f32)) + sqrt(2.0) * (t[j] as f32) / 3.0
                },
                mask_mod = |b, h, i, j| (j as f32) <= (i as f32) * 1.5 || max(i, j) != 3,
                causal = true)
        }
    })
    .unwrap();
    let m = mods_of(&ks[0]);
    assert_eq!(m.inputs, vec![Value::Input(4), Value::Input(3)]);
    assert_eq!(ks[0].inputs[3].dtype, DType::I32);
    assert_eq!(ks[0].inputs[4].dtype, DType::F32);
    let score = m.mods.score.as_ref().unwrap();
    assert!(score.uses(Var::Score) && score.uses(Var::Batch));
    assert!(matches!(score.kind, Kind::Binary(..)));
}

fn case(body: &str) -> (String, String) {
    error(&format!(
        "fn k(q: [2, 64, 32], k: [2, 64, 32], v: [2, 64, 32], doc: [64] as i32, bias: [2, 127], \
         m: [64, 64]) -> [2, 64, 32] {{ {body} }}"
    ))
}

#[test]
fn errors_point_at_the_offending_tokens() {
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            r#"attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 64])"#,
            "can leave the bounds of `bias`",
            "j - i + 64",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i, j| doc[doc[j]] == 0)"#,
            "unknown ranges",
            "doc[j]",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i, j| j + 1)"#,
            "returns whether key `j` is visible",
            "j + 1",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i| i < 3)"#,
            "takes 4 parameters, got 3",
            "|b, h, i|",
        ),
        (
            r#"attention(q, k, v, score_mod = |s, b, h, i, j| s + j)"#,
            "convert one side",
            "s + j",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i, j| dog[i] == 0)"#,
            "unknown name `dog`",
            "dog",
        ),
        (
            r#"attention(q, k, v, score_mod = |s, b, h, i, j| softplus(s))"#,
            "unknown function `softplus`",
            "softplus",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i, j| j / (i - 5) > 0)"#,
            "can be zero",
            "i - 5",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i, j| bias[h] > 0.0)"#,
            "index it with 2 indices",
            "bias[h]",
        ),
        (
            r#"attention(q, k, v, mask = doc)"#,
            "declared `as i32`",
            "doc",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i, j| j < i, mask_mod = |b, h, i, j| true)"#,
            "given twice",
            "mask_mod",
        ),
        (
            r#"attention(q, k, v, mask_mod = j < 3)"#,
            "takes a closure",
            "j < 3",
        ),
        (
            r#"attention(q, k, v, score_mod = |s, b, h, i, j| exp(i))"#,
            "`exp` takes a float",
            "exp(i)",
        ),
        (
            r#"attention(q, k, v, mask_mod = |b, h, i, j| if j < 3 { true })"#,
            "needs an `else`",
            "if j < 3 { true }",
        ),
        (
            r#"let x = add(m, m); attention(q, k, v, mask_mod = |b, h, i, j| x[i][j] > 0.0)"#,
            "computed value",
            "x",
        ),
        (
            r#"attention(q, k, v, score_mod = |s, b, h, i, j| s << 1)"#,
            "unsupported operator `<<`",
            "<<",
        ),
    ];
    for (body, message, at) in cases {
        let (got, span) = case(body);
        assert!(got.contains(message), "{body}: {got}");
        assert_eq!(span, at, "{body}: {got}");
    }
    let (got, span) = error(
        "fn k(q: [8, 4], k: [8, 4], v: [8, 4], t: [8] as u8) -> [8, 4] { attention(q, k, v) }",
    );
    assert!(got.contains("`as i32`"), "{got}");
    assert_eq!(span, "u8");
}
