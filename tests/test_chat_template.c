/* Chat template tests: every record of the llama3/qwen3 chat vectors renders byte-identically
 * to transformers (full conversation and prompt-only), expression-language cases whose
 * expected output came from Python Jinja2 3.1 configured like transformers, the built-in
 * templates, error messages, and robustness on truncated/mutated templates. */
#include "vkft/chat_template.h"

#include "check.h"
#include "render_source.h"
#include "vkft/dataset.h"
#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints where two renders part, with some context on both sides. */
static void show_mismatch(const char *what, const char *got, size_t got_len, const char *want,
                          size_t want_len) {
  size_t i = 0;
  while (i < got_len && i < want_len && got[i] == want[i]) i++;
  size_t from = i > 40 ? i - 40 : 0;
  fprintf(stderr, "  %s: first difference at byte %zu (got %zu bytes, want %zu)\n", what, i,
          got_len, want_len);
  fprintf(stderr, "    got:  \"");
  for (size_t k = from; k < got_len && k < i + 40; k++)
    fputc(got[k] == '\n' ? '|' : got[k], stderr);
  fprintf(stderr, "\"\n    want: \"");
  for (size_t k = from; k < want_len && k < i + 40; k++)
    fputc(want[k] == '\n' ? '|' : want[k], stderr);
  fprintf(stderr, "\"   ('|' = newline)\n");
}

/* ---- vectors ---- */

typedef struct vector_file {
  const char *file, *model; /* model: tokenizers/<model> holds tokenizer_config.json */
  int records;              /* expected count, so a truncated file fails */
} vector_file;

static vkft_chat_template *template_for(const char *model, const char *which) {
  char path[1024];
  vkft_chat_template *t = NULL;
  if (strcmp(which, "tokenizer_config.json") == 0)
    snprintf(path, sizeof path, "%s/tokenizers/%s", check_data(), model);
  else
    snprintf(path, sizeof path, "%s/tokenizers/chat_templates/%s", check_data(), which);
  if (vkft_chat_template_load(path, NULL, &t)) {
    fprintf(stderr, "  load %s: %s\n", path, vkft_error_message());
    return NULL;
  }
  return t;
}

/* The context transformers builds: messages, tools (None when absent), documents=None,
 * add_generation_prompt, the special tokens, and the extra kwargs. */
static cJSON *build_context(const cJSON *record, int prompt_only) {
  cJSON *ctx = cJSON_CreateObject();
  const cJSON *messages = cJSON_GetObjectItem(record, "messages");
  cJSON *msgs = cJSON_Duplicate(messages, 1);
  if (prompt_only) cJSON_DeleteItemFromArray(msgs, cJSON_GetArraySize(msgs) - 1);
  cJSON_AddItemToObject(ctx, "messages", msgs);
  const cJSON *tools = cJSON_GetObjectItem(record, "tools");
  cJSON_AddItemToObject(ctx, "tools", tools ? cJSON_Duplicate(tools, 1) : cJSON_CreateNull());
  cJSON_AddNullToObject(ctx, "documents");
  int agp = cJSON_IsTrue(cJSON_GetObjectItem(record, "add_generation_prompt"));
  cJSON_AddBoolToObject(ctx, "add_generation_prompt", prompt_only ? 1 : agp);
  const char *groups[] = {"special_tokens_passed", "kwargs"};
  for (int g = 0; g < 2; g++) {
    const cJSON *obj = cJSON_GetObjectItem(record, groups[g]);
    for (const cJSON *item = obj ? obj->child : NULL; item; item = item->next)
      cJSON_AddItemToObject(ctx, item->string, cJSON_Duplicate(item, 1));
  }
  return ctx;
}

static int render_matches(const vkft_chat_template *t, const cJSON *ctx, const char *want,
                          const char *what) {
  char *got = NULL;
  size_t len = 0;
  if (vkft_chat_template_render(t, ctx, &got, &len)) {
    fprintf(stderr, "  %s: render failed: %s\n", what, vkft_error_message());
    return 0;
  }
  int ok = len == strlen(want) && memcmp(got, want, len) == 0;
  if (!ok) show_mismatch(what, got, len, want, strlen(want));
  free(got);
  return ok;
}

static void test_vectors(const vector_file *vf) {
  char path[1024];
  snprintf(path, sizeof path, "%s/vectors/%s", check_data(), vf->file);
  char *data = NULL; /* stays NULL when the file is missing */
  size_t size = 0;
  CHECKF(vkft_file_read(path, &data, &size) == VKFT_OK, "%s", vkft_error_message());
  if (!data) return;
  int records = 0, renders = 0, renders_ok = 0, prompts = 0, prompts_ok = 0;
  char model_dir[1024];
  snprintf(model_dir, sizeof model_dir, "%s/tokenizers/%s", check_data(), vf->model);
  cJSON *special = NULL;
  CHECKF(vkft_chat_template_special_tokens(model_dir, &special) == VKFT_OK, "%s",
         vkft_error_message());
  for (char *line = data, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    cJSON *record = cJSON_Parse(line);
    if (!record) continue;
    records++;
    const char *id = cJSON_GetObjectItem(record, "id")->valuestring;
    const char *which = cJSON_GetObjectItem(record, "template")->valuestring;
    char what[256];
    snprintf(what, sizeof what, "%s [%s] %s", vf->file, which, id);
    /* the special tokens vkft reads from tokenizer_config.json are what transformers passed */
    CHECKF(cJSON_Compare(special, cJSON_GetObjectItem(record, "special_tokens_passed"), 1),
           "%s: special tokens differ", what);
    vkft_chat_template *t = template_for(vf->model, which);
    CHECKF(t != NULL, "%s: template did not load", what);
    if (t) {
      cJSON *ctx = build_context(record, 0);
      renders++;
      int ok = render_matches(t, ctx, cJSON_GetObjectItem(record, "rendered")->valuestring, what);
      renders_ok += ok;
      CHECKF(ok, "%s: full render differs", what);
      cJSON_Delete(ctx);
      const cJSON *prompt = cJSON_GetObjectItem(record, "prompt_rendered");
      if (cJSON_IsString(prompt)) {
        ctx = build_context(record, 1);
        prompts++;
        snprintf(what, sizeof what, "%s [%s] %s (prompt)", vf->file, which, id);
        ok = render_matches(t, ctx, prompt->valuestring, what);
        prompts_ok += ok;
        CHECKF(ok, "%s: prompt render differs", what);
        cJSON_Delete(ctx);
      }
      vkft_chat_template_free(t);
    }
    cJSON_Delete(record);
  }
  cJSON_Delete(special);
  free(data);
  CHECKF(records == vf->records, "%s: %d records, expected %d", vf->file, records, vf->records);
  printf("%s: %d/%d full renders match, %d/%d prompt renders match\n", vf->file, renders_ok,
         renders, prompts_ok, prompts);
}

/* ---- expression language: expected outputs rendered by Python Jinja2 3.1.6 with
 * transformers' environment settings, against the context below ---- */

static const char unit_context[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
    "\"Hi\"},{\"role\":\"assistant\",\"content\":\" Hello! \"}],\"s\":\"  Hello World  \",\"n\":7,"
    "\"f\":2.5,\"items\":[3,1,2],\"words\":[\"b\",\"A\",\"a\",\"c\"],\"d\":{\"b\":1,\"a\":[1,2,{"
    "\"x\":\"\xc3\xa9\"}],\"c\":null,\"t\":true},\"t\":true,\"nil\":null,\"u\":\"Z\xc3\xbcrich "
    "\xe2\x98\x83 \xf0\x9f\x98\x80\",\"users\":[{\"name\":\"ann\",\"age\":30,\"admin\":true},{"
    "\"name\":\"bob\",\"age\":25,\"admin\":false},{\"name\":\"cy\",\"age\":35}]}";

typedef struct unit_case {
  const char *source, *expected;
} unit_case;

static const unit_case unit_cases[] = {
    /* BEGIN GENERATED CASES */
    {"{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % "
     "3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}",
     "7|9|3.5|3|-4|1|2|1024|0.5"},
    {"{{ 0.1 + 0.2 }}|{{ 1e16 }}|{{ 1.5e-7 }}|{{ 3.0 }}|{{ 10 / 4 }}|{{ 1e300 * 10 }}|{{ 2.5 // 1 "
     "}}|{{ -2.5 % 1 }}|{{ f * 2 }}",
     "0.30000000000000004|1e+16|1.5e-07|3.0|2.5|1e+301|2.0|0.5|5.0"},
    {"{{ 'a' ~ 1 ~ none ~ true ~ f }}|{{ 'ab' * 3 }}|{{ [1] * 2 }}|{{ [1, 2] + [3] }}|{{ 'x' + 'y' "
     "}}",
     "a1NoneTrue2.5|ababab|[1, 1]|[1, 2, 3]|xy"},
    {"{{ [1, 'a', none, true, 2.5, {'k': 'v'}, (1,), ()] }}|{{ {'a': [1, {'b': none}]} }}|{{ "
     "\"it's\" }}|{{ ['it\\'s', \"q\\\"d\", 'n\nl'] }}",
     "[1, 'a', None, True, 2.5, {'k': 'v'}, (1,), ()]|{'a': [1, {'b': None}]}|it's|[\"it's\", "
     "'q\"d', 'n\\nl']"},
    {"{{ none }}|{{ true }}|{{ True }}|{{ False }}|{{ None }}|{{ nil }}|{{ t }}|{{ d }}",
     "None|True|True|False|None|None|True|{'b': 1, 'a': [1, 2, {'x': '\303\251'}], 'c': None, 't': "
     "True}"},
    {"{{ 'tab\there' }}|{{ \"uni\\u00e9\\U0001F600\" }}|{{ 'a' 'b' \"c\" }}|{{ '\\x41\\101' }}|{{ "
     "'back\\\\slash' }}|{{ 'keep\\d' }}",
     "tab\there|uni\303\251\360\237\230\200|abc|AA|back\\slash|keep\\d"},
    {"{{ n > 5 and n < 10 }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'a' < 'b' }}|{{ [1, 2] < [1, 3] "
     "}}|{{ 1 == 1.0 }}|{{ 1 != 'a' }}|{{ true == 1 }}",
     "True|True|False|True|True|True|True|True"},
    {"{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ '' or [] }}|{{ none and 1 }}|{{ not 0 }}|{{ not not 'a' "
     "}}|{{ 'a' if 0 else 'b' }}|{{ 'a' if 1 }}|{{ 'a' if 0 }}|",
     "x|y|[]|None|True|True|b|a||"},
    {"{{ -n }}|{{ +n }}|{{ - -n }}|{{ -f|abs }}|{{ -(3) ** 2 }}|{{ 2 ** 3 ** 2 }}",
     "-7|7|7|2.5|9|64"},
    {"{{ 'b' in 'abc' }}|{{ 2 in items }}|{{ 5 not in items }}|{{ 'a' in d }}|{{ 'zz' in d }}|{{ "
     "'x' in undefined_thing }}",
     "True|True|True|True|False|False"},
    {"{{ messages[0].role }}|{{ messages[0]['content'] }}|{{ messages[-1].content }}|{{ "
     "messages[5] is defined }}|{{ d.a[2].x }}|{{ d['a'].1 }}|{{ items.0 }}",
     "system|Be brief.| Hello! |False|\303\251|2|3"},
    {"{{ items[1:] }}|{{ items[:-1] }}|{{ items[::-1] }}|{{ items[::2] }}|{{ items[5:] }}|{{ "
     "items[-2:] }}|{{ u[1:4] }}|{{ u[::-1] }}|{{ 'hello'[1] }}|{{ u[-1] }}|{{ 'abcdef'[4:1:-1] }}",
     "[1, 2]|[3, 1]|[2, 1, 3]|[3, 2]|[]|[1, 2]|\303\274ri|\360\237\230\200 \342\230\203 "
     "hcir\303\274Z|e|\360\237\230\200|edc"},
    {"{% for m in messages[::-1] %}{{ m.role }},{% endfor %}", "assistant,user,system,"},
    {"{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 "
     "}}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }};{% endfor %}",
     "1/0/3/2/3/True/False;2/1/2/1/3/False/False;3/2/1/0/3/False/True;"},
    {"{% for x in items %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}", "[|1][3|2][1|]"},
    {"{% for x in items if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}",
     "3:1/2 2:2/2 "},
    {"{% for x in [] %}no{% else %}empty{% endfor %}|{% for x in items %}{{ x }}{% else %}never{% "
     "endfor %}",
     "empty|312"},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}{% "
     "endfor %}|{% for k in d %}{{ k }}{% endfor %}",
     "b=1;a=[1, 2, {'x': '\303\251'}];c=None;t=True;|bact|bact"},
    {"{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }},{% endfor %}|{% for (a, b) in [(1, 2)] %}{{ a "
     "}}{{ b }}{% endfor %}",
     "3,7,|12"},
    {"{% for x in items %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% "
     "endif %}{{ x }}{% endfor %}",
     "3"},
    {"{% for x in 'h\303\251llo' %}{{ x }}.{% endfor %}|{% for i in range(3) %}{{ i }}{% endfor "
     "%}|{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}|{% for i in range(5, 0, -2) %}{{ i }}{% "
     "endfor %}",
     "h.\303\251.l.l.o.|012|147|531"},
    {"{% for x in items %}{% for y in 'ab' %}{{ loop.index }}{{ y }}{% endfor %}{{ loop.index }} "
     "{% endfor %}",
     "1a2b1 1a2b2 1a2b3 "},
    {"{% for x in items %}{{ loop.cycle('odd', 'even') }} {% endfor %}", "odd even odd "},
    {"{% set x = 0 %}{% for i in items %}{{ x }}{% set x = i %}{% endfor %}|{{ x }}", "000|0"},
    {"{% for i in items %}{% set inner = i %}{% endfor %}{{ inner is defined }}", "False"},
    {"{% set a = 1 %}{% set b, c = 2, 3 %}{{ a }}{{ b }}{{ c }}|{% set t = 1, 2 %}{{ t }}",
     "123|(1, 2)"},
    {"{% set ns = namespace(count=0, found=false) %}{% for x in items %}{% set ns.count = ns.count "
     "+ x %}{% if x == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ "
     "ns.found }}",
     "6 True"},
    {"{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}|{% set dd = dict(x=1, y='z') "
     "%}{{ dd }}",
     "12|{'x': 1, 'y': 'z'}"},
    {"{% set block %}  inner {{ n }}  {% endset %}[{{ block }}]|{% set up | upper | trim %}  shout "
     "{% endset %}[{{ up }}]",
     "[  inner 7  ]|[SHOUT]"},
    {"{% if true %}{% set leaked = 'yes' %}{% endif %}{{ leaked }}", "yes"},
    {"{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ "
     "greet('Ann') }} {{ greet('Bob', greeting='Hi') }} {{ greet('Cy', 'Yo') }}",
     "Hello, Ann! Hi, Bob! Yo, Cy!"},
    {"{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') "
     "%}bold {{ n }}{% endcall %}",
     "<b>bold 7</b>"},
    {"{% macro m() %}{{ n }}{% endmacro %}{% set n2 = m() %}{{ n2 ~ '!' }}", "7!"},
    {"{% filter upper %}shout {{ s|trim }}{% endfilter %}|{% filter trim | replace('a', 'o') %}  "
     "banana  {% endfilter %}",
     "SHOUT HELLO WORLD|bonono"},
    {"{% raw %}{{ not rendered }} {% if %}{% endraw %}|{%- raw -%}   x   {%- endraw -%}|",
     "{{ not rendered }} {% if %}|x|"},
    {"[{{ s|trim }}]|[{{ 'xxhixx'|trim('x') }}]|{{ s|length }}|{{ u|length }}|{{ items|count }}|{{ "
     "d|length }}|{{ s|upper }}|{{ s|lower }}|{{ 'hELLO wORLD-foo(bar'|title }}|{{ 'hELLO "
     "wORLD'|capitalize }}",
     "[Hello World]|[hi]|15|10|3|4|  HELLO WORLD  |  hello world  |Hello World-Foo(Bar|Hello "
     "world"},
    {"{{ items|join(', ') }}|{{ items|join }}|{{ users|join(', ', attribute='name') }}|{{ "
     "items|first }}|{{ items|last }}|{{ 'abc'|first }}|{{ [] |first is defined }}",
     "3, 1, 2|312|ann, bob, cy|3|2|a|False"},
    {"{{ undefined_thing|default('dflt') }}|{{ ''|default('e', true) }}|{{ ''|d('e') }}|{{ "
     "nil|default('x') }}|{{ 0|default(5, boolean=true) }}",
     "dflt|e||None|5"},
    {"{{ 'abc'|list }}|{{ d|list }}|{{ '42'|int + 1 }}|{{ '3.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(9) "
     "}}|{{ 3.9|int }}|{{ '3.5'|float }}|{{ 'z'|float }}|{{ 2|float }}|{{ ' 12 '|int }}|{{ "
     "'0x1A'|int(0, 16) }}",
     "['a', 'b', 'c']|['b', 'a', 'c', 't']|43|3|0|9|3|3.5|0.0|2.0|12|26"},
    {"{{ 'a-b-c'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'ab'|replace('', '.') "
     "}}|{{ '<a href=\"x\">&\\''|e }}|{{ '<b>'|safe }}|{{ '<i>'|escape }}",
     "a+b+c|bba|.a.b.|&lt;a href=&#34;x&#34;&gt;&amp;&#39;|<b>|&lt;i&gt;"},
    {"{{ users|map(attribute='name')|list }}|{{ users|map(attribute='admin', default='?')|list "
     "}}|{{ ['a','b']|map('upper')|join }}|{{ items|map('string')|join('-') }}",
     "['ann', 'bob', 'cy']|[True, False, '?']|AB|3-1-2"},
    {"{{ users|selectattr('admin')|map(attribute='name')|list }}|{{ "
     "users|rejectattr('admin')|map(attribute='name')|list }}|{{ users|selectattr('age', 'gt', "
     "28)|map(attribute='name')|join }}|{{ users|selectattr('name', 'equalto', 'bob')|list|length "
     "}}",
     "['ann']|['bob', 'cy']|anncy|1"},
    {"{{ items|select('odd')|list }}|{{ items|reject('odd')|list }}|{{ [0, 1, '', 'a', "
     "none]|select|list }}|{{ items|select('divisibleby', 3)|list }}|{{ words|reject('equalto', "
     "'A')|list }}",
     "[3, 1]|[2]|[1, 'a']|[3]|['b', 'a', 'c']"},
    {"{{ words|unique|list }}|{{ words|unique(true)|list }}|{{ words|sort }}|{{ "
     "words|sort(reverse=true) }}|{{ words|sort(case_sensitive=true) }}|{{ "
     "users|sort(attribute='age')|map(attribute='name')|join }}|{{ items|sort }}",
     "['b', 'A', 'c']|['b', 'A', 'a', 'c']|['A', 'a', 'b', 'c']|['c', 'b', 'A', 'a']|['A', 'a', "
     "'b', 'c']|bobanncy|[1, 2, 3]"},
    {"{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.675|round(2) }}|{{ 3|round }}|{{ 2.1|round(0, 'ceil') "
     "}}|{{ 2.9|round(method='floor') }}|{{ -1.5|round }}|{{ 1234.5678|round(2) }}",
     "2.0|4.0|2.67|3|3.0|2.0|-2.0|1234.57"},
    {"[{{ 'a\nb\n\nc'|indent }}]|[{{ 'a\nb\n\nc\n'|indent(2, true) }}]|[{{ 'a\n\nb'|indent(2, "
     "blank=true) }}]|[{{ 'x'|indent('> ', first=true) }}]",
     "[a\n    b\n\n    c]|[  a\n  b\n\n  c\n]|[a\n  \n  b]|[> x]"},
    {"{{ 'Hello, wide world_1 ! \303\251'|wordcount }}|{{ items|reverse|list }}|{{ 'abc'|reverse "
     "}}|{{ items|sum }}|{{ users|sum(attribute='age') }}|{{ items|min }}|{{ items|max }}|{{ "
     "words|max }}|{{ d|dictsort }}|{{ {'b': 2, 'a': 1}|dictsort(by='value', reverse=true) }}",
     "4|[2, 1, 3]|cba|6|90|1|3|c|[('a', [1, 2, {'x': '\303\251'}]), ('b', 1), ('c', None), ('t', "
     "True)]|[('b', 2), ('a', 1)]"},
    {"{{ 42|string ~ 'x' }}|{{ [1, 'a']|string }}|{{ none|string }}|{{ messages[0]|attr('role') "
     "}}|{{ -3|abs }}|{{ -2.5|abs }}",
     "42x|[1, 'a']|None||3|2.5"},
    {"{{ d|tojson }}|{{ items|tojson }}|{{ '\303\251\"\\\\\n\t\\u0001'|tojson }}|{{ [1.0, 2.5, "
     "1e20, -0.0, none, true]|tojson }}|{{ {}|tojson }}|{{ []|tojson }}|{{ {'k': "
     "{}}|tojson(indent=2) }}",
     "{\"b\": 1, \"a\": [1, 2, {\"x\": \"\303\251\"}], \"c\": null, \"t\": true}|[3, 1, "
     "2]|\"\303\251\\\"\\\\\\n\\t\\u0001\"|[1.0, 2.5, 1e+20, -0.0, null, true]|{}|[]|{\n  \"k\": "
     "{}\n}"},
    {"{{ d|tojson(indent=4) }}",
     "{\n    \"b\": 1,\n    \"a\": [\n        1,\n        2,\n        {\n            \"x\": "
     "\"\303\251\"\n        }\n    ],\n    \"c\": null,\n    \"t\": true\n}"},
    {"{{ users|tojson(indent=2) }}|{{ u|tojson }}|{{ u|tojson(ensure_ascii=true) }}|{{ {'b': 1, "
     "'a': 2}|tojson(sort_keys=true) }}|{{ {'a': [1, 2]}|tojson(separators=(',', ':')) }}|{{ {1: "
     "'x'}|tojson }}",
     "[\n  {\n    \"name\": \"ann\",\n    \"age\": 30,\n    \"admin\": true\n  },\n  {\n    "
     "\"name\": \"bob\",\n    \"age\": 25,\n    \"admin\": false\n  },\n  {\n    \"name\": "
     "\"cy\",\n    \"age\": 35\n  }\n]|\"Z\303\274rich \342\230\203 "
     "\360\237\230\200\"|\"Z\\u00fcrich \\u2603 \\ud83d\\ude00\"|{\"a\": 2, \"b\": "
     "1}|{\"a\":[1,2]}|{\"1\": \"x\"}"},
    {"{{ n is defined }}|{{ zz is defined }}|{{ zz is undefined }}|{{ nil is none }}|{{ n is not "
     "none }}|{{ s is string }}|{{ n is string }}|{{ d is mapping }}|{{ items is mapping }}|{{ s "
     "is iterable }}|{{ n is iterable }}|{{ d is sequence }}",
     "True|False|True|True|True|True|False|True|False|True|False|True"},
    {"{{ n is number }}|{{ f is number }}|{{ t is number }}|{{ n is integer }}|{{ f is integer "
     "}}|{{ t is integer }}|{{ f is float }}|{{ t is boolean }}|{{ n is boolean }}|{{ t is true "
     "}}|{{ 1 is true }}|{{ false is false }}|{{ 0 is false }}",
     "True|True|True|True|False|False|True|True|False|True|False|True|False"},
    {"{{ n is odd }}|{{ n is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(4) }}|{{ 'a' is "
     "equalto 'a' }}|{{ 'a' is eq('b') }}|{{ 3 is gt 2 }}|{{ 2 is le 1 }}|{{ 'b' is in 'abc' }}|{{ "
     "greet is callable }}|{{ range is callable }}|{{ 'abc' is lower }}|{{ 'Abc' is upper }}",
     "True|False|True|False|True|False|True|False|True|True|True|True|False"},
    {"{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ "
     "'\n\nhi\n'.lstrip('\n') }}|{{ 'hi\n\n'.rstrip('\n') }}|{{ s.upper() }}|{{ s.lower() }}|{{ "
     "'hello wORLD 2nd'.title() }}|{{ 'hELLO'.capitalize() }}",
     "Hello World|Hello World  |  Hello World|hi|hi\n|hi|  HELLO WORLD  |  hello world  |Hello "
     "World 2Nd|Hello"},
    {"{{ 'a b  c '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ '  a b c  "
     "'.split(none, 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ "
     "'x</think>y</think>z'.split('</think>')[-1] }}|{{ ''.split() }}|{{ ''.split(',') }}",
     "['a', 'b', 'c']|['a', 'b', '', 'c']|['a', 'b,c']|['a', 'b c  ']|['a,b', 'c']|z|[]|['']"},
    {"{{ s.startswith('  He') }}|{{ s.endswith(' ') }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ "
     "'abc'.find('c') }}|{{ 'abc'.find('z') }}|{{ 'h\303\251llo'.find('l') }}|{{ "
     "'a-b-c'.replace('-', '') }}|{{ 'a-b-c'.replace('-', '', 1) }}|{{ 'aXbXc'.count('X') }}",
     "True|True|True|2|-1|2|abc|ab-c|2"},
    {"{{ '{} and {}'.format(1, 'two') }}|{{ '{0}{0}{1}'.format('a', 'b') }}|{{ '{x}!'.format(x=5) "
     "}}|{{ ', '.join(['a', 'b']) }}|{{ '12'.isdigit() }}|{{ 'a1'.isalpha() }}|{{ '  '.isspace() "
     "}}",
     "1 and two|aab|5!|a, b|True|False|True"},
    {"{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items()|list }}|{{ d.get('b') }}|{{ "
     "d.get('zz') }}|{{ d.get('zz', 'dflt') }}|{{ d.get('c') is none }}|{{ items.index(1) }}|{{ "
     "[1, 1, 2].count(1) }}",
     "['b', 'a', 'c', 't']|[1, [1, 2, {'x': '\303\251'}], None, True]|[('b', 1), ('a', [1, 2, "
     "{'x': '\303\251'}]), ('c', None), ('t', True)]|1|None|dflt|True|1|2"},
    {"a  {{- ' b ' -}}  c|  {%- if true %} x {% endif -%}  |", "a b c| x |"},
    {"line1\n    {% if true %}\n    inside\n    {% endif %}\nline2", "line1\n    inside\nline2"},
    {"    {%+ if true %}kept{% endif %}|\n{% if true +%}\nnewline kept{% endif %}",
     "    kept|\n\nnewline kept"},
    {"{# comment #}x{#- trimmed -#}  y\n  {# own line #}\nz", "xy\nz"},
    {"{% for x in items -%}\n  {{ x }}\n{%- endfor %}|", "312|"},
    {"{% if true %}\n\n{% endif %}two\n   {{ 'var keeps indent' }}\n\ttab{% if true %}{% endif %}",
     "\ntwo\n   var keeps indent\n\ttab"},
    {"a\n  {% set q = 1 %}  \nb|{{ q }}", "a\n  \nb|1"},
    {"{%- for m in messages %}\n    {{- m.role }}:{{ m.content|trim }}\n{%- endfor %}\n",
     "system:Be brief.user:Hiassistant:Hello!"},
    {"{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %A %B %j %-d %H:%M') }}",
     "26 Jul 2024|2024-07-26 Friday July 208 26 00:00"},
    {"{{ messages|length - 1 }}|{{ (messages|length - 1) * 2 }}|{{ messages|selectattr('role', "
     "'equalto', 'user')|list|length }}|{{ messages[0].role|upper }}",
     "2|4|1|SYSTEM"},
    {"{{ messages[1].missing is defined }}|{{ messages[1].missing|default('none!') }}|{{ "
     "messages[1]['missing'] is none }}|{{ (nil)['x'] is defined }}",
     "False|none!|False|False"},
    {"{%- set content = messages[2].content %}{%- if '!' in content %}{{ "
     "content.split('!')[0].lstrip() }}{%- endif %}",
     "Hello"},
    {"{{ 'x' if messages[0].role == 'system' else 'y' }}{{ "
     "messages|map(attribute='role')|join('/') }}",
     "xsystem/user/assistant"},
    {"{% if n == 7 %}seven{% elif n == 8 %}eight{% else %}other{% endif %}|{% if n == 8 %}8{% elif "
     "n > 5 %}big{% endif %}|{% if 0 %}a{% elif 0 %}b{% else %}c{% endif %}",
     "seven|big|c"},
    {"{{ {'a': {'b': 1}} }}|{% set x = {'a': {'b': [1, {}]}} %}{{ x.a.b|tojson }}|{{ 'a' ~ (1, 2) "
     "}}|{{ 5 if true else 6 if false }}|{{ (1 if false else 2) + 1 }}",
     "{'a': {'b': 1}}|[1, {}]|a(1, 2)|5|3"},
    {"{%- set ns = namespace(last=-1) %}{%- for m in messages[::-1] %}{%- set idx = "
     "(messages|length - 1) - loop.index0 %}{%- if ns.last == -1 and m.role == 'user' %}{%- set "
     "ns.last = idx %}{%- endif %}{%- endfor %}{{ ns.last }}",
     "1"},
    /* END GENERATED CASES */
};

static void test_units(void) {
  cJSON *ctx = cJSON_Parse(unit_context);
  CHECK(ctx != NULL);
  int ok_count = 0, total = (int)(sizeof unit_cases / sizeof unit_cases[0]);
  for (int i = 0; i < total; i++) {
    char *got;
    const unit_case *c = &unit_cases[i];
    if (render_source(c->source, ctx, &got)) {
      CHECKF(0, "case %d %s: %s", i, c->source, vkft_error_message());
      continue;
    }
    int ok = strcmp(got, c->expected) == 0;
    if (!ok) show_mismatch(c->source, got, strlen(got), c->expected, strlen(c->expected));
    CHECKF(ok, "case %d differs", i);
    ok_count += ok;
    free(got);
  }
  printf("expression cases: %d/%d match Jinja2\n", ok_count, total);
  cJSON_Delete(ctx);
}

/* ---- errors name the construct and the line ---- */

typedef struct error_case {
  const char *source;
  const char *want[2]; /* substrings of the message */
} error_case;

static const error_case error_cases[] = {
    {"line one\n{{ x | nofilter }}", {"unit:2:", "unknown filter 'nofilter'"}},
    {"{% if true %}\n\n{{ 1 is notatest }}{% endif %}", {"unit:3:", "unknown test 'notatest'"}},
    {"{% for x in y %}\nabc\n", {"line 1", "'endfor'"}},
    {"{% if x %}{% for a in b %}{% endif %}", {"unit:1:", "unexpected 'endif'"}},
    {"{{ raise_exception('Bad role: ' ~ 'tool') }}", {"unit:1:", "Bad role: tool"}},
    {"\n{% do x.append(1) %}", {"unit:2:", "unknown statement 'do'"}},
    {"{{ 'abc'.zfill(5) }}", {"unit:1:", "unsupported method 'str.zfill'"}},
    {"{{ nothing.attr }}", {"unit:1:", "'nothing' is undefined"}},
    {"{{ 1 + 'a' }}", {"unit:1:", "unsupported operand type(s) for +: 'int' and 'str'"}},
    {"{{ none + 1 }}", {"unit:1:", "'NoneType' and 'int'"}},
    {"{{ 1 + }}", {"unit:1:", "unexpected '}}'"}},
    {"{{ 'abc }}", {"unit:1:", "unterminated string"}},
    {"{# never closed", {"unit:1:", "missing end of comment"}},
    {"{% break %}", {"unit:1:", "'break' outside of a for loop"}},
    {"{{ [1, 2][::0] }}", {"unit:1:", "slice step cannot be zero"}},
    {"{{ 1 // 0 }}", {"unit:1:", "by zero"}},
    {"{{ 'a' < 1 }}", {"unit:1:", "'<' not supported"}},
    {"{{ x }", {"unit:1:", "unexpected '}'"}},
    {"{{ x ", {"unit:1:", "'}}' missing"}},
    {"{% set ns = 1 %}{% set ns.a = 2 %}", {"unit:1:", "non-namespace"}},
    {"{% for a, b in [1] %}{% endfor %}", {"unit:1:", "not iterable"}},
    {"{{ strftime_now('%Q') }}", {"unit:1:", "%Q"}},
    {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {"unit:1:", "macro 'm'"}},
    {"{{ range(10**9)|length }}", {"unit:1:", "range()"}},
};

static void test_errors(void) {
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
    const error_case *c = &error_cases[i];
    char *got;
    vkft_error_clear();
    int rc = render_source(c->source, NULL, &got);
    CHECKF(rc == VKFT_ERR, "error case %zu (%s) rendered \"%s\"", i, c->source, got ? got : "");
    if (rc != VKFT_ERR) {
      free(got);
      continue;
    }
    const char *msg = vkft_error_message();
    for (int k = 0; k < 2; k++)
      CHECKF(strstr(msg, c->want[k]) != NULL, "error case %zu: message \"%s\" lacks \"%s\"", i, msg,
             c->want[k]);
  }
}

/* ---- built-in templates ---- */

typedef struct builtin_case {
  const char *name;
  int any_role;           /* chatml and llama3 pass every role through (tool, ipython, ...) */
  const char *markers[3]; /* must appear in the render of the conversation below */
} builtin_case;

static const builtin_case builtin_cases[] = {
    {"chatml",
     1,
     {"<|im_start|>system\nBe brief.<|im_end|>\n", "<|im_start|>user\nHi<|im_end|>\n",
      "<|im_start|>assistant\nHello!<|im_end|>\n"}},
    {"llama2",
     0,
     {"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", " Hello! </s>",
      "<s>[INST] Again [/INST]"}},
    {"llama3",
     1,
     {"<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>",
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"}},
    {"mistral-v1",
     0,
     {"<s> [INST] Be brief.\n\nHi [/INST]", " Hello!</s>", " [INST] Again [/INST]"}},
    {"mistral-v3", 0, {"<s>[INST] Be brief.\n\nHi[/INST]", " Hello!</s>", "[INST] Again[/INST]"}},
    {"gemma",
     0,
     {"<s><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n",
      "<start_of_turn>model\nHello!<end_of_turn>\n", "<start_of_turn>user\nAgain<end_of_turn>\n"}},
    {"zephyr",
     0,
     {"<|system|>\nBe brief.</s>\n", "<|user|>\nHi</s>\n", "<|assistant|>\nHello!</s>\n"}},
    {"phi3",
     0,
     {"<|system|>\nBe brief.<|end|>\n", "<|user|>\nHi<|end|>\n", "<|assistant|>\nHello!<|end|>\n"}},
    {"alpaca",
     0,
     {"Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n",
      "### Instruction:\nAgain\n\n### Response:\n", "Fine.</s>"}},
};

static const char builtin_conversation[] =
    "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"add_generation_prompt\":false,\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello!\"},{\"role\":\"user\",\"content\":\"Again\"},"
    "{\"role\":\"assistant\",\"content\":\"Fine.\"}]}";

static void test_builtins(void) {
  const char *const *names = vkft_chat_template_builtin_names();
  int count = 0;
  for (; names[count]; count++) CHECK(vkft_chat_template_builtin(names[count]) != NULL);
  CHECK(count == (int)(sizeof builtin_cases / sizeof builtin_cases[0]));
  CHECK(vkft_chat_template_builtin("no-such-template") == NULL);
  for (size_t i = 0; i < sizeof builtin_cases / sizeof builtin_cases[0]; i++) {
    const builtin_case *c = &builtin_cases[i];
    vkft_chat_template *t = NULL;
    const char *source = vkft_chat_template_builtin(c->name);
    CHECKF(source && vkft_chat_template_parse(source, c->name, &t) == VKFT_OK, "%s: %s", c->name,
           vkft_error_message());
    if (!t) continue;
    cJSON *ctx = cJSON_Parse(builtin_conversation);
    char *full = NULL, *prompt = NULL;
    CHECKF(vkft_chat_template_render(t, ctx, &full, NULL) == VKFT_OK, "%s: %s", c->name,
           vkft_error_message());
    for (int k = 0; full && k < 3; k++)
      CHECKF(strstr(full, c->markers[k]) != NULL, "%s: render lacks \"%s\":\n%s", c->name,
             c->markers[k], full);
    /* prompt (messages[:-1] + generation prompt) must be a prefix of the full render, so the
     * assistant-only loss mask can be cut at its length */
    cJSON *msgs = cJSON_GetObjectItem(ctx, "messages");
    cJSON_DeleteItemFromArray(msgs, cJSON_GetArraySize(msgs) - 1);
    cJSON_ReplaceItemInObject(ctx, "add_generation_prompt", cJSON_CreateTrue());
    CHECKF(vkft_chat_template_render(t, ctx, &prompt, NULL) == VKFT_OK, "%s: %s", c->name,
           vkft_error_message());
    if (full && prompt)
      CHECKF(strncmp(full, prompt, strlen(prompt)) == 0 && strlen(prompt) < strlen(full),
             "%s: prompt render is not a prefix:\n%s\n---\n%s", c->name, prompt, full);
    free(full);
    free(prompt);
    /* an unknown role is an error, not a silent drop */
    cJSON_AddItemToArray(msgs, cJSON_Parse("{\"role\":\"narrator\",\"content\":\"x\"}"));
    char *bad = NULL;
    int rc = vkft_chat_template_render(t, ctx, &bad, NULL);
    if (!c->any_role)
      CHECKF(rc == VKFT_ERR && vkft_error_code() == VKFT_ERR_INPUT &&
                 strstr(vkft_error_message(), "narrator"),
             "%s: unknown role accepted (%s)", c->name, vkft_error_message());
    else
      CHECKF(rc == VKFT_OK && strstr(bad, "narrator"), "%s: role not passed through", c->name);
    free(bad);
    cJSON_Delete(ctx);
    vkft_chat_template_free(t);
  }
}

/* ---- the data loader: a template that fails for every record is reported once ---- */

static void write_text(const char *path, const char *text) {
  FILE *f = vkft_fopen(path, "wb");
  CHECKF(f != NULL, "cannot write %s", path);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void test_data_errors(void) {
  const char *templates[] = {"{{ raise_exception('no ' ~ 'way') }}",
                             "{% for i in range(10000000) %}{% endfor %}x"};
  const char *wants[] = {"raise_exception: no way", "too long"};
  enum { RECORDS = 40 };
  char *records = malloc(RECORDS * 100 + 1);
  records[0] = 0;
  for (int i = 0; i < RECORDS; i++)
    strcat(records, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                    "{\"role\":\"assistant\",\"content\":\"a\"}]}\n");
  write_text("test_chat_template_records.jsonl", records);
  free(records);
  for (int k = 0; k < 2; k++) {
    write_text("test_chat_template_fails.jinja", templates[k]);
    vkft_data_file_desc file = {.path = "test_chat_template_records.jsonl"};
    vkft_dataset_desc d = {.model_dir = check_path("tokenizers/qwen3"),
                           .files = &file,
                           .n_files = 1,
                           .template_name = "test_chat_template_fails.jinja"};
    vkft_dataset *ds = NULL;
    CHECKF(vkft_dataset_load(&d, &ds) == VKFT_OK, "%s", vkft_error_message());
    if (!ds) continue;
    CHECKF(ds->n_bad == RECORDS && ds->n_issues_total == RECORDS, "%zu bad, %zu issues", ds->n_bad,
           ds->n_issues_total);
    CHECKF(ds->n_issues == 1, "%zu lines reported for one error", ds->n_issues);
    if (ds->n_issues) {
      CHECKF(strstr(ds->issues[0], wants[k]) && strstr(ds->issues[0], "and 39 more records"), "%s",
             ds->issues[0]);
      printf("data: %s\n", ds->issues[0]);
    }
    vkft_dataset_free(ds);
  }
  remove("test_chat_template_records.jsonl");
  remove("test_chat_template_fails.jinja");
}

/* ---- loading ---- */

static void test_loading(void) {
  vkft_chat_template *t = NULL;
  CHECK_ERR(vkft_chat_template_load(check_path("tokenizers/mistral"), NULL, &t), VKFT_ERR_INPUT,
            "chat_template");
  CHECK(vkft_chat_template_load(check_path("tokenizers/qwen3"), "tool_use", &t) == VKFT_ERR);
  CHECK(vkft_chat_template_load(check_path("tokenizers/llama3"), NULL, &t) == VKFT_OK);
  CHECK(t && strstr(vkft_chat_template_source(t), "<|start_header_id|>") != NULL);
  vkft_chat_template_free(t);
  /* strftime_now uses the fixed date, never the clock */
  cJSON *ctx = cJSON_CreateObject();
  char *out = NULL;
  CHECK(vkft_chat_template_parse("{{ strftime_now('%d %B %Y, %a') }}", "date", &t) == VKFT_OK);
  vkft_chat_template_options opt = {.year = 2025, .month = 3, .day = 1};
  CHECK(vkft_chat_template_render_opts(t, ctx, &opt, &out, NULL) == VKFT_OK);
  CHECKF(out && strcmp(out, "01 March 2025, Sat") == 0, "got %s", out ? out : "(null)");
  free(out);
  CHECK(vkft_chat_template_render(t, NULL, &out, NULL) == VKFT_OK);
  CHECKF(out && strcmp(out, "26 July 2024, Fri") == 0, "got %s", out ? out : "(null)");
  free(out);
  vkft_chat_template_free(t);
  cJSON_Delete(ctx);
}

/* The context every command renders with: tools/documents None when absent (a template that
 * loops over them fails as in transformers), kwargs over special tokens, messages and
 * add_generation_prompt not overridable; and the date option. */
static void test_context(void) {
  cJSON *messages = cJSON_Parse("[{\"role\":\"user\",\"content\":\"hi\"}]");
  cJSON *special = cJSON_Parse("{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}");
  cJSON *kwargs = cJSON_Parse("{\"eos_token\":\"<E>\",\"messages\":5,\"enable_thinking\":false,"
                              "\"add_generation_prompt\":false}");
  vkft_chat_inputs in = {.messages = messages,
                         .add_generation_prompt = 1,
                         .special_tokens = special,
                         .kwargs = kwargs};
  cJSON *ctx = NULL;
  CHECK(vkft_chat_template_context(&in, &ctx) == VKFT_OK);
  vkft_chat_template *t;
  CHECK(vkft_chat_template_parse("{{ tools is none }} {{ documents is none }} {{ bos_token }}"
                                 "{{ eos_token }} {{ messages|length }} {{ enable_thinking }} "
                                 "{{ add_generation_prompt }}",
                                 "ctx", &t) == VKFT_OK);
  char *out = NULL;
  CHECK(vkft_chat_template_render(t, ctx, &out, NULL) == VKFT_OK);
  CHECKF(out && strcmp(out, "True True <s><E> 1 False True") == 0, "got %s", out ? out : "");
  free(out);
  vkft_chat_template_free(t);
  CHECK(vkft_chat_template_parse("{% for t in tools %}{% endfor %}", "loop", &t) == VKFT_OK);
  CHECK_ERR(vkft_chat_template_render(t, ctx, &out, NULL), VKFT_ERR_INPUT,
            "'NoneType' object is not iterable");
  vkft_chat_template_free(t);
  cJSON_Delete(ctx);
  in.tools = special; /* not a list */
  CHECK(vkft_chat_template_context(&in, &ctx) == VKFT_ERR && ctx == NULL);
  cJSON_Delete(messages);
  cJSON_Delete(special);
  cJSON_Delete(kwargs);
  vkft_chat_template_options o = {0};
  CHECK(vkft_chat_template_parse_date("2024-02-29", &o) == VKFT_OK && o.day == 29);
  CHECK(vkft_chat_template_parse_date("2025-02-29", &o) == VKFT_ERR);
  CHECK(vkft_chat_template_parse_date("2025-1-5x", &o) == VKFT_ERR);
}

int main(void) {
  static const vector_file files[] = {{"llama3.chat.jsonl", "llama3", 23},
                                      {"qwen3.chat.jsonl", "qwen3", 27}};
  if (!check_need_data("chat templates")) return check_summary();
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) test_vectors(&files[i]);
  test_units();
  test_errors();
  test_builtins();
  test_loading();
  test_context();
  test_data_errors();
  return check_summary();
}
