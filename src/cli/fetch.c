/* fetch.c: the command line's one HTTP client, for `token verify --jwks URL`:
 * a bounded GET over http:// or https:// with libcurl (the only file that
 * includes it). Everything is capped: schemes, redirects (3, never to another
 * scheme, never from https down to http), time (10 s in all), body size (the
 * transfer is aborted past it), and only a 200 counts. TLS is verified against
 * the system CA bundle. Messages name the URL without its user name and
 * password; nothing secret passes through here (a token is never sent). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "crypto/crypto.h"

#ifndef TSR_VERSION
#define TSR_VERSION "0"
#endif

#define FETCH_TIMEOUT_MS 10000L
#define FETCH_MAX_REDIRS 3L

enum url_scheme { SCHEME_BAD = 0, SCHEME_HTTP, SCHEME_HTTPS };

int tsr_cli_is_url(const char *s)
{
    size_t i = 0;

    /* RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://". */
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (i = 1; s[i] != '\0'; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            break;
    }
    return strncmp(s + i, "://", 3) == 0;
}

/* Replaces bytes a terminal would act on, so a message stays one plain line. */
static void sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
    }
}

/* Copies src into out (cap bytes), cut with "..." when longer, sanitised. */
static void copy_shown(const char *src, char *out, size_t cap)
{
    size_t n = strlen(src);

    if (cap == 0)
        return;
    if (n >= cap) {
        n = cap - 1;
        memcpy(out, src, n);
        if (n >= 3)
            memcpy(out + n - 3, "...", 3);
    } else {
        memcpy(out, src, n);
    }
    out[n] = '\0';
    sanitize(out);
}

/* Parses url into a new handle; *scheme says which of ours it is. */
static tsr_err url_parse(const char *url, CURLU **out, enum url_scheme *scheme)
{
    tsr_err rc = TSR_ERR_INVALID;
    CURLU *u = NULL;
    char *sch = NULL;

    *out = NULL;
    *scheme = SCHEME_BAD;
    u = curl_url();
    if (u == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    /* Any scheme parses here, so that ftp:// is reported as a scheme we refuse
     * rather than as a malformed URL. */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &sch, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(sch, "http") == 0)
        *scheme = SCHEME_HTTP;
    else if (strcasecmp(sch, "https") == 0)
        *scheme = SCHEME_HTTPS;
    *out = u;
    u = NULL;
    rc = TSR_OK;
out:
    curl_free(sch);
    curl_url_cleanup(u);
    return rc;
}

void tsr_cli_url_display(const char *url, char *out, size_t cap)
{
    CURLU *u = NULL;
    enum url_scheme scheme;
    char *s = NULL;

    if (cap == 0)
        return;
    out[0] = '\0';
    if (url_parse(url, &u, &scheme) != TSR_OK ||
        curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &s, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        copy_shown("(malformed URL)", out, cap);
        goto out;
    }
    copy_shown(s, out, cap);
out:
    curl_free(s);
    curl_url_cleanup(u);
}

/* Checks url and reports why it is refused; *scheme (may be NULL) gets ours. */
static tsr_err url_check(const char *url, enum url_scheme *scheme_out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    CURLU *u = NULL;
    enum url_scheme scheme = SCHEME_BAD;
    char shown[TSR_CLI_URL_SHOWN_MAX];

    tsr_cli_url_display(url, shown, sizeof shown);
    rc = url_parse(url, &u, &scheme);
    if (rc == TSR_ERR_NOMEM) {
        tsr_cli_error("out of memory");
        goto out;
    }
    if (rc != TSR_OK) {
        /* Not echoed: it may hold a password curl could not strip. */
        tsr_cli_error("malformed URL (blanks and control characters must be %%-encoded)");
        goto out;
    }
    if (scheme == SCHEME_BAD) {
        rc = TSR_ERR_UNSUPPORTED;
        tsr_cli_error("%s: only http:// and https:// URLs are fetched", shown);
        goto out;
    }
    rc = TSR_OK;
out:
    if (scheme_out != NULL)
        *scheme_out = scheme;
    curl_url_cleanup(u);
    return rc;
}

tsr_err tsr_cli_url_check(const char *url)
{
    return url_check(url, NULL);
}

/* The response body, bounded. */
typedef struct fetch_body {
    CURL *h;
    char *data; /* max + 1 bytes */
    size_t len, max;
    int too_large;
    long bad_status; /* nonzero: the status of a response that was not 200 */
} fetch_body;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    fetch_body *b = ud;
    long status = 0;

    /* size is 1 for write callbacks (libcurl documents it). */
    (void)size;
    if (curl_easy_getinfo(b->h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200) {
        b->bad_status = status != 0 ? status : -1;
        return 0; /* aborts: no need to read an error page */
    }
    if (nmemb > b->max - b->len) {
        b->too_large = 1;
        return 0;
    }
    memcpy(b->data + b->len, p, nmemb);
    b->len += nmemb;
    return nmemb;
}

static tsr_err global_init(void)
{
    static int ready; /* the CLI fetches from one thread */

    if (!ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return TSR_ERR_INTERNAL;
        ready = 1;
    }
    return TSR_OK;
}

tsr_err tsr_cli_fetch(const char *url, size_t max, char **out, size_t *len)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char shown[TSR_CLI_URL_SHOWN_MAX];
    char errbuf[CURL_ERROR_SIZE];
    enum url_scheme scheme = SCHEME_BAD;
    struct curl_slist *hdrs = NULL;
    fetch_body b;
    CURLcode cc = CURLE_OK;
    long status = 0;

    *out = NULL;
    *len = 0;
    memset(&b, 0, sizeof b);
    errbuf[0] = '\0';
    rc = url_check(url, &scheme);
    if (rc != TSR_OK) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    tsr_cli_url_display(url, shown, sizeof shown);
    rc = global_init();
    if (rc != TSR_OK) {
        tsr_cli_error("cannot initialise libcurl");
        goto out;
    }
    rc = TSR_ERR_NOMEM;
    b.max = max;
    b.data = malloc(max + 1);
    b.h = curl_easy_init();
    hdrs = curl_slist_append(NULL, "Accept: application/jwk-set+json, application/json");
    if (b.data == NULL || b.h == NULL || hdrs == NULL) {
        tsr_cli_error("out of memory");
        goto out;
    }
    /* Each option is checked: an option this libcurl lacks must not silently
     * loosen a limit. */
    cc = curl_easy_setopt(b.h, CURLOPT_URL, url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_REDIR_PROTOCOLS_STR,
                              scheme == SCHEME_HTTPS ? "https" : "http,https");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_FOLLOWLOCATION, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_SSL_VERIFYPEER, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_USERAGENT, "tessera/" TSR_VERSION);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_HTTPHEADER, hdrs);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_ERRORBUFFER, errbuf);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_WRITEFUNCTION, on_data);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(b.h, CURLOPT_WRITEDATA, &b);
    if (cc != CURLE_OK) {
        rc = TSR_ERR_INTERNAL;
        tsr_cli_error("cannot set up the request for %s: %s", shown, curl_easy_strerror(cc));
        goto out;
    }

    cc = curl_easy_perform(b.h);
    if (curl_easy_getinfo(b.h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    rc = TSR_ERR_UNAVAILABLE;
    /* The status first: an error page may also be oversized. A redirect that
     * was refused or one too many leaves a 3xx status: curl's reason is better. */
    if (b.bad_status != 0 || ((cc == CURLE_OK || cc == CURLE_FILESIZE_EXCEEDED) && status != 200)) {
        tsr_cli_error("cannot fetch %s: HTTP status %ld (200 expected)", shown,
                      b.bad_status > 0 ? b.bad_status : status);
        goto out;
    }
    if (b.too_large || cc == CURLE_FILESIZE_EXCEEDED) {
        rc = TSR_ERR_TOO_LARGE;
        tsr_cli_error("cannot fetch %s: the response is larger than %zu bytes", shown, max);
        goto out;
    }
    if (cc != CURLE_OK) {
        sanitize(errbuf);
        tsr_cli_error("cannot fetch %s: %s", shown,
                      errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    b.data[b.len] = '\0';
    *out = b.data;
    *len = b.len;
    b.data = NULL;
    rc = TSR_OK;
out:
    if (b.h != NULL)
        curl_easy_cleanup(b.h);
    curl_slist_free_all(hdrs);
    if (b.data != NULL) {
        tsr_wipe(b.data, b.max + 1);
        free(b.data);
    }
    return rc;
}
