/* Reference op prototypes, included twice by vkft/ref.h (float and double); no include guard
 * on purpose. VKFT_REF_REAL is the scalar type, VKFT_REF(name) the function name. */

/* C = alpha * op(A) op(B) + beta * C; with beta == 0, C is not read. */
void VKFT_REF(matmul)(vkft_matmul_orient orient, const VKFT_REF_REAL *a, const VKFT_REF_REAL *b,
                      VKFT_REF_REAL *c, int64_t M, int64_t N, int64_t K, VKFT_REF_REAL alpha,
                      VKFT_REF_REAL beta);
