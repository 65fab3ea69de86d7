/* Shared by the tests that compare the Vulkan backend with the C reference: the device (chosen
 * as `vkft` chooses it, validation layers as VKFT_VALIDATE says) and both backends. */
#ifndef VKFT_TESTS_BACKENDS_H
#define VKFT_TESTS_BACKENDS_H

#include "vkft/error.h"
#include "vkft/ops.h"
#include "vkft/vk.h"

#include <stdio.h>

/* 1 with *dev, *vk and *ref open; else one line "TEST: why" on stderr and 0. */
static inline int open_backends(const char *test, vkft_device **dev, vkft_backend **vk,
                                vkft_backend **ref) {
  if (vkft_device_create(&(vkft_device_desc){.index = -1, .validate = -1}, dev) == VKFT_OK &&
      vkft_backend_vk_create(*dev, vk) == VKFT_OK && vkft_backend_ref_create(ref) == VKFT_OK)
    return 1;
  fprintf(stderr, "%s: %s\n", test, vkft_error_message());
  return 0;
}

#endif
