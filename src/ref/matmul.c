/* Reference matmul in the three orientations training uses (see vkft/ref.h). */
#include "real.h"

void REF(matmul)(vkft_matmul_orient orient, const real *a, const real *b, real *c, int64_t M,
                 int64_t N, int64_t K, real alpha, real beta) {
  /* element strides of op(A)(m,k) and op(B)(n,k) */
  int64_t a_m = K, a_k = 1, b_n = K, b_k = 1;
  if (orient == VKFT_MATMUL_NN) b_n = 1, b_k = N;
  if (orient == VKFT_MATMUL_TN) a_m = 1, a_k = M, b_n = 1, b_k = N;
  for (int64_t m = 0; m < M; m++) {
    for (int64_t n = 0; n < N; n++) {
      real sum = 0;
      for (int64_t k = 0; k < K; k++) sum += a[m * a_m + k * a_k] * b[n * b_n + k * b_k];
      real *out = &c[m * N + n];
      *out = beta != 0 ? alpha * sum + beta * *out : alpha * sum;
    }
  }
}
