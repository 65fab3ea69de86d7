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
