/* Reference op prototypes, included twice by vkft/ref.h (float and double); no include guard
 * on purpose. VKFT_REF_REAL is the scalar type, VKFT_REF(name) the function name. */

/* C = alpha * op(A) op(B) + beta * C; with beta == 0, C is not read. */
void VKFT_REF(matmul)(vkft_matmul_orient orient, const VKFT_REF_REAL *a, const VKFT_REF_REAL *b,
                      VKFT_REF_REAL *c, int64_t M, int64_t N, int64_t K, VKFT_REF_REAL alpha,
                      VKFT_REF_REAL beta);

/* Causal grouped-query attention over packed sequences (src/ref/attention.c): token i attends
 * to token j iff j <= i and seq_id[j] == seq_id[i]. q is (T, Hq, D), k and v are (T, Hkv, D)
 * with Hq a multiple of Hkv; out is (T, Hq, D) and lse (T, Hq) the log-sum-exp of the scaled
 * scores scale * <q, k>, saved for the backward. */
void VKFT_REF(attention_forward)(const VKFT_REF_REAL *q, const VKFT_REF_REAL *k,
                                 const VKFT_REF_REAL *v, const int32_t *seq_id, VKFT_REF_REAL *out,
                                 VKFT_REF_REAL *lse, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                 VKFT_REF_REAL scale);
/* Overwrites dq (T, Hq, D), dk and dv (T, Hkv, D) and the scratch delta (T, Hq) (= sum over d
 * of dout * out) from dout = dL/dout. */
void VKFT_REF(attention_backward)(const VKFT_REF_REAL *q, const VKFT_REF_REAL *k,
                                  const VKFT_REF_REAL *v, const int32_t *seq_id,
                                  const VKFT_REF_REAL *out, const VKFT_REF_REAL *lse,
                                  const VKFT_REF_REAL *dout, VKFT_REF_REAL *dq, VKFT_REF_REAL *dk,
                                  VKFT_REF_REAL *dv, VKFT_REF_REAL *delta, int64_t T, int64_t Hq,
                                  int64_t Hkv, int64_t D, VKFT_REF_REAL scale);
