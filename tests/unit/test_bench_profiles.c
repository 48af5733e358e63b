/* Unit tests for bench/profiles: the built-in profiles, JSON overrides (each key, and errors that
 * name the key and leave the profile untouched), the open runs' connection count and the
 * median index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/profiles.h"

static void test_builtins(void **state)
{
    struct bench_profile p;
    assert_int_equal(bench_profile_builtin("smoke", &p), 0);
    assert_string_equal(p.name, "smoke");
    assert_int_equal(p.nconcurrencies, 3);
    assert_int_equal(p.concurrencies[0], 1);
    assert_int_equal(p.concurrencies[2], 16);
    assert_int_equal(p.repeat, 1);
    assert_int_equal(p.nloads, 3);
    assert_true(p.loads[0] == 0.5 && p.loads[1] == 0.9 && p.loads[2] == 1.1);
    assert_int_equal(p.concurrency_cap, 0);

    assert_int_equal(bench_profile_builtin("standard", &p), 0);
    assert_int_equal(p.nconcurrencies, 7);
    assert_int_equal(p.concurrencies[6], 100);
    assert_int_equal(p.repeat, 3);

    assert_int_equal(bench_profile_builtin("stress", &p), 0);
    assert_int_equal(p.concurrencies[p.nconcurrencies - 1], 1000);
    assert_true(p.duration_s > 5 && p.open_duration_s > 10);

    assert_int_equal(bench_profile_builtin("nope", &p), -1);
}

static int apply(struct bench_profile *p, const char *json, char *err)
{
    return bench_profile_apply_json(p, json, strlen(json), err, 256);
}

static void test_every_key(void **state)
{
    struct bench_profile p;
    char err[256];
    bench_profile_builtin("smoke", &p);
    assert_int_equal(apply(&p,
                           "{\"concurrencies\": [2, 8, 32, 64], \"duration\": 2.5, \"repeat\": 5,"
                           " \"warmup\": 0, \"open_duration\": 3, \"loads\": [0.25, 1],"
                           " \"threads\": 4, \"concurrency_cap\": 200}",
                           err),
                     0);
    assert_int_equal(p.nconcurrencies, 4);
    assert_int_equal(p.concurrencies[3], 64);
    assert_true(p.duration_s == 2.5);
    assert_int_equal(p.repeat, 5);
    assert_true(p.warmup_s == 0);
    assert_true(p.open_duration_s == 3);
    assert_int_equal(p.nloads, 2);
    assert_true(p.loads[0] == 0.25 && p.loads[1] == 1);
    assert_int_equal(p.threads, 4);
    assert_int_equal(p.concurrency_cap, 200);
    assert_string_equal(p.name, "smoke");

    /* Keys left out keep the profile's values; an empty object changes nothing. */
    struct bench_profile q;
    bench_profile_builtin("standard", &q);
    struct bench_profile before = q;
    assert_int_equal(apply(&q, "{\"repeat\": 1}", err), 0);
    assert_int_equal(q.repeat, 1);
    assert_int_equal(q.nconcurrencies, before.nconcurrencies);
    assert_true(q.duration_s == before.duration_s);
    assert_int_equal(apply(&q, "{}", err), 0);
}

/* Each bad config fails, names its key in the message and leaves the profile as it was. */
static void test_errors_name_the_key(void **state)
{
    static const struct {
        const char *json, *word;
    } cases[] = {
        {"{\"bogus\": 1}", "unknown key 'bogus'"},
        {"{\"repeat\": 2, \"Duration\": 1}", "unknown key 'Duration'"},
        {"{\"repeat\": 0}", "'repeat'"},
        {"{\"repeat\": 1001}", "'repeat'"},
        {"{\"repeat\": 2.0}", "'repeat'"},
        {"{\"repeat\": \"2\"}", "'repeat'"},
        {"{\"duration\": 0}", "'duration'"},
        {"{\"duration\": -1}", "'duration'"},
        {"{\"duration\": null}", "'duration'"},
        {"{\"open_duration\": 0}", "'open_duration'"},
        {"{\"warmup\": -1}", "'warmup'"},
        {"{\"threads\": 0}", "'threads'"},
        {"{\"concurrency_cap\": 0}", "'concurrency_cap'"},
        {"{\"concurrency_cap\": 100001}", "'concurrency_cap'"},
        {"{\"concurrencies\": []}", "'concurrencies'"},
        {"{\"concurrencies\": [1, 0]}", "'concurrencies'"},
        {"{\"concurrencies\": [1.5]}", "'concurrencies'"},
        {"{\"concurrencies\": 4}", "'concurrencies'"},
        {"{\"loads\": []}", "'loads'"},
        {"{\"loads\": [0.5, -1]}", "'loads'"},
        {"{\"loads\": [1000]}", "'loads'"},
        {"{\"repeat\": 1, \"repeat\": 2}", "line 1"},
        {"[1]", "JSON object"},
        {"", "line"},
        {"{\"repeat\": 3", "line 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bench_profile p, before;
        char err[256] = "";
        bench_profile_builtin("smoke", &p);
        before = p;
        assert_int_equal(apply(&p, cases[i].json, err), -1);
        if (!strstr(err, cases[i].word))
            fail_msg("%s: '%s' does not contain '%s'", cases[i].json, err, cases[i].word);
        assert_memory_equal(&p, &before, sizeof p);
    }

    /* A list longer than the limit. */
    char big[1024] = "{\"concurrencies\": [1";
    for (int i = 0; i < BENCH_MAX_CONCURRENCIES; i++)
        strcat(big, ", 1");
    strcat(big, "]}");
    struct bench_profile p;
    char err[256];
    bench_profile_builtin("smoke", &p);
    assert_int_equal(apply(&p, big, err), -1);
    assert_non_null(strstr(err, "'concurrencies'"));
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/weft-profile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\n  \"concurrencies\": [3],\n  \"nope\": true\n}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct bench_profile p;
    char err[640];
    bench_profile_builtin("smoke", &p);
    assert_int_equal(bench_profile_load(&p, path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "'nope'"));
    assert_int_equal(p.nconcurrencies, 3); /* untouched: still smoke's */

    FILE *f = fopen(path, "w");
    fputs("{\"concurrencies\": [3]}", f);
    fclose(f);
    assert_int_equal(bench_profile_load(&p, path, err, sizeof err), 0);
    assert_int_equal(p.nconcurrencies, 1);
    assert_int_equal(p.concurrencies[0], 3);
    unlink(path);

    assert_int_equal(bench_profile_load(&p, path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
}

static void test_open_conns(void **state)
{
    struct bench_profile p;
    bench_profile_builtin("standard", &p);
    assert_int_equal(bench_profile_open_conns(&p, 1), BENCH_MIN_OPEN_CONNS);
    assert_int_equal(bench_profile_open_conns(&p, 32), 64);
    assert_int_equal(bench_profile_open_conns(&p, 50), 100);
    assert_int_equal(bench_profile_open_conns(&p, 1000), 2000);
    assert_int_equal(bench_profile_open_conns(&p, 100000), 100000);
    p.concurrency_cap = 7;
    assert_int_equal(bench_profile_open_conns(&p, 1000), 7);
}

static void test_median_index(void **state)
{
    double one[] = {5};
    assert_int_equal(bench_median_index(one, 1), 0);
    double two[] = {9, 3};
    assert_int_equal(bench_median_index(two, 2), 1); /* the lower of two */
    double three[] = {3, 9, 5};
    assert_int_equal(bench_median_index(three, 3), 2);
    double four[] = {4, 1, 3, 2};
    assert_int_equal(bench_median_index(four, 4), 3); /* 2: the lower middle of 1 2 3 4 */
    double same[] = {7, 7, 7};
    assert_int_equal(bench_median_index(same, 3), 1);
    double ties[] = {1, 5, 5, 9, 0};
    int m = bench_median_index(ties, 5);
    assert_true(ties[m] == 5);
    double neg[] = {-3, -1, -2};
    assert_int_equal(bench_median_index(neg, 3), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_open_conns),
        cmocka_unit_test(test_median_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
