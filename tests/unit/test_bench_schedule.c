/* Unit tests for bench/schedule: start times at rates 1, 3, 1000 and 1e6 per second, no drift
 * over many requests, schedule_due agreeing with schedule_start_us at and around every start,
 * the end of the schedule, and schedule_count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bench/schedule.h"

#define T0 UINT64_C(5000000000) /* a monotonic clock far from zero */

static void test_start_times_at_rates(void **state)
{
    struct schedule s;
    schedule_init(&s, T0, 1, 10);
    assert_int_equal(schedule_start_us(&s, 0), T0);
    assert_int_equal(schedule_start_us(&s, 1), T0 + 1000000);
    assert_int_equal(schedule_start_us(&s, 9), T0 + 9000000);

    schedule_init(&s, T0, 3, 100);
    assert_int_equal(schedule_start_us(&s, 1), T0 + 333333);
    assert_int_equal(schedule_start_us(&s, 2), T0 + 666666);
    assert_int_equal(schedule_start_us(&s, 3), T0 + 1000000);
    assert_int_equal(schedule_start_us(&s, 99), T0 + 33000000);

    schedule_init(&s, T0, 1000, 5000);
    assert_int_equal(schedule_start_us(&s, 1), T0 + 1000);
    assert_int_equal(schedule_start_us(&s, 4999), T0 + 4999000);

    schedule_init(&s, T0, 1e6, 5000000);
    assert_int_equal(schedule_start_us(&s, 1), T0 + 1);
    assert_int_equal(schedule_start_us(&s, 4999999), T0 + 4999999);
}

/* Starts are computed from i, not accumulated: after a million requests at 3/s the schedule is
 * where the arithmetic says, to the microsecond, and starts never go backwards. */
static void test_no_drift(void **state)
{
    static const double rates[] = {1, 3, 7, 1000, 333.3, 1e6};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        struct schedule s;
        schedule_init(&s, T0, rates[r], 3000000);
        uint64_t prev = T0;
        for (uint64_t i = 0; i < 3000000; i += 997) {
            uint64_t at = schedule_start_us(&s, i);
            assert_true(at >= prev);
            prev = at;
            double exact = (double)i * 1e6 / rates[r];
            assert_true((double)(at - T0) <= exact);
            assert_true((double)(at - T0) > exact - 1.0);
        }
    }
    struct schedule s;
    schedule_init(&s, T0, 3, 3000000);
    assert_int_equal(schedule_start_us(&s, 2999999), T0 + 999999666666);
    assert_int_equal(schedule_start_us(&s, 3000000 - 3), T0 + 999999000000);
}

static void check_due_around_starts(double rps, uint64_t total, uint64_t step)
{
    struct schedule s;
    schedule_init(&s, T0, rps, total);
    assert_int_equal(schedule_due(&s, T0 - 1), 0);
    assert_int_equal(schedule_due(&s, 0), 0);
    for (uint64_t i = 0; i < total; i += step) {
        uint64_t at = schedule_start_us(&s, i);
        /* Request i is due exactly at its start; right before it, only those before it (and
         * those sharing its microsecond at very high rates) are. */
        assert_true(schedule_due(&s, at) >= i + 1);
        if (at > T0) {
            uint64_t before = schedule_due(&s, at - 1);
            assert_true(before <= i);
            assert_true(schedule_start_us(&s, before) >= at);
        }
    }
    uint64_t last = schedule_start_us(&s, total - 1);
    assert_int_equal(schedule_due(&s, last), total);
    assert_int_equal(schedule_due(&s, last + 1000000000), total);
}

static void test_due_agrees_with_start(void **state)
{
    check_due_around_starts(1, 100, 1);
    check_due_around_starts(3, 1000, 1);
    check_due_around_starts(1000, 100000, 7);
    check_due_around_starts(1e6, 10000000, 1009);
    check_due_around_starts(333.3, 100000, 3);
}

/* A loop that wakes late issues everything that came due meanwhile, and nothing early. */
static void test_due_counts_in_steps(void **state)
{
    struct schedule s;
    schedule_init(&s, T0, 1000, 1000);
    assert_int_equal(schedule_due(&s, T0), 1);
    assert_int_equal(schedule_due(&s, T0 + 999), 1);
    assert_int_equal(schedule_due(&s, T0 + 1000), 2);
    assert_int_equal(schedule_due(&s, T0 + 10500), 11);
    assert_int_equal(schedule_due(&s, T0 + 998999), 999);
    assert_int_equal(schedule_due(&s, T0 + 999000), 1000);

    schedule_init(&s, T0, 1e6, 2000000);
    assert_int_equal(schedule_due(&s, T0 + 1234567), 1234568);
}

static void test_empty_schedule(void **state)
{
    struct schedule s;
    schedule_init(&s, T0, 100, 0);
    assert_int_equal(schedule_due(&s, T0 + 1000000), 0);
}

static void test_count(void **state)
{
    assert_int_equal(schedule_count(500, 2), 1000);
    assert_int_equal(schedule_count(1, 1), 1);
    assert_int_equal(schedule_count(3, 1), 3);
    assert_int_equal(schedule_count(3, 0.5), 2); /* starts at 0 and 333333 us */
    assert_int_equal(schedule_count(1e6, 10), 10000000);
    assert_int_equal(schedule_count(0.5, 3), 2); /* 0 s and 2 s */
    assert_int_equal(schedule_count(100, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_times_at_rates),  cmocka_unit_test(test_no_drift),
        cmocka_unit_test(test_due_agrees_with_start), cmocka_unit_test(test_due_counts_in_steps),
        cmocka_unit_test(test_empty_schedule),        cmocka_unit_test(test_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
