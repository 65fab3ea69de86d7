/* The self-check: the op table's self-test rows on one Vulkan backend, every kernel variant the
 * device would use checked on its family's rows, a failing variant disabled for the run (a buggy
 * driver costs speed, never correctness), then the other rows with what remains. */
#include "case.h"

#include "vkft/kernels.h"

#include <string.h>

static int wanted(const vkft_op_case *c, unsigned rows, const char *filter, const char *family) {
  if (!(c->flags & rows) || (filter && !strstr(c->op, filter))) return 0;
  size_t n = family ? strlen(family) : 0;
  return !family || (!strncmp(c->op, family, n) && (c->op[n] == '_' || !c->op[n]));
}

/* Runs the rows (of `family`, or those of no variant family) and reports them; returns the
 * number that failed or could not run (could_not_run counts the latter). */
static int run_rows(vkft_backend *be, unsigned rows, const char *filter, const char *family,
                    const char *variant, vkft_selftest_fn fn, void *user, int *could_not_run) {
  int count, variants, failed = 0;
  const vkft_op_case *cases = vkft_op_cases(&count);
  const vkft_kernel_variant *v = vkft_kernel_variants(be, &variants);
  for (int i = 0; i < count; i++) {
    const vkft_op_case *c = &cases[i];
    if (!wanted(c, rows, filter, family)) continue;
    int of_family = 0; /* without a family: skip the rows some variant's family owns */
    for (int k = 0; !family && k < variants; k++) of_family |= wanted(c, rows, NULL, v[k].family);
    if (of_family) continue;
    vkft_op_result r;
    vkft_selftest_event e = {.row = c, .variant = variant, .result = &r};
    if (vkft_op_case_run(be, c, 0, &r) != VKFT_OK) {
      e.result = NULL, e.message = vkft_error_message();
      (*could_not_run)++;
      failed++;
    } else {
      failed += !r.ok || !r.deterministic;
    }
    if (fn) fn(&e, user);
  }
  return failed;
}

int vkft_selftest(vkft_backend *be, unsigned rows, const char *filter, vkft_selftest_fn fn,
                  void *user, int *failed) {
  *failed = 0;
  int count, could_not_run = 0;
  const vkft_kernel_variant *v = vkft_kernel_variants(be, &count);
  int checked[32] = {0};
  if (count > (int)(sizeof checked / sizeof checked[0]))
    return vkft_error("selftest: %d kernel variants", count);
  /* until no unchecked variant is in use: a disabled one hands its shapes to one not yet seen */
  for (int progress = 1; progress;) {
    progress = 0;
    for (int k = 0; k < count; k++) {
      if (!v[k].used || v[k].disabled || checked[k]) continue;
      checked[k] = progress = 1;
      if (vkft_kernel_force(be, k) != VKFT_OK) return VKFT_ERR;
      int lost = 0;
      int bad = run_rows(be, rows, filter, v[k].family, v[k].name, fn, user, &lost);
      vkft_kernel_force(be, -1);
      if (bad && vkft_kernel_disable(be, k) == VKFT_OK) {
        vkft_selftest_event e = {.variant = v[k].name, .disabled = 1};
        if (fn) fn(&e, user);
      } else {
        *failed += bad; /* the last fallback failed: nothing is left to use */
        could_not_run += lost;
      }
    }
  }
  *failed += run_rows(be, rows, filter, NULL, NULL, fn, user, &could_not_run);
  if (could_not_run)
    return vkft_error("selftest: %d op case%s could not run", could_not_run,
                      could_not_run == 1 ? "" : "s");
  return VKFT_OK;
}
