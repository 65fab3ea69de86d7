# Every shader variant vkft embeds: vkft_shader(NAME SOURCE DEFINES...).
# matmul: every orientation x weight type, as the CPU-driver kernel (matmul_*), the shared-memory
# GPU kernel (matmul_tiled_*) and, when glslang can compile it, the cooperative-matrix kernel
# (matmul_coopmat_*; src/ops/matmul_kernels.c chooses among them per device and shape).
vkft_glslang_can(VKFT_COOPMAT_SHADERS MATMUL_COOPMAT MATMUL_NT W_F16)
if(NOT VKFT_COOPMAT_SHADERS)
  message(STATUS "vkft: ${GLSLANG} (with ${SPIRV_VAL}) cannot compile and validate "
                 "GL_KHR_cooperative_matrix: the cooperative-matrix kernels are left out "
                 "(scripts/setup-shader-tools.sh builds the tools that can)")
endif()
foreach(orient NT NN TN)
  string(TOLOWER ${orient} o)
  foreach(dtype F32 F16 BF16 NF4 FP4 Q8_0 Q4_0 Q5_0 Q4_K Q5_K Q6_K)
    string(TOLOWER ${dtype} d)
    if(orient STREQUAL "TN" AND NOT dtype STREQUAL "F32")
      continue() # weight gradients are fp32 x fp32 (quantized weights are frozen)
    endif()
    vkft_shader(matmul_${o}_${d} matmul.comp MATMUL_${orient} W_${dtype})
    vkft_shader(matmul_tiled_${o}_${d} matmul.comp MATMUL_TILED MATMUL_${orient} W_${dtype})
    if(VKFT_COOPMAT_SHADERS)
      vkft_shader(matmul_coopmat_${o}_${d} matmul.comp MATMUL_COOPMAT MATMUL_${orient} W_${dtype})
    endif()
    # the same kernel with cooperative matrices emulated (shaders/coopmat.glsl): tests it on
    # devices without them; any glslang compiles it
    vkft_shader(matmul_coopemu_${o}_${d} matmul.comp MATMUL_COOPMAT COOPMAT_EMULATED
                MATMUL_${orient} W_${dtype})
  endforeach()
endforeach()

# Attention: the forward and the two backward passes for CPU drivers (head dim, vector loads and
# workgroup size are specialization constants)
vkft_shader(attention_fwd attention.comp ATTN_FWD)
vkft_shader(attention_bwd_dq attention.comp ATTN_BWD_DQ)
vkft_shader(attention_bwd_dkv attention.comp ATTN_BWD_DKV)
# ... and the GPU kernels staging both sides through shared memory (src/ops/attention.c chooses)
vkft_shader(attention_tiled_fwd attention_tiled.comp ATTN_FWD)
vkft_shader(attention_tiled_bwd_dq attention_tiled.comp ATTN_BWD_DQ)
vkft_shader(attention_tiled_bwd_dkv attention_tiled.comp ATTN_BWD_DKV)
# ... with both products of a step on cooperative matrices (emulated: any glslang, for tests)
foreach(pass FWD BWD_DQ BWD_DKV)
  string(TOLOWER ${pass} ps)
  if(VKFT_COOPMAT_SHADERS)
    vkft_shader(attention_coopmat_${ps} attention_tiled.comp ATTN_${pass} ATTN_COOPMAT)
  endif()
  vkft_shader(attention_coopemu_${ps} attention_tiled.comp ATTN_${pass} ATTN_COOPMAT
              COOPMAT_EMULATED)
endforeach()
# cross-entropy of the LM head (shaders/cross_entropy.comp; the logits come from matmul)
foreach(stage STATS GRAD LOSS)
  string(TOLOWER ${stage} s)
  vkft_shader(cross_entropy_${s} cross_entropy.comp CE_${stage})
endforeach()

# LoRA's skinny products (shaders/lora.comp); the others are plain matmuls
vkft_shader(lora_skinny_nt lora.comp SKINNY_NT)
vkft_shader(lora_skinny_nn lora.comp SKINNY_NN)
vkft_shader(lora_skinny_tn lora.comp SKINNY_TN)
vkft_shader(lora_skinny_tn_tc lora.comp SKINNY_TN TRANSPOSE_C)
# ---- ops-core families: rmsnorm, rope, swiglu, embedding, elementwise, adamw, grad_norm
foreach(op ADD SCALE COPY32 FILL32 COPY16 FILL16)
  string(TOLOWER ${op} o)
  vkft_shader(ew_${o} elementwise.comp EW_${op})
endforeach()
vkft_shader(ew_widen_f16 elementwise.comp EW_WIDEN W_F16)
vkft_shader(ew_widen_bf16 elementwise.comp EW_WIDEN W_BF16)
vkft_shader(ew_narrow_f16 elementwise.comp EW_NARROW OUT_F16)
vkft_shader(ew_narrow_bf16 elementwise.comp EW_NARROW OUT_BF16)
foreach(dtype F32 F16 BF16)
  string(TOLOWER ${dtype} d)
  vkft_shader(rmsnorm_${d} rmsnorm.comp RMSNORM_FWD W_${dtype})
  vkft_shader(rmsnorm_bwd_dx_${d} rmsnorm.comp RMSNORM_BWD_DX W_${dtype})
endforeach()
vkft_shader(rmsnorm_bwd_dw rmsnorm.comp RMSNORM_BWD_DW)
vkft_shader(swiglu swiglu.comp SWIGLU_FWD)
vkft_shader(swiglu_bwd swiglu.comp SWIGLU_BWD)
vkft_shader(rope rope.comp)
foreach(dtype F32 F16 BF16)
  string(TOLOWER ${dtype} d)
  vkft_shader(embedding_${d} embedding.comp EMBEDDING_FWD W_${dtype})
endforeach()
vkft_shader(embedding_bwd embedding.comp EMBEDDING_BWD)
vkft_shader(adamw adamw.comp)
vkft_shader(grad_norm_partial grad_norm.comp GN_PARTIAL)
vkft_shader(grad_norm_final grad_norm.comp GN_FINAL)
vkft_shader(dropout dropout.comp)
vkft_shader(uniform_noise dropout.comp NOISE)
# the KV cache of batched generation: storing new rows, attention of new queries over it
vkft_shader(kv_store kv_cache.comp KV_STORE)
vkft_shader(attention_decode kv_cache.comp ATTN_DECODE)
# preference objectives (shaders/pref.comp): sequence log-probs and the tokens' gradient weights
vkft_shader(pref_loss pref.comp)
# DoRA (shaders/dora.comp): the adapted weight's row norms (per weight type), the per-row scale,
# the magnitude's gradient
foreach(dtype F32 F16 BF16)
  string(TOLOWER ${dtype} d)
  vkft_shader(dora_norm_${d} dora.comp DORA_NORM W_${dtype})
endforeach()
vkft_shader(dora_scale dora.comp DORA_SCALE)
vkft_shader(dora_mag_grad dora.comp DORA_MAG_GRAD)
