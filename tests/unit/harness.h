/* harness.h: the minimal unit-test harness shared by every test executable.
 *
 * A test file defines test functions and lists them in main with TSR_RUN; each
 * CHECK that fails prints file:line and the expression and marks the test failed.
 * main ends with tsr_test_summary(), which prints "N passed, N failed" and
 * returns the exit code ctest reads. */
#ifndef TSR_TEST_HARNESS_H
#define TSR_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int tsr_test_failed_now;   /* set when a CHECK in the current test fails */
extern long tsr_test_checks;      /* CHECKs evaluated, for the summary */

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        tsr_test_checks++;                                                                 \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
            tsr_test_failed_now = 1;                                                       \
        }                                                                                  \
    } while (0)

/* CHECK that also prints a context string (e.g. a vector id) on failure. */
#define CHECKF(cond, ...)                                                                  \
    do {                                                                                   \
        tsr_test_checks++;                                                                 \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            tsr_test_failed_now = 1;                                                       \
        }                                                                                  \
    } while (0)

#define TSR_RUN(fn) tsr_test_run(#fn, fn)

void tsr_test_run(const char *name, void (*fn)(void));
/* Prints the summary line and returns 0 when every test passed (and at least one ran). */
int tsr_test_summary(void);

/* Reads a whole file into a NUL-terminated heap buffer (free()); NULL on failure. */
char *tsr_test_read_file(const char *path, size_t *len);
/* Path of a file under ../shared/vectors (static buffer, overwritten per call). */
const char *tsr_test_vector_path(const char *rel);
/* Decodes a hex string into a heap buffer (free()); NULL on bad hex. *n gets the length. */
uint8_t *tsr_test_unhex(const char *hex, size_t *n);

#endif
