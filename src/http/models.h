/* models: the http service's threaded and blocking concurrency models (see models.c). */
#ifndef WEFT_HTTP_MODELS_H
#define WEFT_HTTP_MODELS_H

#include "core/server.h"

struct sync_conn_arg {
    struct server *srv;
    int fd;
};

/* Starts the acceptor thread on listen_fd (which it owns from now on). 0 or -errno. */
int http_models_start(struct server *srv, int listen_fd);
/* Stops accepting; connections finish their request and close. */
void http_models_drain(struct server *srv);
/* Joins the acceptor (after http_models_drain). */
void http_models_stop(struct server *srv);

#endif
