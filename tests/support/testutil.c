/* testutil.c: helpers shared by the cmocka test programs (see testutil.h). */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    p = malloc((size_t)n + 1);
    if (!p)
        goto out;
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
        goto out;
    }
    p[n] = '\0';
    if (len)
        *len = (size_t)n;
out:
    fclose(f);
    return p;
}

const char *tu_fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("SB_FIXTURES");
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : SB_FIXTURES, name);
    return path;
}

static uint64_t tu_state = 0x9E3779B97F4A7C15ull;

void tu_seed(uint64_t seed)
{
    tu_state = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint32_t tu_rand(void)
{
    uint64_t x = tu_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    tu_state = x;
    return (uint32_t)(x >> 32);
}

/* Every test program talks to servers over loopback; a peer that closed first must fail the
 * write with EPIPE (which the code under test handles), not kill the test with SIGPIPE. */
__attribute__((constructor)) static void tu_ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

void tu_tmpdb_make(tu_tmpdb *t, const char *prefix)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/sb-%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof t->db, "%s/store.db", t->dir);
}

void tu_tmpdb_remove(tu_tmpdb *t)
{
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", t->db, suffix[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(t->dir), 0);
}
