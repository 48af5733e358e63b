/* net: listening sockets. */
#ifndef WEFT_CORE_NET_H
#define WEFT_CORE_NET_H

#include <stdint.h>

#include "core/config.h"

/* Opens a non-blocking SO_REUSEPORT listener on addr (port overrides addr->port when not 0).
 * Returns the fd, or -errno with a message in err. *bound_port gets the port bound. */
int net_listen(const struct config_addr *addr, uint16_t port, uint16_t *bound_port, char *err,
               size_t errlen);

/* Has the kernel hand over a listener's connections only once their first bytes arrive, or
 * once `seconds` (rounded up) passed without any (TCP_DEFER_ACCEPT): for protocols where the
 * client speaks first, it saves a wake-up per connection. Returns 0 or -errno. */
int net_defer_accept(int fd, double seconds);

/* Formats host:port, bracketing IPv6 hosts. */
void net_format_addr(const char *host, uint16_t port, char *out, size_t outlen);

#endif
