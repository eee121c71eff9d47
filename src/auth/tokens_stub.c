/* tokens_stub.c: TEMPORARY link stubs for tokens.h while the implementation is
 * written; every call answers TSR_ERR_UNSUPPORTED. */
#include <string.h>

#include "auth/tokens.h"

tsr_err tsr_auth_keys_init(tsr_auth *a, int64_t now) { (void)a; (void)now; return TSR_OK; }
tsr_err tsr_auth_keys_rotate(tsr_auth *a, tsr_alg alg, int64_t now, char kid[TSR_KID_STORE_MAX + 1])
{ (void)a; (void)alg; (void)now; if (kid) kid[0] = 0; return TSR_ERR_UNSUPPORTED; }
tsr_err tsr_auth_keys_list(tsr_auth *a, tsr_key_info *out, size_t max, size_t *n)
{ (void)a; (void)out; (void)max; *n = 0; return TSR_OK; }
tsr_err tsr_auth_jwks_json(tsr_auth *a, char **out, size_t *len)
{ (void)a; *out = strdup("{\"keys\":[]}"); *len = strlen(*out); return TSR_OK; }
size_t tsr_auth_published_algs(tsr_auth *a, const char **out, size_t max) { (void)a; (void)out; (void)max; return 0; }
const char *tsr_auth_issuer(const tsr_auth *a) { (void)a; return ""; }
tsr_err tsr_auth_set_default_issuer(tsr_auth *a, const char *u) { (void)a; (void)u; return TSR_OK; }
void tsr_auth_grant_wipe(tsr_auth_grant *g) { if (g) memset(g, 0, sizeof *g); }
tsr_err tsr_auth_scope_check(const char *scope, size_t n) { (void)scope; (void)n; return TSR_OK; }
tsr_err tsr_auth_password_grant(tsr_auth *a, const char *username, size_t ulen, const char *pw,
                                size_t pwlen, const char *scope, const char *ip,
                                const char *user_agent, int64_t now, tsr_auth_grant *out,
                                int64_t *retry_after)
{ (void)a; (void)username; (void)ulen; (void)pw; (void)pwlen; (void)scope; (void)ip; (void)user_agent; (void)now; (void)out; (void)retry_after; return TSR_ERR_UNSUPPORTED; }
tsr_err tsr_auth_refresh_grant(tsr_auth *a, const char *token, size_t len, int64_t now, tsr_auth_grant *out)
{ (void)a; (void)token; (void)len; (void)now; (void)out; return TSR_ERR_UNSUPPORTED; }
tsr_err tsr_auth_access_for_session(tsr_auth *a, const tsr_session *s, const tsr_user *u, int64_t now, tsr_auth_grant *out)
{ (void)a; (void)s; (void)u; (void)now; (void)out; return TSR_ERR_UNSUPPORTED; }
tsr_err tsr_auth_oauth_revoke(tsr_auth *a, const char *token, size_t len, const char *hint, int64_t now)
{ (void)a; (void)token; (void)len; (void)hint; (void)now; return TSR_OK; }
tsr_err tsr_auth_sync(tsr_auth *a, int64_t now) { (void)a; (void)now; return TSR_OK; }
tsr_err tsr_auth_sync_start(tsr_auth *a) { (void)a; return TSR_OK; }
int tsr_auth_is_revoked(tsr_auth *a, const char *sid, const char *jti, int64_t now) { (void)a; (void)sid; (void)jti; (void)now; return 0; }
size_t tsr_auth_revoked_count(tsr_auth *a) { (void)a; return 0; }
tsr_err tsr_auth_bearer_verify(tsr_auth *a, const char *token, size_t len, tsr_verify_mode mode, int64_t now, tsr_bearer *out)
{ (void)a; (void)token; (void)len; (void)mode; (void)now; memset(out, 0, sizeof *out); return TSR_ERR_TOKEN_MALFORMED; }
tsr_err tsr_auth_introspect(tsr_auth *a, const char *token, size_t len, int64_t now, tsr_token_info *out)
{ (void)a; (void)token; (void)len; (void)now; memset(out, 0, sizeof *out); return TSR_OK; }
void tsr_auth_cache_stats(tsr_auth *a, uint64_t *hits, uint64_t *misses) { (void)a; *hits = 0; *misses = 0; }
