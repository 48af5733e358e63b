/* bench: `weft bench`, the load generator (http://, ws:// and tcp:// targets).
 *
 * Share-nothing threads like wrk2: each worker thread runs its own epoll loop over its own
 * connections and keeps its own histograms and counters; the main thread merges them at the end.
 * All times are CLOCK_MONOTONIC microseconds.
 *
 * The pieces: bench.c parses one call's options (struct bench_opts) and hands them to a mode
 * (modes.c: closed, open, sweep, preset, models); a mode performs one or more runs (run.c: one
 * load, struct bench_load, applied to the target with -t threads and merged into a struct
 * bench_result); report.c prints and writes the results (table, JSON, CSV, HTML, the progress
 * line). The worker loops live in http_client.c (http:// and tcp://) and ws_client.c (ws://). */
#ifndef WEFT_BENCH_BENCH_H
#define WEFT_BENCH_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/hist.h"

enum bench_proto { BENCH_HTTP, BENCH_WS, BENCH_TCP };

/* The shape of one run's load. */
enum bench_mode { BENCH_CLOSED, BENCH_OPEN };

/* What a call asked for (the MODE word). */
enum bench_cmd { CMD_CLOSED, CMD_OPEN, CMD_SWEEP, CMD_PRESET, CMD_MODELS };

enum bench_err {
    BENCH_ERR_CONNECT,
    BENCH_ERR_READ,
    BENCH_ERR_WRITE,
    BENCH_ERR_TIMEOUT,
    BENCH_ERR_STATUS, /* a response with status >= 400 (also counted as a request) */
    BENCH_ERR_PROTOCOL,
    BENCH_ERR_KINDS
};

extern const char *const bench_err_names[BENCH_ERR_KINDS];

#define BENCH_MAX_STATUS 600
#define BENCH_MAX_HEADERS 64
#define BENCH_MAX_CONCURRENCIES 64
#define BENCH_TL_SLOTS 600 /* latency-over-time slots per run */

/* One call's options, as parsed from the command line. Read-only once parsed. */
struct bench_opts {
    enum bench_cmd cmd;
    const char *mode_name;
    enum bench_proto proto;
    int conns; /* -c (closed, sweep default) or --concurrency (open cap) */
    int conns_set;
    double duration_s;
    int duration_set;
    uint64_t total; /* -n */
    int threads;
    int threads_set; /* -t, --warmup and --repeat given: they override a preset's profile */
    double timeout_s;
    const char *method;
    const char *headers[BENCH_MAX_HEADERS];
    int nheaders;
    const char *body;
    int new_conn;
    int co_correct; /* closed: also report latency corrected for coordinated omission, as wrk */
    uint64_t busy_poll_us; /* http, tcp: poll this long before sleeping (0: sleep at once) */
    uint64_t think_us;     /* closed, http, tcp: a connection's pause after each response */
    int think_set;
    double rps;
    int strict;
    double max_error_rate; /* < 0: not set */
    double warmup_s;       /* load before each measured run, not recorded */
    int warmup_set;
    int repeat; /* runs per measurement point; sweeps and presets report medians */
    int repeat_set;
    int concurrencies[BENCH_MAX_CONCURRENCIES]; /* sweep: --concurrencies */
    int nconcurrencies;
    const char *profile;     /* preset: smoke, standard or stress */
    const char *config_path; /* preset: a JSON file overriding the profiles */
    int subscribers;         /* ws: receivers */
    size_t size;             /* tcp: bytes per echo message; ws: message text bytes */
    const char *json_path, *csv_path, *html_path;
    int progress; /* a live progress line on stderr (a terminal, not --quiet) */
    const char *url;
    char host[256];
    char port[16];
    const char *path; /* http and ws: path and query */
};

/* What every worker reads; set up once per call, read-only while threads run. */
struct bench_target {
    enum bench_proto proto;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    /* http: the bytes of one request; ws: the upgrade request; tcp: one message (--size). */
    const char *request;
    size_t request_len;
    int head_only;         /* method HEAD: responses have no body */
    int new_conn;          /* a connection per request */
    uint64_t timeout_us;   /* per request */
    size_t msg_size;       /* ws: text bytes of each message the sender sends */
    uint64_t busy_poll_us; /* http, tcp: --busy-poll */
};

/* One run's load. */
struct bench_load {
    enum bench_mode mode;
    int conns;         /* closed: connections; open: most connections at once */
    double rps;        /* open: requests (ws: messages) per second */
    double duration_s; /* run time; 0 when total is set */
    uint64_t total;    /* closed: requests to send, 0 for "for duration_s" */
    int threads;
    int subscribers;   /* ws: receivers (the sender is one more connection) */
    double warmup_s;   /* load of the same shape before the measured run; not recorded */
    uint64_t think_us; /* closed, http and tcp: pause after each response (0: none) */
};

/* Latency over time: per slot, the completions, their latency sum and maximum. */
struct bench_timeline {
    uint64_t slot_us; /* width of a slot */
    uint64_t count[BENCH_TL_SLOTS];
    uint64_t sum_us[BENCH_TL_SLOTS];
    uint64_t max_us[BENCH_TL_SLOTS];
};

/* What the workers of one ws:// run share, through atomics (run.c sets conns and run_id, the
 * rest starts at zero): a start barrier, so that no message is sent before every connection has
 * joined the room and its presence messages have settled, and the sender's end. */
struct bench_ws_sync {
    int conns;        /* the run's connections on all workers, the sender's included */
    uint64_t run_id;  /* in every text: other runs' messages are not counted */
    int arrived;      /* connections ready (joined, room settled) or failed, before the start */
    int failed;       /* connections that failed before the start */
    uint64_t go_us;   /* when the last arrived: the measured run starts; 0 until then */
    double go_cpu_s;  /* the process's CPU seconds (user + system) at go_us */
    int sender_done;  /* set (release) once the sender has sent its last message; then: */
    uint64_t expect;  /* messages each subscriber should receive */
    uint64_t done_us; /* when the sender finished: deliveries get the timeout from here */
    /* Closed loop: the sender's next message waits until every live subscriber has the last. */
    uint64_t cur_seq; /* the message in flight (atomic; UINT64_MAX: none) */
    int cur_got;      /* subscribers that have it (atomic) */
    int lost;         /* subscribers lost after the start (atomic) */
    int wake_fd;      /* eventfd in the sender's loop: cur_got reached them all, or one was lost */
};

/* One worker thread's share of the run and its results. */
struct bench_worker {
    const struct bench_target *t;
    enum bench_mode mode;
    int conns;         /* connections (closed) or the connection cap (open) */
    uint64_t total;    /* closed: requests to send, 0 for "until end_us"; open: scheduled */
    uint64_t t0_us;    /* start of the measured run (open: of this worker's schedule) */
    double rps;        /* open: this worker's rate */
    uint64_t end_us;   /* closed with -d: stop sending; open: end of the schedule */
    uint64_t think_us; /* closed: each connection waits this long after a response */
    int sender;        /* ws: this worker runs the sender connection */
    int subscribers;   /* ws: receivers on this worker */
    struct bench_ws_sync *sync; /* ws: shared by the run's workers */

    /* Results. requests and errors are read (racily, for the progress line) while running. */
    uint64_t requests; /* responses received, whatever their status; ws: messages sent */
    uint64_t errors[BENCH_ERR_KINDS];
    uint64_t dropped;    /* open: due while every connection was busy */
    uint64_t deliveries; /* ws: messages received by subscribers */
    uint64_t unanswered; /* requests still in flight when the run ended (not in requests) */
    uint64_t poll_us;    /* --busy-poll: time spent polling for events instead of sleeping */
    uint64_t status[BENCH_MAX_STATUS];
    struct hist *lat;          /* closed: from send; open: from the scheduled start (corrected);
                                  ws: fan-out latency, send to each subscriber's receipt */
    struct hist *lat_unc;      /* open: from the actual send (uncorrected) */
    struct bench_timeline *tl; /* completions by time since t0_us */
    char fail[128];            /* set when the worker could not run at all */
};

/* The merged result of one run. */
struct bench_result {
    char label[64]; /* what distinguishes this run within the call: "c=10", "50%", "async" */
    struct bench_load load;
    uint64_t requests, errors[BENCH_ERR_KINDS], errors_total, dropped, deliveries, unanswered;
    uint64_t status[BENCH_MAX_STATUS];
    struct hist *lat, *lat_unc;
    struct bench_timeline *tl;
    double elapsed_s;
    double cpu_pct;   /* the generator's own CPU, % of one core */
    uint64_t poll_us; /* --busy-poll: time the threads spent polling, a part of cpu_pct */
};

/* Worker loops: run one worker's connections to completion. 0, or -1 with w->fail set. */
int bench_http_worker_run(struct bench_worker *w); /* http:// and tcp:// (http_client.c) */
int bench_ws_worker_run(struct bench_worker *w);   /* ws:// (ws_client.c) */

/* Records one completion at `now` with latency `lat_us` into w's timeline. */
void bench_timeline_record(struct bench_worker *w, uint64_t now, uint64_t lat_us);

/* Sends p[*off..len) on non-blocking fd until done or the socket is full, advancing *off.
 * 0, or -1 on an error (errno set). Shared by the worker loops (run.c). */
int bench_send(int fd, const void *p, size_t len, size_t *off);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t bench_now_us(void);

/* bench.c: resolves the target of o and builds what its connections send. 0, or -1 after
 * printing why. bench_target_free releases it. */
int bench_target_init(struct bench_target *t, const struct bench_opts *o);
void bench_target_free(struct bench_target *t);

/* run.c: result storage, and one run of load l against t, merged into r (which must be
 * initialised). 0, or -1 after printing why on stderr. */
int bench_result_init(struct bench_result *r);
void bench_result_free(struct bench_result *r);
int bench_run(const struct bench_opts *o, const struct bench_target *t, const struct bench_load *l,
              struct bench_result *r);

/* modes.c: one call of `weft bench MODE`; returns the process exit status. */
int bench_mode_run(const struct bench_opts *o, const struct bench_target *t);

/* report.c. rps of a result: requests / elapsed. */
double bench_result_rps(const struct bench_result *r);
/* The full report of one run (closed and open): counts, errors, latency rows, CPU. */
void bench_print_result(FILE *out, const struct bench_opts *o, const struct bench_result *r);
/* One row per run, side by side (sweep, preset, models). */
void bench_print_table(FILE *out, const struct bench_opts *o, const struct bench_result *rs, int n);
/* The files of --json, --csv and --html for all runs of one call. 0, or -1 (errno set). */
int bench_write_json(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                     int n);
int bench_write_csv(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                    int n, long long batch_ts);
int bench_write_html(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                     int n);
/* The live progress line (stderr, a terminal only): called about once a second during a run,
 * then once with done = 1 to clear it. */
void bench_progress(const struct bench_opts *o, const struct bench_load *l, double elapsed_s,
                    uint64_t requests, uint64_t errors, int done);

/* `weft bench MODE [options] URL`; argv[0] is the mode. Returns the process exit status. */
int bench_main(int argc, char **argv);

/* The text of `weft help bench`. */
void bench_print_help(FILE *out);

#endif
