use super::*;

fn n(kind: Kind) -> Expr {
    Expr::new(0, kind)
}
fn v(x: Var) -> Expr {
    n(Kind::Var(x))
}
fn i(x: i64) -> Expr {
    n(Kind::Int(x))
}
fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    n(Kind::Binary(op, Box::new(a), Box::new(b)))
}
fn read(input: usize, index: Vec<Expr>) -> Expr {
    n(Kind::Read { input, index })
}

const DIMS: Dims = Dims {
    b: 2,
    h: 4,
    sq: 64,
    sk: 80,
};

fn inputs() -> Vec<InputInfo> {
    vec![
        InputInfo {
            name: "doc".into(),
            shape: vec![80],
            int: true,
        },
        InputInfo {
            name: "bias".into(),
            shape: vec![4, 143],
            int: false,
        },
    ]
}

#[test]
fn ranges_follow_the_static_dims() {
    // j - i + 63 ranges over [0 - 63 + 63, 79 + 63] = [0, 142].
    let idx = bin(BinOp::Add, bin(BinOp::Sub, v(Var::Col), v(Var::Row)), i(63));
    let f = analyze(&idx, ModKind::Mask, &DIMS, &[]).unwrap();
    assert_eq!(f.range, Range::Int(0, 142));
    // bias[h][j - i + 63] fits [4, 143].
    let r = read(1, vec![v(Var::Head), idx.clone()]);
    let s = bin(BinOp::Add, v(Var::Score), r);
    assert_eq!(
        check(&s, ModKind::Score, &DIMS, &inputs()).unwrap().ty,
        Type::Float
    );
    // ... but not [4, 142].
    let mut small = inputs();
    small[1].shape = vec![4, 142];
    let e = check(&s, ModKind::Score, &DIMS, &small).unwrap_err();
    assert!(e.message.contains("[0, 142]"), "{e}");
    // A mask mod has no score.
    let e = check(&s, ModKind::Mask, &DIMS, &inputs()).unwrap_err();
    assert!(e.message.contains("no score"), "{e}");
}

#[test]
fn values_read_from_inputs_are_unbounded() {
    // doc[doc[j]] cannot be proven in bounds; doc[min(max(doc[j], 0), 79)] can.
    let inner = read(0, vec![v(Var::Col)]);
    let e = read(0, vec![inner.clone()]);
    let m = bin(BinOp::Eq, e, i(0));
    let err = check(&m, ModKind::Mask, &DIMS, &inputs()).unwrap_err();
    assert!(err.message.contains("unknown ranges"), "{err}");
    let clamped = n(Kind::Call(
        Func::Min,
        vec![n(Kind::Call(Func::Max, vec![inner, i(0)])), i(79)],
    ));
    let ok = bin(BinOp::Eq, read(0, vec![clamped]), i(0));
    assert!(check(&ok, ModKind::Mask, &DIMS, &inputs()).is_ok());
}

#[test]
fn divisors_overflow_and_types_are_checked() {
    let e = bin(BinOp::Div, v(Var::Col), bin(BinOp::Sub, v(Var::Row), i(3)));
    let err = analyze(&e, ModKind::Mask, &DIMS, &[]).unwrap_err();
    assert!(err.message.contains("can be zero"), "{err}");
    let e = bin(BinOp::Rem, v(Var::Col), i(-7));
    assert_eq!(
        analyze(&e, ModKind::Mask, &DIMS, &[]).unwrap().range,
        Range::Int(0, 6)
    );
    let e = bin(BinOp::Mul, i(i64::MAX / 2), v(Var::Col));
    let err = analyze(&e, ModKind::Mask, &DIMS, &[]).unwrap_err();
    assert!(err.message.contains("overflow"), "{err}");
    let e = bin(BinOp::Add, v(Var::Col), n(Kind::Float(1.0)));
    let err = analyze(&e, ModKind::Mask, &DIMS, &[]).unwrap_err();
    assert!(err.message.contains("as f32"), "{err}");
    let e = bin(BinOp::Lt, v(Var::Col), v(Var::Row));
    let err = check(&e, ModKind::Score, &DIMS, &[]).unwrap_err();
    assert!(err.message.contains("returns the new score"), "{err}");
    let cast = n(Kind::Cast(Box::new(n(Kind::Float(2.7))), Type::Int));
    assert_eq!(
        analyze(&cast, ModKind::Mask, &DIMS, &[]).unwrap().range,
        Range::Int(0, 2)
    );
}

#[test]
fn canonical_text_and_evaluation() {
    let m = bin(
        BinOp::Or,
        bin(BinOp::Le, v(Var::Col), v(Var::Row)),
        bin(BinOp::Lt, v(Var::Col), i(64)),
    );
    assert_eq!(m.canonical(&|k| format!("%{k}")), "((j<=i)||(j<64))");
    let at = |i, j| eval(&m, 0.0, [0, 0, i, j], &|_, _| Scalar::Int(0));
    assert_eq!(at(10, 11), Scalar::Bool(true));
    assert_eq!(at(100, 101), Scalar::Bool(false));
    let r = eval(&read(0, vec![v(Var::Col)]), 0.0, [0, 0, 1, 7], &|k, idx| {
        Scalar::Int(k as i64 * 100 + idx[0])
    });
    assert_eq!(r, Scalar::Int(7));
    let pair = ModPair {
        score: None,
        mask: Some(m),
    };
    assert_eq!(
        pair.canonical(&|k| format!("%{k}")),
        "mask_mod=((j<=i)||(j<64))"
    );
}
