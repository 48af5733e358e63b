/* config_value: the strict value parsers behind config.c's option table (addresses, sizes and
 * durations are public in config.h; these are the rest). Private to the config module. */
#ifndef WEFT_CORE_CONFIG_VALUE_H
#define WEFT_CORE_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

#define MAX_WEIGHT 256

/* Decimal digits only, no sign or junk, overflow detected. 0 or -1. */
int config_parse_uint(const char *s, unsigned long long *out);
/* "HOST:PORT[,weight=W]". 0 or -1. */
int config_parse_backend(const char *s, struct config_backend *out);
/* String options' checks: 0, or -1 with "must be ..." in why. */
int config_check_dir(const char *v, char *why, size_t whylen);
int config_check_redis(const char *v, char *why, size_t whylen);
int config_check_header(const char *v, char *why, size_t whylen);
/* "http(s)://host[:port]" with no path. */
int config_origin_ok(const char *v);

#endif
