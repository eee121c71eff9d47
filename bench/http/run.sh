#!/usr/bin/env bash
# bench/http/run.sh: tessera's HTTP benchmark for session (cookie) mode, SPEC §6.
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
# Then a table, the SPEC §6 targets as PASS/MISS (a bench reports, it never fails on
# a MISS: the exit status is 0 unless the bench itself could not run) and a markdown
# copy of the results in $BENCH_BUILD/http-results.md.
#
# Every process it needs it starts itself, on free ports, and stops by PID at the end
# (also on error or Ctrl-C). Everything is bounded: about 4-5 minutes in all.
#
# Each verify figure is the median of ROUNDS rounds, the contenders taking turns round
# by round, so that drift on a shared machine hits them all alike.
#
# Environment:
#   TESSERA_BIN   tessera binary (default: build-bench/tessera, else build/tessera)
#   BENCH_BUILD   where epoll_ceiling is compiled and results are written (build-bench)
#   ROUNDS        interleaved rounds per figure (3)   ROUND   seconds per round (5)
#   WARMUP        seconds of warm-up per server (3)   LOGIN_SECS  the logins/s run (6)
#   SIZES         stored-session counts ("1000 100000 1000000")
#   SLIDES=1      the 1000 spread cookies' sessions get their once-a-minute idle slide
#                 (an UPDATE each) during the run, instead of look-ups only
#   QUICK=1       smoke run: 1 round of 2 s, 1 s warm-up, SIZES="1000 10000"
#   KEEP=1        keep the scratch directory (logs, databases, wrk outputs)
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
    SIZES="${SIZES:-1000 10000}"
fi
ROUNDS="${ROUNDS:-3}"
ROUND="${ROUND:-5}"
WARMUP="${WARMUP:-3}"
LOGIN_SECS="${LOGIN_SECS:-6}"
SIZES="${SIZES:-1000 100000 1000000}"
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
note() { echo "== $*" >&2; }

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
run_wrk() { # LABEL URL CONNS SECONDS [ENV=VALUE...]: one measured wrk run
    local label="$1" url="$2" conns="$3" secs="$4"; shift 4
    local line
    env BENCH_LABEL="$label" "$@" \
        wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$HERE/wrk.lua" "$url" >"$W/wrk-$label.txt" 2>&1 ||
        die "wrk failed for $label: $(tail -3 "$W/wrk-$label.txt")"
    line="$(grep '^RESULT ' "$W/wrk-$label.txt" | tail -1)"
    [[ -n "$line" ]] || die "no result from wrk for $label"
    RPS[$label]="$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")"
    P50[$label]="$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")"
    P99[$label]="$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")"
    NON2XX[$label]="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
    REQS[$label]="$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")"
    ERRS[$label]="$(awk '{for(i=1;i<=NF;i++) if ($i ~ /^(connect|read|write|timeout)=/) {split($i,a,"="); s+=a[2]}} END {print s+0}' <<<"$line")"
    printf '   %-22s %10.0f req/s  p50 %8.2f ms  p99 %8.2f ms  non-2xx %s  socket errors %s\n' \
        "$label" "${RPS[$label]}" "$(ms "${P50[$label]}")" "$(ms "${P99[$label]}")" \
        "${NON2XX[$label]}" "${ERRS[$label]}" >&2
}
warm() { # URL CONNS [ENV=VALUE...]: an unrecorded run of WARMUP seconds
    local url="$1" conns="$2"; shift 2
    env BENCH_LABEL=warmup "$@" wrk -t1 -c"$conns" -d"${WARMUP}s" -s "$HERE/wrk.lua" "$url" >/dev/null 2>&1 || true
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
cc -O2 -Wall -Wextra -pthread -o "$BENCH_BUILD/epoll_ceiling" bench/epoll_ceiling.c ||
    die "cannot compile bench/epoll_ceiling.c"
if [[ ! -f "$HERE/node_modules/.package-lock.json" || "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
    note "npm ci in bench/http (express, express-session, connect-redis, redis)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >"$W/npm.log" 2>&1) ||
        die "npm ci failed: $(tail -5 "$W/npm.log")"
fi

start_tessera() { # NAME PORT DB: tessera serve on 127.0.0.1:PORT with SQLite at DB
    local name="$1" port="$2" db="$3"
    start_bg "$name" env TESSERA_SERVER_LISTEN="127.0.0.1:$port" \
        TESSERA_STORE_URL="sqlite:$db" TESSERA_ADMIN_KEY="$ADMIN_KEY" \
        TESSERA_LOG_LEVEL=warn "$TESSERA_BIN" serve
    wait_http "http://127.0.0.1:$port/healthz" "$LAST_PID" ||
        die "tessera did not start: $(tail -5 "$W/$name.log")"
}
TP="$(free_port)"
TESSERA_URL="http://127.0.0.1:$TP"
mkdir -p "$W/db"
start_tessera tessera "$TP" "$W/db/tessera.db"
TESSERA_PID=$LAST_PID

post_json() { # URL JSON HEADERS-FILE: prints the status code
    curl -s -o "$W/body.json" -D "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data "$2" "$1"
}
cookie_from() { # HEADERS-FILE NAME: the value of Set-Cookie NAME
    sed -n "s/^[Ss]et-[Cc]ookie: *\($2=[^;]*\).*/\1/p" "$1" | tr -d '\r' | tail -1
}

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
EP="$(free_port)"

# ---- 1-3: verify side by side ----
EP1="$(free_port)"
start_bg epoll-1 "$BENCH_BUILD/epoll_ceiling" -p "$EP1" -t 1
wait_http "http://127.0.0.1:$EP1/" "$LAST_PID" || die "epoll_ceiling -t 1 did not start"
CONTENDERS=(tessera express-redis express-memory epoll-t1)
declare -A URL ENVS
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

# ---- report ----
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%gM", n/1e6; else if (n >= 1e3) printf "%gk", n/1e3; else print n }'; }
per_s() { awk -v n="$1" -v us="$2" 'BEGIN { if (us > 0) printf "%.1f", n / (us / 1e6); else print 0 }'; }
invalid=""
for l in "${!RPS[@]}"; do
    case "$l" in logins* | *.[0-9]*) continue ;; esac
    if [[ "${NON2XX[$l]}" != 0 || "${ERRS[$l]}" != 0 ]]; then invalid+=" $l"; fi
done
invalid="$(tr ' ' '\n' <<<"$invalid" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ *$//')"
first="$(awk '{print $1}' <<<"$SIZES")"; last="$(awk '{print $NF}' <<<"$SIZES")"

{
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $NCPU cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average before the run: $LOAD0."
    echo "tessera: \`$TESSERA_BIN\` (server.threads = $NCPU, SQLite, log.level=warn); node $(node -v), express $(node -p 'require("'"$HERE"'/node_modules/express/package.json").version'), express-session $(node -p 'require("'"$HERE"'/node_modules/express-session/package.json").version'), connect-redis $(node -p 'require("'"$HERE"'/node_modules/connect-redis/package.json").version'), redis client $(node -p 'require("'"$HERE"'/node_modules/redis/package.json").version'); $(redis-server --version | sed 's/ sha=.*//'); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
    echo "Each figure: the median of $ROUNDS interleaved round(s) of \`wrk -t1 -c$CONNS -d${ROUND}s --latency\` after ${WARMUP}s of warm-up per server."
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
    if [[ -n "$invalid" ]]; then
        echo
        echo "**Warning:** non-2xx answers or socket errors in: $invalid. Those figures do not measure what they claim (rerun with KEEP=1 and read the wrk outputs)."
    fi
} >"$W/report.md"

cp "$W/report.md" "$BENCH_BUILD/http-results.md"
echo
cat "$W/report.md"
echo
echo "(written to $BENCH_BUILD/http-results.md)"
