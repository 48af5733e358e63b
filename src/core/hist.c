/* hist: log-linear latency histogram (see hist.h).
 *
 * Layout: with s = max(msb(v), HIST_SUB_BITS) - HIST_SUB_BITS, a value v lands in bucket
 * (s << HIST_SUB_BITS) + (v >> s). Values below 2 * HIST_SUB_BUCKETS have s = 0 and map to
 * themselves; above that, v >> s always lies in [HIST_SUB_BUCKETS, 2 * HIST_SUB_BUCKETS), so each
 * power of two [2^b, 2^(b+1)) is cut into HIST_SUB_BUCKETS buckets of width 2^s. This is the
 * formula (b - SUB_BITS + 1) * SUB_BUCKETS + (v >> (b - SUB_BITS)) - SUB_BUCKETS rewritten so that
 * small and large values share one branch-free expression. */
#include "core/hist.h"

#include <assert.h>
#include <math.h>
#include <string.h>

_Static_assert(HIST_SUB_BITS >= 1 && HIST_SUB_BITS < HIST_MAX_BITS, "bad HIST_SUB_BITS");
_Static_assert(HIST_MAX_BITS < 64, "bad HIST_MAX_BITS");

static inline uint64_t clamp_value(uint64_t v)
{
    return v > HIST_MAX_VALUE ? HIST_MAX_VALUE : v;
}

/* Shift for v's power of two: 0 for v < 2 * HIST_SUB_BUCKETS. v must be <= HIST_MAX_VALUE. */
static inline unsigned bucket_shift(uint64_t v)
{
    /* OR-ing in the low bits keeps the argument of clz nonzero and floors msb at HIST_SUB_BITS. */
    unsigned msb = 63u - (unsigned)__builtin_clzll(v | ((UINT64_C(2) << HIST_SUB_BITS) - 1));
    return msb - HIST_SUB_BITS;
}

static inline size_t bucket_index(uint64_t v)
{
    unsigned s = bucket_shift(v);
    return ((size_t)s << HIST_SUB_BITS) + (size_t)(v >> s);
}

size_t hist_bucket_of(uint64_t value)
{
    return bucket_index(clamp_value(value));
}

uint64_t hist_bucket_lo(size_t idx)
{
    assert(idx < HIST_BUCKETS);
    if (idx < HIST_SUB_BUCKETS)
        return idx;
    unsigned s = (unsigned)(idx >> HIST_SUB_BITS) - 1;
    return ((uint64_t)(idx & (HIST_SUB_BUCKETS - 1)) | HIST_SUB_BUCKETS) << s;
}

uint64_t hist_bucket_hi(size_t idx)
{
    assert(idx < HIST_BUCKETS);
    if (idx < HIST_SUB_BUCKETS)
        return idx;
    unsigned s = (unsigned)(idx >> HIST_SUB_BITS) - 1;
    return hist_bucket_lo(idx) + (UINT64_C(1) << s) - 1;
}

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_record_n(struct hist *h, uint64_t value, uint64_t n)
{
    if (n == 0)
        return;
    uint64_t v = clamp_value(value);
    h->clamped += (value > HIST_MAX_VALUE) * n;
    h->count += n;
    h->counts[bucket_index(v)] += n;
    h->min = v < h->min ? v : h->min;
    h->max = v > h->max ? v : h->max;
    h->sum += (double)v * (double)n;
}

/* The hot path: no n == 0 check, everything else compiles to conditional moves. */
void hist_record(struct hist *h, uint64_t value)
{
    uint64_t v = clamp_value(value);
    h->clamped += value > HIST_MAX_VALUE;
    h->count++;
    h->counts[bucket_index(v)]++;
    h->min = v < h->min ? v : h->min;
    h->max = v > h->max ? v : h->max;
    h->sum += (double)v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0)
        return;
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->min = src->min < dst->min ? src->min : dst->min;
    dst->max = src->max > dst->max ? src->max : dst->max;
    dst->sum += src->sum;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    /* Written as !(p > 0) so that a NaN gives the minimum rather than undefined conversions. */
    if (!(p > 0))
        return h->min;
    if (p >= 100)
        return h->max;

    double r = ceil(p / 100.0 * (double)h->count);
    uint64_t rank = r < 1 ? 1 : r >= (double)h->count ? h->count : (uint64_t)r;

    /* Buckets below min's and above max's are empty, so the walk is bounded by them. */
    size_t last = bucket_index(h->max);
    uint64_t seen = 0;
    size_t i = bucket_index(h->min);
    for (; i < last; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            break;
    }
    uint64_t hi = hist_bucket_hi(i);
    if (hi < h->min)
        return h->min;
    return hi > h->max ? h->max : hi;
}

double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

uint64_t hist_count_le(const struct hist *h, uint64_t v)
{
    /* Exact answers at the ends, where Prometheus' le buckets most often fall. */
    if (h->count == 0 || v < h->min)
        return 0;
    if (v >= h->max)
        return h->count;

    /* v < max <= HIST_MAX_VALUE here. v's own bucket counts only if v is its top, so the result
     * never exceeds the true count: it is exact for all values below v's bucket. */
    size_t idx = bucket_index(v);
    uint64_t n = 0;
    for (size_t i = bucket_index(h->min); i < idx; i++)
        n += h->counts[i];
    if (v == hist_bucket_hi(idx))
        n += h->counts[idx];
    return n;
}

void hist_correct(struct hist *dst, const struct hist *src, uint64_t interval)
{
    assert(dst != src);
    *dst = *src;
    if (interval == 0 || src->count == 0)
        return;
    size_t last = bucket_index(src->max);
    for (size_t i = bucket_index(src->min); i <= last; i++) {
        uint64_t c = src->counts[i];
        if (c == 0)
            continue;
        /* Every value of the bucket is taken at its middle (exact below 2 * HIST_SUB_BUCKETS). */
        uint64_t lo = hist_bucket_lo(i), v = lo + (hist_bucket_hi(i) - lo) / 2;
        if (v < src->min)
            v = src->min;
        if (v > src->max)
            v = src->max;
        if (v <= 2 * interval)
            continue;
        /* The missed samples v - k * interval for k = 1..K, all > interval. */
        uint64_t k_max = (v - interval - 1) / interval;
        uint64_t t = v - interval;
        for (uint64_t k = 1; k <= k_max;) {
            /* The steps from t downwards that stay in t's bucket, added at once. */
            size_t j = bucket_index(t);
            uint64_t n = (t - hist_bucket_lo(j)) / interval + 1;
            if (n > k_max - k + 1)
                n = k_max - k + 1;
            dst->counts[j] += n * c;
            dst->count += n * c;
            /* t + (t - interval) + ... + (t - (n - 1) interval), c times */
            dst->sum += (double)c * ((double)n * (double)t -
                                     (double)interval * (double)n * (double)(n - 1) / 2.0);
            uint64_t lowest = t - (n - 1) * interval;
            dst->min = lowest < dst->min ? lowest : dst->min;
            k += n;
            t = lowest - interval;
        }
    }
}
