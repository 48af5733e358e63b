/* bench: `weft bench` option parsing and the target; modes.c does the rest. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench/bench.h"

#define EXIT_USAGE 2

void bench_print_help(FILE *out)
{
    fputs("usage: weft bench closed [options] TARGET\n"
          "       weft bench open --rps R -d SECONDS [options] TARGET\n"
          "       weft bench sweep --concurrencies 1,2,5,... [options] TARGET\n"
          "       weft bench preset [--profile smoke|standard|stress] [--config FILE] TARGET\n"
          "       weft bench models [options] [PATH]\n"
          "\n"
          "TARGET: http://HOST:PORT/PATH, ws://HOST:PORT/ws?room=R (one sender, --subscribers\n"
          "receivers, fan-out latency) or tcp://HOST:PORT (echo, --size bytes per message).\n"
          "\n"
          "closed: -c connections, each sends its next request when the last answer came.\n"
          "open: requests start on a fixed schedule at --rps; latency counts from the scheduled\n"
          "start (corrected; the uncorrected figure, from the actual send, is shown beside it);\n"
          "a request due while all --concurrency connections are busy is counted as dropped.\n"
          "closed and open with --repeat K: the K runs in a table, then the median one in full.\n"
          "sweep: closed at each of --concurrencies, each point the median of --repeat runs.\n"
          "preset: a sweep to find the capacity (the best median req/s), then open at 50, 90\n"
          "and 110 % of it with at most max(64, 2 x the best concurrency) connections.\n"
          "  smoke     sweep 1,4,16, 1 s per run, repeat 1; open runs of 1 s (about 6 s)\n"
          "  standard  sweep 1,2,5,10,20,50,100, 5 s per run, repeat 3, 1 s warm-up;\n"
          "            open runs of 10 s (about 2.5 min)\n"
          "  stress    sweep 1,10,50,100,200,500,1000, 10 s per run, repeat 3, 2 s warm-up;\n"
          "            open runs of 20 s (about 5 min)\n"
          "  --config FILE is a JSON object that overrides any of: concurrencies ([1,2,...]),\n"
          "  duration, repeat, warmup, open_duration (seconds), loads ([0.5,0.9,1.1]), threads,\n"
          "  concurrency_cap; -d (every run), -t, --warmup, --repeat and -c (the open runs'\n"
          "  cap) given on the command line override both.\n"
          "models: starts `weft serve --model blocking|threaded|async` (http only, on an\n"
          "ephemeral port of 127.0.0.1) in turn, runs the same closed load against each and\n"
          "stops it; PATH defaults to /.\n"
          "\n"
          "options (short ones also take their value attached, as wrk's do: -t2 -c100 -d5s):\n"
          "  -c N               closed, models: connections (default 10)\n"
          "  --concurrency N    open: most connections at once (default 64)\n"
          "  --concurrencies L  sweep: comma-separated connection counts\n"
          "  -d SECONDS         run time (closed default 10, sweep and models 5; 500ms, 2s,\n"
          "                     1m also accepted)\n"
          "  -n TOTAL           closed, sweep, models: send TOTAL requests per run, then stop\n"
          "  --rps R            open: requests (ws: messages) per second\n"
          "  -t THREADS         worker threads (default 2, at most the connections)\n"
          "  --warmup SECONDS   load before each point (the first of its --repeat runs), not\n"
          "                     recorded (default 0)\n"
          "  --repeat K         runs per point, the median by req/s counts (default 1)\n"
          "  --timeout S        per-request timeout (default 10s)\n"
          "  -m METHOD          request method (default GET)\n"
          "  -H 'Name: value'   a request header, repeatable\n"
          "  -b BODY            request body (sent with Content-Length)\n"
          "  --new-conn         a connection per request (keep-alive is the default)\n"
          "  --busy-poll US     http, tcp: before sleeping, keep polling for events for up to\n"
          "                     US microseconds (default 0; see the README)\n"
          "  --co-correct       closed: also show latency corrected for coordinated omission\n"
          "                     as wrk does (expected interval E = run time x connections /\n"
          "                     requests; each answer v > 2E adds samples v-E, v-2E, ... > E)\n"
          "  --think T          closed, http and tcp: after each response a connection waits T\n"
          "                     before its next request (20ms, 1.5ms, 500us; a bare number is\n"
          "                     seconds, as for -d); latency still counts from the send, as\n"
          "                     with a wrk script's delay() (default 0: at once)\n"
          "  --subscribers N    ws: receiving clients in the room (default 10)\n"
          "  --size BYTES       tcp: bytes per echo message (default 64); ws: text bytes\n"
          "  --profile NAME     preset: smoke, standard (default) or stress\n"
          "  --config FILE      preset: a JSON object overriding the profile's settings\n"
          "  --json FILE        also write the results as JSON\n"
          "  --csv FILE         append one row per run (a shared batch timestamp per call)\n"
          "  --html FILE        write a self-contained report with latency plots\n"
          "  --quiet            no live progress line\n"
          "  --strict           exit 1 if any error happened\n"
          "  --max-error-rate R exit 1 if errors/requests > R\n",
          out);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (try 'weft help bench')\n", stderr);
    return EXIT_USAGE;
}

/* Seconds, with an optional unit: us, ms, s, m. -1 when malformed. */
static double parse_seconds(const char *s)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || errno || !isfinite(v) || v < 0)
        return -1;
    if (strcmp(e, "") == 0 || strcmp(e, "s") == 0)
        return v;
    if (strcmp(e, "ms") == 0)
        return v / 1e3;
    if (strcmp(e, "us") == 0)
        return v / 1e6;
    if (strcmp(e, "m") == 0)
        return v * 60;
    return -1;
}

static int parse_count(const char *s, uint64_t max, uint64_t *out)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (e == s || *e || errno || s[0] == '-' || v == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_url(struct bench_opts *o)
{
    const char *u = o->url;
    if (strncmp(u, "http://", 7) == 0) {
        o->proto = BENCH_HTTP;
        u += 7;
    } else if (strncmp(u, "ws://", 5) == 0) {
        o->proto = BENCH_WS;
        u += 5;
    } else if (strncmp(u, "tcp://", 6) == 0) {
        o->proto = BENCH_TCP;
        u += 6;
    } else {
        return -1;
    }
    const char *slash = strchr(u, '/');
    if (o->proto == BENCH_TCP && slash && slash[1])
        return -1; /* tcp://HOST:PORT has no path */
    o->path = slash ? slash : o->proto == BENCH_WS ? "/ws" : "/";
    size_t hp = slash ? (size_t)(slash - u) : strlen(u);
    const char *h = u, *colon;
    size_t hlen;
    if (hp > 0 && u[0] == '[') {
        const char *rb = memchr(u, ']', hp);
        if (!rb)
            return -1;
        h = u + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1 < u + hp && rb[1] == ':' ? rb + 1 : NULL;
        if (!colon && rb + 1 != u + hp)
            return -1;
    } else {
        colon = memchr(u, ':', hp);
        hlen = colon ? (size_t)(colon - u) : hp;
    }
    if (hlen == 0 || hlen >= sizeof o->host)
        return -1;
    memcpy(o->host, h, hlen);
    o->host[hlen] = 0;
    size_t plen = colon ? (size_t)(u + hp - colon - 1) : 2;
    if (plen == 0 || plen >= sizeof o->port)
        return -1;
    if (colon) {
        memcpy(o->port, colon + 1, plen);
        o->port[plen] = 0;
    } else {
        strcpy(o->port, "80");
    }
    return 0;
}

/* A comma-separated list of connection counts for sweep. */
static int parse_list(struct bench_opts *o, const char *v)
{
    o->nconcurrencies = 0;
    const char *p = v;
    while (*p) {
        char num[16];
        size_t k = strcspn(p, ",");
        uint64_t n;
        if (k == 0 || k >= sizeof num || o->nconcurrencies == BENCH_MAX_CONCURRENCIES)
            return -1;
        memcpy(num, p, k);
        num[k] = 0;
        if (parse_count(num, 100000, &n) < 0)
            return -1;
        o->concurrencies[o->nconcurrencies++] = (int)n;
        p += k;
        if (*p == ',' && *++p == 0)
            return -1;
    }
    return o->nconcurrencies > 0 ? 0 : -1;
}

static int parse_rate(const char *v, double max, double *out)
{
    char *e;
    errno = 0;
    double x = strtod(v, &e);
    if (e == v || *e || errno || !isfinite(x) || x < 0 || x > max)
        return -1;
    *out = x;
    return 0;
}

/* One option with its value v. 0, or the usage error's exit status. */
static int parse_option(struct bench_opts *o, const char *a, const char *v)
{
    uint64_t n;
    if (strcmp(a, "-c") == 0 || strcmp(a, "--concurrency") == 0) {
        if (parse_count(v, 100000, &n) < 0)
            return usage_error("bad connection count '%s'", v);
        o->conns = (int)n;
        o->conns_set = 1;
    } else if (strcmp(a, "-d") == 0) {
        o->duration_s = parse_seconds(v);
        if (o->duration_s <= 0)
            return usage_error("bad duration '%s'", v);
        o->duration_set = 1;
    } else if (strcmp(a, "-n") == 0) {
        if (parse_count(v, UINT64_MAX / 2, &o->total) < 0)
            return usage_error("bad request count '%s'", v);
    } else if (strcmp(a, "-t") == 0) {
        if (parse_count(v, 1024, &n) < 0)
            return usage_error("bad thread count '%s'", v);
        o->threads = (int)n;
        o->threads_set = 1;
    } else if (strcmp(a, "--busy-poll") == 0) {
        if (parse_count(v, 1000000, &o->busy_poll_us) < 0)
            return usage_error("bad --busy-poll microseconds '%s'", v);
    } else if (strcmp(a, "--think") == 0) {
        /* At most an hour; a positive time must come to at least a microsecond. */
        double th = parse_seconds(v);
        if (th < 0 || th > 3600 || (th > 0 && th < 0.5e-6))
            return usage_error("bad think time '%s'", v);
        o->think_us = (uint64_t)llround(th * 1e6);
        o->think_set = 1;
    } else if (strcmp(a, "--timeout") == 0) {
        o->timeout_s = parse_seconds(v);
        if (o->timeout_s <= 0)
            return usage_error("bad timeout '%s'", v);
    } else if (strcmp(a, "--warmup") == 0) {
        o->warmup_s = parse_seconds(v);
        if (o->warmup_s < 0)
            return usage_error("bad warm-up time '%s'", v);
        o->warmup_set = 1;
    } else if (strcmp(a, "--repeat") == 0) {
        if (parse_count(v, 1000, &n) < 0)
            return usage_error("bad repeat count '%s'", v);
        o->repeat = (int)n;
        o->repeat_set = 1;
    } else if (strcmp(a, "--concurrencies") == 0) {
        if (parse_list(o, v) < 0)
            return usage_error("bad concurrency list '%s' (want 1,2,5,...)", v);
    } else if (strcmp(a, "-m") == 0) {
        if (!*v || strpbrk(v, " \r\n\t"))
            return usage_error("bad method '%s'", v);
        o->method = v;
    } else if (strcmp(a, "-H") == 0) {
        if (!strchr(v, ':') || strpbrk(v, "\r\n") || o->nheaders == BENCH_MAX_HEADERS)
            return usage_error("bad header '%s' (want 'Name: value')", v);
        o->headers[o->nheaders++] = v;
    } else if (strcmp(a, "-b") == 0) {
        o->body = v;
    } else if (strcmp(a, "--subscribers") == 0) {
        if (parse_count(v, 100000, &n) < 0)
            return usage_error("bad subscriber count '%s'", v);
        o->subscribers = (int)n;
    } else if (strcmp(a, "--size") == 0) {
        if (parse_count(v, 64u << 20, &n) < 0)
            return usage_error("bad size '%s' (1 to 64 MiB)", v);
        o->size = (size_t)n;
    } else if (strcmp(a, "--profile") == 0) {
        if (strcmp(v, "smoke") && strcmp(v, "standard") && strcmp(v, "stress"))
            return usage_error("unknown profile '%s' (smoke, standard or stress)", v);
        o->profile = v;
    } else if (strcmp(a, "--config") == 0) {
        o->config_path = v;
    } else if (strcmp(a, "--json") == 0) {
        o->json_path = v;
    } else if (strcmp(a, "--csv") == 0) {
        o->csv_path = v;
    } else if (strcmp(a, "--html") == 0) {
        o->html_path = v;
    } else if (strcmp(a, "--rps") == 0) {
        if (parse_rate(v, 1e8, &o->rps) < 0 || o->rps <= 0)
            return usage_error("bad rate '%s'", v);
    } else if (strcmp(a, "--max-error-rate") == 0) {
        if (parse_rate(v, 1e300, &o->max_error_rate) < 0)
            return usage_error("bad error rate '%s'", v);
    } else {
        return usage_error("unknown option '%s'", a);
    }
    return 0;
}

/* Checks that the options fit the mode and the target. 0, or a usage error's exit status. */
static int check_args(struct bench_opts *o)
{
    if (o->cmd == CMD_MODELS) {
        /* models starts its own servers: the target is an optional path (or URL) on them. */
        if (!o->url || o->url[0] == '/') {
            o->proto = BENCH_HTTP;
            o->path = o->url ? o->url : "/";
            o->url = NULL;
        } else if (parse_url(o) < 0 || o->proto != BENCH_HTTP) {
            return usage_error("bad target '%s' for models (want a PATH like /reverse)", o->url);
        }
    } else {
        if (!o->url)
            return usage_error("%s", "a target is needed: http://HOST:PORT/PATH, "
                                     "ws://HOST:PORT/ws?room=R or tcp://HOST:PORT");
        if (parse_url(o) < 0)
            return usage_error("bad target '%s' (want http://HOST:PORT/PATH, "
                               "ws://HOST:PORT/PATH or tcp://HOST:PORT)",
                               o->url);
    }
    if (o->proto != BENCH_WS && o->subscribers)
        return usage_error("%s", "--subscribers is for ws:// targets");
    if (o->proto == BENCH_HTTP && o->size)
        return usage_error("%s", "--size is for tcp:// and ws:// targets");
    if (o->proto != BENCH_HTTP && (o->body || o->nheaders || strcmp(o->method, "GET") != 0))
        return usage_error("%s", "-m, -H and -b are for http:// targets");
    if (o->proto == BENCH_WS && o->new_conn)
        return usage_error("%s", "--new-conn is for http:// and tcp:// targets");
    if (o->busy_poll_us && o->proto == BENCH_WS)
        return usage_error("%s", "--busy-poll is for http:// and tcp:// targets");
    if (o->co_correct && (o->cmd != CMD_CLOSED || o->proto == BENCH_WS))
        return usage_error("%s", "--co-correct is for closed runs of http:// and tcp:// targets");
    if (o->think_set && (o->cmd != CMD_CLOSED || o->proto == BENCH_WS))
        return usage_error("%s", "--think is for closed runs of http:// and tcp:// targets");
    if (o->nconcurrencies && o->cmd != CMD_SWEEP)
        return usage_error("%s", "--concurrencies is for sweep");
    if ((o->profile || o->config_path) && o->cmd != CMD_PRESET)
        return usage_error("%s", "--profile and --config are for preset");
    if (o->cmd == CMD_OPEN) {
        if (o->rps <= 0)
            return usage_error("%s", "open needs --rps R");
        if (!o->duration_set)
            return usage_error("%s", "open needs -d SECONDS");
        if (o->total)
            return usage_error("%s", "-n is for closed; open runs for -d");
    } else {
        if (o->rps > 0)
            return usage_error("%s", "--rps is for open");
        if (o->duration_set && o->total)
            return usage_error("%s", "give -d or -n, not both");
        if (o->cmd == CMD_PRESET && o->total)
            return usage_error("%s",
                               "-n is for closed, sweep and models; preset runs for durations");
        if (o->cmd == CMD_SWEEP && !o->nconcurrencies)
            return usage_error("%s", "sweep needs --concurrencies 1,2,5,...");
        if (o->cmd == CMD_CLOSED && !o->duration_set && !o->total)
            o->duration_s = 10;
    }
    if (o->proto == BENCH_WS && !o->subscribers)
        o->subscribers = 10;
    if (o->proto != BENCH_HTTP && !o->size)
        o->size = 64;
    return 0;
}

static int parse_args(struct bench_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--new-conn") == 0) {
            o->new_conn = 1;
        } else if (strcmp(a, "--co-correct") == 0) {
            o->co_correct = 1;
        } else if (strcmp(a, "--strict") == 0) {
            o->strict = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->progress = 0;
        } else if (a[0] != '-') {
            if (o->url)
                return usage_error("more than one target: '%s'", a);
            o->url = a;
        } else if (a[1] && a[1] != '-' && a[2] && strchr("cdntmHb", a[1])) {
            /* A short option with its value attached, as wrk takes them: -t2 -c100 -d5s. */
            char opt[3] = {'-', a[1], 0};
            int rc = parse_option(o, opt, a + 2);
            if (rc)
                return rc;
        } else if (i + 1 >= argc) {
            /* Unknown options are reported as such, not as missing a value. */
            int rc = parse_option(o, a, "");
            return rc ? rc : usage_error("option '%s' needs a value", a);
        } else {
            int rc = parse_option(o, a, argv[++i]);
            if (rc)
                return rc;
        }
    }
    return check_args(o);
}

/* The bytes every connection sends: an HTTP request, a WebSocket upgrade or an echo message.
 * NULL when out of memory. */
static char *build_request(const struct bench_opts *o, size_t *len)
{
    if (o->proto == BENCH_TCP) {
        char *m = malloc(o->size);
        for (size_t i = 0; m && i < o->size; i++)
            m[i] = (char)('a' + i % 26);
        *len = o->size;
        return m;
    }
    size_t cap = 512 + strlen(o->path) + strlen(o->host) + strlen(o->method);
    for (int i = 0; i < o->nheaders; i++)
        cap += strlen(o->headers[i]) + 2;
    cap += o->body ? strlen(o->body) : 0;
    char *r = malloc(cap);
    if (!r)
        return NULL;
    int have_host = 0;
    for (int i = 0; i < o->nheaders; i++)
        have_host |= strncasecmp(o->headers[i], "host:", 5) == 0;
    size_t n = (size_t)snprintf(r, cap, "%s %s HTTP/1.1\r\n", o->method, o->path);
    if (!have_host)
        n += (size_t)snprintf(r + n, cap - n, "Host: %s:%s\r\n", o->host, o->port);
    for (int i = 0; i < o->nheaders; i++)
        n += (size_t)snprintf(r + n, cap - n, "%s\r\n", o->headers[i]);
    if (o->proto == BENCH_WS)
        n += (size_t)snprintf(r + n, cap - n,
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n");
    if (o->new_conn)
        n += (size_t)snprintf(r + n, cap - n, "Connection: close\r\n");
    if (o->body)
        n += (size_t)snprintf(r + n, cap - n, "Content-Length: %zu\r\n", strlen(o->body));
    n += (size_t)snprintf(r + n, cap - n, "\r\n%s", o->body ? o->body : "");
    *len = n;
    return r;
}

int bench_target_init(struct bench_target *t, const struct bench_opts *o)
{
    memset(t, 0, sizeof *t);
    t->proto = o->proto;
    t->new_conn = o->new_conn;
    t->busy_poll_us = o->busy_poll_us;
    t->head_only = strcmp(o->method, "HEAD") == 0;
    t->timeout_us = (uint64_t)(o->timeout_s * 1e6);
    t->msg_size = o->size;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int e = getaddrinfo(o->host, o->port, &hints, &ai);
    if (e != 0) {
        fprintf(stderr, "weft bench: %s:%s: %s\n", o->host, o->port, gai_strerror(e));
        return -1;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    char *req = build_request(o, &t->request_len);
    if (!req) {
        fprintf(stderr, "weft bench: out of memory\n");
        return -1;
    }
    t->request = req;
    return 0;
}

void bench_target_free(struct bench_target *t)
{
    free((char *)t->request);
    t->request = NULL;
}

int bench_main(int argc, char **argv)
{
    if (argc < 1)
        return usage_error("%s", "a mode is needed: closed, open, sweep, preset or models");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            bench_print_help(stdout);
            return 0;
        }
    }
    static const char *const cmds[] = {"closed", "open", "sweep", "preset", "models"};
    struct bench_opts o = {.conns = 10,
                           .threads = 2,
                           .timeout_s = 10,
                           .method = "GET",
                           .max_error_rate = -1,
                           .repeat = 1,
                           .progress = isatty(STDERR_FILENO),
                           .mode_name = argv[0]};
    int found = 0;
    for (int k = 0; k < (int)(sizeof cmds / sizeof cmds[0]); k++) {
        if (strcmp(argv[0], cmds[k]) == 0) {
            o.cmd = (enum bench_cmd)k;
            found = 1;
        }
    }
    if (!found)
        return usage_error("unknown mode '%s' (closed, open, sweep, preset or models)", argv[0]);
    if (o.cmd == CMD_OPEN)
        o.conns = 64;
    int rc = parse_args(&o, argc, argv);
    if (rc)
        return rc;
    if (o.cmd == CMD_MODELS)
        return bench_mode_run(&o, NULL); /* it makes a target per server it starts */
    struct bench_target t;
    if (bench_target_init(&t, &o) < 0)
        return 1;
    rc = bench_mode_run(&o, &t);
    bench_target_free(&t);
    return rc;
}
