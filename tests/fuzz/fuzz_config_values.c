/* libFuzzer target for the config value parsers (src/core/config.c): addresses, sizes,
 * durations, and `weft serve` flag lists built from the input (NUL-separated arguments). They
 * must never crash, and a value they accept must be in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    struct config_addr a;
    if (config_parse_addr(s, &a) == 0 && a.enabled && a.host[sizeof a.host - 1] != '\0')
        abort();
    size_t bytes;
    (void)config_parse_size(s, &bytes);
    double secs;
    if (config_parse_duration(s, &secs) == 0 && !(secs >= 0))
        abort();

    /* The input as an argument list: "--workers\0abc\0--http\0..." */
    char *argv[32];
    int argc = 0;
    for (char *p = s; p < s + size && argc < 32; p += strlen(p) + 1)
        argv[argc++] = p;
    struct config *cfg = malloc(sizeof *cfg);
    if (cfg) {
        char err[512];
        config_defaults(cfg);
        /* --config would read files: leave it out. */
        int safe = 1;
        for (int i = 0; i < argc; i++)
            if (strncmp(argv[i], "--config", 8) == 0)
                safe = 0;
        if (safe && config_parse_args(cfg, argc, argv, err, sizeof err) == 0 &&
            (cfg->workers < 1 || cfg->workers > 256 || cfg->max_connections < 1))
            abort();
        free(cfg);
    }
    free(s);
    return 0;
}
