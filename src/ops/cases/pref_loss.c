/* Op-table family "pref_loss": sequence log-probs and token weights of the preference objectives
 * against the double reference (src/ref/pref.c).
 * Layout: 2N sequences packed one after another with a few padding tokens between them (tok -1);
 * each starts with a token without a target (-1), then prompt targets (2 s; -1 for DPO, whose
 * prompt has no target), then completion targets (2 s + 1). Token losses in [0.02, 6], as a
 * model's; reference log-probs near the sequence's own.
 * Tolerances. A log-prob is one fp32 sum of at most L terms in token order: its error is below
 * L u times the sum of |terms| (plus the division of ORPO's mean), the scale its check uses.
 * The weights are smooth functions of those sums (hinge: a step), evaluated with a few ulps
 * (exp, division: 16 u of the result). Every loss is positive, so scaling the chosen
 * sequences' losses by 1 + e and the rejected ones' by 1 - e (and the other way round), with
 * e = (L + 2) u, moves each pair's margin at least as far as rounding can: the reference
 * evaluated there gives dev_t, how far rounding can move weight t, and the check's scale is
 * |w_t| + dev_t / tol with tol = 16 u (so |got - want| <= 16 u |w_t| + dev_t). Counts: exact. */
#include "case.h"

enum { ROW_LOSS, TOK, RANGES, REF, SEQ, WEIGHTS };

typedef struct pref_params {
  int64_t T, N;
  int logps_only;
  vkft_pref_objective o;
} pref_params;

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  pref_params *p = CASE_PARAMS(oc, pref_params);
  if (!p) return VKFT_ERR;
  const int64_t N = c->d[0], L = c->d[1], S = 2 * N;
  const vkft_pref_loss_kind kind = (vkft_pref_loss_kind)c->d[2];
  const int orpo = kind == VKFT_PREF_LOSS_ORPO;
  p->N = N;
  p->logps_only = (int)c->d[3];
  p->o = (vkft_pref_objective){.kind = kind,
                               .beta = kind == VKFT_PREF_LOSS_IPO ? 0.5f : 0.1f,
                               .label_smoothing = kind == VKFT_PREF_LOSS_ROBUST ? 0.2f : 0.0f,
                               .pair_scale = 1.0f / (float)(2 * N),
                               .nll_scale = 0};
  /* lengths first, to size the tensors */
  int64_t *len = CASE_NEW(oc, int64_t, S), *plen = CASE_NEW(oc, int64_t, S);
  if (oc->failed) return VKFT_ERR;
  int64_t T = 0;
  for (int64_t s = 0; s < S; s++) {
    len[s] = 2 + (int64_t)case_uniform(&oc->rng, 0, (double)(L - 1));
    if (len[s] > L) len[s] = L;
    if (s == 0) len[s] = L; /* one at the longest */
    plen[s] = 1 + (int64_t)case_uniform(&oc->rng, 0, (double)(len[s] - 1) * 0.6);
    T += len[s] + (s % 3); /* 0..2 padding tokens after it */
  }
  p->T = T;
  case_shape(oc, "%lld pairs, T%lld, %s%s", (long long)N, (long long)T,
             kind == VKFT_PREF_LOSS_SIGMOID  ? "sigmoid"
             : kind == VKFT_PREF_LOSS_ROBUST ? "robust"
             : kind == VKFT_PREF_LOSS_HINGE  ? "hinge"
             : kind == VKFT_PREF_LOSS_IPO    ? "ipo"
                                             : "orpo",
             p->logps_only ? " logps" : "");
  float *loss_f = case_tensor_new(oc, ROW_LOSS, "row_loss", VKFT_F32, T, CASE_IN);
  int32_t *tok = case_tensor_new(oc, TOK, "tok", VKFT_I32, T, CASE_IN);
  int32_t *ranges = case_tensor_new(oc, RANGES, "ranges", VKFT_I32, 2 * S, CASE_IN);
  float *ref_f = orpo ? NULL : case_tensor_new(oc, REF, "ref", VKFT_F32, S, CASE_IN);
  case_poisoned(oc, SEQ, "seq", 2 * S + 2);
  if (!p->logps_only) case_poisoned(oc, WEIGHTS, "weights", T);
  double *loss = CASE_NEW(oc, double, T), *ref = CASE_NEW(oc, double, S);
  double *seq = CASE_NEW(oc, double, 2 * S + 2), *seq_scale = CASE_NEW(oc, double, 2 * S + 2);
  double *w = CASE_NEW(oc, double, T), *w_lo = CASE_NEW(oc, double, T);
  double *w_hi = CASE_NEW(oc, double, T), *w_scale = CASE_NEW(oc, double, T);
  double *scaled = CASE_NEW(oc, double, T), *seq2 = CASE_NEW(oc, double, 2 * S + 2);
  if (oc->failed) return VKFT_ERR;
  int64_t at = 0, nll_tokens = 0;
  for (int64_t s = 0; s < S; s++) {
    ranges[2 * s] = (int32_t)at;
    ranges[2 * s + 1] = (int32_t)(at + len[s]);
    for (int64_t k = 0; k < len[s]; k++, at++) {
      tok[at] = k == 0 ? -1 : k < plen[s] ? (orpo ? (int32_t)(2 * s) : -1) : (int32_t)(2 * s + 1);
      loss_f[at] = (float)case_uniform(&oc->rng, 0.02, 6);
      nll_tokens += orpo && s < N && tok[at] >= 0;
    }
    for (int64_t k = 0; k < s % 3; k++, at++) {
      tok[at] = -1;
      loss_f[at] = (float)case_uniform(&oc->rng, 0, 6); /* must not count */
    }
  }
  if (orpo) p->o.nll_scale = 1.0f / (float)(nll_tokens > 0 ? nll_tokens : 1);
  for (int64_t t = 0; t < T; t++) loss[t] = loss_f[t];
  /* reference log-probs near each sequence's own, so that the DPO margins are of order 1 */
  vkft_ref_pref_loss_f64(&p->o, loss, tok, ranges, NULL, T, N, seq, NULL);
  for (int64_t s = 0; ref_f && s < S; s++) {
    ref_f[s] = (float)(seq[s] + case_uniform(&oc->rng, -4, 4));
    ref[s] = ref_f[s];
  }
  const double *ref_in = orpo ? NULL : ref;
  vkft_ref_pref_loss_f64(&p->o, loss, tok, ranges, ref_in, T, N, seq, p->logps_only ? NULL : w);

  for (int64_t s = 0; s < S; s++) { /* scales: the sums of |terms| (ORPO: over the count) */
    double abs_sum = 0;
    for (int64_t t = ranges[2 * s]; t < ranges[2 * s + 1]; t++)
      if (tok[t] == 2 * s + 1) abs_sum += loss[t];
    double n = seq[S + s] > 0 ? seq[S + s] : 1;
    seq_scale[s] = (orpo ? abs_sum / n : abs_sum) + 1e-30;
    seq_scale[S + s] = 0;
  }
  seq_scale[2 * S] = fabs(seq[2 * S]) + 1e-30;
  seq_scale[2 * S + 1] = 0;
  double tol_seq = (double)(L + 4) * CASE_U;
  case_expect_part(oc, SEQ, 0, S, seq, seq_scale, tol_seq);
  case_expect_part(oc, SEQ, S, S, seq + S, seq_scale + S, 0);
  /* the NLL: N per-sequence sums of at most L terms, then their sum in sequence order */
  case_expect_part(oc, SEQ, 2 * S, 2, seq + 2 * S, seq_scale + 2 * S, (double)(L + N + 4) * CASE_U);
  if (!p->logps_only) {
    const double e = (double)(L + 2) * CASE_U, tol = 16 * CASE_U;
    for (int k = 0; k < 2; k++) {
      for (int64_t t = 0; t < T; t++) { /* chosen one way, rejected the other */
        int chosen = tok[t] >= 0 && tok[t] / 2 < N;
        scaled[t] = loss[t] * (chosen == k ? 1 + e : 1 - e);
      }
      vkft_ref_pref_loss_f64(&p->o, scaled, tok, ranges, ref_in, T, N, seq2, k ? w_hi : w_lo);
    }
    for (int64_t t = 0; t < T; t++) {
      double dev = fmax(fabs(w_hi[t] - w[t]), fabs(w_lo[t] - w[t]));
      w_scale[t] = fabs(w[t]) + dev / tol; /* 0 for tokens without a role: exactly 0 */
    }
    case_expect(oc, WEIGHTS, w, w_scale, tol);
  }
  oc->bytes = 12.0 * (double)T;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const pref_params *p = oc->params;
  vkft_pref_loss_desc d = {.objective = p->o,
                           .row_loss = &t[ROW_LOSS],
                           .tok = &t[TOK],
                           .ranges = &t[RANGES],
                           .ref = p->o.kind == VKFT_PREF_LOSS_ORPO ? NULL : &t[REF],
                           .seq = &t[SEQ],
                           .weights = p->logps_only ? NULL : &t[WEIGHTS],
                           .T = p->T,
                           .N = p->N};
  return vkft_pref_loss(be, &d);
}

const case_family case_pref_loss = {{"pref_loss"}, setup, record};
