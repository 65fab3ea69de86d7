/* YAML training configs (src/train/config_yaml.c): a YAML document becomes the same cJSON tree a
 * JSON config parses to, so src/train/config.c applies both with the same checks and messages;
 * the tree's values remember their line so those messages can name it. */
#ifndef VKFT_TRAIN_CONFIG_YAML_H
#define VKFT_TRAIN_CONFIG_YAML_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The line of each mapping value (the line of its key) and sequence item of the tree. */
typedef struct config_lines {
  const cJSON **items;
  int *lines;
  size_t count, cap;
} config_lines;

/* 1 when the config file is YAML: a .yaml/.yml name, or (another name) text that does not start
 * with '{' (after a byte-order mark and blanks). */
int config_is_yaml(const char *path, const char *text, size_t size);

/* Parses one YAML document (YAML 1.2 core schema: mappings -> objects, sequences -> arrays,
 * plain scalars -> null/bool/number/string, quoted and block scalars -> strings). Errors read
 * "path:LINE: ...". On success *root is the tree and lines maps its values to lines. */
int config_yaml_parse(const char *path, const char *text, size_t size, cJSON **root,
                      config_lines *lines);

/* The line of an item of the tree, 0 when unknown (lines may be NULL: a JSON config). */
int config_lines_find(const config_lines *lines, const cJSON *item);
void config_lines_free(config_lines *lines);

#endif
