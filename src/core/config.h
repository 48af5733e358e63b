/* config: weft's settings, from defaults, then a libconfig file, then command-line flags.
 *
 * Every setting has one entry in a table (config.c) that gives its config-file key, its flag, its
 * type, its default and its limits; the file reader, the flag parser, `weft help serve` and
 * `weft config check` all walk that one table. The result is validated once and then read-only:
 * workers share it without locks. */
#ifndef WEFT_CORE_CONFIG_H
#define WEFT_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum service_id { SVC_HTTP, SVC_ECHO, SVC_CHAT, SVC_BALANCER, SVC_ADMIN, SVC_COUNT };

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum io_backend { IO_EPOLL, IO_URING };
enum http_model { MODEL_ASYNC, MODEL_THREADED, MODEL_BLOCKING };
enum slow_policy { SLOW_CLOSE, SLOW_DROP };
enum balancer_mode { BAL_HTTP, BAL_TCP };
enum strategy { STRAT_ROUND_ROBIN, STRAT_LEAST_CONN, STRAT_RANDOM2, STRAT_HASH };

#define CONFIG_MAX_BACKENDS 64
#define CONFIG_MAX_ORIGINS 16

/* A listening address: "HOST:PORT", "[V6]:PORT", or "off" (enabled == 0). Port 0 is ephemeral. */
struct config_addr {
    int enabled;
    char host[64];
    uint16_t port;
};

struct config_backend {
    char host[64];
    uint16_t port;
    int weight;
};

struct config {
    struct config_addr listen[SVC_COUNT];
    int workers;             /* event-loop threads; default: CPUs */
    int max_connections;     /* per service */
    int blocking_threads;    /* the blocking-task pool */
    double shutdown_timeout; /* seconds */
    enum log_level log_level;
    enum io_backend io;  /* the workers' poller */
    double defer_accept; /* seconds; 0: off (TCP_DEFER_ACCEPT on the HTTP-speaking listeners) */

    /* http */
    enum http_model model;
    char access_log[256];     /* "" off, "-" stdout, else a file */
    char static_dir[256];     /* "" off */
    size_t http_max_head;     /* bytes */
    size_t http_max_body;     /* bytes */
    double http_head_timeout; /* seconds */
    double http_keepalive_timeout;

    /* chat */
    char chat_origin[CONFIG_MAX_ORIGINS][128];
    int chat_origin_count; /* 0: any origin */
    size_t chat_max_message;
    int chat_max_rooms;
    int chat_max_clients_per_room;
    size_t chat_max_queue;
    enum slow_policy chat_slow_policy;
    char redis[256]; /* "" off, else redis://HOST:PORT */

    /* balancer */
    struct config_backend backends[CONFIG_MAX_BACKENDS];
    int backend_count; /* 0: the http service */
    enum strategy strategy;
    char hash_header[64];
    double health_interval;
    enum balancer_mode balancer_mode;
};

extern const char *const service_names[SVC_COUNT]; /* "http", "echo", ... */

/* Fills cfg with the defaults of SPEC. */
void config_defaults(struct config *cfg);

/* Reads a libconfig file over cfg. On error returns -1 and writes "FILE:LINE: message" (naming
 * the key) into err; every error found is reported, one per line. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Applies `weft serve` flags (argv[0] is the first flag) over cfg; "--config FILE" is read first
 * wherever it stands. On error returns -1 with a one-line message naming the flag in err. */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Checks cross-field rules (e.g. no two services on one address). 0 or -1 with a message. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* Writes the option list (flags, meaning, default) for `weft help serve`. */
void config_print_help(void *stream);

/* Parses "HOST:PORT", "[V6]:PORT", ":PORT" (127.0.0.1) or "off". 0 on success, -1 on error. */
int config_parse_addr(const char *s, struct config_addr *out);

/* "64K", "1M", "1MiB", "512" -> bytes; -1 on error. */
int config_parse_size(const char *s, size_t *out);

/* "10", "10s", "500ms", "1.5" (seconds) -> seconds; -1 on error. */
int config_parse_duration(const char *s, double *out);

#endif
