/* The http service's endpoints (SPEC, "HTTP service"). Each handler is a function of the
 * request; the three --models run these same handlers. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bpool.h"
#include "core/worker.h"
#include "http/handlers.h"
#include "http/http.h"

#define MAX_WAIT_MS 60000

static const char hello[] = "Hello, World!";

static void method_not_allowed(struct http_exchange *x, const char *allow)
{
    char extra[64];
    snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
    http_respond(x, 405, "application/json", extra, "{\"error\":\"method not allowed\"}\n", 31);
}

static int is_get(const struct http_request *r)
{
    return r->method == HTTP_GET || r->method == HTTP_HEAD;
}

/* Reverses UTF-8 text by code point into out (same length). */
static void reverse_utf8(const char *s, size_t n, char *out)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80)
            j++;
        memcpy(out + (n - j), s + i, j - i);
        i = j;
    }
}

int handlers_reverse_json(const char *body, size_t len, char **out, size_t *out_len,
                          const char **err)
{
    json_error_t jerr;
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in) {
        *err = "invalid JSON";
        return -1;
    }
    if (!json_is_object(in)) {
        json_decref(in);
        *err = "expected a JSON object of strings";
        return -1;
    }
    json_t *arr = json_array();
    const char *key;
    json_t *val;
    char stackbuf[256];
    json_object_foreach(in, key, val)
    {
        if (!json_is_string(val)) {
            json_decref(arr);
            json_decref(in);
            *err = "every value must be a string";
            return -1;
        }
        size_t n = json_string_length(val);
        char *tmp = n <= sizeof stackbuf ? stackbuf : malloc(n);
        if (!tmp) {
            json_decref(arr);
            json_decref(in);
            *err = "out of memory";
            return -1;
        }
        reverse_utf8(json_string_value(val), n, tmp);
        json_array_append_new(arr, json_stringn(tmp, n));
        if (tmp != stackbuf)
            free(tmp);
    }
    json_t *res = json_pack("{s:o}", "data", arr);
    *out = json_dumps(res, JSON_COMPACT);
    *out_len = *out ? strlen(*out) : 0;
    json_decref(res);
    json_decref(in);
    if (!*out) {
        *err = "out of memory";
        return -1;
    }
    return 0;
}

static void do_reverse(struct http_exchange *x)
{
    char *out;
    size_t out_len;
    const char *err;
    if (handlers_reverse_json(x->body, x->body_len, &out, &out_len, &err) < 0) {
        http_respond_error(x, 400, err);
        return;
    }
    http_respond(x, 200, "application/json", NULL, out, out_len);
    free(out);
}

static void do_echo(struct http_exchange *x)
{
    const struct http_slice *ct = http_request_header(x->req, "content-type");
    char ctype[128] = "application/octet-stream";
    if (ct && ct->n < sizeof ctype) {
        memcpy(ctype, ct->p, ct->n);
        ctype[ct->n] = '\0';
    }
    if (x->body_buf)
        http_respond_buf(x, 200, ctype, NULL, x->body_buf, x->body, x->body_len);
    else
        http_respond(x, 200, ctype, NULL, x->body, x->body_len);
}

static void sleep_done(struct http_exchange *x)
{
    http_respond_static(x, 200, "text/plain", NULL, "slept\n", 6);
}

/* Reads ?ms=N within 0..60000, or answers 400 and returns -1. */
static int64_t wait_ms(struct http_exchange *x)
{
    int64_t ms = http_query_uint(x->req, "ms");
    if (ms < 0 || ms > MAX_WAIT_MS) {
        http_respond_error(x, 400, "ms must be an integer from 0 to 60000");
        return -1;
    }
    return ms;
}

static void do_sleep(struct http_exchange *x)
{
    int64_t ms = wait_ms(x);
    if (ms >= 0)
        http_defer_timer(x, (uint64_t)ms, sleep_done);
}

struct block_job {
    struct bjob job;
    struct http_token token;
    int64_t ms;
};

static void block_run(struct bjob *j)
{
    struct block_job *b = (struct block_job *)j;
    struct timespec ts = {.tv_sec = b->ms / 1000, .tv_nsec = (b->ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void block_done(struct worker *w, struct inbox_msg *m)
{
    (void)w;
    struct block_job *b = (struct block_job *)m;
    struct http_exchange x;
    if (http_resume(&b->token, &x) == 0)
        http_respond_static(&x, 200, "text/plain", NULL, "blocked\n", 8);
    free(b);
}

static void do_block(struct http_exchange *x)
{
    int64_t ms = wait_ms(x);
    if (ms < 0)
        return;
    if (x->c->w->sync) {
        struct block_job inline_job = {.ms = ms};
        block_run(&inline_job.job);
        http_respond_static(x, 200, "text/plain", NULL, "blocked\n", 8);
        return;
    }
    struct block_job *b = malloc(sizeof *b);
    if (!b) {
        http_respond_error(x, 503, "out of memory");
        return;
    }
    b->ms = ms;
    b->job.w = x->c->w;
    b->job.run = block_run;
    b->job.done.fn = block_done;
    b->token = http_defer(x);
    bpool_submit(&x->c->w->srv->bpool, &b->job);
}

void handlers_health(struct http_exchange *x, int draining)
{
    if (draining)
        http_respond_static(x, 503, "application/json", NULL, "{\"status\":\"draining\"}\n", 22);
    else
        http_respond_static(x, 200, "application/json", NULL, "{\"status\":\"ok\"}\n", 16);
}

static void http_route(struct http_exchange *x)
{
    const struct http_request *r = x->req;
    struct http_slice path = r->path;
    if (http_slice_eq(path, "/")) {
        if (is_get(r))
            http_respond_static(x, 200, "text/plain", NULL, hello, sizeof hello - 1);
        else
            method_not_allowed(x, "GET, HEAD");
    } else if (http_slice_eq(path, "/reverse")) {
        if (r->method == HTTP_POST)
            do_reverse(x);
        else
            method_not_allowed(x, "POST");
    } else if (http_slice_eq(path, "/echo")) {
        if (r->method == HTTP_POST)
            do_echo(x);
        else
            method_not_allowed(x, "POST");
    } else if (http_slice_eq(path, "/sleep")) {
        if (is_get(r))
            do_sleep(x);
        else
            method_not_allowed(x, "GET, HEAD");
    } else if (http_slice_eq(path, "/block")) {
        if (is_get(r))
            do_block(x);
        else
            method_not_allowed(x, "GET, HEAD");
    } else if (http_slice_eq(path, "/health")) {
        if (is_get(r))
            handlers_health(x, server_draining(x->c->w->srv));
        else
            method_not_allowed(x, "GET, HEAD");
    } else if (path.n >= 8 && memcmp(path.p, "/static/", 8) == 0 && x->c->w->cfg->static_dir[0]) {
        if (is_get(r))
            static_serve(x);
        else
            method_not_allowed(x, "GET, HEAD");
    } else {
        http_respond_error(x, 404, "not found");
    }
}

static int http_svc_init(struct worker *w, int svc)
{
    return http_worker_init(w, svc, http_route);
}

const struct service http_service = {
    .name = "http",
    .proto = &http_proto,
    .worker_init = http_svc_init,
    .worker_fini = http_worker_fini,
    .on_open = http_on_open,
    .on_reject = http_on_reject,
};
