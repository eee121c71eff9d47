#!/usr/bin/env bash
# bench/http/run.sh: tessera's HTTP benchmark, SPEC §6: session (cookie) mode, then
# token (bearer) mode, in one run.
#
# All on loopback, with wrk (1 thread, 50 connections unless said otherwise), side by
# side in one run:
#   1. GET /v1/verify with a session cookie, tessera on SQLite: req/s, p50, p99;
#   2. the peers: express + express-session with connect-redis (a real redis-server
#      started here on a free port) and with express-session's default MemoryStore;
#   3. the machine's HTTP ceiling: bench/epoll_ceiling.c, a fixed 200;
#   4. logins/s (POST /v1/session/login, Argon2id at tessera's defaults);
#   5. verify p99 alone, then during a login flood (a second wrk on the login route);
#   6. session look-up cost: verify at 1k, 100k and 1M stored sessions (rows written
#      straight into the SQLite file by bench/http/fill_sessions.js + sqlite3 while
#      tessera is stopped; one copy of the file per size, one tessera on each), with
#      the one real cookie and with 1000 cookies spread through the store.
#   7. token mode: GET /v1/verify with `Authorization: Bearer <access token>` for each
#      algorithm (TOKEN_ALGS) in each bearer mode (stateless, revocation-list,
#      stateful), with and without the verified-token cache: one tessera per
#      combination, the six of an algorithm on one SQLite store, one access token from
#      POST /v1/oauth/token. In the same rounds: for HS256 and ES256 the Node peers
#      fastify + @fastify/jwt and fastify + jose (peer_fastify_jwt.js,
#      peer_fastify_jose.js), each as one process and as a 2-worker node:cluster
#      (ES256: tessera's own token, key from its JWKS; HS256: an equivalent token
#      signed with a secret the peers know, since tessera never publishes an HMAC
#      secret); with HS256 the C epoll ceiling and tessera's cookie verify too;
#   8. credential sizes: the session cookie, each algorithm's access token, the
#      refresh token (token_sizes.js);
#   9. revocation delay on one instance (ES256): from a revoke or logout answer to the
#      first /v1/verify refusing the old access token (revocation_delay.js).
# Then tables, the SPEC §6 targets as PASS/MISS (a bench reports, it never fails on
# a MISS: the exit status is 0 unless the bench itself could not run) and a markdown
# copy of the results in $BENCH_BUILD/http-results.md.
#
# Every process it needs it starts itself, on free ports, and stops by PID at the end
# (also on error or Ctrl-C). Only one load generator runs at a time; servers not being
# measured sit idle. Everything is bounded: about 5 minutes for parts 1-6, 12 minutes
# for parts 7-9 (36 contenders x 3 rounds of 5 s, warm-ups, ~1000 revocations).
#
# Each verify figure is the median of ROUNDS rounds, the contenders taking turns round
# by round, so that drift on a shared machine hits them all alike.
#
# Environment:
#   TESSERA_BIN   tessera binary (default: build-bench/tessera, else build/tessera)
#   BENCH_BUILD   where epoll_ceiling is compiled and results are written (build-bench)
#   PARTS         which parts to run: "cookie tokens" (default), "cookie" (1-6) or
#                 "tokens" (7-9)
#   ROUNDS        interleaved rounds per figure (3)   ROUND   seconds per round (5)
#   WARMUP        seconds of warm-up per server (3)   LOGIN_SECS  the logins/s run (6)
#   SIZES         stored-session counts ("1000 100000 1000000")
#   SLIDES=1      the 1000 spread cookies' sessions get their once-a-minute idle slide
#                 (an UPDATE each) during the run, instead of look-ups only
#   TOKEN_ALGS    algorithms of part 7 ("HS256 ES256 RS256 EdDSA"; peers exist for
#                 HS256 and ES256 only)
#   REVOKE_N      revocations per path in part 9 (200)
#   QUICK=1       smoke run: 1 round of 2 s, 1 s warm-up, SIZES="1000 10000", REVOKE_N=20
#   KEEP=1        keep the scratch directory (logs, databases, wrk outputs)
#   ALLOW_SANITIZED=1  run even when TESSERA_BIN is an ASan/UBSan/TSan build (refused
#                 otherwise: such figures mean nothing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
if [[ -n "${TESSERA_BIN:-}" && "$TESSERA_BIN" != /* && -e "$TESSERA_BIN" ]]; then
    TESSERA_BIN="$PWD/$TESSERA_BIN" # relative to where it was invoked
fi
cd "$ROOT"

BENCH_BUILD="${BENCH_BUILD:-build-bench}"
if [[ "${QUICK:-0}" == 1 ]]; then
    ROUNDS="${ROUNDS:-1}"; ROUND="${ROUND:-2}"; WARMUP="${WARMUP:-1}"; LOGIN_SECS="${LOGIN_SECS:-3}"
    SIZES="${SIZES:-1000 10000}"; REVOKE_N="${REVOKE_N:-20}"
fi
ROUNDS="${ROUNDS:-3}"
ROUND="${ROUND:-5}"
WARMUP="${WARMUP:-3}"
LOGIN_SECS="${LOGIN_SECS:-6}"
SIZES="${SIZES:-1000 100000 1000000}"
PARTS="${PARTS:-cookie tokens}"
TOKEN_ALGS="${TOKEN_ALGS:-HS256 ES256 RS256 EdDSA}"
REVOKE_N="${REVOKE_N:-200}"
want() { [[ " $PARTS " == *" $1 "* ]]; }
NCPU="$(nproc)"
CONNS=50            # verify runs: wrk -t1 -c50 (SPEC §6)
LOGIN_CONNS=16      # logins/s and the flood: half the hashing queue (32), so none is refused
FLOOD_BIG_CONNS=64  # a second flood that overflows the queue (503s), for information
SPREAD_COOKIES=1000
SLIDE_FLAG=""; SPREAD_KIND="look-ups only: their idle slides are not due during the run"
if [[ "${SLIDES:-0}" == 1 ]]; then
    SLIDE_FLAG="--slides"; SPREAD_KIND="with their idle slides, about 17 store writes/s"
fi
COOKIE_NAME="__Host-tessera"
ADMIN_KEY="bench-admin-key-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PASSWORD="bench-password-0123"

if [[ -z "${TESSERA_BIN:-}" ]]; then
    if [[ -x "$BENCH_BUILD/tessera" ]]; then TESSERA_BIN="$BENCH_BUILD/tessera"
    else TESSERA_BIN="build/tessera"; fi
fi

die() { echo "bench/http: $*" >&2; exit 1; }
note() { echo "== [$(date -u +%H:%M:%S)] $*" >&2; }
want cookie || want tokens || die "PARTS must name cookie and/or tokens (got: $PARTS)"
for a in $TOKEN_ALGS; do
    case "$a" in HS256 | ES256 | RS256 | EdDSA) ;; *) die "TOKEN_ALGS: $a is not one of HS256 ES256 RS256 EdDSA" ;; esac
done

for tool in wrk node npm redis-server redis-cli sqlite3 curl cc awk; do
    command -v "$tool" >/dev/null || die "$tool is missing (needs: wrk node npm redis-server redis-cli sqlite3 curl cc)"
done
[[ -x "$TESSERA_BIN" ]] || die "no tessera binary at $TESSERA_BIN (make build, or set TESSERA_BIN)"

# ---- processes: every one started here is recorded and stopped by its PID ----
PIDS=()
W="$(mktemp -d /tmp/tessera-bench-http.XXXXXX)"

stop_pid() { # PID: TERM, up to 10 s, then KILL
    local pid="$1" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "bench/http: PID $pid ignored SIGTERM for 10 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "bench/http: scratch kept in $W" >&2
    else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bg() { # NAME CMD...: runs CMD in the background, output to $W/NAME.log; sets LAST_PID
    local name="$1"; shift
    "$@" >"$W/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

forget_pid() { # PID: stop it and drop it from PIDS
    local pid="$1" keep=() p
    stop_pid "$pid"
    for p in "${PIDS[@]}"; do [[ "$p" == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

forget_pids() { # PID...: stop them all at once (TERM to each, then wait, KILL after 10 s)
    local pid i alive keep=() p
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 100; i++)); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.1
    done
    for pid in "$@"; do stop_pid "$pid"; done # reaps them; KILLs any still alive
    for p in "${PIDS[@]}"; do [[ " $* " == *" $p "* ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

free_port() { # a port the kernel just handed out on 127.0.0.1 and that is now free
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_http() { # URL PID: until URL answers (any status), the process is alive, 30 s at most
    local url="$1" pid="$2" i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

# ---- wrk ----
declare -A RPS P50 P99 NON2XX REQS ERRS
wrk_args() { # [ENV=VALUE | AUTH=TOKEN]...: sets WRK_ENV and WRK_HDR (AUTH: a bearer token)
    local a
    WRK_ENV=(); WRK_HDR=()
    for a in "$@"; do
        case "$a" in
            AUTH=*) WRK_HDR+=(-H "Authorization: Bearer ${a#AUTH=}") ;;
            *) WRK_ENV+=("$a") ;;
        esac
    done
}
run_wrk() { # LABEL URL CONNS SECONDS [ENV=VALUE | AUTH=TOKEN...]: one measured wrk run
    local label="$1" url="$2" conns="$3" secs="$4"; shift 4
    local line
    wrk_args "$@"
    env BENCH_LABEL="$label" "${WRK_ENV[@]}" \
        wrk -t1 -c"$conns" -d"${secs}s" --latency "${WRK_HDR[@]}" -s "$HERE/wrk.lua" "$url" >"$W/wrk-$label.txt" 2>&1 ||
        die "wrk failed for $label: $(tail -3 "$W/wrk-$label.txt")"
    line="$(grep '^RESULT ' "$W/wrk-$label.txt" | tail -1)"
    [[ -n "$line" ]] || die "no result from wrk for $label"
    RPS[$label]="$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")"
    P50[$label]="$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")"
    P99[$label]="$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")"
    NON2XX[$label]="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
    REQS[$label]="$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")"
    ERRS[$label]="$(awk '{for(i=1;i<=NF;i++) if ($i ~ /^(connect|read|write|timeout)=/) {split($i,a,"="); s+=a[2]}} END {print s+0}' <<<"$line")"
    printf '   %-30s %10.0f req/s  p50 %8.2f ms  p99 %8.2f ms  non-2xx %s  socket errors %s\n' \
        "$label" "${RPS[$label]}" "$(ms "${P50[$label]}")" "$(ms "${P99[$label]}")" \
        "${NON2XX[$label]}" "${ERRS[$label]}" >&2
}
warm() { # URL CONNS [ENV=VALUE | AUTH=TOKEN...]: an unrecorded run of WARMUP seconds
    local url="$1" conns="$2"; shift 2
    wrk_args "$@"
    env BENCH_LABEL=warmup "${WRK_ENV[@]}" wrk -t1 -c"$conns" -d"${WARMUP}s" "${WRK_HDR[@]}" \
        -s "$HERE/wrk.lua" "$url" >/dev/null 2>&1 || true
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
verdict() { if "$@"; then echo PASS; else echo MISS; fi; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A ROUNDS_RPS
aggregate() { # NAME: NAME's figures = the medians of its rounds NAME.1 .. NAME.ROUNDS
    local name="$1" r rps=() p50=() p99=() non=0 err=0 req=0
    for ((r = 1; r <= ROUNDS; r++)); do
        rps+=("${RPS[$name.$r]}"); p50+=("${P50[$name.$r]}"); p99+=("${P99[$name.$r]}")
        non=$((non + NON2XX[$name.$r])); err=$((err + ERRS[$name.$r])); req=$((req + REQS[$name.$r]))
    done
    RPS[$name]="$(median "${rps[@]}")"; P50[$name]="$(median "${p50[@]}")"; P99[$name]="$(median "${p99[@]}")"
    NON2XX[$name]=$non; ERRS[$name]=$err; REQS[$name]=$req
    ROUNDS_RPS[$name]="$(printf '%.0f ' "${rps[@]}" | sed 's/ $//; s/ / \/ /g')"
}

# ---- set-up ----
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
note "scratch: $W; tessera: $TESSERA_BIN; $ROUNDS round(s) of ${ROUND}s, ${WARMUP}s warm-up; load: $LOAD0"
mkdir -p "$BENCH_BUILD"
# run a private copy: a rebuild of TESSERA_BIN during the run cannot break it or mix builds
cp "$TESSERA_BIN" "$W/tessera-under-test" || die "cannot copy $TESSERA_BIN"
TESSERA_SRC_BIN="$TESSERA_BIN"
TESSERA_BIN="$W/tessera-under-test"
if grep -qa -e __asan_init -e __ubsan_handle -e __tsan_init "$TESSERA_BIN" && [[ "${ALLOW_SANITIZED:-0}" != 1 ]]; then
    die "$TESSERA_SRC_BIN is a sanitizer build: its figures would mean nothing (reconfigure with -DTSR_SANITIZE=OFF; ALLOW_SANITIZED=1 runs it anyway)"
fi
cc -O2 -Wall -Wextra -pthread -o "$BENCH_BUILD/epoll_ceiling" bench/epoll_ceiling.c ||
    die "cannot compile bench/epoll_ceiling.c"
if [[ ! -f "$HERE/node_modules/.package-lock.json" || "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
    note "npm ci in bench/http (express, express-session, connect-redis, redis, fastify, @fastify/jwt, jose)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >"$W/npm.log" 2>&1) ||
        die "npm ci failed: $(tail -5 "$W/npm.log")"
fi

start_tessera() { # NAME PORT DB [VAR=VALUE...]: tessera serve on 127.0.0.1:PORT with SQLite at DB
    local name="$1" port="$2" db="$3"; shift 3
    start_bg "$name" env TESSERA_SERVER_LISTEN="127.0.0.1:$port" \
        TESSERA_STORE_URL="sqlite:$db" TESSERA_ADMIN_KEY="$ADMIN_KEY" \
        TESSERA_LOG_LEVEL=warn "$@" "$TESSERA_BIN" serve
    wait_http "http://127.0.0.1:$port/healthz" "$LAST_PID" ||
        die "tessera did not start: $(tail -5 "$W/$name.log")"
}
post_json() { # URL JSON HEADERS-FILE: prints the status code
    curl -s -o "$W/body.json" -D "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data "$2" "$1"
}
cookie_from() { # HEADERS-FILE NAME: the value of Set-Cookie NAME
    sed -n "s/^[Ss]et-[Cc]ookie: *\($2=[^;]*\).*/\1/p" "$1" | tr -d '\r' | tail -1
}
declare -A URL ENVS # per contender: the URL wrk loads, and its ENV=VALUE or AUTH=TOKEN

# ======== parts 1-6: session (cookie) mode ========
if want cookie; then

TP="$(free_port)"
TESSERA_URL="http://127.0.0.1:$TP"
mkdir -p "$W/db"
start_tessera tessera "$TP" "$W/db/tessera.db"
TESSERA_PID=$LAST_PID


for u in bench flood; do
    code="$(post_json "$TESSERA_URL/v1/users" "{\"username\":\"$u\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
    [[ "$code" == 201 ]] || die "signup of $u answered $code: $(cat "$W/body.json")"
done
code="$(post_json "$TESSERA_URL/v1/session/login" "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
[[ "$code" == 200 ]] || die "login answered $code: $(cat "$W/body.json")"
T_COOKIE="$(cookie_from "$W/h.txt" "$COOKIE_NAME")"
[[ -n "$T_COOKIE" ]] || die "login set no $COOKIE_NAME cookie"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $T_COOKIE" "$TESSERA_URL/v1/verify")"
[[ "$code" == 200 ]] || die "/v1/verify with the login cookie answered $code"

RP="$(free_port)"
start_bg redis redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
REDIS_PID=$LAST_PID
for ((i = 0; i < 50; i++)); do
    redis-cli -p "$RP" ping 2>/dev/null | grep -q PONG && break
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server did not start: $(tail -3 "$W/redis.log")"
    sleep 0.1
done
NRP="$(free_port)"
start_bg peer-redis node "$HERE/peer_express.js" --port "$NRP" --store redis --redis "redis://127.0.0.1:$RP"
wait_http "http://127.0.0.1:$NRP/verify" "$LAST_PID" || die "express (connect-redis) did not start: $(tail -5 "$W/peer-redis.log")"
NMP="$(free_port)"
start_bg peer-memory node "$HERE/peer_express.js" --port "$NMP" --store memory
wait_http "http://127.0.0.1:$NMP/verify" "$LAST_PID" || die "express (MemoryStore) did not start: $(tail -5 "$W/peer-memory.log")"
for p in "$NRP" "$NMP"; do
    code="$(post_json "http://127.0.0.1:$p/login" "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
    [[ "$code" == 200 ]] || die "peer login on port $p answered $code"
    c="$(cookie_from "$W/h.txt" connect.sid)"
    code="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $c" "http://127.0.0.1:$p/verify")"
    [[ "$code" == 200 ]] || die "peer verify on port $p answered $code"
    if [[ "$p" == "$NRP" ]]; then R_COOKIE="$c"; else M_COOKIE="$c"; fi
done

# ---- 1-3: verify side by side ----
EP1="$(free_port)"
start_bg epoll-1 "$BENCH_BUILD/epoll_ceiling" -p "$EP1" -t 1
wait_http "http://127.0.0.1:$EP1/" "$LAST_PID" || die "epoll_ceiling -t 1 did not start"
CONTENDERS=(tessera express-redis express-memory epoll-t1)
URL[tessera]="$TESSERA_URL/v1/verify";            ENVS[tessera]="BENCH_COOKIE=$T_COOKIE"
URL[express-redis]="http://127.0.0.1:$NRP/verify"; ENVS[express-redis]="BENCH_COOKIE=$R_COOKIE"
URL[express-memory]="http://127.0.0.1:$NMP/verify"; ENVS[express-memory]="BENCH_COOKIE=$M_COOKIE"
URL[epoll-t1]="http://127.0.0.1:$EP1/";           ENVS[epoll-t1]="BENCH_LABEL=epoll"
if [[ "$NCPU" -gt 1 ]]; then
    EPN="$(free_port)"
    start_bg "epoll-$NCPU" "$BENCH_BUILD/epoll_ceiling" -p "$EPN" -t "$NCPU"
    wait_http "http://127.0.0.1:$EPN/" "$LAST_PID" || die "epoll_ceiling -t $NCPU did not start"
    CONTENDERS+=("epoll-t$NCPU")
    URL[epoll-t$NCPU]="http://127.0.0.1:$EPN/"; ENVS[epoll-t$NCPU]="BENCH_LABEL=epoll"
fi
note "1-3. GET verify with a session cookie: $ROUNDS interleaved rounds of wrk -t1 -c$CONNS -d${ROUND}s"
for c in "${CONTENDERS[@]}"; do warm "${URL[$c]}" "$CONNS" "${ENVS[$c]}"; done
for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${CONTENDERS[@]}"; do
        run_wrk "$c.$r" "${URL[$c]}" "$CONNS" "$ROUND" "${ENVS[$c]}"
    done
done
for c in "${CONTENDERS[@]}"; do aggregate "$c"; done
CEIL=epoll-t1
if [[ -n "${RPS[epoll-t$NCPU]:-}" ]] && lt "${RPS[epoll-t1]}" "${RPS[epoll-t$NCPU]}"; then
    CEIL="epoll-t$NCPU"
fi
# the peers and the ceiling are done: free their CPU and memory for the rest
for pid in "${PIDS[@]}"; do
    [[ "$pid" == "$TESSERA_PID" ]] || forget_pid "$pid"
done

# ---- 4-5: logins, and verify under a login flood ----
LOGIN_BODY="{\"username\":\"flood\",\"password\":\"$PASSWORD\"}"
note "4. logins/s: POST /v1/session/login, wrk -t1 -c$LOGIN_CONNS -d${LOGIN_SECS}s (Argon2id m=19 MiB t=2 p=1)"
run_wrk logins "$TESSERA_URL/v1/session/login" "$LOGIN_CONNS" "$LOGIN_SECS" BENCH_METHOD=POST BENCH_BODY="$LOGIN_BODY"

note "5. verify alone and during a login flood: $ROUNDS interleaved rounds of ${ROUND}s"
declare -A FLOOD_OK FLOOD_REFUSED FLOOD_US
flood() { # NAME CONNS ROUND: one verify run while a second wrk floods the login route
    local name="$1" conns="$2" r="$3" fpid line
    env BENCH_LABEL="login-$name.$r" BENCH_METHOD=POST BENCH_BODY="$LOGIN_BODY" \
        wrk -t1 -c"$conns" -d"$((ROUND + 1))s" --latency -s "$HERE/wrk.lua" \
        "$TESSERA_URL/v1/session/login" >"$W/wrk-login-$name.$r.txt" 2>&1 &
    fpid=$!
    PIDS+=("$fpid")
    sleep 0.5 # the hashing pool is saturated (and its queue filled) before verify starts
    run_wrk "$name.$r" "$TESSERA_URL/v1/verify" "$CONNS" "$ROUND" BENCH_COOKIE="$T_COOKIE"
    wait "$fpid" || true
    forget_pid "$fpid"
    line="$(grep '^RESULT ' "$W/wrk-login-$name.$r.txt" | tail -1 || true)"
    [[ -n "$line" ]] || die "no result from the login flood wrk ($name, round $r)"
    local req non dur
    req="$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")"
    non="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
    dur="$(sed -n 's/.* duration_us=\([0-9]*\).*/\1/p' <<<"$line")"
    FLOOD_OK[$name]=$(( ${FLOOD_OK[$name]:-0} + req - non ))
    FLOOD_REFUSED[$name]=$(( ${FLOOD_REFUSED[$name]:-0} + non ))
    FLOOD_US[$name]=$(( ${FLOOD_US[$name]:-0} + dur ))
    printf '   %-22s %s logins ok, %s refused in %.1f s\n' "login-$name.$r" "$((req - non))" "$non" \
        "$(awk -v d="$dur" 'BEGIN { print d / 1e6 }')" >&2
}
for ((r = 1; r <= ROUNDS; r++)); do
    run_wrk "quiet.$r" "$TESSERA_URL/v1/verify" "$CONNS" "$ROUND" BENCH_COOKIE="$T_COOKIE"
    flood flood "$LOGIN_CONNS" "$r"
    flood flood64 "$FLOOD_BIG_CONNS" "$r"
done
for c in quiet flood flood64; do aggregate "$c"; done
forget_pid "$TESSERA_PID"

# ---- 6: session look-up cost ----
note "6. session look-up cost: ${SIZES// /, } stored sessions"
declare -A STORED SIZE_URL
for n in $SIZES; do
    have="$(sqlite3 "$W/db/tessera.db" 'SELECT count(*) FROM sessions')"
    t0=$(date +%s.%N)
    node "$HERE/fill_sessions.js" --have "$have" --to "$n" --known "$SPREAD_COOKIES" $SLIDE_FLAG \
        --cookies "$W/cookies-$n.txt" --cookie-name "$COOKIE_NAME" | sqlite3 "$W/db/tessera.db" >/dev/null ||
        die "filling the store to $n sessions failed"
    STORED[$n]="$(sqlite3 "$W/db/tessera.db" 'SELECT count(*) FROM sessions')"
    mkdir -p "$W/db-$n"
    cp "$W/db/tessera.db" "$W/db-$n/tessera.db"
    note "   ${STORED[$n]} sessions stored (filled in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s; $(du -h "$W/db-$n/tessera.db" | cut -f1) on disk)"
done
# one tessera per size, side by side (an idle server costs nothing), so that the rounds
# can interleave the sizes
for n in $SIZES; do
    p="$(free_port)"
    start_tessera "tessera-$n" "$p" "$W/db-$n/tessera.db"
    SIZE_URL[$n]="http://127.0.0.1:$p/v1/verify"
    code="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $T_COOKIE" "${SIZE_URL[$n]}")"
    [[ "$code" == 200 ]] || die "/v1/verify at $n sessions answered $code"
    warm "${SIZE_URL[$n]}" "$CONNS" BENCH_COOKIE="$T_COOKIE"
done
for ((r = 1; r <= ROUNDS; r++)); do
    for n in $SIZES; do
        run_wrk "one-$n.$r" "${SIZE_URL[$n]}" "$CONNS" "$ROUND" BENCH_COOKIE="$T_COOKIE"
        if [[ -s "$W/cookies-$n.txt" ]]; then
            run_wrk "spread-$n.$r" "${SIZE_URL[$n]}" "$CONNS" "$ROUND" BENCH_COOKIE_FILE="$W/cookies-$n.txt"
        fi
    done
done
for n in $SIZES; do
    aggregate "one-$n"
    if [[ -s "$W/cookies-$n.txt" ]]; then aggregate "spread-$n"; fi
done
for pid in "${PIDS[@]}"; do forget_pid "$pid"; done

fi # ======== end of parts 1-6 ========

# ======== parts 7-9: token (bearer) mode ========
if want tokens; then

BEARER_MODES=(stateless revocation-list stateful)   # table order
START_ORDER=(revocation-list stateless stateful)     # the defaults' instance first
PEER_SECRET="$W/peer-hs256.secret"
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$PEER_SECRET")
TOKEN_USER=bench
REVOKE_USER=revoker
declare -A ACCESS TOKEN_URL TWIN_TOKEN
TOKEN_CONTENDERS=()  # all groups, in table order
REFRESH_SAMPLE="" COOKIE_SAMPLE=""
REVOKE_LINES=()

json_field() { # FILE KEY: a top-level string field of a JSON file ("" when absent)
    node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const v=j[process.argv[2]]; process.stdout.write(typeof v==="string"?v:"")' "$1" "$2"
}
jws_header_field() { # TOKEN KEY: a field of a compact JWS's protected header
    node -e 'const h=JSON.parse(Buffer.from(process.argv[1].split(".")[0],"base64url")); process.stdout.write(String(h[process.argv[2]] ?? ""))' "$1" "$2"
}
tamper() { # TOKEN: the same token with one character in the middle of its signature changed
    local t="$1" i c
    i=$((${#t} - 12)); c="${t:i:1}"
    if [[ "$c" == A ]]; then c=B; else c=A; fi
    printf '%s' "${t:0:i}$c${t:i+1}"
}
bearer_code() { # URL TOKEN: the status of GET URL with the bearer token
    curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H "Authorization: Bearer $2" "$1"
}
check_bearer() { # NAME URL TOKEN: 200 for the token, 401 for a tampered twin, else die
    local c1 c2
    c1="$(bearer_code "$2" "$3")"; c2="$(bearer_code "$2" "$(tamper "$3")")"
    [[ "$c1" == 200 && "$c2" == 401 ]] ||
        die "$1: the token answered $c1 (want 200), a tampered twin $c2 (want 401)"
}
password_grant() { # BASE USER: POST /v1/oauth/token (password grant); the answer in $W/grant.json
    local code
    code="$(curl -s -o "$W/grant.json" -w '%{http_code}' --max-time 10 \
        --data-urlencode grant_type=password --data-urlencode "username=$2" \
        --data-urlencode "password=$PASSWORD" "$1/v1/oauth/token")"
    [[ "$code" == 200 ]] || die "password grant on $1 answered $code: $(head -c 300 "$W/grant.json")"
}
label_of() { echo "t-$1-$2-$3"; } # ALG MODE on|off
CEIL_GROUP="$(awk '{print $1}' <<<"$TOKEN_ALGS")" # the group measured beside the ceiling and cookies
[[ " $TOKEN_ALGS " == *" HS256 "* ]] && CEIL_GROUP=HS256

for alg in $TOKEN_ALGS; do
    what=""
    case $alg in HS256 | ES256) what+=", the Node peers" ;; esac
    [[ "$alg" == "$CEIL_GROUP" ]] && what+=", the C epoll ceiling and cookie verify"
    note "7. bearer verify, $alg: 6 tessera instances (3 modes x cache on/off) on one store$what"
    mkdir -p "$W/tok-$alg"
    db="$W/tok-$alg/tessera.db"
    p0="$(free_port)"
    iss="http://127.0.0.1:$p0" # the first instance's public URL: the issuer of all six
    GROUP=() GPIDS=()
    for mode in "${START_ORDER[@]}"; do
        for cache in on off; do
            l="$(label_of "$alg" "$mode" "$cache")"
            if [[ ${#GPIDS[@]} == 0 ]]; then p="$p0"; else p="$(free_port)"; fi
            cenv=()
            [[ "$cache" == off ]] && cenv=(TESSERA_VERIFY_CACHE_ENTRIES=0)
            start_tessera "$l" "$p" "$db" TESSERA_TOKENS_ALG="$alg" TESSERA_TOKENS_ISSUER="$iss" \
                TESSERA_TOKENS_ACCESS_TTL=1h TESSERA_VERIFY_BEARER="$mode" "${cenv[@]}"
            GPIDS+=("$LAST_PID")
            TOKEN_URL[$l]="http://127.0.0.1:$p/v1/verify"
            if [[ ${#GPIDS[@]} == 1 ]]; then # the first instance made the keys: users and the token
                for u in "$TOKEN_USER" "$REVOKE_USER"; do
                    code="$(post_json "http://127.0.0.1:$p/v1/users" "{\"username\":\"$u\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
                    [[ "$code" == 201 ]] || die "signup of $u ($alg) answered $code: $(cat "$W/body.json")"
                done
                password_grant "http://127.0.0.1:$p" "$TOKEN_USER"
                ACCESS[$alg]="$(json_field "$W/grant.json" access_token)"
                [[ -n "${ACCESS[$alg]}" ]] || die "the $alg password grant gave no access_token"
                [[ "$(jws_header_field "${ACCESS[$alg]}" alg)" == "$alg" ]] ||
                    die "the access token is not $alg: $(jws_header_field "${ACCESS[$alg]}" alg)"
                [[ -n "$REFRESH_SAMPLE" ]] || REFRESH_SAMPLE="$(json_field "$W/grant.json" refresh_token)"
                FIRST_BASE="http://127.0.0.1:$p"
            fi
        done
    done
    for mode in "${BEARER_MODES[@]}"; do
        for cache in on off; do
            l="$(label_of "$alg" "$mode" "$cache")"
            check_bearer "$l" "${TOKEN_URL[$l]}" "${ACCESS[$alg]}"
            GROUP+=("$l"); URL[$l]="${TOKEN_URL[$l]}"; ENVS[$l]="AUTH=${ACCESS[$alg]}"
        done
    done

    # the Node peers: HS256 verifies an equivalent token (tessera keeps its secret),
    # ES256 tessera's own token with the public key from tessera's JWKS
    case "$alg" in
        HS256)
            TWIN_TOKEN[$alg]="$(printf '%s\n' "${ACCESS[$alg]}" |
                node "$HERE/peer_fastify_jose.js" --sign-like --secret-file "$PEER_SECRET")" ||
                die "could not sign the peers' HS256 token"
            peer_tok="${TWIN_TOKEN[$alg]}"
            keyargs=(--secret-file "$PEER_SECRET")
            ;;
        ES256)
            curl -s -f --max-time 5 -o "$W/jwks-$alg.json" "$FIRST_BASE/.well-known/jwks.json" ||
                die "GET /.well-known/jwks.json failed"
            peer_tok="${ACCESS[$alg]}"
            keyargs=(--jwks "$W/jwks-$alg.json")
            kid="$(jws_header_field "$peer_tok" kid)"
            ;;
        *) peer_tok="" ;;
    esac
    if [[ -n "$peer_tok" ]]; then
        peers=(fjwt:1 fjwt:2 fjose:1 fjose:2)
        [[ "$alg" == ES256 ]] && peers+=(fjwtc:2)
        for pw in "${peers[@]}"; do
            kind="${pw%%:*}" workers="${pw#*:}"
            l="$kind-$alg-$workers"
            pp="$(free_port)"
            extra=()
            case "$kind" in
                fjwt | fjwtc)
                    script=peer_fastify_jwt.js
                    [[ "$alg" == ES256 ]] && extra+=(--kid "$kid")
                    [[ "$kind" == fjwtc ]] && extra+=(--cache 1000)
                    ;;
                fjose) script=peer_fastify_jose.js ;;
            esac
            start_bg "$l" node "$HERE/$script" --alg "$alg" --port "$pp" --workers "$workers" \
                --iss "$iss" --aud tessera "${keyargs[@]}" "${extra[@]}"
            GPIDS+=("$LAST_PID")
            wait_http "http://127.0.0.1:$pp/v1/verify" "$LAST_PID" || die "$l did not start: $(tail -5 "$W/$l.log")"
            URL[$l]="http://127.0.0.1:$pp/v1/verify"; ENVS[$l]="AUTH=$peer_tok"
            check_bearer "$l" "${URL[$l]}" "$peer_tok"
            GROUP+=("$l")
        done
    fi

    if [[ "$alg" == "$CEIL_GROUP" ]]; then
        # the ceiling and the cookie path, in the same rounds as HS256
        code="$(post_json "$FIRST_BASE/v1/session/login" "{\"username\":\"$TOKEN_USER\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
        [[ "$code" == 200 ]] || die "cookie login ($alg store) answered $code: $(cat "$W/body.json")"
        COOKIE_SAMPLE="$(cookie_from "$W/h.txt" "$COOKIE_NAME")"
        [[ -n "$COOKIE_SAMPLE" ]] || die "login set no $COOKIE_NAME cookie"
        l=tok-cookie
        URL[$l]="${TOKEN_URL[$(label_of "$alg" revocation-list on)]}"; ENVS[$l]="BENCH_COOKIE=$COOKIE_SAMPLE"
        code="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE_SAMPLE" "${URL[$l]}")"
        [[ "$code" == 200 ]] || die "/v1/verify with the cookie answered $code"
        GROUP+=("$l")
        for t in 1 $([[ "$NCPU" -gt 1 ]] && echo "$NCPU"); do
            l="tok-epoll-t$t"
            pp="$(free_port)"
            start_bg "$l" "$BENCH_BUILD/epoll_ceiling" -p "$pp" -t "$t"
            GPIDS+=("$LAST_PID")
            wait_http "http://127.0.0.1:$pp/" "$LAST_PID" || die "epoll_ceiling -t $t did not start"
            URL[$l]="http://127.0.0.1:$pp/"; ENVS[$l]="BENCH_LABEL=epoll"
            GROUP+=("$l")
        done
    fi

    note "   ${#GROUP[@]} contenders: $ROUNDS interleaved rounds of wrk -t1 -c$CONNS -d${ROUND}s (${WARMUP}s warm-up each)"
    for c in "${GROUP[@]}"; do warm "${URL[$c]}" "$CONNS" "${ENVS[$c]}"; done
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${GROUP[@]}"; do
            run_wrk "$c.$r" "${URL[$c]}" "$CONNS" "$ROUND" "${ENVS[$c]}"
        done
    done
    for c in "${GROUP[@]}"; do aggregate "$c"; done
    TOKEN_CONTENDERS+=("${GROUP[@]}")

    if [[ "$alg" == ES256 ]]; then
        note "9. revocation delay on one instance (ES256; $REVOKE_N revocations per path)"
        # kind, mode, n, window: stateless has no revocation check: a short probe only
        for spec in "refresh revocation-list $REVOKE_N 2000" "access revocation-list $REVOKE_N 2000" \
            "cookie revocation-list $REVOKE_N 2000" "refresh stateful $REVOKE_N 2000" \
            "access stateful $REVOKE_N 2000" "refresh stateless 10 200"; do
            read -r kind mode n win <<<"$spec"
            l="$(label_of ES256 "$mode" on)"
            base="${TOKEN_URL[$l]%/v1/verify}"
            if line="$(timeout 300 node "$HERE/revocation_delay.js" --url "$base" --username "$REVOKE_USER" \
                --password "$PASSWORD" --kind "$kind" --n "$n" --window-ms "$win" --label "$mode/$kind" \
                2>"$W/revoke-$mode-$kind.log")"; then
                REVOKE_LINES+=("$(grep '^RESULT ' <<<"$line" | tail -1)")
                sed 's/^/   /' "$W/revoke-$mode-$kind.log" >&2
            else
                REVOKE_LINES+=("FAILED label=$mode/$kind why=$(tail -1 "$W/revoke-$mode-$kind.log" | tr ' ' '_')")
                echo "   revocation delay $mode/$kind could not be measured: $(tail -1 "$W/revoke-$mode-$kind.log")" >&2
            fi
        done
    fi
    forget_pids "${GPIDS[@]}"
done

# ---- 8: credential sizes ----
note "8. credential sizes"
{
    printf '{"cookie":"%s","refresh":"%s","tokens":{' "$COOKIE_SAMPLE" "$REFRESH_SAMPLE"
    sep=""
    for alg in $TOKEN_ALGS; do printf '%s"%s":"%s"' "$sep" "$alg" "${ACCESS[$alg]}"; sep=","; done
    printf '},"twins":{'
    if [[ -n "${TWIN_TOKEN[HS256]:-}" ]]; then printf '"HS256, the peers'"'"' equivalent token":"%s"' "${TWIN_TOKEN[HS256]}"; fi
    printf '}}\n'
} >"$W/credentials.json"
grep -q '^[A-Za-z0-9_.=",:{}'"'"' -]*$' "$W/credentials.json" || die "a credential has unexpected characters"
node "$HERE/token_sizes.js" "$W/credentials.json" >"$W/sizes.md" || die "token_sizes.js failed"
sed 's/^/   /' "$W/sizes.md" >&2

fi # ======== end of parts 7-9 ========

# ---- report ----
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%gM", n/1e6; else if (n >= 1e3) printf "%gk", n/1e3; else print n }'; }
per_s() { awk -v n="$1" -v us="$2" 'BEGIN { if (us > 0) printf "%.1f", n / (us / 1e6); else print 0 }'; }
pkg_version() { node -p 'require("'"$HERE"'/node_modules/'"$1"'/package.json").version'; }
invalid=""
for l in "${!RPS[@]}"; do
    case "$l" in logins* | *.[0-9]*) continue ;; esac
    if [[ "${NON2XX[$l]}" != 0 || "${ERRS[$l]}" != 0 ]]; then invalid+=" $l"; fi
done
invalid="$(tr ' ' '\n' <<<"$invalid" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ *$//')"

{
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $NCPU cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average before the run: $LOAD0."
    echo "tessera: \`$TESSERA_SRC_BIN\` (a copy taken at the start; server.threads = $NCPU, SQLite, log.level=warn); node $(node -v); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2). Parts run: $PARTS."
    echo "Each figure: the median of $ROUNDS interleaved round(s) of \`wrk -t1 -c$CONNS -d${ROUND}s --latency\` after ${WARMUP}s of warm-up per server."
} >"$W/report.md"

if want cookie; then
first="$(awk '{print $1}' <<<"$SIZES")"; last="$(awk '{print $NF}' <<<"$SIZES")"
{
    echo
    echo "Cookie peers: express $(pkg_version express), express-session $(pkg_version express-session), connect-redis $(pkg_version connect-redis), redis client $(pkg_version redis); $(redis-server --version | sed 's/ sha=.*//')."
    echo
    echo "**Cookie verify** (GET with one session cookie):"
    echo
    echo "| tool | req/s | p50 ms | p99 ms | tessera's req/s ÷ this | req/s of each round |"
    echo "|---|---:|---:|---:|---:|---|"
    for l in "${CONTENDERS[@]}"; do
        case "$l" in
            tessera) name="tessera \`/v1/verify\` (SQLite)" ;;
            express-redis) name="express + express-session + connect-redis" ;;
            express-memory) name="express + express-session (MemoryStore)" ;;
            epoll-t1) name="C epoll ceiling, 1 thread" ;;
            *) name="C epoll ceiling, $NCPU threads" ;;
        esac
        if [[ "$l" == "$CEIL" ]]; then name+=" (the ceiling)"; fi
        printf '| %s | %.0f | %s | %s | %s | %s |\n' "$name" "${RPS[$l]}" "$(ms "${P50[$l]}")" \
            "$(ms "${P99[$l]}")" "$(ratio "${RPS[tessera]}" "${RPS[$l]}")" "${ROUNDS_RPS[$l]}"
    done
    echo
    echo "**Logins and verify during a login flood** (Argon2id m=19 MiB t=2 p=1, tessera's defaults; one hashing thread):"
    echo
    echo "| run | req/s | p50 ms | p99 ms | p99 ÷ alone | logins/s |"
    echo "|---|---:|---:|---:|---:|---|"
    printf '| logins alone (wrk -c%s -d%ss) | %.1f | %s | %s | | %s ok, %s refused |\n' "$LOGIN_CONNS" "$LOGIN_SECS" \
        "${RPS[logins]}" "$(ms "${P50[logins]}")" "$(ms "${P99[logins]}")" \
        "$(per_s "$((REQS[logins] - NON2XX[logins]))" "$((LOGIN_SECS * 1000000))")" "${NON2XX[logins]}"
    printf '| verify alone | %.0f | %s | %s | 1.00 | |\n' "${RPS[quiet]}" "$(ms "${P50[quiet]}")" "$(ms "${P99[quiet]}")"
    for f in flood flood64; do
        c=$LOGIN_CONNS; if [[ $f == flood64 ]]; then c=$FLOOD_BIG_CONNS; fi
        printf '| verify during a login flood of %s connections | %.0f | %s | %s | %s | %s/s ok, %s/s refused (503) |\n' \
            "$c" "${RPS[$f]}" "$(ms "${P50[$f]}")" "$(ms "${P99[$f]}")" "$(ratio "${P99[$f]}" "${P99[quiet]}")" \
            "$(per_s "${FLOOD_OK[$f]}" "${FLOOD_US[$f]}")" "$(per_s "${FLOOD_REFUSED[$f]}" "${FLOOD_US[$f]}" | cut -d. -f1)"
    done
    echo
    echo "**Session look-up cost** (verify with N sessions stored in SQLite; one tessera per size, side by side; spread cookies: $SPREAD_KIND):"
    echo
    echo "| sessions stored | one cookie req/s | p50 ms | p99 ms | ${SPREAD_COOKIES} cookies spread req/s | p50 ms | p99 ms |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    for n in $SIZES; do
        if [[ -n "${RPS[spread-$n]:-}" ]]; then
            sp="$(printf '%.0f | %s | %s' "${RPS[spread-$n]}" "$(ms "${P50[spread-$n]}")" "$(ms "${P99[spread-$n]}")")"
        else sp="- | - | -"; fi
        printf '| %s (%s rows) | %.0f | %s | %s | %s |\n' "$(human "$n")" "${STORED[$n]}" "${RPS[one-$n]}" \
            "$(ms "${P50[one-$n]}")" "$(ms "${P99[one-$n]}")" "$sp"
    done
    echo
    echo "**SPEC §6 targets:**"
    echo
    vr="$(ratio "${RPS[tessera]}" "${RPS[express-redis]}")"
    echo "- cookie verify ≥ 10× express-session + connect-redis in req/s: ${vr}× → $(verdict le 10 "$vr")"
    echo "- cookie verify p99 lower than express-session + connect-redis: $(ms "${P99[tessera]}") ms vs $(ms "${P99[express-redis]}") ms → $(verdict lt "${P99[tessera]}" "${P99[express-redis]}")"
    echo "- (information) against express-session with MemoryStore: $(ratio "${RPS[tessera]}" "${RPS[express-memory]}")× the req/s, p99 $(ms "${P99[tessera]}") vs $(ms "${P99[express-memory]}") ms"
    echo "- (information) tessera's cookie verify at $(ratio "${RPS[tessera]}" "${RPS[$CEIL]}") of the C epoll ceiling's req/s"
    fr="$(ratio "${P99[flood]}" "${P99[quiet]}")"
    echo "- a login flood raises verify p99 ≤ 2×: ${fr}× ($(ms "${P99[quiet]}") → $(ms "${P99[flood]}") ms) → $(verdict le "$fr" 2)"
    fr64="$(ratio "${P99[flood64]}" "${P99[quiet]}")"
    echo "- (information) the same with a flood of $FLOOD_BIG_CONNS connections that overflows the hashing queue: ${fr64}× ($(ms "${P99[flood64]}") ms) → $(verdict le "$fr64" 2)"
    if [[ "$first" != "$last" ]]; then
        sr="$(ratio "${RPS[one-$first]}" "${RPS[one-$last]}")"
        echo "- $(human "$last") sessions within 1.25× of $(human "$first") (one cookie; req/s at $(human "$first") ÷ req/s at $(human "$last")): ${sr}× → $(verdict le "$sr" 1.25)"
        if [[ -n "${RPS[spread-$first]:-}" && -n "${RPS[spread-$last]:-}" ]]; then
            ss="$(ratio "${RPS[spread-$first]}" "${RPS[spread-$last]}")"
            echo "- (information) the same with ${SPREAD_COOKIES} cookies spread through the store: ${ss}× → $(verdict le "$ss" 1.25)"
        fi
    fi
} >>"$W/report.md"
fi # cookie report

if want tokens; then
tok_name() { # LABEL: a contender's name in the tables
    local l="$1" a m c w
    case "$l" in
        t-*)
            a="${l#t-}"; a="${a%%-*}"; c="${l##*-}"; m="${l#t-$a-}"; m="${m%-*}"
            echo "tessera $a, $m, cache $c" ;;
        fjwt-* | fjwtc-* | fjose-*)
            a="$(cut -d- -f2 <<<"$l")"; w="${l##*-}"
            case "$l" in fjose-*) echo -n "fastify + jose $a" ;; *) echo -n "fastify + @fastify/jwt $a" ;; esac
            if [[ "$w" == 1 ]]; then echo -n ", 1 process"; else echo -n ", $w-worker cluster"; fi
            case "$l" in fjwtc-*) echo ", fast-jwt's cache on (information)" ;; *) echo ;; esac ;;
        tok-cookie) echo "tessera cookie verify (SQLite), same rounds" ;;
        tok-epoll-t1) echo "C epoll ceiling, 1 thread" ;;
        tok-epoll-t*) echo "C epoll ceiling, ${l#tok-epoll-t} threads" ;;
        *) echo "$l" ;;
    esac
}
TCEIL=""
for l in "${TOKEN_CONTENDERS[@]}"; do
    case "$l" in tok-epoll-*) if [[ -z "$TCEIL" ]] || lt "${RPS[$TCEIL]}" "${RPS[$l]}"; then TCEIL="$l"; fi ;; esac
done
PEER_MIN_P99="" PEER_MIN_L="" # the peers as they ship: fast-jwt's cache row is information only
for l in "${TOKEN_CONTENDERS[@]}"; do
    case "$l" in fjwt-* | fjose-*)
        if [[ -z "$PEER_MIN_P99" ]] || lt "${P99[$l]}" "$PEER_MIN_P99"; then PEER_MIN_P99="${P99[$l]}"; PEER_MIN_L="$l"; fi ;;
    esac
done
cell() { # LABEL: "req/s (p50 / p99 ms)" or "-"
    if [[ -n "${RPS[$1]:-}" ]]; then printf '%.0f (%s / %s)' "${RPS[$1]}" "$(ms "${P50[$1]}")" "$(ms "${P99[$1]}")"; else echo "-"; fi
}
has_peer() { [[ -n "${RPS[fjwt-$1-2]:-}" ]]; }
{
    echo
    echo "Token peers: fastify $(pkg_version fastify), @fastify/jwt $(pkg_version @fastify/jwt) (fast-jwt $(pkg_version fast-jwt)), jose $(pkg_version jose); tessera with TESSERA_TOKENS_ACCESS_TTL=1h, one instance per (mode, cache) pair, the six of an algorithm sharing one SQLite store; cache on = verify.cache_entries at its default (65536), off = 0."
    echo
    echo "**Bearer verify, the seeds' three designs** (GET /v1/verify with \`Authorization: Bearer\`; each cell: req/s (p50 / p99 ms)):"
    echo
    hdr="| verify.bearer | verified-token cache |"; sep="|---|---|"
    for a in $TOKEN_ALGS; do hdr+=" $a |"; sep+="---:|"; done
    echo "$hdr"; echo "$sep"
    for m in "${BEARER_MODES[@]}"; do
        for c in on off; do
            row="| $m | $c |"
            for a in $TOKEN_ALGS; do row+=" $(cell "$(label_of "$a" "$m" "$c")") |"; done
            echo "$row"
        done
    done
    for a in HS256 ES256; do
        has_peer "$a" || continue
        row="| fastify + @fastify/jwt, $a | 1 process / 2-worker cluster |"
        for b in $TOKEN_ALGS; do
            if [[ "$b" == "$a" ]]; then row+=" $(cell "fjwt-$a-1") / $(cell "fjwt-$a-2") |"; else row+=" |"; fi
        done
        echo "$row"
        row="| fastify + jose, $a | 1 process / 2-worker cluster |"
        for b in $TOKEN_ALGS; do
            if [[ "$b" == "$a" ]]; then row+=" $(cell "fjose-$a-1") / $(cell "fjose-$a-2") |"; else row+=" |"; fi
        done
        echo "$row"
    done
    echo
    echo "**Side by side** (every contender of part 7; ÷ ceiling and ÷ the fastify + @fastify/jwt cluster of the same algorithm are this row's req/s over theirs):"
    echo
    echo "| contender | req/s | p50 ms | p99 ms | ÷ ceiling | ÷ fastify + @fastify/jwt cluster | req/s of each round |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for l in "${TOKEN_CONTENDERS[@]}"; do
        a=""
        case "$l" in t-* | fjwt-* | fjwtc-* | fjose-*) a="$(cut -d- -f2 <<<"$l")" ;; esac
        vs="-"
        if [[ -n "$a" ]] && has_peer "$a"; then vs="$(ratio "${RPS[$l]}" "${RPS[fjwt-$a-2]}")"; fi
        vc="-"; [[ -n "$TCEIL" ]] && vc="$(ratio "${RPS[$l]}" "${RPS[$TCEIL]}")"
        name="$(tok_name "$l")"; [[ "$l" == "$TCEIL" ]] && name+=" (the ceiling)"
        printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$name" "${RPS[$l]}" "$(ms "${P50[$l]}")" \
            "$(ms "${P99[$l]}")" "$vc" "$vs" "${ROUNDS_RPS[$l]}"
    done
    echo
    echo "**Credential sizes** (bytes; from this run's real answers; \"sent per request\" is the whole header line with its CRLF):"
    echo
    cat "$W/sizes.md"
    if [[ ${#REVOKE_LINES[@]} -gt 0 ]]; then
    echo
    echo "**Revocation delay on one instance** (ES256, cache on; from the revoke or logout answer to the first /v1/verify answering 401 with the old access token, measured by the client; it includes that one verify round trip):"
    echo
    echo "| verify.bearer | revoked by | revocations | refused | never refused (window) | stale 200s after the revoke answer | delay p50 ms | p99 ms | max ms | verify RTT p50 / p99 ms |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for line in "${REVOKE_LINES[@]}"; do
        lab="$(sed -n 's/.*label=\([^ ]*\).*/\1/p' <<<"$line")"
        m="${lab%%/*}"; k="${lab#*/}"
        case "$k" in
            refresh) how="POST /v1/oauth/revoke of the refresh token (ends the session: sid)" ;;
            access) how="POST /v1/oauth/revoke of the access token (jti; tokens from refresh grants)" ;;
            cookie) how="POST /v1/session/logout (hybrid: token from /v1/session/token)" ;;
            *) how="$k" ;;
        esac
        if [[ "$line" == FAILED* ]]; then
            echo "| $m | $how | not measured: $(sed -n 's/.*why=//p' <<<"$line" | tr '_' ' ') | | | | | | | |"
            continue
        fi
        f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
        win=2000; [[ "$m" == stateless ]] && win=200
        echo "| $m | $how | $(f n) | $(f refused) | $(f never) ($win ms) | $(f stale) | $(f p50_ms) | $(f p99_ms) | $(f max_ms) | $(f rtt_p50_ms) / $(f rtt_p99_ms) |"
    done
    fi
    echo
    echo "**SPEC §6 bearer targets, by design** (each tessera row against the fastify + @fastify/jwt 2-worker cluster of the same algorithm and the ceiling; p99 against the lowest p99 of any Node peer at its defaults in part 7: $(ms "${PEER_MIN_P99:-0}") ms, $(tok_name "${PEER_MIN_L:-none}")):"
    echo
    echo "| verify.bearer | cache | HS256 ÷ ceiling (≥ 0.5) | HS256 ÷ peer (≥ 2) | ES256 ÷ peer (≥ 1.5 without cache, ≥ 5 with) | HS256 / ES256 p99 below every peer |"
    echo "|---|---|---|---|---|---|"
    for m in "${BEARER_MODES[@]}"; do
        for c in on off; do
            h="$(label_of HS256 "$m" "$c")"; e="$(label_of ES256 "$m" "$c")"
            c1="-" c2="-" c3="-" c4="-"
            if [[ -n "${RPS[$h]:-}" && -n "$TCEIL" ]]; then
                x="$(ratio "${RPS[$h]}" "${RPS[$TCEIL]}")"; c1="$x → $(verdict le 0.5 "$x")"
            fi
            if [[ -n "${RPS[$h]:-}" ]] && has_peer HS256; then
                x="$(ratio "${RPS[$h]}" "${RPS[fjwt-HS256-2]}")"; c2="$x → $(verdict le 2 "$x")"
            fi
            if [[ -n "${RPS[$e]:-}" ]] && has_peer ES256; then
                want_x=1.5; [[ "$c" == on ]] && want_x=5
                x="$(ratio "${RPS[$e]}" "${RPS[fjwt-ES256-2]}")"; c3="$x (≥ $want_x) → $(verdict le "$want_x" "$x")"
            fi
            if [[ -n "$PEER_MIN_P99" && -n "${RPS[$h]:-}${RPS[$e]:-}" ]]; then
                ok=1; txt=""
                for l in "$h" "$e"; do
                    [[ -n "${RPS[$l]:-}" ]] || continue
                    txt+="${txt:+ / }$(ms "${P99[$l]}")"
                    lt "${P99[$l]}" "$PEER_MIN_P99" || ok=0
                done
                c4="$txt ms → $(if [[ $ok == 1 ]]; then echo PASS; else echo MISS; fi)"
            fi
            echo "| $m | $c | $c1 | $c2 | $c3 | $c4 |"
        done
    done
    echo
    echo "The defaults (verify.bearer = revocation-list, cache on) are SPEC's headline row; the other rows are for the seeds' comparison."
} >>"$W/report.md"
fi # token report

if [[ -n "$invalid" ]]; then
    {
        echo
        echo "**Warning:** non-2xx answers or socket errors in: $invalid. Those figures do not measure what they claim (rerun with KEEP=1 and read the wrk outputs)."
    } >>"$W/report.md"
fi

cp "$W/report.md" "$BENCH_BUILD/http-results.md"
echo
cat "$W/report.md"
echo
echo "(written to $BENCH_BUILD/http-results.md)"
