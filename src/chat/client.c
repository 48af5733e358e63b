/* chat_client: `weft chat URL`. One connection, blocking I/O and a poll() over stdin and the
 * socket: a terminal client needs no event loop. Frames are read into a fixed buffer and fed to
 * the ws_msg assembler as they come, so only a data message's payload is kept whole. */
#include "chat/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "ws/frame.h"
#include "ws/handshake.h"

#define CHAT_TIMEOUT_S 10           /* connect, handshake response, and any one blocking send */
#define CHAT_CLOSE_WAIT_MS 2000     /* for the server's close after ours */
#define CHAT_MAX_MESSAGE (4u << 20) /* the server's JSON; its limit on text is 64 KiB */
#define CHAT_MAX_RESPONSE 8192
#define CHAT_BUF 65536

static const char chat_usage[] = "usage: weft chat ws://HOST[:PORT]/ws?room=ROOM&name=NAME\n";

/* The host is without the brackets of an IPv6 literal; path has the query, as sent. */
struct chat_url {
    char host[256], port[8], path[2048];
    int bracketed;
};

struct chat_client {
    int fd, done, status;
    int closing;   /* our close frame is out; waiting for the server's */
    int skip_line; /* dropping the rest of an over-long input line */
    char err[160];
    long close_at; /* monotonic ms */
    struct ws_msg m;
    size_t rlen, line_len, ctl_len, msg_len;
    uint8_t rbuf[CHAT_BUF];
    char line[CHAT_BUF];
    uint8_t ctl[WS_MAX_CONTROL_PAYLOAD];
    uint8_t msg[CHAT_MAX_MESSAGE]; /* the open data message's payload */
};

/* Splits ws://HOST[:PORT][/PATH][?QUERY][#FRAGMENT]; returns NULL or what is wrong. Only
 * visible ASCII is taken, so nothing in the URL can end a line of the request. */
static const char *url_parse(const char *s, struct chat_url *u)
{
    int n = 0;
    unsigned long port = 80;
    char *end;
    if (strncasecmp(s, "wss://", 6) == 0)
        return "wss is not supported yet";
    if (strncasecmp(s, "ws://", 5) != 0)
        return "the URL must start with ws://";
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return "the URL must be visible ASCII (percent-encode the rest)";
    s += 5;
    u->bracketed = s[0] == '[';
    if (sscanf(s, u->bracketed ? "[%255[^]]]%n" : "%255[^][:/?#@\\]%n", u->host, &n) != 1 ||
        n == 0 || (s[n] != '\0' && strchr(":/?#", s[n]) == NULL))
        return "bad host in the URL";
    s += n + (s[n] == ':'); /* an empty port is the default one */
    if (s[0] >= '0' && s[0] <= '9') {
        port = strtoul(s, &end, 10);
        port = end - s > 5 ? 0 : port;
        s = end;
    }
    if (port < 1 || port > 65535 || (s[0] != '\0' && strchr("/?#", s[0]) == NULL))
        return "bad port in the URL";
    snprintf(u->port, sizeof u->port, "%lu", port);
    const char *prefix = s[0] == '/' ? "" : "/ws";
    size_t tlen = strcspn(s, "#");
    if (strlen(prefix) + tlen >= sizeof u->path)
        return "the URL is too long";
    snprintf(u->path, sizeof u->path, "%s%.*s", prefix, (int)tlen, s);
    return NULL;
}

/* A blocking socket whose connect, sends and receives give up after CHAT_TIMEOUT_S (Linux
 * applies SO_SNDTIMEO to connect), or -1 with errno set. */
static int try_connect(const struct addrinfo *ai)
{
    struct timeval tv = {.tv_sec = CHAT_TIMEOUT_S};
    int one = 1, fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int err = errno == EINPROGRESS ? ETIMEDOUT : errno;
        close(fd);
        errno = err;
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int chat_connect(const struct chat_url *u)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int fd = -1, rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "weft chat: %s: %s\n", u->host, gai_strerror(rc));
        return -1;
    }
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = try_connect(ai);
    if (fd < 0)
        fprintf(stderr, "weft chat: cannot connect to %s port %s: %s\n", u->host, u->port,
                strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    for (const uint8_t *b = p; n > 0;) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EINTR)
            return -1;
        b += w > 0 ? w : 0;
        n -= w > 0 ? (size_t)w : 0;
    }
    return 0;
}

/* Copies the trimmed value of header `name` in the response head (every line of which ends in
 * CRLF) to out; "" when it is absent or does not fit. */
static void header_get(const char *head, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    for (const char *l = strstr(head, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nlen) != 0 || l[nlen] != ':')
            continue;
        const char *v = l + nlen + 1 + strspn(l + nlen + 1, " \t"), *e = strstr(v, "\r\n");
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - v) < cap)
            snprintf(out, cap, "%.*s", (int)(e - v), v);
        return;
    }
}

/* Sends the upgrade request and checks the 101; bytes after the response stay in c->rbuf. */
static const char *chat_handshake(struct chat_client *c, const struct chat_url *u)
{
    uint8_t raw[16];
    char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1], req[2560];
    /* getrandom never returns short or interrupted for up to 256 bytes. */
    if (getrandom(raw, sizeof raw, 0) != sizeof raw ||
        EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw) != WS_KEY_LEN ||
        ws_accept_key(key, WS_KEY_LEN, accept) < 0)
        return "cannot make a WebSocket key";
    int n =
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 u->path, u->bracketed ? "[" : "", u->host, u->bracketed ? "]" : "", u->port, key);
    if (send_all(c->fd, req, (size_t)n) < 0)
        return strerror(errno);
    char *end = NULL;
    while (end == NULL) {
        if (c->rlen == CHAT_MAX_RESPONSE)
            return "the response head is too long";
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, CHAT_MAX_RESPONSE - c->rlen, 0);
        if (r == 0 || (r < 0 && errno != EINTR))
            return r == 0            ? "the server closed the connection"
                   : errno == EAGAIN ? "no response in time"
                                     : strerror(errno);
        c->rlen += r > 0 ? (size_t)r : 0;
        end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    }
    /* The head as a string, its last CRLF kept so that every line ends in one. */
    char *head = (char *)c->rbuf, up[16], conn[256], acc[WS_ACCEPT_LEN + 1];
    size_t hlen = (size_t)(end - head) + 4;
    int status = 0;
    end[2] = '\0';
    if (sscanf(head, "HTTP/1.%*1[01] %3d", &status) != 1 || status != 101) {
        snprintf(c->err, sizeof c->err, "the server answered %.*s", (int)strcspn(head, "\r\n"),
                 head);
        return c->err;
    }
    header_get(head, "Upgrade", up, sizeof up);
    header_get(head, "Connection", conn, sizeof conn);
    header_get(head, "Sec-WebSocket-Accept", acc, sizeof acc);
    if (strcasecmp(up, "websocket") != 0 || strcasestr(conn, "upgrade") == NULL)
        return "the 101 response lacks Upgrade: websocket or Connection: upgrade";
    if (strcmp(acc, accept) != 0)
        return "wrong Sec-WebSocket-Accept";
    c->rlen -= hlen; /* frames may have come with the response */
    memmove(c->rbuf, c->rbuf + hlen, c->rlen);
    return NULL;
}

/* Sends one frame, masked with a fresh mask as RFC 6455 5.3 requires of a client. */
static void send_frame(struct chat_client *c, int opcode, const void *payload, size_t len)
{
    uint8_t mask[4], *f = malloc(WS_MAX_HEADER + len);
    size_t hl = f && getrandom(mask, sizeof mask, 0) == sizeof mask
                    ? ws_frame_header_encode(f, 1, opcode, len, mask)
                    : 0;
    if (hl > 0) {
        memcpy(f + hl, payload, len);
        ws_unmask(f + hl, len, mask, 0);
    }
    if (hl == 0 || send_all(c->fd, f, hl + len) < 0) {
        fprintf(stderr, "weft chat: sending: %s\n", strerror(errno));
        c->done = c->status = 1;
    }
    free(f);
}

/* Sends a close frame; code 0 sends none (the answer to a close that had none). */
static void send_close(struct chat_client *c, uint16_t code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_frame(c, WS_OP_CLOSE, p, code ? 2 : 0);
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void start_close(struct chat_client *c)
{
    send_close(c, WS_CLOSE_NORMAL);
    c->closing = 1;
    c->close_at = now_ms() + CHAT_CLOSE_WAIT_MS;
}

/* One line typed: a command or a message. json_pack refuses invalid UTF-8, which the
 * server would answer by closing with 1007. */
static void on_line(struct chat_client *c, const char *l, size_t n)
{
    n -= n > 0 && l[n - 1] == '\r';
    if (n == 5 && memcmp(l, "/quit", 5) == 0) {
        start_close(c);
        return;
    }
    int join = n >= 5 && memcmp(l, "/join", 5) == 0 && (n == 5 || l[5] == ' ');
    size_t skip = join ? 5 : 0;
    while (join && skip < n && l[skip] == ' ')
        skip++;
    if (n == 0 || (join && skip >= n)) {
        if (join)
            fprintf(stderr, "! usage: /join ROOM\n");
        return;
    }
    json_t *o = json_pack("{s:s,s:s%}", "type", join ? "join" : "msg", join ? "room" : "text",
                          l + skip, n - skip);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL)
        fprintf(stderr, "! the line is not valid UTF-8: not sent\n");
    else
        send_frame(c, WS_OP_TEXT, s, strlen(s));
    free(s);
}

/* Reads what stdin has and acts on each complete line; end of input closes like /quit. */
static void read_stdin(struct chat_client *c)
{
    ssize_t r = read(STDIN_FILENO, c->line + c->line_len, sizeof c->line - c->line_len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        if (c->line_len > 0 && !c->skip_line)
            on_line(c, c->line, c->line_len);
        if (!c->done && !c->closing)
            start_close(c);
        return;
    }
    c->line_len += (size_t)r;
    char *l = c->line, *nl;
    while (!c->done && !c->closing && (nl = memchr(l, '\n', c->line_len - (size_t)(l - c->line)))) {
        if (!c->skip_line)
            on_line(c, l, (size_t)(nl - l));
        c->skip_line = 0;
        l = nl + 1;
    }
    c->line_len -= (size_t)(l - c->line);
    memmove(c->line, l, c->line_len);
    if (c->line_len == sizeof c->line) {
        fprintf(stderr, "! line longer than %zu bytes: not sent\n", sizeof c->line - 1);
        c->skip_line = 1;
        c->line_len = 0;
    }
}

/* Writes s[0..n) to stdout with control characters (C0, DEL, and C1 as U+0080..U+009F) shown
 * as '?': text from other people must not drive the terminal or break a line in two. */
static void print_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        int c1 = b == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0;
        i += (size_t)c1;
        putchar(c1 || (b < 0x20 && b != '\t') || b == 0x7f ? '?' : b);
    }
}

/* Prints pre, a, mid, b: the fixed parts as they are, a and b cleaned. */
static void print4(const char *pre, const char *a, size_t alen, const char *mid, const char *b,
                   size_t blen)
{
    fputs(pre, stdout);
    print_clean(a, alen);
    fputs(mid, stdout);
    print_clean(b, blen);
}

/* Prints one message of the chat protocol; -1 when it has not the shape its type promises. */
static int print_json(json_t *o)
{
    const char *type = "", *a, *b = "", *ev;
    size_t alen, blen = 0;
    json_int_t ts = -1, members;
    char hms[24] = "[??:??:??] ";
    json_unpack(o, "{s:s}", "type", &type);
    if (strcmp(type, "msg") == 0 &&
        json_unpack(o, "{s:s%,s:s%,s?I}", "from", &a, &alen, "text", &b, &blen, "ts", &ts) == 0) {
        time_t t = ts >= 0 ? (time_t)(ts / 1000000) : time(NULL);
        struct tm tm;
        if (localtime_r(&t, &tm) != NULL)
            strftime(hms, sizeof hms, "[%H:%M:%S] ", &tm);
        print4(hms, a, alen, ": ", b, blen);
    } else if (strcmp(type, "joined") == 0 &&
               json_unpack(o, "{s:s%,s:s%,s:I}", "room", &a, &alen, "name", &b, &blen, "members",
                           &members) == 0) {
        print4("* joined ", a, alen, " as ", b, blen);
        printf(" (%" JSON_INTEGER_FORMAT " members)", members);
    } else if (strcmp(type, "presence") == 0 &&
               json_unpack(o, "{s:s%,s:s,s:I}", "name", &a, &alen, "event", &ev, "members",
                           &members) == 0 &&
               (strcmp(ev, "join") == 0 || strcmp(ev, "leave") == 0)) {
        print4("* ", a, alen, ev[0] == 'j' ? " joined" : " left", b, blen);
        printf(" (%" JSON_INTEGER_FORMAT " members)", members);
    } else if (strcmp(type, "error") == 0 && json_unpack(o, "{s:s%}", "error", &a, &alen) == 0) {
        print4("! error: ", a, alen, "", b, blen);
    } else {
        return -1;
    }
    return 0;
}

/* A complete data message: the chat's JSON when it is that, else the raw bytes, cleaned. */
static void on_message(struct chat_client *c)
{
    json_t *o = json_loadb((const char *)c->msg, c->msg_len, 0, NULL);
    if (o == NULL || print_json(o) < 0)
        print_clean((const char *)c->msg, c->msg_len);
    json_decref(o);
    putchar('\n');
    fflush(stdout);
    c->msg_len = 0;
}

static void on_control(struct chat_client *c)
{
    uint16_t code;
    const uint8_t *reason;
    size_t rlen = 0;
    if (c->m.frame_opcode == WS_OP_PING && !c->closing)
        send_frame(c, WS_OP_PONG, c->ctl, c->ctl_len);
    if (c->m.frame_opcode != WS_OP_CLOSE)
        return;
    c->done = 1;
    if (ws_close_parse(c->ctl, c->ctl_len, &code, &reason, &rlen) < 0) {
        code = WS_CLOSE_PROTOCOL;
        rlen = 0;
    }
    if (c->closing)
        return; /* the answer to ours: the status stays 0 */
    printf("* closed by server: %u%s", code, rlen ? " " : "");
    print4("", (const char *)reason, rlen, "\n", "", 0);
    fflush(stdout);
    send_close(c, code == WS_CLOSE_NO_STATUS ? 0 : code);
    c->status = code == WS_CLOSE_NORMAL || code == WS_CLOSE_GOING_AWAY ? 0 : 1;
}

/* Feeds the bytes received to the assembler, acting on each frame as it ends. */
static void process_input(struct chat_client *c)
{
    size_t off = 0;
    while (!c->done) {
        int ev;
        if (!c->m.in_frame) {
            struct ws_frame_header h;
            ev = ws_frame_parse_header(c->rbuf + off, c->rlen - off, WS_MASK_FORBIDDEN, &h);
            if (ev == 0)
                break;
            if (ev > 0) {
                off += (size_t)ev;
                c->ctl_len = 0;
                ev = ws_msg_frame(&c->m, &h);
            }
        } else {
            size_t n = c->rlen - off;
            if (n == 0)
                break;
            n = n > c->m.frame_left ? (size_t)c->m.frame_left : n;
            /* Bounded: a control payload by the header parser, a message by max_message. */
            int ctl = ws_opcode_is_control(c->m.frame_opcode);
            memcpy(ctl ? c->ctl + c->ctl_len : c->msg + c->msg_len, c->rbuf + off, n);
            *(ctl ? &c->ctl_len : &c->msg_len) += n;
            ev = ws_msg_payload(&c->m, c->rbuf + off, n);
            off += n;
        }
        if (ev < 0) {
            fprintf(stderr, "weft chat: bad frames from the server (closing with %d)\n", -ev);
            if (!c->closing)
                send_close(c, (uint16_t)-ev);
            c->done = c->status = 1;
        } else if (ev == WS_MSG_MESSAGE) {
            on_message(c);
        } else if (ev == WS_MSG_CONTROL) {
            on_control(c);
        }
    }
    c->rlen -= off;
    memmove(c->rbuf, c->rbuf + off, c->rlen);
}

static void read_socket(struct chat_client *c)
{
    ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
    if (r > 0) {
        c->rlen += (size_t)r;
        process_input(c);
    } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (!c->closing) /* after our close, the server may just hang up */
            fprintf(stderr, "weft chat: connection lost: %s\n",
                    r < 0 ? strerror(errno) : "closed without a close frame");
        c->status = !c->closing;
        c->done = 1;
    }
}

int chat_client_main(int argc, char **argv)
{
    struct chat_url u;
    const char *err = argc == 1 && argv[0][0] != '-' ? url_parse(argv[0], &u) : chat_usage;
    struct chat_client *c = err ? NULL : calloc(1, sizeof *c);
    if (c == NULL) {
        fprintf(stderr, err == chat_usage ? "%s" : "weft chat: %s\n", err ? err : "out of memory");
        return err ? 2 : 1;
    }
    ws_msg_init(&c->m, CHAT_MAX_MESSAGE);
    if ((c->fd = chat_connect(&u)) < 0) {
        c->done = c->status = 1;
    } else if ((err = chat_handshake(c, &u)) != NULL) {
        fprintf(stderr, "weft chat: handshake with %s port %s: %s\n", u.host, u.port, err);
        c->done = c->status = 1;
    }
    process_input(c); /* frames that came with the 101 */
    while (!c->done) {
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                              {.fd = STDIN_FILENO, .events = POLLIN}};
        long timeout = c->closing ? c->close_at - now_ms() : -1;
        if (c->closing && timeout <= 0)
            break; /* the server did not answer our close in time: leave anyway */
        int r = poll(p, c->closing ? 1 : 2, (int)timeout);
        if (r < 0 && errno != EINTR)
            c->done = c->status = 1;
        if (r > 0 && p[0].revents)
            read_socket(c);
        if (r > 0 && !c->done && !c->closing && p[1].revents)
            read_stdin(c);
    }
    int status = c->status;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return status;
}
