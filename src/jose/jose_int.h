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

#endif
