use super::*;

#[test]
fn matmul_inner_mismatch_names_types() {
    let mut g = Graph::new();
    let a = g.input("a", TensorType::f32_static(&[2, 3]));
    let b = g.input("b", TensorType::f32_static(&[4, 5]));
    let e = g.matmul(a, b).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("matmul"), "{m}");
    assert!(
        m.contains("a: tensor<2x3xf32>") && m.contains("b: tensor<4x5xf32>"),
        "{m}"
    );
}

#[test]
fn dynamic_dims_unify_with_static() {
    let mut g = Graph::new();
    let a = g.input("a", TensorType::f32(&[Dim::Dynamic, Dim::Dynamic]));
    let b = g.input("b", TensorType::f32_static(&[4, 5]));
    let c = g.matmul(a, b).unwrap();
    assert_eq!(g.ty(c).to_string(), "tensor<?x5xf32>");
    let d = g.add(c, c).unwrap();
    assert_eq!(g.ty(d).dims, vec![Dim::Dynamic, Dim::Static(5)]);
}

#[test]
fn attention_shapes() {
    let mut g = Graph::new();
    let q = g.input("q", TensorType::f32_static(&[37, 80]));
    let k = g.input("k", TensorType::f32_static(&[53, 80]));
    let v = g.input("v", TensorType::f32_static(&[53, 24]));
    let o = g.attention(q, k, v, Scale::Constant(0.1)).unwrap();
    assert_eq!(g.ty(o).to_string(), "tensor<37x24xf32>");
    let bad = g.input("v2", TensorType::f32_static(&[52, 24]));
    let e = g
        .attention(q, k, bad, Scale::Constant(0.1))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "attention: v has shape [52, 24] but k has shape [53, 80]; the sequence dimensions (Sk: 52 and 53) must match"
    );
}

#[test]
fn attention_options_and_dynamic_dims() {
    let mut g = Graph::new();
    let (x, s) = (Dim::Dynamic, Dim::Static);
    let q = g.input("q", TensorType::f32(&[x, s(6), x, s(16)]));
    let k = g.input("k", TensorType::f32(&[x, s(2), x, s(16)]));
    let v = g.input("v", TensorType::f32(&[x, s(2), x, s(8)]));
    // The default scale: 1/sqrt(16).
    let o = g
        .attention_with(q, k, v, AttentionOptions::default())
        .unwrap();
    assert_eq!(g.ty(o).to_string(), "tensor<?x6x?x8xf32>");
    assert!(matches!(
        g.op(o),
        Op::Attention {
            scale: Scale::Constant(0.25),
            ..
        }
    ));
    // Masks: the compiled rule of attn_runtime::shape.
    let m = g.input("m", TensorType::f32(&[x, s(1), x, x]));
    let causal = AttentionOptions {
        options: attn_runtime::options::AttentionOptions::new().with_causal(true),
        mask: Some(m),
        ..AttentionOptions::default()
    };
    let o = g.attention_with(q, k, v, causal).unwrap();
    let ir = KernelDef::new("a", g.clone(), o).to_transformer_ir("a");
    assert!(ir.contains("causal = true"), "{ir}");
    let m3 = g.input("m3", TensorType::f32(&[s(6), x, x]));
    let e = g
        .attention_with(
            q,
            k,
            v,
            AttentionOptions {
                mask: Some(m3),
                ..causal
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "attention: mask has shape [6, ?, ?]; compiled kernels take a mask [Sq, Sk] = [?, ?]"
        ),
        "{e}"
    );
    // Heads that do not divide, non-finite scales, a dynamic head dim without a scale.
    let k3 = g.input("k3", TensorType::f32(&[x, s(4), x, s(16)]));
    let e = g.attention(q, k3, k3, Scale::Constant(1.0)).unwrap_err();
    assert!(
        e.to_string()
            .contains("the query heads (6) must be a multiple of the key/value heads (4)"),
        "{e}"
    );
    let e = g.attention(q, k, v, Scale::Constant(f64::NAN)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "attention: option `scale`: the scale must be finite, got NaN"
    );
    let qd = g.input("qd", TensorType::f32_dynamic(2));
    let e = g
        .attention_with(qd, qd, qd, AttentionOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("needs a static head dim D"), "{e}");
}

#[test]
fn elementwise_rank0_broadcast_and_mismatch() {
    let mut g = Graph::new();
    let a = g.input("a", TensorType::f32_static(&[3, 4]));
    let s = g.input("s", TensorType::f32_static(&[]));
    assert!(g.mul(a, s).is_ok());
    let b = g.input("b", TensorType::f32_static(&[4, 3]));
    assert!(
        g.add(a, b)
            .unwrap_err()
            .to_string()
            .contains("shapes differ")
    );
}

#[test]
fn float_literals_round_trip() {
    for x in [0.125f32, 1.0, -3.0, 1e-30, 0.1, 123456.78] {
        let s = float_literal(x);
        assert!(s.contains('.'), "{s}");
        assert_eq!(s.parse::<f32>().unwrap(), x);
    }
}

#[test]
fn emits_transformer_ir() {
    let mut g = Graph::new();
    let x = g.input("x", TensorType::f32_dynamic(2));
    let y = g.softmax(x).unwrap();
    let ir = KernelDef::new("sm", g, y).to_transformer_ir("sym");
    assert!(
        ir.contains("\"transformer.softmax\"(%v0) : (tensor<?x?xf32>) -> tensor<?x?xf32>"),
        "{ir}"
    );
    assert!(
        ir.contains("memref<?x?xf32, strided<[?, ?], offset: ?>>"),
        "{ir}"
    );
}
