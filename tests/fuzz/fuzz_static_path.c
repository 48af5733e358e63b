/* libFuzzer target for the pure parts of static file serving (http/static_path.h): the URL path
 * to file name mapping that keeps requests inside --static, Range, entity-tag lists and dates.
 * Checks invariants, not just the absence of crashes: a cleaned name never has an empty, "." or
 * ".." segment, a leading or trailing '/', a backslash or a control byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/static_path.h"

static void check_name(const char *out, int len)
{
    if (len <= 0)
        return;
    if ((size_t)len >= STATIC_PATH_MAX || out[len] != '\0' || out[0] == '/' || out[len - 1] == '/')
        abort();
    const char *seg = out;
    for (int i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (i < len && (ch < 0x20 || ch == 0x7f || ch == '\\'))
            abort();
        if (i == len || ch == '/') {
            size_t sl = (size_t)(out + i - seg);
            if (sl == 0 || (sl == 1 && seg[0] == '.') ||
                (sl == 2 && seg[0] == '.' && seg[1] == '.'))
                abort();
            seg = out + i + 1;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[STATIC_PATH_MAX];
    const char *in = (const char *)data;
    int len = static_path_clean(in, size, out, sizeof out);
    if (len > 0)
        check_name(out, len);
    else if (len != -400 && len != -404 && len != -414)
        abort();

    uint64_t fsize = size ? data[0] * 1000u + size : 0, off = 0, rlen = 0;
    if (static_range_parse(in, size, fsize, &off, &rlen) == STATIC_RANGE_PART &&
        (rlen == 0 || off >= fsize || rlen > fsize - off))
        abort();

    (void)static_etag_match(in, size, "\"abc-123\"", size & 1);
    int64_t t = static_http_date_parse(in, size);
    if (t >= 0) {
        char d[64];
        static_http_date_format(t, d);
        if (static_http_date_parse(d, strlen(d)) != t)
            abort();
    }
    (void)static_content_type(in, size);
    return 0;
}
