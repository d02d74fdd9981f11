/* Times one statically shaped attention kernel compiled by attnc (scripts/tune.sh): q, k, v of
   [S, D] (contiguous, random in [-1, 1)), out [S, D]; prints the median time per call. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
void *_mlir_memref_to_llvm_alloc(uint64_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }
void _mlir_memref_to_llvm_free(void *p) { free(p); }
typedef struct { float *a, *p; int64_t off, sz[2], st[2]; } D2;
void KERNEL(D2 *, D2 *, D2 *, D2 *);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
int main(void) {
  const int64_t s = SEQ, d = DIM;
  float *m[4];
  uint64_t r = 88172645463325252ull;
  for (int t = 0; t < 4; t++) {
    m[t] = aligned_alloc(64, (size_t)(s * d) * sizeof(float));
    for (int64_t i = 0; i < s * d; i++) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; m[t][i] = (float)((r >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f; }
  }
  D2 x[4];
  for (int t = 0; t < 4; t++) { D2 y = {m[t], m[t], 0, {s, d}, {d, 1}}; x[t] = y; }
  double times[31];
  int calls = 1;
  double t0 = now(); KERNEL(&x[0], &x[1], &x[2], &x[3]); double one = now() - t0;
  if (one < 0.01) calls = (int)(0.01 / (one > 1e-7 ? one : 1e-7)) + 1;
  for (int n = 0; n < 31; n++) {
    double a = now();
    for (int c = 0; c < calls; c++) KERNEL(&x[0], &x[1], &x[2], &x[3]);
    times[n] = (now() - a) / calls;
  }
  qsort(times, 31, sizeof(double), cmp);
  double t = times[15];
  printf("%.6f %.2f\n", t * 1e3, 4.0 * (double)s * (double)s * (double)d / t / 1e9);
  return 0;
}
