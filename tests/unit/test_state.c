/*
 * Unit tests of the cluster state (src/core/state.h): nodes, the two
 * indexes, the permutation, forgotten nodes, key storage and the memory
 * count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "rng.h"
#include "state.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static sb_peer *add(sb_state *st, const char *addr, uint64_t generation)
{
    sb_peer *n = sb_state_add(st, addr, strlen(addr), generation);
    assert_non_null(n);
    return n;
}

static sb_peer *find_addr(const sb_state *st, const char *addr)
{
    return sb_state_find_addr(st, addr, strlen(addr));
}

static void node_addr(char *out, size_t cap, unsigned i)
{
    snprintf(out, cap, "10.%u.%u.%u:7946", (i >> 16) & 255, (i >> 8) & 255,
             i & 255);
}

static bool put(sb_peer *n, const char *key, const char *value,
                uint64_t version, bool deleted, uint64_t now)
{
    bool was_live = true;
    assert_true(sb_peer_put_key(n, (const uint8_t *)key, strlen(key),
                                (const uint8_t *)value,
                                value ? strlen(value) : 0, version, deleted,
                                now, &was_live));
    return was_live;
}

static long find_key(const sb_peer *n, const char *key)
{
    return sb_peer_find_key(n, (const uint8_t *)key, strlen(key));
}

/* The key at index i has this name, value and version. */
static void assert_key(const sb_peer *n, uint32_t i, const char *key,
                       const char *value, uint64_t version)
{
    assert_true(i < n->nkeys);
    const sb_key *k = n->keys[i];
    assert_int_equal(k->key_len, strlen(key));
    assert_memory_equal(k->data, key, strlen(key));
    assert_int_equal(k->value_len, strlen(value));
    if (*value)
        assert_memory_equal(sb_key_value(k), value, strlen(value));
    assert_int_equal(k->version, version);
}

/* Every node is found by its id and its address, at its own index, and
 * perm is the identity. */
static void assert_indexed(const sb_state *st)
{
    assert_true(st->count <= st->cap);
    /* at most 3/4 full, with room for one more */
    assert_true(3 * (uint64_t)st->slots >= 4 * ((uint64_t)st->count + 1));
    for (uint32_t i = 0; i < st->count; i++) {
        sb_peer *n = st->peers[i];
        assert_int_equal(n->index, i);
        assert_ptr_equal(sb_state_find_id(st, n->id), n);
        assert_ptr_equal(sb_state_find_addr(st, n->addr, n->addr_len), n);
        assert_int_equal(st->perm[i], i);
    }
}

/* ---- nodes ------------------------------------------------------------- */

static void test_empty_state(void **state)
{
    (void)state;
    sb_state st;
    memset(&st, 0xa5, sizeof(st));
    sb_state_init(&st);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.cap, 0);
    assert_int_equal(st.slots, 0);
    assert_int_equal(st.nforgotten, 0);
    assert_null(st.peers);
    assert_null(sb_state_find_id(&st, 0));
    assert_null(sb_state_find_id(&st, 12345));
    assert_null(find_addr(&st, "1.2.3.4:5"));
    assert_null(sb_state_find_addr(&st, "", 0));
    assert_false(sb_state_is_forgotten(&st, 1, 0));
    assert_int_equal(sb_state_memory(&st), 0);
    sb_state_expire_forgotten(&st, 100);
    sb_state_free(&st);
    assert_int_equal(st.count, 0);
    assert_null(st.peers);
    assert_null(st.by_id);
    assert_int_equal(sb_state_memory(&st), 0);
}

static void test_add_sets_fields(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    const char *a = "192.168.1.20:7946";
    sb_peer *n = add(&st, a, 42);
    assert_int_equal(st.count, 1);
    assert_int_equal(st.cap, 16);
    assert_int_equal(st.slots, 11); /* 2/3 full with two: 3 + 8 */
    assert_ptr_equal(st.peers[0], n);
    assert_int_equal(n->index, 0);
    assert_int_equal(n->addr_len, strlen(a));
    assert_string_equal(n->addr, a); /* NUL-terminated */
    assert_int_equal(n->generation, 42);
    assert_int_equal(n->id, sb_peer_id(a, strlen(a), 42));
    assert_int_equal(n->heartbeat, 0);
    assert_int_equal(n->max_version, 0);
    assert_int_equal(n->gc_version, 0);
    assert_int_equal(sb_peer_gc_due(n), UINT64_MAX);
    assert_int_equal(n->nkeys, 0);
    assert_int_equal(sb_peer_tombstones(n), 0);
    assert_int_equal(n->state_bytes, 0);
    assert_null(n->keys);
    assert_false(n->self);
    assert_false(n->leaving);
    assert_int_equal(st.due[0], UINT64_MAX);
    assert_int_equal(st.perm[0], 0);

    /* the address is copied: a later change of the caller's text is not
     * seen */
    char buf[32];
    strcpy(buf, "10.0.0.1:1");
    sb_peer *m = sb_state_add(&st, buf, strlen(buf), 1);
    assert_non_null(m);
    buf[0] = '9';
    assert_string_equal(m->addr, "10.0.0.1:1");
    assert_ptr_equal(find_addr(&st, "10.0.0.1:1"), m);
    assert_null(find_addr(&st, buf));
    assert_int_equal(m->index, 1);
    assert_int_equal(st.perm[1], 1);
    assert_int_equal(st.due[1], UINT64_MAX);

    /* its first key brings the keys' head: no tombstone, none due, none
     * of the protocol's */
    put(n, "k", "v", 1, false, 0);
    assert_non_null(n->keys);
    assert_int_equal(sb_peer_gc_due(n), UINT64_MAX);
    assert_int_equal(sb_peer_tombstones(n), 0);
    assert_int_equal(sb_peer_reserved(n), 0);
    sb_state_free(&st);
}

static void test_find_by_addr_and_id(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    static const char *const addrs[] = {
        "127.0.0.1:7946", "127.0.0.1:7947", "[::1]:7946", "10.0.0.1:1",
        "10.0.0.10:1",
    };
    sb_peer *nodes[ARRAY_LEN(addrs)];
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++)
        nodes[i] = add(&st, addrs[i], i + 1);
    assert_int_equal(st.count, ARRAY_LEN(addrs));
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
        assert_ptr_equal(find_addr(&st, addrs[i]), nodes[i]);
        assert_ptr_equal(sb_state_find_id(&st, nodes[i]->id), nodes[i]);
        assert_ptr_equal(
            sb_state_find_id(&st, sb_peer_id(addrs[i], strlen(addrs[i]),
                                             i + 1)),
            nodes[i]);
        /* the same address of another generation is another id */
        assert_null(sb_state_find_id(
            &st, sb_peer_id(addrs[i], strlen(addrs[i]), i + 100)));
    }
    /* the length counts: a prefix or a longer text is another address */
    assert_null(sb_state_find_addr(&st, "10.0.0.10:1", 9));
    assert_ptr_equal(sb_state_find_addr(&st, "10.0.0.1:1xyz", 10), nodes[3]);
    assert_null(find_addr(&st, "10.0.0.1:12"));
    assert_null(find_addr(&st, "127.0.0.1:7948"));
    assert_null(sb_state_find_addr(&st, "", 0));
    assert_null(sb_state_find_id(&st, 0));
    assert_indexed(&st);
    sb_state_free(&st);
}

static void test_many_nodes_grow_and_stay_indexed(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    enum { N = 3000 };
    char a[32];
    uint32_t last_slots = 0;
    for (unsigned i = 0; i < N; i++) {
        node_addr(a, sizeof(a), i);
        sb_peer *n = add(&st, a, 7);
        assert_int_equal(n->index, i);
        assert_int_equal(st.count, i + 1);
        assert_true(st.slots >= last_slots);
        last_slots = st.slots;
        if ((i & (i + 1)) == 0 || i % 997 == 0)
            assert_indexed(&st);
    }
    assert_indexed(&st);
    /* the indexes at most 3/4 full and, rebuilt 2/3 full, at least
     * 2/3 (and a few); the arrays grown a quarter at a time */
    assert_true(3 * (uint64_t)st.slots >= 4 * ((uint64_t)N + 1));
    assert_true(2 * (uint64_t)st.slots <= 3 * ((uint64_t)N + 1) + 16);
    assert_true(st.cap >= N && st.cap <= N + N / 4 + 16);
    for (unsigned i = 0; i < N; i++) {
        node_addr(a, sizeof(a), i);
        sb_peer *n = find_addr(&st, a);
        assert_non_null(n);
        assert_string_equal(n->addr, a);
        assert_int_equal(n->index, i);
    }
    node_addr(a, sizeof(a), N);
    assert_null(find_addr(&st, a));
    sb_state_free(&st);
}

static void test_remove_moves_last_node(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    char a[32];
    sb_peer *nodes[10];
    for (unsigned i = 0; i < 10; i++) {
        node_addr(a, sizeof(a), i);
        nodes[i] = add(&st, a, 1);
        st.due[i] = 1000 + i;
    }
    /* the engine shuffles perm; remove leaves a permutation again */
    for (unsigned i = 0; i < 10; i++)
        st.perm[i] = 9 - i;
    uint64_t gone = nodes[3]->id;
    sb_state_remove(&st, nodes[3]);
    assert_int_equal(st.count, 9);
    assert_ptr_equal(st.peers[3], nodes[9]);
    assert_int_equal(nodes[9]->index, 3);
    assert_int_equal(st.due[3], 1009);
    for (unsigned i = 0; i < 9; i++)
        if (i != 3)
            assert_int_equal(st.due[i], 1000 + i);
    assert_null(sb_state_find_id(&st, gone));
    node_addr(a, sizeof(a), 3);
    assert_null(find_addr(&st, a));
    node_addr(a, sizeof(a), 9);
    assert_ptr_equal(find_addr(&st, a), nodes[9]);
    assert_indexed(&st);

    /* removing the last node moves nothing */
    sb_state_remove(&st, nodes[8]);
    assert_int_equal(st.count, 8);
    assert_ptr_equal(st.peers[7], nodes[7]);
    assert_ptr_equal(st.peers[3], nodes[9]);
    assert_int_equal(st.due[7], 1007);
    assert_indexed(&st);
    sb_state_free(&st);
}

static void test_remove_all_then_add(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    char a[32];
    for (unsigned i = 0; i < 100; i++) {
        node_addr(a, sizeof(a), i);
        add(&st, a, 1);
    }
    /* from the front, the middle and the end in turn */
    for (unsigned k = 0; st.count; k++) {
        uint32_t i = k % 3 == 0 ? 0 : k % 3 == 1 ? st.count / 2
                                                  : st.count - 1;
        sb_peer *n = st.peers[i];
        char addr[32];
        strcpy(addr, n->addr);
        uint64_t id = n->id;
        uint32_t before = st.count;
        sb_state_remove(&st, n);
        assert_int_equal(st.count, before - 1);
        assert_null(find_addr(&st, addr));
        assert_null(sb_state_find_id(&st, id));
        assert_indexed(&st);
    }
    for (unsigned i = 0; i < 100; i++) {
        node_addr(a, sizeof(a), i);
        assert_null(find_addr(&st, a));
    }
    sb_peer *n = add(&st, "1.1.1.1:1", 3);
    assert_int_equal(n->index, 0);
    assert_int_equal(st.count, 1);
    assert_ptr_equal(find_addr(&st, "1.1.1.1:1"), n);
    assert_indexed(&st);
    sb_state_free(&st);
}

static void test_same_address_two_generations(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    const char *a = "10.1.1.1:7946";
    sb_peer *old = add(&st, a, 1);
    sb_peer *neu = add(&st, a, 2);
    assert_int_not_equal(old->id, neu->id);
    assert_ptr_equal(sb_state_find_id(&st, old->id), old);
    assert_ptr_equal(sb_state_find_id(&st, neu->id), neu);
    sb_peer *f = find_addr(&st, a);
    assert_true(f == old || f == neu);
    uint64_t old_id = old->id;
    sb_state_remove(&st, old);
    assert_ptr_equal(find_addr(&st, a), neu);
    assert_null(sb_state_find_id(&st, old_id));
    assert_int_equal(neu->index, 0);
    assert_indexed(&st);
    sb_state_free(&st);
}

/* ---- forgotten nodes ---------------------------------------------------- */

static void test_forget_and_expire(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    assert_true(sb_state_forget(&st, 111, 50, 1000, 0, 0));
    assert_true(sb_state_forget(&st, 222, 0, 2000, 0, 0));
    assert_int_equal(st.nforgotten, 2);
    /* stale: at or below the remembered heartbeat */
    assert_true(sb_state_is_forgotten(&st, 111, 0));
    assert_true(sb_state_is_forgotten(&st, 111, 49));
    assert_true(sb_state_is_forgotten(&st, 111, 50));
    assert_false(sb_state_is_forgotten(&st, 111, 51));
    assert_true(sb_state_is_forgotten(&st, 222, 0));
    assert_false(sb_state_is_forgotten(&st, 222, 1));
    assert_false(sb_state_is_forgotten(&st, 333, 0));

    /* a record lives while until > now */
    sb_state_expire_forgotten(&st, 999);
    assert_int_equal(st.nforgotten, 2);
    sb_state_expire_forgotten(&st, 1000);
    assert_int_equal(st.nforgotten, 1);
    assert_false(sb_state_is_forgotten(&st, 111, 0));
    assert_true(sb_state_is_forgotten(&st, 222, 0));
    sb_state_expire_forgotten(&st, 1999);
    assert_int_equal(st.nforgotten, 1);
    sb_state_expire_forgotten(&st, UINT64_MAX);
    assert_int_equal(st.nforgotten, 0);
    assert_false(sb_state_is_forgotten(&st, 222, 0));
    sb_state_free(&st);
}

static void test_forget_many_keeps_order_on_expiry(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    enum { N = 100 };
    for (uint64_t i = 0; i < N; i++)
        assert_true(
            sb_state_forget(&st, 1000 + i, i, i % 2 ? 10 : 20, 0, 0));
    assert_int_equal(st.nforgotten, N);
    assert_int_equal(st.forgotten_cap, 128);
    for (uint64_t i = 0; i < N; i++) {
        assert_true(sb_state_is_forgotten(&st, 1000 + i, i));
        assert_false(sb_state_is_forgotten(&st, 1000 + i, i + 1));
    }
    sb_state_expire_forgotten(&st, 10); /* the odd ones go */
    assert_int_equal(st.nforgotten, N / 2);
    for (uint32_t j = 0; j < st.nforgotten; j++) {
        assert_int_equal(st.forgotten[j].id, 1000 + 2 * j);
        assert_int_equal(st.forgotten[j].heartbeat, 2 * j);
        assert_int_equal(st.forgotten[j].until, 20);
    }
    for (uint64_t i = 0; i < N; i++)
        assert_int_equal(sb_state_is_forgotten(&st, 1000 + i, 0), i % 2 == 0);
    sb_state_free(&st);
}

/* Ids forgotten in any order are kept in id order (looked up by
 * halving); an id forgotten again (it came back with a larger heartbeat,
 * then died again) keeps one entry, at the larger heartbeat and time:
 * before, the first entry answered, and stale gossip of the second life
 * passed it. */
static void test_forget_in_any_order(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    enum { N = 1000 };
    uint64_t x = 12345;
    for (uint32_t i = 0; i < N; i++) {
        uint64_t id = (sb_splitmix64(&x) >> 16) | 1; /* odd ids */
        assert_true(sb_state_forget(&st, id, 7, 100, 0, 0));
    }
    for (uint32_t j = 1; j < st.nforgotten; j++)
        assert_true(st.forgotten[j - 1].id < st.forgotten[j].id);
    x = 12345;
    for (uint32_t i = 0; i < N; i++) {
        uint64_t id = (sb_splitmix64(&x) >> 16) | 1;
        assert_true(sb_state_is_forgotten(&st, id, 7));
        assert_false(sb_state_is_forgotten(&st, id, 8));
        assert_false(sb_state_is_forgotten(&st, id + 1, 0)); /* even */
    }
    uint32_t n = st.nforgotten;
    uint64_t id = st.forgotten[n / 2].id;
    assert_true(sb_state_forget(&st, id, 9, 300, 0, 0));  /* its second life */
    assert_true(sb_state_forget(&st, id, 3, 200, 0, 0));  /* older news */
    assert_int_equal(st.nforgotten, n);
    assert_true(sb_state_is_forgotten(&st, id, 9));
    assert_false(sb_state_is_forgotten(&st, id, 10));
    sb_state_expire_forgotten(&st, 100);
    assert_int_equal(st.nforgotten, 1);
    assert_true(sb_state_is_forgotten(&st, id, 8));
    sb_state_free(&st);
}

/* ---- keys ---------------------------------------------------------------- */

static void test_put_and_find_keys(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    assert_int_equal(find_key(n, "a"), -1);
    assert_false(put(n, "alpha", "one", 1, false, 100));
    assert_false(put(n, "beta", "", 2, false, 100));
    assert_false(put(n, "gamma", "three", 5, false, 100));
    assert_int_equal(n->nkeys, 3);
    assert_int_equal(n->max_version, 5);
    assert_int_equal(n->state_bytes, 5 + 3 + 4 + 0 + 5 + 5);
    assert_int_equal(sb_peer_tombstones(n), 0);
    assert_int_equal(find_key(n, "alpha"), 0);
    assert_int_equal(find_key(n, "beta"), 1);
    assert_int_equal(find_key(n, "gamma"), 2);
    assert_int_equal(find_key(n, "alph"), -1);
    assert_int_equal(find_key(n, "alphaa"), -1);
    assert_int_equal(find_key(n, "Alpha"), -1);
    assert_key(n, 0, "alpha", "one", 1);
    assert_key(n, 1, "beta", "", 2);
    assert_key(n, 2, "gamma", "three", 5);
    assert_false(n->keys[0]->deleted);
    assert_int_equal(n->keys[0]->deleted_at, 0);

    /* keys and values are bytes: a NUL inside is kept */
    static const uint8_t k[3] = { 'x', 0, 'y' };
    static const uint8_t v[4] = { 0, 1, 0, 2 };
    bool was_live = true;
    assert_true(sb_peer_put_key(n, k, sizeof(k), v, sizeof(v), 6, false, 0,
                                &was_live));
    assert_false(was_live);
    assert_int_equal(sb_peer_find_key(n, k, sizeof(k)), 3);
    assert_int_equal(sb_peer_find_key(n, k, 1), -1);
    assert_int_equal(n->keys[3]->value_len, 4);
    assert_memory_equal(sb_key_value(n->keys[3]), v, sizeof(v));
    assert_int_equal(n->state_bytes, 22 + 7);
    sb_state_free(&st);
}

static void test_put_replaces_and_moves_to_end(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    put(n, "a", "1", 1, false, 0);
    put(n, "b", "22", 2, false, 0);
    put(n, "c", "333", 3, false, 0);
    assert_int_equal(n->state_bytes, 2 + 3 + 4);

    /* a live key replaced */
    assert_true(put(n, "a", "xxxxx", 4, false, 0));
    assert_int_equal(n->nkeys, 3);
    assert_key(n, 0, "b", "22", 2);
    assert_key(n, 1, "c", "333", 3);
    assert_key(n, 2, "a", "xxxxx", 4);
    assert_int_equal(n->state_bytes, 3 + 4 + 6);
    assert_int_equal(n->max_version, 4);

    /* deleted: a tombstone with its time, no value */
    assert_true(put(n, "b", NULL, 5, true, 777));
    assert_int_equal(n->nkeys, 3);
    assert_int_equal(sb_peer_tombstones(n), 1);
    assert_key(n, 2, "b", "", 5);
    assert_true(n->keys[2]->deleted);
    assert_int_equal(n->keys[2]->deleted_at, 777);
    assert_int_equal(n->state_bytes, 4 + 6 + 1);

    /* a tombstone replaced: it was not live */
    assert_false(put(n, "b", "back", 6, false, 888));
    assert_int_equal(sb_peer_tombstones(n), 0);
    assert_key(n, 2, "b", "back", 6);
    assert_false(n->keys[2]->deleted);
    assert_int_equal(n->keys[2]->deleted_at, 0);

    /* a tombstone replaced by a tombstone */
    put(n, "c", NULL, 7, true, 10);
    assert_false(put(n, "c", NULL, 8, true, 20));
    assert_int_equal(sb_peer_tombstones(n), 1);
    assert_int_equal(n->keys[2]->deleted_at, 20);
    assert_int_equal(n->nkeys, 3);
    assert_key(n, 0, "a", "xxxxx", 4);
    assert_key(n, 1, "b", "back", 6);
    assert_key(n, 2, "c", "", 8);
    assert_int_equal(n->max_version, 8);
    sb_state_free(&st);
}

static void test_max_version_never_lowered(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    n->max_version = 100; /* e.g. after collecting tombstones */
    put(n, "k", "v", 50, false, 0);
    assert_int_equal(n->max_version, 100);
    put(n, "k", "v", 101, false, 0);
    assert_int_equal(n->max_version, 101);
    put(n, "j", "v", UINT64_MAX, false, 0);
    assert_int_equal(n->max_version, UINT64_MAX);
    sb_state_free(&st);
}

static void test_keys_after(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    assert_int_equal(sb_peer_keys_after(n, 0), 0);
    assert_int_equal(sb_peer_keys_after(n, UINT64_MAX), 0);
    static const uint64_t versions[] = { 3, 5, 6, 10, 20, 21, 1000 };
    char key[8];
    for (size_t i = 0; i < ARRAY_LEN(versions); i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        put(n, key, "v", versions[i], false, 0);
    }
    const uint32_t all = ARRAY_LEN(versions);
    for (uint64_t v = 0; v <= 1001; v++) {
        uint32_t want = 0;
        while (want < all && versions[want] <= v)
            want++;
        assert_int_equal(sb_peer_keys_after(n, v), want);
    }
    assert_int_equal(sb_peer_keys_after(n, 2), 0);
    assert_int_equal(sb_peer_keys_after(n, 3), 1);
    assert_int_equal(sb_peer_keys_after(n, 9), 3);
    assert_int_equal(sb_peer_keys_after(n, 999), 6);
    assert_int_equal(sb_peer_keys_after(n, 1000), all);
    assert_int_equal(sb_peer_keys_after(n, UINT64_MAX), all);
    sb_state_free(&st);
}

static void test_remove_key_keeps_order(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    put(n, "a", "11", 1, false, 0);
    put(n, "b", NULL, 2, true, 5);
    put(n, "c", "333", 3, false, 0);
    put(n, "d", NULL, 4, true, 6);
    assert_int_equal(sb_peer_tombstones(n), 2);
    assert_int_equal(n->state_bytes, 3 + 1 + 4 + 1);

    sb_peer_remove_key(n, 1); /* the tombstone "b" */
    assert_int_equal(n->nkeys, 3);
    assert_int_equal(sb_peer_tombstones(n), 1);
    assert_int_equal(n->state_bytes, 3 + 4 + 1);
    assert_key(n, 0, "a", "11", 1);
    assert_key(n, 1, "c", "333", 3);
    assert_key(n, 2, "d", "", 4);
    assert_int_equal(find_key(n, "b"), -1);
    assert_int_equal(find_key(n, "d"), 2);

    sb_peer_remove_key(n, 2); /* the last */
    assert_int_equal(n->nkeys, 2);
    assert_int_equal(sb_peer_tombstones(n), 0);
    sb_peer_remove_key(n, 0); /* the first */
    assert_int_equal(n->nkeys, 1);
    assert_key(n, 0, "c", "333", 3);
    assert_int_equal(n->state_bytes, 4);
    assert_int_equal(n->max_version, 4); /* stays */
    sb_peer_remove_key(n, 0);
    assert_int_equal(n->nkeys, 0);
    assert_int_equal(n->state_bytes, 0);
    assert_int_equal(sb_peer_keys_after(n, 0), 0);
    sb_state_free(&st);
}

static void test_clear_keys(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    for (int i = 0; i < 9; i++) {
        char key[4] = { 'k', (char)('0' + i), 0 };
        put(n, key, i % 3 ? "value" : NULL, (uint64_t)i + 1, i % 3 == 0, 9);
    }
    assert_int_equal(n->nkeys, 9);
    assert_int_equal(sb_peer_tombstones(n), 3);
    assert_int_equal(1u << n->keys_log, 16);
    sb_peer_clear_keys(n);
    assert_int_equal(n->nkeys, 0);
    assert_int_equal(sb_peer_tombstones(n), 0);
    assert_int_equal(n->state_bytes, 0);
    assert_int_equal(n->max_version, 9);
    assert_int_equal(find_key(n, "k1"), -1);
    /* the array is kept and used again */
    assert_int_equal(1u << n->keys_log, 16);
    assert_false(put(n, "k1", "again", 10, false, 0));
    assert_int_equal(n->nkeys, 1);
    assert_key(n, 0, "k1", "again", 10);
    assert_int_equal(n->state_bytes, 7);
    sb_state_free(&st);
}

static void test_many_keys_stay_sorted(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    enum { N = 500 };
    char key[16];
    uint64_t version = 0;
    size_t bytes = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        put(n, key, "v", ++version, false, 0);
        bytes += strlen(key) + 1;
    }
    /* every third key written again: moves to the end */
    for (int i = 0; i < N; i += 3) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_true(put(n, key, "vv", ++version, false, 0));
        bytes += 1;
    }
    assert_int_equal(n->nkeys, N);
    assert_int_equal(1u << n->keys_log, 512);
    assert_int_equal(n->state_bytes, bytes);
    assert_int_equal(n->max_version, version);
    for (uint32_t i = 1; i < n->nkeys; i++)
        assert_true(n->keys[i - 1]->version < n->keys[i]->version);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        long at = find_key(n, key);
        assert_true(at >= 0);
        assert_int_equal(n->keys[at]->value_len, i % 3 ? 1 : 2);
    }
    /* the rewritten keys are the suffix: versions above N */
    assert_int_equal(sb_peer_keys_after(n, N), N - (N + 2) / 3);
    sb_state_free(&st);
}

/* The key index against a model: 3000 random puts, rewrites, deletes and
 * removals over 600 key names (the index grows and shrinks past the scan
 * threshold); after each, every name is found exactly where it is, or
 * not at all, and the keys stay in version order. */
static void test_key_index_matches_a_model(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    sb_peer *n = add(&st, "1.2.3.4:5", 1);
    enum { NAMES = 600 };
    static bool held[NAMES];
    memset(held, 0, sizeof(held));
    uint64_t version = 0, rnd = 12345;
    char key[16];
    for (int step = 0; step < 3000; step++) {
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        int name = (int)((rnd >> 33) % NAMES);
        snprintf(key, sizeof(key), "k%d", name);
        if ((rnd >> 20) % 4 == 0 && held[name]) {
            long at = find_key(n, key);
            assert_true(at >= 0);
            sb_peer_remove_key(n, (uint32_t)at);
            held[name] = false;
        } else {
            put(n, key, (rnd >> 10) % 2 ? "v" : "w", ++version,
                (rnd >> 12) % 5 == 0, 0);
            held[name] = true;
        }
        if (step % 100 == 99 || step < 40) {
            uint32_t count = 0;
            for (int i = 0; i < NAMES; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                long at = find_key(n, key);
                assert_true(held[i] ? at >= 0 : at < 0);
                if (at >= 0) {
                    count++;
                    assert_int_equal(n->keys[at]->key_len, strlen(key));
                    assert_memory_equal(n->keys[at]->data, key,
                                        strlen(key));
                }
            }
            assert_int_equal(count, n->nkeys);
            for (uint32_t i = 1; i < n->nkeys; i++)
                assert_true(n->keys[i - 1]->version < n->keys[i]->version);
        }
    }
    assert_true(n->by_key_log > 0); /* indexed */
    sb_peer_clear_keys(n);
    assert_int_equal(n->nkeys, 0);
    assert_int_equal(find_key(n, "k1"), -1); /* the index is empty */
    put(n, "k1", "v", ++version, false, 0);  /* and takes keys again */
    assert_int_equal(find_key(n, "k1"), 0);
    sb_state_free(&st);
}

/* st.sorted holds every peer in id order as peers come and go. */
static void test_sorted_in_id_order(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    char addr[32];
    for (int i = 0; i < 200; i++) {
        snprintf(addr, sizeof(addr), "10.0.%d.%d:7946", i / 250, i % 250);
        add(&st, addr, 1);
    }
    for (int i = 0; i < 200; i += 3) {
        snprintf(addr, sizeof(addr), "10.0.%d.%d:7946", i / 250, i % 250);
        sb_state_remove(&st, sb_state_find_addr(&st, addr, strlen(addr)));
    }
    for (uint32_t i = 0; i < st.count; i++) {
        if (i)
            assert_true(sb_state_sorted(&st, i - 1)->id <
                        sb_state_sorted(&st, i)->id);
        sb_peer *n = sb_state_sorted(&st, i);
        assert_ptr_equal(sb_state_find_id(&st, n->id), n);
        assert_int_equal(sb_state_after(&st, n->id), i + 1);
    }
    assert_int_equal(st.count, 133);
    sb_state_free(&st);
}

/* ---- memory -------------------------------------------------------------- */

static void test_memory_accounting(void **state)
{
    (void)state;
    sb_state st;
    sb_state_init(&st);
    /* peers, due, perm, sorted; touched (a quarter of as many slots
     * and 8, under STATE_TOUCHED) */
    const size_t per_index = sizeof(sb_peer *) + sizeof(uint64_t) +
                             2 * sizeof(uint32_t);
    const size_t per_touched = sizeof(sb_peer *);
    const size_t per_slot = 2 * sizeof(sb_slot);
    assert_int_equal(sb_state_memory(&st), 0);

    sb_peer *n = add(&st, "1.2.3.4:5", 1); /* 9 bytes of address */
    size_t want = 16 * per_index + 12 * per_touched + 11 * per_slot +
                  offsetof(sb_peer, addr) + 10;
    assert_int_equal(sb_state_memory(&st), want);

    put(n, "key", "value", 1, false, 0); /* the keys' head, room for 4 */
    want += sizeof(sb_keys_head) + 4 * sizeof(sb_key *) + sizeof(sb_key) + 8;
    assert_int_equal(sb_state_memory(&st), want);
    put(n, "key", "longer value", 2, false, 0); /* replaces: +7 */
    want += 7;
    assert_int_equal(sb_state_memory(&st), want);
    put(n, "gone", NULL, 3, true, 0);
    want += sizeof(sb_key) + 4;
    assert_int_equal(sb_state_memory(&st), want);

    sb_peer *m = add(&st, "[::1]:7946", 1); /* 10 bytes of address */
    want += offsetof(sb_peer, addr) + 11;
    assert_int_equal(sb_state_memory(&st), want);

    assert_true(sb_state_forget(&st, 1, 1, 1, 0, 0));
    want += 8 * sizeof(sb_forgotten);
    assert_int_equal(sb_state_memory(&st), want);

    sb_peer_remove_key(n, 0);
    want -= sizeof(sb_key) + 3 + 12; /* the array stays */
    assert_int_equal(sb_state_memory(&st), want);

    sb_state_remove(&st, m);
    want -= offsetof(sb_peer, addr) + 11; /* the index arrays stay */
    assert_int_equal(sb_state_memory(&st), want);

    /* the indexes, 11 slots, grow when a node would leave them more than
     * 3/4 full: at the 8th node, to 9 * 3/2 + 8 = 21 slots; at the 15th,
     * to 32. The arrays, 16 slots, grow by an eighth and 16 at the 17th,
     * the touched list to 34 / 4 + 8 = 16 */
    char a[32];
    for (unsigned i = 0; i < 16; i++) {
        node_addr(a, sizeof(a), i); /* "10.0.0.i:7946" */
        add(&st, a, 1);
        want += offsetof(sb_peer, addr) + strlen(a) + 1;
        if (st.count == 8)
            want += (21 - 11) * per_slot;
        if (st.count == 15)
            want += (32 - 21) * per_slot;
        if (st.count == 17)
            want += (34 - 16) * per_index + (16 - 12) * per_touched;
        assert_int_equal(sb_state_memory(&st), want);
    }
    assert_int_equal(st.count, 17);
    assert_int_equal(st.cap, 34);
    assert_int_equal(st.slots, 32);
    sb_state_free(&st);
    assert_int_equal(sb_state_memory(&st), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_state),
        cmocka_unit_test(test_add_sets_fields),
        cmocka_unit_test(test_find_by_addr_and_id),
        cmocka_unit_test(test_many_nodes_grow_and_stay_indexed),
        cmocka_unit_test(test_remove_moves_last_node),
        cmocka_unit_test(test_remove_all_then_add),
        cmocka_unit_test(test_same_address_two_generations),
        cmocka_unit_test(test_forget_and_expire),
        cmocka_unit_test(test_forget_many_keeps_order_on_expiry),
        cmocka_unit_test(test_forget_in_any_order),
        cmocka_unit_test(test_put_and_find_keys),
        cmocka_unit_test(test_put_replaces_and_moves_to_end),
        cmocka_unit_test(test_max_version_never_lowered),
        cmocka_unit_test(test_keys_after),
        cmocka_unit_test(test_remove_key_keeps_order),
        cmocka_unit_test(test_clear_keys),
        cmocka_unit_test(test_many_keys_stay_sorted),
        cmocka_unit_test(test_key_index_matches_a_model),
        cmocka_unit_test(test_sorted_in_id_order),
        cmocka_unit_test(test_memory_accounting),
    };
    return RUN_TESTS(tests, argc, argv);
}
