/* The pure pieces of `vkft data synth` and `vkft data judge` (vkft/datagen.h): the judge's score
 * grammar on a table of verdicts, the clean-up of generated instructions on a table of
 * generations, templates (placeholders, unknown names, no re-expansion, the shipped files),
 * the seeded sampling of seed tasks (distinct, in range, reproducible, every task drawn about
 * equally often), and a record's instruction and reply in each SFT format. */
#include "check.h"

#include "vkft/datagen.h"
#include "vkft/error.h"

#include <cjson/cJSON.h>
#include <math.h>

typedef struct score_case {
  const char *text;
  double score; /* 0: no score, error_has says why */
  const char *error_has;
} score_case;

static const score_case score_cases[] = {
    {"Score: 7", 7, NULL},
    {"The reply is fine.\nScore: 8", 8, NULL},
    {"7/10", 7, NULL},
    {"I give it 7 / 10 overall.", 7, NULL},
    {"**8**", 8, NULL},
    {"Verdict: **9/10**", 9, NULL},
    {"Rating: 9 out of 10", 9, NULL},
    {"Rating: [[5]]", 5, NULL},
    {"[[3]] is my rating, though the score could be 9", 3, NULL}, /* tier 1 first */
    {"It gets 6/10 from me. Score: 4", 4, NULL},                  /* keyword before fraction */
    {"The error rate is 5 percent. Score: 8", 8, NULL},           /* "score" before "rate" */
    {"**Score:** 6", 6, NULL},
    {"SCORE = 10", 10, NULL},
    {"score of 7.5", 7.5, NULL},
    {"I would rate it a 4.", 4, NULL},
    {"Overall score - 2", 2, NULL},
    {"Grade: 1", 1, NULL},
    {"Score: 10/10", 10, NULL},
    {"The final score is 6.", 6, NULL},
    {"underscore 7 points", 0, "no score"}, /* not the word score */
    {"Score: 11", 0, "out of range"},
    {"Score: 0", 0, "out of range"},
    {"Score: -3", 0, "out of range"},
    {"Score: 4/5", 0, "not on the 1-10 scale"},
    {"Rating: 3 out of 5", 0, "not on the 1-10 scale"},
    {"[[12]]", 0, "out of range"},
    {"A fine answer with 3 points made.", 0, "no score"},
    {"Score: high", 0, "no score"},
    {"", 0, "no score"},
    {"1234567/10", 0, "no score"}, /* more than 6 digits is not a score */
};

static void test_scores(void) {
  for (size_t i = 0; i < sizeof score_cases / sizeof score_cases[0]; i++) {
    const score_case *c = &score_cases[i];
    double v = -1;
    char error[128] = "unset";
    int ok = vkft_judge_parse_score(c->text, &v, error, sizeof error);
    if (c->score > 0)
      CHECKF(ok == 1 && v == c->score, "\"%s\": %d %g (%s), want %g", c->text, ok, v, error,
             c->score);
    else
      CHECKF(ok == 0 && strstr(error, c->error_has), "\"%s\": %d %g (%s), want an error with %s",
             c->text, ok, v, error, c->error_has);
  }
}

typedef struct instruction_case {
  const char *generation;
  int truncated;
  int verdict;
  const char *want;
} instruction_case;

static const instruction_case instruction_cases[] = {
    {" Write a poem about the sea.\nTask 5: more", 0, VKFT_SYNTH_OK, "Write a poem about the sea."},
    {"\n\n  4. Explain how rain forms in clouds.\n", 0, VKFT_SYNTH_OK,
     "Explain how rain forms in clouds."},
    {"Task 4: List three   uses of\tcopper wire.", 0, VKFT_SYNTH_OK,
     "List three uses of copper wire."},
    {"Instruction: Name two rivers in Europe.\nok", 0, VKFT_SYNTH_OK, "Name two rivers in Europe."},
    {"- **Summarize the plot of a film.**\n", 0, VKFT_SYNTH_OK, "Summarize the plot of a film."},
    {"4) \"Translate this sentence into French.\"\n", 0, VKFT_SYNTH_OK,
     "Translate this sentence into French."},
    {"Task management tips for a busy week, in a list.\n", 0, VKFT_SYNTH_OK,
     "Task management tips for a busy week, in a list."},
    {"3.5 liters of water: how many cups is that?\n", 0, VKFT_SYNTH_OK,
     "3.5 liters of water: how many cups is that?"},
    {"Write a story about a cat", 1, VKFT_SYNTH_TRUNCATED, NULL}, /* cut by max_new_tokens */
    {"Write a story about a cat.\nAnd then", 1, VKFT_SYNTH_OK, "Write a story about a cat."},
    {"   \n\n 5. \n", 0, VKFT_SYNTH_EMPTY, NULL},
    {"", 0, VKFT_SYNTH_EMPTY, NULL},
    {"Say hi.", 0, VKFT_SYNTH_TOO_SHORT, NULL},
    {"(Write about dogs in the park today)", 0, VKFT_SYNTH_PUNCTUATION, NULL},
    {"one two three four five six seven eight nine ten eleven twelve", 0, VKFT_SYNTH_TOO_LONG,
     NULL},
};

static void test_instructions(void) {
  vkft_synth_limits limits = {.min_words = 4, .max_words = 10};
  for (size_t i = 0; i < sizeof instruction_cases / sizeof instruction_cases[0]; i++) {
    const instruction_case *c = &instruction_cases[i];
    char *out = NULL;
    int v = vkft_synth_parse_instruction(c->generation, c->truncated, &limits, &out);
    CHECKF(v == c->verdict, "\"%s\": %s, want %s", c->generation,
           vkft_synth_reject_name((vkft_synth_reject)v),
           vkft_synth_reject_name((vkft_synth_reject)c->verdict));
    if (c->want) CHECKF(out && !strcmp(out, c->want), "\"%s\" -> \"%s\"", c->generation, out);
    if (!c->want) CHECK(out == NULL);
    free(out);
  }
  char *t = vkft_synth_dedup_text("  Write\n a  POEM,  Ünïcode kept \t");
  CHECKF(t && !strcmp(t, "write a poem, Ünïcode kept"), "dedup text \"%s\"", t);
  free(t);
}

static void test_templates(void) {
  vkft_template_var vars[] = {{"instruction", "Do {{response}} now"}, {"response", "R"}};
  size_t used[2];
  char *out = NULL;
  CHECK(vkft_template_render("[{{instruction}}] {{ response }}/{{response}} {{x y}} {}", "t", vars,
                             2, &out, used) == VKFT_OK);
  CHECKF(out && !strcmp(out, "[Do {{response}} now] R/R {{x y}} {}"), "rendered \"%s\"", out);
  CHECK(used[0] == 1 && used[1] == 2);
  free(out);
  CHECK_ERR(vkft_template_render("a {{nope}} b", "my.txt", vars, 2, &out, NULL), VKFT_ERR_INPUT,
            "my.txt: unknown placeholder {{nope}}");
  CHECK(out == NULL);
  /* the shipped templates are embedded and use their placeholders */
  const char *rubric = vkft_template_builtin("judge-rubric.txt");
  CHECK(rubric && strstr(rubric, "{{instruction}}") && strstr(rubric, "{{response}}"));
  const char *ins = vkft_template_builtin("synth-instruction.txt");
  CHECK(ins && strstr(ins, "{{tasks}}") && strstr(ins, "{{next}}"));
  CHECK(vkft_template_builtin("synth-answer.txt") &&
        vkft_template_builtin("synth-answer-chat.txt"));
  CHECK(vkft_template_builtin("nothing.txt") == NULL);
}

static void test_sampling(void) {
  enum { N = 10, K = 3, PROMPTS = 20000 };
  size_t counts[N] = {0}, a[K], b[K];
  int distinct = 1, in_range = 1, same = 1, differs = 0;
  for (uint64_t p = 0; p < PROMPTS; p++) {
    vkft_synth_sample_seeds(42, p, N, K, a);
    vkft_synth_sample_seeds(42, p, N, K, b);
    for (int i = 0; i < K; i++) {
      in_range &= a[i] < N;
      same &= a[i] == b[i];
      counts[a[i] < N ? a[i] : 0]++;
      for (int j = 0; j < i; j++) distinct &= a[i] != a[j];
    }
    vkft_synth_sample_seeds(43, p, N, K, b);
    differs |= memcmp(a, b, sizeof a) != 0;
  }
  CHECK(distinct && in_range && same && differs);
  /* each task is drawn with probability K/N per prompt: a binomial count of mean 6000 and
   * standard deviation sqrt(20000 * 0.3 * 0.7) = 64.8; 5 deviations is 324 */
  for (int i = 0; i < N; i++)
    CHECKF(fabs((double)counts[i] - PROMPTS * (double)K / N) < 324, "task %d drawn %zu times", i,
           counts[i]);
  size_t all[4];
  vkft_synth_sample_seeds(1, 0, 4, 9, all); /* k > n: every one, once */
  CHECK(all[0] + all[1] + all[2] + all[3] == 6 && all[0] != all[1] && all[2] != all[3]);
  CHECK(vkft_synth_request_seed(42, 1, 7) != vkft_synth_request_seed(42, 2, 7));
  CHECK(vkft_synth_request_seed(42, 1, 7) < (1ull << 53));
}

typedef struct turn_case {
  const char *record, *instruction, *response, *error_has;
} turn_case;

static const turn_case turn_cases[] = {
    {"{\"instruction\": \"Add\", \"input\": \"2 and 3\", \"output\": \"5\"}", "Add\n2 and 3", "5",
     NULL},
    {"{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", "
     "\"content\": "
     "\"Q1\"}, {\"role\": \"assistant\", \"content\": \"A1\"}, {\"role\": \"user\", \"content\": "
     "\"Q2\"}, {\"role\": \"assistant\", \"content\": \"A2\"}]}",
     "Q2", "A2", NULL},
    {"{\"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, {\"from\": \"gpt\", "
     "\"value\": \"Hello\"}]}",
     "Hi", "Hello", NULL},
    {"{\"prompt\": [{\"role\": \"user\", \"content\": \"P\"}], \"completion\": [{\"role\": "
     "\"assistant\", \"content\": \"C\"}]}",
     "P", "C", NULL},
    {"{\"prompt\": \"P2\", \"completion\": \"C2\"}", "P2", "C2", NULL},
    {"{\"text\": \"just text\"}", NULL, NULL, "no instruction and response"},
    {"{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}]}", NULL, NULL, "no assistant"},
    {"{\"instruction\": \"I\"}", NULL, NULL, "needs alpaca's \"instruction\" and \"output\""},
};

static void test_turns(void) {
  for (size_t i = 0; i < sizeof turn_cases / sizeof turn_cases[0]; i++) {
    const turn_case *c = &turn_cases[i];
    cJSON *r = cJSON_Parse(c->record);
    char *ins = NULL, *res = NULL;
    int status = vkft_judge_record_turn(r, &ins, &res);
    if (c->instruction)
      CHECKF(status == VKFT_OK && !strcmp(ins, c->instruction) && !strcmp(res, c->response),
             "%s: %s | %s (%s)", c->record, ins, res, status ? vkft_error_message() : "");
    else
      CHECKF(status == VKFT_ERR && vkft_error_code() == VKFT_ERR_INPUT &&
                 strstr(vkft_error_message(), c->error_has) && !ins && !res,
             "%s: %s", c->record, vkft_error_message());
    free(ins);
    free(res);
    cJSON_Delete(r);
  }
}

int main(void) {
  test_scores();
  test_instructions();
  test_templates();
  test_sampling();
  test_turns();
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}
