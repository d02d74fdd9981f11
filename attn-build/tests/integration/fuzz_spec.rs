//! Fuzzing the kernel-spec grammar shared by `attention!` and `Build::file` (a proptest token
//! fuzzer that runs on stable): random token streams and random structured specs never panic;
//! they parse and check to kernels, or give errors. `ATTN_PROPTEST_CASES` raises the case count.

use attn_runtime::syntax::Invocation;
use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

fn cases(default: u32) -> u32 {
    std::env::var("ATTN_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const TOKENS: &[&str] = &[
    "pub",
    "fn",
    "let",
    "attention",
    "matmul",
    "transpose",
    "softmax",
    "scale",
    "add",
    "mul",
    "q",
    "k",
    "v",
    "x",
    "out",
    "foo",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    ":",
    "->",
    "=",
    "#",
    "#[attn(causal)]",
    "#[attn(scale = 0.5)]",
    "#[attn(dtype = f32)]",
    "#[attn(bogus)]",
    "#[attn(kv_heads = 2)]",
    "#[attn(dtype = bf16)]",
    "#[attn(dtype = f16)]",
    "#[attn(causal, kv_heads = 1, dtype = f64)]",
    "mask",
    "causal",
    "true",
    "kv_heads",
    "bf16",
    "///",
    "0",
    "1",
    "2",
    "3",
    "7",
    "64",
    "128",
    "16777217",
    "99999999999999999999999",
    "-1",
    "0.125",
    "1e40",
    "f32",
    "f64",
    "\"s\"",
    "'c'",
    "_",
    "::",
    ".",
    "+",
    "*",
    "&",
    "mut",
    "self",
    "crate",
    "r#fn",
    "[[",
    "]]",
    "=>",
];

fn token_stream() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.join(" "))
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![1usize..=9, Just(0usize), Just(64), Just(1 << 25)],
        0..=5,
    )
}

fn expr(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop::sample::select(vec!["a", "b", "c", "d", "zz"]).prop_map(String::from);
    leaf.prop_recursive(depth, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("matmul({x}, {y})")),
            inner.clone().prop_map(|x| format!("transpose({x})")),
            inner.clone().prop_map(|x| format!("softmax({x})")),
            (
                inner.clone(),
                prop_oneof![Just("0.5"), Just("k"), Just("1e45"), Just("-2.0")]
            )
                .prop_map(|(x, f)| format!("scale({x}, {f})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("add({x}, {y})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("mul({x}, {y})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(x, y, z)| format!("attention({x}, {y}, {z})")),
            (
                inner.clone(),
                inner.clone(),
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec![
                    "",
                    ", causal = true",
                    ", causal = false",
                    ", scale = 0.5",
                    ", causal = maybe",
                    ", mask = d",
                ]),
            )
                .prop_map(|(x, y, z, m, extra)| format!(
                    "attention({x}, {y}, {z}, mask = {m}{extra})"
                )),
            (inner.clone(), inner).prop_map(|(x, y)| format!("unknown({x}, {y})")),
        ]
    })
    .boxed()
}

fn show(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn options() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        "#[attn(causal)]",
        "#[attn(kv_heads = 1)]",
        "#[attn(kv_heads = 2)]",
        "#[attn(dtype = f64)]",
        "#[attn(dtype = bf16)]",
        "#[attn(dtype = f16, causal)]",
        "#[attn(causal, kv_heads = 2, dtype = bf16, scale = 0.125)]",
        "#[attn(dtype = f8)]",
    ])
}

fn structured() -> impl Strategy<Value = String> {
    (
        (shape(), shape(), shape(), shape(), shape()),
        expr(3),
        0..3u8,
        options(),
    )
        .prop_map(|((a, b, c, d, out), body, form, options)| {
            let (a, b, c, d, out) = (show(&a), show(&b), show(&c), show(&d), show(&out));
            match form {
                0 => format!("{options} pub fn k(a: {a}, b: {b}, c: {c}) -> {out};"),
                1 => format!("{options} pub fn k(a: {a}, b: {b}, c: {c}, mask: {d}) -> {out};"),
                _ => format!(
                    "{options} pub fn k(a: {a}, b: {b}, c: {c}, d: {d}) -> {out} {{ {body} }}"
                ),
            }
        })
}

/// 4-D grouped-query shapes with masks, where most specs are valid: the graph API agrees.
fn attention_specs() -> impl Strategy<Value = String> {
    (
        1usize..=2,
        1usize..=3,
        1usize..=3,
        1usize..=4,
        1usize..=5,
        1usize..=4,
        0..4u8,
        options(),
    )
        .prop_map(|(b, hkv, group, sq, sk, d, mask, options)| {
            let hq = hkv * group;
            let m = match mask {
                0 => String::new(),
                1 => format!(", mask: [{sq}, {sk}]"),
                2 => format!(", mask: [{b}, 1, {sq}, {sk}]"),
                _ => format!(", mask: [1, {hq}, {sq}, {sk}]"),
            };
            format!(
                "{options} fn g(q: [{b}, {hq}, {sq}, {d}], k: [{b}, {hkv}, {sk}, {d}], v: [{b}, {hkv}, {sk}, {d}]{m}) -> [{b}, {hq}, {sq}, {d}];"
            )
        })
}

/// Parses and checks `src`; panics inside are caught and reported as test failures.
fn parse_and_check(src: &str) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(inv) = syn::parse_str::<Invocation>(src)
            && let Ok(kernels) = inv.check()
        {
            for k in kernels {
                // A checked kernel is self-consistent: a canonical spec and a symbol, stable.
                assert_eq!(k.canonical(), k.canonical());
                assert!(k.symbol().starts_with("attn_"));
                assert!(!k.output_shape().is_empty() && k.output_shape().iter().all(|&d| d > 0));
                assert_eq!(k.output_dtype(), k.dtype);
                // The build script's graph accepts every kernel the grammar accepts, with the
                // same shapes and element types.
                if let Err(e) = attn_build::scan::kernel_def(&k) {
                    panic!("the graph rejects {}: {e}", k.canonical());
                }
            }
        }
    }));
    assert!(
        outcome.is_ok(),
        "the grammar panicked (or disagreed with the graph) on: {src}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_token_streams_never_panic(src in token_stream()) {
        parse_and_check(&src);
    }

    #[test]
    fn random_specs_never_panic(src in structured()) {
        parse_and_check(&src);
    }

    #[test]
    fn attention_specs_agree_with_the_graph(src in attention_specs()) {
        parse_and_check(&src);
    }
}

#[test]
fn valid_specs_check() {
    let inv: Invocation = syn::parse_str(
        "pub fn s(q: [19, 16], k: [23, 16]) -> [19, 23] { softmax(scale(matmul(q, transpose(k)), 0.3)) }",
    )
    .unwrap();
    let ks = inv.check().unwrap();
    assert_eq!(ks[0].output_shape(), &[19, 23]);
}
