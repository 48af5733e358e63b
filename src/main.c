/* weft: command dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "chat/client.h"
#include "core/config.h"
#include "core/log.h"
#include "core/server.h"

#define EXIT_USAGE 2

static const char usage[] =
    "usage: weft COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve [options]            run the services (http, echo, chat, balancer, admin)\n"
    "  bench MODE [opts] TARGET   the load generator: closed, open, sweep, preset, models;\n"
    "                             http://, ws:// (chat fan-out), tcp:// (echo)\n"
    "  chat URL                   a terminal chat client: ws://HOST:PORT/ws?room=R&name=N\n"
    "  config check FILE          validate a config file\n"
    "  help [COMMAND]             this text, or a command's options\n"
    "  --version                  print the version\n";

static int cmd_help(int argc, char **argv);

static int cmd_serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            char *serve = "serve";
            return cmd_help(1, &serve);
        }
    }
    struct config *cfg = malloc(sizeof *cfg);
    if (!cfg)
        return 1;
    char err[2048];
    config_defaults(cfg);
    if (config_parse_args(cfg, argc, argv, err, sizeof err) < 0 ||
        config_validate(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "weft: %s\n", err);
        free(cfg);
        return EXIT_USAGE;
    }
    log_set_level(cfg->log_level);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int status = server_run(cfg);
    free(cfg);
    return status;
}

static int cmd_config(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "check") != 0) {
        fprintf(stderr, "weft: usage: weft config check FILE\n");
        return EXIT_USAGE;
    }
    struct config *cfg = malloc(sizeof *cfg);
    if (!cfg)
        return 1;
    char err[4096];
    config_defaults(cfg);
    int rc = config_load_file(cfg, argv[1], err, sizeof err);
    if (rc == 0 && config_validate(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        rc = -1;
    } else if (rc < 0) {
        fprintf(stderr, "%s\n", err);
    }
    free(cfg);
    if (rc < 0)
        return 1;
    printf("%s: ok\n", argv[1]);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[0], "serve") == 0) {
        printf("usage: weft serve [options]\n\noptions (config-file keys drop the leading "
               "dashes and use '_'):\n");
        config_print_help(stdout);
        return 0;
    }
    if (strcmp(argv[0], "config") == 0) {
        printf("usage: weft config check FILE\n\nValidates a libconfig file of `weft serve` "
               "settings; prints FILE:LINE: message for each error and exits 1.\n");
        return 0;
    }
    if (strcmp(argv[0], "chat") == 0) {
        printf("usage: weft chat ws://HOST:PORT/ws?room=ROOM&name=NAME\n\n"
               "Lines typed are sent as chat messages; `/join ROOM` switches rooms; `/quit` or\n"
               "end of input closes. Messages received are printed one per line.\n");
        return 0;
    }
    if (strcmp(argv[0], "bench") == 0) {
        bench_print_help(stdout);
        return 0;
    }
    fprintf(stderr, "weft: unknown command '%s' (try 'weft help')\n", argv[0]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return cmd_help(argc - 2, argv + 2);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("weft %s\n", WEFT_VERSION);
        return 0;
    }
    if (strcmp(cmd, "chat") == 0)
        return chat_client_main(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0)
        return bench_main(argc - 2, argv + 2);
    fprintf(stderr, "weft: unknown command '%s' (try 'weft help')\n", cmd);
    return EXIT_USAGE;
}
