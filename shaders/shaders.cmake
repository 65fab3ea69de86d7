# Every shader variant vkft embeds: vkft_shader(NAME SOURCE DEFINES...).
foreach(orient NT NN TN)
  string(TOLOWER ${orient} o)
  foreach(dtype F32 F16 BF16)
    string(TOLOWER ${dtype} d)
    if(orient STREQUAL "TN" AND NOT dtype STREQUAL "F32")
      continue() # weight gradients are fp32 x fp32
    endif()
    vkft_shader(matmul_${o}_${d} matmul.comp MATMUL_${orient} B_${dtype})
  endforeach()
endforeach()

# Attention: the forward and the two backward passes (head dim, vector loads and workgroup
# size are specialization constants).
vkft_shader(attention_fwd attention.comp ATTN_FWD)
vkft_shader(attention_bwd_dq attention.comp ATTN_BWD_DQ)
vkft_shader(attention_bwd_dkv attention.comp ATTN_BWD_DKV)
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
