/* jose_int.h: internals shared by the files of src/jose/ only. */
#ifndef TSR_JOSE_INT_H
#define TSR_JOSE_INT_H

#include <stdatomic.h>

#include <jansson.h>

#include "jose/jose.h"

struct tsr_jwk {
    atomic_int refs;
    tsr_key *key;
    size_t kid_len;
    char kid[TSR_KID_MAX + 1];
};

/* Parses strict JSON (duplicate keys rejected, one value, nothing after it) that
 * must be an object. NULL on failure. */
json_t *tsr_jose_parse_object(const char *s, size_t n);

/* Decodes a base64url string member into out (cap bytes). Absent member: TSR_OK with
 * *len 0 and *present 0. Present but not a strict base64url string: TSR_ERR_INVALID. */
TSR_MUST_CHECK tsr_err tsr_jose_member_b64(const json_t *obj, const char *name, uint8_t *out,
                                           size_t cap, size_t *len, int *present);

/* ---- json_scan.c: allocation-free strict JSON reader for the verify path ---- */

#define TSR_JSON_DEPTH_MAX 32  /* deeper nesting is refused */
#define TSR_JSON_KEYS_MAX 128  /* keys per object; more is refused */

typedef enum tsr_jv_type {
    TSR_JV_INVALID = 0,
    TSR_JV_STRING,
    TSR_JV_INTEGER,
    TSR_JV_REAL,
    TSR_JV_OBJECT,
    TSR_JV_ARRAY,
    TSR_JV_TRUE,
    TSR_JV_FALSE,
    TSR_JV_NULL
} tsr_jv_type;

/* A value as a span of the input: for strings the raw contents between the quotes. */
typedef struct tsr_jv {
    tsr_jv_type type;
    const char *p;
    size_t n;
    int has_escape;
} tsr_jv;

typedef struct tsr_jmember {
    tsr_jv key, val;
} tsr_jmember;

/* Validates that json is exactly one object (jansson's rules, duplicates rejected
 * at every level) and stores up to max top-level members. TSR_ERR_INVALID if not. */
TSR_MUST_CHECK tsr_err tsr_json_scan_object(const char *json, size_t n, tsr_jmember *members,
                                            size_t max, size_t *count /* OUT */);
/* The value of member name, or NULL. */
const tsr_jv *tsr_json_find(const tsr_jmember *m, size_t count, const char *name);
/* Unescaped, NUL-terminated string value into out (cap >= v->n + 1). */
TSR_MUST_CHECK tsr_err tsr_json_string(const tsr_jv *v, char *out, size_t cap,
                                       size_t *len /* OUT */);
/* NumericDate of an integer or real value; 0 if not a number in range. */
int tsr_json_numeric(const tsr_jv *v, int64_t *out /* OUT */);
/* Iterates an array value: *pos starts at 0; sets *done at the end. */
TSR_MUST_CHECK tsr_err tsr_json_array_next(const tsr_jv *arr, size_t *pos, tsr_jv *elem /* OUT */,
                                           int *done /* OUT */);

#endif
