// The cooperative-matrix vocabulary of the kernels: CM x CK (A) times CK x CN (B) fp16 matrices
// into CM x CN fp32 accumulators, subgroup scope.
//   CM_A, CM_B, CM_C              the three matrix types
//   CM_FILL(x)                    an accumulator with every element x
//   CM_LOAD_A(m, arr, off, stride, layout)   m = the matrix whose element (i, j) is
//   CM_LOAD_B(m, arr, off, stride, layout)   arr[off + i * stride + j] (CM_ROW_MAJOR) or
//                                            arr[off + j * stride + i] (CM_COL_MAJOR)
//   CM_MULADD_TO(c, a, arr_a, b, arr_b)      c = a * b + c (arr_*: the arrays a and b came from)
//   CM_STORE_C(m, arr, off, stride, layout)  the reverse of a load
// Without COOPMAT_EMULATED these are VK_KHR_cooperative_matrix's (GL_KHR_cooperative_matrix).
// With it they are plain code with the same meaning, for devices without cooperative matrices
// (lavapipe), so that the kernels' staging, scaling and layout arguments are tested there: a
// loaded A or B matrix is where it lies in shared memory (read when multiplied, so loads and
// products must not be split by a change of that memory — true of every kernel here), an
// accumulator's element e (row-major) lives in invocation e % SG, slot e / SG (SG: the subgroup
// size, which the kernel requires). (A copy of each A and B in every invocation, the first
// design, compiled for 5-10 s per pipeline on lavapipe and computed NaN at large K unless its
// loops were unrolled: not kept.)
// Products are summed in fp32 in k order (hardware may sum in any order, and may truncate: the
// op table's precision model for these kernels covers both). The includer enables
// GL_KHR_shader_subgroup_basic, fp16 arithmetic and control-flow attributes, and declares CM,
// CN, CK and SG.
#ifndef COOPMAT_GLSL
#define COOPMAT_GLSL

#if defined(COOPMAT_EMULATED)
const uint CM_EMU_C = 64; // slots of an accumulator per invocation at most (16 x 16 / 4)
struct cm_frag {          // an A or B matrix: where it lies in shared memory
  uint off, stride;
  bool col;
};
struct cm_c {
  float v[CM_EMU_C];
};
#define CM_A cm_frag
#define CM_B cm_frag
#define CM_C cm_c
#define CM_ROW_MAJOR false
#define CM_COL_MAJOR true

cm_c CM_FILL(float x) {
  cm_c c;
  [[unroll]] for (uint i = 0; i < CM_EMU_C; i++) c.v[i] = x;
  return c;
}

#define CM_LOAD_A(m, arr, off, stride, colmajor) m = cm_frag(off, stride, colmajor)
#define CM_LOAD_B(m, arr, off, stride, colmajor) m = cm_frag(off, stride, colmajor)

// The accumulator's slots are indexed by constants once unrolled (SG, the required subgroup
// size, is a specialization constant): it lives in registers across the kernel's barriers.
#define CM_MULADD_TO(c, a, arr_a, b, arr_b)                                                      \
  [[unroll]] for (uint s_ = 0; s_ < CM * CN / SG; s_++) {                                        \
    const uint e_ = gl_SubgroupInvocationID + SG * s_, i_ = e_ / CN, j_ = e_ % CN;               \
    const uint ai_ = a.off + (a.col ? i_ : i_ * a.stride), ak_ = a.col ? a.stride : 1;           \
    const uint bj_ = b.off + (b.col ? j_ * b.stride : j_), bk_ = b.col ? 1 : b.stride;           \
    float sum_ = c.v[s_];                                                                        \
    [[dont_unroll]] for (uint k_ = 0; k_ < CK; k_ += 4) {                                        \
      const float x0 = float(arr_a[ai_ + k_ * ak_]), y0 = float(arr_b[bj_ + k_ * bk_]);          \
      const float x1 = float(arr_a[ai_ + (k_ + 1) * ak_]), y1 = float(arr_b[bj_ + (k_ + 1) * bk_]); \
      const float x2 = float(arr_a[ai_ + (k_ + 2) * ak_]), y2 = float(arr_b[bj_ + (k_ + 2) * bk_]); \
      const float x3 = float(arr_a[ai_ + (k_ + 3) * ak_]), y3 = float(arr_b[bj_ + (k_ + 3) * bk_]); \
      sum_ += x0 * y0;                                                                           \
      sum_ += x1 * y1;                                                                           \
      sum_ += x2 * y2;                                                                           \
      sum_ += x3 * y3;                                                                           \
    }                                                                                            \
    c.v[s_] = sum_;                                                                              \
  }

#define CM_STORE_C(m, arr, off, stride, colmajor)                                                \
  [[unroll]] for (uint s_ = 0; s_ < CM * CN / SG; s_++) {                                        \
    const uint e_ = gl_SubgroupInvocationID + SG * s_, i_ = e_ / CN, j_ = e_ % CN;               \
    arr[(off) + ((colmajor) ? j_ * (stride) + i_ : i_ * (stride) + j_)] = m.v[s_];              \
  }

#else
#define CM_A coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA>
#define CM_B coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB>
#define CM_C coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>
#define CM_ROW_MAJOR gl_CooperativeMatrixLayoutRowMajor
#define CM_COL_MAJOR gl_CooperativeMatrixLayoutColumnMajor
#define CM_FILL(x) CM_C(x)
#define CM_LOAD_A(m, arr, off, stride, layout) coopMatLoad(m, arr, off, stride, layout)
#define CM_LOAD_B(m, arr, off, stride, layout) coopMatLoad(m, arr, off, stride, layout)
#define CM_MULADD_TO(c, a, arr_a, b, arr_b) c = coopMatMulAdd(a, b, c)
#define CM_STORE_C(m, arr, off, stride, layout) coopMatStore(m, arr, off, stride, layout)
#endif

// 2^(14 - e) for max in [2^(e-1), 2^e): the largest |value| of a row (or tile) lands in
// [2^13, 2^14), far from fp16's overflow (65504), and fp16's flush/subnormal threshold 2^-14
// lies 2^-27 below it. 0, inf and nan rows keep scale 1.
float scale_of(uint max_bits, out float inv) {
  float m = uintBitsToFloat(max_bits);
  inv = 1.0;
  if (m == 0.0 || isinf(m) || isnan(m)) return 1.0;
  int e;
  frexp(m, e);
  int s = clamp(14 - e, -120, 120);
  inv = ldexp(1.0, -s);
  return ldexp(1.0, s);
}

#endif
