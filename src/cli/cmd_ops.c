/* `vkft selftest` and `vkft bench ops`: the op table run on the chosen device against the C
 * reference, as pass/fail lines or as benchmark figures. */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/opcases.h"

#include <stdio.h>
#include <string.h>

typedef struct table_output {
  int json, timed;
  int rows, rows_failed, could_not_run, disabled;
} table_output;

/* One line per row result (text or JSON), and the kernel variants the self-check disables. */
static void print_event(const vkft_selftest_event *e, void *user) {
  table_output *out = user;
  if (e->disabled) {
    out->disabled++;
    printf("%s%s failed the self-check: disabled for this run%s\n", out->json ? "# " : "",
           e->variant, out->json ? "" : " (its fallback is used)");
    fflush(stdout);
    return;
  }
  const vkft_op_case *c = e->row;
  const vkft_op_result *r = e->result;
  out->rows++;
  if (!r || !r->ok || !r->deterministic) out->rows_failed++;
  if (!r) {
    out->could_not_run++;
    fprintf(stderr, "vkft: %s %s%s%s: %s\n", c->op, vkft_dtype_name(c->dtype),
            e->variant ? " with " : "", e->variant ? e->variant : "", e->message);
    return;
  }
  int ok = r->ok && r->deterministic;
  char kernel[48] = "";
  if (e->variant) snprintf(kernel, sizeof kernel, " [%s]", e->variant);
  if (out->json) {
    printf("{\"op\": \"%s\", \"shape\": \"%s\", \"dtype\": \"%s\", \"kernel\": \"%s\", "
           "\"ms\": %.4f, \"gflops\": %.3f, \"gbps\": %.3f, \"max_err\": %.3e, \"tol\": %.3e, "
           "\"ok\": %s}\n",
           c->op, r->shape, vkft_dtype_name(c->dtype), e->variant ? e->variant : "auto", r->ms,
           r->gflops, r->gbps, r->max_err, r->tol, ok ? "true" : "false");
  } else if (out->timed) {
    printf("%-4s %-14s %-5s %-16s %9.3f ms %8.2f %s  err %.2e (tol %.2e)%s%s\n", ok ? "ok" : "FAIL",
           c->op, vkft_dtype_name(c->dtype), r->shape, r->ms, r->gflops > 0 ? r->gflops : r->gbps,
           r->gflops > 0 ? "GFLOP/s" : "GB/s   ", r->max_err, r->tol, r->ok ? "" : " in ",
           r->ok ? "" : r->output);
  } else {
    printf("%-4s %-14s %-5s %-16s err %.2e (tol %.2e)%s%s%s%s\n", ok ? "ok" : "FAIL", c->op,
           vkft_dtype_name(c->dtype), r->shape, r->max_err, r->tol, r->ok ? "" : " in ",
           r->ok ? "" : r->output, r->deterministic ? "" : " NOT DETERMINISTIC", kernel);
  }
  fflush(stdout);
}

static int run_table(int argc, char **argv, unsigned flag, int timed_runs, const char *what) {
  cli_device_opts opts;
  if (cli_take_device_opts(&argc, argv, &opts) != VKFT_OK) return cli_fail();
  int json = 0;
  const char *filter = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--large") && flag == VKFT_CASE_BENCH)
      flag = VKFT_CASE_LARGE; /* the GPU-sized rows */
    else if (!strcmp(argv[i], "--full") && flag == VKFT_CASE_SELFTEST)
      flag = VKFT_CASE_TEST; /* every test row: tests/test_ops on the device, in the binary */
    else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
      filter = argv[++i];
    else {
      fprintf(stderr, "vkft %s: unexpected argument \"%s\"\n", what, argv[i]);
      return 2;
    }
  }
  vkft_device *dev = cli_open_device(&opts);
  if (!dev) return cli_exit_code(vkft_error_code());
  vkft_backend *vk;
  if (vkft_backend_vk_create(dev, &vk) != VKFT_OK) {
    vkft_device_destroy(dev);
    return cli_fail();
  }
  if (!json) printf("%s on %s\n", what, vkft_device_get_info(dev)->name);
  int count, failed = 0;
  table_output out = {.json = json, .timed = timed_runs > 0};
  int check = flag == VKFT_CASE_SELFTEST || flag == VKFT_CASE_TEST;
  if (check && vkft_selftest(vk, flag, filter, print_event, &out, &failed)) {
    fprintf(stderr, "vkft: %s\n", vkft_error_message());
    failed += !failed;
  }
  const vkft_op_case *cases = vkft_op_cases(&count);
  for (int i = 0; !check && i < count; i++) {
    const vkft_op_case *c = &cases[i];
    if (!(c->flags & flag) || (filter && !strstr(c->op, filter))) continue;
    vkft_op_result r;
    vkft_selftest_event e = {.row = c, .result = &r};
    if (vkft_op_case_run(vk, c, timed_runs, &r) != VKFT_OK)
      e.result = NULL, e.message = vkft_error_message();
    print_event(&e, &out);
    failed += !e.result || !r.ok || !r.deterministic;
  }
  int validation = vkft_device_validation_errors(dev);
  vkft_backend_destroy(vk);
  vkft_device_destroy(dev);
  if (!json)
    printf("%d of %d op cases passed%s\n", out.rows - out.rows_failed, out.rows,
           out.disabled ? " (the failures disabled their kernels; the run can go on)" : "");
  if (validation) fprintf(stderr, "vkft: %d validation message(s)\n", validation);
  return failed || validation ? 1 : 0;
}

int vkft_cmd_selftest(int argc, char **argv) {
  return run_table(argc, argv, VKFT_CASE_SELFTEST, 0, "selftest");
}

int vkft_cmd_bench_ops(int argc, char **argv) {
  return run_table(argc, argv, VKFT_CASE_BENCH, 5, "bench ops");
}
