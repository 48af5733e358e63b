/* admin: the monitoring service: /metrics (Prometheus), /health, /ready, /api/stats. It speaks
 * HTTP through the same protocol code as the http service and stays up while draining, so that
 * /health can say 503. */
#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "core/worker.h"
#include "http/handlers.h"
#include "http/http.h"
#include "services.h"

static void expose(struct http_exchange *x, int json)
{
    struct stats *s = stats_collect(x->c->w->srv);
    struct textbuf tb = {0};
    if (s) {
        if (json)
            stats_json(s, &tb);
        else
            stats_prometheus(s, &tb);
    }
    if (!s || tb.oom) {
        http_respond_error(x, 503, "out of memory");
    } else {
        http_respond(x, 200, json ? "application/json" : "text/plain; version=0.0.4", NULL, tb.p,
                     tb.len);
    }
    free(tb.p);
    stats_free(s);
}

static void admin_route(struct http_exchange *x)
{
    const struct http_request *r = x->req;
    int draining = server_draining(x->c->w->srv);
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        http_respond(x, 405, "application/json", "Allow: GET, HEAD\r\n",
                     "{\"error\":\"method not allowed\"}\n", 31);
    } else if (http_slice_eq(r->path, "/metrics")) {
        expose(x, 0);
    } else if (http_slice_eq(r->path, "/api/stats")) {
        expose(x, 1);
    } else if (http_slice_eq(r->path, "/health")) {
        handlers_health(x, draining);
    } else if (http_slice_eq(r->path, "/ready")) {
        if (draining)
            http_respond_static(x, 503, "application/json", NULL, "{\"status\":\"draining\"}\n",
                                22);
        else
            http_respond_static(x, 200, "application/json", NULL, "{\"status\":\"ready\"}\n", 19);
    } else {
        http_respond_error(x, 404, "not found");
    }
}

static int admin_init(struct worker *w, int svc)
{
    return http_worker_init(w, svc, admin_route);
}

const struct service admin_service = {
    .name = "admin",
    .proto = &http_proto,
    .worker_init = admin_init,
    .worker_fini = http_worker_fini,
    .on_open = http_on_open,
    .on_reject = http_on_reject,
};
