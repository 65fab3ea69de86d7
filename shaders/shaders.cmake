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
