//! The attention variants of the fused kernel (windows, softcap, ALiBi, sinks, the log-sum-exp
//! output) against a C reference in f64, through both the packed path and the decode path
//! (few query rows), dynamic rank-2 kernels with every option at run time and a static rank-4
//! kernel with constant options.

use super::harness;
use attn_build::{
    Build, CompiledKernel,
    graph::{AttentionOptions, Dim, Graph, KernelDef, TensorType, options},
};

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("attn-variants-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The run-time kernel of the root crate's set: every option as an input, `lse` as an output.
fn opts(name: &str, element: attn_runtime::DType, mask: bool) -> KernelDef {
    let ty = |rank| TensorType::new(element, &vec![Dim::Dynamic; rank]);
    let f = |rank| TensorType::f32_dynamic(rank);
    let mut g = Graph::new();
    let q = g.input("q", ty(2));
    let k = g.input("k", ty(2));
    let v = g.input("v", ty(2));
    let s = g.input("scale", TensorType::new(element.compute(), &[]));
    let mask = mask.then(|| g.input("mask", f(2)));
    let positions = g.input("positions", f(1));
    let window = g.input("window", TensorType::f32(&[Dim::Static(2)]));
    let softcap = g.input("softcap", f(0));
    let sinks = g.input("sinks", f(1));
    let slopes = g.input("slopes", f(1));
    let (o, lse) = g
        .attention_lse(
            q,
            k,
            v,
            AttentionOptions {
                scale_input: Some(s),
                mask,
                positions: Some(positions),
                window_input: Some(window),
                softcap_input: Some(softcap),
                sinks: Some(sinks),
                alibi: Some(slopes),
                ..Default::default()
            },
        )
        .unwrap();
    KernelDef::new(name, g, o).with_output("lse", lse)
}

/// A static rank-4 kernel with constant options: GQA 4/2, causal within a window (3, 2),
/// softcap 1.5, per-head sinks and ALiBi slopes, and its log-sum-exp.
fn static_r4() -> KernelDef {
    let mut g = Graph::new();
    let q = g.input("q", TensorType::f32_static(&[2, 4, 13, 24]));
    let k = g.input("k", TensorType::f32_static(&[2, 2, 21, 24]));
    let v = g.input("v", TensorType::f32_static(&[2, 2, 21, 8]));
    let sinks = g.input("sinks", TensorType::f32_static(&[4]));
    let slopes = g.input("slopes", TensorType::f32_static(&[4]));
    let (o, lse) = g
        .attention_lse(
            q,
            k,
            v,
            AttentionOptions {
                options: options::AttentionOptions::new()
                    .with_causal(true)
                    .with_window(3, 2)
                    .with_softcap(1.5)
                    .with_scale(0.3),
                sinks: Some(sinks),
                alibi: Some(slopes),
                ..Default::default()
            },
        )
        .unwrap();
    KernelDef::new("static_r4", g, o).with_output("lse", lse)
}

fn compile(dir: &std::path::Path) -> Vec<CompiledKernel> {
    let mut build = Build::new();
    build
        .out_dir(dir)
        .cache_dir(dir.join("cache"))
        .cargo_metadata(false);
    build.kernel(opts("opts_r2", attn_runtime::DType::F32, false));
    build.kernel(opts("opts_mask_r2", attn_runtime::DType::F32, true));
    build.kernel(opts("opts_r2_f64", attn_runtime::DType::F64, false));
    build.kernel(static_r4());
    build.compile_objects().unwrap_or_else(|e| panic!("{e}"))
}

const HARNESS: &str = r#"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
void *_mlir_memref_to_llvm_alloc(uint64_t n) { return malloc(n); }
void _mlir_memref_to_llvm_free(void *p) { free(p); }
typedef struct { float *a, *p; int64_t off; } F0;
typedef struct { float *a, *p; int64_t off, sz[1], st[1]; } F1;
typedef struct { float *a, *p; int64_t off, sz[2], st[2]; } F2;
typedef struct { double *a, *p; int64_t off; } G0;
typedef struct { double *a, *p; int64_t off, sz[1], st[1]; } G1;
typedef struct { double *a, *p; int64_t off, sz[2], st[2]; } G2;
typedef struct { float *a, *p; int64_t off, sz[4], st[4]; } F4;
typedef struct { float *a, *p; int64_t off, sz[3], st[3]; } F3;
void OPTS(F2 *, F2 *, F2 *, F0 *, F1 *, F1 *, F0 *, F1 *, F1 *, F2 *, F1 *);
void OPTS_MASK(F2 *, F2 *, F2 *, F0 *, F2 *, F1 *, F1 *, F0 *, F1 *, F1 *, F2 *, F1 *);
void OPTS64(G2 *, G2 *, G2 *, G0 *, F1 *, F1 *, F0 *, F1 *, F1 *, G2 *, G1 *);
void STATIC4(F4 *, F4 *, F4 *, F1 *, F1 *, F4 *, F3 *);
static uint64_t rs = 88172645463325252ull;
static double rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (double)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1; }
static int failures = 0;
static double worst_seen = 0;
/* The reference for one row: scores s_j = scale q.k_j -> softcap -> - slope |p - j| -> + mask ->
   window [p - L, p + R] -> softmax with the sink; out and lse (natural log). */
static void ref_row(int64_t sk, int64_t d, int64_t dv, const double *q, const double *k, const double *v, double scale,
                    double p, double L, double R, double cap, double sink, double slope, const double *mask,
                    double *out, double *lse) {
  double *s = malloc((size_t)(sk + 1) * sizeof(double)), m = sink;
  for (int64_t j = 0; j < sk; j++) {
    double a = 0;
    for (int64_t t = 0; t < d; t++) a += q[t] * k[j * d + t];
    a *= scale;
    if (cap > 0) a = cap * tanh(a / cap);
    a -= slope * fabs(p - (double)j);
    if (mask) a += mask[j];
    if ((double)j < p - L || (double)j > p + R) a = -INFINITY;
    s[j] = a;
    if (a > m) m = a;
  }
  double l = m == -INFINITY ? 0 : exp(sink - m);
  for (int64_t j = 0; j < sk; j++) { s[j] = m == -INFINITY ? 0 : exp(s[j] - m); l += s[j]; }
  for (int64_t c = 0; c < dv; c++) {
    double a = 0;
    for (int64_t j = 0; j < sk; j++) a += s[j] * v[j * dv + c];
    out[c] = l > 0 ? a / l : 0;
  }
  *lse = l > 0 ? m + log(l) : -INFINITY;
  free(s);
}
static void cmp(const char *what, double want, double got, double rtol, double atol) {
  if (isinf(want) && want == got) return;
  double e = fabs(want - got) / (atol + rtol * fabs(want));
  if (!(e <= worst_seen)) worst_seen = e;
  if (!(e <= 1.0)) { if (failures < 20) printf("  %s: want %.9g got %.9g\n", what, want, got); failures++; }
}
static float *fill(int64_t n) { float *x = malloc((size_t)n * sizeof(float)); for (int64_t i = 0; i < n; i++) x[i] = (float)rnd(); return x; }
static void run2(int64_t sq, int64_t sk, int64_t d, int64_t dv, double L, double R, double cap, int sinks, int alibi, int masked, int wide, int shift) {
  float *q = fill(sq * d), *k = fill(sk * d), *v = fill(sk * dv), *o = calloc((size_t)(sq * dv), sizeof(float)), *lse = calloc((size_t)sq, sizeof(float));
  float *mk = fill(sq * sk), pos[4096], sn[4096], sl[4096], win[2] = {(float)L, (float)R}, capf = (float)cap, scale = 0.7f;
  for (int64_t i = 0; i < sq * sk; i++) if (i % 7 == 3) mk[i] = -INFINITY;
  for (int64_t i = 0; i < sq; i++) {
    pos[i] = (float)(i + sk - sq + shift);
    sn[i] = sinks ? (i % 3 == 0 ? -INFINITY : (float)rnd() * 2) : -INFINITY;
    sl[i] = alibi ? (float)(0.05 + 0.1 * (i % 4)) : 0.f;
  }
  F0 fs = {&scale, &scale, 0}, fc = {&capf, &capf, 0};
  F1 fp = {pos, pos, 0, {sq}, {1}}, fw = {win, win, 0, {2}, {1}}, fsn = {sn, sn, 0, {sq}, {1}}, fsl = {sl, sl, 0, {sq}, {1}};
  double *qd = malloc((size_t)(sq * d) * 8), *kd = malloc((size_t)(sk * d) * 8), *vd = malloc((size_t)(sk * dv) * 8);
  for (int64_t i = 0; i < sq * d; i++) qd[i] = q[i];
  for (int64_t i = 0; i < sk * d; i++) kd[i] = k[i];
  for (int64_t i = 0; i < sk * dv; i++) vd[i] = v[i];
  double *od = calloc((size_t)(sq * dv), 8), *ld = calloc((size_t)sq, 8);
  if (wide) {
    double sc = 0.7; G0 gs = {&sc, &sc, 0};
    G2 gq = {qd, qd, 0, {sq, d}, {d, 1}}, gk = {kd, kd, 0, {sk, d}, {d, 1}}, gv = {vd, vd, 0, {sk, dv}, {dv, 1}}, go = {od, od, 0, {sq, dv}, {dv, 1}};
    G1 gl = {ld, ld, 0, {sq}, {1}};
    OPTS64(&gq, &gk, &gv, &gs, &fp, &fw, &fc, &fsn, &fsl, &go, &gl);
  } else {
    F2 fq = {q, q, 0, {sq, d}, {d, 1}}, fk = {k, k, 0, {sk, d}, {d, 1}}, fv = {v, v, 0, {sk, dv}, {dv, 1}}, fo = {o, o, 0, {sq, dv}, {dv, 1}}, fm = {mk, mk, 0, {sq, sk}, {sk, 1}};
    F1 fl = {lse, lse, 0, {sq}, {1}};
    if (masked) OPTS_MASK(&fq, &fk, &fv, &fs, &fm, &fp, &fw, &fc, &fsn, &fsl, &fo, &fl);
    else OPTS(&fq, &fk, &fv, &fs, &fp, &fw, &fc, &fsn, &fsl, &fo, &fl);
  }
  double *want = malloc((size_t)dv * 8), wl, *mrow = malloc((size_t)sk * 8);
  double rtol = wide ? 1e-12 : 1e-4, atol = wide ? 1e-13 : 1e-5;
  for (int64_t i = 0; i < sq; i++) {
    for (int64_t j = 0; j < sk; j++) mrow[j] = mk[i * sk + j];
    ref_row(sk, d, dv, qd + i * d, kd, vd, wide ? 0.7 : (double)scale, pos[i], L, R, cap, sn[i], sl[i], masked ? mrow : NULL, want, &wl);
    for (int64_t c = 0; c < dv; c++) cmp("out", want[c], wide ? od[i * dv + c] : o[i * dv + c], rtol, atol);
    cmp("lse", wl, wide ? ld[i] : lse[i], rtol, atol);
  }
  printf("r2%s%s Sq=%ld Sk=%ld D=%ld Dv=%ld L=%g R=%g cap=%g sinks=%d alibi=%d shift=%d: worst error/tolerance %.3g\n",
         wide ? " f64" : "", masked ? " mask" : "", (long)sq, (long)sk, (long)d, (long)dv, L, R, cap, sinks, alibi, shift, worst_seen);
  worst_seen = 0;
  free(q); free(k); free(v); free(o); free(lse); free(mk); free(qd); free(kd); free(vd); free(od); free(ld); free(want); free(mrow);
}
static void run4(void) {
  /* [2, 4, 13, 24] x [2, 2, 21, 24] x [2, 2, 21, 8]: scale 0.3, causal in window (3, 2), softcap 1.5. */
  int64_t B = 2, H = 4, HK = 2, SQ = 13, SK = 21, D = 24, DV = 8;
  float *q = fill(B * H * SQ * D), *k = fill(B * HK * SK * D), *v = fill(B * HK * SK * DV), sn[4] = {0.5f, -INFINITY, -1.f, 2.f}, sl[4] = {0.f, 0.25f, 0.5f, 0.125f};
  float *o = calloc((size_t)(B * H * SQ * DV), 4), *lse = calloc((size_t)(B * H * SQ), 4);
  F4 fq = {q, q, 0, {B, H, SQ, D}, {H * SQ * D, SQ * D, D, 1}}, fk = {k, k, 0, {B, HK, SK, D}, {HK * SK * D, SK * D, D, 1}},
     fv = {v, v, 0, {B, HK, SK, DV}, {HK * SK * DV, SK * DV, DV, 1}}, fo = {o, o, 0, {B, H, SQ, DV}, {H * SQ * DV, SQ * DV, DV, 1}};
  F1 fsn = {sn, sn, 0, {4}, {1}}, fsl = {sl, sl, 0, {4}, {1}};
  F3 fl = {lse, lse, 0, {B, H, SQ}, {H * SQ, SQ, 1}};
  STATIC4(&fq, &fk, &fv, &fsn, &fsl, &fo, &fl);
  double qd[24], *kd = malloc((size_t)(SK * D) * 8), *vd = malloc((size_t)(SK * DV) * 8), want[8], wl;
  for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) {
    int64_t kh = h / (H / HK);
    for (int64_t j = 0; j < SK * D; j++) kd[j] = k[(b * HK + kh) * SK * D + j];
    for (int64_t j = 0; j < SK * DV; j++) vd[j] = v[(b * HK + kh) * SK * DV + j];
    for (int64_t i = 0; i < SQ; i++) {
      for (int64_t t = 0; t < D; t++) qd[t] = q[((b * H + h) * SQ + i) * D + t];
      double p = (double)(i + SK - SQ);
      ref_row(SK, D, DV, qd, kd, vd, (double)0.3f, p, 3, 0, (double)1.5f, sn[h], sl[h], NULL, want, &wl);
      for (int64_t c = 0; c < DV; c++) cmp("r4 out", want[c], o[((b * H + h) * SQ + i) * DV + c], 1e-4, 1e-5);
      cmp("r4 lse", wl, lse[(b * H + h) * SQ + i], 1e-4, 1e-5);
    }
  }
  printf("static r4 gqa 4/2 causal window(3,2) softcap sinks alibi lse: worst error/tolerance %.3g\n", worst_seen);
  worst_seen = 0;
  free(q); free(k); free(v); free(o); free(lse); free(kd); free(vd);
}
int main(void) {
  static const int64_t shapes[][4] = {{1, 1, 16, 16}, {1, 300, 64, 64}, {3, 257, 17, 9}, {8, 100, 64, 64}, {37, 53, 40, 24}, {300, 700, 64, 64}, {129, 33, 16, 8}};
  const double inf = INFINITY;
  static const double windows[][2] = {{1e30, 1e30}, {1e30, 0}, {5, 0}, {3, 7}, {0, 1e30}, {64, 0}};
  for (unsigned n = 0; n < sizeof shapes / sizeof shapes[0]; n++) {
    const int64_t *x = shapes[n];
    for (unsigned w = 0; w < sizeof windows / sizeof windows[0]; w++) {
      double L = windows[w][0] >= 1e30 ? inf : windows[w][0], R = windows[w][1] >= 1e30 ? inf : windows[w][1];
      run2(x[0], x[1], x[2], x[3], L, R, 0, 0, 0, 0, 0, 0);
    }
    run2(x[0], x[1], x[2], x[3], inf, inf, 2.5, 0, 0, 0, 0, 0);
    run2(x[0], x[1], x[2], x[3], inf, inf, 0, 1, 0, 0, 0, 0);
    run2(x[0], x[1], x[2], x[3], inf, inf, 0, 0, 1, 0, 0, 0);
    run2(x[0], x[1], x[2], x[3], 9, 0, 2.5, 1, 1, 1, 0, 0);
    run2(x[0], x[1], x[2], x[3], 4, 2, 3.0, 1, 1, 0, 0, -5);
    run2(x[0], x[1], x[2], x[3], inf, 0, 0, 0, 0, 1, 0, 0);
    run2(x[0], x[1], x[2], x[3], 6, 1, 2.0, 1, 1, 0, 1, 0);
  }
  run4();
  return failures ? 1 : 0;
}
"#;

#[test]
fn variants_match_the_reference() {
    let dir = scratch("run");
    let compiled = compile(&dir);
    let defines = [
        ("OPTS", "opts_r2"),
        ("OPTS_MASK", "opts_mask_r2"),
        ("OPTS64", "opts_r2_f64"),
        ("STATIC4", "static_r4"),
    ]
    .map(|(m, k)| (m.to_string(), k));
    let stdout = harness::run(&dir, HARNESS, &compiled, &defines);
    assert!(stdout.lines().count() >= 50, "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
