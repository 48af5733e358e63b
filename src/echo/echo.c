/* echo: every byte received is sent back, in order. The input buffer itself goes into the
 * output queue (no copy); backpressure in the core stops reading from a peer that does not read
 * its echo. */
#include "core/conn.h"
#include "services.h"

static int echo_data(struct conn *c)
{
    if (conn_push_buf(c, c->in, c->in->data + c->in_off, c->in_len - c->in_off) < 0)
        return -1;
    c->in_off = c->in_len;
    return 0;
}

static const struct proto echo_proto = {
    .name = "echo",
    .on_data = echo_data,
};

const struct service echo_service = {
    .name = "echo",
    .proto = &echo_proto,
};
