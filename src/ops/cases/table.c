/* The op table: every row, grouped by family (case.h lists the families, src/ops/cases/<family>.c
 * runs them), with what d[] means for each family above its rows. One static array: no row can
 * be dropped. T: tests/test_ops (on both backends), S: `vkft selftest`, B: `vkft bench ops`,
 * L: `vkft bench ops --large` (GPU-sized). */
#include "case.h"

#define T VKFT_CASE_TEST
#define S VKFT_CASE_SELFTEST
#define B VKFT_CASE_BENCH
#define L VKFT_CASE_LARGE

static const vkft_op_case rows[] = {
    /* matmul d = {M, N, K, 1: beta != 0 | 2: views at an odd element offset | 4: weights in
     * +-1e-4 (f16 subnormals)}. Odd and tile-straddling sizes, length 1, one weight over
     * maxStorageBufferRange of lavapipe (33000 x 1024 fp32 = 135 MB > 128 MiB), and operands
     * whose shapes allow vector loads but whose addresses do not (the scalar path must be
     * chosen). */
    {"matmul_nt", VKFT_F32, {64, 64, 64, 0}, T | S},
    /* the self-check's long products: many k slices and tiles, ragged edges (a kernel or driver
     * that goes wrong only deep into K shows at start-up, not in training) */
    {"matmul_nt", VKFT_BF16, {130, 260, 1024, 1}, T | S},
    {"matmul_nn", VKFT_BF16, {130, 96, 1024, 0}, T | S},
    {"matmul_tn", VKFT_F32, {96, 160, 1024, 0}, T | S},
    {"matmul_nt", VKFT_F32, {1, 1, 1, 0}, T},
    {"matmul_nt", VKFT_F32, {1, 67, 33, 0}, T},
    {"matmul_nt", VKFT_F32, {17, 33, 65, 1}, T},
    {"matmul_nt", VKFT_F32, {130, 257, 96, 0}, T},
    {"matmul_nt", VKFT_F16, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_F16, {19, 70, 37, 1}, T},
    {"matmul_nt", VKFT_F16, {33, 129, 256, 0}, T},
    {"matmul_nt", VKFT_BF16, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_BF16, {19, 70, 37, 0}, T},
    {"matmul_nt", VKFT_BF16, {33, 129, 256, 1}, T},
    {"matmul_nt", VKFT_BF16, {1, 192, 256, 0}, T}, /* a generation step at batch 1 */
    {"matmul_nt", VKFT_F32, {3, 64, 128, 0}, T},
    {"matmul_nn", VKFT_F32, {64, 64, 64, 0}, T | S},
    {"matmul_nn", VKFT_F32, {1, 1, 1, 0}, T},
    {"matmul_nn", VKFT_F32, {23, 45, 67, 1}, T},
    {"matmul_nn", VKFT_F32, {64, 256, 130, 0}, T},
    {"matmul_nn", VKFT_F32, {5, 64, 64, 0}, T},
    {"matmul_nn", VKFT_F16, {23, 45, 67, 0}, T},
    {"matmul_nn", VKFT_F16, {40, 128, 64, 1}, T | S},
    {"matmul_nn", VKFT_BF16, {23, 45, 67, 0}, T},
    {"matmul_nn", VKFT_BF16, {40, 128, 64, 1}, T | S},
    {"matmul_tn", VKFT_F32, {64, 64, 64, 0}, T | S},
    {"matmul_tn", VKFT_F32, {1, 1, 1, 0}, T},
    {"matmul_tn", VKFT_F32, {33, 47, 19, 1}, T},
    {"matmul_tn", VKFT_F32, {96, 160, 300, 0}, T},
    /* shapes that select the larger register tiles (8x8, 8x16), with ragged edges */
    {"matmul_nt", VKFT_F32, {70, 260, 44, 0}, T},
    {"matmul_nt", VKFT_F32, {130, 520, 68, 1}, T},
    {"matmul_nt", VKFT_BF16, {130, 520, 68, 0}, T},
    {"matmul_nt", VKFT_F16, {70, 260, 45, 0}, T},
    {"matmul_nn", VKFT_F32, {130, 520, 68, 0}, T},
    {"matmul_nn", VKFT_BF16, {70, 260, 44, 1}, T},
    {"matmul_tn", VKFT_F32, {130, 520, 68, 1}, T},
    {"matmul_tn", VKFT_F32, {70, 262, 44, 0}, T},
    {"matmul_nt", VKFT_F32, {8, 33000, 1024, 0}, T}, /* > 128 MiB weight */
    /* views at odd element offsets, shapes that would take the vector path */
    {"matmul_nt", VKFT_F32, {64, 64, 64, 2}, T | S},
    {"matmul_nt", VKFT_F16, {33, 128, 256, 3}, T},
    {"matmul_nt", VKFT_BF16, {64, 260, 64, 2}, T},
    {"matmul_nn", VKFT_F32, {40, 128, 64, 3}, T},
    {"matmul_nn", VKFT_BF16, {64, 256, 68, 2}, T},
    {"matmul_tn", VKFT_F32, {64, 128, 64, 2}, T},
    /* f16 weights that are mostly subnormal, on the vector and the scalar path */
    {"matmul_nt", VKFT_F16, {33, 64, 64, 4}, T | S},
    {"matmul_nn", VKFT_F16, {19, 45, 37, 4}, T},
    /* bitsandbytes 4-bit weights, dequantized as read: block sizes (d[3] >> 8 = log2; 0: 64),
     * double-quantized scales (8), partial last blocks, odd element counts, blocks spanning
     * rows, the scalar edges and the vector path; NT (forward) and NN (input gradient) */
    {"matmul_nt", VKFT_NF4, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_NF4, {64, 64, 64, 8}, T | S},
    {"matmul_nt", VKFT_FP4, {64, 64, 64, 8}, T | S},
    {"matmul_nn", VKFT_NF4, {40, 128, 64, 9}, T | S},
    {"matmul_nn", VKFT_FP4, {40, 128, 64, 0}, T},
    {"matmul_nt", VKFT_NF4, {1, 1, 1, 0}, T},
    {"matmul_nt", VKFT_NF4, {17, 33, 65, 1 | 5 << 8}, T},
    {"matmul_nt", VKFT_FP4, {19, 70, 37, 8 | 7 << 8}, T},
    {"matmul_nt", VKFT_NF4, {130, 520, 68, 8 | 12 << 8}, T},
    {"matmul_nt", VKFT_NF4, {33, 300, 1000, 8 | 8 << 8}, T},
    {"matmul_nn", VKFT_NF4, {23, 45, 67, 8 | 6 << 8}, T},
    {"matmul_nn", VKFT_FP4, {70, 260, 44, 1 | 5 << 8}, T},
    {"matmul_nn", VKFT_NF4, {64, 256, 130, 8 | 10 << 8}, T},
    /* A = I: C holds the dequantized weight itself, which must equal the reference's bits */
    {"matmul_nt", VKFT_NF4, {96, 70, 96, 16 | 8 | 5 << 8}, T},
    {"matmul_nt", VKFT_FP4, {96, 70, 96, 16 | 8}, T},
    {"matmul_nt", VKFT_NF4, {64, 33, 64, 16}, T},
    /* ggml block weights of GGUF files (Q8_0, Q4_0, Q5_0: blocks of 32; Q4_K, Q5_K, Q6_K: 256),
     * dequantized as read: rows of whole blocks as in a GGUF file (K for NT, N for NN), tiles
     * that fill and tiles cut on both edges (the scalar path), beta; A = I (16) in both
     * orientations makes C the dequantized weight, which must be the reference's bits */
    {"matmul_nt", VKFT_Q8_0, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_Q4_0, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_Q5_0, {64, 64, 64, 0}, T},
    {"matmul_nt", VKFT_Q4_K, {64, 64, 256, 0}, T | S},
    {"matmul_nt", VKFT_Q5_K, {64, 64, 256, 0}, T},
    {"matmul_nt", VKFT_Q6_K, {64, 64, 256, 0}, T | S},
    {"matmul_nn", VKFT_Q8_0, {40, 128, 64, 1}, T | S},
    {"matmul_nn", VKFT_Q4_0, {40, 96, 64, 0}, T},
    {"matmul_nn", VKFT_Q5_0, {40, 160, 64, 1}, T},
    {"matmul_nn", VKFT_Q4_K, {40, 256, 64, 0}, T | S},
    {"matmul_nn", VKFT_Q5_K, {40, 256, 64, 1}, T},
    {"matmul_nn", VKFT_Q6_K, {40, 256, 64, 0}, T | S},
    {"matmul_nt", VKFT_Q8_0, {17, 33, 96, 1}, T},
    {"matmul_nt", VKFT_Q4_0, {130, 520, 64, 0}, T},
    {"matmul_nt", VKFT_Q5_0, {19, 70, 32, 0}, T},
    {"matmul_nt", VKFT_Q4_K, {130, 260, 512, 1}, T},
    {"matmul_nt", VKFT_Q5_K, {17, 33, 256, 0}, T},
    {"matmul_nt", VKFT_Q6_K, {70, 131, 512, 1}, T},
    {"matmul_nn", VKFT_Q8_0, {23, 224, 45, 0}, T},
    {"matmul_nn", VKFT_Q4_0, {70, 32, 37, 1}, T},
    {"matmul_nn", VKFT_Q5_0, {23, 64, 67, 0}, T},
    {"matmul_nn", VKFT_Q4_K, {23, 512, 45, 1}, T},
    {"matmul_nn", VKFT_Q5_K, {70, 256, 33, 0}, T},
    {"matmul_nn", VKFT_Q6_K, {19, 768, 37, 0}, T},
    {"matmul_nt", VKFT_Q8_0, {96, 70, 96, 16}, T},
    {"matmul_nt", VKFT_Q4_0, {64, 33, 64, 16}, T},
    {"matmul_nt", VKFT_Q5_0, {96, 70, 96, 16}, T},
    {"matmul_nt", VKFT_Q4_K, {256, 70, 256, 16}, T},
    {"matmul_nt", VKFT_Q5_K, {256, 33, 256, 16}, T},
    {"matmul_nt", VKFT_Q6_K, {256, 70, 256, 16}, T},
    {"matmul_nn", VKFT_Q8_0, {64, 96, 64, 16}, T},
    {"matmul_nn", VKFT_Q4_0, {33, 64, 33, 16}, T},
    {"matmul_nn", VKFT_Q5_0, {45, 96, 45, 16}, T},
    {"matmul_nn", VKFT_Q4_K, {64, 256, 64, 16}, T},
    {"matmul_nn", VKFT_Q5_K, {33, 512, 33, 16}, T},
    {"matmul_nn", VKFT_Q6_K, {64, 256, 64, 16}, T},
    {"matmul_nt", VKFT_F32, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_F16, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_BF16, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_F32, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_BF16, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_NF4, {1024, 1024, 1024, 8}, B},
    {"matmul_nt", VKFT_FP4, {1024, 1024, 1024, 8}, B},
    {"matmul_nn", VKFT_NF4, {1024, 1024, 1024, 8}, B},
    {"matmul_nt", VKFT_Q8_0, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_Q4_0, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_Q4_K, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_Q5_K, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_Q6_K, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_Q8_0, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_Q4_0, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_Q4_K, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_Q5_K, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_Q6_K, {1024, 1024, 1024, 0}, B},
    {"matmul_tn", VKFT_F32, {1024, 1024, 1024, 0}, B},
    /* GPU-sized: 4096^3, and Llama-3.1-8B's MLP on 4096 tokens (x W_gate^T; its input gradient;
     * the weight gradient of a 4096 x 4096 projection) */
    {"matmul_nt", VKFT_F32, {4096, 4096, 4096, 0}, L},
    {"matmul_nt", VKFT_F16, {4096, 4096, 4096, 0}, L},
    {"matmul_nt", VKFT_BF16, {4096, 4096, 4096, 0}, L},
    {"matmul_nt", VKFT_NF4, {4096, 4096, 4096, 8}, L},
    {"matmul_nt", VKFT_BF16, {4096, 14336, 4096, 0}, L},
    {"matmul_nn", VKFT_BF16, {4096, 4096, 14336, 0}, L},
    {"matmul_tn", VKFT_F32, {4096, 4096, 4096, 0}, L},

    /* attention d = {T, Hq, Hkv, D}: T = 1, T not a multiple of the rows of an invocation (8 on
     * lavapipe) or a workgroup (128), odd and small head dims (scalar-load path), 64, 80 and
     * 128 (vector path), grouped and plain heads. */
    {"attention", VKFT_F32, {1, 1, 1, 8}, T},
    {"attention", VKFT_F32, {1, 4, 2, 5}, T},
    {"attention_packed", VKFT_F32, {37, 4, 2, 16}, T | S},
    {"attention_packed", VKFT_F32, {37, 4, 2, 5}, T},
    {"attention_packed", VKFT_F32, {37, 4, 4, 8}, T},
    {"attention_packed", VKFT_F32, {37, 2, 1, 64}, T},
    {"attention_packed", VKFT_F32, {37, 2, 2, 128}, T},
    {"attention_packed", VKFT_F32, {200, 3, 1, 7}, T},
    {"attention_mixed", VKFT_F32, {45, 4, 2, 8}, T},
    {"attention", VKFT_F32, {64, 2, 2, 16}, T},
    {"attention", VKFT_F32, {67, 4, 2, 64}, T},
    {"attention", VKFT_F32, {130, 2, 1, 128}, T | S},
    {"attention_packed", VKFT_F32, {37, 2, 1, 80}, T},
    /* generation: the last third of the queries at a query offset (vkft_attention_at) */
    {"attention_cached", VKFT_F32, {37, 4, 2, 16}, T},
    {"attention_cached", VKFT_F32, {67, 4, 2, 64}, T | S},
    {"attention_cached", VKFT_F32, {2, 2, 1, 5}, T},
    {"attention_bwd", VKFT_F32, {1, 1, 1, 8}, T},
    {"attention_bwd", VKFT_F32, {1, 4, 2, 5}, T},
    {"attention_bwd_packed", VKFT_F32, {37, 4, 2, 16}, T | S},
    {"attention_bwd_packed", VKFT_F32, {37, 4, 2, 5}, T},
    {"attention_bwd_packed", VKFT_F32, {37, 4, 4, 8}, T},
    {"attention_bwd_packed", VKFT_F32, {37, 2, 1, 64}, T},
    {"attention_bwd_packed", VKFT_F32, {37, 2, 2, 128}, T},
    {"attention_bwd_packed", VKFT_F32, {200, 3, 1, 7}, T},
    {"attention_bwd_mixed", VKFT_F32, {45, 4, 2, 8}, T},
    {"attention_bwd", VKFT_F32, {64, 2, 2, 16}, T},
    {"attention_bwd", VKFT_F32, {67, 4, 2, 64}, T},
    {"attention_bwd", VKFT_F32, {130, 2, 1, 128}, T | S},
    {"attention_bwd_packed", VKFT_F32, {37, 2, 1, 80}, T},
    {"attention", VKFT_F32, {512, 8, 8, 64}, B},
    {"attention", VKFT_F32, {1024, 8, 8, 64}, B},
    {"attention_bwd", VKFT_F32, {512, 8, 8, 64}, B},
    {"attention_bwd", VKFT_F32, {1024, 8, 8, 64}, B},

    /* cross_entropy d = {T, C, V, chunk}: V a multiple of the chunk or not, V below the chunk,
     * T = 1, odd C, ragged last chunks of odd width (scalar paths), all three head dtypes. The
     * bench rows (chunk 0: the default width) are a 32k-vocabulary LM head of width 1024 on 256
     * tokens (sized so `bench ops` stays within minutes on a CPU device). */
    {"cross_entropy", VKFT_F32, {7, 33, 1001, 256}, T},
    {"cross_entropy", VKFT_BF16, {16, 64, 500, 128}, T | S},
    {"cross_entropy", VKFT_F16, {1, 64, 50, 256}, T},
    {"cross_entropy_bwd", VKFT_F32, {1, 33, 50, 256}, T},
    {"cross_entropy_bwd", VKFT_F32, {7, 33, 1001, 256}, T},
    {"cross_entropy_bwd", VKFT_F32, {64, 128, 1024, 256}, T},
    {"cross_entropy_bwd", VKFT_F16, {13, 64, 777, 128}, T},
    {"cross_entropy_bwd", VKFT_BF16, {37, 96, 1030, 256}, T | S},
    {"cross_entropy_bwd_dw", VKFT_F32, {7, 33, 1001, 256}, T},
    {"cross_entropy_bwd_dw", VKFT_F32, {1, 17, 9, 64}, T},
    {"cross_entropy_bwd_dw", VKFT_F32, {64, 128, 2048, 512}, T | S},
    {"cross_entropy_bwd_dw", VKFT_BF16, {13, 67, 300, 64}, T},
    {"cross_entropy_bwd_ignored", VKFT_F32, {5, 16, 100, 64}, T},
    {"cross_entropy_bwd_dw_odd", VKFT_F32, {16, 64, 500, 128}, T},
    {"cross_entropy_bwd_dw_odd", VKFT_BF16, {16, 64, 500, 128}, T},
    {"cross_entropy_weighted", VKFT_F32, {7, 33, 1001, 256}, T},
    {"cross_entropy_weighted", VKFT_BF16, {37, 96, 1030, 256}, T | S},
    {"cross_entropy_weighted", VKFT_F32, {5, 16, 100, 128}, T}, /* one chunk: no recompute */
    /* pref_loss d = {pairs, longest sequence, kind (vkft_pref_loss_kind), 1: log-probs only}:
     * sequences packed with gaps, prompts of their own length, a pair at the limit */
    {"pref_loss", VKFT_F32, {1, 5, 0, 0}, T},
    {"pref_loss", VKFT_F32, {4, 40, 0, 0}, T | S},
    {"pref_loss", VKFT_F32, {4, 40, 0, 1}, T},
    {"pref_loss", VKFT_F32, {7, 33, 1, 0}, T},
    {"pref_loss", VKFT_F32, {7, 33, 2, 0}, T},
    {"pref_loss", VKFT_F32, {7, 33, 3, 0}, T},
    {"pref_loss", VKFT_F32, {7, 33, 4, 0}, T | S},
    {"pref_loss", VKFT_F32, {70, 300, 0, 0}, T},
    {"pref_loss", VKFT_F32, {256, 20, 4, 0}, T},
    {"pref_loss", VKFT_F32, {64, 2048, 0, 0}, B},
    {"cross_entropy", VKFT_BF16, {256, 1024, 32000, 0}, B},
    {"cross_entropy_bwd", VKFT_BF16, {256, 1024, 32000, 0}, B},

    /* lora d = {T, in, out, r}: T = 1, odd and tile-straddling widths, r = 1, 8, 16, 32, 64. */
    {"lora", VKFT_F32, {1, 33, 17, 1}, T},
    {"lora", VKFT_F32, {37, 65, 130, 16}, T | S},
    {"lora", VKFT_F32, {64, 128, 96, 8}, T},
    {"lora", VKFT_F32, {70, 100, 300, 64}, T},
    {"lora_bwd", VKFT_F32, {1, 33, 17, 1}, T},
    {"lora_bwd", VKFT_F32, {37, 65, 130, 16}, T | S},
    {"lora_bwd", VKFT_F32, {64, 128, 96, 8}, T},
    {"lora_bwd", VKFT_F32, {70, 100, 300, 64}, T},
    /* enough rows for the CPU tilings of many rows per invocation (16 at r <= 16, 8 at r = 32),
     * with a ragged last invocation and unaligned rows */
    {"lora", VKFT_F32, {2051, 36, 20, 16}, T},
    {"lora_bwd", VKFT_F32, {2048, 1024, 2052, 16}, T},
    {"lora_bwd", VKFT_F32, {1030, 2050, 1027, 32}, T},
    /* every tensor one element into its allocation: unaligned views of vector-friendly shapes */
    {"lora_odd", VKFT_F32, {37, 64, 128, 16}, T},
    {"lora_bwd_odd", VKFT_F32, {37, 64, 128, 16}, T},
    {"lora", VKFT_F32, {2048, 2048, 2048, 16}, B},
    {"lora_bwd", VKFT_F32, {2048, 2048, 2048, 16}, B},
    /* dora_norm d = {out, in, r, with m}: W in each stored dtype, odd widths, r = 1 and 64;
     * dora_scale d = {T, out, shift, beta}; dora_mag_grad d = {T, out} */
    {"dora_norm", VKFT_F32, {17, 33, 1, 1}, T},
    {"dora_norm", VKFT_F32, {96, 130, 16, 1}, T | S},
    {"dora_norm", VKFT_F16, {65, 70, 8, 0}, T},
    {"dora_norm", VKFT_BF16, {40, 257, 64, 1}, T},
    {"dora_scale", VKFT_F32, {1, 1, 0, 0}, T},
    {"dora_scale", VKFT_F32, {37, 130, 0, 0}, T | S},
    {"dora_scale", VKFT_F32, {23, 67, 1, 1}, T},
    {"dora_mag_grad", VKFT_F32, {1, 5, 0, 0}, T},
    {"dora_mag_grad", VKFT_F32, {70, 129, 0, 0}, T | S},
    {"dora_norm", VKFT_BF16, {2048, 2048, 16, 1}, B},
    {"dora_scale", VKFT_F32, {2048, 2048, 0, 0}, B},
    {"dora_mag_grad", VKFT_F32, {2048, 2048, 0, 0}, B},

    /* rmsnorm d = {R, C}; rmsnorm_bwd d = {R, C, with dw}. Length 1, odd C, C not a multiple of
     * the vector width or of the threads of a row, a head-sized Qwen3 q/k norm (many rows of
     * 128). */
    {"rmsnorm", VKFT_F32, {64, 256}, T | S},
    {"rmsnorm", VKFT_F32, {1, 1}, T},
    {"rmsnorm", VKFT_F32, {3, 7}, T},
    {"rmsnorm", VKFT_F32, {5, 1001}, T},
    {"rmsnorm", VKFT_F32, {33, 2048}, T},
    {"rmsnorm", VKFT_F32, {300, 128}, T},
    {"rmsnorm", VKFT_F16, {17, 130}, T},
    {"rmsnorm", VKFT_F16, {9, 512}, T},
    {"rmsnorm", VKFT_BF16, {17, 67}, T},
    {"rmsnorm", VKFT_BF16, {9, 1024}, T | S},
    {"rmsnorm_bwd", VKFT_F32, {64, 256, 1}, T | S},
    {"rmsnorm_bwd", VKFT_F32, {1, 1, 1}, T},
    {"rmsnorm_bwd", VKFT_F32, {3, 7, 1}, T},
    {"rmsnorm_bwd", VKFT_F32, {5, 1001, 1}, T},
    {"rmsnorm_bwd", VKFT_F32, {33, 2048, 1}, T},
    {"rmsnorm_bwd", VKFT_F32, {300, 128, 1}, T},
    {"rmsnorm_bwd", VKFT_F32, {70, 36, 1}, T},
    {"rmsnorm_bwd", VKFT_BF16, {17, 67, 0}, T},
    {"rmsnorm_bwd", VKFT_BF16, {9, 1024, 0}, T},
    {"rmsnorm_bwd", VKFT_F16, {11, 130, 1}, T},
    {"rmsnorm", VKFT_F32, {2048, 2048}, B},
    {"rmsnorm", VKFT_BF16, {2048, 2048}, B},
    {"rmsnorm", VKFT_F32, {32768, 128}, B},
    {"rmsnorm_bwd", VKFT_F32, {2048, 2048, 1}, B},
    {"rmsnorm_bwd", VKFT_BF16, {2048, 2048, 0}, B},
    {"rmsnorm_bwd", VKFT_F32, {32768, 128, 1}, B},

    /* elementwise d = {n, element offset of the views, variant}: add variant 1 is a += b;
     * convert variant 0 is f32 -> dtype, 1 is dtype -> f32. Offsets 0 (aligned, vector path), 1
     * and 3 (unaligned; 16-bit data starting in the high half of a word), odd lengths (ending
     * mid-word), n = 1. */
    {"add", VKFT_F32, {1000, 0, 0}, T | S},
    {"add", VKFT_F32, {1, 0, 0}, T},
    {"add", VKFT_F32, {1003, 1, 0}, T},
    {"add", VKFT_F32, {4099, 0, 1}, T},
    {"scale", VKFT_F32, {1000, 0}, T | S},
    {"scale", VKFT_F32, {77, 3}, T},
    {"copy", VKFT_F32, {1000, 0}, T | S},
    {"copy", VKFT_F32, {5, 1}, T},
    {"copy", VKFT_I32, {1001, 0}, T},
    {"copy", VKFT_BF16, {1001, 1}, T},
    {"copy", VKFT_F16, {1, 3}, T},
    {"convert", VKFT_F16, {4096, 0, 0}, T | S},
    {"convert", VKFT_F16, {4097, 1, 0}, T},
    {"convert", VKFT_F16, {1, 1, 0}, T},
    {"convert", VKFT_F16, {4097, 0, 1}, T},
    {"convert", VKFT_F16, {70000, 3, 1}, T},
    {"convert", VKFT_BF16, {4096, 0, 0}, T | S},
    {"convert", VKFT_BF16, {333, 3, 0}, T},
    {"convert", VKFT_BF16, {4099, 0, 1}, T},
    {"convert", VKFT_BF16, {2, 1, 1}, T},
    {"fill", VKFT_F32, {1000, 0}, T | S},
    {"fill", VKFT_F32, {3, 1}, T},
    {"fill", VKFT_I32, {1001, 2}, T},
    {"fill", VKFT_BF16, {1001, 1}, T},
    {"fill", VKFT_F16, {1, 0}, T},
    {"add", VKFT_F32, {16 << 20, 0, 0}, B},
    {"add", VKFT_F32, {16 << 20, 0, 1}, B},
    {"scale", VKFT_F32, {16 << 20, 0}, B},
    {"copy", VKFT_F32, {16 << 20, 0}, B},
    {"convert", VKFT_BF16, {16 << 20, 0, 0}, B},
    {"convert", VKFT_BF16, {16 << 20, 0, 1}, B},
    {"fill", VKFT_F32, {16 << 20, 0}, B},

    /* swiglu d = {R, F, outputs overwrite the inputs} */
    {"swiglu", VKFT_F32, {64, 256, 0}, T | S},
    {"swiglu", VKFT_F32, {1, 1, 0}, T},
    {"swiglu", VKFT_F32, {3, 333, 0}, T},
    {"swiglu", VKFT_F32, {7, 129, 1}, T},
    {"swiglu_bwd", VKFT_F32, {64, 256, 0}, T | S},
    {"swiglu_bwd", VKFT_F32, {1, 1, 0}, T},
    {"swiglu_bwd", VKFT_F32, {5, 343, 0}, T},
    {"swiglu_bwd", VKFT_F32, {9, 130, 1}, T},
    {"swiglu", VKFT_F32, {2048, 8192, 0}, B},
    {"swiglu_bwd", VKFT_F32, {2048, 8192, 0}, B},

    /* rope d = {T, H, D, flags: 1 llama3 scaling, 2 positions 8191..131071, 4 in place}. D = 2
     * and odd D/2 (no vector path), T = 1, head_dim 64 and 128 (vector path). */
    {"rope", VKFT_F32, {64, 4, 64, 0}, T | S},
    {"rope", VKFT_F32, {1, 1, 2, 0}, T},
    {"rope", VKFT_F32, {7, 3, 6, 0}, T},
    {"rope", VKFT_F32, {33, 5, 128, 1}, T},
    {"rope", VKFT_F32, {50, 2, 64, 1 | 2}, T | S},
    {"rope", VKFT_F32, {19, 3, 10, 2}, T},
    {"rope", VKFT_F32, {21, 4, 128, 2 | 4}, T},
    {"rope_bwd", VKFT_F32, {64, 4, 64, 0}, T | S},
    {"rope_bwd", VKFT_F32, {1, 1, 2, 0}, T},
    {"rope_bwd", VKFT_F32, {9, 3, 18, 1 | 2}, T},
    {"rope_bwd", VKFT_F32, {40, 8, 128, 1 | 2 | 4}, T},
    {"rope", VKFT_F32, {2048, 32, 64, 1}, B},
    {"rope_bwd", VKFT_F32, {2048, 32, 64, 1}, B},
    {"rope", VKFT_F32, {2048, 16, 128, 0}, B},

    /* embedding d = {T, C, V, one id out of range}: odd C (scalar path), T = 1, many tokens per
     * id. */
    {"embedding", VKFT_F32, {64, 256, 1000, 0}, T | S},
    {"embedding", VKFT_F32, {1, 1, 1, 0}, T},
    {"embedding", VKFT_F32, {17, 33, 50, 0}, T},
    {"embedding", VKFT_F16, {40, 128, 300, 0}, T},
    {"embedding", VKFT_F16, {9, 7, 20, 0}, T},
    {"embedding", VKFT_BF16, {40, 128, 300, 0}, T | S},
    {"embedding", VKFT_BF16, {13, 65, 99, 0}, T},
    {"embedding", VKFT_F32, {16, 64, 100, 1}, T},
    {"embedding_bwd", VKFT_F32, {64, 256, 1000, 0}, T | S},
    {"embedding_bwd", VKFT_F32, {1, 1, 1, 0}, T},
    {"embedding_bwd", VKFT_F32, {300, 33, 50, 0}, T},
    {"embedding_bwd", VKFT_F32, {513, 128, 64, 0}, T},
    {"embedding", VKFT_F32, {2048, 512, 32000, 0}, B},
    {"embedding", VKFT_BF16, {2048, 512, 32000, 0}, B},
    {"embedding_bwd", VKFT_F32, {2048, 512, 32000, 0}, B},

    /* adamw d = {n, step, gradient scaled by a device clip coefficient, weight decay} */
    {"adamw", VKFT_F32, {1000, 1, 0, 1}, T | S},
    {"adamw", VKFT_F32, {1, 1, 0, 0}, T},
    {"adamw", VKFT_F32, {1001, 7, 1, 1}, T | S},
    {"adamw", VKFT_F32, {4099, 1000, 0, 0}, T},
    {"adamw", VKFT_F32, {65, 20000, 1, 0}, T},
    {"adamw", VKFT_F32, {16 << 20, 10, 1, 1}, B},

    /* grad_norm d = {tensors, largest length, 0 no max_norm / 1 clipping / 2 max_norm above the
     * norm, views unaligned}: one tensor of one element, lengths straddling the 16384-element
     * slots, a LoRA-sized list (224 tensors) for the bench. */
    {"grad_norm", VKFT_F32, {5, 20000, 1, 0}, T | S},
    {"grad_norm", VKFT_F32, {1, 1, 0, 0}, T},
    {"grad_norm", VKFT_F32, {1, 16385, 2, 0}, T},
    {"grad_norm", VKFT_F32, {40, 3000, 1, 1}, T},
    {"grad_norm", VKFT_F32, {3, 100000, 2, 1}, T},
    {"grad_norm", VKFT_F32, {1, 16 << 20, 1, 0}, B},
    {"grad_norm", VKFT_F32, {224, 150000, 1, 0}, B},

    /* dropout d = {n, p in percent} */
    {"dropout", VKFT_F32, {1, 10}, T},
    {"dropout", VKFT_F32, {1001, 5}, T | S},
    {"dropout", VKFT_F32, {65537, 50}, T},
    {"dropout", VKFT_F32, {16777216, 10}, B},
    /* uniform_noise d = {n, magnitude in hundredths}: NEFTune's alpha / sqrt(L * d) */
    {"uniform_noise", VKFT_F32, {1, 50}, T},
    {"uniform_noise", VKFT_F32, {1001, 7}, T | S},
    {"uniform_noise", VKFT_F32, {262147, 125}, T},

    /* kv_store d = {T, W, R, views at offset 1}: T = 1, odd W (scalar path), unaligned views.
     * attention_decode d = {T, Hq, Hkv, D | keys << 16 (0: 150)}: one query of one key, odd
     * and small head dims (scalar loads), 64 and 128 (vector loads), grouped and plain heads,
     * keys within one block of 64; the bench rows are a decode step of 32 sequences at 1024
     * positions with Llama-3-8B's heads. */
    {"kv_store", VKFT_F32, {1, 1, 1, 0}, T},
    {"kv_store", VKFT_F32, {37, 64, 300, 0}, T | S},
    {"kv_store", VKFT_F32, {9, 33, 20, 0}, T},
    {"kv_store", VKFT_F32, {17, 128, 40, 1}, T},
    {"attention_decode", VKFT_F32, {1, 1, 1, 8 | 1 << 16}, T},
    {"attention_decode", VKFT_F32, {7, 4, 2, 5}, T},
    {"attention_decode", VKFT_F32, {12, 8, 4, 8}, T | S},
    {"attention_decode", VKFT_F32, {9, 2, 1, 64}, T},
    {"attention_decode", VKFT_F32, {5, 4, 4, 128}, T},
    {"attention_decode", VKFT_F32, {6, 3, 1, 7 | 40 << 16}, T},
    {"attention_decode", VKFT_F32, {32, 32, 8, 128 | 1024 << 16}, B},
    {"kv_store", VKFT_F32, {32, 1024, 32768, 0}, B},
};

const vkft_op_case *vkft_op_cases(int *count) {
  *count = (int)(sizeof rows / sizeof rows[0]);
  return rows;
}
