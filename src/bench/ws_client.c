/* ws_client: one `weft bench` worker thread for ws:// targets. */
#include <stdio.h>

#include "bench/bench.h"

int bench_ws_worker_run(struct bench_worker *w)
{
    snprintf(w->fail, sizeof w->fail, "ws:// targets are not built yet");
    return -1;
}
