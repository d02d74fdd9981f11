use attn_build::{Build, scan::kernel_def};
use attn_runtime::syntax::Invocation;
const SPECS: &str = r#"
fn dense(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64];
#[attn(causal)]
fn causal(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64];
fn prefix(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64] {
    attention(q, k, v, mask_mod = |b, h, i, j| j <= i || j < 64)
}
fn docs(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64], doc: [2048] as i32) -> [8, 2048, 64] {
    attention(q, k, v, mask_mod = |b, h, i, j| doc[i] == doc[j])
}
fn docidx(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64] {
    attention(q, k, v, mask_mod = |b, h, i, j| i / 512 == j / 512)
}
fn tutorial(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64]) -> [8, 2048, 64] {
    matmul(softmax(scale(matmul(q, transpose(k)), 0.125)), v)
}
fn relpos(q: [8, 2048, 64], k: [8, 2048, 64], v: [8, 2048, 64], bias: [8, 4095]) -> [8, 2048, 64] {
    attention(q, k, v, score_mod = |s, b, h, i, j| s + bias[h][j - i + 2047])
}
"#;
const HARNESS: &str = r#"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void *_mlir_memref_to_llvm_alloc(uint64_t n) { return malloc(n); }
void _mlir_memref_to_llvm_free(void *p) { free(p); }
typedef struct { void *a, *p; int64_t off, ss[8]; } D;
static D desc(void *data, int r, const long *shape) {
  D d; memset(&d, 0, sizeof d); d.a = d.p = data;
  long st = 1;
  for (int i = r - 1; i >= 0; i--) { d.ss[i] = shape[i]; d.ss[r + i] = st; st *= shape[i]; }
  return d;
}
void DENSE(D*,D*,D*,D*); void CAUSAL(D*,D*,D*,D*); void PREFIX(D*,D*,D*,D*); void DOCS(D*,D*,D*,D*,D*); void DOCIDX(D*,D*,D*,D*); void TUTORIAL(D*,D*,D*,D*); void RELPOS(D*,D*,D*,D*,D*);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
  long n = 8 * 2048 * 64, sh[3] = {8, 2048, 64}, ds[1] = {2048}, bs[2] = {8, 4095};
  float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4), *bias = malloc(8 * 4095 * 4);
  for (long i = 0; i < n; i++) { q[i] = (float)((i * 7919) % 1000) / 1000.f - 0.5f; k[i] = (float)((i * 104729) % 1000) / 1000.f - 0.5f; v[i] = (float)((i * 31) % 1000) / 1000.f; }
  for (long i = 0; i < 8 * 4095; i++) bias[i] = 0.001f * (i % 17);
  int32_t doc[2048]; for (int i = 0; i < 2048; i++) doc[i] = i / 512;
  D a = desc(q, 3, sh), b = desc(k, 3, sh), c = desc(v, 3, sh), d = desc(o, 3, sh), e = desc(doc, 1, ds), f = desc(bias, 2, bs);
  const char *names[] = {"dense", "causal", "prefix", "docs(input)", "docs(index)", "tutorial", "relpos"};
  for (int kk = 0; kk < 7; kk++) {
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
      double t0 = now();
      switch (kk) {
        case 0: DENSE(&a, &b, &c, &d); break; case 1: CAUSAL(&a, &b, &c, &d); break; case 2: PREFIX(&a, &b, &c, &d); break;
        case 3: DOCS(&a, &b, &c, &e, &d); break; case 4: DOCIDX(&a, &b, &c, &d); break; case 5: TUTORIAL(&a, &b, &c, &d); break; case 6: RELPOS(&a, &b, &c, &f, &d); break;
      }
      double t = now() - t0; if (t < best) best = t;
    }
    printf("%-12s %8.2f ms  %6.1f GFLOP/s(dense-eq)\n", names[kk], best * 1e3, 4.0 * 8 * 2048 * 2048 * 64 / best / 1e9);
  }
  return 0;
}
"#;
#[test]
fn perf() {
    let dir = std::env::temp_dir().join("attn-zz-perf");
    let _ = std::fs::create_dir_all(&dir);
    let mut build = Build::new();
    build.out_dir(&dir).cache_dir(dir.join("cache")).cargo_metadata(false);
    for k in syn::parse_str::<Invocation>(SPECS).unwrap().check().unwrap() { build.kernel(kernel_def(&k).unwrap()); }
    let compiled = build.compile_objects().unwrap_or_else(|e| panic!("{e}"));
    let src = dir.join("h.c"); std::fs::write(&src, HARNESS).unwrap();
    let exe = dir.join("h");
    let mut cmd = std::process::Command::new("cc");
    for k in &compiled {
        let v = k.variants.iter().find(|v| v.isa.is_none_or(|i| i.supported())).unwrap();
        cmd.arg(format!("-D{}=_mlir_ciface_{}", k.name.to_uppercase(), v.symbol)).arg(&v.object);
    }
    assert!(cmd.arg("-O2").arg(&src).arg("-o").arg(&exe).status().unwrap().success());
    let out = std::process::Command::new(&exe).output().unwrap();
    println!("{}", String::from_utf8_lossy(&out.stdout));
}
