/* epoll_ceiling.c: the machine's HTTP ceiling for bench/http/run.sh.
 *
 * A minimal HTTP/1.1 keep-alive server that answers every request with the same
 * fixed 200 ("ok", 2 bytes). It does the least an HTTP server can do: read, find the
 * end of each request head (and skip a Content-Length body), write the canned answer.
 * No routing, no header parsing beyond that, no allocation per request, no logging.
 * Whatever rate it reaches under wrk on loopback is the most any HTTP server can
 * reach on this machine with the same client, so tessera's /v1/verify is read
 * against it.
 *
 * Threads: -t N runs N threads (default 1), each with its own SO_REUSEPORT listener
 * and its own level-triggered epoll loop, so the kernel spreads connections across
 * them and threads share nothing. On a 2-core box with wrk itself busy on one core,
 * one thread is usually the fastest (two threads fight wrk for the second core);
 * run.sh measures -t 1 and -t <cores> and keeps the better as the ceiling.
 *
 * Pipelined requests are answered in order; a request head over 16 KiB or a
 * malformed Content-Length closes the connection. "Connection: close" is not
 * honoured (wrk never sends it); the server is for benchmarks only.
 *
 * Build: cc -O2 -pthread -o build-bench/epoll_ceiling bench/epoll_ceiling.c
 * Run:   epoll_ceiling -p PORT [-a 127.0.0.1] [-t THREADS]
 * Stops on SIGTERM or SIGINT. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_CAP 16384
#define MAX_EVENTS 256
#define MAX_FD 65536

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 2\r\n"
                               "\r\n"
                               "ok";
#define RESPONSE_LEN (sizeof RESPONSE - 1)

typedef struct conn {
    size_t len;        /* bytes buffered in buf */
    size_t body_left;  /* body bytes of the current request still to skip */
    char buf[BUF_CAP];
} conn;

static struct sockaddr_in g_addr;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int make_listener(void)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Case-insensitive search for "content-length:" in head[0..n); returns the value
 * (0 when absent), or -1 when malformed. */
static long content_length(const char *head, size_t n)
{
    static const char name[] = "\ncontent-length:";
    const size_t nl = sizeof name - 1;

    for (size_t i = 0; i + nl <= n; i++) {
        size_t j = 0;
        while (j < nl && (head[i + j] | (j > 0 ? 0x20 : 0)) == name[j])
            j++;
        if (j == nl) {
            long v = 0;
            size_t k = i + nl;
            while (k < n && (head[k] == ' ' || head[k] == '\t'))
                k++;
            if (k >= n || head[k] < '0' || head[k] > '9')
                return -1;
            while (k < n && head[k] >= '0' && head[k] <= '9') {
                v = v * 10 + (head[k] - '0');
                if (v > (1L << 30))
                    return -1;
                k++;
            }
            return v;
        }
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* The canned answers are tiny; a full socket buffer means a client that
             * pipelines without reading. Drop it rather than buffering. */
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what is there and answers every complete request. Returns -1 to close. */
static int on_readable(int fd, conn *c)
{
    static __thread char out[RESPONSE_LEN * 64];

    for (;;) {
        size_t room = BUF_CAP - c->len;
        ssize_t r = read(fd, c->buf + c->len, room);
        size_t pos = 0, nout = 0;

        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        c->len += (size_t)r;
        for (;;) {
            char *end;
            long cl;

            if (c->body_left > 0) {
                size_t take = c->len - pos < c->body_left ? c->len - pos : c->body_left;
                pos += take;
                c->body_left -= take;
                if (c->body_left > 0)
                    break;
            }
            end = memmem(c->buf + pos, c->len - pos, "\r\n\r\n", 4);
            if (end == NULL)
                break;
            cl = content_length(c->buf + pos, (size_t)(end - (c->buf + pos)) + 2);
            if (cl < 0)
                return -1;
            pos = (size_t)(end - c->buf) + 4;
            c->body_left = (size_t)cl;
            memcpy(out + nout, RESPONSE, RESPONSE_LEN);
            nout += RESPONSE_LEN;
            if (nout == sizeof out) {
                if (write_all(fd, out, nout) != 0)
                    return -1;
                nout = 0;
            }
        }
        if (nout > 0 && write_all(fd, out, nout) != 0)
            return -1;
        if (pos > 0) {
            memmove(c->buf, c->buf + pos, c->len - pos);
            c->len -= pos;
        }
        if (c->len == BUF_CAP)
            return -1; /* a head that does not fit */
        if ((size_t)r < room)
            return 0; /* short read: the socket is drained (level-triggered anyway) */
    }
}

static void *loop(void *arg)
{
    conn **conns = calloc(MAX_FD, sizeof *conns);
    struct epoll_event ev, events[MAX_EVENTS];
    int lfd = make_listener();
    int ep = epoll_create1(EPOLL_CLOEXEC);

    (void)arg;
    if (conns == NULL || lfd < 0 || ep < 0) {
        perror("epoll_ceiling: setup");
        exit(1);
    }
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("epoll_ceiling: epoll_ctl");
        exit(1);
    }
    while (!g_stop) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 200);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int one = 1;
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    if (cfd >= MAX_FD) {
                        close(cfd);
                        continue;
                    }
                    (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (conns[cfd] == NULL)
                        conns[cfd] = malloc(sizeof(conn));
                    if (conns[cfd] == NULL) {
                        close(cfd);
                        continue;
                    }
                    conns[cfd]->len = 0;
                    conns[cfd]->body_left = 0;
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.fd = cfd;
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) != 0)
                        close(cfd);
                }
                continue;
            }
            if ((events[i].events & (EPOLLERR | EPOLLHUP)) != 0 ||
                on_readable(fd, conns[fd]) != 0) {
                (void)epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
            }
        }
    }
    close(ep);
    close(lfd);
    return NULL;
}

/* Strict decimal: the whole string, no sign games, within [lo, hi]; else -1. */
static int parse_int(const char *s, int lo, int hi)
{
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    return (int)v;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, threads = 1, opt;
    pthread_t *tids;
    struct sigaction sa;

    while ((opt = getopt(argc, argv, "a:p:t:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = parse_int(optarg, 1, 65535); break;
        case 't': threads = parse_int(optarg, 1, 256); break;
        default:
            fprintf(stderr, "usage: %s -p PORT [-a ADDR] [-t THREADS]\n", argv[0]);
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || threads < 1 || threads > 256) {
        fprintf(stderr, "usage: %s -p PORT [-a ADDR] [-t THREADS]\n", argv[0]);
        return 2;
    }
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &g_addr.sin_addr) != 1) {
        fprintf(stderr, "epoll_ceiling: bad address %s\n", addr);
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    tids = calloc((size_t)threads, sizeof *tids);
    if (tids == NULL)
        return 1;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tids[i], NULL, loop, NULL) != 0) {
            perror("epoll_ceiling: pthread_create");
            return 1;
        }
    fprintf(stderr, "epoll_ceiling: listening on %s:%d with %d thread(s)\n", addr, port,
            threads);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    return 0;
}
