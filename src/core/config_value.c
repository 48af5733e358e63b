/* config_value: strict parsers for configuration values: no sign, no trailing junk, overflow
 * detected, every error a person can read. */
#include "core/config_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- strict scalar parsers ---- */

static int parse_ull(const char **sp, unsigned long long *out)
{
    const char *s = *sp;
    unsigned long long v = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

/* A whole string of decimal digits: no sign, no space, no junk. */
int config_parse_uint(const char *s, unsigned long long *out)
{
    return parse_ull(&s, out) == 0 && *s == '\0' ? 0 : -1;
}

static int parse_port(const char *s, uint16_t *out)
{
    unsigned long long v;
    if (strlen(s) > 5 || config_parse_uint(s, &v) != 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* An IPv4 literal, or a host name of letters, digits, '-' and '.'. */
static int host_ok(const char *h)
{
    if (strspn(h, "0123456789.") == strlen(h)) {
        struct in_addr a4;
        return inet_pton(AF_INET, h, &a4) == 1;
    }
    size_t label = 0;
    for (const char *p = h;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return 0;
            if (*p == '\0')
                return 1;
            label = 0;
        } else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
            label++;
        } else {
            return 0;
        }
    }
}

int config_parse_addr(const char *s, struct config_addr *out)
{
    struct config_addr a;
    const char *host, *port;
    size_t hostlen;
    /* memset, not "= {0}": padding too, so that equal configs compare equal bytewise. */
    memset(&a, 0, sizeof a);
    if (!s)
        return -1;
    if (strcmp(s, "off") == 0) {
        *out = a;
        return 0;
    }
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        host = s + 1;
        hostlen = (size_t)(end - host);
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* no port, or an IPv6 address without brackets */
        host = s;
        hostlen = (size_t)(colon - s);
        port = colon + 1;
    }
    if (hostlen >= sizeof a.host || parse_port(port, &a.port) != 0)
        return -1;
    memcpy(a.host, host, hostlen);
    a.host[hostlen] = '\0';
    if (s[0] == '[') {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, a.host, &a6) != 1)
            return -1;
    } else if (hostlen == 0) {
        strcpy(a.host, "127.0.0.1");
    } else if (!host_ok(a.host)) {
        return -1;
    }
    a.enabled = 1;
    *out = a;
    return 0;
}

int config_parse_size(const char *s, size_t *out)
{
    static const struct {
        const char *name;
        unsigned shift;
    } units[] = {{"", 0},    {"b", 0},    {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20},
                 {"mb", 20}, {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}};
    unsigned long long v;
    if (!s || parse_ull(&s, &v) != 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(s, units[i].name) != 0)
            continue;
        if (v > (unsigned long long)SIZE_MAX >> units[i].shift)
            return -1;
        *out = (size_t)(v << units[i].shift);
        return 0;
    }
    return -1;
}

int config_parse_duration(const char *s, double *out)
{
    static const struct {
        const char *name;
        double mul, div;
    } units[] = {{"", 1, 1},     {"s", 1, 1},  {"ms", 1, 1e3},
                 {"us", 1, 1e6}, {"m", 60, 1}, {"h", 3600, 1}};
    unsigned long long mant;
    double scale = 1;
    if (!s || parse_ull(&s, &mant) != 0)
        return -1;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        /* Digits after the point extend the mantissa, so "0.1" is exactly 1/10. */
        for (; isdigit((unsigned char)*s); s++) {
            unsigned d = (unsigned)(*s - '0');
            if (mant > (ULLONG_MAX - d) / 10)
                return -1;
            mant = mant * 10 + d;
            scale *= 10;
        }
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s, units[i].name) != 0)
            continue;
        double v = (double)mant / scale * units[i].mul / units[i].div;
        if (!isfinite(v))
            return -1;
        *out = v;
        return 0;
    }
    return -1;
}

/* "HOST:PORT[,weight=W]", port 1..65535, weight 1..MAX_WEIGHT (default 1). */
int config_parse_backend(const char *s, struct config_backend *out)
{
    char addr[96];
    struct config_addr a;
    unsigned long long w = 1;
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    if (n >= sizeof addr)
        return -1;
    memcpy(addr, s, n);
    addr[n] = '\0';
    if (config_parse_addr(addr, &a) != 0 || !a.enabled || a.port == 0)
        return -1;
    if (comma && (strncmp(comma + 1, "weight=", 7) != 0 || config_parse_uint(comma + 8, &w) != 0 ||
                  w < 1 || w > MAX_WEIGHT))
        return -1;
    memcpy(out->host, a.host, sizeof out->host);
    out->port = a.port;
    out->weight = (int)w;
    return 0;
}

/* ---- checks of string options ---- */

int config_check_dir(const char *v, char *why, size_t whylen)
{
    struct stat st;
    if (stat(v, &st) != 0) {
        snprintf(why, whylen, "must be an existing directory: %s", strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "must be an existing directory: not a directory");
        return -1;
    }
    return 0;
}

int config_check_redis(const char *v, char *why, size_t whylen)
{
    struct config_addr a;
    if (strncmp(v, "redis://", 8) != 0 || v[8] == ':' || config_parse_addr(v + 8, &a) != 0 ||
        !a.enabled || a.port == 0) {
        snprintf(why, whylen, "must be redis://HOST:PORT");
        return -1;
    }
    return 0;
}

int config_check_header(const char *v, char *why, size_t whylen)
{
    /* RFC 9110 token characters. */
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    if (strspn(v, tchar) != strlen(v)) {
        snprintf(why, whylen, "must be an HTTP header name");
        return -1;
    }
    return 0;
}

/* An Origin header value: scheme "http" or "https", a host, maybe a port, no path. */
int config_origin_ok(const char *v)
{
    const char *rest;
    if (strncmp(v, "http://", 7) == 0)
        rest = v + 7;
    else if (strncmp(v, "https://", 8) == 0)
        rest = v + 8;
    else
        return 0;
    if (*rest == '\0')
        return 0;
    for (; *rest; rest++)
        if (*rest == '/' || !isgraph((unsigned char)*rest))
            return 0;
    return 1;
}
