/* bench: `weft bench` option parsing, worker threads, merging and the report. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/bench.h"
#include "bench/schedule.h"

#define EXIT_USAGE 2
#define MAX_HEADERS 64

static const char *const err_names[BENCH_ERR_KINDS] = {"connect", "read",   "write",
                                                       "timeout", "status", "protocol"};

struct bench_opts {
    enum bench_mode mode;
    const char *mode_name;
    int conns; /* -c (closed) or --concurrency (open) */
    double duration_s;
    uint64_t total;
    int threads;
    double timeout_s;
    const char *method;
    const char *headers[MAX_HEADERS];
    int nheaders;
    const char *body;
    int new_conn;
    const char *json_path;
    double rps;
    int strict;
    double max_error_rate; /* < 0: not set */
    const char *url;
    char host[256];
    char port[16];
    const char *path;
};

struct bench_result {
    uint64_t requests, errors[BENCH_ERR_KINDS], errors_total, dropped;
    uint64_t status[BENCH_MAX_STATUS];
    struct hist *lat, *lat_unc;
    double elapsed_s, cpu_pct;
};

void bench_print_help(FILE *out)
{
    fputs("usage: weft bench closed [options] URL\n"
          "       weft bench open --rps R -d SECONDS [options] URL\n"
          "\n"
          "Load generator for http:// targets. closed: -c connections, each sends its next\n"
          "request when the last response came. open: requests start on a fixed schedule at\n"
          "--rps; latency counts from the scheduled start (corrected; the uncorrected figure,\n"
          "from the actual send, is shown beside it); a request due while all --concurrency\n"
          "connections are busy is dropped.\n"
          "\n"
          "options:\n"
          "  -c N               closed: connections (default 10)\n"
          "  --concurrency N    open: most connections at once (default 64)\n"
          "  -d SECONDS         run time (closed default 10; 500ms, 2s, 1m also accepted)\n"
          "  -n TOTAL           closed: send TOTAL requests, then stop\n"
          "  --rps R            open: requests per second\n"
          "  -t THREADS         worker threads (default 2, at most the connections)\n"
          "  --timeout S        per-request timeout (default 10s)\n"
          "  -m METHOD          request method (default GET)\n"
          "  -H 'Name: value'   a request header, repeatable\n"
          "  -b BODY            request body (sent with Content-Length)\n"
          "  --new-conn         a connection per request (keep-alive is the default)\n"
          "  --json FILE        also write the results as JSON\n"
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
    if (strncmp(u, "http://", 7) != 0)
        return -1;
    u += 7;
    const char *slash = strchr(u, '/');
    o->path = slash ? slash : "/";
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

static int parse_args(struct bench_opts *o, int argc, char **argv)
{
    int have_d = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (strcmp(a, "--new-conn") == 0) {
            o->new_conn = 1;
            continue;
        }
        if (strcmp(a, "--strict") == 0) {
            o->strict = 1;
            continue;
        }
        if (a[0] != '-') {
            if (o->url)
                return usage_error("more than one URL: '%s'", a);
            o->url = a;
            continue;
        }
        static const char *const with_value[] = {
            "-c", "-d", "-n",     "-t",    "--timeout",     "-m",
            "-H", "-b", "--json", "--rps", "--concurrency", "--max-error-rate",
            NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++)
            known |= strcmp(a, with_value[k]) == 0;
        if (!known)
            return usage_error("unknown option '%s'", a);
        if (!v)
            return usage_error("option '%s' needs a value", a);
        i++;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--concurrency") == 0) {
            if (parse_count(v, 100000, &n) < 0)
                return usage_error("bad connection count '%s'", v);
            o->conns = (int)n;
        } else if (strcmp(a, "-d") == 0) {
            o->duration_s = parse_seconds(v);
            if (o->duration_s <= 0)
                return usage_error("bad duration '%s'", v);
            have_d = 1;
        } else if (strcmp(a, "-n") == 0) {
            if (parse_count(v, UINT64_MAX / 2, &o->total) < 0)
                return usage_error("bad request count '%s'", v);
        } else if (strcmp(a, "-t") == 0) {
            if (parse_count(v, 1024, &n) < 0)
                return usage_error("bad thread count '%s'", v);
            o->threads = (int)n;
        } else if (strcmp(a, "--timeout") == 0) {
            o->timeout_s = parse_seconds(v);
            if (o->timeout_s <= 0)
                return usage_error("bad timeout '%s'", v);
        } else if (strcmp(a, "-m") == 0) {
            if (!*v || strpbrk(v, " \r\n\t"))
                return usage_error("bad method '%s'", v);
            o->method = v;
        } else if (strcmp(a, "-H") == 0) {
            if (!strchr(v, ':') || strpbrk(v, "\r\n") || o->nheaders == MAX_HEADERS)
                return usage_error("bad header '%s' (want 'Name: value')", v);
            o->headers[o->nheaders++] = v;
        } else if (strcmp(a, "-b") == 0) {
            o->body = v;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(a, "--rps") == 0) {
            char *e;
            o->rps = strtod(v, &e);
            if (e == v || *e || !isfinite(o->rps) || o->rps <= 0 || o->rps > 1e8)
                return usage_error("bad rate '%s'", v);
        } else if (strcmp(a, "--max-error-rate") == 0) {
            char *e;
            o->max_error_rate = strtod(v, &e);
            if (e == v || *e || !(o->max_error_rate >= 0))
                return usage_error("bad error rate '%s'", v);
        }
    }
    if (!o->url)
        return usage_error("%s", "a URL is needed: http://HOST:PORT/PATH");
    if (strncmp(o->url, "ws://", 5) == 0 || strncmp(o->url, "tcp://", 6) == 0)
        return usage_error("'%s': only http:// targets are built yet", o->url);
    if (parse_url(o) < 0)
        return usage_error("bad URL '%s' (want http://HOST:PORT/PATH)", o->url);
    if (o->mode == BENCH_OPEN) {
        if (o->rps <= 0)
            return usage_error("%s", "open needs --rps R");
        if (!have_d)
            return usage_error("%s", "open needs -d SECONDS");
        if (o->total)
            return usage_error("%s", "-n is for closed; open runs for -d");
    } else {
        if (o->rps > 0)
            return usage_error("%s", "--rps is for open");
        if (have_d && o->total)
            return usage_error("%s", "give -d or -n, not both");
        if (!have_d && !o->total)
            o->duration_s = 10;
    }
    return 0;
}

/* The bytes of the request every connection sends. NULL when out of memory. */
static char *build_request(const struct bench_opts *o, size_t *len)
{
    size_t cap = 256 + strlen(o->path) + strlen(o->host) + strlen(o->method);
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
    if (o->new_conn)
        n += (size_t)snprintf(r + n, cap - n, "Connection: close\r\n");
    if (o->body)
        n += (size_t)snprintf(r + n, cap - n, "Content-Length: %zu\r\n", strlen(o->body));
    n += (size_t)snprintf(r + n, cap - n, "\r\n%s", o->body ? o->body : "");
    *len = n;
    return r;
}

static void *worker_main(void *arg)
{
    struct bench_worker *w = arg;
    bench_worker_run(w);
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void print_latency_row(const char *name, const struct hist *h)
{
    printf("  %-12s %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, hist_percentile(h, 50) / 1e3,
           hist_percentile(h, 90) / 1e3, hist_percentile(h, 99) / 1e3,
           hist_percentile(h, 99.9) / 1e3, h->count ? h->max / 1e3 : 0.0);
}

static void print_report(const struct bench_opts *o, const struct bench_result *r)
{
    printf("weft bench %s %s: %d threads, %d connections%s\n", o->mode_name, o->url, o->threads,
           o->conns, o->new_conn ? " (new connection per request)" : "");
    if (o->mode == BENCH_OPEN)
        printf("target rps    %.1f\n", o->rps);
    printf("requests      %llu\n", (unsigned long long)r->requests);
    printf("duration      %.3f s\n", r->elapsed_s);
    printf("req/s         %.1f\n", r->elapsed_s > 0 ? r->requests / r->elapsed_s : 0.0);
    printf("errors        %llu (", (unsigned long long)r->errors_total);
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        printf("%s%s %llu", k ? ", " : "", err_names[k], (unsigned long long)r->errors[k]);
    printf(")\n");
    if (o->mode == BENCH_OPEN)
        printf("dropped       %llu\n", (unsigned long long)r->dropped);
    printf("status       ");
    for (int s = 0; s < BENCH_MAX_STATUS; s++)
        if (r->status[s])
            printf(" %d: %llu", s, (unsigned long long)r->status[s]);
    printf("\n");
    printf("latency (ms)         p50       p90       p99     p99.9       max\n");
    if (o->mode == BENCH_OPEN) {
        print_latency_row("corrected", r->lat);
        print_latency_row("uncorrected", r->lat_unc);
    } else {
        print_latency_row("", r->lat);
    }
    printf("cpu           %.1f %% of one core\n", r->cpu_pct);
}

static json_t *latency_json(const struct hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "p50", hist_percentile(h, 50) / 1e3, "p90",
                     hist_percentile(h, 90) / 1e3, "p99", hist_percentile(h, 99) / 1e3, "p99_9",
                     hist_percentile(h, 99.9) / 1e3, "max", h->count ? h->max / 1e3 : 0.0, "mean",
                     hist_mean(h) / 1e3);
}

static int write_json(const struct bench_opts *o, const struct bench_result *r)
{
    json_t *errs = json_object(), *codes = json_object();
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        json_object_set_new(errs, err_names[k], json_integer((json_int_t)r->errors[k]));
    for (int s = 0; s < BENCH_MAX_STATUS; s++) {
        if (r->status[s]) {
            char key[8];
            snprintf(key, sizeof key, "%d", s);
            json_object_set_new(codes, key, json_integer((json_int_t)r->status[s]));
        }
    }
    json_t *j =
        json_pack("{s:s, s:s, s:i, s:i, s:b, s:I, s:f, s:f, s:I, s:o, s:o, s:o, s:f}", "mode",
                  o->mode_name, "url", o->url, "threads", o->threads, "connections", o->conns,
                  "new_conn", o->new_conn, "requests", (json_int_t)r->requests, "duration_s",
                  r->elapsed_s, "rps", r->elapsed_s > 0 ? r->requests / r->elapsed_s : 0.0,
                  "errors_total", (json_int_t)r->errors_total, "errors", errs, "status", codes,
                  "latency_ms", latency_json(r->lat), "cpu_percent", r->cpu_pct);
    if (!j)
        return -1;
    if (o->mode == BENCH_OPEN) {
        json_object_set_new(j, "target_rps", json_real(o->rps));
        json_object_set_new(j, "dropped", json_integer((json_int_t)r->dropped));
        json_object_set_new(j, "latency_uncorrected_ms", latency_json(r->lat_unc));
    }
    int rc = json_dump_file(j, o->json_path, JSON_INDENT(2));
    json_decref(j);
    return rc;
}

/* Splits the run over the workers, runs them and merges their results into r. */
static int run(const struct bench_opts *o, const struct bench_target *t, struct bench_result *r)
{
    int nt = o->threads;
    struct bench_worker *ws = calloc((size_t)nt, sizeof *ws);
    pthread_t *tids = calloc((size_t)nt, sizeof *tids);
    int rc = -1, started = 0;
    if (!ws || !tids)
        goto out;
    uint64_t start = bench_now_us();
    /* A little lead so that every thread is waiting before the first request is due. */
    uint64_t t0 = start + (o->mode == BENCH_OPEN ? 20000 : 0);
    uint64_t end = t0 + (uint64_t)(o->duration_s * 1e6);
    uint64_t sched_total = o->mode == BENCH_OPEN ? schedule_count(o->rps, o->duration_s) : 0;
    for (int i = 0; i < nt; i++) {
        struct bench_worker *w = &ws[i];
        w->t = t;
        w->conns = o->conns / nt + (i < o->conns % nt);
        w->end_us = end;
        if (o->mode == BENCH_OPEN) {
            /* Thread i takes requests i, i + nt, i + 2 nt ... of the one global schedule. */
            w->rps = o->rps / nt;
            w->t0_us = t0 + (uint64_t)((double)i * 1e6 / o->rps);
            w->total = sched_total > (uint64_t)i ? (sched_total - (uint64_t)i + nt - 1) / nt : 0;
        } else if (o->total) {
            w->total = o->total / nt + ((uint64_t)i < o->total % nt);
        }
        w->lat = malloc(sizeof *w->lat);
        w->lat_unc = o->mode == BENCH_OPEN ? malloc(sizeof *w->lat_unc) : NULL;
        if (!w->lat || (o->mode == BENCH_OPEN && !w->lat_unc))
            goto out;
        hist_init(w->lat);
        if (w->lat_unc)
            hist_init(w->lat_unc);
    }
    double cpu0 = cpu_seconds();
    for (; started < nt; started++) {
        if (pthread_create(&tids[started], NULL, worker_main, &ws[started]) != 0) {
            fprintf(stderr, "weft bench: cannot start a thread\n");
            goto out;
        }
    }
    for (int i = 0; i < nt; i++)
        pthread_join(tids[i], NULL);
    started = 0;
    r->elapsed_s = (double)(bench_now_us() - start) / 1e6;
    if (o->mode == BENCH_OPEN)
        r->elapsed_s = (double)(bench_now_us() - t0) / 1e6;
    r->cpu_pct = r->elapsed_s > 0 ? (cpu_seconds() - cpu0) / r->elapsed_s * 100 : 0;
    rc = 0;
    for (int i = 0; i < nt; i++) {
        struct bench_worker *w = &ws[i];
        if (w->fail[0]) {
            fprintf(stderr, "weft bench: %s\n", w->fail);
            rc = -1;
        }
        r->requests += w->requests;
        r->dropped += w->dropped;
        for (int k = 0; k < BENCH_ERR_KINDS; k++)
            r->errors[k] += w->errors[k];
        for (int s = 0; s < BENCH_MAX_STATUS; s++)
            r->status[s] += w->status[s];
        hist_merge(r->lat, w->lat);
        if (w->lat_unc)
            hist_merge(r->lat_unc, w->lat_unc);
    }
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        r->errors_total += r->errors[k];
out:
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    for (int i = 0; ws && i < nt; i++) {
        free(ws[i].lat);
        free(ws[i].lat_unc);
    }
    free(ws);
    free(tids);
    return rc;
}

static int resolve(const struct bench_opts *o, struct bench_target *t)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int e = getaddrinfo(o->host, o->port, &hints, &ai);
    if (e != 0) {
        fprintf(stderr, "weft bench: %s:%s: %s\n", o->host, o->port, gai_strerror(e));
        return -1;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int bench_main(int argc, char **argv)
{
    if (argc < 1)
        return usage_error("%s", "a mode is needed: closed or open");
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        bench_print_help(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            bench_print_help(stdout);
            return 0;
        }
    }
    struct bench_opts o = {.conns = 10,
                           .threads = 2,
                           .timeout_s = 10,
                           .method = "GET",
                           .max_error_rate = -1,
                           .mode_name = argv[0]};
    if (strcmp(argv[0], "closed") == 0) {
        o.mode = BENCH_CLOSED;
    } else if (strcmp(argv[0], "open") == 0) {
        o.mode = BENCH_OPEN;
        o.conns = 64;
    } else if (strcmp(argv[0], "sweep") == 0 || strcmp(argv[0], "preset") == 0 ||
               strcmp(argv[0], "models") == 0) {
        return usage_error("mode '%s' is not built yet (closed and open are)", argv[0]);
    } else {
        return usage_error("unknown mode '%s' (closed or open)", argv[0]);
    }
    int rc = parse_args(&o, argc, argv);
    if (rc)
        return rc;
    if (o.threads > o.conns)
        o.threads = o.conns;

    struct bench_target t = {.mode = o.mode,
                             .new_conn = o.new_conn,
                             .head_only = strcmp(o.method, "HEAD") == 0,
                             .timeout_us = (uint64_t)(o.timeout_s * 1e6)};
    if (resolve(&o, &t) < 0)
        return 1;
    char *req = build_request(&o, &t.request_len);
    struct bench_result r = {0};
    r.lat = malloc(sizeof *r.lat);
    r.lat_unc = malloc(sizeof *r.lat_unc);
    if (!req || !r.lat || !r.lat_unc) {
        fprintf(stderr, "weft bench: out of memory\n");
        rc = 1;
        goto out;
    }
    t.request = req;
    hist_init(r.lat);
    hist_init(r.lat_unc);
    if (run(&o, &t, &r) < 0) {
        rc = 1;
        goto out;
    }
    print_report(&o, &r);
    if (o.json_path && write_json(&o, &r) < 0) {
        fprintf(stderr, "weft bench: cannot write %s\n", o.json_path);
        rc = 1;
        goto out;
    }
    if (o.strict && r.errors_total > 0)
        rc = 1;
    if (o.max_error_rate >= 0 && r.errors_total > 0 &&
        (r.requests == 0 || (double)r.errors_total / (double)r.requests > o.max_error_rate))
        rc = 1;
out:
    free(req);
    free(r.lat);
    free(r.lat_unc);
    return rc;
}
