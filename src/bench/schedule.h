/* schedule: the open-loop request schedule of `weft bench open`.
 *
 * Pure arithmetic, no clock: request i is meant to start at t0 + i * 1e6 / rps microseconds,
 * computed from i each time (never by adding an interval to the previous start), so rounding
 * never accumulates into drift however many requests run. */
#ifndef WEFT_BENCH_SCHEDULE_H
#define WEFT_BENCH_SCHEDULE_H

#include <stdint.h>

struct schedule {
    uint64_t t0_us; /* intended start of request 0 */
    double rps;     /* > 0 */
    uint64_t total; /* requests in the schedule */
};

/* A schedule of `total` requests at `rps` per second from t0_us. */
void schedule_init(struct schedule *s, uint64_t t0_us, double rps, uint64_t total);

/* Requests that start within `seconds` at `rps`: those with i * 1e6 / rps < seconds * 1e6. */
uint64_t schedule_count(double rps, double seconds);

/* Intended start of request i, in microseconds on the caller's clock. */
uint64_t schedule_start_us(const struct schedule *s, uint64_t i);

/* How many requests are due at now_us: the number of i < total with start(i) <= now_us. */
uint64_t schedule_due(const struct schedule *s, uint64_t now_us);

#endif
