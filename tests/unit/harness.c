/* harness.c: test runner, summary line and file helpers for the unit tests. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int tsr_test_failed_now;
long tsr_test_checks;
static int passed, failed;

void tsr_test_run(const char *name, void (*fn)(void))
{
    static int inited;
    if (!inited) {
        if (tsr_crypto_init() != TSR_OK) {
            fprintf(stderr, "crypto init failed\n");
            exit(1);
        }
        inited = 1;
    }
    tsr_test_failed_now = 0;
    fn();
    if (tsr_test_failed_now) {
        failed++;
        printf("FAIL %s\n", name);
    } else {
        passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

int tsr_test_summary(void)
{
    tsr_crypto_thread_cleanup();
    printf("%d passed, %d failed (%ld checks)\n", passed, failed, tsr_test_checks);
    return (failed == 0 && passed > 0) ? 0 : 1;
}

char *tsr_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

const char *tsr_test_vector_path(const char *rel)
{
    static char path[4096];
    const char *dir = getenv("TSR_VECTORS_DIR");
    if (dir == NULL)
        dir = TSR_VECTORS_DIR;
    int w = snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (w < 0 || (size_t)w >= sizeof path)
        return "";
    return path;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint8_t *tsr_test_unhex(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    if (len % 2 != 0)
        return NULL;
    uint8_t *out = malloc(len / 2 + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *n = len / 2;
    return out;
}
