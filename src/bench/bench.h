/* bench: `weft bench`, the load generator (HTTP targets, closed and open loop).
 *
 * Share-nothing threads like wrk2: each worker thread runs its own epoll loop over its own
 * connections and keeps its own histograms and counters; the main thread merges them at the end.
 * All times are CLOCK_MONOTONIC microseconds. */
#ifndef WEFT_BENCH_BENCH_H
#define WEFT_BENCH_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/hist.h"

enum bench_mode { BENCH_CLOSED, BENCH_OPEN };

enum bench_err {
    BENCH_ERR_CONNECT,
    BENCH_ERR_READ,
    BENCH_ERR_WRITE,
    BENCH_ERR_TIMEOUT,
    BENCH_ERR_STATUS, /* a response with status >= 400 (also counted as a request) */
    BENCH_ERR_PROTOCOL,
    BENCH_ERR_KINDS
};

#define BENCH_MAX_STATUS 600

/* What every worker reads; set up once by bench_main, read-only while threads run. */
struct bench_target {
    enum bench_mode mode;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    const char *request; /* the bytes of one request */
    size_t request_len;
    int head_only;       /* method HEAD: responses have no body */
    int new_conn;        /* a connection per request */
    uint64_t timeout_us; /* per request */
};

/* One worker thread's share of the run and its results. */
struct bench_worker {
    const struct bench_target *t;
    int conns;       /* connections (closed) or the connection cap (open) */
    uint64_t total;  /* closed: requests to send, 0 for "until end_us"; open: scheduled */
    uint64_t t0_us;  /* open: start of this worker's schedule */
    double rps;      /* open: this worker's rate */
    uint64_t end_us; /* closed with -d: stop sending; open: end of the schedule */

    uint64_t requests; /* responses received, whatever their status */
    uint64_t errors[BENCH_ERR_KINDS];
    uint64_t dropped; /* open: due while every connection was busy */
    uint64_t status[BENCH_MAX_STATUS];
    struct hist *lat;     /* closed: from send; open: from the scheduled start (corrected) */
    struct hist *lat_unc; /* open: from the actual send (uncorrected) */
    char fail[128];       /* set when the worker could not run at all */
};

/* Runs one worker's connections to completion (http_client.c). 0, or -1 with w->fail set. */
int bench_worker_run(struct bench_worker *w);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t bench_now_us(void);

/* `weft bench MODE [options] URL`; argv[0] is the mode. Returns the process exit status. */
int bench_main(int argc, char **argv);

/* The text of `weft help bench`. */
void bench_print_help(FILE *out);

#endif
