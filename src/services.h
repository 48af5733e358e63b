/* services: the protocols `weft serve` runs, each a struct service for the core. */
#ifndef WEFT_SERVICES_H
#define WEFT_SERVICES_H

#include "core/server.h"

extern const struct service http_service;
extern const struct service echo_service;
extern const struct service admin_service;
extern const struct service chat_service;

/* The chat service's open rooms and members on all workers (0 when it is off). */
void chat_counts(const struct server *srv, int *rooms, int *clients);
/* Workers whose Redis bridge is connected (--redis). */
int chat_redis_workers_up(const struct server *srv);

#endif
