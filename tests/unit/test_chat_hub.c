/* Unit tests for the chat hub (src/chat/hub.c): member counts per room, the room and member
 * limits, moves that must not lose a member, a table of thousands of rooms growing and
 * shrinking, and guest numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "chat/hub.h"

static void test_join_leave_counts(void **state)
{
    (void)state;
    struct chat_hub h;
    hub_init(&h, 10, 10);
    int m = 0, rooms, clients;
    uint64_t e = 0;
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_OK);
    assert_int_equal(m, 1);
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_OK);
    assert_int_equal(m, 2);
    assert_int_equal(hub_join(&h, "b", &m, &e), HUB_OK);
    assert_int_equal(m, 1);
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(rooms, 2);
    assert_int_equal(clients, 3);
    assert_int_equal(hub_leave(&h, "a", &e), 1);
    assert_int_equal(hub_leave(&h, "b", &e), 0);
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(rooms, 1); /* an empty room is dropped */
    assert_int_equal(clients, 1);
    assert_int_equal(hub_leave(&h, "a", &e), 0);
    assert_int_equal(hub_leave(&h, "nowhere", &e), 0); /* unknown rooms are ignored */
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(rooms, 0);
    assert_int_equal(clients, 0);
    hub_fini(&h);
}

static void test_limits(void **state)
{
    (void)state;
    struct chat_hub h;
    hub_init(&h, 2, 2);
    int m = 0;
    uint64_t e = 0;
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_OK);
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_OK);
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_ROOM_FULL);
    assert_int_equal(hub_join(&h, "b", &m, &e), HUB_OK);
    assert_int_equal(hub_join(&h, "c", &m, &e), HUB_TOO_MANY_ROOMS);
    assert_int_equal(hub_leave(&h, "b", &e), 0); /* frees a room */
    assert_int_equal(hub_join(&h, "c", &m, &e), HUB_OK);
    hub_fini(&h);
}

static void test_move(void **state)
{
    (void)state;
    struct chat_hub h;
    hub_init(&h, 2, 2);
    int m = 0, left = -1, to = -1, rooms, clients;
    uint64_t e = 0;
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_OK);
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_OK);
    assert_int_equal(hub_move(&h, "a", "b", &left, &to, &e), HUB_OK);
    assert_int_equal(left, 1);
    assert_int_equal(to, 1);
    /* b has one place left: a second move fills it, a third is refused and stays in a. */
    assert_int_equal(hub_join(&h, "a", &m, &e), HUB_OK);
    assert_int_equal(hub_move(&h, "a", "b", &left, &to, &e), HUB_OK);
    assert_int_equal(to, 2);
    assert_int_equal(hub_move(&h, "a", "b", &left, &to, &e), HUB_ROOM_FULL);
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(clients, 3);
    /* With the room limit reached, moving to a new room is refused, even for a last member. */
    assert_int_equal(hub_move(&h, "a", "c", &left, &to, &e), HUB_TOO_MANY_ROOMS);
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(rooms, 2);
    assert_int_equal(clients, 3);
    hub_fini(&h);
}

static void test_epochs_increase(void **state)
{
    (void)state;
    struct chat_hub h;
    hub_init(&h, 4, 4);
    int m = 0, left = 0, to = 0;
    uint64_t e1 = 0, e2 = 0, e3 = 0, e4 = 0;
    assert_int_equal(hub_join(&h, "a", &m, &e1), HUB_OK);
    assert_int_equal(hub_join(&h, "a", &m, &e2), HUB_OK);
    assert_int_equal(hub_move(&h, "a", "b", &left, &to, &e3), HUB_OK);
    hub_leave(&h, "b", &e4);
    assert_true(e1 < e2 && e2 < e3 && e3 < e4);
    assert_int_equal(hub_epoch(&h), e4);
    hub_fini(&h);
}

/* Enough rooms to grow the table several times and shrink it back: every room keeps its own
 * count through the rehashes. */
static void test_many_rooms(void **state)
{
    (void)state;
    struct chat_hub h;
    enum { N = 3000 };
    hub_init(&h, N, N);
    char name[32];
    int m = 0, left = -1, rooms, clients;
    uint64_t e = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "room-%d", i);
        assert_int_equal(hub_join(&h, name, &m, &e), HUB_OK);
        assert_int_equal(m, 1);
    }
    assert_true(h.nbuckets >= N / 2);
    assert_int_equal(hub_join(&h, "one too many", &m, &e), HUB_TOO_MANY_ROOMS);
    /* A second member in every third room. */
    for (int i = 0; i < N; i += 3) {
        snprintf(name, sizeof name, "room-%d", i);
        assert_int_equal(hub_join(&h, name, &m, &e), HUB_OK);
        assert_int_equal(m, 2);
    }
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(rooms, N);
    assert_int_equal(clients, N + N / 3);
    /* Everyone leaves once: the rooms with two members stay, the others close. */
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "room-%d", i);
        assert_int_equal(hub_leave(&h, name, &e), i % 3 == 0 ? 1 : 0);
    }
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(rooms, N / 3);
    assert_int_equal(clients, N / 3);
    assert_true(h.nbuckets <= (unsigned)N); /* the table shrank with the rooms */
    for (int i = 0; i < N; i += 3) {
        snprintf(name, sizeof name, "room-%d", i);
        assert_int_equal(hub_move(&h, name, "together", &left, &m, &e), HUB_OK);
        assert_int_equal(left, 0);
    }
    assert_int_equal(m, N / 3);
    hub_counts(&h, &rooms, &clients);
    assert_int_equal(rooms, 1);
    assert_int_equal(clients, N / 3);
    assert_true(h.nbuckets <= 16);
    hub_fini(&h);
}

static void test_guest_numbers_differ(void **state)
{
    (void)state;
    struct chat_hub h;
    hub_init(&h, 1, 1);
    uint64_t a = hub_guest_number(&h), b = hub_guest_number(&h);
    assert_true(a != b);
    assert_true(h.instance != 0 || hub_guest_number(&h) != 0);
    hub_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_leave_counts),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_epochs_increase),
        cmocka_unit_test(test_many_rooms),
        cmocka_unit_test(test_guest_numbers_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
