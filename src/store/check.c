/* check.c: the record checks and username folding the store backends share
 * (store_int.h). */
#include <string.h>

#include "store/store_int.h"

int tsr_store_field_ok(const char *f, size_t cap)
{
    return f[0] != '\0' && memchr(f, '\0', cap) != NULL;
}

int tsr_store_field_terminated(const char *f, size_t cap)
{
    return memchr(f, '\0', cap) != NULL;
}

int tsr_store_key_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max;
}

void tsr_store_ascii_lower(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; i + 1 < cap && in[i] != '\0'; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[i] = '\0';
}

tsr_err tsr_store_check_user(const tsr_user *u)
{
    if (!tsr_store_field_ok(u->id, sizeof u->id) ||
        !tsr_store_field_ok(u->username, sizeof u->username) ||
        !tsr_store_field_terminated(u->pwhash, sizeof u->pwhash) ||
        !tsr_store_field_terminated(u->roles, sizeof u->roles))
        return TSR_ERR_INVALID;
    return TSR_OK;
}

tsr_err tsr_store_check_session(const tsr_session *ss)
{
    if (!tsr_store_field_ok(ss->id, sizeof ss->id) ||
        !tsr_store_field_ok(ss->user_id, sizeof ss->user_id) ||
        !tsr_store_field_terminated(ss->ip, sizeof ss->ip) ||
        !tsr_store_field_terminated(ss->user_agent, sizeof ss->user_agent) ||
        !tsr_store_field_terminated(ss->scope, sizeof ss->scope))
        return TSR_ERR_INVALID;
    if (ss->kind != TSR_SESSION_COOKIE && ss->kind != TSR_SESSION_REFRESH)
        return TSR_ERR_INVALID;
    if (ss->generation < 0)
        return TSR_ERR_INVALID;
    return TSR_OK;
}

tsr_err tsr_store_check_key(const tsr_key_record *k)
{
    if (!tsr_store_field_ok(k->kid, sizeof k->kid) || !tsr_store_field_ok(k->alg, sizeof k->alg) ||
        !tsr_store_field_ok(k->jwk, sizeof k->jwk))
        return TSR_ERR_INVALID;
    return TSR_OK;
}
