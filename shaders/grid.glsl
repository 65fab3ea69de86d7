// Large 1D problems are dispatched as a 2D grid of workgroups (maxComputeWorkGroupCount is
// 65535 per dimension on many devices; src/ops/core_util.h core_grid() lays it out): this is
// the workgroup's index in row-major order.
#ifndef GRID_GLSL
#define GRID_GLSL
uint group_linear() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
#endif
