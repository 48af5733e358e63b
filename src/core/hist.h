/* hist: weft's latency histogram, HDR-style.
 *
 * Values are unsigned integers (weft records microseconds) from 1 to HIST_MAX_VALUE; larger
 * values are clamped and counted in `clamped`. Buckets are log-linear: each power of two is split
 * into HIST_SUB_BUCKETS linear sub-buckets, so any recorded value is reported within a relative
 * error of 1/HIST_SUB_BUCKETS (under 1 %). Recording is O(1) with no allocation; two histograms
 * merge by adding counts, so each thread keeps its own and they are summed when read. */
#ifndef WEFT_CORE_HIST_H
#define WEFT_CORE_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7 /* 128 sub-buckets per power of two */
#define HIST_SUB_BUCKETS (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 36 /* values up to 2^36 us (~19 h) */
#define HIST_MAX_VALUE ((UINT64_C(1) << HIST_MAX_BITS) - 1)
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB_BUCKETS)

struct hist {
    uint64_t count;
    uint64_t clamped;  /* values above HIST_MAX_VALUE, recorded as HIST_MAX_VALUE */
    uint64_t min, max; /* exact; min is UINT64_MAX when empty */
    double sum;        /* sum of values, for the mean and Prometheus' _sum; exact below 2^53 */
    uint64_t counts[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
void hist_record_n(struct hist *h, uint64_t value, uint64_t n);
/* Adds src's counts into dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at percentile p (0..100): the highest value equivalent to the bucket holding the
 * p-th percentile, clamped to [min, max]; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);
/* Number of recorded values <= v (for cumulative Prometheus buckets; exact at bucket bounds,
 * otherwise within the stated relative error of v). */
uint64_t hist_count_le(const struct hist *h, uint64_t v);

/* dst = src plus the samples a closed loop did not take while a request was slow, the correction
 * for coordinated omission that wrk 4 and HdrHistogram apply with an expected interval E (wrk:
 * run time x connections / requests): every value v > 2E adds values v - E, v - 2E, ... down to
 * the last one above E, with v's count. Values are taken at their bucket's middle. dst != src. */
void hist_correct(struct hist *dst, const struct hist *src, uint64_t interval);

/* Bucket index of a value and the range [lo, hi] of values that share a bucket. */
size_t hist_bucket_of(uint64_t value);
uint64_t hist_bucket_lo(size_t idx);
uint64_t hist_bucket_hi(size_t idx);

#endif
