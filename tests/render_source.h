/* Shared by test_chat_template.c and test_jinja_limits.c: a template's source rendered with a
 * context (NULL: none); *out is malloc'd on success. */
#ifndef VKFT_TESTS_RENDER_SOURCE_H
#define VKFT_TESTS_RENDER_SOURCE_H

#include "vkft/chat_template.h"
#include "vkft/error.h"

#include <stddef.h>

static inline int render_source(const char *source, const cJSON *ctx, char **out) {
  vkft_chat_template *t;
  *out = NULL;
  if (vkft_chat_template_parse(source, "unit", &t)) return VKFT_ERR;
  int rc = vkft_chat_template_render(t, ctx, out, NULL);
  vkft_chat_template_free(t);
  return rc;
}

#endif
