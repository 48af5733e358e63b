/* Unit tests of core/config: defaults, the file reader, the flag parser, the value parsers and
 * the cross-field rules. Config files are written to temporary files by the tests themselves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

#define ERRLEN 4096

struct tmpfile {
    char path[64];
};

/* Writes text to a new temporary file; the caller unlinks it with tmp_done. */
static void tmp_write(struct tmpfile *t, const char *text)
{
    snprintf(t->path, sizeof t->path, "/tmp/weft-test-XXXXXX");
    int fd = mkstemp(t->path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void tmp_done(struct tmpfile *t)
{
    unlink(t->path);
}

/* Runs config_parse_args over defaults with a NULL-terminated list of arguments. */
static int parse(struct config *cfg, char *err, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    config_defaults(cfg);
    return config_parse_args(cfg, argc, argv, err, ERRLEN);
}

/* Loads text as a config file over defaults; err gets the messages with the path as "F". */
static int load_text(struct config *cfg, const char *text, char *err)
{
    struct tmpfile t;
    char raw[ERRLEN];
    tmp_write(&t, text);
    config_defaults(cfg);
    int rc = config_load_file(cfg, t.path, raw, sizeof raw);
    tmp_done(&t);
    /* Replace every occurrence of the random path by "F" so tests can compare whole lines. */
    size_t plen = strlen(t.path), o = 0;
    for (const char *p = raw; *p && o + 1 < ERRLEN;) {
        if (strncmp(p, t.path, plen) == 0) {
            err[o++] = 'F';
            p += plen;
        } else {
            err[o++] = *p++;
        }
    }
    err[o] = '\0';
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    const char *hosts[SVC_COUNT] = {"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
                                    "127.0.0.1"};
    const uint16_t ports[SVC_COUNT] = {8080, 8081, 8082, 8083, 9090};
    for (int i = 0; i < SVC_COUNT; i++) {
        assert_int_equal(c.listen[i].enabled, 1);
        assert_string_equal(c.listen[i].host, hosts[i]);
        assert_int_equal(c.listen[i].port, ports[i]);
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c.workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(c.max_connections, 10000);
    assert_int_equal(c.blocking_threads, 16);
    assert_true(c.shutdown_timeout == 10.0);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.io, IO_EPOLL);
    assert_true(c.defer_accept == 1.0);
    assert_int_equal(c.model, MODEL_ASYNC);
    assert_string_equal(c.access_log, "");
    assert_string_equal(c.static_dir, "");
    assert_int_equal(c.http_max_head, 8192);
    assert_int_equal(c.http_max_body, 1048576);
    assert_true(c.http_head_timeout == 10.0);
    assert_true(c.http_keepalive_timeout == 60.0);
    assert_int_equal(c.chat_origin_count, 0);
    assert_int_equal(c.chat_max_message, 65536);
    assert_int_equal(c.chat_max_rooms, 1000);
    assert_int_equal(c.chat_max_clients_per_room, 10000);
    assert_int_equal(c.chat_max_queue, 4 * 1048576);
    assert_int_equal(c.chat_slow_policy, SLOW_CLOSE);
    assert_string_equal(c.redis, "");
    assert_int_equal(c.backend_count, 0);
    assert_int_equal(c.strategy, STRAT_ROUND_ROBIN);
    assert_string_equal(c.hash_header, "");
    assert_true(c.health_interval == 5.0);
    assert_int_equal(c.balancer_mode, BAL_HTTP);
    char err[ERRLEN];
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_string_equal(service_names[SVC_BALANCER], "balancer");
}

static void test_parse_addr(void **state)
{
    (void)state;
    struct config_addr a;
    assert_int_equal(config_parse_addr("0.0.0.0:80", &a), 0);
    assert_int_equal(a.enabled, 1);
    assert_string_equal(a.host, "0.0.0.0");
    assert_int_equal(a.port, 80);
    assert_int_equal(config_parse_addr("[::1]:0", &a), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 0);
    assert_int_equal(config_parse_addr("[::]:65535", &a), 0);
    assert_int_equal(a.port, 65535);
    assert_int_equal(config_parse_addr(":8080", &a), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 8080);
    assert_int_equal(config_parse_addr("localhost:1", &a), 0);
    assert_string_equal(a.host, "localhost");
    assert_int_equal(config_parse_addr("off", &a), 0);
    assert_int_equal(a.enabled, 0);

    const char *bad[] = {"127.0.0.1:65536",
                         "127.0.0.1:-1",
                         "127.0.0.1:abc",
                         "127.0.0.1",
                         "127.0.0.1:",
                         "8080",
                         "",
                         "::1:80",
                         "[::1]80",
                         "[::1]:",
                         "[1.2.3.4]:80",
                         "[::1:80",
                         "1.2.3:80",
                         "256.1.1.1:80",
                         "a b:80",
                         "-host:80",
                         "host-:80",
                         "ho..st:80",
                         "127.0.0.1:80 ",
                         " 127.0.0.1:80",
                         "127.0.0.1:+80",
                         "OFF",
                         "off ",
                         "x:99999999999",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_parse_addr(bad[i], &a) == 0)
            fail_msg("accepted bad address '%s'", bad[i]);
    }
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t v;
    } good[] = {{"0", 0},          {"512", 512},     {"125B", 125},       {"64K", 65536},
                {"64k", 65536},    {"64KB", 65536},  {"64KiB", 65536},    {"1M", 1048576},
                {"1MiB", 1048576}, {"1mb", 1048576}, {"2G", 2147483648u}, {"007", 7}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t v = 1;
        if (config_parse_size(good[i].s, &v) != 0 || v != good[i].v)
            fail_msg("'%s' -> %zu", good[i].s, v);
    }
    const char *bad[] = {"",
                         "K",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1 K",
                         "1.5K",
                         "1KK",
                         "1Ki",
                         "1T",
                         "0x10",
                         "abc",
                         "1e3",
                         "99999999999999999999",
                         "18446744073709551615K",
                         "17179869184G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t v;
        if (config_parse_size(bad[i], &v) == 0)
            fail_msg("accepted bad size '%s'", bad[i]);
    }
    size_t v;
    assert_int_equal(config_parse_size("18446744073709551615", &v), 0);
    assert_true(v == SIZE_MAX);
}

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        double v;
    } good[] = {{"10", 10},   {"10s", 10},     {"1.5", 1.5},       {"500ms", 0.5},
                {"0", 0},     {"0.1", 0.1},    {"250us", 0.00025}, {"2m", 120},
                {"1h", 3600}, {"1.25s", 1.25}, {"007s", 7}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        if (config_parse_duration(good[i].s, &v) != 0 || v != good[i].v)
            fail_msg("'%s' -> %g", good[i].s, v);
    }
    const char *bad[] = {"",
                         "s",
                         "-1",
                         "+1",
                         ".5",
                         "5.",
                         "1.2.3",
                         "10 s",
                         " 10",
                         "10sec",
                         "10S",
                         "1e3",
                         "inf",
                         "nan",
                         "0x10",
                         "10ms5",
                         "1,5",
                         "99999999999999999999",
                         "0.99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v;
        if (config_parse_duration(bad[i], &v) == 0)
            fail_msg("accepted bad duration '%s'", bad[i]);
    }
}

static void test_flags_good(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    int rc =
        parse(&c, err, "--http", "0.0.0.0:0", "--echo=off", "--chat", "[::1]:0", "--workers", "3",
              "--max-connections=1000000", "--blocking-threads", "1", "--shutdown-timeout", "500ms",
              "--log-level", "debug", "--io", "uring", "--defer-accept", "0", "--model", "threaded",
              "--access-log", "-", "--static", "/", "--http-max-head", "1K", "--http-max-body", "0",
              "--http-head-timeout", "1.5", "--http-keepalive-timeout", "2m", "--chat-origin",
              "https://a.example", "--chat-max-message", "125", "--chat-max-rooms", "7",
              "--chat-max-clients-per-room", "8", "--chat-max-queue", "64MiB", "--chat-slow-policy",
              "drop", "--redis", "redis://127.0.0.1:6379", "--backend", "10.0.0.1:80,weight=3",
              "--strategy", "hash", "--hash-header", "X-User", "--health-interval", "100ms",
              "--balancer-mode", "tcp", "--admin", ":9999", NULL);
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(c.listen[SVC_HTTP].host, "0.0.0.0");
    assert_int_equal(c.listen[SVC_HTTP].port, 0);
    assert_int_equal(c.listen[SVC_ECHO].enabled, 0);
    assert_string_equal(c.listen[SVC_CHAT].host, "::1");
    assert_int_equal(c.listen[SVC_ADMIN].port, 9999);
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.max_connections, 1000000);
    assert_int_equal(c.blocking_threads, 1);
    assert_true(c.shutdown_timeout == 0.5);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.io, IO_URING);
    assert_true(c.defer_accept == 0);
    assert_int_equal(c.model, MODEL_THREADED);
    assert_string_equal(c.access_log, "-");
    assert_string_equal(c.static_dir, "/");
    assert_int_equal(c.http_max_head, 1024);
    assert_int_equal(c.http_max_body, 0);
    assert_true(c.http_head_timeout == 1.5);
    assert_true(c.http_keepalive_timeout == 120);
    assert_int_equal(c.chat_origin_count, 1);
    assert_string_equal(c.chat_origin[0], "https://a.example");
    assert_int_equal(c.chat_max_message, 125);
    assert_int_equal(c.chat_max_rooms, 7);
    assert_int_equal(c.chat_max_clients_per_room, 8);
    assert_int_equal(c.chat_max_queue, 64 << 20);
    assert_int_equal(c.chat_slow_policy, SLOW_DROP);
    assert_string_equal(c.redis, "redis://127.0.0.1:6379");
    assert_int_equal(c.backend_count, 1);
    assert_string_equal(c.backends[0].host, "10.0.0.1");
    assert_int_equal(c.backends[0].port, 80);
    assert_int_equal(c.backends[0].weight, 3);
    assert_int_equal(c.strategy, STRAT_HASH);
    assert_string_equal(c.hash_header, "X-User");
    assert_true(c.health_interval == 0.1);
    assert_int_equal(c.balancer_mode, BAL_TCP);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);

    /* No flags at all: the defaults. */
    assert_int_equal(parse(&c, err, NULL), 0);
    assert_int_equal(c.max_connections, 10000);
    /* Later flags win; an empty string turns a string option off. */
    assert_int_equal(
        parse(&c, err, "--workers", "2", "--workers=5", "--access-log", "x", "--access-log=", NULL),
        0);
    assert_int_equal(c.workers, 5);
    assert_string_equal(c.access_log, "");
}

static void expect_flag_error(const char *flag, const char *value, const char *msg)
{
    struct config c;
    char err[ERRLEN];
    if (parse(&c, err, flag, value, NULL) != -1)
        fail_msg("%s %s accepted", flag, value);
    if (strcmp(err, msg) != 0)
        fail_msg("%s %s: got \"%s\", want \"%s\"", flag, value, err, msg);
}

static void test_flags_bad(void **state)
{
    (void)state;
    expect_flag_error("--workers", "abc",
                      "--workers: must be an integer from 1 to 256 (got 'abc')");
    expect_flag_error("--workers", "0", "--workers: must be an integer from 1 to 256 (got '0')");
    expect_flag_error("--workers", "257",
                      "--workers: must be an integer from 1 to 256 (got '257')");
    expect_flag_error("--workers", "-1", "--workers: must be an integer from 1 to 256 (got '-1')");
    expect_flag_error("--workers", "4x", "--workers: must be an integer from 1 to 256 (got '4x')");
    expect_flag_error("--max-connections", "99999999999999999999999",
                      "--max-connections: must be an integer from 1 to 1000000 "
                      "(got '99999999999999999999999')");
    expect_flag_error("--http", "127.0.0.1:65536",
                      "--http: must be HOST:PORT, [IPV6]:PORT, :PORT or off, with a port from 0 "
                      "to 65535 (got '127.0.0.1:65536')");
    expect_flag_error("--http-max-head", "512",
                      "--http-max-head: must be a size from 1KiB to 1MiB (bytes, or with a K, M "
                      "or G suffix) (got '512')");
    expect_flag_error("--http-max-body", "2G",
                      "--http-max-body: must be a size from 0B to 1GiB (bytes, or with a K, M or "
                      "G suffix) (got '2G')");
    expect_flag_error("--chat-max-message", "124",
                      "--chat-max-message: must be a size from 125B to 64MiB (bytes, or with a K, "
                      "M or G suffix) (got '124')");
    expect_flag_error("--shutdown-timeout", "3601",
                      "--shutdown-timeout: must be a duration from 0s to 3600s (seconds, or with "
                      "ms, s, m or h) (got '3601')");
    expect_flag_error("--http-head-timeout", "0",
                      "--http-head-timeout: must be a duration from 1ms to 3600s (seconds, or "
                      "with ms, s, m or h) (got '0')");
    expect_flag_error("--log-level", "trace",
                      "--log-level: must be one of error, warn, info, debug (got 'trace')");
    expect_flag_error("--model", "ASYNC",
                      "--model: must be one of async, threaded, blocking (got 'ASYNC')");
    expect_flag_error("--strategy", "round-robin",
                      "--strategy: must be one of round_robin, least_conn, random2, hash (got "
                      "'round-robin')");
    expect_flag_error("--chat-slow-policy", "",
                      "--chat-slow-policy: must be one of close, drop "
                      "(got '')");
    expect_flag_error("--balancer-mode", "udp",
                      "--balancer-mode: must be one of http, tcp (got 'udp')");
    expect_flag_error("--redis", "http://127.0.0.1:6379",
                      "--redis: must be redis://HOST:PORT (got 'http://127.0.0.1:6379')");
    expect_flag_error("--redis", "redis://127.0.0.1",
                      "--redis: must be redis://HOST:PORT (got 'redis://127.0.0.1')");
    expect_flag_error("--redis", "redis://:6379",
                      "--redis: must be redis://HOST:PORT (got 'redis://:6379')");
    expect_flag_error("--hash-header", "X User",
                      "--hash-header: must be an HTTP header name (got 'X User')");
    expect_flag_error("--static", "/nonexistent/weft-dir",
                      "--static: must be an existing directory: No such file or directory (got "
                      "'/nonexistent/weft-dir')");
    expect_flag_error("--static", "/dev/null",
                      "--static: must be an existing directory: not a directory (got "
                      "'/dev/null')");
    const char *bad_backends[] = {"10.0.0.1",
                                  "10.0.0.1:0",
                                  "off",
                                  "10.0.0.1:80,weight=0",
                                  "10.0.0.1:80,weight=257",
                                  "10.0.0.1:80,w=2",
                                  "10.0.0.1:80,weight=",
                                  "10.0.0.1:80,"};
    for (size_t i = 0; i < sizeof bad_backends / sizeof bad_backends[0]; i++) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "--backend: must be HOST:PORT[,weight=W] with a port from 1 to 65535 and a "
                 "weight from 1 to 256 (got '%s')",
                 bad_backends[i]);
        expect_flag_error("--backend", bad_backends[i], msg);
    }
    expect_flag_error("--chat-origin", "example.com",
                      "--chat-origin: must be an origin such as https://example.com, at most 127 "
                      "characters (got 'example.com')");
    expect_flag_error("--chat-origin", "https://a.example/path",
                      "--chat-origin: must be an origin such as https://example.com, at most 127 "
                      "characters (got 'https://a.example/path')");
    char longval[300];
    memset(longval, 'a', 256);
    longval[256] = '\0';
    char msg[600];
    snprintf(msg, sizeof msg, "--access-log: must be at most 255 characters (got '%s')", longval);
    expect_flag_error("--access-log", longval, msg);
}

static void test_flags_syntax(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    assert_int_equal(parse(&c, err, "--foo", "1", NULL), -1);
    assert_string_equal(err, "unknown option '--foo'");
    assert_int_equal(parse(&c, err, "--foo=1", NULL), -1);
    assert_string_equal(err, "unknown option '--foo'");
    assert_int_equal(parse(&c, err, "--max_connections", "1", NULL), -1);
    assert_string_equal(err, "unknown option '--max_connections'");
    assert_int_equal(parse(&c, err, "--workers", NULL), -1);
    assert_string_equal(err, "option '--workers' needs a value");
    assert_int_equal(parse(&c, err, "--workers", "--echo", "off", NULL), -1);
    assert_string_equal(err, "option '--workers' needs a value");
    assert_int_equal(parse(&c, err, "--config", NULL), -1);
    assert_string_equal(err, "option '--config' needs a value");
    assert_int_equal(parse(&c, err, "workers", "3", NULL), -1);
    assert_string_equal(err, "unexpected argument 'workers'");
    assert_int_equal(parse(&c, err, "-w", "3", NULL), -1);
    assert_string_equal(err, "unexpected argument '-w'");
    assert_int_equal(parse(&c, err, "--workers", "3", "extra", NULL), -1);
    assert_string_equal(err, "unexpected argument 'extra'");
    /* "=" splits at the first '=', so a value may contain more. */
    assert_int_equal(parse(&c, err, "--backend=10.0.0.1:80,weight=2", NULL), 0);
    assert_int_equal(c.backends[0].weight, 2);
    /* A NULL err buffer is allowed. */
    config_defaults(&c);
    char *argv[] = {"--foo", NULL};
    assert_int_equal(config_parse_args(&c, 1, argv, NULL, 0), -1);
}

static void test_file_good(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    int rc = load_text(&c,
                       "# every type\n"
                       "http = \"0.0.0.0:0\";\n"
                       "echo = \"off\";\n"
                       "chat = \"[::1]:0\";\n"
                       "workers = 4;\n"
                       "max_connections = 500L;\n"
                       "shutdown_timeout = 2.5;\n"
                       "http_head_timeout = \"250ms\";\n"
                       "http_keepalive_timeout = 30;\n"
                       "http_max_head = 16384;\n"
                       "http_max_body = \"2M\";\n"
                       "log_level = \"warn\";\n"
                       "model = \"blocking\";\n"
                       "static = \"/\";\n"
                       "chat_origin = [\"http://a.example\", \"https://b.example:8443\"];\n"
                       "backend = [\"127.0.0.1:8080\", \"10.0.0.2:80,weight=3\"];\n"
                       "strategy = \"least_conn\";\n"
                       "redis = \"redis://localhost:6379\";\n",
                       err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(c.listen[SVC_HTTP].host, "0.0.0.0");
    assert_int_equal(c.listen[SVC_ECHO].enabled, 0);
    assert_string_equal(c.listen[SVC_CHAT].host, "::1");
    assert_int_equal(c.listen[SVC_BALANCER].port, 8083); /* untouched keys keep defaults */
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.max_connections, 500);
    assert_true(c.shutdown_timeout == 2.5);
    assert_true(c.http_head_timeout == 0.25);
    assert_true(c.http_keepalive_timeout == 30);
    assert_int_equal(c.http_max_head, 16384);
    assert_int_equal(c.http_max_body, 2 << 20);
    assert_int_equal(c.log_level, LOG_WARN);
    assert_int_equal(c.model, MODEL_BLOCKING);
    assert_string_equal(c.static_dir, "/");
    assert_int_equal(c.chat_origin_count, 2);
    assert_string_equal(c.chat_origin[1], "https://b.example:8443");
    assert_int_equal(c.backend_count, 2);
    assert_string_equal(c.backends[0].host, "127.0.0.1");
    assert_int_equal(c.backends[0].port, 8080);
    assert_int_equal(c.backends[0].weight, 1);
    assert_int_equal(c.backends[1].weight, 3);
    assert_int_equal(c.strategy, STRAT_LEAST_CONN);
    assert_string_equal(c.redis, "redis://localhost:6379");

    /* A single string for a list, a libconfig list "( )" and an empty array. */
    assert_int_equal(load_text(&c, "backend = \"10.0.0.9:81\";\n", err), 0);
    assert_int_equal(c.backend_count, 1);
    assert_int_equal(c.backends[0].port, 81);
    assert_int_equal(load_text(&c, "backend = (\"10.0.0.9:81\", \"10.0.0.9:82\");\n", err), 0);
    assert_int_equal(c.backend_count, 2);
    assert_int_equal(load_text(&c, "chat_origin = [];\n", err), 0);
    assert_int_equal(c.chat_origin_count, 0);
    /* An empty file changes nothing. */
    assert_int_equal(load_text(&c, "", err), 0);
    assert_int_equal(c.workers > 0, 1);
}

static void test_file_errors(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    int rc = load_text(&c,
                       "# line 1\n"
                       "workers = 4;\n"
                       "workers_x = 3;\n"
                       "max-connections = 5;\n"
                       "workers2 = \"a\";\n"
                       "blocking_threads = \"16\";\n"
                       "http_max_head = 1.5;\n"
                       "http_max_body = \"1T\";\n"
                       "shutdown_timeout = -1.0;\n"
                       "log_level = 3;\n"
                       "http = \"1.2.3.4:99999\";\n"
                       "backend = [\"ok.example:80\",\n"
                       "  \"bad\"];\n"
                       "chat_max_rooms = 0;\n"
                       "health_interval = \"5 s\";\n"
                       "group = { a = 1; };\n"
                       "max_connections = 3000000000;\n",
                       err);
    assert_int_equal(rc, -1);
    const char *want =
        "F:3: unknown key 'workers_x'\n"
        "F:4: unknown key 'max-connections' (did you mean 'max_connections'?)\n"
        "F:5: unknown key 'workers2'\n"
        "F:6: blocking_threads: must be an integer from 1 to 1024\n"
        "F:7: http_max_head: must be a size from 1KiB to 1MiB (bytes, or with a K, M or G suffix)\n"
        "F:8: http_max_body: must be a size from 0B to 1GiB (bytes, or with a K, M or G suffix)\n"
        "F:9: shutdown_timeout: must be a duration from 0s to 3600s (seconds, or with ms, s, m or "
        "h)\n"
        "F:10: log_level: must be one of error, warn, info, debug\n"
        "F:11: http: must be HOST:PORT, [IPV6]:PORT, :PORT or off, with a port from 0 to 65535\n"
        "F:13: backend: must be HOST:PORT[,weight=W] with a port from 1 to 65535 and a weight "
        "from 1 to 256\n"
        "F:14: chat_max_rooms: must be an integer from 1 to 1000000\n"
        "F:15: health_interval: must be a duration from 10ms to 3600s (seconds, or with ms, s, m "
        "or h)\n"
        "F:16: unknown key 'group'\n"
        "F:17: max_connections: must be an integer from 1 to 1000000";
    assert_string_equal(err, want);

    /* The example of the contract. */
    assert_int_equal(load_text(&c, "\n\nworkers = 0;\n", err), -1);
    assert_string_equal(err, "F:3: workers: must be an integer from 1 to 256");

    /* Type errors: strings where numbers go and the reverse. */
    assert_int_equal(load_text(&c, "workers = \"4\";\nhttp = 8080;\nstatic = 1;\n", err), -1);
    assert_string_equal(err, "F:1: workers: must be an integer from 1 to 256\n"
                             "F:2: http: must be HOST:PORT, [IPV6]:PORT, :PORT or off, with a "
                             "port from 0 to 65535\n"
                             "F:3: static: must be at most 255 characters");
    assert_int_equal(load_text(&c, "static = \"/nonexistent/weft\";\n", err), -1);
    assert_string_equal(err, "F:1: static: must be an existing directory: No such file or "
                             "directory");
    assert_int_equal(load_text(&c, "backend = 5;\nchat_origin = [1];\n", err), -1);
    assert_string_equal(err, "F:1: backend: must be HOST:PORT[,weight=W] with a port from 1 to "
                             "65535 and a weight from 1 to 256\n"
                             "F:2: chat_origin: must be an origin such as https://example.com, "
                             "at most 127 characters");
}

static void test_file_syntax_and_io(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    assert_int_equal(load_text(&c, "workers = 4;\n\nmodel = ;\n", err), -1);
    assert_int_equal(strncmp(err, "F:3: ", 5), 0);
    assert_null(strchr(err, '\n'));
    assert_int_equal(load_text(&c, "workers = 4;\nworkers = 5;\n", err), -1);
    assert_int_equal(strncmp(err, "F:2: ", 5), 0);
    assert_int_equal(load_text(&c, "workers = \"unterminated;\n", err), -1);
    assert_int_equal(strncmp(err, "F:", 2), 0);

    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "/nonexistent/weft.conf", err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/weft.conf: No such file or directory");
    assert_int_equal(config_load_file(&c, "/", err, sizeof err), -1);
    assert_string_equal(err, "/: is a directory");

    /* Messages are cut to the buffer, still terminated. */
    char small[16];
    assert_int_equal(config_load_file(&c, "/nonexistent/weft.conf", small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_config_order(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    struct tmpfile t;
    tmp_write(&t, "workers = 7;\nmax_connections = 77;\nlog_level = \"debug\";\n"
                  "backend = [\"10.0.0.1:1\", \"10.0.0.2:2\"];\n"
                  "chat_origin = \"http://file.example\";\n");
    /* Flags win over the file whether they stand before or after --config. */
    assert_int_equal(
        parse(&c, err, "--workers", "2", "--config", t.path, "--max-connections", "3", NULL), 0);
    assert_int_equal(c.workers, 2);
    assert_int_equal(c.max_connections, 3);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.backend_count, 2);
    assert_int_equal(c.chat_origin_count, 1);

    char cfgflag[128];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", t.path);
    assert_int_equal(parse(&c, err, "--log-level", "error", cfgflag, NULL), 0);
    assert_int_equal(c.workers, 7);
    assert_int_equal(c.log_level, LOG_ERROR);

    /* The first --backend replaces the file's list, the next ones append. */
    assert_int_equal(parse(&c, err, "--backend", "10.0.0.3:3", cfgflag, "--backend", "10.0.0.4:4",
                           "--chat-origin", "https://x.example", NULL),
                     0);
    assert_int_equal(c.backend_count, 2);
    assert_string_equal(c.backends[0].host, "10.0.0.3");
    assert_string_equal(c.backends[1].host, "10.0.0.4");
    assert_int_equal(c.chat_origin_count, 1);
    assert_string_equal(c.chat_origin[0], "https://x.example");

    /* A bad file stops before the flags; its errors come back as they are. */
    struct tmpfile bad;
    tmp_write(&bad, "workers = 0;\n");
    assert_int_equal(parse(&c, err, "--workers", "2", "--config", bad.path, NULL), -1);
    char want[256];
    snprintf(want, sizeof want, "%s:1: workers: must be an integer from 1 to 256", bad.path);
    assert_string_equal(err, want);
    tmp_done(&bad);
    tmp_done(&t);
}

static void test_lists(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[2 * CONFIG_MAX_BACKENDS + 2];
    char vals[CONFIG_MAX_BACKENDS + 1][32];
    int argc = 0;
    for (int i = 0; i <= CONFIG_MAX_BACKENDS; i++) {
        snprintf(vals[i], sizeof vals[i], "10.0.%d.1:%d", i, 1000 + i);
        argv[argc++] = "--backend";
        argv[argc++] = vals[i];
    }
    config_defaults(&c);
    assert_int_equal(config_parse_args(&c, argc - 2, argv, err, sizeof err), 0);
    assert_int_equal(c.backend_count, CONFIG_MAX_BACKENDS);
    assert_int_equal(c.backends[CONFIG_MAX_BACKENDS - 1].port, 1000 + CONFIG_MAX_BACKENDS - 1);
    config_defaults(&c);
    assert_int_equal(config_parse_args(&c, argc, argv, err, sizeof err), -1);
    assert_string_equal(err, "--backend: at most 64 backends (got '10.0.64.1:1064')");

    config_defaults(&c);
    char *o[2 * CONFIG_MAX_ORIGINS + 2];
    for (int i = 0; i < 2 * CONFIG_MAX_ORIGINS + 2; i += 2) {
        o[i] = "--chat-origin";
        o[i + 1] = "https://o.example";
    }
    assert_int_equal(config_parse_args(&c, 2 * CONFIG_MAX_ORIGINS, o, err, sizeof err), 0);
    assert_int_equal(c.chat_origin_count, CONFIG_MAX_ORIGINS);
    assert_int_equal(config_parse_args(&c, 2 * CONFIG_MAX_ORIGINS + 2, o, err, sizeof err), -1);
    assert_string_equal(err, "--chat-origin: at most 16 origins (got 'https://o.example')");
}

static void test_validate(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    assert_int_equal(parse(&c, err, "--echo", "127.0.0.1:8080", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "http and echo both listen on 127.0.0.1:8080");

    /* Port 0 never clashes; a disabled service never clashes. */
    assert_int_equal(parse(&c, err, "--http", ":0", "--echo", ":0", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(parse(&c, err, "--http", "off", "--echo", "127.0.0.1:8080", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    /* Different hosts, same port: fine, unless one is a wildcard. */
    assert_int_equal(parse(&c, err, "--echo", "127.0.0.2:8080", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(parse(&c, err, "--echo", "0.0.0.0:8080", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "http and echo both listen on 0.0.0.0:8080");
    assert_int_equal(parse(&c, err, "--echo", "[::]:9090", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "echo and admin both listen on 127.0.0.1:9090");

    /* Every error, one per line. */
    assert_int_equal(
        parse(&c, err, "--http", "[::1]:1", "--echo", "[::1]:1", "--chat", "[::1]:1", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "http and echo both listen on [::1]:1\n"
                             "http and chat both listen on [::1]:1\n"
                             "echo and chat both listen on [::1]:1");

    assert_int_equal(parse(&c, err, "--http", "off", "--echo", "off", "--chat", "off", "--balancer",
                           "off", "--admin", "off", NULL),
                     0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "every service is off; enable at least one");

    assert_int_equal(parse(&c, err, "--chat-max-message", "8M", NULL), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "chat_max_queue (4194304 bytes) must be at least chat_max_message "
                             "(8388608 bytes)");
}

static void test_help(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print_help(f);
    fclose(f);
    const char *expect[] = {
        "--config FILE",
        "--http ADDR",
        "(default: 127.0.0.1:8080)",
        "--echo ADDR",
        "--chat ADDR",
        "--balancer ADDR",
        "--admin ADDR",
        "(default: 127.0.0.1:9090)",
        "--workers N",
        "(1 to 256; default: the number of CPUs)",
        "--max-connections N",
        "(1 to 1000000; default: 10000)",
        "--blocking-threads N",
        "--shutdown-timeout DURATION",
        "--log-level error|warn|info|debug",
        "--io epoll|uring",
        "--defer-accept DURATION",
        "--model async|threaded|blocking",
        "--access-log FILE|-",
        "--static DIR",
        "--http-max-head SIZE",
        "(1KiB to 1MiB; default: 8KiB)",
        "--http-max-body SIZE",
        "--http-head-timeout DURATION",
        "--http-keepalive-timeout DURATION",
        "--chat-origin ORIGIN",
        "--chat-max-message SIZE",
        "--chat-max-rooms N",
        "--chat-max-clients-per-room N",
        "--chat-max-queue SIZE",
        "--chat-slow-policy close|drop",
        "--redis redis://HOST:PORT",
        "--backend HOST:PORT[,weight=W]",
        "--strategy round_robin|least_conn|random2|hash",
        "--hash-header NAME",
        "--health-interval DURATION",
        "--balancer-mode http|tcp",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        if (!strstr(buf, expect[i]))
            fail_msg("help lacks '%s':\n%s", expect[i], buf);
    }
    /* Every option line is a flag; 31 options plus --config. */
    int lines = 0;
    for (const char *p = buf; (p = strstr(p, "\n  --")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 32);
    free(buf);
}

/* Every help line's flag, turned into a config-file key, is accepted by the file reader. */
static void test_every_flag_is_a_key(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f);
    fclose(f);
    int n = 0;
    for (const char *p = buf; (p = strstr(p, "\n  --")) != NULL; p++) {
        char key[64];
        size_t k = 0;
        for (const char *q = p + 5; *q != ' ' && k + 1 < sizeof key; q++)
            key[k++] = *q == '-' ? '_' : *q;
        key[k] = '\0';
        if (strcmp(key, "config") == 0)
            continue;
        char text[128], err[ERRLEN];
        struct config c;
        snprintf(text, sizeof text, "%s = 1.5;\n", key);
        load_text(&c, text, err);
        if (strstr(err, "unknown key"))
            fail_msg("flag of '%s' has no key: %s", key, err);
        n++;
    }
    assert_int_equal(n, 31);
    free(buf);
}

/* The committed examples, found next to this source file (__FILE__ is absolute under CMake) or
 * from a working directory in the source tree. */
static FILE *open_example(const char *name, char *path, size_t n)
{
    const char *cut = strstr(__FILE__, "unit/test_config.c");
    int dirlen = cut ? (int)(cut - __FILE__) : 0;
    const char *prefixes[] = {"tests/", "../tests/", "../../tests/"};
    for (size_t i = 0; i < 4; i++) {
        if (i == 0 && !cut)
            continue;
        if (i == 0)
            snprintf(path, n, "%.*sdata/%s", dirlen, __FILE__, name);
        else
            snprintf(path, n, "%sdata/%s", prefixes[i - 1], name);
        FILE *f = fopen(path, "r");
        if (f)
            return f;
    }
    return NULL;
}

static void test_committed_examples(void **state)
{
    (void)state;
    char path[256], err[ERRLEN];
    struct config c;
    FILE *f = open_example("good.conf", path, sizeof path);
    if (!f)
        skip();
    fclose(f);
    config_defaults(&c);
    if (config_load_file(&c, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(c.backend_count, 2);

    f = open_example("bad.conf", path, sizeof path);
    assert_non_null(f);
    fclose(f);
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof err), -1);
    /* bad.conf marks each line that must fail with "# error:"; exactly those lines fail. */
    f = fopen(path, "r");
    char line[512];
    int lineno = 0, errors = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strstr(line, "# error:"))
            continue;
        char tag[300];
        snprintf(tag, sizeof tag, "%s:%d: ", path, lineno);
        if (!strstr(err, tag))
            fail_msg("no error for line %d:\n%s", lineno, err);
        errors++;
    }
    fclose(f);
    int reported = 1;
    for (const char *p = err; *p; p++)
        reported += *p == '\n';
    assert_int_equal(reported, errors);

    f = open_example("../../weft.conf.example", path, sizeof path);
    if (f) {
        fclose(f);
        config_defaults(&c);
        if (config_load_file(&c, path, err, sizeof err) != 0)
            fail_msg("%s", err);
        struct config d;
        config_defaults(&d);
        /* The example shows the defaults, commented out, so it changes nothing. */
        assert_memory_equal(&c, &d, sizeof c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_flags_good),
        cmocka_unit_test(test_flags_bad),
        cmocka_unit_test(test_flags_syntax),
        cmocka_unit_test(test_file_good),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_syntax_and_io),
        cmocka_unit_test(test_config_order),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_every_flag_is_a_key),
        cmocka_unit_test(test_committed_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
