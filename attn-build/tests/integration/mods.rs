//! User score and mask mods fused into the attention kernel, against a C reference that
//! evaluates the mods in double: masks classified at build time (prefix LM, per-head patterns)
//! and at run time (document masks reading inputs), score mods reading inputs, every dtype
//! (f32, f64, bf16), GQA, the decode path (few query rows), rows left without keys, and mods
//! together with every built-in option (causal window, softcap, ALiBi, sinks, an additive mask).

use super::harness;
use attn_build::{
    Build,
    graph::{AttentionOptions, Graph, KernelDef, Mods, TensorType, options},
    scan::kernel_def,
};
use attn_runtime::syntax::{Invocation, Kernel, Op};

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("attn-mods-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The kernels, in the `attention!` grammar.
const SPECS: &str = r#"
#[attn(causal)]
fn docs(q: [4, 256, 64], k: [4, 256, 64], v: [4, 256, 64], doc: [256] as i32) -> [4, 256, 64] {
    attention(q, k, v, mask_mod = |b, h, i, j| doc[i] == doc[j])
}
fn prefix(q: [2, 128, 32], k: [2, 128, 32], v: [2, 128, 32]) -> [2, 128, 32] {
    attention(q, k, v, mask_mod = |b, h, i, j| j <= i || j < 64)
}
fn relpos(q: [2, 64, 32], k: [2, 64, 32], v: [2, 64, 32], bias: [2, 127]) -> [2, 64, 32] {
    attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 63])
}
#[attn(kv_heads = 2)]
fn composed(q: [1, 4, 200, 48], k: [1, 2, 200, 48], v: [1, 2, 200, 48]) -> [1, 4, 200, 48] {
    attention(q, k, v, mask_mod = |b, h, i, j| j <= i && i - j <= 16, score_mod = |s, b, h, i, j| 2.0 * tanh(s / 2.0))
}
#[attn(dtype = f64)]
fn wide(q: [100, 40], k: [130, 40], v: [130, 24]) -> [100, 24] {
    attention(q, k, v, mask_mod = |b, h, i, j| j <= i + 30 || j < 8,
        score_mod = |s, b, h, i, j| s - 0.1 * (abs(i + 30 - j) as f64) + exp(-(s * s)))
}
#[attn(dtype = bf16)]
fn half(q: [2, 70, 32], k: [2, 70, 32], v: [2, 70, 32], bias: [2, 139], keep: [70]) -> [2, 70, 32] {
    attention(q, k, v, mask_mod = |b, h, i, j| keep[j] > 0.0 || j == i,
        score_mod = |s, b, h, i, j| s * 0.5 + bias[h][j - i + 69])
}
#[attn(kv_heads = 2)]
fn decode(q: [2, 4, 4, 32], k: [2, 2, 300, 32], v: [2, 2, 300, 32], doc: [300] as i32) -> [2, 4, 4, 32] {
    attention(q, k, v, mask_mod = |b, h, i, j| doc[j] <= doc[i + 296] && (j + b) % 5 != 0,
        score_mod = |s, b, h, i, j| if h % 2 == 0 { s * 0.5 } else { s + (h as f32) * 0.1 })
}
fn tutorial(q: [64, 32], k: [80, 32], v: [80, 16], m: [64, 80]) -> [64, 16] {
    let s = scale(matmul(q, transpose(k)), 0.125);
    matmul(softmax(add(m, s)), v)
}
fn sparse(q: [1, 3, 96, 32], k: [1, 3, 96, 32], v: [1, 3, 96, 32]) -> [1, 3, 96, 32] {
    attention(q, k, v, mask_mod = |b, h, i, j| (i / 32) % 2 == (j / 32) % 2 && j < i && (j + h) % 3 != 1)
}
"#;

/// The mods of `src`'s one attention, and the kernel.
fn checked(src: &str) -> Vec<Kernel> {
    syn::parse_str::<Invocation>(src).unwrap().check().unwrap()
}

/// Every built-in option with mods: GQA 4/2, causal within a window (8, 0), softcap 1.5, ALiBi
/// slopes and sinks per head, an additive mask, and both mods.
fn all_options() -> KernelDef {
    let k = checked(
        "fn t(q: [2, 4, 40, 16], k: [2, 2, 50, 16], v: [2, 2, 50, 16]) -> [2, 4, 40, 16] {
            attention(q, k, v, score_mod = |s, b, h, i, j| s + 0.25 * (((i + j + h) % 3) as f32),
                mask_mod = |b, h, i, j| (i + j + b) % 7 != 0)
        }",
    )
    .remove(0);
    let Op::Attention { mods: Some(m), .. } = &k.nodes[0].op else {
        panic!("{k:?}")
    };
    let mut g = Graph::new();
    let q = g.input("q", TensorType::f32_static(&[2, 4, 40, 16]));
    let kk = g.input("k", TensorType::f32_static(&[2, 2, 50, 16]));
    let v = g.input("v", TensorType::f32_static(&[2, 2, 50, 16]));
    let sinks = g.input("sinks", TensorType::f32_static(&[4]));
    let slopes = g.input("slopes", TensorType::f32_static(&[4]));
    let mask = g.input("mask", TensorType::f32_static(&[40, 50]));
    let mods = g.mods(Mods {
        pair: m.mods.clone(),
        inputs: Vec::new(),
    });
    let o = g
        .attention_with(
            q,
            kk,
            v,
            AttentionOptions {
                options: options::AttentionOptions::new()
                    .with_causal(true)
                    .with_window(8, 0)
                    .with_softcap(1.5)
                    .with_scale(0.3),
                sinks: Some(sinks),
                alibi: Some(slopes),
                mask: Some(mask),
                mods: Some(mods),
                ..Default::default()
            },
        )
        .unwrap();
    KernelDef::new("all", g, o)
}

const HARNESS: &str = r#"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void *_mlir_memref_to_llvm_alloc(uint64_t n) { return malloc(n); }
void _mlir_memref_to_llvm_free(void *p) { free(p); }
/* A memref descriptor of any rank up to 4: sizes then strides, packed after the offset. */
typedef struct { void *a, *p; int64_t off, ss[8]; } D;
static D desc(void *data, int r, const long *shape) {
  D d; memset(&d, 0, sizeof d); d.a = d.p = data;
  long st = 1;
  for (int i = r - 1; i >= 0; i--) { d.ss[i] = shape[i]; d.ss[r + i] = st; st *= shape[i]; }
  return d;
}
void DOCS(D *, D *, D *, D *, D *);
void PREFIX(D *, D *, D *, D *);
void RELPOS(D *, D *, D *, D *, D *);
void COMPOSED(D *, D *, D *, D *);
void WIDE(D *, D *, D *, D *);
void HALF(D *, D *, D *, D *, D *, D *);
void DECODE(D *, D *, D *, D *, D *);
void SPARSE(D *, D *, D *, D *);
void TUTORIAL(D *, D *, D *, D *, D *);
void ALL(D *, D *, D *, D *, D *, D *, D *);
static uint64_t rs = 88172645463325252ull;
static double rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (double)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1; }
static int failures = 0;
static float *fill(long n) { float *x = malloc(n * 4); for (long i = 0; i < n; i++) x[i] = (float)rnd(); return x; }
static double *widen(const float *x, long n) { double *y = malloc(n * 8); for (long i = 0; i < n; i++) y[i] = x[i]; return y; }
static uint16_t to_bf16(float f) { uint32_t u; memcpy(&u, &f, 4); u += 0x7FFF + ((u >> 16) & 1); return (uint16_t)(u >> 16); }
static float from_bf16(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }

/* The problem, its mods and options. */
typedef struct {
  long B, H, HK, SQ, SK, D, DV;
  double scale, cap;         /* cap 0: none */
  int causal; long wl;       /* wl < 0: no window; else window (wl, 0) */
  const double *sinks, *slopes, *mask; /* [H], [H], [SQ][SK] or NULL */
  double (*score)(double s, long b, long h, long i, long j);
  int (*keep)(long b, long h, long i, long j);
} P;
/* out[b][h][i][c] by the documented order: scale, softcap, score_mod, ALiBi, mask, window or
   causal, mask_mod, then the softmax with the sink; rows without keys give 0. */
static void reference(const P *p, const double *q, const double *k, const double *v, double *out) {
  double *s = malloc(p->SK * 8);
  for (long b = 0; b < p->B; b++) for (long h = 0; h < p->H; h++) for (long i = 0; i < p->SQ; i++) {
    long kh = h / (p->H / p->HK), pos = i + p->SK - p->SQ;
    const double *qr = q + ((b * p->H + h) * p->SQ + i) * p->D;
    const double *kb = k + (b * p->HK + kh) * p->SK * p->D, *vb = v + (b * p->HK + kh) * p->SK * p->DV;
    double m = p->sinks ? p->sinks[h] : -INFINITY;
    for (long j = 0; j < p->SK; j++) {
      double a = 0;
      for (long t = 0; t < p->D; t++) a += qr[t] * kb[j * p->D + t];
      a *= p->scale;
      if (p->cap > 0) a = p->cap * tanh(a / p->cap);
      if (p->score) a = p->score(a, b, h, i, j);
      if (p->slopes) a -= p->slopes[h] * fabs((double)(pos - j));
      if (p->mask) a += p->mask[i * p->SK + j];
      if (p->causal && j > pos) a = -INFINITY;
      if (p->wl >= 0 && j < pos - p->wl) a = -INFINITY;
      if (p->keep && !p->keep(b, h, i, j)) a = -INFINITY;
      s[j] = a;
      if (a > m) m = a;
    }
    double l = (m == -INFINITY || !p->sinks) ? 0 : exp(p->sinks[h] - m);
    for (long j = 0; j < p->SK; j++) { s[j] = m == -INFINITY ? 0 : exp(s[j] - m); l += s[j]; }
    double *o = out + ((b * p->H + h) * p->SQ + i) * p->DV;
    for (long c = 0; c < p->DV; c++) {
      double a = 0;
      for (long j = 0; j < p->SK; j++) a += s[j] * vb[j * p->DV + c];
      o[c] = l > 0 ? a / l : 0;
    }
  }
  free(s);
}
static void compare(const char *what, long n, const double *want, const double *got, double rtol, double atol) {
  double worst = 0; long bad = 0;
  for (long x = 0; x < n; x++) {
    double e = fabs(want[x] - got[x]) / (atol + rtol * fabs(want[x]));
    if (!(e <= worst)) worst = e;
    if (!(e <= 1.0)) { if (bad < 5) printf("  %s[%ld]: want %.9g got %.9g\n", what, x, want[x], got[x]); bad++; }
  }
  printf("%s: %ld values, worst error/tolerance %.3g%s\n", what, n, worst, bad ? " FAILED" : "");
  if (bad) failures++;
}

static int32_t docs_doc[256];
static int k_docs(long b, long h, long i, long j) { return docs_doc[i] == docs_doc[j]; }
static int k_prefix(long b, long h, long i, long j) { return j <= i || j < 64; }
static double relpos_bias[2 * 127];
static double s_relpos(double s, long b, long h, long i, long j) { return s + relpos_bias[h * 127 + j - i + 63]; }
static int k_composed(long b, long h, long i, long j) { return j <= i && i - j <= 16; }
static double s_composed(double s, long b, long h, long i, long j) { return 2.0 * tanh(s / 2.0); }
static int k_wide(long b, long h, long i, long j) { return j <= i + 30 || j < 8; }
static double s_wide(double s, long b, long h, long i, long j) { return s - 0.1 * fabs((double)(i + 30 - j)) + exp(-(s * s)); }
static double half_bias[2 * 139], half_keep[70];
static int k_half(long b, long h, long i, long j) { return half_keep[j] > 0.0 || j == i; }
static double s_half(double s, long b, long h, long i, long j) { return s * 0.5 + half_bias[h * 139 + j - i + 69]; }
static int32_t decode_doc[300];
static int k_decode(long b, long h, long i, long j) { return decode_doc[j] <= decode_doc[i + 296] && (j + b) % 5 != 0; }
static double s_decode(double s, long b, long h, long i, long j) { return h % 2 == 0 ? s * 0.5 : s + (double)(float)((float)h * 0.1f); }
static int k_sparse(long b, long h, long i, long j) { return (i / 32) % 2 == (j / 32) % 2 && j < i && (j + h) % 3 != 1; }
static int k_all(long b, long h, long i, long j) { return (i + j + b) % 7 != 0; }
static double s_all(double s, long b, long h, long i, long j) { return s + 0.25 * (double)((i + j + h) % 3); }

/* Runs one f32 kernel: q, k, v (and up to 3 extra inputs), compares against the reference. */
typedef void (*K4)(D *, D *, D *, D *);
static void run(const char *what, P p, int rank, void *kernel, int extra, D *ex, double rtol) {
  long qs[4], ks[4], vs[4], os[4];
  long lead = rank == 4 ? 2 : rank == 3 ? 1 : 0;
  long qsh[4] = {p.B, p.H, p.SQ, p.D}, ksh[4] = {p.B, p.HK, p.SK, p.D}, vsh[4] = {p.B, p.HK, p.SK, p.DV}, osh[4] = {p.B, p.H, p.SQ, p.DV};
  int off = 4 - rank;
  for (int i = 0; i < rank; i++) { qs[i] = qsh[off + i]; ks[i] = ksh[off + i]; vs[i] = vsh[off + i]; os[i] = osh[off + i]; }
  (void)lead;
  long nq = p.B * p.H * p.SQ * p.D, nk = p.B * p.HK * p.SK * p.D, nv = p.B * p.HK * p.SK * p.DV, no = p.B * p.H * p.SQ * p.DV;
  float *q = fill(nq), *k = fill(nk), *v = fill(nv), *o = calloc(no, 4);
  D dq = desc(q, rank, qs), dk = desc(k, rank, ks), dv = desc(v, rank, vs), dout = desc(o, rank, os);
  if (extra == 0) ((K4)kernel)(&dq, &dk, &dv, &dout);
  else if (extra == 1) ((void (*)(D *, D *, D *, D *, D *))kernel)(&dq, &dk, &dv, &ex[0], &dout);
  else if (extra == 2) ((void (*)(D *, D *, D *, D *, D *, D *))kernel)(&dq, &dk, &dv, &ex[0], &ex[1], &dout);
  else ((void (*)(D *, D *, D *, D *, D *, D *, D *))kernel)(&dq, &dk, &dv, &ex[0], &ex[1], &ex[2], &dout);
  double *qd = widen(q, nq), *kd = widen(k, nk), *vd = widen(v, nv), *od = widen(o, no), *want = malloc(no * 8);
  reference(&p, qd, kd, vd, want);
  compare(what, no, want, od, rtol, 1e-6);
  free(q); free(k); free(v); free(o); free(qd); free(kd); free(vd); free(od); free(want);
}

int main(void) {
  /* docs: 5 documents of random lengths, causal within each. */
  { long at = 0; int d = 0; while (at < 256) { long len = 20 + (long)((rnd() + 1) * 40); for (long x = at; x < at + len && x < 256; x++) docs_doc[x] = d; at += len; d++; }
    long sh[1] = {256}; D ex[1] = {desc(docs_doc, 1, sh)};
    P p = {1, 4, 4, 256, 256, 64, 64, 0.125, 0, 1, -1, 0, 0, 0, 0, k_docs};
    run("docs (i32 input, run-time blocks, causal)", p, 3, (void *)DOCS, 1, ex, 1e-4); }
  { P p = {1, 2, 2, 128, 128, 32, 32, 1.0 / sqrt(32.0), 0, 0, -1, 0, 0, 0, 0, k_prefix};
    p.scale = (double)(float)p.scale;
    run("prefix_lm (build-time blocks)", p, 3, (void *)PREFIX, 0, 0, 1e-4); }
  { float b[2 * 127]; for (int x = 0; x < 2 * 127; x++) { b[x] = (float)rnd(); relpos_bias[x] = b[x]; }
    long sh[2] = {2, 127}; D ex[1] = {desc(b, 2, sh)};
    P p = {1, 2, 2, 64, 64, 32, 32, (double)(float)(1.0 / sqrt(32.0)), 0, 0, -1, 0, 0, 0, s_relpos, 0};
    run("relpos (score mod reading an input)", p, 3, (void *)RELPOS, 1, ex, 1e-4); }
  { P p = {1, 4, 2, 200, 200, 48, 48, (double)(float)(1.0 / sqrt(48.0)), 0, 0, -1, 0, 0, 0, s_composed, k_composed};
    run("composed (window and softcap as mods, GQA)", p, 4, (void *)COMPOSED, 0, 0, 1e-4); }
  { /* f64: the inputs are the f32 random values, widened. */
    long SQ = 100, SK = 130, DD = 40, DV = 24;
    float *q = fill(SQ * DD), *k = fill(SK * DD), *v = fill(SK * DV);
    double *qd = widen(q, SQ * DD), *kd = widen(k, SK * DD), *vd = widen(v, SK * DV), *o = calloc(SQ * DV, 8), *want = malloc(SQ * DV * 8);
    long qs[2] = {SQ, DD}, ks[2] = {SK, DD}, vs[2] = {SK, DV}, os[2] = {SQ, DV};
    D a = desc(qd, 2, qs), b = desc(kd, 2, ks), c = desc(vd, 2, vs), d = desc(o, 2, os);
    WIDE(&a, &b, &c, &d);
    P p = {1, 1, 1, SQ, SK, DD, DV, 1.0 / sqrt(40.0), 0, 0, -1, 0, 0, 0, s_wide, k_wide};
    reference(&p, qd, kd, vd, want);
    compare("wide (f64, build-time blocks, exp)", SQ * DV, want, o, 1e-11, 1e-13); }
  { /* bf16: the reference sees the rounded inputs. */
    long H = 2, S = 70, DD = 32, n = H * S * DD;
    uint16_t *q = malloc(n * 2), *k = malloc(n * 2), *v = malloc(n * 2), *o = calloc(n, 2);
    double *qd = malloc(n * 8), *kd = malloc(n * 8), *vd = malloc(n * 8), *od = malloc(n * 8), *want = malloc(n * 8);
    for (long x = 0; x < n; x++) { q[x] = to_bf16((float)rnd()); k[x] = to_bf16((float)rnd()); v[x] = to_bf16((float)rnd());
      qd[x] = from_bf16(q[x]); kd[x] = from_bf16(k[x]); vd[x] = from_bf16(v[x]); }
    float b[2 * 139], keep[70];
    for (int x = 0; x < 2 * 139; x++) { b[x] = (float)rnd(); half_bias[x] = b[x]; }
    for (int x = 0; x < 70; x++) { keep[x] = x % 4 == 1 ? -1.f : (float)rnd(); half_keep[x] = keep[x]; }
    long sh[3] = {H, S, DD}, bs[2] = {2, 139}, kp[1] = {70};
    D a = desc(q, 3, sh), bb = desc(k, 3, sh), c = desc(v, 3, sh), e1 = desc(b, 2, bs), e2 = desc(keep, 1, kp), d = desc(o, 3, sh);
    HALF(&a, &bb, &c, &e1, &e2, &d);
    for (long x = 0; x < n; x++) od[x] = from_bf16(o[x]);
    P p = {1, H, H, S, S, DD, DD, (double)(float)(1.0 / sqrt(32.0)), 0, 0, -1, 0, 0, 0, s_half, k_half};
    reference(&p, qd, kd, vd, want);
    compare("half (bf16, f32 input read by the mask)", n, want, od, 1.0 / 256, 1e-5); }
  { for (int x = 0; x < 300; x++) decode_doc[x] = x / 37;
    long sh[1] = {300}; D ex[1] = {desc(decode_doc, 1, sh)};
    P p = {2, 4, 2, 4, 300, 32, 32, (double)(float)(1.0 / sqrt(32.0)), 0, 0, -1, 0, 0, 0, s_decode, k_decode};
    run("decode (4 rows: the streaming path)", p, 4, (void *)DECODE, 1, ex, 1e-4); }
  { float *m = fill(64 * 80); double *md = widen(m, 64 * 80);
    long ms[2] = {64, 80}; D ex[1] = {desc(m, 2, ms)};
    P p = {1, 1, 1, 64, 80, 32, 16, 0.125, 0, 0, -1, 0, 0, md, 0, 0};
    run("tutorial (the composition, fused into attention)", p, 2, (void *)TUTORIAL, 1, ex, 1e-4); }
  { P p = {1, 3, 3, 96, 96, 32, 32, (double)(float)(1.0 / sqrt(32.0)), 0, 0, -1, 0, 0, 0, 0, k_sparse};
    run("sparse (per-head build-time blocks, rows without keys)", p, 4, (void *)SPARSE, 0, 0, 1e-4); }
  { float sinks[4] = {0.5f, -INFINITY, -1.f, 2.f}, slopes[4] = {0.f, 0.25f, 0.5f, 0.125f}, *mask = fill(40 * 50);
    for (int x = 0; x < 40 * 50; x++) if (x % 11 == 3) mask[x] = -INFINITY;
    double sd[4], sl[4], *md = widen(mask, 40 * 50);
    for (int x = 0; x < 4; x++) { sd[x] = sinks[x]; sl[x] = slopes[x]; }
    long s4[1] = {4}, ms[2] = {40, 50};
    D ex[3] = {desc(sinks, 1, s4), desc(slopes, 1, s4), desc(mask, 2, ms)};
    P p = {2, 4, 2, 40, 50, 16, 16, (double)0.3f, (double)1.5f, 1, 8, sd, sl, md, s_all, k_all};
    run("all options (causal window, softcap, ALiBi, sinks, mask, both mods)", p, 4, (void *)ALL, 3, ex, 1e-4); }
  return failures ? 1 : 0;
}
"#;

#[test]
fn mods_match_the_c_reference() {
    let dir = scratch("run");
    let mut build = Build::new();
    build
        .out_dir(&dir)
        .cache_dir(dir.join("cache"))
        .cargo_metadata(false);
    for k in checked(SPECS) {
        build.kernel(kernel_def(&k).unwrap());
    }
    build.kernel(all_options());
    let compiled = build.compile_objects().unwrap_or_else(|e| panic!("{e}"));
    let defines: Vec<(String, &str)> = compiled
        .iter()
        .map(|k| (k.name.to_uppercase(), k.name.as_str()))
        .collect();
    let stdout = harness::run(&dir, HARNESS, &compiled, &defines);
    assert_eq!(stdout.lines().filter(|l| l.contains("worst")).count(), 10);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `fuse-attention`: the composition becomes one `transformer.attention` in the `fused` stage
/// (`01b-fused.mlir`), also with `mul` by a rank-0 scale and an f64 kernel; values with other
/// uses block it.
#[test]
fn compositions_fuse_into_attention() {
    let dir = scratch("fuse");
    let mut build = Build::new();
    build
        .out_dir(&dir)
        .cache_dir(dir.join("cache"))
        .dump_ir(dir.join("ir"))
        .cargo_metadata(false);
    let src = r#"
        fn plain(q: [2, 64, 32], k: [2, 80, 32], v: [2, 80, 16]) -> [2, 64, 16] {
            matmul(softmax(scale(matmul(q, transpose(k)), 0.125)), v)
        }
        #[attn(dtype = f64)]
        fn wide(q: [64, 32], k: [80, 32], v: [80, 16]) -> [64, 16] {
            let p = softmax(scale(matmul(q, transpose(k)), 0.125));
            matmul(p, v)
        }
        fn shared(q: [64, 32], k: [80, 32], v: [80, 16]) -> [64, 16] {
            let p = softmax(scale(matmul(q, transpose(k)), 0.125));
            add(matmul(p, v), matmul(p, v))
        }
    "#;
    for k in checked(src) {
        build.kernel(kernel_def(&k).unwrap());
    }
    // mul by a rank-0 scale input, built with the graph API.
    let mut g = Graph::new();
    let q = g.input("q", TensorType::f32_static(&[16, 8]));
    let k = g.input("k", TensorType::f32_static(&[24, 8]));
    let v = g.input("v", TensorType::f32_static(&[24, 8]));
    let c = g.input("c", TensorType::f32_static(&[]));
    let kt = g.transpose(k).unwrap();
    let s = g.matmul(q, kt).unwrap();
    let s = g.mul(s, c).unwrap();
    let p = g.softmax(s).unwrap();
    let o = g.matmul(p, v).unwrap();
    build.kernel(KernelDef::new("scaled_by_input", g, o));
    build.compile_objects().unwrap_or_else(|e| panic!("{e}"));
    let read = |k: &str, f: &str| std::fs::read_to_string(dir.join("ir").join(k).join(f)).unwrap();
    for k in ["plain", "wide", "scaled_by_input"] {
        let before = read(k, "01-transformer.mlir");
        let after = read(k, "01b-fused.mlir");
        assert!(before.contains("transformer.softmax"), "{before}");
        assert_eq!(after.matches("transformer.attention").count(), 1, "{after}");
        for op in ["softmax", "matmul", "scale", "mul", "transpose"] {
            assert!(
                !after.contains(&format!("transformer.{op}\"")),
                "{k}: {after}"
            );
        }
    }
    let shared = read("shared", "01b-fused.mlir");
    assert!(!shared.contains("transformer.attention"), "{shared}");
    assert_eq!(shared, read("shared", "01-transformer.mlir"));
    let _ = std::fs::remove_dir_all(&dir);
}
