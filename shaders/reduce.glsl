// Workgroup reductions in a fixed tree through shared memory: the same additions in the same
// order every run, whatever the subgroup size, so results are bit-identical (no float atomics).
// REDUCE_SIZE is the workgroup size (64 unless defined before the include). Every invocation
// of the workgroup must call them (they contain barriers).
#ifndef REDUCE_GLSL
#define REDUCE_GLSL
#ifndef REDUCE_SIZE
#define REDUCE_SIZE 64
#endif

shared float reduce_buf[REDUCE_SIZE];

// The sum (or max) of v over each aligned group of `width` invocations (a power of two
// dividing REDUCE_SIZE): element l takes l + s for s = width/2, width/4, ..., 1. Every
// invocation of a group receives its group's result.
float reduce_groups(float v, uint width, bool take_max) {
  uint l = gl_LocalInvocationID.x;
  reduce_buf[l] = v;
  barrier();
  for (uint s = width / 2u; s > 0u; s >>= 1) {
    if (l % width < s) {
      float a = reduce_buf[l], b = reduce_buf[l + s];
      reduce_buf[l] = take_max ? max(a, b) : a + b;
    }
    barrier();
  }
  float r = reduce_buf[l - l % width];
  barrier(); // the buffer may be reused at once
  return r;
}

float reduce_sum(float v) { return reduce_groups(v, REDUCE_SIZE, false); }
float reduce_max(float v) { return reduce_groups(v, REDUCE_SIZE, true); }
#endif
