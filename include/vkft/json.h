/* JSON helpers over cJSON: printing the way Python's json.dumps(indent=2, sort_keys=True)
 * does, so files that Python tools write (PEFT's adapter_config.json) come out the same. */
#ifndef VKFT_JSON_H
#define VKFT_JSON_H

#include <cjson/cJSON.h>

/* A number printed as Python's repr of a float (0.0, 0.05, 1e-05); plain cJSON numbers that
 * are integral print as Python ints. */
cJSON *vkft_json_float(double value);
/* Pretty-prints like json.dumps(item, indent=2, sort_keys=True) (ASCII-only, \\u escapes);
 * malloc'd, no trailing newline. */
char *vkft_json_print_python(const cJSON *item);

/* Reads and parses a JSON file; NULL with a message naming the file on failure. */
cJSON *vkft_json_read_file(const char *path);

/* Writes vkft_json_print_python(item) and a newline to path atomically. */
int vkft_json_write_file(const char *path, const cJSON *item);

#endif
