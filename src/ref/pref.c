/* Reference preference objectives over one micro-batch of N pairs: each sequence's log-prob from
 * its tokens' cross-entropy losses, and each token's weight in the cross-entropy backward — the
 * derivative of the step's loss with respect to that token's loss — so that the fused LM-head
 * op (vkft_cross_entropy_run with row_weight) gives the objective's gradient without logits.
 * The specification shaders/pref.comp is tested against; the rules and their TRL sources are
 * in docs/PREFERENCE.md, "Objectives". */
#include "real.h"

#include <math.h>

static real sigmoid(real x) {
  return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

/* log(1 - e^x) for x <= 0, TRL's log1mexp: log1p(-e^x) below -ln 2, log(-expm1(x)) above */
static real log1mexp(real x) {
  return x < (real)-0.6931471805599453 ? log1p(-exp(x)) : log(-expm1(x));
}

static real log_sigmoid(real x) {
  return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

real REF(pref_pair_loss)(const vkft_pref_objective *o, real c, real r, real ref_c, real ref_r,
                         real n_c, real n_r) {
  const real beta = o->beta, ls = o->label_smoothing;
  n_c = n_c > 0 ? n_c : 1, n_r = n_r > 0 ? n_r : 1;
  switch (o->kind) {
  case VKFT_PREF_LOSS_ORPO:
    return -beta * log_sigmoid((c - r) - (log1mexp(c) - log1mexp(r)));
  case VKFT_PREF_LOSS_IPO: {
    real d = (c - ref_c) / n_c - (r - ref_r) / n_r - 1 / (2 * beta);
    return d * d;
  }
  case VKFT_PREF_LOSS_HINGE: {
    real x = 1 - beta * ((c - ref_c) - (r - ref_r));
    return x > 0 ? x : 0;
  }
  case VKFT_PREF_LOSS_ROBUST: {
    real x = beta * ((c - ref_c) - (r - ref_r));
    return (-(1 - ls) * log_sigmoid(x) + ls * log_sigmoid(-x)) / (1 - 2 * ls);
  }
  default:
    return -log_sigmoid(beta * ((c - ref_c) - (r - ref_r)));
  }
}

/* d(pair loss)/d(log-prob) of the chosen (*dc) and rejected (*dr) sequence */
static void pair_grad(const vkft_pref_objective *o, real c, real r, real ref_c, real ref_r,
                      real n_c, real n_r, real *dc, real *dr) {
  const real beta = o->beta, ls = o->label_smoothing;
  if (o->kind == VKFT_PREF_LOSS_ORPO) {
    /* o = (c - r) - (log1mexp(c) - log1mexp(r)); do/dc = 1 / (1 - e^c), do/dr = -1 / (1 - e^r) */
    real odds = (c - r) - (log1mexp(c) - log1mexp(r));
    real g = -beta * sigmoid(-odds); /* d(-beta log sigmoid(o))/do */
    *dc = g / -expm1(c);
    *dr = -g / -expm1(r);
    return;
  }
  if (o->kind == VKFT_PREF_LOSS_IPO) {
    real d = (c - ref_c) / n_c - (r - ref_r) / n_r;
    real g = 2 * (d - 1 / (2 * beta));
    *dc = g / n_c;
    *dr = -g / n_r;
    return;
  }
  real x = beta * ((c - ref_c) - (r - ref_r)), g; /* g = d(pair loss)/d(delta) */
  if (o->kind == VKFT_PREF_LOSS_ROBUST)
    g = beta * (-(1 - ls) * sigmoid(-x) - ls * sigmoid(x)) / (1 - 2 * ls);
  else if (o->kind == VKFT_PREF_LOSS_HINGE)
    g = x < 1 ? -beta : 0; /* relu'(0) = 0, as torch */
  else
    g = -beta * sigmoid(-x);
  *dc = g;
  *dr = -g;
}

void REF(pref_loss)(const vkft_pref_objective *o, const real *row_loss, const int32_t *tok,
                    const int32_t *ranges, const real *ref, int64_t T, int64_t N, real *seq,
                    real *weights) {
  // row_loss (T): token t's cross-entropy loss; tok (T): 2 s + 1 when t's target counts in
  // sequence s's log-prob, 2 s when it belongs to s otherwise (ORPO's NLL only), -1 for none;
  // ranges (2N, 2): the tokens [first, end) of each sequence; ref (2N) DPO reference log-probs.
  // seq (4N + 2) out: log-probs (2N), their token counts (2N), the NLL sum and count of the
  // chosen sequences. weights (T) out, when not NULL: d(step loss)/d(row_loss[t]).
  const int64_t S = 2 * N;
  const int orpo = o->kind == VKFT_PREF_LOSS_ORPO;
  real nll = 0, nll_count = 0;
  for (int64_t s = 0; s < S; s++) {
    real sum = 0, count = 0, all = 0, all_count = 0;
    for (int64_t t = ranges[2 * s]; t < ranges[2 * s + 1]; t++) {
      if (tok[t] < 0 || tok[t] / 2 != s) continue;
      all += row_loss[t];
      all_count += 1;
      if (tok[t] % 2) {
        sum += row_loss[t];
        count += 1;
      }
    }
    /* ORPO averages over the completion (TRL's average_log_prob=True); a count of 0 is
     * taken as 1 (the log-prob is then 0), as TRL's IPO clamps it */
    seq[s] = orpo ? -sum / (count > 0 ? count : 1) : -sum;
    seq[S + s] = count;
    if (s < N) nll += all, nll_count += all_count;
  }
  seq[2 * S] = nll;
  seq[2 * S + 1] = nll_count;
  if (!weights) return;
  for (int64_t t = 0; t < T; t++) weights[t] = 0;
  for (int64_t i = 0; i < N; i++) {
    const int64_t c = i, r = N + i;
    real n_c = seq[S + c] > 0 ? seq[S + c] : 1, n_r = seq[S + r] > 0 ? seq[S + r] : 1;
    real dc, dr;
    pair_grad(o, seq[c], seq[r], ref ? ref[c] : 0, ref ? ref[r] : 0, n_c, n_r, &dc, &dr);
    /* d(log-prob)/d(token loss) = -1 (a sum) or -1 / n (ORPO's mean) */
    real wc = -(real)o->pair_scale * dc / (orpo ? n_c : 1);
    real wr = -(real)o->pair_scale * dr / (orpo ? n_r : 1);
    for (int k = 0; k < 2; k++) {
      const int64_t s = k ? r : c;
      for (int64_t t = ranges[2 * s]; t < ranges[2 * s + 1]; t++) {
        if (tok[t] < 0 || tok[t] / 2 != s) continue;
        real w = tok[t] % 2 ? (k ? wr : wc) : 0;
        if (orpo && !k) w += (real)o->nll_scale;
        weights[t] = w;
      }
    }
  }
}
