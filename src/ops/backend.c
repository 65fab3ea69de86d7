/* The two backends' shared plumbing: tensor storage, transfers, and stream begin/end. */
#include "backend.h"

#include "vkft/error.h"
#include "vkft/ggml_quants.h"
#include "vkft/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vkft_backend_ref_create(vkft_backend **out) {
  *out = calloc(1, sizeof **out);
  return *out ? VKFT_OK : vkft_error_nomem();
}

/* An override from the environment when set within [lo, hi] (and a multiple of `step`), else 0. */
static uint32_t env_within(const char *name, int lo, int hi, int step) {
  const char *env = getenv(name);
  int x = env ? atoi(env) : 0;
  return x >= lo && x <= hi && x % step == 0 ? (uint32_t)x : 0;
}

/* The tuning overrides of the table in backend.h. */
static vkft_tuning tuning_from_env(void) {
  vkft_tuning t = {.matmul_rm = env_within("VKFT_MATMUL_RM", 4, 64, 4),
                   .matmul_rn = env_within("VKFT_MATMUL_RN", 4, 64, 4),
                   .matmul_wn = env_within("VKFT_MATMUL_WN", 4, 64, 4),
                   .attn_wg = env_within("VKFT_ATTN_WG", 1, 256, 1),
                   .attn_r = env_within("VKFT_ATTN_R", 1, 16, 1),
                   .attn_c = env_within("VKFT_ATTN_C", 1, 16, 1),
                   .lora_generic = env_within("VKFT_LORA_MATMUL", 1, 1, 1) != 0};
  if (!t.matmul_rm || !t.matmul_rn) t.matmul_rm = t.matmul_rn = 0; /* both or neither */
  if (t.matmul_wn & (t.matmul_wn - 1)) t.matmul_wn = 0;            /* 4, 8, 16, 32, 64 */
  const char *kernel = getenv("VKFT_MATMUL");
  if (kernel) snprintf(t.matmul_kernel, sizeof t.matmul_kernel, "%s", kernel);
  const char *attention = getenv("VKFT_ATTENTION");
  if (attention) snprintf(t.attention_kernel, sizeof t.attention_kernel, "%s", attention);
  const char *choice = getenv("VKFT_MATMUL_CHOICE");
  t.matmul_choice = !choice ? 0 : !strcmp(choice, "gpu") ? 1 : !strcmp(choice, "cpu") ? 2 : 0;
  const char *fault = getenv("VKFT_KERNEL_FAULT");
  if (fault) snprintf(t.kernel_fault, sizeof t.kernel_fault, "%s", fault);
  return t;
}

int vkft_backend_vk_create(vkft_device *dev, vkft_backend **out) {
  *out = calloc(1, sizeof **out);
  if (!*out) return vkft_error_nomem();
  (*out)->dev = dev;
  (*out)->tuning = tuning_from_env();
  if (matmul_kernels_init(*out) != VKFT_OK || attention_kernels_init(*out) != VKFT_OK) {
    free(*out);
    *out = NULL;
    return VKFT_ERR;
  }
  return VKFT_OK;
}

const vkft_kernel_variant *vkft_kernel_variants(const vkft_backend *be, int *count) {
  *count = be->variant_count;
  return be->variants;
}

int vkft_kernel_force(vkft_backend *be, int index) {
  if (index >= be->variant_count) return vkft_error("kernel variant %d does not exist", index);
  if (index >= 0 && !be->variants[index].available)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED, "kernel %s is not available: %s",
                           be->variants[index].name, be->variants[index].why);
  if (index < 0) {
    be->forced_matmul = be->env_matmul;
    be->forced_attention = be->env_attention;
  } else if (index < MATMUL_KERNEL_COUNT) {
    be->forced_matmul = index;
  } else {
    be->forced_attention = index;
  }
  return VKFT_OK;
}

int vkft_kernel_disable(vkft_backend *be, int index) {
  if (index < 0 || index >= be->variant_count)
    return vkft_error("kernel variant %d does not exist", index);
  if (index == MATMUL_REGISTER || index == ATTENTION_FLAT)
    return vkft_error("%s is the last fallback and cannot be disabled", be->variants[index].name);
  be->variants[index].disabled = 1;
  matmul_kernels_refresh(be);
  attention_kernels_refresh(be);
  return VKFT_OK;
}

void vkft_backend_destroy(vkft_backend *be) {
  free(be);
}

const char *vkft_backend_name(const vkft_backend *be) {
  return be->dev ? "vulkan" : "reference";
}

vkft_device *vkft_backend_device(const vkft_backend *be) {
  return be->dev;
}

uint64_t vkft_tensor_bytes(const vkft_tensor *t) {
  if (!vkft_dtype_is_quantized(t->dtype)) return (uint64_t)t->n * vkft_dtype_size(t->dtype);
  return vkft_quant_tensor_bytes(t->dtype, t->n, t->quant.blocksize, t->quant.nested);
}

static int alloc_storage(vkft_backend *be, vkft_tensor *t) {
  size_t bytes = (size_t)vkft_tensor_bytes(t);
  if (!be->dev) {
    t->host = calloc(bytes ? bytes : 1, 1);
    return t->host
               ? VKFT_OK
               : vkft_error_with(VKFT_ERR_NOMEM, "out of host memory for a %zu-byte tensor", bytes);
  }
  return vkft_buffer_alloc(be->dev, bytes, &t->buf);
}

int vkft_tensor_alloc(vkft_backend *be, vkft_dtype dtype, int64_t n, vkft_tensor *t) {
  memset(t, 0, sizeof *t);
  if (vkft_dtype_is_quantized(dtype))
    return vkft_error_with(VKFT_ERR_INTERNAL, "tensor: a %s tensor needs its layout",
                           vkft_dtype_name(dtype));
  t->dtype = dtype;
  t->n = n;
  t->owns = 1;
  return alloc_storage(be, t);
}

int vkft_tensor_alloc_quant(vkft_backend *be, vkft_dtype dtype, int64_t n, const vkft_quant *q,
                            vkft_tensor *t) {
  memset(t, 0, sizeof *t);
  if (!vkft_quant_tensor_valid(dtype, n, q->blocksize))
    return vkft_error_with(VKFT_ERR_INTERNAL,
                           "tensor: %s with block size %d is no quantized layout",
                           vkft_dtype_name(dtype), q->blocksize);
  t->dtype = dtype;
  t->n = n;
  t->owns = 1;
  t->quant = *q;
  return alloc_storage(be, t);
}

void vkft_tensor_free(vkft_backend *be, vkft_tensor *t) {
  if (t->owns) {
    if (be->dev)
      vkft_buffer_free(be->dev, &t->buf);
    else
      free(t->host);
  }
  memset(t, 0, sizeof *t);
}

vkft_tensor vkft_tensor_view(const vkft_tensor *t, int64_t offset, int64_t n) {
  vkft_tensor v = *t;
  size_t bytes = (size_t)offset * vkft_dtype_size(t->dtype);
  if (vkft_dtype_is_quantized(t->dtype)) {
    /* ggml blocks are cut between whole blocks (rows of a weight: the LM head's vocabulary
     * chunks); bitsandbytes' scales follow all the codes, so a view of those is the whole */
    int64_t block = t->quant.blocksize;
    if (vkft_ggml_type_of_dtype(t->dtype) < 0 || offset % block || n % block) {
      v.owns = 0;
      return v;
    }
    bytes = (size_t)vkft_quant_tensor_bytes(t->dtype, offset, block, 0);
  }
  v.n = n;
  v.owns = 0;
  if (v.host) v.host = (char *)v.host + bytes;
  if (v.buf.addr) {
    v.buf.addr += bytes;
    v.buf.offset += bytes;
    v.buf.size = vkft_dtype_is_quantized(t->dtype)
                     ? vkft_quant_tensor_bytes(t->dtype, n, t->quant.blocksize, 0)
                     : (uint64_t)n * vkft_dtype_size(t->dtype);
    if (v.buf.mapped) v.buf.mapped = (char *)v.buf.mapped + bytes;
  }
  return v;
}

int vkft_tensor_write(vkft_backend *be, const vkft_tensor *t, const void *src) {
  size_t bytes = (size_t)vkft_tensor_bytes(t);
  if (!be->dev) {
    memcpy(t->host, src, bytes);
    return VKFT_OK;
  }
  return vkft_buffer_upload(be->dev, &t->buf, 0, src, bytes);
}

int vkft_tensor_read(vkft_backend *be, const vkft_tensor *t, void *dst) {
  size_t bytes = (size_t)vkft_tensor_bytes(t);
  if (!be->dev) {
    memcpy(dst, t->host, bytes);
    return VKFT_OK;
  }
  return vkft_buffer_download(be->dev, &t->buf, 0, dst, bytes);
}

int vkft_tensor_write_range(vkft_backend *be, const vkft_tensor *t, int64_t offset, int64_t n,
                            const void *src) {
  size_t es = vkft_dtype_size(t->dtype);
  if (!es) return vkft_error_with(VKFT_ERR_INTERNAL, "tensor write: a quantized range");
  if (offset < 0 || n < 0 || offset + n > t->n)
    return vkft_error("tensor write of [%lld, %lld) outside %lld elements", (long long)offset,
                      (long long)(offset + n), (long long)t->n);
  if (!be->dev) {
    memcpy((char *)t->host + (size_t)offset * es, src, (size_t)n * es);
    return VKFT_OK;
  }
  return vkft_buffer_upload(be->dev, &t->buf, (uint64_t)offset * es, src, (uint64_t)n * es);
}

int vkft_tensor_read_range(vkft_backend *be, const vkft_tensor *t, int64_t offset, int64_t n,
                           void *dst) {
  size_t es = vkft_dtype_size(t->dtype);
  if (!es) return vkft_error_with(VKFT_ERR_INTERNAL, "tensor read: a quantized range");
  if (offset < 0 || n < 0 || offset + n > t->n)
    return vkft_error("tensor read of [%lld, %lld) outside %lld elements", (long long)offset,
                      (long long)(offset + n), (long long)t->n);
  if (!be->dev) {
    memcpy(dst, (const char *)t->host + (size_t)offset * es, (size_t)n * es);
    return VKFT_OK;
  }
  return vkft_buffer_download(be->dev, &t->buf, (uint64_t)offset * es, dst, (uint64_t)n * es);
}

int vkft_tensor_read_f32(vkft_backend *be, const vkft_tensor *t, float *dst) {
  if (t->dtype == VKFT_F32) return vkft_tensor_read(be, t, dst);
  if (t->dtype == VKFT_I32) return vkft_error("tensor read: an i32 tensor is not fp32 data");
  if (vkft_dtype_is_quantized(t->dtype)) { /* through the layout's bytes, dequantized */
    void *bytes = malloc((size_t)vkft_tensor_bytes(t));
    if (!bytes) return vkft_error_nomem();
    vkft_tensor host = *t;
    int status = vkft_tensor_read(be, t, bytes);
    host.host = bytes;
    float *values = status == VKFT_OK ? ref_as_f32(&host, t->n) : NULL;
    if (values) memcpy(dst, values, (size_t)t->n * sizeof *dst);
    free(values);
    free(bytes);
    return status == VKFT_OK && values ? VKFT_OK : VKFT_ERR;
  }
  /* the 16-bit values fit in the first half of dst; widen from the back so nothing is
   * overwritten before it is read */
  if (vkft_tensor_read(be, t, dst) != VKFT_OK) return VKFT_ERR;
  for (int64_t i = t->n - 1; i >= 0; i--) {
    uint16_t h;
    memcpy(&h, (const char *)dst + 2 * i, sizeof h);
    dst[i] = t->dtype == VKFT_F16 ? vkft_f16_to_f32(h) : vkft_bf16_to_f32(h);
  }
  return VKFT_OK;
}

int vkft_begin(vkft_backend *be) {
  /* a stream left open by a failed op (its error was returned then) is discarded */
  be->recording = 1;
  return be->dev ? vkft_stream_begin(be->dev) : VKFT_OK;
}

int vkft_end(vkft_backend *be) {
  if (!be->recording) return vkft_error("internal: vkft_end without vkft_begin");
  be->recording = 0;
  return be->dev ? vkft_stream_submit(be->dev) : VKFT_OK;
}

int op_check(const char *op, const char *arg, const vkft_tensor *t, int64_t need,
             unsigned dtype_mask) {
  if (!(dtype_mask & DT(t->dtype)))
    return vkft_error("%s: %s has unsupported dtype %s", op, arg, vkft_dtype_name(t->dtype));
  if (t->n < need)
    return vkft_error("%s: %s holds %lld elements, the shape needs %lld", op, arg, (long long)t->n,
                      (long long)need);
  return VKFT_OK;
}

float *ref_as_f32(const vkft_tensor *t, int64_t n) {
  float *out = malloc((size_t)(n ? n : 1) * sizeof *out);
  if (!out) {
    vkft_error_nomem();
    return NULL;
  }
  if (vkft_dtype_is_quantized(t->dtype))
    vkft_quant_tensor_dequantize(t->dtype, t->host, n, t->quant.blocksize, t->quant.nested,
                                 t->quant.offset, out);
  else
    vkft_convert_to_f32(t->dtype, t->host, out, (size_t)n);
  return out;
}
