/* `vkft train --config cfg.json [--set section.key=value ...] [--resume auto|DIR] [--overwrite]
 * [--dry-run] [--skip-selftest]`: the training job, with a live progress line on a terminal and
 * plain lines in logs. Exit status: 0 done, VKFT_EXIT_INTERRUPTED (130) interrupted with the
 * state saved, else the error's (src/cli/commands.h).
 * `vkft lr-find --config cfg.json [--set ...] [--min 1e-7] [--max 1] [--steps 100]
 * [--diverge 4]`: the learning-rate range test of the same job (include/vkft/lr_find.h), into
 * output.dir/lr_find.jsonl and lr_find.html; nothing of the model is saved.
 * Under mpirun/srun (vkft/dist.h) every rank runs `train`: rank r takes the device local_rank %
 * (devices of the best kind) unless --device/VKFT_DEVICE says otherwise; rank 0 prints the
 * progress, and an error is printed once, by the rank it happened on. lr-find is one process. */
#include "commands.h"

#include "vkft/dist.h"
#include "vkft/error.h"
#include "vkft/lr_find.h"
#include "vkft/platform.h"
#include "vkft/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct progress {
  int tty;
  int line_open;
} progress;

static void fmt_duration(double s, char *out, size_t size) {
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    snprintf(out, size, "%ldm%02lds", t / 60, t % 60);
  else
    snprintf(out, size, "%lds", t);
}

static void on_message(const char *line, void *user) {
  progress *p = user;
  if (p->line_open) fputc('\n', stdout), p->line_open = 0;
  printf("%s\n", line);
  fflush(stdout);
}

static void on_step(const vkft_step_report *r, void *user) {
  progress *p = user;
  if (r->is_eval) {
    if (p->line_open) fputc('\n', stdout), p->line_open = 0;
    printf("eval  step %lld: loss %.4f over %lld tokens\n", (long long)r->step, r->loss,
           (long long)r->trained_tokens);
    fflush(stdout);
    return;
  }
  char eta[32], elapsed[32];
  fmt_duration(r->eta_s, eta, sizeof eta);
  fmt_duration(r->elapsed_s, elapsed, sizeof elapsed);
  if (p->tty) {
    printf("\r\033[Kstep %lld/%lld  loss %.4f  lr %.3g  grad %.3f  %.0f tok/s  %s  ETA %s",
           (long long)r->step, (long long)r->total_steps, r->loss, r->lr, r->grad_norm,
           r->tokens_per_s, elapsed, eta);
    p->line_open = 1;
    if (r->step == r->total_steps) fputc('\n', stdout), p->line_open = 0;
  } else {
    printf("step %lld/%lld loss %.4f lr %.3g grad_norm %.3f tokens/s %.0f elapsed %s eta %s\n",
           (long long)r->step, (long long)r->total_steps, r->loss, r->lr, r->grad_norm,
           r->tokens_per_s, elapsed, eta);
  }
  fflush(stdout);
}

/* A failure: settled with the other ranks, printed by the one it happened on. */
static int fail(vkft_dist *dist) {
  vkft_dist_settle(dist, VKFT_ERR);
  return vkft_dist_peer_failed(dist) ? cli_exit_code(vkft_error_code()) : cli_fail();
}

/* A usage error: the line printed once, exit status 2. */
static int usage(vkft_dist *dist, const char *line) {
  vkft_error("%s", line);
  vkft_dist_settle(dist, VKFT_ERR);
  if (!vkft_dist_peer_failed(dist)) fprintf(stderr, "%s\n", line);
  return CLI_EXIT_USAGE;
}

/* Data parallel without --device/VKFT_DEVICE: the rank's device among those of the kind the
 * automatic choice picks (discrete GPUs, say, not the CPU driver beside them), by local rank. */
static int rank_device(vkft_dist *dist) {
  vkft_device_info *infos;
  int count, chosen, same[64], n = 0;
  const char *env = getenv("VKFT_DEVICE");
  if (!dist || (env && *env) || vkft_vk_list_devices(&infos, &count, &chosen) != VKFT_OK) return -1;
  for (int i = 0; chosen >= 0 && i < count && n < 64; i++)
    if (infos[i].usable && !strcmp(infos[i].type, infos[chosen].type)) same[n++] = i;
  free(infos);
  return n ? same[vkft_dist_local_rank(dist) % n] : -1;
}

/* lr-find's options (a 0 in *lr means this is `train`); 1 when argv[*i] was one of them */
static int lr_find_option(int argc, char **argv, int *i, vkft_lr_find_options *lr, int *bad) {
  if (!lr || *i + 1 >= argc) return 0;
  const char *name = argv[*i], *value = argv[*i + 1];
  int64_t steps;
  if (!strcmp(name, "--min"))
    *bad |= cli_double_option(name, value, 1e-12, 1e3, &lr->min_lr) != VKFT_OK;
  else if (!strcmp(name, "--max"))
    *bad |= cli_double_option(name, value, 1e-12, 1e3, &lr->max_lr) != VKFT_OK;
  else if (!strcmp(name, "--diverge"))
    *bad |= cli_double_option(name, value, 1.01, 1e6, &lr->diverge_factor) != VKFT_OK;
  else if (!strcmp(name, "--steps")) {
    *bad |= cli_int_option(name, value, 5, 100000, &steps) != VKFT_OK;
    lr->steps = steps;
  } else
    return 0;
  (*i)++;
  return 1;
}

static int run(int argc, char **argv, vkft_lr_find_options *lr, vkft_dist *dist) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return fail(dist);
  if (dev_opts.device < 0) dev_opts.device = rank_device(dist);
  const char *config = NULL;
  const char **sets = calloc((size_t)argc, sizeof *sets);
  int set_count = 0;
  vkft_train_options opt = {0};
  progress prog = {.tty = vkft_console_is_tty(stdout)};
  if (!sets) {
    vkft_error_nomem();
    return fail(dist);
  }
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    if (lr_find_option(argc, argv, &i, lr, &bad)) {
      if (!bad) continue;
      free(sets);
      return cli_usage_error(); /* lr-find: one process */
    } else if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (!strcmp(argv[i], "--set") && i + 1 < argc)
      sets[set_count++] = argv[++i];
    else if (!lr && !strcmp(argv[i], "--resume") && i + 1 < argc)
      opt.resume = argv[++i];
    else if (!lr && !strcmp(argv[i], "--dry-run"))
      opt.dry_run = 1;
    else if (!lr && !strcmp(argv[i], "--overwrite"))
      opt.overwrite = 1;
    else if (!strcmp(argv[i], "--skip-selftest"))
      opt.skip_selftest = 1;
    else if (!lr && !strcmp(argv[i], "--stop-after") && i + 1 < argc) {
      if (cli_int_option("--stop-after", argv[++i], 1, INT64_MAX, &opt.stop_after) != VKFT_OK) {
        free(sets);
        char line[1100];
        snprintf(line, sizeof line, "vkft: %s", vkft_error_message());
        return usage(dist, line);
      }
    } else {
      if (lr)
        fprintf(stderr, "usage: vkft lr-find --config cfg.json [--set section.key=value ...] "
                        "[--min 1e-7] [--max 1] [--steps 100] [--diverge 4] [--skip-selftest] "
                        "[--device N]\n");
      free(sets);
      if (!lr)
        return usage(dist, "usage: vkft train --config cfg.json [--set section.key=value ...] "
                           "[--resume auto|DIR] [--overwrite] [--dry-run] [--skip-selftest] "
                           "[--device N]");
      return CLI_EXIT_USAGE;
    }
  }
  if (lr && !(lr->min_lr < lr->max_lr)) {
    fprintf(stderr, "vkft lr-find: --min %g must be below --max %g\n", lr->min_lr, lr->max_lr);
    free(sets);
    return CLI_EXIT_USAGE;
  }
  opt.lr_find = lr;
  if (opt.resume && opt.overwrite) {
    free(sets);
    return usage(dist, "vkft train: --resume continues a run, --overwrite replaces it: not both");
  }
  vkft_train_config cfg;
  if (vkft_train_config_load(config, sets, set_count, &cfg) != VKFT_OK) {
    free(sets);
    return fail(dist);
  }
  free(sets);
  vkft_device *dev = NULL;
  vkft_backend *be = NULL;
  if (opt.dry_run) { /* the plan needs no device; with one it also says whether it fits */
    vkft_device_desc desc = {.index = dev_opts.device, .validate = -1};
    if (vkft_device_create(&desc, &dev) != VKFT_OK) {
      printf("no device (%s): the plan alone\n", vkft_error_message());
      dev = NULL;
    }
  } else {
    vkft_device_desc desc = {.index = dev_opts.device, .validate = -1, .profile = dev_opts.profile};
    if (vkft_device_create(&desc, &dev) != VKFT_OK) return fail(dist);
  }
  if (dev && dist)
    printf("rank %d of %d: device: %s\n", vkft_dist_rank(dist), vkft_dist_size(dist),
           vkft_device_get_info(dev)->name);
  else if (dev)
    printf("device: %s\n", vkft_device_get_info(dev)->name);
  fflush(stdout);
  if (dev && vkft_backend_vk_create(dev, &be) != VKFT_OK) {
    vkft_device_destroy(dev);
    return fail(dist);
  }
  if (vkft_dist_rank(dist) == 0) { /* the other ranks train in silence */
    opt.on_message = on_message;
    opt.on_step = on_step;
    opt.user = &prog;
  }
  opt.dist = dist;
  vkft_train_result result;
  int status = vkft_train(be, &cfg, &opt, &result);
  status = vkft_dist_settle(dist, status); /* every rank ends the job together */
  if (prog.line_open) fputc('\n', stdout);
  int validation = dev ? vkft_device_validation_errors(dev) : 0;
  if (status == VKFT_OK && dev_opts.profile && vkft_dist_rank(dist) == 0) {
    printf("GPU time of the last submission, by shader:\n");
    cli_print_profile(dev);
  }
  vkft_backend_destroy(be);
  vkft_device_destroy(dev);
  if (status != VKFT_OK) /* vkft_train settled with the other ranks: printed once */
    return vkft_dist_peer_failed(dist) ? cli_exit_code(vkft_error_code()) : cli_fail();
  if (validation) {
    fprintf(stderr, "vkft: %d Vulkan validation message(s)\n", validation);
    return CLI_EXIT_INTERNAL;
  }
  return result.interrupted ? VKFT_EXIT_INTERRUPTED : CLI_EXIT_OK;
}

int vkft_cmd_train(int argc, char **argv) {
  vkft_dist *dist;
  if (vkft_dist_init(&dist) != VKFT_OK) return cli_fail();
  int status = run(argc, argv, NULL, dist);
  vkft_dist_finalize(dist);
  return status;
}

int vkft_cmd_lr_find(int argc, char **argv) {
  vkft_lr_find_options lr = {.min_lr = 1e-7, .max_lr = 1, .steps = 100, .diverge_factor = 4};
  vkft_dist *dist;
  if (vkft_dist_init(&dist) != VKFT_OK) return cli_fail();
  int status = dist ? fail((vkft_error_with(VKFT_ERR_UNSUPPORTED,
                                            "lr-find runs in one process: start it without "
                                            "mpirun"),
                            dist))
                    : run(argc, argv, &lr, NULL);
  vkft_dist_finalize(dist);
  return status;
}
