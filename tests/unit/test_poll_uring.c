/* Unit tests for the io_uring poller's pure parts: the user_data encoding (fd, generation, kind),
 * the event mask conversions and what a receive's completion means. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>

#include "core/poll_uring.h"
#include "core/poller.h"

static void test_user_data_round_trip(void **state)
{
    (void)state;
    const int fds[] = {0, 1, 17, 65535, 1 << 20, 0x7fffffff};
    const uint32_t gens[] = {0, 1, 0xabcde, 0xffffff};
    const enum uring_kind kinds[] = {URING_POLL,   URING_READ, URING_WRITE,
                                     URING_REMOVE, URING_RECV, URING_CANCEL};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        for (size_t g = 0; g < sizeof gens / sizeof gens[0]; g++)
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                uint64_t ud = uring_ud(fds[i], gens[g], kinds[k]);
                assert_int_equal(uring_ud_fd(ud), fds[i]);
                assert_int_equal(uring_ud_gen(ud), gens[g]);
                assert_int_equal(uring_ud_kind(ud), kinds[k]);
            }
}

static void test_generation_wraps_to_24_bits(void **state)
{
    (void)state;
    /* A generation past 24 bits keeps its low bits and never spills into the fd. */
    uint64_t ud = uring_ud(5, 0x1000001u, URING_READ);
    assert_int_equal(uring_ud_fd(ud), 5);
    assert_int_equal(uring_ud_gen(ud), 1);
    assert_int_equal(uring_ud_kind(ud), URING_READ);
    /* Different generations of one fd differ. */
    assert_true(uring_ud(5, 1, URING_POLL) != uring_ud(5, 2, URING_POLL));
}

static void test_poll_mask(void **state)
{
    (void)state;
    assert_int_equal(uring_poll_mask(EV_IN), POLLIN | POLLRDHUP);
    assert_int_equal(uring_poll_mask(EV_OUT), POLLOUT);
    assert_int_equal(uring_poll_mask(EV_IN | EV_OUT | EV_EDGE), POLLIN | POLLRDHUP | POLLOUT);
    assert_int_equal(uring_poll_mask(0), 0);
}

static void test_poll_events(void **state)
{
    (void)state;
    assert_int_equal(uring_poll_events(POLLIN), EV_IN);
    assert_int_equal(uring_poll_events(POLLOUT), EV_OUT);
    assert_int_equal(uring_poll_events(POLLIN | POLLRDHUP), EV_IN | EV_HUP);
    assert_int_equal(uring_poll_events(POLLHUP), EV_HUP);
    assert_int_equal(uring_poll_events(POLLERR | POLLOUT), EV_ERR | EV_OUT);
    assert_int_equal(uring_poll_events(0), 0);
}

static void test_recv_completion(void **state)
{
    (void)state;
    const unsigned report = URING_RECV_REPORT, rearm = URING_RECV_REARM;
    /* Data: reported; re-armed only if the kernel ended the receive and it is wanted. */
    assert_int_equal(uring_recv_completion(URING_R_ON, 1, 100, 1), report);
    assert_int_equal(uring_recv_completion(URING_R_ON, 1, 100, 0), report | rearm);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 0, 100, 1), report);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 0, 100, 0), report);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 1, 100, 0), report | rearm);
    /* EOF and the socket's errors: reported, never re-armed. */
    assert_int_equal(uring_recv_completion(URING_R_ON, 1, 0, 0), report);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 1, 0, 0), report);
    assert_int_equal(uring_recv_completion(URING_R_ON, 1, -ECONNRESET, 0), report);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 0, -ECONNRESET, 0), report);
    /* No buffer left, or transient: re-armed unseen if wanted, else quietly over. */
    assert_int_equal(uring_recv_completion(URING_R_ON, 1, -ENOBUFS, 0), rearm);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 0, -ENOBUFS, 0), 0);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 1, -ENOBUFS, 0), rearm);
    assert_int_equal(uring_recv_completion(URING_R_ON, 1, -EAGAIN, 0), rearm);
    /* Our cancellation: over, or re-armed when wanted again meanwhile; one we did not ask for is
     * an error. */
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 0, -ECANCELED, 0), 0);
    assert_int_equal(uring_recv_completion(URING_R_CANCEL, 1, -ECANCELED, 0), rearm);
    assert_int_equal(uring_recv_completion(URING_R_ON, 1, -ECANCELED, 0), report);
}

static void test_accept_completion(void **state)
{
    (void)state;
    const unsigned report = URING_RECV_REPORT, rearm = URING_RECV_REARM;
    /* A connection (fd 0 is one too): reported; re-armed if the kernel ended the accept. */
    assert_int_equal(uring_accept_completion(URING_R_ON, 1, 7, 1), report);
    assert_int_equal(uring_accept_completion(URING_R_ON, 1, 0, 1), report);
    assert_int_equal(uring_accept_completion(URING_R_ON, 1, 7, 0), report | rearm);
    /* Errors that pass: reported (the owner frees a descriptor for EMFILE) and re-armed. */
    assert_int_equal(uring_accept_completion(URING_R_ON, 1, -EMFILE, 0), report | rearm);
    assert_int_equal(uring_accept_completion(URING_R_ON, 1, -ECONNABORTED, 0), report | rearm);
    /* The socket's own: reported, not re-armed (it would fail again at once, forever). */
    assert_int_equal(uring_accept_completion(URING_R_ON, 1, -EINVAL, 0), report);
    assert_int_equal(uring_accept_completion(URING_R_ON, 1, -EBADF, 0), report);
    /* Our cancellation: quietly over. */
    assert_int_equal(uring_accept_completion(URING_R_CANCEL, 0, -ECANCELED, 0), 0);
    assert_int_equal(uring_accept_completion(URING_R_ON, 0, 7, 0), report);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_data_round_trip),
        cmocka_unit_test(test_generation_wraps_to_24_bits),
        cmocka_unit_test(test_poll_mask),
        cmocka_unit_test(test_poll_events),
        cmocka_unit_test(test_recv_completion),
        cmocka_unit_test(test_accept_completion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
