/* Static files under --static (SPEC, "HTTP service"): GET/HEAD /static/NAME, sent with sendfile,
 * with ETag, Last-Modified, conditional requests and single byte ranges.
 *
 * Nothing outside the root is ever opened: the URL path is decoded once and every "." or ".."
 * segment refused (static_path_clean), then the file is opened relative to the root's directory
 * fd with openat2(RESOLVE_BENEATH), so a symlink that leads out of the root fails in the kernel.
 * Where openat2 is missing, each component is opened with O_NOFOLLOW instead (stricter: no
 * symlink at all). The root is opened per request: static files are not the hot path, and a root
 * replaced while weft runs is then picked up without a mutable global. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/worker.h"
#include "http/handlers.h"
#include "http/http.h"
#include "http/static_path.h"

/* ---- the pure parts (static_path.h) ---- */

static int hex_value(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Whether out[start..end) is "." or "..". */
static int dot_segment(const char *out, size_t start, size_t end)
{
    size_t len = end - start;
    return (len == 1 && out[start] == '.') ||
           (len == 2 && out[start] == '.' && out[start + 1] == '.');
}

int static_path_clean(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0, seg = 0;
    /* One pass: each byte is decoded exactly once (so "%252e" stays the literal "%2e") and the
     * segments are checked after decoding (so "%2e%2e" and "..%2f" are caught as "..").
     * i == n acts as a final '/' that closes the last segment. */
    for (size_t i = 0; i <= n; i++) {
        int ch = '/';
        if (i < n) {
            ch = (unsigned char)in[i];
            if (ch == '%') {
                if (n - i < 3)
                    return -400;
                int hi = hex_value((unsigned char)in[i + 1]);
                int lo = hex_value((unsigned char)in[i + 2]);
                if (hi < 0 || lo < 0)
                    return -400;
                ch = hi * 16 + lo;
                i += 2;
            }
            if (ch < 0x20 || ch == 0x7f)
                return -400;
            if (ch == '\\')
                return -404;
        }
        if (ch == '/') {
            if (o == seg)
                continue; /* empty segment: "//" and a leading or trailing '/' */
            if (dot_segment(out, seg, o))
                return -404;
        }
        if (o >= outlen)
            return -414;
        out[o++] = (char)ch;
        if (ch == '/')
            seg = o;
    }
    if (o == 0)
        return -404;
    out[--o] = '\0'; /* the last byte written is always the closing '/' */
    return (int)o;
}

static int ows(int ch)
{
    return ch == ' ' || ch == '\t';
}

/* Digits at *p as an unsigned integer, saturating at UINT64_MAX; -1 when there is none. */
static int parse_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
        s++;
    }
    if (s == *p)
        return -1;
    *p = s;
    *v = x;
    return 0;
}

enum static_range_result static_range_parse(const char *v, size_t n, uint64_t size, uint64_t *off,
                                            uint64_t *len)
{
    const char *p = v, *end = v + n;
    if (n < 6 || strncasecmp(p, "bytes=", 6) != 0)
        return STATIC_RANGE_FULL;
    p += 6;
    int count = 0, suffix = 0;
    uint64_t first = 0, last = UINT64_MAX;
    /* range-set = 1#range-spec: a list, so empty elements and OWS around commas are allowed. */
    for (;;) {
        while (p < end && (ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        uint64_t a = 0, b = UINT64_MAX;
        int is_suffix = *p == '-';
        if (is_suffix) {
            p++;
            if (parse_u64(&p, end, &a) < 0)
                return STATIC_RANGE_FULL;
        } else {
            if (parse_u64(&p, end, &a) < 0 || p == end || *p++ != '-')
                return STATIC_RANGE_FULL;
            if (p < end && *p >= '0' && *p <= '9') {
                parse_u64(&p, end, &b);
                if (b < a)
                    return STATIC_RANGE_FULL; /* invalid range-spec: the header is ignored */
            }
        }
        while (p < end && ows(*p))
            p++;
        if (p < end && *p != ',')
            return STATIC_RANGE_FULL;
        count++;
        suffix = is_suffix;
        first = a;
        last = b;
    }
    /* Several ranges would need multipart/byteranges; RFC 9110 lets a server send 200 instead.
     * An empty file has no byte to select: 200 as well. */
    if (count != 1 || size == 0)
        return STATIC_RANGE_FULL;
    if (suffix) {
        if (first == 0)
            return STATIC_RANGE_UNSATISFIABLE;
        *len = first < size ? first : size;
        *off = size - *len;
        return STATIC_RANGE_PART;
    }
    if (first >= size)
        return STATIC_RANGE_UNSATISFIABLE;
    if (last > size - 1)
        last = size - 1;
    *off = first;
    *len = last - first + 1;
    return STATIC_RANGE_PART;
}

int static_etag_match(const char *list, size_t n, const char *etag, int strong)
{
    const char *p = list, *end = list + n;
    size_t elen = strlen(etag);
    for (;;) {
        while (p < end && (ows(*p) || *p == ','))
            p++;
        if (p == end)
            return 0;
        if (*p == '*') {
            p++;
            while (p < end && ows(*p))
                p++;
            return p == end; /* "*" is only valid as the whole value */
        }
        int weak = 0;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            weak = 1;
            p += 2;
        }
        if (p == end || *p != '"')
            return 0;
        const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!close)
            return 0;
        size_t tlen = (size_t)(close - p) + 1;
        if (!(strong && weak) && tlen == elen && memcmp(p, etag, elen) == 0)
            return 1;
        p = close + 1;
        while (p < end && ows(*p))
            p++;
        if (p < end && *p != ',')
            return 0;
    }
}

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dim[m - 1] + (m == 2 && leap);
}

/* A cursor over a date string: each step consumes its piece or sets bad. */
struct date_cursor {
    const char *p, *end;
    int bad;
};

static void expect_char(struct date_cursor *c, char ch)
{
    if (c->p < c->end && *c->p == ch)
        c->p++;
    else
        c->bad = 1;
}

/* Exactly `digits` decimal digits. */
static unsigned take_num(struct date_cursor *c, int digits)
{
    unsigned v = 0;
    for (int i = 0; i < digits; i++) {
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            c->bad = 1;
            return 0;
        }
        v = v * 10 + (unsigned)(*c->p++ - '0');
    }
    return v;
}

static unsigned take_month(struct date_cursor *c)
{
    if (c->end - c->p >= 3) {
        for (unsigned m = 0; m < 12; m++)
            if (memcmp(c->p, month_names[m], 3) == 0) {
                c->p += 3;
                return m + 1;
            }
    }
    c->bad = 1;
    return 1;
}

/* A day name: three letters, or the long form of RFC 850 ("Sunday"). */
static void take_day_name(struct date_cursor *c)
{
    const char *s = c->p;
    while (c->p < c->end && ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    if (c->p - s < 3)
        c->bad = 1;
}

static void take_time(struct date_cursor *c, unsigned *h, unsigned *mi, unsigned *s)
{
    *h = take_num(c, 2);
    expect_char(c, ':');
    *mi = take_num(c, 2);
    expect_char(c, ':');
    *s = take_num(c, 2);
}

int64_t static_http_date_parse(const char *s, size_t n)
{
    struct date_cursor c = {s, s + n, 0};
    unsigned day, month, h, mi, sec;
    int64_t year;
    take_day_name(&c);
    if (c.p < c.end && *c.p == ',') {
        c.p++;
        expect_char(&c, ' ');
        day = take_num(&c, 2);
        if (c.p < c.end && *c.p == '-') {
            /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year before 70 is 20xx. */
            c.p++;
            month = take_month(&c);
            expect_char(&c, '-');
            year = take_num(&c, 2);
            year += year < 70 ? 2000 : 1900;
        } else {
            /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
            expect_char(&c, ' ');
            month = take_month(&c);
            expect_char(&c, ' ');
            year = take_num(&c, 4);
        }
        expect_char(&c, ' ');
        take_time(&c, &h, &mi, &sec);
        expect_char(&c, ' ');
        expect_char(&c, 'G');
        expect_char(&c, 'M');
        expect_char(&c, 'T');
    } else {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        expect_char(&c, ' ');
        month = take_month(&c);
        expect_char(&c, ' ');
        if (c.p < c.end && *c.p == ' ') {
            c.p++;
            day = take_num(&c, 1);
        } else {
            day = take_num(&c, 2);
        }
        expect_char(&c, ' ');
        take_time(&c, &h, &mi, &sec);
        expect_char(&c, ' ');
        year = take_num(&c, 4);
    }
    if (c.bad || c.p != c.end || year < 1970 || day < 1 || (int)day > days_in_month(year, month) ||
        h > 23 || mi > 59 || sec > 60)
        return -1;
    return days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + sec;
}

static char *put2(char *p, unsigned v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

void static_http_date_format(int64_t t, char *out)
{
    /* By hand rather than strftime: %a and %b follow the locale, HTTP dates must not. */
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char *p = out;
    memcpy(p, day_names[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, (unsigned)tm.tm_mday);
    *p++ = ' ';
    memcpy(p, month_names[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    unsigned y = (unsigned)(tm.tm_year + 1900);
    p = put2(p, y / 100);
    p = put2(p, y % 100);
    *p++ = ' ';
    p = put2(p, (unsigned)tm.tm_hour);
    *p++ = ':';
    p = put2(p, (unsigned)tm.tm_min);
    *p++ = ':';
    p = put2(p, (unsigned)tm.tm_sec);
    memcpy(p, " GMT", 5);
}

const char *static_content_type(const char *name, size_t n)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"svg", "image/svg+xml"},
        {"ico", "image/x-icon"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
    };
    size_t i = n;
    while (i > 0 && name[i - 1] != '.' && name[i - 1] != '/')
        i--;
    /* No dot, or a dot that starts the name (".profile"): no extension. */
    if (i <= 1 || name[i - 1] != '.' || name[i - 2] == '/')
        return "application/octet-stream";
    size_t elen = n - i;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        if (strlen(types[t].ext) == elen && strncasecmp(name + i, types[t].ext, elen) == 0)
            return types[t].type;
    return "application/octet-stream";
}

/* ---- opening beneath the root ---- */

#define OPEN_FILE_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

/* Opens name below dfd one component at a time, refusing every symlink. fd or -errno. */
static int open_walk(int dfd, const char *name)
{
    int cur = dfd;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char seg[NAME_MAX + 1];
        int fd;
        if (len > NAME_MAX) {
            fd = -ENAMETOOLONG;
        } else {
            memcpy(seg, p, len);
            seg[len] = '\0';
            int flags = slash ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                              : OPEN_FILE_FLAGS | O_NOFOLLOW;
            fd = openat(cur, seg, flags);
            if (fd < 0)
                fd = -errno;
        }
        if (cur != dfd)
            close(cur);
        if (fd < 0 || !slash)
            return fd;
        cur = fd;
        p = slash + 1;
    }
}

/* Opens name (from static_path_clean) under root, never outside it. fd or -errno. */
static int open_beneath(const char *root, const char *name)
{
    int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    struct open_how how = {
        .flags = OPEN_FILE_FLAGS,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dfd, name, &how, sizeof how);
    if (fd < 0)
        fd = -errno;
    /* ENOSYS: a kernel before 5.6; EPERM: a seccomp filter that predates openat2. */
    if (fd == -ENOSYS || fd == -EPERM)
        fd = open_walk(dfd, name);
    close(dfd);
    return (int)fd;
}

/* ---- answering ---- */

/* The answer to an open() failure, which never names the path. */
static void respond_open_error(struct http_exchange *x, int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
        http_respond_error(x, 403, "forbidden");
        break;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
        http_respond_error(x, 503, "out of resources, try again");
        break;
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case EXDEV:
    case ENAMETOOLONG:
    case EISDIR:
    case ENXIO:
    case ENODEV:
        http_respond_error(x, 404, "not found");
        break;
    default:
        http_respond_error(x, 500, "cannot open the file");
        break;
    }
}

static void respond_clean_error(struct http_exchange *x, int status)
{
    if (status == 400)
        http_respond_error(x, 400, "bad request");
    else if (status == 414)
        http_respond_error(x, 414, "path too long");
    else
        http_respond_error(x, 404, "not found");
}

/* Whether the Range applies: no If-Range, or one that names the current file (a strong ETag,
 * or exactly its Last-Modified date). */
static int if_range_holds(const struct http_request *r, const char *etag, int64_t last_mod)
{
    const struct http_slice *ir = http_request_header(r, "if-range");
    if (!ir)
        return 1;
    if ((ir->n > 0 && ir->p[0] == '"') || (ir->n > 1 && ir->p[0] == 'W' && ir->p[1] == '/'))
        return static_etag_match(ir->p, ir->n, etag, 1);
    return static_http_date_parse(ir->p, ir->n) == last_mod;
}

/* Whether the client's copy is current (RFC 9110 13.2.2: If-None-Match, else
 * If-Modified-Since). */
static int not_modified(const struct http_request *r, const char *etag, int64_t last_mod)
{
    const struct http_slice *inm = http_request_header(r, "if-none-match");
    if (inm)
        return static_etag_match(inm->p, inm->n, etag, 0);
    const struct http_slice *ims = http_request_header(r, "if-modified-since");
    if (!ims)
        return 0;
    int64_t t = static_http_date_parse(ims->p, ims->n);
    return t >= 0 && last_mod <= t;
}

/* outq slices hold 32-bit lengths: a larger range goes out as several slices, each with its own
 * descriptor (the queue closes each one). Each slice stays within what one sendfile call can
 * send (MAX_RW_COUNT), so a short count from it only ever means a full socket or a shrunk file.
 * 0, or -errno with fd closed. */
#define FILE_SLICE_MAX 0x7FFFF000u

static int push_file_range(struct conn *c, int fd, uint64_t off, uint64_t len)
{
    while (len > FILE_SLICE_MAX) {
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (d < 0) {
            int err = errno;
            close(fd);
            return -err;
        }
        int rc = conn_push_file(c, d, off, FILE_SLICE_MAX);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        off += FILE_SLICE_MAX;
        len -= FILE_SLICE_MAX;
    }
    return conn_push_file(c, fd, off, len);
}

void static_serve(struct http_exchange *x)
{
    const struct http_request *r = x->req;
    const struct config *cfg = x->c->w->cfg;
    char name[STATIC_PATH_MAX];
    if (r->path.n < 8 || memcmp(r->path.p, "/static/", 8) != 0) {
        http_respond_error(x, 404, "not found");
        return;
    }
    int n = static_path_clean(r->path.p + 8, r->path.n - 8, name, sizeof name);
    if (n < 0) {
        respond_clean_error(x, -n);
        return;
    }
    int fd = open_beneath(cfg->static_dir, name);
    if (fd < 0) {
        respond_open_error(x, -fd);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        http_respond_error(x, 404, "not found");
        return;
    }
    /* Opened non-blocking so a FIFO cannot stall the loop; a regular file reads without it, and
     * sendfile must not see EAGAIN from the file side, which would look like a full socket.
     * F_SETFL 0 clears O_NONBLOCK (the access mode is not changed by F_SETFL). */
    if (fcntl(fd, F_SETFL, 0) < 0) {
        close(fd);
        http_respond_error(x, 500, "cannot open the file");
        return;
    }

    uint64_t size = (uint64_t)st.st_size;
    uint64_t mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    /* A modification time in the future is not sent (RFC 9110 8.8.2.1): the Date is. */
    int64_t last_mod = st.st_mtim.tv_sec;
    if (last_mod > x->c->w->loop.wall_s)
        last_mod = x->c->w->loop.wall_s;
    char etag[48], date[32];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)size,
             (unsigned long long)mtime_ns);
    static_http_date_format(last_mod, date);

    char extra[256];
    int el = snprintf(extra, sizeof extra, "ETag: %s\r\nLast-Modified: %s\r\n", etag, date);
    if (not_modified(r, etag, last_mod)) {
        close(fd);
        http_respond(x, 304, NULL, extra, NULL, 0);
        return;
    }

    int status = 200;
    uint64_t off = 0, len = size;
    /* Range is defined for GET only (RFC 9110 14.2); HEAD gets the 200 head. */
    const struct http_slice *range = r->method == HTTP_GET ? http_request_header(r, "range") : NULL;
    if (range && if_range_holds(r, etag, last_mod)) {
        switch (static_range_parse(range->p, range->n, size, &off, &len)) {
        case STATIC_RANGE_PART:
            status = 206;
            snprintf(extra + el, sizeof extra - (size_t)el,
                     "Accept-Ranges: bytes\r\nContent-Range: bytes %llu-%llu/%llu\r\n",
                     (unsigned long long)off, (unsigned long long)(off + len - 1),
                     (unsigned long long)size);
            break;
        case STATIC_RANGE_UNSATISFIABLE: {
            static const char body[] = "{\"error\":\"range not satisfiable\"}\n";
            close(fd);
            snprintf(extra, sizeof extra, "Content-Range: bytes */%llu\r\n",
                     (unsigned long long)size);
            http_respond(x, 416, "application/json", extra, body, sizeof body - 1);
            return;
        }
        case STATIC_RANGE_FULL:
            break;
        }
    }
    if (status == 200)
        snprintf(extra + el, sizeof extra - (size_t)el, "Accept-Ranges: bytes\r\n");

    if (!http_respond_head(x, status, static_content_type(name, (size_t)n), extra, len)) {
        close(fd); /* HEAD, or the head could not be queued (the connection is closed) */
        return;
    }
    if (push_file_range(x->c, fd, off, len) < 0)
        conn_close(x->c); /* the head promised len bytes that cannot follow */
}
