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
/* The same for Tq queries at positions q_offset.. over keys 0 .. q_offset + Tq - 1 (KV cache). */
void VKFT_REF(attention_forward_at)(const VKFT_REF_REAL *q, const VKFT_REF_REAL *k,
                                    const VKFT_REF_REAL *v, const int32_t *seq_id,
                                    VKFT_REF_REAL *out, VKFT_REF_REAL *lse, int64_t Tq,
                                    int64_t q_offset, int64_t Hq, int64_t Hkv, int64_t D,
                                    VKFT_REF_REAL scale);
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
/* ---- cross-entropy of the LM head (src/ref/cross_entropy.c) ----
 * h (T, C), w (V, C), labels (T): -100 (any label outside [0, V)) is not trained; logits (V)
 * is scratch. Forward: loss[0] = sum of the trained tokens' losses, loss[1] = their count;
 * row_loss (T), when not NULL, each token's loss (0 when not trained).
 * Backward: dh (T, C) written = grad_scale * row_weight[t] * dloss_t/dh (row_weight NULL: 1);
 * dw (V, C) accumulated when not NULL. */
void VKFT_REF(cross_entropy)(const VKFT_REF_REAL *h, const VKFT_REF_REAL *w, const int32_t *labels,
                             int64_t T, int64_t C, int64_t V, VKFT_REF_REAL *loss,
                             VKFT_REF_REAL *row_loss, VKFT_REF_REAL *logits);
void VKFT_REF(cross_entropy_bwd)(const VKFT_REF_REAL *h, const VKFT_REF_REAL *w,
                                 const int32_t *labels, int64_t T, int64_t C, int64_t V,
                                 VKFT_REF_REAL grad_scale, const VKFT_REF_REAL *row_weight,
                                 VKFT_REF_REAL *dh, VKFT_REF_REAL *dw, VKFT_REF_REAL *logits);

/* ---- preference objectives (src/ref/pref.c): see vkft_pref_loss in vkft/ops.h ---- */
/* The loss of one pair from its sequence log-probs (ORPO: means), the reference's (DPO) and the
 * completions' token counts (IPO; clamped to 1): what the weights of pref_loss differentiate. */
VKFT_REF_REAL VKFT_REF(pref_pair_loss)(const vkft_pref_objective *o, VKFT_REF_REAL c,
                                       VKFT_REF_REAL r, VKFT_REF_REAL ref_c, VKFT_REF_REAL ref_r,
                                       VKFT_REF_REAL n_c, VKFT_REF_REAL n_r);
void VKFT_REF(pref_loss)(const vkft_pref_objective *o, const VKFT_REF_REAL *row_loss,
                         const int32_t *tok, const int32_t *ranges, const VKFT_REF_REAL *ref,
                         int64_t T, int64_t N, VKFT_REF_REAL *seq, VKFT_REF_REAL *weights);

/* ---- LoRA (src/ref/lora.c) ----
 * x (T, in), a (r, in), b (out, r). Forward: u (T, r) = x a^T written, y (T, out) += s u b^T.
 * Backward from dy (T, out): db += s dy^T u, du = s dy b, da += du^T x, dx += du a (dx may be
 * NULL). */
void VKFT_REF(lora)(const VKFT_REF_REAL *x, const VKFT_REF_REAL *a, const VKFT_REF_REAL *b,
                    VKFT_REF_REAL *y, VKFT_REF_REAL *u, int64_t T, int64_t in, int64_t out,
                    int64_t r, VKFT_REF_REAL s);
void VKFT_REF(lora_bwd)(const VKFT_REF_REAL *x, const VKFT_REF_REAL *a, const VKFT_REF_REAL *b,
                        const VKFT_REF_REAL *u, const VKFT_REF_REAL *dy, VKFT_REF_REAL *dx,
                        VKFT_REF_REAL *da, VKFT_REF_REAL *db, int64_t T, int64_t in, int64_t out,
                        int64_t r, VKFT_REF_REAL s);
/* ---- DoRA (src/ref/dora.c) ----
 * w (out, in), a (r, in), b (out, r): norm (out) = row norms of w + s b a, scale (out) = m / norm
 * (m NULL: norm only). dora_scale: y (T, out) = beta y + (scale - shift) x (y may be x).
 * dora_mag_grad: dm (out) += sum_t dy yd / norm, dy and yd (T, out). */
void VKFT_REF(dora_norm)(const VKFT_REF_REAL *w, const VKFT_REF_REAL *a, const VKFT_REF_REAL *b,
                         const VKFT_REF_REAL *m, VKFT_REF_REAL *norm, VKFT_REF_REAL *scale,
                         int64_t out, int64_t in, int64_t r, VKFT_REF_REAL s);
void VKFT_REF(dora_scale)(const VKFT_REF_REAL *x, const VKFT_REF_REAL *scale, VKFT_REF_REAL *y,
                          int64_t T, int64_t out, VKFT_REF_REAL shift, VKFT_REF_REAL beta);
void VKFT_REF(dora_mag_grad)(const VKFT_REF_REAL *dy, const VKFT_REF_REAL *yd,
                             const VKFT_REF_REAL *norm, VKFT_REF_REAL *dm, int64_t T, int64_t out);
/* ---- ops-core: rmsnorm, rope, swiglu, embedding, elementwise, adamw, grad_norm ---- */
/* x is (R, C), w is (C), y is (R, C), rstd is (R) (may be NULL) */
void VKFT_REF(rmsnorm)(const VKFT_REF_REAL *x, const VKFT_REF_REAL *w, VKFT_REF_REAL *y,
                       VKFT_REF_REAL *rstd, int64_t R, int64_t C, VKFT_REF_REAL eps);
/* dx (R, C) is written; dw (C) is accumulated (+=), or NULL for a frozen weight */
void VKFT_REF(rmsnorm_backward)(const VKFT_REF_REAL *x, const VKFT_REF_REAL *w,
                                const VKFT_REF_REAL *rstd, const VKFT_REF_REAL *dy,
                                VKFT_REF_REAL *dx, VKFT_REF_REAL *dw, int64_t R, int64_t C);
/* x, out are (T, H, D) (out may be x); pos (T); inv_freq (D/2); inverse: rotate by -angle */
void VKFT_REF(rope)(const VKFT_REF_REAL *x, VKFT_REF_REAL *out, const int32_t *pos,
                    const float *inv_freq, int64_t T, int64_t H, int64_t D, int inverse);
/* gate, up, out are (n) = (R, F) flattened */
void VKFT_REF(swiglu)(const VKFT_REF_REAL *gate, const VKFT_REF_REAL *up, VKFT_REF_REAL *out,
                      int64_t n);
void VKFT_REF(swiglu_backward)(const VKFT_REF_REAL *gate, const VKFT_REF_REAL *up,
                               const VKFT_REF_REAL *dout, VKFT_REF_REAL *dgate, VKFT_REF_REAL *dup,
                               int64_t n);
/* table (V, C), ids (T), out (T, C) */
void VKFT_REF(embedding)(const VKFT_REF_REAL *table, const int32_t *ids, VKFT_REF_REAL *out,
                         int64_t T, int64_t C);
/* dtable (V, C) += scatter of dout (T, C) by ids (T) */
void VKFT_REF(embedding_backward)(const VKFT_REF_REAL *dout, const int32_t *ids,
                                  VKFT_REF_REAL *dtable, int64_t T, int64_t C);
void VKFT_REF(add)(const VKFT_REF_REAL *a, const VKFT_REF_REAL *b, VKFT_REF_REAL *out, int64_t n);
void VKFT_REF(scale)(VKFT_REF_REAL *x, VKFT_REF_REAL s, int64_t n);
/* p, g, m, v are (n); one torch-order AdamW step with g scaled by grad_scale */
void VKFT_REF(adamw)(VKFT_REF_REAL *p, const VKFT_REF_REAL *g, VKFT_REF_REAL *m, VKFT_REF_REAL *v,
                     int64_t n, VKFT_REF_REAL grad_scale, const vkft_adamw_step *k);
/* total L2 norm of count tensors grads[k] (n[k]) and torch's clip coefficient */
void VKFT_REF(grad_norm)(const VKFT_REF_REAL *const *grads, const int64_t *n, int count,
                         VKFT_REF_REAL max_norm, VKFT_REF_REAL *norm, VKFT_REF_REAL *scale);

/* ---- dropout (src/ref/dropout.c) ----
 * out = x * keep_i * scale, keep_i = vkft_dropout_keep(seed, stream, i, threshold); the same
 * (seed, stream) gives the same mask, so the backward is this op applied to the gradient. */
void VKFT_REF(dropout)(const VKFT_REF_REAL *x, VKFT_REF_REAL *out, int64_t n, uint32_t threshold,
                       float scale, uint32_t seed, uint32_t stream);
/* out = x + vkft_uniform_noise_value(seed, stream, i, magnitude) (NEFTune's noise); the noise
 * is fp32 on both precisions, the sum in the reference's */
void VKFT_REF(uniform_noise)(const VKFT_REF_REAL *x, VKFT_REF_REAL *out, int64_t n, float magnitude,
                             uint32_t seed, uint32_t stream);

/* ---- the KV cache of batched generation (src/ref/kv_cache.c) ----
 * A slotted cache of R rows of W = Hkv * D values (keys, or values): each sequence being
 * generated owns a run of rows, one per position. */
/* cache[rows[t], :] = x[t, :] for t < T; x (T, W), rows (T) in [0, R), cache (R, W). */
void VKFT_REF(kv_store)(const VKFT_REF_REAL *x, const int32_t *rows, VKFT_REF_REAL *cache,
                        int64_t T, int64_t W);
/* T new queries, each over its own sequence in the cache: query t (at position pos[t], its own
 * key and value already stored at row rows[t]) attends to the rows rows[t] - pos[t] .. rows[t]
 * (positions 0 .. pos[t] of its sequence). q (T, Hq, D), k and v (R, Hkv, D), out (T, Hq, D);
 * query head h reads kv head h / (Hq / Hkv). */
void VKFT_REF(attention_decode)(const VKFT_REF_REAL *q, const VKFT_REF_REAL *k,
                                const VKFT_REF_REAL *v, const int32_t *rows, const int32_t *pos,
                                VKFT_REF_REAL *out, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                VKFT_REF_REAL scale);
