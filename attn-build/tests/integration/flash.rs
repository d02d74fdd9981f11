//! The fused attention kernel: its IR at each stage, and its results against a double-precision
//! reference, by linking the objects into a small C program (the C compiler that links Rust
//! programs on this platform) that calls the kernels through their C interface.

use super::harness;
use attn_build::{
    Build, CompiledKernel,
    graph::{AttentionOptions, Dim, Graph, KernelDef, Layout, Scale, TensorType, options},
};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attn-flash-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn attention(name: &str, ty: TensorType, scale: Option<f32>, layout: Layout) -> KernelDef {
    let mut g = Graph::new();
    let q = g.input("q", ty.clone());
    let k = g.input("k", ty.clone());
    let v = g.input("v", ty.clone());
    let s = match scale {
        Some(c) => Scale::Constant(f64::from(c)),
        None => Scale::Input(g.input("scale", TensorType::f32_dynamic(0))),
    };
    let o = g.attention(q, k, v, s).unwrap();
    KernelDef::new(name, g, o).with_layout(layout)
}

/// Rank-`rank` f32 attention with options: grouped heads come from the shapes at run time,
/// `causal` is the bottom-right aligned flag, the mask (if `mask_rank`) an input after the scale.
fn attention_with(name: &str, rank: usize, mask_rank: Option<usize>, causal: bool) -> KernelDef {
    let mut g = Graph::new();
    let ty = TensorType::f32_dynamic(rank);
    let q = g.input("q", ty.clone());
    let k = g.input("k", ty.clone());
    let v = g.input("v", ty);
    let s = g.input("scale", TensorType::f32_dynamic(0));
    let mask = mask_rank.map(|r| g.input("mask", TensorType::f32_dynamic(r)));
    let o = g
        .attention_with(
            q,
            k,
            v,
            AttentionOptions {
                options: options::AttentionOptions::new().with_causal(causal),
                scale_input: Some(s),
                mask,
                ..Default::default()
            },
        )
        .unwrap();
    KernelDef::new(name, g, o)
}

fn kernels() -> Vec<KernelDef> {
    vec![
        attention_with("flash_r4_gqa_causal_mask", 4, Some(4), true),
        attention_with("flash_r3_gqa_mask2", 3, Some(2), false),
        attention_with("flash_r2_causal", 2, None, true),
        attention(
            "flash_r2",
            TensorType::f32_dynamic(2),
            None,
            Layout::Strided,
        ),
        attention(
            "flash_r3",
            TensorType::f32_dynamic(3),
            None,
            Layout::Strided,
        ),
        attention(
            "flash_r4",
            TensorType::f32_dynamic(4),
            None,
            Layout::Strided,
        ),
        attention(
            "flash_static",
            TensorType::f32_static(&[37, 80]),
            Some(0.125),
            Layout::Contiguous,
        ),
        attention(
            "flash_mixed",
            TensorType::f32(&[Dim::Dynamic, Dim::Static(64)]),
            Some(0.125),
            Layout::Strided,
        ),
    ]
}

fn compile(dir: &std::path::Path, dump: bool) -> Vec<CompiledKernel> {
    let mut build = Build::new();
    build
        .out_dir(dir)
        .cache_dir(dir.join("cache"))
        .cargo_metadata(false);
    if dump {
        build.dump_ir(dir.join("ir"));
    }
    for k in kernels() {
        build.kernel(k);
    }
    build.compile_objects().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn attention_lowers_to_the_fused_kernel() {
    let dir = scratch("ir");
    let compiled = compile(&dir, true);
    for k in &compiled {
        let stage =
            |f: &str| std::fs::read_to_string(dir.join("ir").join(&k.name).join(f)).unwrap();
        let linalg = stage("02-linalg.mlir");
        assert!(
            linalg.contains("vector.fma"),
            "{}: no vector.fma:\n{linalg}",
            k.name
        );
        assert!(
            !linalg.contains("linalg.matmul") && !linalg.contains("linalg.generic"),
            "{}: the naive composition is still there:\n{linalg}",
            k.name
        );
        assert!(
            !linalg.contains("func.call") && !linalg.contains("__attn_flash"),
            "{}: the kernel was not inlined:\n{linalg}",
            k.name
        );
        let bufferized = stage("03-bufferized.mlir");
        // The only scratch buffers are O(block) panels: no Sq x Sk buffer, no copy of the output.
        assert!(
            !bufferized.contains("memref.copy"),
            "{}: the output is copied:\n{bufferized}",
            k.name
        );
        for line in bufferized.lines().filter(|l| l.contains("memref.alloc")) {
            assert!(
                !line.contains(": memref<?x?xf32"),
                "{}: a buffer sized by two run-time dims: {line}",
                k.name
            );
        }
        let ll = stage("06-llvm-ir.ll");
        // Vector FMAs are `fmuladd`: fused where the target has FMA, a multiply and an add
        // where it has not (no `fmaf` call per lane on baseline x86-64).
        assert!(
            ll.contains("@llvm.fmuladd.v") && !ll.contains("@llvm.fma.v"),
            "{}: no vector fmuladd in LLVM IR",
            k.name
        );
        assert!(
            !ll.contains("@expf") && !ll.contains("@llvm.exp."),
            "{}: exp is not the polynomial",
            k.name
        );
        let sums: Vec<&str> = ll
            .lines()
            .filter(|l| l.contains("call") && l.contains("@llvm.vector.reduce.fadd"))
            .collect();
        // Row sums are reduced by shuffles across rows (no serial chains); any remaining
        // horizontal reduction must be a reassociating tree.
        assert!(
            sums.iter()
                .all(|l| l.contains(" fast ") || l.contains("reassoc")),
            "{}: the row sums are not fast-math reductions: {sums:?}",
            k.name
        );
        assert!(
            ll.contains("shufflevector"),
            "{}: no shuffles (row reductions, transposes)",
            k.name
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const HARNESS: &str = r#"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
/* The kernels' scratch allocation interface (attn-runtime defines these for Rust programs). */
void *_mlir_memref_to_llvm_alloc(uint64_t n) { return malloc(n); }
void _mlir_memref_to_llvm_free(void *p) { free(p); }
typedef struct { float *a, *p; int64_t off, sz[4], st[4]; } Desc;   /* ranks 2..4 */
typedef struct { float *a, *p; int64_t off; } D0;
typedef struct { float *a, *p; int64_t off, sz[2], st[2]; } D2;
typedef struct { float *a, *p; int64_t off, sz[3], st[3]; } D3;
void R2(D2 *, D2 *, D2 *, D0 *, D2 *);
void R3(D3 *, D3 *, D3 *, D0 *, D3 *);
void R4(Desc *, Desc *, Desc *, D0 *, Desc *);
void STATIC(D2 *, D2 *, D2 *, D2 *);
void MIXED(D2 *, D2 *, D2 *, D2 *);
void GQA4(Desc *, Desc *, Desc *, D0 *, Desc *, Desc *);
void GQA3(D3 *, D3 *, D3 *, D0 *, D2 *, D3 *);
void CAUSAL2(D2 *, D2 *, D2 *, D0 *, D2 *);
static uint64_t rs = 88172645463325252ull;
static float rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f; }
/* A (B, H, S, D) tensor stored as (B, S, H, D) with an offset, padded rows and inner stride s1. */
static Desc mk(int64_t b, int64_t h, int64_t s, int64_t d, int64_t s1, int64_t off, int64_t pad) {
  Desc x; int64_t row = d * s1 + pad; size_t n = (size_t)(off + b * s * h * row + 1);
  x.a = x.p = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x.p[i] = NAN;
  x.off = off; x.sz[0] = b; x.sz[1] = h; x.sz[2] = s; x.sz[3] = d;
  x.st[0] = s * h * row; x.st[1] = row; x.st[2] = h * row; x.st[3] = s1;
  for (int64_t i = 0; i < b; i++) for (int64_t j = 0; j < h; j++) for (int64_t r = 0; r < s; r++) for (int64_t c = 0; c < d; c++)
    x.p[off + i * x.st[0] + j * x.st[1] + r * x.st[2] + c * s1] = rnd();
  return x;
}
#define AT(x, i, j, r, c) ((x).p[(x).off + (i) * (x).st[0] + (j) * (x).st[1] + (r) * (x).st[2] + (c) * (x).st[3]])
static D2 d2(Desc x) { D2 y = {x.a, x.p, x.off, {x.sz[2], x.sz[3]}, {x.st[2], x.st[3]}}; return y; }
static D3 d3(Desc x) { D3 y = {x.a, x.p, x.off, {x.sz[1], x.sz[2], x.sz[3]}, {x.st[1], x.st[2], x.st[3]}}; return y; }
static int failures = 0;
static void check(const char *what, Desc q, Desc k, Desc v, Desc o, double scale) {
  int64_t sq = q.sz[2], d = q.sz[3], sk = k.sz[2], dv = v.sz[3];
  double *s = malloc((size_t)sk * sizeof(double)), worst = 0;
  for (int64_t b = 0; b < q.sz[0]; b++) for (int64_t h = 0; h < q.sz[1]; h++) for (int64_t i = 0; i < sq; i++) {
    double m = -1e300, l = 0;
    for (int64_t j = 0; j < sk; j++) {
      double a = 0;
      for (int64_t t = 0; t < d; t++) a += (double)AT(q, b, h, i, t) * AT(k, b, h, j, t);
      s[j] = a * scale; if (s[j] > m) m = s[j];
    }
    for (int64_t j = 0; j < sk; j++) { s[j] = exp(s[j] - m); l += s[j]; }
    for (int64_t c = 0; c < dv; c++) {
      double a = 0;
      for (int64_t j = 0; j < sk; j++) a += s[j] * AT(v, b, h, j, c);
      a /= l;
      double e = fabs(a - AT(o, b, h, i, c)) / (1e-5 + 1e-4 * fabs(a));
      if (!(e <= worst)) worst = e;
    }
  }
  free(s);
  printf("%s B=%ld H=%ld Sq=%ld Sk=%ld D=%ld Dv=%ld: error/tolerance %.3g\n", what, (long)q.sz[0], (long)q.sz[1], (long)sq, (long)sk, (long)d, (long)dv, worst);
  if (!(worst <= 1.0)) failures++;
}
/* With options: query head h reads key/value head h / (Hq / Hkv); the mask (NULL: none) is
   read at head 0 when its head dim is 1; causal: key j visible to query i when j <= i + Sk - Sq. */
static void check_opts(const char *what, Desc q, Desc k, Desc v, Desc o, double scale, const Desc *mask, int causal) {
  int64_t sq = q.sz[2], d = q.sz[3], sk = k.sz[2], dv = v.sz[3], g = q.sz[1] / k.sz[1];
  double *s = malloc((size_t)sk * sizeof(double)), worst = 0;
  for (int64_t b = 0; b < q.sz[0]; b++) for (int64_t h = 0; h < q.sz[1]; h++) for (int64_t i = 0; i < sq; i++) {
    double m = -INFINITY, l = 0;
    for (int64_t j = 0; j < sk; j++) {
      double a = 0;
      for (int64_t t = 0; t < d; t++) a += (double)AT(q, b, h, i, t) * AT(k, b, h / g, j, t);
      s[j] = a * scale;
      if (mask) s[j] += AT(*mask, mask->sz[0] == 1 ? 0 : b, mask->sz[1] == 1 ? 0 : h, i, j);
      if (causal && j > i + sk - sq) s[j] = -INFINITY;
      if (s[j] > m) m = s[j];
    }
    for (int64_t j = 0; j < sk; j++) { s[j] = m == -INFINITY ? 0 : exp(s[j] - m); l += s[j]; }
    for (int64_t c = 0; c < dv; c++) {
      double a = 0;
      for (int64_t j = 0; j < sk; j++) a += s[j] * AT(v, b, h / g, j, c);
      a = l > 0 ? a / l : 0;
      double e = fabs(a - AT(o, b, h, i, c)) / (1e-5 + 1e-4 * fabs(a));
      if (!(e <= worst)) worst = e;
    }
  }
  free(s);
  printf("%s B=%ld Hq=%ld Hkv=%ld Sq=%ld Sk=%ld D=%ld Dv=%ld: error/tolerance %.3g\n", what, (long)q.sz[0], (long)q.sz[1], (long)k.sz[1], (long)sq, (long)sk, (long)d, (long)dv, worst);
  if (!(worst <= 1.0)) failures++;
}
static void gqa_cases(void) {
  static const int64_t shapes[][7] = {{2, 6, 2, 45, 70, 40, 20}, {1, 4, 1, 9, 30, 12, 5}, {1, 3, 3, 70, 33, 16, 16}, {2, 2, 1, 1, 300, 64, 64}};
  for (unsigned n = 0; n < sizeof shapes / sizeof shapes[0]; n++) {
    const int64_t *x = shapes[n];
    float scale = 0.25f; D0 sc = {&scale, &scale, 0};
    Desc q = mk(x[0], x[1], x[3], x[5], 1, 3, 0), k = mk(x[0], x[2], x[4], x[5], 1, 0, 2), v = mk(x[0], x[2], x[4], x[6], 1, 1, 0), o = mk(x[0], x[1], x[3], x[6], 1, 0, 0);
    /* [B, 1, Sq, Sk]: broadcast over heads; some keys removed. */
    Desc m = mk(x[0], 1, x[3], x[4], 1, 0, 0);
    for (int64_t i = 0; i < x[0] * x[3] * x[4]; i++) if (i % 5 == 2) m.p[i] = -INFINITY;
    GQA4(&q, &k, &v, &sc, &m, &o);
    check_opts("r4 gqa causal mask[B,1,Sq,Sk]", q, k, v, o, scale, &m, 1);
    if (x[0] == 1) {
      Desc m2 = mk(1, 1, x[3], x[4], 1, 0, 0);
      D3 a = d3(q), b = d3(k), c = d3(v), e = d3(o); D2 mm = d2(m2);
      GQA3(&a, &b, &c, &sc, &mm, &e);
      check_opts("r3 gqa mask[Sq,Sk]", q, k, v, o, scale, &m2, 0);
      free(m2.a);
      Desc q1 = mk(1, 1, x[3], x[5], 1, 0, 0), k1 = mk(1, 1, x[4], x[5], 1, 0, 0), v1 = mk(1, 1, x[4], x[6], 1, 0, 0), o1 = mk(1, 1, x[3], x[6], 1, 0, 0);
      D2 a2 = d2(q1), b2 = d2(k1), c2 = d2(v1), e2 = d2(o1);
      CAUSAL2(&a2, &b2, &c2, &sc, &e2);
      check_opts("r2 causal", q1, k1, v1, o1, scale, NULL, 1);
      free(q1.a); free(k1.a); free(v1.a); free(o1.a);
    }
    free(q.a); free(k.a); free(v.a); free(o.a); free(m.a);
  }
}
int main(void) {
  gqa_cases();
  static const int64_t shapes[][4] = {{1, 1, 1, 1}, {37, 53, 80, 24}, {512, 64, 64, 64}, {300, 700, 33, 17},
    {257, 25, 8, 16}, {5, 24, 8, 8}, {3, 3, 200, 3}, {1, 200, 64, 64}, {200, 1, 64, 64}, {511, 513, 65, 63}};
  for (unsigned n = 0; n < sizeof shapes / sizeof shapes[0]; n++) {
    int64_t sq = shapes[n][0], sk = shapes[n][1], d = shapes[n][2], dv = shapes[n][3];
    for (int64_t s1 = 1; s1 <= 2; s1++) {
      Desc q = mk(1, 1, sq, d, s1, 3, 1), k = mk(1, 1, sk, d, s1, 0, 5), v = mk(1, 1, sk, dv, s1, 7, 0), o = mk(1, 1, sq, dv, s1, 2, 3);
      float scale = 1.0f / sqrtf((float)d); D0 sc = {&scale, &scale, 0};
      D2 q2 = d2(q), k2 = d2(k), v2 = d2(v), o2 = d2(o);
      R2(&q2, &k2, &v2, &sc, &o2);
      check(s1 == 1 ? "r2" : "r2 strided", q, k, v, o, scale);
      free(q.a); free(k.a); free(v.a); free(o.a);
    }
  }
  {
    float scale = 0.3f; D0 sc = {&scale, &scale, 0};
    Desc q = mk(2, 3, 45, 40, 1, 5, 0), k = mk(2, 3, 70, 40, 1, 5, 0), v = mk(2, 3, 70, 20, 1, 5, 0), o = mk(2, 3, 45, 20, 1, 5, 0);
    R4(&q, &k, &v, &sc, &o);
    check("r4 (B,S,H,D) storage", q, k, v, o, scale);
    Desc q3 = mk(1, 3, 9, 12, 1, 0, 2), k3 = mk(1, 3, 30, 12, 1, 0, 2), v3 = mk(1, 3, 30, 5, 1, 0, 2), o3 = mk(1, 3, 9, 5, 1, 0, 2);
    D3 a = d3(q3), b = d3(k3), c = d3(v3), e = d3(o3);
    R3(&a, &b, &c, &sc, &e);
    check("r3", q3, k3, v3, o3, scale);
  }
  {
    Desc q = mk(1, 1, 37, 80, 1, 0, 0), k = mk(1, 1, 37, 80, 1, 0, 0), v = mk(1, 1, 37, 80, 1, 0, 0), o = mk(1, 1, 37, 80, 1, 0, 0);
    D2 q2 = d2(q), k2 = d2(k), v2 = d2(v), o2 = d2(o);
    STATIC(&q2, &k2, &v2, &o2);
    check("static 37x80", q, k, v, o, 0.125);
    Desc mq = mk(1, 1, 100, 64, 1, 1, 3), mkk = mk(1, 1, 130, 64, 1, 2, 0), mv = mk(1, 1, 130, 64, 1, 0, 1), mo = mk(1, 1, 100, 64, 1, 4, 2);
    D2 a = d2(mq), b = d2(mkk), c = d2(mv), e = d2(mo);
    MIXED(&a, &b, &c, &e);
    check("mixed ?x64", mq, mkk, mv, mo, 0.125);
  }
  return failures ? 1 : 0;
}
"#;

#[test]
fn fused_attention_matches_the_reference() {
    let dir = scratch("run");
    let compiled = compile(&dir, false);
    let defines = [
        ("R2", "flash_r2"),
        ("R3", "flash_r3"),
        ("R4", "flash_r4"),
        ("STATIC", "flash_static"),
        ("MIXED", "flash_mixed"),
        ("GQA4", "flash_r4_gqa_causal_mask"),
        ("GQA3", "flash_r3_gqa_mask2"),
        ("CAUSAL2", "flash_r2_causal"),
    ]
    .map(|(m, k)| (m.to_string(), k));
    let stdout = harness::run(&dir, HARNESS, &compiled, &defines);
    assert!(stdout.lines().count() >= 32, "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
