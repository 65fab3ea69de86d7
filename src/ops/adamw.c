/* adamw on both backends (shaders/adamw.comp, src/ref/adamw.c). */
#include "core_util.h"

#include <math.h>

/* torch computes these in Python doubles and hands them to fp32 kernels as scalars: the same
 * single rounding to fp32 here. */
vkft_adamw_step vkft_adamw_step_for(const vkft_adamw_hparams *hp) {
  double step = (double)(hp->step > 0 ? hp->step : 1);
  double bias_correction1 = 1 - pow(hp->beta1, step);
  double bias_correction2 = 1 - pow(hp->beta2, step);
  vkft_adamw_step k = {
      .decay = (float)(1 - hp->lr * hp->weight_decay),
      .one_minus_beta1 = (float)(1 - hp->beta1),
      .beta2 = (float)hp->beta2,
      .one_minus_beta2 = (float)(1 - hp->beta2),
      .step_size = (float)(hp->lr / bias_correction1),
      .bias_correction2_sqrt = (float)sqrt(bias_correction2),
      .eps = (float)hp->eps,
  };
  return k;
}

int vkft_adamw(vkft_backend *be, vkft_tensor *p, const vkft_tensor *g, vkft_tensor *m,
               vkft_tensor *v, const vkft_tensor *grad_scale, const vkft_adamw_hparams *hp,
               int64_t n) {
  if (n < 0) return vkft_error("adamw: negative length");
  if (hp->step < 1) return vkft_error("adamw: step %lld (steps count from 1)", (long long)hp->step);
  if (!(hp->beta1 >= 0 && hp->beta1 < 1 && hp->beta2 >= 0 && hp->beta2 < 1 && hp->eps > 0))
    return vkft_error("adamw: betas must be in [0, 1) and eps positive");
  if (op_check("adamw", "param", p, n, DT(VKFT_F32)) ||
      op_check("adamw", "grad", g, n, DT(VKFT_F32)) ||
      op_check("adamw", "exp_avg", m, n, DT(VKFT_F32)) ||
      op_check("adamw", "exp_avg_sq", v, n, DT(VKFT_F32)) ||
      (grad_scale && op_check("adamw", "grad_scale", grad_scale, 1, DT(VKFT_F32))))
    return VKFT_ERR;
  vkft_adamw_step k = vkft_adamw_step_for(hp);
  if (!be->dev) {
    float scale = grad_scale ? *(const float *)grad_scale->host : 1.0f;
    vkft_ref_adamw_f32(p->host, g->host, m->host, v->host, n, scale, &k);
    return VKFT_OK;
  }
  if (n == 0) return VKFT_OK;
  struct {
    uint64_t p, g, m, v, grad_scale;
    uint64_t n;
    float decay, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps;
    uint32_t vec;
  } push = {p->buf.addr,
            g->buf.addr,
            m->buf.addr,
            v->buf.addr,
            grad_scale ? grad_scale->buf.addr : 0,
            (uint64_t)n,
            k.decay,
            k.one_minus_beta1,
            k.beta2,
            k.one_minus_beta2,
            k.step_size,
            k.bias_correction2_sqrt,
            k.eps,
            (uint32_t)(core_aligned(p, 16) && core_aligned(g, 16) && core_aligned(m, 16) &&
                       core_aligned(v, 16))};
  uint64_t bytes = (uint64_t)n * 4;
  vkft_dispatch_desc d = {
      .shader = "adamw",
      .push = &push,
      .push_size = sizeof push,
      .reads = {{p->buf.addr, bytes},
                {g->buf.addr, bytes},
                {m->buf.addr, bytes},
                {v->buf.addr, bytes}},
      .read_count = 4,
      .writes = {{p->buf.addr, bytes}, {m->buf.addr, bytes}, {v->buf.addr, bytes}},
      .write_count = 3};
  if (grad_scale) d.reads[d.read_count++] = (vkft_range){grad_scale->buf.addr, 4};
  if (core_grid(be, "adamw", ((uint64_t)n + 255) / 256, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}
