/* The training report: OUT/report.html, one self-contained page (inline SVG and a little
 * JavaScript; no network, no external fonts) drawn from OUT/metrics.jsonl — loss (raw and
 * smoothed, with the eval loss), learning rate, gradient norm with clipping events, throughput,
 * tokens, TRL's preference metrics and any other numeric key — with the run's configuration,
 * data statistics and memory plan; and a terminal sparkline of the loss. The trainer rewrites
 * the page while it runs (throttled); `vkft report OUT` rebuilds it from the folder alone. */
#ifndef VKFT_REPORT_H
#define VKFT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#define VKFT_REPORT_MAX_LINES 32
#define VKFT_REPORT_LINE 512

/* What the trainer knows beyond the files: zero-initialise, then fill what is known. */
typedef struct vkft_report_info {
  const char *title;       /* the page's heading; NULL: the model folder of the config */
  const char *config_json; /* vkft_train_config_to_json(); NULL: the newest checkpoint's */
  const char *status;      /* "training", "finished", "interrupted at step 40", ...; NULL: guessed
                              from the folder (the final adapter or model there: finished) */
  int64_t total_steps;     /* the planned optimizer steps; 0: unknown */
  /* the information lines the trainer printed (data statistics, memory plan, device), shown as
   * they are: add them with vkft_report_info_add_line */
  char lines[VKFT_REPORT_MAX_LINES][VKFT_REPORT_LINE];
  int n_lines;
} vkft_report_info;

/* Keeps a copy of one line (the first VKFT_REPORT_MAX_LINES; longer lines are cut). */
void vkft_report_info_add_line(vkft_report_info *info, const char *line);

/* Writes out_dir/report.html atomically from out_dir/metrics.jsonl and info. With info NULL
 * (`vkft report`), the page's run information comes from the folder: the details kept in the
 * previous report.html, else the configuration of the newest checkpoint. */
int vkft_report_write(const char *out_dir, const vkft_report_info *info);

/* Throttling for the trainer: write at most every interval_s seconds, and never spend more than
 * about 2% of the time on the report (a slow write waits 50 times its own duration). */
typedef struct vkft_report_throttle {
  double interval_s; /* 0: 30 s */
  double last_s;     /* when the last write ended (vkft_time_s) */
  double cost_s;     /* how long it took */
  int written;
} vkft_report_throttle;

/* 1 when a write is due at time now_s (the first one always is). */
int vkft_report_due(const vkft_report_throttle *throttle, double now_s);
/* Writes the report when it is due or `force` (the end of the run), and records the time. */
int vkft_report_update(vkft_report_throttle *throttle, const char *out_dir,
                       const vkft_report_info *info, int force);

/* A sparkline of n values in at most `width` cells of Unicode blocks (U+2581..U+2588), each the
 * mean of its share of the values; non-finite values are skipped (a cell of none is a blank).
 * out needs 3 * width + 1 bytes. */
int vkft_report_sparkline(const double *values, size_t n, int width, char *out, size_t size);

/* One line for the end of a run, from out_dir/metrics.jsonl:
 * "loss 1.411 ▇▇▆▄▃▂▂▁▁▁ 0.1338 (20 steps; eval 0.149 at step 20)". VKFT_ERR when there are no
 * loss values. */
int vkft_report_loss_summary(const char *out_dir, int width, char *line, size_t size);

#endif
