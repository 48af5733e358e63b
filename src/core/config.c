/* config: one table of options (below) drives the defaults, the libconfig file reader, the flag
 * parser and the help text, so a setting cannot exist in one of them and be missing from another.
 */
#include "core/config.h"
#include "core/config_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const service_names[SVC_COUNT] = {"http", "echo", "chat", "balancer", "admin"};

/* Enum fields are written through an int pointer; that needs them to be int-sized. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum http_model) == sizeof(int), "enum size");
_Static_assert(sizeof(enum io_backend) == sizeof(int), "enum size");
_Static_assert(sizeof(enum slow_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum balancer_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum strategy) == sizeof(int), "enum size");

#define MAX_WORKERS 256

enum opt_type { T_ADDR, T_INT, T_SIZE, T_DURATION, T_ENUM, T_STRING, T_BACKENDS, T_ORIGINS };

/* Checks a string option's value beyond its length; on error writes why ("must be ...") and
 * returns -1. The empty string means "off" and is not passed to it. */
typedef int (*opt_check_fn)(const char *value, char *why, size_t whylen);

struct opt {
    const char *key;  /* config-file key */
    const char *flag; /* "--" + key with '_' -> '-' (checked in config_defaults) */
    enum opt_type type;
    size_t offset;            /* into struct config */
    size_t size;              /* T_STRING: capacity of the field */
    double min, max;          /* T_INT, T_SIZE (bytes), T_DURATION (seconds) */
    const char *const *names; /* T_ENUM: value names in enum order, NULL-terminated */
    const char *def;          /* default as text; NULL: computed (workers) */
    const char *arg;          /* value form in the help; NULL: from the type */
    const char *help;
    opt_check_fn check; /* T_STRING only, optional */
};

static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const model_names[] = {"async", "threaded", "blocking", NULL};
static const char *const io_names[] = {"epoll", "uring", NULL};
static const char *const slow_names[] = {"close", "drop", NULL};
static const char *const strategy_names[] = {"round_robin", "least_conn", "random2", "hash", NULL};
static const char *const bal_mode_names[] = {"http", "tcp", NULL};

#define OFF(field) offsetof(struct config, field)
#define FIELD_SIZE(field) sizeof(((struct config *)0)->field)
#define KIB 1024.0
#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)

/* clang-format off */
/* Row builders, one per type, so that each row reads: key, flag, field, limits, default, help. */
#define ADDR(k, f, svc, d, h) \
    {.key = k, .flag = f, .type = T_ADDR, .offset = OFF(listen[svc]), .def = d, .help = h}
#define NUM(k, f, t, fld, lo, hi, d, h) \
    {.key = k, .flag = f, .type = t, .offset = OFF(fld), .min = lo, .max = hi, .def = d, .help = h}
#define ENUM(k, f, fld, nm, d, h) \
    {.key = k, .flag = f, .type = T_ENUM, .offset = OFF(fld), .names = nm, .def = d, .help = h}
#define STR(k, f, fld, a, h, chk) \
    {.key = k, .flag = f, .type = T_STRING, .offset = OFF(fld), .size = FIELD_SIZE(fld), \
     .def = "", .arg = a, .help = h, .check = chk}
#define LIST(k, f, t, fld, h) \
    {.key = k, .flag = f, .type = t, .offset = OFF(fld), .def = "", .help = h}

static const struct opt opts[] = {
    ADDR("http", "--http", SVC_HTTP, "127.0.0.1:8080", "HTTP service address, or off"),
    ADDR("echo", "--echo", SVC_ECHO, "127.0.0.1:8081", "echo service address, or off"),
    ADDR("chat", "--chat", SVC_CHAT, "127.0.0.1:8082", "chat (WebSocket) service address, or off"),
    ADDR("balancer", "--balancer", SVC_BALANCER, "127.0.0.1:8083", "load balancer address, or off"),
    ADDR("admin", "--admin", SVC_ADMIN, "127.0.0.1:9090",
         "admin (metrics, dashboard) address, or off"),
    NUM("workers", "--workers", T_INT, workers, 1, MAX_WORKERS, NULL, "event-loop threads"),
    NUM("max_connections", "--max-connections", T_INT, max_connections, 1, 1000000, "10000",
        "open connections per service; past it, 503 or close"),
    NUM("blocking_threads", "--blocking-threads", T_INT, blocking_threads, 1, 1024, "16",
        "threads of the blocking-task pool"),
    NUM("shutdown_timeout", "--shutdown-timeout", T_DURATION, shutdown_timeout, 0, 3600, "10s",
        "time given to in-flight requests on SIGTERM"),
    ENUM("log_level", "--log-level", log_level, log_level_names, "info",
         "least severe message logged"),
    ENUM("io", "--io", io, io_names, "epoll",
         "I/O backend of the workers: epoll, or io_uring (batched system calls)"),
    NUM("defer_accept", "--defer-accept", T_DURATION, defer_accept, 0, 600, "1s",
        "http, chat, admin: a connection reaches weft with its first bytes (or after this long); 0: off"),
    ENUM("model", "--model", model, model_names, "async", "concurrency model of the http service"),
    STR("access_log", "--access-log", access_log, "FILE|-",
        "one line per HTTP request to FILE, or - for stdout (default: off)", NULL),
    STR("static", "--static", static_dir, "DIR",
        "serve files under DIR at /static/ (default: off)", config_check_dir),
    NUM("http_max_head", "--http-max-head", T_SIZE, http_max_head, KIB, MIB, "8KiB",
        "largest request head; past it, 431 or 414"),
    NUM("http_max_body", "--http-max-body", T_SIZE, http_max_body, 0, GIB, "1MiB",
        "largest request body; past it, 413"),
    NUM("http_head_timeout", "--http-head-timeout", T_DURATION, http_head_timeout, 0.001, 3600,
        "10s", "time to receive a request head; past it, 408"),
    NUM("http_keepalive_timeout", "--http-keepalive-timeout", T_DURATION, http_keepalive_timeout,
        0.001, 3600, "60s", "idle time before a keep-alive connection is closed"),
    LIST("chat_origin", "--chat-origin", T_ORIGINS, chat_origin,
         "allowed WebSocket Origin, repeatable (default: any)"),
    NUM("chat_max_message", "--chat-max-message", T_SIZE, chat_max_message, 125, 64 * MIB, "64KiB",
        "largest chat message; past it, close 1009"),
    NUM("chat_max_rooms", "--chat-max-rooms", T_INT, chat_max_rooms, 1, 1000000, "1000",
        "rooms open at once"),
    NUM("chat_max_clients_per_room", "--chat-max-clients-per-room", T_INT,
        chat_max_clients_per_room, 1, 1000000, "10000", "members of one room"),
    NUM("chat_max_queue", "--chat-max-queue", T_SIZE, chat_max_queue, KIB, GIB, "4MiB",
        "unsent bytes per chat client before the slow policy applies"),
    ENUM("chat_slow_policy", "--chat-slow-policy", chat_slow_policy, slow_names, "close",
         "slow client: close it (1008) or drop its messages"),
    STR("redis", "--redis", redis, "redis://HOST:PORT",
        "share chat rooms through this Redis (default: off)", config_check_redis),
    LIST("backend", "--backend", T_BACKENDS, backends,
         "balancer backend, repeatable (default: the http service)"),
    ENUM("strategy", "--strategy", strategy, strategy_names, "round_robin", "balancing strategy"),
    STR("hash_header", "--hash-header", hash_header, "NAME",
        "hash strategy: header to hash on (default: client address)", config_check_header),
    NUM("health_interval", "--health-interval", T_DURATION, health_interval, 0.01, 3600, "5s",
        "time between backend health checks"),
    ENUM("balancer_mode", "--balancer-mode", balancer_mode, bal_mode_names, "http",
         "proxy HTTP requests or raw TCP bytes"),
};
/* clang-format on */

#define NOPTS (sizeof opts / sizeof opts[0])

/* ---- error messages: every error found, one per line ---- */

struct errbuf {
    char *buf;
    size_t cap;
    size_t len;
    int count;
};

static void eb_init(struct errbuf *eb, char *buf, size_t cap)
{
    eb->buf = buf;
    eb->cap = buf ? cap : 0;
    eb->len = 0;
    eb->count = 0;
    if (eb->cap)
        buf[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static void eb_add(struct errbuf *eb, const char *fmt, ...)
{
    eb->count++;
    if (eb->len + 1 >= eb->cap)
        return;
    if (eb->len > 0)
        eb->buf[eb->len++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(eb->buf + eb->len, eb->cap - eb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        eb->len += (size_t)n < eb->cap - eb->len ? (size_t)n : eb->cap - eb->len - 1;
    eb->buf[eb->len] = '\0';
}

/* ---- the options' values ---- */

/* The largest binary unit that divides v: 8192 -> "8KiB", 125 -> "125B". */
static void fmt_size(double v, char *buf, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
    unsigned long long b = (unsigned long long)v;
    int u = 0;
    while (u < 3 && b >= 1024 && b % 1024 == 0) {
        b /= 1024;
        u++;
    }
    snprintf(buf, n, "%llu%s", b, units[u]);
}

static void fmt_duration(double v, char *buf, size_t n)
{
    if (v > 0 && v < 1)
        snprintf(buf, n, "%gms", v * 1000);
    else
        snprintf(buf, n, "%gs", v);
}

/* A numeric option's limits, "1 to 256", "1KiB to 1MiB" or "1ms to 3600s"; "" for others. */
static void opt_range(const struct opt *o, char *buf, size_t n)
{
    char lo[32], hi[32];
    void (*fmt)(double, char *, size_t) = o->type == T_SIZE       ? fmt_size
                                          : o->type == T_DURATION ? fmt_duration
                                                                  : NULL;
    buf[0] = '\0';
    if (o->type == T_INT) {
        snprintf(buf, n, "%.0f to %.0f", o->min, o->max);
    } else if (fmt) {
        fmt(o->min, lo, sizeof lo);
        fmt(o->max, hi, sizeof hi);
        snprintf(buf, n, "%s to %s", lo, hi);
    }
}

/* What the option accepts, as "must be ...". */
static void opt_describe(const struct opt *o, char *why, size_t n)
{
    char range[80];
    opt_range(o, range, sizeof range);
    switch (o->type) {
    case T_ADDR:
        snprintf(why, n,
                 "must be HOST:PORT, [IPV6]:PORT, :PORT or off, with a port from 0 to 65535");
        break;
    case T_INT:
        snprintf(why, n, "must be an integer from %s", range);
        break;
    case T_SIZE:
        snprintf(why, n, "must be a size from %s (bytes, or with a K, M or G suffix)", range);
        break;
    case T_DURATION:
        snprintf(why, n, "must be a duration from %s (seconds, or with ms, s, m or h)", range);
        break;
    case T_ENUM: {
        size_t len = (size_t)snprintf(why, n, "must be one of ");
        for (int i = 0; o->names[i] && len < n; i++)
            len += (size_t)snprintf(why + len, n - len, "%s%s", i ? ", " : "", o->names[i]);
        break;
    }
    case T_STRING:
        snprintf(why, n, "must be at most %zu characters", o->size - 1);
        break;
    case T_BACKENDS:
        snprintf(why, n,
                 "must be HOST:PORT[,weight=W] with a port from 1 to 65535 and a weight from 1 "
                 "to %d",
                 MAX_WEIGHT);
        break;
    case T_ORIGINS:
        snprintf(why, n, "must be an origin such as https://example.com, at most %zu characters",
                 sizeof(((struct config *)0)->chat_origin[0]) - 1);
        break;
    }
}

static int store_duration(const struct opt *o, struct config *cfg, double v)
{
    if (!(v >= o->min && v <= o->max))
        return -1;
    *(double *)((char *)cfg + o->offset) = v;
    return 0;
}

/* Parses text as o's type and stores it in cfg (a list option gets one more entry). On error
 * writes what o accepts into why and returns -1. */
static int opt_set(const struct opt *o, struct config *cfg, const char *text, char *why,
                   size_t whylen)
{
    void *field = (char *)cfg + o->offset;
    unsigned long long u;
    size_t sz;
    double d;
    switch (o->type) {
    case T_ADDR:
        if (config_parse_addr(text, field) == 0)
            return 0;
        break;
    case T_INT:
        if (config_parse_uint(text, &u) == 0 && u >= o->min && u <= o->max) {
            *(int *)field = (int)u;
            return 0;
        }
        break;
    case T_SIZE:
        if (config_parse_size(text, &sz) == 0 && sz >= o->min && sz <= o->max) {
            *(size_t *)field = sz;
            return 0;
        }
        break;
    case T_DURATION:
        if (config_parse_duration(text, &d) == 0 && store_duration(o, cfg, d) == 0)
            return 0;
        break;
    case T_ENUM:
        for (int i = 0; o->names[i]; i++) {
            if (strcmp(text, o->names[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        break;
    case T_STRING:
        if (strlen(text) >= o->size)
            break;
        if (text[0] != '\0' && o->check && o->check(text, why, whylen) != 0)
            return -1;
        memcpy(field, text, strlen(text) + 1);
        return 0;
    case T_BACKENDS:
        if (cfg->backend_count >= CONFIG_MAX_BACKENDS) {
            snprintf(why, whylen, "at most %d backends", CONFIG_MAX_BACKENDS);
            return -1;
        }
        if (config_parse_backend(text, &cfg->backends[cfg->backend_count]) == 0) {
            cfg->backend_count++;
            return 0;
        }
        break;
    case T_ORIGINS:
        if (cfg->chat_origin_count >= CONFIG_MAX_ORIGINS) {
            snprintf(why, whylen, "at most %d origins", CONFIG_MAX_ORIGINS);
            return -1;
        }
        if (strlen(text) < sizeof cfg->chat_origin[0] && config_origin_ok(text)) {
            strcpy(cfg->chat_origin[cfg->chat_origin_count++], text);
            return 0;
        }
        break;
    }
    opt_describe(o, why, whylen);
    return -1;
}

static void opt_clear_list(const struct opt *o, struct config *cfg)
{
    if (o->type == T_BACKENDS)
        cfg->backend_count = 0;
    else if (o->type == T_ORIGINS)
        cfg->chat_origin_count = 0;
}

static bool opt_is_list(const struct opt *o)
{
    return o->type == T_BACKENDS || o->type == T_ORIGINS;
}

static const struct opt *opt_by_key(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].key, key) == 0)
            return &opts[i];
    return NULL;
}

static const struct opt *opt_by_flag(const char *flag, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, flag, len) == 0)
            return &opts[i];
    return NULL;
}

/* The table's promise: flag == "--" + key with '_' -> '-'. */
static bool opt_flag_matches_key(const struct opt *o)
{
    const char *k = o->key, *f = o->flag;
    if (strncmp(f, "--", 2) != 0)
        return false;
    for (f += 2; *k; k++, f++)
        if (*f != (*k == '_' ? '-' : *k))
            return false;
    return *f == '\0';
}

void config_defaults(struct config *cfg)
{
    char why[256];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        /* A bad row is a bug in this file, not a user error: stop in every build. */
        if (!opt_flag_matches_key(o)) {
            fprintf(stderr, "config: option table: flag %s does not match key %s\n", o->flag,
                    o->key);
            abort();
        }
        if (!o->def || (opt_is_list(o) && o->def[0] == '\0'))
            continue;
        if (opt_set(o, cfg, o->def, why, sizeof why) != 0) {
            fprintf(stderr, "config: option table: default of %s: %s\n", o->key, why);
            abort();
        }
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
}

/* ---- the config file ---- */

/* Applies one file setting to o; numbers are turned into text so that file and flags share one
 * parser, except floats, which only durations take. */
static void file_apply(const struct opt *o, struct config *cfg, const config_setting_t *s,
                       const char *path, struct errbuf *eb)
{
    const char *file = config_setting_source_file(s) ? config_setting_source_file(s) : path;
    int line = config_setting_source_line(s);
    int type = config_setting_type(s);
    char why[256], num[32];
    const char *text = NULL;

    if (opt_is_list(o)) {
        opt_clear_list(o, cfg);
        if (type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST) {
            for (int i = 0; i < config_setting_length(s); i++) {
                const config_setting_t *e = config_setting_get_elem(s, i);
                int eline =
                    config_setting_source_line(e) ? (int)config_setting_source_line(e) : line;
                const char *v = config_setting_get_string(e);
                if (!v)
                    opt_describe(o, why, sizeof why);
                if (!v || opt_set(o, cfg, v, why, sizeof why) != 0)
                    eb_add(eb, "%s:%d: %s: %s", file, eline, o->key, why);
            }
            return;
        }
        if (type != CONFIG_TYPE_STRING) {
            opt_describe(o, why, sizeof why);
            eb_add(eb, "%s:%d: %s: %s", file, line, o->key, why);
            return;
        }
    }
    bool numeric = o->type == T_INT || o->type == T_SIZE || o->type == T_DURATION;
    if (type == CONFIG_TYPE_STRING && o->type != T_INT) {
        text = config_setting_get_string(s);
    } else if (numeric && (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)) {
        snprintf(num, sizeof num, "%lld", config_setting_get_int64(s));
        text = num;
    } else if (o->type == T_DURATION && type == CONFIG_TYPE_FLOAT) {
        if (store_duration(o, cfg, config_setting_get_float(s)) == 0)
            return;
    }
    if (text && opt_set(o, cfg, text, why, sizeof why) == 0)
        return;
    if (!text)
        opt_describe(o, why, sizeof why);
    eb_add(eb, "%s:%d: %s: %s", file, line, o->key, why);
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    struct errbuf eb;
    struct stat st;
    eb_init(&eb, err, errlen);
    FILE *f = fopen(path, "r");
    if (!f) {
        eb_add(&eb, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        eb_add(&eb, "%s: is a directory", path);
        return -1;
    }

    config_t lc;
    config_init(&lc);
    /* @include paths are relative to the including file, not to the working directory. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < sizeof dir) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, n);
        dir[n] = '\0';
        config_set_include_dir(&lc, dir);
    }
    int ok = config_read(&lc, f);
    fclose(f);
    if (ok != CONFIG_TRUE) {
        const char *efile = config_error_file(&lc) ? config_error_file(&lc) : path;
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            eb_add(&eb, "%s: %s", efile, config_error_text(&lc));
        else
            eb_add(&eb, "%s:%d: %s", efile, config_error_line(&lc), config_error_text(&lc));
        config_destroy(&lc);
        return -1;
    }

    const config_setting_t *root = config_root_setting(&lc);
    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *s = config_setting_get_elem(root, i);
        const char *name = config_setting_name(s);
        const struct opt *o = opt_by_key(name);
        if (o) {
            file_apply(o, cfg, s, path, &eb);
            continue;
        }
        /* libconfig allows '-' in names; point at the key the user most likely meant. */
        char alt[64];
        const struct opt *near = NULL;
        if (strlen(name) < sizeof alt) {
            for (size_t j = 0; (alt[j] = name[j] == '-' ? '_' : name[j]) != '\0'; j++)
                ;
            near = opt_by_key(alt);
        }
        const char *file = config_setting_source_file(s) ? config_setting_source_file(s) : path;
        if (near)
            eb_add(&eb, "%s:%d: unknown key '%s' (did you mean '%s'?)", file,
                   config_setting_source_line(s), name, near->key);
        else
            eb_add(&eb, "%s:%d: unknown key '%s'", file, config_setting_source_line(s), name);
    }
    config_destroy(&lc);
    return eb.count ? -1 : 0;
}

/* ---- command-line flags ---- */

/* Splits argv[i] ("--name" or "--name=value") and finds its value. Returns the number of argv
 * entries used (1 or 2), or -1 when the value is missing. A next entry that starts with "--" is
 * another flag, never a value. */
static int flag_split(int argc, char **argv, int i, size_t *namelen, const char **value)
{
    const char *eq = strchr(argv[i], '=');
    if (eq) {
        *namelen = (size_t)(eq - argv[i]);
        *value = eq + 1;
        return 1;
    }
    *namelen = strlen(argv[i]);
    if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
        return -1;
    *value = argv[i + 1];
    return 2;
}

static bool is_config_flag(const char *arg, size_t namelen)
{
    return namelen == 8 && strncmp(arg, "--config", 8) == 0;
}

int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct errbuf eb;
    bool list_seen[NOPTS] = {false};
    size_t namelen;
    const char *value;
    char why[256];
    eb_init(&eb, err, errlen);

    /* The file comes first wherever --config stands, so that every flag wins over it. */
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--config", 8) != 0 || (argv[i][8] != '\0' && argv[i][8] != '='))
            continue;
        int used = flag_split(argc, argv, i, &namelen, &value);
        if (used < 0) {
            eb_add(&eb, "option '--config' needs a value");
            return -1;
        }
        if (config_load_file(cfg, value, err, errlen) != 0)
            return -1;
        i += used - 1;
    }

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            eb_add(&eb, "unexpected argument '%s'", arg);
            return -1;
        }
        int used = flag_split(argc, argv, i, &namelen, &value);
        const struct opt *o = is_config_flag(arg, namelen) ? NULL : opt_by_flag(arg, namelen);
        if (!o && !is_config_flag(arg, namelen)) {
            eb_add(&eb, "unknown option '%.*s'", (int)namelen, arg);
            return -1;
        }
        if (used < 0) {
            eb_add(&eb, "option '%.*s' needs a value", (int)namelen, arg);
            return -1;
        }
        i += used - 1;
        if (!o)
            continue; /* --config, already read */
        /* A list given on the command line replaces the file's list, then grows. */
        if (opt_is_list(o) && !list_seen[o - opts]) {
            list_seen[o - opts] = true;
            opt_clear_list(o, cfg);
        }
        if (opt_set(o, cfg, value, why, sizeof why) != 0) {
            eb_add(&eb, "%s: %s (got '%s')", o->flag, why, value);
            return -1;
        }
    }
    return 0;
}

/* ---- cross-field rules ---- */

static bool host_is_wildcard(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    struct errbuf eb;
    int enabled = 0;
    eb_init(&eb, err, errlen);
    for (int i = 0; i < SVC_COUNT; i++) {
        const struct config_addr *a = &cfg->listen[i];
        if (!a->enabled)
            continue;
        enabled++;
        for (int j = i + 1; j < SVC_COUNT; j++) {
            const struct config_addr *b = &cfg->listen[j];
            /* A wildcard address takes the port on every address, so it clashes with all. */
            if (!b->enabled || a->port == 0 || a->port != b->port ||
                !(strcasecmp(a->host, b->host) == 0 || host_is_wildcard(a->host) ||
                  host_is_wildcard(b->host)))
                continue;
            bool v6 = strchr(b->host, ':') != NULL;
            eb_add(&eb, "%s and %s both listen on %s%s%s:%u", service_names[i], service_names[j],
                   v6 ? "[" : "", b->host, v6 ? "]" : "", b->port);
        }
    }
    if (enabled == 0)
        eb_add(&eb, "every service is off; enable at least one");
    /* A queue smaller than one message would apply the slow policy to every big message. */
    if (cfg->chat_max_queue < cfg->chat_max_message)
        eb_add(&eb, "chat_max_queue (%zu bytes) must be at least chat_max_message (%zu bytes)",
               cfg->chat_max_queue, cfg->chat_max_message);
    return eb.count ? -1 : 0;
}

/* ---- help ---- */

void config_print_help(void *stream)
{
    static const char *const by_type[] = {
        [T_ADDR] = "ADDR",         [T_INT] = "N",        [T_SIZE] = "SIZE",
        [T_DURATION] = "DURATION", [T_STRING] = "VALUE", [T_BACKENDS] = "HOST:PORT[,weight=W]",
        [T_ORIGINS] = "ORIGIN"};
    FILE *out = stream;
    fprintf(out, "Options come from the defaults, then --config FILE, then these flags; the later\n"
                 "wins. Every flag is also a config-file key: --max-connections N is\n"
                 "max_connections = N; sizes take K, M or G, durations ms, s, m or h.\n\n");
    fprintf(out, "  --config FILE\n      read settings from a libconfig file first\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        char range[80], def[80] = "";
        fprintf(out, "  %s ", o->flag);
        if (o->type == T_ENUM)
            for (int k = 0; o->names[k]; k++)
                fprintf(out, "%s%s", k ? "|" : "", o->names[k]);
        else
            fputs(o->arg ? o->arg : by_type[o->type], out);
        opt_range(o, range, sizeof range);
        /* An empty default means "off" or "none"; the help text itself says which. */
        if (!o->def)
            snprintf(def, sizeof def, "default: the number of CPUs");
        else if (o->def[0] != '\0')
            snprintf(def, sizeof def, "default: %s", o->def);
        fprintf(out, "\n      %s", o->help);
        if (range[0] || def[0])
            fprintf(out, " (%s%s%s)", range, range[0] && def[0] ? "; " : "", def);
        fputc('\n', out);
    }
}
