/* schedule: the open-loop request schedule (see schedule.h). */
#include "bench/schedule.h"

void schedule_init(struct schedule *s, uint64_t t0_us, double rps, uint64_t total)
{
    s->t0_us = t0_us;
    s->rps = rps;
    s->total = total;
}

uint64_t schedule_count(double rps, double seconds)
{
    double t = rps * seconds;
    if (t <= 0)
        return 0;
    uint64_t n = (uint64_t)t;
    if ((double)n < t)
        n++;
    return n;
}

uint64_t schedule_start_us(const struct schedule *s, uint64_t i)
{
    return s->t0_us + (uint64_t)((double)i * 1e6 / s->rps);
}

uint64_t schedule_due(const struct schedule *s, uint64_t now_us)
{
    if (s->total == 0 || now_us < s->t0_us)
        return 0;
    double est = (double)(now_us - s->t0_us) * s->rps / 1e6 + 1.0;
    uint64_t n = est >= (double)s->total ? s->total : (uint64_t)est;
    /* The estimate can be off by one from floating-point rounding; settle it against
     * schedule_start_us so that the two always agree. */
    while (n > 0 && schedule_start_us(s, n - 1) > now_us)
        n--;
    while (n < s->total && schedule_start_us(s, n) <= now_us)
        n++;
    return n;
}
