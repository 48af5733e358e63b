/* tcp_pair: real TCP over 127.0.0.1 for the tests that need it (segments, FIN, resets) rather
 * than a socketpair: a listener on an ephemeral port, a blocking client dialled to it, a connected
 * pair (the client end blocking, the server end non-blocking), and reads that give up after a
 * while instead of hanging a test. */
#ifndef WEFT_TESTS_TCP_PAIR_H
#define WEFT_TESTS_TCP_PAIR_H

#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A non-blocking listener on 127.0.0.1:0; *a gets its address. The fd, or -1. */
static int listener(struct sockaddr_in *a)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    socklen_t al = sizeof *a;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)a, sizeof *a) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)a, &al) < 0)
        return -1;
    return lfd;
}

/* A blocking client connected to a. The fd, or -1. */
static int dial(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof *a) < 0)
        return -1;
    return fd;
}

static int tcp_pair(int *client, int *server)
{
    struct sockaddr_in a;
    int lfd = listener(&a);
    if (lfd < 0 || (*client = dial(&a)) < 0)
        return -1;
    *server = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    close(lfd);
    return *server < 0 ? -1 : 0;
}

/* A blocking read that fails (-1, EAGAIN) after 2 s without bytes. */
static ssize_t read_within_2s(int fd, void *buf, size_t len)
{
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return read(fd, buf, len);
}

#endif
