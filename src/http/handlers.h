/* handlers: the http service's endpoints, shared by the three concurrency models. */
#ifndef WEFT_HTTP_HANDLERS_H
#define WEFT_HTTP_HANDLERS_H

#include <stddef.h>

#include "http/http.h"

/* POST /reverse: {"k":"abc",...} -> {"data":["cba",...]} (malloc'd in *out). -1 with a message
 * for the client in *err on bad input. */
int handlers_reverse_json(const char *body, size_t len, char **out, size_t *out_len,
                          const char **err);

/* GET /health: 200 {"status":"ok"}, or 503 while draining. */
void handlers_health(struct http_exchange *x, int draining);

/* GET /static/...: a file under --static, never outside it. */
void static_serve(struct http_exchange *x);

#endif
