/* modes: what each `weft bench MODE` does with its runs: closed and open (repeated K times
 * with --repeat), sweep (closed at each concurrency, the median of K runs per point), preset
 * (a profile's sweep to find the capacity, then open runs at fractions of it) and models (the
 * same closed load against `weft serve --model blocking|threaded|async`, started here). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/profiles.h"

#define SWEEP_DEFAULT_S 5.0   /* -d of sweep and models when neither -d nor -n is given */
#define SERVER_START_MS 10000 /* a model's server has this long to print `listening http` */
#define SERVER_STOP_MS 10000  /* then SIGKILL */
#define SERVER_ERR_TAIL 2000  /* bytes of a failed server's stderr shown */

/* The load of a plain closed or open call. */
static struct bench_load load_of(const struct bench_opts *o)
{
    return (struct bench_load){.mode = o->cmd == CMD_OPEN ? BENCH_OPEN : BENCH_CLOSED,
                               .conns = o->conns,
                               .rps = o->rps,
                               .duration_s = o->total ? 0 : o->duration_s,
                               .total = o->total,
                               .threads = o->threads,
                               .subscribers = o->subscribers,
                               .warmup_s = o->warmup_s,
                               .think_us = o->think_us};
}

/* Writes the files asked for and returns the exit status the results call for. */
static int finish(const struct bench_opts *o, const struct bench_result *rs, int n)
{
    int rc = 0;
    long long batch = (long long)time(NULL);
    if (o->json_path && bench_write_json(o->json_path, o, rs, n) < 0) {
        fprintf(stderr, "weft bench: cannot write %s\n", o->json_path);
        rc = 1;
    }
    if (o->csv_path && bench_write_csv(o->csv_path, o, rs, n, batch) < 0) {
        fprintf(stderr, "weft bench: cannot write %s\n", o->csv_path);
        rc = 1;
    }
    if (o->html_path && bench_write_html(o->html_path, o, rs, n) < 0) {
        fprintf(stderr, "weft bench: cannot write %s\n", o->html_path);
        rc = 1;
    }
    uint64_t reqs = 0, errs = 0;
    for (int i = 0; i < n; i++) {
        reqs += rs[i].requests;
        errs += rs[i].errors_total;
    }
    if (o->strict && errs > 0)
        rc = 1;
    if (o->max_error_rate >= 0 && errs > 0 &&
        (reqs == 0 || (double)errs / (double)reqs > o->max_error_rate))
        rc = 1;
    return rc;
}

/* n initialised results, or NULL (after saying so) when out of memory. */
static struct bench_result *results_new(int n)
{
    struct bench_result *rs = calloc((size_t)n, sizeof *rs);
    for (int i = 0; rs && i < n; i++) {
        if (bench_result_init(&rs[i]) < 0) {
            while (i-- > 0)
                bench_result_free(&rs[i]);
            free(rs);
            rs = NULL;
        }
    }
    if (!rs)
        fprintf(stderr, "weft bench: out of memory\n");
    return rs;
}

static void results_free(struct bench_result *rs, int n)
{
    for (int i = 0; rs && i < n; i++)
        bench_result_free(&rs[i]);
    free(rs);
}

/* What the median of repeated runs is taken of, higher being better (so the lower median of an
 * even count is the worse run): req/s for closed loads; for open ones, whose rate is fixed, the
 * corrected p99, negated. */
static double run_key(const struct bench_result *r)
{
    if (r->load.mode == BENCH_OPEN)
        return -(double)hist_percentile(r->lat, 99);
    return bench_result_rps(r);
}

/* Runs load l `repeat` times into rs[0..repeat) (initialised), the warm-up before the first run
 * only. The index of the median run, or -1 when a run failed. */
static int run_repeated(const struct bench_opts *o, const struct bench_target *t,
                        const struct bench_load *l, int repeat, struct bench_result *rs)
{
    double keys[1000];
    struct bench_load one = *l;
    if (repeat > (int)(sizeof keys / sizeof keys[0]))
        repeat = (int)(sizeof keys / sizeof keys[0]);
    for (int k = 0; k < repeat; k++) {
        if (bench_run(o, t, &one, &rs[k]) < 0)
            return -1;
        keys[k] = run_key(&rs[k]);
        one.warmup_s = 0;
    }
    return bench_median_index(keys, repeat);
}

/* The median of `repeat` runs of l into *out (initialised), labelled. 0, or -1. */
static int run_point(const struct bench_opts *o, const struct bench_target *t,
                     const struct bench_load *l, int repeat, struct bench_result *out,
                     const char *label)
{
    struct bench_result *rs = results_new(repeat);
    if (!rs)
        return -1;
    int m = run_repeated(o, t, l, repeat, rs);
    if (m >= 0) {
        /* Swapped, not copied: the result owns its histograms. */
        struct bench_result tmp = *out;
        *out = rs[m];
        rs[m] = tmp;
        snprintf(out->label, sizeof out->label, "%s", label);
    }
    results_free(rs, repeat);
    return m >= 0 ? 0 : -1;
}

/* closed and open: one run, or with --repeat K, K runs in a table and the median one in full. */
static int mode_single(const struct bench_opts *o, const struct bench_target *t)
{
    int k = o->repeat > 0 ? o->repeat : 1;
    struct bench_result *rs = results_new(k);
    if (!rs)
        return 1;
    struct bench_load l = load_of(o);
    int rc = 1, m = run_repeated(o, t, &l, k, rs);
    if (m >= 0 && k == 1) {
        snprintf(rs[0].label, sizeof rs[0].label, "%s", o->mode_name);
        bench_print_result(stdout, o, &rs[0]);
        fflush(stdout);
        rc = finish(o, rs, 1);
    } else if (m >= 0) {
        for (int i = 0; i < k; i++)
            snprintf(rs[i].label, sizeof rs[i].label, "run %d%s", i + 1, i == m ? " (median)" : "");
        bench_print_table(stdout, o, rs, k);
        fprintf(stdout, "\nthe median of %d runs by %s: run %d\n", k,
                l.mode == BENCH_OPEN ? "corrected p99" : "req/s", m + 1);
        bench_print_result(stdout, o, &rs[m]);
        fflush(stdout);
        rc = finish(o, rs, k);
    }
    results_free(rs, k);
    return rc;
}

/* Runs a closed sweep over conc[0..n) into pts (initialised), each point the median of repeat
 * runs of load base at that concurrency, labelled "c=N". 0, or -1. */
static int sweep(const struct bench_opts *o, const struct bench_target *t,
                 const struct bench_load *base, const int *conc, int n, int repeat,
                 struct bench_result *pts)
{
    for (int i = 0; i < n; i++) {
        struct bench_load l = *base;
        l.mode = BENCH_CLOSED;
        l.conns = conc[i];
        char label[32];
        snprintf(label, sizeof label, "c=%d", conc[i]);
        if (run_point(o, t, &l, repeat, &pts[i], label) < 0)
            return -1;
    }
    return 0;
}

/* The -d of sweep and models: -d, or for -n none, or SWEEP_DEFAULT_S. */
static double sweep_duration(const struct bench_opts *o)
{
    if (o->total)
        return 0;
    return o->duration_set ? o->duration_s : SWEEP_DEFAULT_S;
}

static void print_run_shape(FILE *out, const struct bench_opts *o, const struct bench_load *l,
                            int repeat)
{
    if (l->total)
        fprintf(out, "%llu requests per run", (unsigned long long)l->total);
    else
        fprintf(out, "%g s per run", l->duration_s);
    if (l->warmup_s > 0)
        fprintf(out, " after %g s of warm-up", l->warmup_s);
    if (repeat > 1)
        fprintf(out, ", the median of %d runs by req/s", repeat);
    fprintf(out, ", %d threads%s\n", l->threads,
            o->new_conn ? ", a new connection per request" : "");
}

static int mode_sweep(const struct bench_opts *o, const struct bench_target *t)
{
    int n = o->nconcurrencies, repeat = o->repeat > 0 ? o->repeat : 1;
    struct bench_result *pts = results_new(n);
    if (!pts)
        return 1;
    struct bench_load l = load_of(o);
    l.duration_s = sweep_duration(o);
    int rc = 1;
    if (sweep(o, t, &l, o->concurrencies, n, repeat, pts) == 0) {
        printf("weft bench sweep %s: ", o->url);
        print_run_shape(stdout, o, &l, repeat);
        bench_print_table(stdout, o, pts, n);
        fflush(stdout);
        rc = finish(o, pts, n);
    }
    results_free(pts, n);
    return rc;
}

/* The preset's profile: built in, then --config, then -d, -t, --warmup, --repeat and -c or
 * --concurrency (the open runs' cap) when given. 0, or a usage error's exit status. */
static int preset_profile(const struct bench_opts *o, struct bench_profile *p)
{
    bench_profile_builtin(o->profile ? o->profile : "standard", p);
    char err[640];
    if (o->config_path && bench_profile_load(p, o->config_path, err, sizeof err) < 0) {
        fprintf(stderr, "weft bench: %s\n", err);
        return 2;
    }
    if (o->duration_set)
        p->duration_s = p->open_duration_s = o->duration_s;
    if (o->threads_set)
        p->threads = o->threads;
    if (o->warmup_set)
        p->warmup_s = o->warmup_s;
    if (o->repeat_set)
        p->repeat = o->repeat;
    if (o->conns_set)
        p->concurrency_cap = o->conns;
    return 0;
}

static int mode_preset(const struct bench_opts *o, const struct bench_target *t)
{
    struct bench_profile p;
    int rc = preset_profile(o, &p);
    if (rc)
        return rc;
    int ns = p.nconcurrencies, n = ns + p.nloads;
    struct bench_result *rs = results_new(n);
    if (!rs)
        return 1;
    struct bench_load l = load_of(o);
    l.duration_s = p.duration_s;
    l.threads = p.threads;
    l.warmup_s = p.warmup_s;
    rc = 1;
    if (sweep(o, t, &l, p.concurrencies, ns, p.repeat, rs) < 0)
        goto out;
    printf("weft bench preset %s: profile %s%s%s\n", o->url, p.name, o->config_path ? " with " : "",
           o->config_path ? o->config_path : "");
    printf("sweep: closed, ");
    print_run_shape(stdout, o, &l, p.repeat);
    bench_print_table(stdout, o, rs, ns);
    int best = 0;
    for (int i = 1; i < ns; i++)
        if (bench_result_rps(&rs[i]) > bench_result_rps(&rs[best]))
            best = i;
    double capacity = bench_result_rps(&rs[best]);
    printf("\ncapacity: %.1f req/s at %s\n", capacity, rs[best].label);
    fflush(stdout);
    if (capacity <= 0) {
        fprintf(stderr, "weft bench: the sweep got no responses; no open runs\n");
        goto out;
    }
    struct bench_load ol = l;
    ol.mode = BENCH_OPEN;
    ol.total = 0;
    ol.duration_s = p.open_duration_s;
    ol.conns = bench_profile_open_conns(&p, p.concurrencies[best]);
    for (int i = 0; i < p.nloads; i++) {
        char label[32];
        snprintf(label, sizeof label, "open %g%%", p.loads[i] * 100);
        ol.rps = capacity * p.loads[i];
        if (run_point(o, t, &ol, 1, &rs[ns + i], label) < 0)
            goto out;
    }
    printf("\nopen: %g s per run", ol.duration_s);
    if (ol.warmup_s > 0)
        printf(" after %g s of warm-up", ol.warmup_s);
    printf(", at most %d connections, %d threads\n", ol.conns, ol.threads);
    bench_print_table(stdout, o, rs + ns, p.nloads);
    fflush(stdout);
    rc = finish(o, rs, n);
out:
    results_free(rs, n);
    return rc;
}

/* One `weft serve --model M` started by models: its pid, the pipe of its stdout and the file
 * its stderr goes to. */
struct server {
    pid_t pid;
    int out_fd;
    FILE *err;
    char port[16];
};

static uint64_t now_ms(void)
{
    return bench_now_us() / 1000;
}

/* Prints the end of the server's stderr (the reason it failed). */
static void server_show_stderr(struct server *s, const char *model)
{
    if (!s->err)
        return;
    char buf[SERVER_ERR_TAIL + 1];
    fflush(s->err);
    long end = fseek(s->err, 0, SEEK_END) == 0 ? ftell(s->err) : 0;
    long from = end > SERVER_ERR_TAIL ? end - SERVER_ERR_TAIL : 0;
    if (fseek(s->err, from, SEEK_SET) != 0)
        return;
    size_t n = fread(buf, 1, SERVER_ERR_TAIL, s->err);
    buf[n] = 0;
    if (n)
        fprintf(stderr, "weft bench: the %s server's stderr:\n%s%s", model, buf,
                buf[n - 1] == '\n' ? "" : "\n");
}

/* Waits up to ms for the server to exit; its wait status, or -1 when it is still running. */
static int server_wait(struct server *s, uint64_t ms)
{
    uint64_t deadline = now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid || (r < 0 && errno == ECHILD)) {
            s->pid = 0;
            return r > 0 ? st : 0;
        }
        if (now_ms() >= deadline)
            return -1;
        struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* SIGTERM, a wait, SIGKILL after SERVER_STOP_MS; the descriptors closed. 0 when the server
 * exited 0, else -1 (after saying why, with its stderr, which show_err also asks for). */
static int server_stop(struct server *s, const char *model, int show_err)
{
    int rc = 0;
    if (s->pid > 0) {
        pid_t pid = s->pid;
        kill(pid, SIGTERM);
        int st = server_wait(s, SERVER_STOP_MS);
        if (st < 0) {
            fprintf(stderr, "weft bench: the %s server did not stop within %d s; killed\n", model,
                    SERVER_STOP_MS / 1000);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            s->pid = 0;
            rc = -1;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (WIFSIGNALED(st))
                fprintf(stderr, "weft bench: the %s server was killed by signal %d\n", model,
                        WTERMSIG(st));
            else
                fprintf(stderr, "weft bench: the %s server exited with status %d\n", model,
                        WEXITSTATUS(st));
            rc = -1;
        }
    }
    if (rc < 0 || show_err)
        server_show_stderr(s, model);
    if (s->out_fd >= 0)
        close(s->out_fd);
    s->out_fd = -1;
    if (s->err)
        fclose(s->err);
    s->err = NULL;
    return rc;
}

/* Reads the server's stdout until its `listening http HOST:PORT` line, for SERVER_START_MS at
 * most. 0 with s->port set, or -1. */
static int server_read_port(struct server *s)
{
    char buf[4096];
    size_t len = 0;
    uint64_t deadline = now_ms() + SERVER_START_MS;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            *nl = 0;
            const char *colon = strrchr(buf, ':');
            if (strncmp(buf, "listening http ", 15) == 0 && colon && colon[1] &&
                strlen(colon + 1) < sizeof s->port) {
                strcpy(s->port, colon + 1);
                return 0;
            }
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len);
        }
        if (len == sizeof buf)
            len = 0; /* a line this long is not the one */
        uint64_t now = now_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = s->out_fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = read(s->out_fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* the server exited or closed its stdout */
        len += (size_t)n;
    }
}

/* Starts `weft serve --model model` with only the http service, on an ephemeral port of
 * 127.0.0.1, and waits for its port. 0, or -1 (after saying why, the server stopped). */
static int server_start(struct server *s, const char *model)
{
    memset(s, 0, sizeof *s);
    s->out_fd = -1;
    s->err = tmpfile();
    if (s->err) /* the child's stderr is a dup2 of it: the file itself stays out of the child */
        fcntl(fileno(s->err), F_SETFD, FD_CLOEXEC);
    int p[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!s->err || devnull < 0 || pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "weft bench: cannot start a server: %s\n", strerror(errno));
        if (devnull >= 0)
            close(devnull);
        server_stop(s, model, 0);
        return -1;
    }
    char *const argv[] = {
        "weft",        "serve",       "--model",    (char *)model, "--http",
        "127.0.0.1:0", "--echo",      "off",        "--chat",      "off",
        "--admin",     "off",         "--balancer", "off",         "--shutdown-timeout",
        "2s",          "--log-level", "warn",       NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The server goes when weft bench goes, however it ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        if (dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(fileno(s->err), 2) < 0)
            _exit(127);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int e = errno;
    close(devnull);
    close(p[1]);
    s->out_fd = p[0];
    if (pid < 0) {
        fprintf(stderr, "weft bench: cannot start a server: %s\n", strerror(e));
        server_stop(s, model, 0);
        return -1;
    }
    s->pid = pid;
    if (server_read_port(s) < 0) {
        fprintf(stderr, "weft bench: the %s server did not print its port within %d s\n", model,
                SERVER_START_MS / 1000);
        server_stop(s, model, 1);
        return -1;
    }
    return 0;
}

/* The same closed load against a server of each model, started and stopped in turn. */
static int mode_models(const struct bench_opts *o)
{
    static const char *const models[] = {"blocking", "threaded", "async"};
    enum { NMODELS = sizeof models / sizeof models[0] };
    int repeat = o->repeat > 0 ? o->repeat : 1;
    struct bench_result *rs = results_new(NMODELS);
    if (!rs)
        return 1;
    struct bench_load l = load_of(o);
    l.duration_s = sweep_duration(o);
    int rc = 1, i;
    for (i = 0; i < NMODELS; i++) {
        struct server s;
        if (server_start(&s, models[i]) < 0)
            break;
        char url[512];
        struct bench_opts mo = *o;
        snprintf(mo.host, sizeof mo.host, "127.0.0.1");
        snprintf(mo.port, sizeof mo.port, "%s", s.port);
        snprintf(url, sizeof url, "http://127.0.0.1:%s%s", s.port, o->path);
        mo.url = url;
        struct bench_target t;
        int ok = bench_target_init(&t, &mo) == 0;
        if (ok) {
            ok = run_point(&mo, &t, &l, repeat, &rs[i], models[i]) == 0;
            bench_target_free(&t);
        }
        ok &= server_stop(&s, models[i], 0) == 0;
        if (!ok)
            break;
    }
    if (i == NMODELS) {
        printf("weft bench models %s: closed, %d connections, ", o->path, l.conns);
        print_run_shape(stdout, o, &l, repeat);
        bench_print_table(stdout, o, rs, NMODELS);
        fflush(stdout);
        struct bench_opts fo = *o;
        fo.url = o->path;
        rc = finish(&fo, rs, NMODELS);
    }
    results_free(rs, NMODELS);
    return rc;
}

/* Sweeps and presets go to thousands of connections: the soft descriptor limit is raised to
 * the hard one (the model servers inherit it). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int bench_mode_run(const struct bench_opts *o, const struct bench_target *t)
{
    raise_nofile();
    switch (o->cmd) {
    case CMD_CLOSED:
    case CMD_OPEN:
        return mode_single(o, t);
    case CMD_SWEEP:
        return mode_sweep(o, t);
    case CMD_PRESET:
        return mode_preset(o, t);
    case CMD_MODELS:
        return mode_models(o);
    }
    return 2;
}
