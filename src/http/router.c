/* router.c: the route table of tessera's API and its matcher.
 *
 * A route is a method and a path pattern whose "{id}" segment matches one
 * non-empty segment of [A-Za-z0-9_-] (ids are "usr_"/"ses_" + base64url).
 * Matching is exact otherwise: no trailing slash, no dot segments, no
 * percent-decoding (libmicrohttpd hands us the raw path). A path known under
 * another method gives 405 with an Allow list; anything else 404. */
#include "http/http_int.h"

#include <string.h>

static const tsr_http_route routes[] = {
    /* Accounts. */
    {"POST", "/v1/users", tsr_h_signup, 0},
    {"POST", "/v1/users/me/password", tsr_h_password, 0},
    /* Session (cookie) mode. */
    {"POST", "/v1/session/login", tsr_h_login, 0},
    {"GET", "/v1/session", tsr_h_session_get, 0},
    {"POST", "/v1/session/logout", tsr_h_logout, 0},
    {"GET", "/v1/sessions", tsr_h_sessions_list, 0},
    {"DELETE", "/v1/sessions", tsr_h_sessions_delete, 0},
    {"DELETE", "/v1/sessions/{id}", tsr_h_session_delete, 0},
    /* Token and hybrid mode. */
    {"POST", "/v1/session/token", tsr_h_session_token, 0},
    {"POST", "/v1/oauth/token", tsr_h_oauth_token, 0},
    {"POST", "/v1/oauth/revoke", tsr_h_oauth_revoke, 0},
    {"POST", "/v1/oauth/introspect", tsr_h_oauth_introspect, 0},
    /* Keys and discovery. */
    {"GET", "/.well-known/jwks.json", tsr_h_jwks, 0},
    {"GET", "/.well-known/openid-configuration", tsr_h_openid_configuration, 0},
    {"GET", "/.well-known/oauth-authorization-server", tsr_h_oauth_metadata, 0},
    /* Administration. */
    {"POST", "/v1/admin/users", tsr_h_admin_user_create, 0},
    {"GET", "/v1/admin/users", tsr_h_admin_user_list, 0},
    {"GET", "/v1/admin/users/{id}", tsr_h_admin_user_get, 0},
    {"PATCH", "/v1/admin/users/{id}", tsr_h_admin_user_patch, 0},
    {"DELETE", "/v1/admin/users/{id}", tsr_h_admin_user_delete, 0},
    {"POST", "/v1/admin/users/{id}/revoke", tsr_h_admin_user_revoke, 0},
    {"POST", "/v1/admin/keys/rotate", tsr_h_admin_keys_rotate, 0},
    {"GET", "/v1/admin/keys", tsr_h_admin_keys_list, 0},
    /* Forward auth: reverse proxies send the original method (nginx auth_request). */
    {"GET", "/v1/verify", tsr_h_verify, TSR_ROUTE_ANY_METHOD},
    /* Operations. */
    {"GET", "/healthz", tsr_h_healthz, 0},
    {"GET", "/readyz", tsr_h_readyz, 0},
    {"GET", "/metrics", tsr_h_metrics, 0},
};

_Static_assert(sizeof routes / sizeof routes[0] <= TSR_HTTP_ROUTES_MAX, "route table too big");

size_t tsr_http_route_count(void)
{
    return sizeof routes / sizeof routes[0];
}

const tsr_http_route *tsr_http_route_get(int idx)
{
    if (idx < 0 || (size_t)idx >= tsr_http_route_count())
        return NULL;
    return &routes[idx];
}

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* 1 when path matches pattern; the {id} segment is copied into param. */
static int path_match(const char *pattern, const char *path, char *param, size_t pcap)
{
    const char *p = pattern;
    const char *s = path;

    while (*p != '\0') {
        if (strncmp(p, "{id}", 4) == 0) {
            size_t n = 0;
            while (id_char(s[n]))
                n++;
            if (n == 0 || n >= pcap || (s[n] != '/' && s[n] != '\0'))
                return 0;
            memcpy(param, s, n);
            param[n] = '\0';
            s += n;
            p += 4;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *s == '\0';
}

/* HEAD is answered as GET (libmicrohttpd drops the body). */
static int method_eq(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return 1;
    return strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

static void allow_add(char *allow, size_t acap, const char *m)
{
    size_t used = strlen(allow);
    size_t ml = strlen(m);

    if (strstr(allow, m) != NULL)
        return;
    if (used + ml + 3 > acap)
        return;
    if (used > 0) {
        memcpy(allow + used, ", ", 2);
        used += 2;
    }
    memcpy(allow + used, m, ml + 1);
}

int tsr_http_route_find(const char *method, const char *path, char *param, size_t pcap,
                        char *allow, size_t acap)
{
    char tmp[TSR_ID_MAX + 1];
    int path_seen = 0;

    if (pcap > 0)
        param[0] = '\0';
    if (acap > 0)
        allow[0] = '\0';
    for (size_t i = 0; i < tsr_http_route_count(); i++) {
        const tsr_http_route *rt = &routes[i];
        tmp[0] = '\0';
        if (!path_match(rt->pattern, path, tmp, sizeof tmp))
            continue;
        if ((rt->flags & TSR_ROUTE_ANY_METHOD) != 0 || method_eq(rt->method, method)) {
            size_t n = strlen(tmp);
            if (n >= pcap)
                return -1;
            memcpy(param, tmp, n + 1);
            return (int)i;
        }
        path_seen = 1;
        if (acap > 0) {
            allow_add(allow, acap, rt->method);
            if (strcmp(rt->method, "GET") == 0)
                allow_add(allow, acap, "HEAD");
        }
    }
    return path_seen ? -2 : -1;
}
