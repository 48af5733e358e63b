/* tcp_pair: a connected TCP pair over 127.0.0.1 for the tests that need real TCP (segments, FIN)
 * rather than a socketpair: the client end blocking, the server end non-blocking. */
#ifndef WEFT_TESTS_TCP_PAIR_H
#define WEFT_TESTS_TCP_PAIR_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int tcp_pair(int *client, int *server)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
        return -1;
    *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(*client, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    *server = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    close(lfd);
    return *server < 0 ? -1 : 0;
}

#endif
