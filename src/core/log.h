/* log: leveled, one line per event, to stderr.
 * The level is set once at start-up, before any worker runs, and only read after that. */
#ifndef WEFT_CORE_LOG_H
#define WEFT_CORE_LOG_H

#include "core/config.h"

void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
