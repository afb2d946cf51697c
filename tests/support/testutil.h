/* testutil.h: helpers shared by the cmocka test programs. */
#ifndef SB_TESTUTIL_H
#define SB_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Reads a whole file; returns owned bytes (NUL-terminated, free with free()) and *len, or NULL. */
char *tu_read_file(const char *path, size_t *len);
/* Path of a fixture file (e.g. "05-originate-success-full-call.ami") in a static buffer. */
const char *tu_fixture(const char *name);
/* Deterministic pseudo-random numbers (xorshift); seed with tu_seed(). */
void tu_seed(uint64_t seed);
uint32_t tu_rand(void);

/* A fresh temporary directory holding the path of a store file (not created). */
typedef struct tu_tmpdb {
    char dir[64];
    char db[128];
} tu_tmpdb;
/* Makes the directory (/tmp/sb-PREFIX-XXXXXX); fails the test when it cannot. */
void tu_tmpdb_make(tu_tmpdb *t, const char *prefix);
/* Removes the store file with its -wal, -shm and -journal companions, then the directory (which
 * must then be empty: the test fails otherwise). */
void tu_tmpdb_remove(tu_tmpdb *t);

#endif
