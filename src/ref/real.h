/* Picks the scalar type a reference source is compiled for: each reference source is built twice,
 * with VKFT_REF_DOUBLE=0 (float) and =1 (double). */
#ifndef VKFT_REF_REAL_H
#define VKFT_REF_REAL_H

#include "vkft/ref.h"

#if VKFT_REF_DOUBLE
typedef double real;
#define REF(name) vkft_ref_##name##_f64
#else
typedef float real;
#define REF(name) vkft_ref_##name##_f32
#endif

#endif
