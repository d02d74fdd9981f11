//! Calls every kernel of the default set once (every primitive at every rank, attention at every
//! rank, strided operands and the `_into` form) and checks each result against the reference.
//! `./dev test` runs it under valgrind memcheck; it exits non-zero on any mismatch.

use attn::{Tensor, TensorView, TensorViewMut, options::AttentionOptions, reference};

fn tensor(shape: &[usize], seed: u32) -> Result<Tensor, attn::Error> {
    Tensor::random(shape, u64::from(seed))
}

fn check(name: &str, actual: &Tensor, expected: &Tensor<f64>, failures: &mut Vec<String>) {
    match reference::compare(actual, expected, 1e-4, 1e-5) {
        Ok(c) if c.ok => println!("ok   {name:<28} max abs err {:.2e}", c.max_abs_err),
        Ok(c) => failures.push(format!("{name}: max abs err {:e}", c.max_abs_err)),
        Err(e) => failures.push(format!("{name}: {e}")),
    }
}

/// The dense, causal and masked kernels of element type `T` (q, k, v rounded to `T`), with the
/// packed path (5 rows) and the streaming path (1 row).
fn dtype_variants<T: attn::AttentionElement>(
    name: &str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    rtol: f64,
    failures: &mut Vec<String>,
) -> Result<(), attn::Error> {
    let to = |t: &Tensor| t.map(|x| T::from_f64(f64::from(x)));
    let (qt, kt, vt) = (to(q), to(k), to(v));
    let wide = |t: &Tensor<T>| t.to_f64();
    for rows in [5, 1] {
        let qs: Tensor<T> = Tensor::from_vec(
            &[1, 4, rows, 8],
            (0..4)
                .flat_map(|h| qt.as_slice()[h * 40..h * 40 + rows * 8].iter().copied())
                .collect(),
        )?;
        let m = mask.map(|x| x);
        let m = attn::TensorView::from_strided(m.as_slice(), &[rows, 7], &[7, 1], 0)?.to_tensor();
        for (variant, causal, with_mask) in [
            ("", false, false),
            (" causal", true, false),
            (" mask", false, true),
        ] {
            let mut att = attn::Attention::new().causal(causal);
            if with_mask {
                att = att.mask(&m);
            }
            let m64 = m.to_f64();
            let options = reference::AttentionOptions {
                options: AttentionOptions::new().with_causal(causal),
                mask: with_mask.then(|| m64.view()),
                key_padding: None,
            };
            let expected = reference::attention_with(&wide(&qs), &wide(&kt), &wide(&vt), &options)?;
            let label = format!("attention {name}{variant} rows={rows}");
            match reference::compare(&att.run(&qs, &kt, &vt)?, &expected, rtol, 1e-5) {
                Ok(c) if c.ok => println!("ok   {label:<28} max abs err {:.2e}", c.max_abs_err),
                Ok(c) => failures.push(format!("{label}: max abs err {:e}", c.max_abs_err)),
                Err(e) => failures.push(format!("{label}: {e}")),
            }
        }
    }
    Ok(())
}

fn main() -> Result<(), attn::Error> {
    let mut failures = Vec::new();
    let shapes: [&[usize]; 4] = [&[7], &[5, 6], &[2, 3, 4], &[2, 2, 3, 5]];
    for (i, shape) in shapes.iter().enumerate() {
        let rank = shape.len();
        let (a, b) = (tensor(shape, 1 + i as u32)?, tensor(shape, 11 + i as u32)?);
        check(
            &format!("softmax r{rank}"),
            &attn::softmax(&a)?,
            &reference::softmax(&a)?,
            &mut failures,
        );
        check(
            &format!("add r{rank}"),
            &attn::add(&a, &b)?,
            &reference::add(&a, &b)?,
            &mut failures,
        );
        check(
            &format!("mul r{rank}"),
            &attn::mul(&a, &b)?,
            &reference::mul(&a, &b)?,
            &mut failures,
        );
        check(
            &format!("scale r{rank}"),
            &attn::scale(&a, 1.5)?,
            &reference::scale(&a, 1.5)?,
            &mut failures,
        );
        if rank >= 2 {
            check(
                &format!("transpose r{rank}"),
                &attn::transpose(&a)?,
                &reference::transpose(&a)?,
                &mut failures,
            );
        }
    }
    for (m, k, n, batch) in [(3, 4, 5, None), (3, 4, 5, Some(2))] {
        let (sa, sb): (Vec<usize>, Vec<usize>) = match batch {
            None => (vec![m, k], vec![k, n]),
            Some(b) => (vec![b, m, k], vec![b, k, n]),
        };
        let (a, b) = (tensor(&sa, 3)?, tensor(&sb, 4)?);
        check(
            &format!("matmul r{}", sa.len()),
            &attn::matmul(&a, &b)?,
            &reference::matmul(&a, &b)?,
            &mut failures,
        );
    }
    let attention_shapes: [(&[usize], &[usize], &[usize]); 3] = [
        (&[5, 8], &[7, 8], &[7, 3]),
        (&[2, 5, 8], &[2, 7, 8], &[2, 7, 3]),
        (&[2, 3, 5, 8], &[2, 3, 7, 8], &[2, 3, 7, 3]),
    ];
    for (i, (sq, sk, sv)) in attention_shapes.iter().enumerate() {
        let (q, k, v) = (
            tensor(sq, 20 + i as u32)?,
            tensor(sk, 30 + i as u32)?,
            tensor(sv, 40 + i as u32)?,
        );
        let name = format!("attention r{}", sq.len());
        check(
            &name,
            &attn::attention(&q, &k, &v)?,
            &reference::attention(&q, &k, &v, None)?,
            &mut failures,
        );
    }
    // Strided operands and the allocation-free form.
    let (q, kt, v) = (
        tensor(&[6, 4], 50)?,
        tensor(&[4, 9], 51)?,
        tensor(&[9, 2], 52)?,
    );
    let k = kt.view().t()?;
    let expected = reference::attention(&q, &k, &v, None)?;
    check(
        "attention strided k",
        &attn::attention(&q, &k, &v)?,
        &expected,
        &mut failures,
    );
    let mut buf = vec![0.0f32; 12];
    attn::attention_into(&q, &k, &v, &mut TensorViewMut::new(&mut buf, &[6, 2])?)?;
    check(
        "attention_into",
        &Tensor::from_vec(&[6, 2], buf)?,
        &expected,
        &mut failures,
    );
    let padded = tensor(&[13, 4], 53)?;
    let q_rows = TensorView::from_strided(padded.as_slice(), &[6, 4], &[8, 1], 4)?;
    let expected = reference::attention(&q_rows, &k, &v, None)?;
    check(
        "attention strided q",
        &attn::attention(&q_rows, &k, &v)?,
        &expected,
        &mut failures,
    );

    // The attention variants: causal, GQA, masks, key padding, and a KV cache.
    let (q, k, v) = (
        tensor(&[1, 4, 5, 8], 60)?,
        tensor(&[1, 2, 7, 8], 61)?,
        tensor(&[1, 2, 7, 3], 62)?,
    );
    let mask = tensor(&[5, 7], 63)?;
    let valid = [true, false, true, true, true, true, false];
    for (name, causal, with_mask, padded) in [
        ("attention causal gqa", true, false, false),
        ("attention mask gqa", false, true, false),
        ("attention causal mask pad", true, true, true),
    ] {
        let mut att = attn::Attention::new().causal(causal);
        if with_mask {
            att = att.mask(&mask);
        }
        if padded {
            att = att.key_padding(&valid);
        }
        let options = reference::AttentionOptions {
            options: AttentionOptions::new().with_causal(causal),
            mask: with_mask.then(|| mask.view()),
            key_padding: padded.then_some(&valid[..]),
        };
        check(
            name,
            &att.run(&q, &k, &v)?,
            &reference::attention_with(&q, &k, &v, &options)?,
            &mut failures,
        );
    }
    let mut cache = attn::KvCache::new(1, 2, 16, 8, 3)?;
    cache.append(&k, &v)?;
    let q1 = tensor(&[1, 4, 1, 8], 64)?;
    let out = cache.attend(&attn::Attention::new().causal(true), &q1)?;
    let options = AttentionOptions::new().with_causal(true).into();
    check(
        "kv cache decode",
        &out,
        &reference::attention_with(&q1, &k, &v, &options)?,
        &mut failures,
    );

    // The other element types' kernels (dense, causal, masked; the decode path with one row).
    dtype_variants::<f64>("f64", &q, &k, &v, &mask, 1e-12, &mut failures)?;
    dtype_variants::<attn::half::bf16>("bf16", &q, &k, &v, &mask, 2.0f64.powi(-8), &mut failures)?;
    dtype_variants::<attn::half::f16>("f16", &q, &k, &v, &mask, 2.0f64.powi(-10), &mut failures)?;

    if failures.is_empty() {
        println!("all kernels match the reference");
        Ok(())
    } else {
        for f in &failures {
            eprintln!("FAILED {f}");
        }
        std::process::exit(1);
    }
}
