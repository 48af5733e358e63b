/* floor_ws_server.c: the least work any server could do for bench/chat_vs_node.py's fan-out test,
 * run beside weft and Node as a floor to read their latency against.
 *
 *   floor_ws_server [--no-join-presence] [PORT]      (cc -O2 floor_ws_server.c -lcrypto)
 *
 * What it is: one thread, one level-triggered epoll loop, plain C, no weft code. It speaks as
 * much of weft's chat protocol as bench/chat_client.c needs, with the same bytes
 * bench/node_ws_server.js would send: the WebSocket handshake at GET /ws?room=R&name=N (the
 * accept key from libcrypto's SHA-1 and base64), {"type":"joined","room","name","members"} to
 * a joiner, {"type":"presence",...,"event":"join","members"} to the others (not with
 * --no-join-presence, as Node's option), and for each client {"type":"msg","text":"..."} one
 * {"type":"msg","room","from","text","ts"} to every member, sender included, ts = CLOCK_REALTIME
 * in µs when the message is handled. Pings get pongs, a close frame gets a close frame.
 * Prints `listening chat 127.0.0.1:PORT` when ready (PORT 0, the default, picks a free one).
 *
 * Broadcast is the floor: the frame is built once, then one send(MSG_DONTWAIT|MSG_NOSIGNAL) per
 * member in a tight loop over an array of fds. No output queue, no EPOLLOUT: a send that would
 * block drops that frame for that member (counted), a short write or an error closes the member
 * (counted). SIGTERM or SIGINT: prints the counts to stderr (`floor: ...`) and exits 0.
 *
 * What it is not: a chat server. No JSON parser (it finds "type":"msg" and "text":"..." by
 * string search, so it understands the bench client's spelling only), no URL decoding (names
 * are taken verbatim and must be 1-63 bytes of [A-Za-z0-9._-]), no "join" command, no leave
 * presence, no fragmented messages, no flow control, no limits but 64 KiB per message. It
 * gives up on slow members instead of queuing for them, so its figures are a lower bound on
 * what a correct server can do on the same machine, not a target for one. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG (64 * 1024)  /* largest client message (Node's and weft's default) */
#define MAX_REQ 8192         /* largest handshake request */
#define NAMELEN 64           /* names are 1..63 bytes */
#define NBUCKET 4096         /* room hash buckets */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct room {
    struct room *next; /* hash chain */
    char name[NAMELEN];
    int *fds;          /* the members' sockets: what a broadcast loops over */
    int n, cap;
};

struct conn {
    int fd;
    int open;   /* handshake done, in a room */
    int doomed; /* to be closed at the end of this loop turn */
    int slot;   /* index in room->fds */
    struct room *room;
    char name[NAMELEN];
    char *carry; /* an incomplete request or frame, kept for the next read */
    uint32_t carry_len;
};

static struct conn **g_conns; /* by fd */
static int g_nconns;
static struct room *g_rooms[NBUCKET];
static int g_join_presence = 1, g_guest = 1;
static int *g_doomed, g_ndoomed, g_doomed_cap;
static volatile sig_atomic_t g_stop;
static unsigned long long g_msgs, g_sent, g_dropped, g_cut;
static char g_in[MAX_MSG + 16 + 65536 + 1]; /* carry + one read + NUL */
static char g_json[MAX_MSG + 512];
static char g_frame[MAX_MSG + 512 + 10];

static void on_signal(int sig) { (void)sig; g_stop = 1; }

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct room **bucket(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &g_rooms[h % NBUCKET];
}

static void doom(struct conn *c)
{
    if (c->doomed)
        return;
    c->doomed = 1;
    if (g_ndoomed == g_doomed_cap) {
        g_doomed_cap = g_doomed_cap ? 2 * g_doomed_cap : 64;
        g_doomed = realloc(g_doomed, (size_t)g_doomed_cap * sizeof *g_doomed);
    }
    g_doomed[g_ndoomed++] = c->fd;
}

/* Closes the doomed connections; only between events, so no handler holds a pointer to one. */
static void reap(void)
{
    for (int i = 0; i < g_ndoomed; i++) {
        struct conn *c = g_conns[g_doomed[i]];
        struct room *r = c->room;
        if (r) {
            int last = r->fds[--r->n];
            r->fds[c->slot] = last;
            g_conns[last]->slot = c->slot;
            if (r->n == 0) { /* the last one out frees the room */
                struct room **p = bucket(r->name);
                while (*p != r)
                    p = &(*p)->next;
                *p = r->next;
                free(r->fds);
                free(r);
            }
        }
        g_conns[c->fd] = NULL;
        close(c->fd);
        free(c->carry);
        free(c);
    }
    g_ndoomed = 0;
}

/* An unmasked server frame around p[0..n) in g_frame; returns its length. */
static size_t frame(int opcode, const char *p, size_t n)
{
    size_t h = 0;
    g_frame[h++] = (char)(0x80 | opcode);
    if (n < 126) {
        g_frame[h++] = (char)n;
    } else if (n < 65536) {
        g_frame[h++] = 126;
        g_frame[h++] = (char)(n >> 8);
        g_frame[h++] = (char)n;
    } else {
        g_frame[h++] = 127;
        for (int i = 7; i >= 0; i--)
            g_frame[h++] = (char)((uint64_t)n >> (8 * i));
    }
    memcpy(g_frame + h, p, n);
    return h + n;
}

/* The one send a member gets; counts and dooms as the header says. */
static void send1(struct conn *c, const char *p, size_t n)
{
    ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w == (ssize_t)n) {
        g_sent++;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
        g_dropped++;
    } else {
        g_cut++;
        doom(c);
    }
}

static void send_text(struct conn *c, const char *json, size_t n)
{
    send1(c, g_frame, frame(1, json, n));
}

/* The floor proper: one frame, one send() per member. */
static void broadcast(struct room *r, const char *json, size_t n, int except_fd)
{
    size_t len = frame(1, json, n);
    int *fds = r->fds, nm = r->n;
    for (int i = 0; i < nm; i++) {
        int fd = fds[i];
        if (fd == except_fd)
            continue;
        ssize_t w = send(fd, g_frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w == (ssize_t)len) {
            g_sent++;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            g_dropped++;
        } else {
            g_cut++;
            doom(g_conns[fd]);
        }
    }
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= NAMELEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

static struct room *room_get(const char *name)
{
    struct room **b = bucket(name);
    for (struct room *r = *b; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    struct room *r = calloc(1, sizeof *r);
    strcpy(r->name, name);
    r->next = *b;
    *b = r;
    return r;
}

/* The value of query parameter key= in q[0..n) into out; 0 if absent, -1 if not a good name. */
static int param(const char *q, size_t n, const char *key, char *out)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl <= n; i++) {
        if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, key, kl) == 0) {
            const char *v = q + i + kl;
            size_t vl = strcspn(v, "& ");
            if (vl > (size_t)(q + n - v))
                vl = (size_t)(q + n - v);
            if (!name_ok(v, vl))
                return -1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
    }
    return 0;
}

static void refuse(struct conn *c, const char *status)
{
    char resp[128];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    send(c->fd, resp, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    doom(c);
}

/* A complete request in p (NUL-terminated): answer 101, join, tell the room. */
static void handshake(struct conn *c, char *p)
{
    char room[NAMELEN] = "lobby", key_in[128], accept[64];
    if (strncmp(p, "GET /ws", 7) != 0 || (p[7] != '?' && p[7] != ' ')) {
        refuse(c, "404 Not Found");
        return;
    }
    snprintf(c->name, NAMELEN, "guest-%d", g_guest);
    const char *q = p + 8;
    size_t ql = p[7] == '?' ? strcspn(q, " ") : 0;
    int pr = param(q, ql, "room=", room), pn = param(q, ql, "name=", c->name);
    char *k = strcasestr(p, "\r\nsec-websocket-key:");
    size_t kl = 0;
    if (k) {
        k += 20;
        k += strspn(k, " \t");
        kl = strcspn(k, " \t\r");
    }
    if (pr < 0 || pn < 0 || !k || kl == 0 || kl > 64) {
        refuse(c, "400 Bad Request");
        return;
    }
    if (pn == 0)
        g_guest++;
    memcpy(key_in, k, kl);
    memcpy(key_in + kl, WS_GUID, sizeof WS_GUID);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)key_in, kl + sizeof WS_GUID - 1, sha);
    EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);

    struct room *r = room_get(room);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->fds = realloc(r->fds, (size_t)r->cap * sizeof *r->fds);
    }
    c->slot = r->n;
    r->fds[r->n++] = c->fd;
    c->room = r;
    c->open = 1;

    /* the 101 and the "joined" frame in one send */
    char out[512];
    int hl = snprintf(out, sizeof out,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    int jl = snprintf(g_json, sizeof g_json,
                      "{\"type\":\"joined\",\"room\":\"%s\",\"name\":\"%s\",\"members\":%d}",
                      r->name, c->name, r->n);
    size_t fl = frame(1, g_json, (size_t)jl);
    memcpy(out + hl, g_frame, fl);
    send1(c, out, (size_t)hl + fl);
    if (g_join_presence && r->n > 1) {
        jl = snprintf(g_json, sizeof g_json,
                      "{\"type\":\"presence\",\"room\":\"%s\",\"name\":\"%s\",\"event\":\"join\","
                      "\"members\":%d}", r->name, c->name, r->n);
        broadcast(r, g_json, (size_t)jl, c->fd);
    }
}

/* A text message: {"type":"msg","text":"..."} in the client's spelling is broadcast. */
static void on_text(struct conn *c, const char *p, size_t n)
{
    uint64_t ts = wall_us();
    const char *t = memmem(p, n, "\"text\":\"", 8);
    if (!memmem(p, n, "\"type\":\"msg\"", 12) || !t) {
        static const char e[] = "{\"type\":\"error\",\"error\":\"floor server: only "
                                "{\\\"type\\\":\\\"msg\\\",\\\"text\\\":...} is understood\"}";
        send_text(c, e, sizeof e - 1);
        return;
    }
    const char *s = t + 8, *end = p + n, *e = s; /* the string literal's body, escapes kept */
    while (e < end && *e != '"')
        e += *e == '\\' ? 2 : 1;
    if (e >= end) {
        send_text(c, "{\"type\":\"error\",\"error\":\"invalid JSON message\"}", 47);
        return;
    }
    int len = snprintf(g_json, sizeof g_json,
                       "{\"type\":\"msg\",\"room\":\"%s\",\"from\":\"%s\",\"text\":\"%.*s\","
                       "\"ts\":%llu}", c->room->name, c->name, (int)(e - s), s,
                       (unsigned long long)ts);
    g_msgs++;
    broadcast(c->room, g_json, (size_t)len, -1);
}

/* Complete client frames in p[0..n) (masked, RFC 6455 5.3); returns the bytes used. */
static size_t frames(struct conn *c, char *p, size_t n)
{
    size_t off = 0;
    while (!c->doomed && n - off >= 2) {
        uint8_t b0 = (uint8_t)p[off], b1 = (uint8_t)p[off + 1];
        uint64_t len = b1 & 0x7f;
        size_t h = 2;
        if (!(b1 & 0x80) || (b0 & 0x70) || !(b0 & 0x80) || len == 127) {
            doom(c); /* unmasked, extensions, fragments or > 64 KiB: not from the bench client */
            break;
        }
        if (len == 126) {
            if (n - off < 4)
                break;
            len = ((uint64_t)(uint8_t)p[off + 2] << 8) | (uint8_t)p[off + 3];
            h = 4;
        }
        if (n - off < h + 4 + len)
            break;
        char *mask = p + off + h, *pl = mask + 4;
        for (uint64_t i = 0; i < len; i++)
            pl[i] ^= mask[i & 3];
        off += h + 4 + (size_t)len;
        switch (b0 & 0x0f) {
        case 1:
            on_text(c, pl, (size_t)len);
            break;
        case 8: /* close: echo the code, then close */
            send1(c, g_frame, frame(8, pl, len >= 2 ? 2 : 0));
            doom(c);
            break;
        case 9:
            send1(c, g_frame, frame(10, pl, (size_t)len));
            break;
        case 10:
            break;
        default:
            doom(c);
        }
    }
    return off;
}

static void on_readable(struct conn *c)
{
    size_t have = c->carry_len;
    memcpy(g_in, c->carry, have);
    ssize_t r = read(c->fd, g_in + have, 65536);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        doom(c);
        return;
    }
    size_t n = have + (size_t)r, off = 0;
    if (!c->open) {
        g_in[n] = '\0';
        char *e = memmem(g_in, n, "\r\n\r\n", 4);
        if (!e) {
            if (n > MAX_REQ)
                doom(c);
            goto keep;
        }
        off = (size_t)(e - g_in) + 4;
        g_in[off - 1] = '\0';
        handshake(c, g_in);
    }
    if (c->open && !c->doomed)
        off += frames(c, g_in + off, n - off);
keep:
    c->carry_len = (uint32_t)(n - off);
    if (c->carry_len && !c->doomed) {
        if (c->carry_len > MAX_MSG + 16 + (c->open ? 0 : MAX_REQ)) {
            doom(c);
            return;
        }
        c->carry = realloc(c->carry, c->carry_len);
        memcpy(c->carry, g_in + off, c->carry_len);
    }
}

static void on_accept(int lfd, int ep)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                perror("floor: accept4");
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fd >= g_nconns) {
            int nc = g_nconns ? g_nconns : 1024;
            while (nc <= fd)
                nc *= 2;
            g_conns = realloc(g_conns, (size_t)nc * sizeof *g_conns);
            memset(g_conns + g_nconns, 0, (size_t)(nc - g_nconns) * sizeof *g_conns);
            g_nconns = nc;
        }
        struct conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        g_conns[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-join-presence") == 0)
            g_join_presence = 0;
        else
            port = atoi(argv[i]);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: epoll_wait returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
        perror("floor: listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("listening chat 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    struct epoll_event evs[256];
    while (!g_stop) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n && !g_stop; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd)
                on_accept(lfd, ep);
            else if (g_conns[fd] && !g_conns[fd]->doomed)
                on_readable(g_conns[fd]);
        }
        reap();
    }
    fprintf(stderr, "floor: %llu messages broadcast, %llu frames sent, %llu dropped (would "
                    "block), %llu cut (short write or error)\n", g_msgs, g_sent, g_dropped, g_cut);
    return 0;
}
