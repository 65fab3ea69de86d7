/* `vkft devices`: every physical device with the capabilities vkft cares about, for each usable
 * one the kernel variants vkft would use on it, and whether this build can train data-parallel
 * over MPI. */
#include "commands.h"

#include "vkft/dist.h"
#include "vkft/error.h"
#include "vkft/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *yes(int v) {
  return v ? "yes" : "no";
}

/* The kernel variants of device `index`: used (by the automatic choice), available (forcing it
 * with VKFT_MATMUL works) or absent (and why). */
static void print_kernels(int index) {
  vkft_device *dev;
  vkft_backend *be;
  vkft_device_desc desc = {.index = index, .validate = 0};
  if (vkft_device_create(&desc, &dev) != VKFT_OK) {
    printf("  kernels: cannot open the device: %s\n", vkft_error_message());
    return;
  }
  if (vkft_backend_vk_create(dev, &be) != VKFT_OK) {
    printf("  kernels: %s\n", vkft_error_message());
    vkft_device_destroy(dev);
    return;
  }
  int count;
  const vkft_kernel_variant *v = vkft_kernel_variants(be, &count);
  printf("  kernels (used: the automatic choice takes it for some shapes):\n");
  for (int i = 0; i < count; i++)
    printf("    %-20s %-9s %s%s\n", v[i].name,
           v[i].used        ? "used"
           : v[i].available ? "available"
                            : "absent",
           v[i].available ? v[i].detail : "", v[i].available ? "" : v[i].why);
  vkft_backend_destroy(be);
  vkft_device_destroy(dev);
}

int vkft_cmd_devices(int argc, char **argv) {
  cli_device_opts opts;
  if (cli_take_device_opts(&argc, argv, &opts) != VKFT_OK) return cli_fail();
  if (argc > 1) {
    fprintf(stderr, "vkft devices: unexpected argument \"%s\"\n", argv[1]);
    return 2;
  }
  vkft_device_info *infos;
  int count, chosen;
  if (vkft_vk_list_devices(&infos, &count, &chosen) != VKFT_OK) return cli_fail();
  const char *env = getenv("VKFT_DEVICE");
  int wanted = opts.device >= 0 ? opts.device : (env && *env ? atoi(env) : -1);
  if (wanted >= count) {
    free(infos);
    fprintf(stderr, "vkft: device %d does not exist (%d found)\n", wanted, count);
    return 1;
  }
  if (wanted >= 0) chosen = infos[wanted].usable ? wanted : -1;
  for (int i = 0; i < count; i++) {
    const vkft_device_info *d = &infos[i];
    printf("device %d: %s%s\n", i, d->name, i == chosen ? "   <- vkft uses this one" : "");
    printf("  vendor %s (0x%04x), type %s, driver %s\n", d->vendor, d->vendor_id, d->type,
           d->driver);
    printf("  Vulkan %u.%u.%u\n", (d->api_version >> 22) & 0x7f, (d->api_version >> 12) & 0x3ff,
           d->api_version & 0xfff);
    for (int h = 0; h < d->heap_count; h++)
      printf("  memory heap %d: %.2f GiB%s\n", h, d->heap_size[h] / (1024.0 * 1024 * 1024),
             d->heap_device_local[h] ? " device-local" : "");
    printf("  subgroup size %u (range %u..%u, size control %s, arithmetic %s, shuffle %s)\n",
           d->subgroup_size, d->subgroup_min, d->subgroup_max, yes(d->subgroup_size_control),
           yes(d->subgroup_arithmetic), yes(d->subgroup_shuffle));
    printf("  fp16 %s, bf16 %s, int8 %s, 16-bit storage %s, 8-bit storage %s\n", yes(d->fp16_arith),
           yes(d->bf16), yes(d->int8_arith), yes(d->storage16), yes(d->storage8));
    if (d->coopmat_m)
      printf("  cooperative matrix yes: fp16 -> fp32 shapes %s; vkft uses %ux%ux%u\n",
             d->coopmat_shapes, d->coopmat_m, d->coopmat_n, d->coopmat_k);
    else
      printf("  cooperative matrix no (%s)\n", d->coopmat_why);
    printf("  max shared memory %u KiB, max workgroup %u invocations, push constants %u B\n",
           d->max_shared_memory / 1024, d->max_workgroup_invocations, d->max_push_constants);
    printf("  maxStorageBufferRange %.0f MiB, maxMemoryAllocationSize %.0f MiB\n",
           d->max_storage_buffer_range / (1024.0 * 1024), d->max_allocation_size / (1024.0 * 1024));
    printf("  buffer device address %s, int64 %s, timestamps %s, memory budget %s\n",
           yes(d->buffer_device_address), yes(d->int64), yes(d->timestamps), yes(d->memory_budget));
    if (!d->usable)
      printf("  not usable by vkft: %s\n", d->unusable_why);
    else
      print_kernels(i);
  }
  free(infos);
  const char *mpi = vkft_dist_library();
  if (mpi)
    printf("MPI: %s (data-parallel: mpirun -np N vkft train ...)\n", mpi);
  else
    printf("MPI: not in this build (no data-parallel training)\n");
  if (chosen < 0) {
    fprintf(stderr, "vkft: no listed device can run vkft\n");
    return CLI_EXIT_DEVICE;
  }
  return 0;
}
