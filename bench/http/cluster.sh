#!/usr/bin/env bash
# bench/http/cluster.sh: tessera scaled out (issue 5): PostgreSQL + Redis beside SQLite,
# one run, on loopback. `make bench` runs it after run.sh.
#
# Three parts (PARTS="rates revoke sizes" by default):
#   rates   GET /v1/verify with a session cookie, with an ES256 bearer token in
#           verify.bearer = revocation-list and in stateful, and POST /v1/session/login
#           (Argon2id at tessera's defaults, as run.sh), per second, for four set-ups:
#             sqlite    one instance on SQLite, cache.url = memory (run.sh's set-up);
#             pg-redis  one instance on PostgreSQL + Redis (a second one idles);
#             pg-redis x2  two instances on PostgreSQL + Redis, wrk split across them:
#                       two wrk at once, one per instance, half the connections each,
#                       req/s summed, p50/p99 the higher of the two;
#             pg-memory one instance on PostgreSQL, cache.url = memory (no Redis: every
#                       cookie or stateful look-up is a PostgreSQL query), to show what
#                       the Redis session cache buys.
#           Each verify figure is the median of ROUNDS interleaved rounds of
#           wrk -t1 -c50 -dROUND (logins: -c16 for LOGIN_SECS, after the verify rounds),
#           after WARMUP seconds of warm-up per contender. The Redis session cache's hits
#           and misses are read from /metrics.
#   revoke  revocation delay across instances: revoke on instance A, then poll
#           GET /v1/verify on instance B with the old credential until 401
#           (revocation_delay.js --verify-url), REVOKE_N revocations per kind:
#           POST /v1/oauth/revoke of the refresh token (sid) and of the access token
#           (jti), POST /v1/session/logout of a cookie session with its hybrid access
#           token, and the same logout with the cookie itself verified on B; with
#           cache.url = redis (the pub/sub feed; SPEC target p99 < 50 ms) and, as the
#           baseline, cache.url = memory (B learns from the store's revocation log,
#           read every 100 ms; a random 0-100 ms pause before each revoke keeps the
#           revokes out of step with those reads). verify.bearer = revocation-list (the
#           default).
#   sizes   session look-up cost: verify with a cookie at SIZES stored sessions on
#           PostgreSQL (rows written straight into it by cluster_fill_pg.sql, one
#           INSERT ... SELECT FROM generate_series; fill time reported), with the one
#           real cookie (from a login through the API) and with 1000 cookies spread
#           through the store, each with the Redis session cache (hits) and with
#           cache.url = memory (every look-up a PostgreSQL query). One copy of the
#           database per size (CREATE DATABASE ... TEMPLATE), one instance per size and
#           cache, rounds interleaved across all of them.
# Then tables, the revocation target as PASS/MISS (a bench reports, it never fails on a
# MISS: the exit status is 0 unless the bench itself could not run), and a markdown copy
# of the results in $BENCH_BUILD/cluster-results.md.
#
# PostgreSQL 15 and redis-server are throw-away servers on free loopback ports, started by
# tests/support/services.py (the script re-runs itself under it; PostgreSQL as `nobody`
# when run as root, in a temporary folder, fsync on, shared_buffers 128 MB) and stopped
# by it at the end. Everything else (tessera instances, wrk, node) is started here on free
# ports and stopped by its PID at the end, also on error or Ctrl-C. One load generator at
# a time (the x2 rows' two wrk are one load, split). Bounded: about 11 minutes in all on
# the 2-core build machine (rates 5 min, revoke 2 min, sizes 4 min 20 s of which the
# 1 M-row fill takes 17-35 s); QUICK=1 about 3 minutes.
#
# Environment (as run.sh):
#   TESSERA_BIN   tessera binary (default: build-bench/tessera, else build/tessera)
#   BENCH_BUILD   where results are written (build-bench)
#   PARTS         "rates revoke sizes" (default) or any of them
#   ROUNDS        interleaved rounds per figure (3)   ROUND   seconds per round (5)
#   WARMUP        seconds of warm-up per contender (3) LOGIN_SECS  seconds per login round (4)
#   SIZES         stored-session counts ("1000 100000 1000000")
#   REVOKE_N      revocations per kind and set-up (200)
#   QUICK=1       smoke run: 1 round of 2 s, 1 s warm-up, SIZES="1000 10000", REVOKE_N=20
#   KEEP=1        keep the scratch directory (logs, wrk outputs, cookie files; the
#                 PostgreSQL and Redis folders are services.py's and always removed)
#   ALLOW_SANITIZED=1  run even when TESSERA_BIN is an ASan/UBSan/TSan build
#   CLUSTER_STORE=sqlite  SQLite files in place of PostgreSQL (a shared file per
#                 deployment, fill_sessions.js for the sizes): for checking the script
#                 where the PostgreSQL backend is not built; its figures are not the
#                 PostgreSQL ones and the report says so.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
if [[ -n "${TESSERA_BIN:-}" && "$TESSERA_BIN" != /* && -e "$TESSERA_BIN" ]]; then
    TESSERA_BIN="$PWD/$TESSERA_BIN" # relative to where it was invoked
fi
if [[ -n "${BENCH_BUILD:-}" && "$BENCH_BUILD" != /* ]]; then
    BENCH_BUILD="$PWD/$BENCH_BUILD"
fi
cd "$ROOT"

die() { echo "bench/http/cluster: $*" >&2; exit 1; }
note() { echo "== [$(date -u +%H:%M:%S)] $*" >&2; }

BENCH_BUILD="${BENCH_BUILD:-build-bench}"
CLUSTER_STORE="${CLUSTER_STORE:-pg}"
[[ "$CLUSTER_STORE" == pg || "$CLUSTER_STORE" == sqlite ]] || die "CLUSTER_STORE must be pg or sqlite"
if [[ -z "${TESSERA_BIN:-}" ]]; then
    if [[ -x "$BENCH_BUILD/tessera" ]]; then TESSERA_BIN="$BENCH_BUILD/tessera"
    else TESSERA_BIN="build/tessera"; fi
fi
TESSERA_BIN="$(realpath -m "$TESSERA_BIN")"
[[ -x "$TESSERA_BIN" ]] || die "no tessera binary at $TESSERA_BIN (make build, or set TESSERA_BIN)"
if grep -qa -e __asan_init -e __ubsan_handle -e __tsan_init "$TESSERA_BIN" && [[ "${ALLOW_SANITIZED:-0}" != 1 ]]; then
    die "$TESSERA_BIN is a sanitizer build: its figures would mean nothing (reconfigure with -DTSR_SANITIZE=OFF; ALLOW_SANITIZED=1 runs it anyway)"
fi
tools=(wrk node curl redis-server redis-cli python3 awk)
if [[ "$CLUSTER_STORE" == pg ]]; then tools+=(psql); else tools+=(sqlite3); fi
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || die "$tool is missing (needs: ${tools[*]})"
done

if [[ "${QUICK:-0}" == 1 ]]; then
    ROUNDS="${ROUNDS:-1}"; ROUND="${ROUND:-2}"; WARMUP="${WARMUP:-1}"; LOGIN_SECS="${LOGIN_SECS:-2}"
    SIZES="${SIZES:-1000 10000}"; REVOKE_N="${REVOKE_N:-20}"
fi
ROUNDS="${ROUNDS:-3}"
ROUND="${ROUND:-5}"
WARMUP="${WARMUP:-3}"
LOGIN_SECS="${LOGIN_SECS:-4}"
SIZES="${SIZES:-1000 100000 1000000}"
REVOKE_N="${REVOKE_N:-200}"
PARTS="${PARTS:-rates revoke sizes}"
want() { [[ " $PARTS " == *" $1 "* ]]; }
want rates || want revoke || want sizes || die "PARTS must name rates, revoke and/or sizes (got: $PARTS)"
nsizes=0
for n in $SIZES; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "SIZES: $n is not a positive count"
    nsizes=$((nsizes + 1))
done
[[ $nsizes -le 15 ]] || die "SIZES: at most 15 sizes (one Redis database each)"

# ---- PostgreSQL and Redis: re-run under tests/support/services.py, which starts them on
# free loopback ports, exports TSR_TEST_PG_URL / TSR_TEST_REDIS_URL and stops them after ----
if [[ "${TSR_CLUSTER_BENCH_INNER:-}" != 1 ]]; then
    svc=(--redis)
    [[ "$CLUSTER_STORE" == pg ]] && svc+=(--pg)
    export TESSERA_BIN BENCH_BUILD
    TSR_CLUSTER_BENCH_INNER=1 exec python3 "$ROOT/tests/support/services.py" "${svc[@]}" -- "$HERE/cluster.sh"
fi
[[ -n "${TSR_TEST_REDIS_URL:-}" ]] || die "services.py exported no TSR_TEST_REDIS_URL"
REDIS_BASE="${TSR_TEST_REDIS_URL%/*}" # redis://127.0.0.1:PORT
REDIS_PORT="${REDIS_BASE##*:}"
if [[ "$CLUSTER_STORE" == pg ]]; then
    [[ -n "${TSR_TEST_PG_URL:-}" ]] || die "services.py exported no TSR_TEST_PG_URL"
    PG_BASE="${TSR_TEST_PG_URL%/*}" # postgresql://tessera@127.0.0.1:PORT
fi

NCPU="$(nproc)"
CONNS=50            # verify runs: wrk -t1 -c50 (SPEC §6), split 25 + 25 for the x2 rows
LOGIN_CONNS=16      # logins: as run.sh (half the hashing queue, none refused)
SPREAD_COOKIES=1000
REVOKE_JITTER_MS=100 # cache.url=memory: a random 0-100 ms pause before each revoke (no phase lock on the 100 ms sync)
REVOKE_WINDOW_MS=2000
COOKIE_NAME="__Host-tessera"
ADMIN_KEY="bench-admin-key-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PASSWORD="bench-password-0123"
if [[ "$CLUSTER_STORE" == pg ]]; then STORE_NAME="PostgreSQL"; else STORE_NAME="SQLite (CLUSTER_STORE=sqlite)"; fi

# ---- processes: every one started here is recorded and stopped by its PID ----
PIDS=()
W="$(mktemp -d /tmp/tessera-bench-cluster.XXXXXX)"

stop_pid() { # PID: TERM, up to 10 s, then KILL
    local pid="$1" i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "bench/http/cluster: PID $pid ignored SIGTERM for 10 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "bench/http/cluster: scratch kept in $W" >&2
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
declare -A RPS P50 P99 NON2XX REQS ERRS OKPS ROUNDS_RPS
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
WRK_TIMEOUT=2 # wrk's default; the login runs set 10 (an answer after 2 s would count as a socket error)
wrk_bg() { # LABEL URL CONNS SECONDS [ENV=VALUE | AUTH=TOKEN...]: one wrk in the background; sets LAST_PID
    local label="$1" url="$2" conns="$3" secs="$4"; shift 4
    wrk_args "$@"
    env BENCH_LABEL="$label" "${WRK_ENV[@]}" \
        wrk -t1 -c"$conns" -d"${secs}s" --timeout "${WRK_TIMEOUT}s" --latency "${WRK_HDR[@]}" \
        -s "$HERE/wrk.lua" "$url" >"$W/wrk-$label.txt" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
wrk_wait() { # PID LABEL: waits for a wrk_bg run, dies when it failed
    local pid="$1" label="$2" st=0
    wait "$pid" || st=$?
    forget_pids "$pid"
    [[ $st == 0 ]] || die "wrk failed for $label: $(tail -3 "$W/wrk-$label.txt")"
}
wrk_parse() { # LABEL: the figures of $W/wrk-LABEL.txt
    local label="$1" line
    line="$(grep '^RESULT ' "$W/wrk-$label.txt" | tail -1 || true)"
    [[ -n "$line" ]] || die "no result from wrk for $label"
    RPS[$label]="$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")"
    P50[$label]="$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")"
    P99[$label]="$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")"
    NON2XX[$label]="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
    REQS[$label]="$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")"
    ERRS[$label]="$(awk '{for(i=1;i<=NF;i++) if ($i ~ /^(connect|read|write|timeout)=/) {split($i,a,"="); s+=a[2]}} END {print s+0}' <<<"$line")"
    OKPS[$label]="$(awk -v r="${REQS[$label]}" -v n="${NON2XX[$label]}" -v d="$(sed -n 's/.* duration_us=\([0-9]*\).*/\1/p' <<<"$line")" \
        'BEGIN { if (d > 0) printf "%.2f", (r - n) / (d / 1e6); else print 0 }')"
}
show() { # LABEL
    printf '   %-26s %10.1f req/s  p50 %8.2f ms  p99 %8.2f ms  non-2xx %s  socket errors %s\n' \
        "$1" "${RPS[$1]}" "$(ms "${P50[$1]}")" "$(ms "${P99[$1]}")" "${NON2XX[$1]}" "${ERRS[$1]}" >&2
}
run_wrk() { # LABEL URL CONNS SECONDS [ENV=VALUE | AUTH=TOKEN...]: one measured wrk run
    local label="$1"
    wrk_bg "$@"
    wrk_wait "$LAST_PID" "$label"
    wrk_parse "$label"
    show "$label"
}
run_wrk_pair() { # LABEL URL1 URL2 CONNS SECONDS [ENV...]: two wrk at once, CONNS/2 connections each
    local label="$1" u1="$2" u2="$3" conns="$4" secs="$5" p1 p2; shift 5
    local half=$((conns / 2))
    wrk_bg "$label~1" "$u1" "$half" "$secs" "$@"; p1=$LAST_PID
    wrk_bg "$label~2" "$u2" "$((conns - half))" "$secs" "$@"; p2=$LAST_PID
    wrk_wait "$p1" "$label~1"
    wrk_wait "$p2" "$label~2"
    wrk_parse "$label~1"; wrk_parse "$label~2"
    RPS[$label]="$(awk -v a="${RPS[$label~1]}" -v b="${RPS[$label~2]}" 'BEGIN { printf "%.1f", a + b }')"
    OKPS[$label]="$(awk -v a="${OKPS[$label~1]}" -v b="${OKPS[$label~2]}" 'BEGIN { printf "%.2f", a + b }')"
    P50[$label]="$(awk -v a="${P50[$label~1]}" -v b="${P50[$label~2]}" 'BEGIN { print (a > b ? a : b) }')"
    P99[$label]="$(awk -v a="${P99[$label~1]}" -v b="${P99[$label~2]}" 'BEGIN { print (a > b ? a : b) }')"
    NON2XX[$label]=$((NON2XX[$label~1] + NON2XX[$label~2]))
    REQS[$label]=$((REQS[$label~1] + REQS[$label~2]))
    ERRS[$label]=$((ERRS[$label~1] + ERRS[$label~2]))
    show "$label"
    printf '   %-26s (%.0f + %.0f req/s)\n' "" "${RPS[$label~1]}" "${RPS[$label~2]}" >&2
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
verdict() { if "$@"; then echo PASS; else echo MISS; fi; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
aggregate() { # NAME: NAME's figures = the medians of its rounds NAME.1 .. NAME.ROUNDS
    local name="$1" r rps=() p50=() p99=() ok=() non=0 err=0 req=0
    for ((r = 1; r <= ROUNDS; r++)); do
        rps+=("${RPS[$name.$r]}"); p50+=("${P50[$name.$r]}"); p99+=("${P99[$name.$r]}"); ok+=("${OKPS[$name.$r]}")
        non=$((non + NON2XX[$name.$r])); err=$((err + ERRS[$name.$r])); req=$((req + REQS[$name.$r]))
    done
    RPS[$name]="$(median "${rps[@]}")"; P50[$name]="$(median "${p50[@]}")"; P99[$name]="$(median "${p99[@]}")"
    OKPS[$name]="$(median "${ok[@]}")"
    NON2XX[$name]=$non; ERRS[$name]=$err; REQS[$name]=$req
    ROUNDS_RPS[$name]="$(printf '%.0f ' "${rps[@]}" | sed 's/ $//; s/ / \/ /g')"
}

# One contender: a URL (or two, space-separated: the x2 rows) and its wrk settings
# (ENV=VALUE or AUTH=TOKEN, newline-separated).
declare -A C_URLS C_ENVS C_CONNS
measure() { # LABEL SECONDS: one measured run of a contender
    local label="$1" secs="$2" urls envs
    read -r -a urls <<<"${C_URLS[${label%.*}]}"
    mapfile -t envs <<<"${C_ENVS[${label%.*}]}"
    if [[ ${#urls[@]} == 2 ]]; then
        run_wrk_pair "$label" "${urls[0]}" "${urls[1]}" "${C_CONNS[${label%.*}]}" "$secs" "${envs[@]}"
    else
        run_wrk "$label" "${urls[0]}" "${C_CONNS[${label%.*}]}" "$secs" "${envs[@]}"
    fi
}
warm_contender() { # LABEL: warm every instance of a contender
    local label="$1" urls envs u
    read -r -a urls <<<"${C_URLS[$label]}"
    mapfile -t envs <<<"${C_ENVS[$label]}"
    for u in "${urls[@]}"; do warm "$u" "${C_CONNS[$label]}" "${envs[@]}"; done
}

# ---- stores ----
# A deployment's store: a PostgreSQL database of the throw-away cluster (or, with
# CLUSTER_STORE=sqlite, a SQLite file shared by the deployment's instances).
mkdir -p "$W/sq" "$BENCH_BUILD"
store_url() { # DB
    if [[ "$CLUSTER_STORE" == pg ]]; then echo "$PG_BASE/$1"; else echo "sqlite:$W/sq/$1.db"; fi
}
pg() { # DB SQL: runs SQL (unaligned, tuples only)
    psql -X -q -At -v ON_ERROR_STOP=1 -c "$2" "$PG_BASE/$1"
}
store_create() { # DB
    if [[ "$CLUSTER_STORE" == pg ]]; then pg postgres "CREATE DATABASE $1" >/dev/null; fi
}
store_count() { # DB: stored sessions
    if [[ "$CLUSTER_STORE" == pg ]]; then pg "$1" 'SELECT count(*) FROM sessions'
    else sqlite3 "$W/sq/$1.db" 'SELECT count(*) FROM sessions'; fi
}
store_fill() { # DB HAVE TO COOKIES-FILE: grows the sessions table to TO rows (no instance connected)
    local db="$1" have="$2" to="$3" file="$4" known
    known=$((to - have)); [[ $known -gt $SPREAD_COOKIES ]] && known=$SPREAD_COOKIES
    [[ $known -ge 1 ]] || { : >"$file"; return 0; }
    if [[ "$CLUSTER_STORE" == pg ]]; then
        timeout 600 psql -X -q -At -v ON_ERROR_STOP=1 -v have="$have" -v to="$to" -v known="$known" \
            -v now="$(date +%s)" -v salt="$FILL_SALT" -v cookie_name="$COOKIE_NAME" \
            -f "$HERE/cluster_fill_pg.sql" "$PG_BASE/$db" >"$file" 2>"$W/fill-$to.log" ||
            die "filling $db to $to sessions failed: $(tail -3 "$W/fill-$to.log")"
    else
        node "$HERE/fill_sessions.js" --have "$have" --to "$to" --known "$known" \
            --cookies "$file" --cookie-name "$COOKIE_NAME" | timeout 600 sqlite3 "$W/sq/$db.db" >/dev/null ||
            die "filling $db to $to sessions failed"
    fi
    [[ "$(wc -l <"$file")" == "$known" ]] || die "the fill of $db wrote $(wc -l <"$file") cookies, not $known"
}
store_copy() { # FROM TO (no instance connected to FROM)
    if [[ "$CLUSTER_STORE" == pg ]]; then
        pg postgres "CREATE DATABASE $2 TEMPLATE $1 STRATEGY FILE_COPY" >/dev/null
    else
        cp "$W/sq/$1.db" "$W/sq/$2.db"
    fi
}
store_size() { # DB: on disk, human
    if [[ "$CLUSTER_STORE" == pg ]]; then pg "$1" "SELECT pg_size_pretty(pg_database_size('$1'))"
    else du -h "$W/sq/$1.db" | cut -f1; fi
}
FILL_SALT="fill-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')-"

# ---- tessera ----
cp "$TESSERA_BIN" "$W/tessera-under-test" || die "cannot copy $TESSERA_BIN"
TESSERA_SRC_BIN="$TESSERA_BIN"
TESSERA_BIN="$W/tessera-under-test"
declare -A IURL IPID DEP_URL DEP_STORE DEP_CACHE COOKIE TOKEN
# DEPLOYMENT: instances sharing a store, a cache.url, a public URL and the token issuer
# (the first instance's URL); the first instance to start migrates the store and makes
# the signing key, the others start after it.
start_instance() { # NAME DEPLOYMENT MODE [VAR=VALUE...]: tessera serve; sets IURL[NAME]
    local name="$1" dep="$2" mode="$3" port; shift 3
    port="$(free_port)"
    [[ -n "${DEP_URL[$dep]:-}" ]] || DEP_URL[$dep]="http://127.0.0.1:$port"
    start_bg "$name" env TESSERA_SERVER_LISTEN="127.0.0.1:$port" \
        TESSERA_SERVER_PUBLIC_URL="${DEP_URL[$dep]}" TESSERA_TOKENS_ISSUER="${DEP_URL[$dep]}" \
        TESSERA_STORE_URL="${DEP_STORE[$dep]}" TESSERA_CACHE_URL="${DEP_CACHE[$dep]}" \
        TESSERA_ADMIN_KEY="$ADMIN_KEY" TESSERA_LOG_LEVEL=warn TESSERA_TOKENS_ACCESS_TTL=1h \
        TESSERA_VERIFY_BEARER="$mode" "$@" "$TESSERA_BIN" serve
    IPID[$name]=$LAST_PID
    IURL[$name]="http://127.0.0.1:$port"
    wait_http "${IURL[$name]}/healthz" "$LAST_PID" || die "tessera $name did not start: $(tail -5 "$W/$name.log")"
}
stop_instances() { # every tessera instance still running
    local i p=()
    for i in "${!IPID[@]}"; do p+=("${IPID[$i]}"); done
    [[ ${#p[@]} == 0 ]] || forget_pids "${p[@]}"
    IPID=()
}
new_deployment() { # NAME DB CACHE-URL
    store_create "$2"
    DEP_STORE[$1]="$(store_url "$2")"; DEP_CACHE[$1]="$3"
}
post_json() { # URL JSON HEADERS-FILE: prints the status code
    curl -s -o "$W/body.json" -D "$3" -w '%{http_code}' --max-time 10 -X POST \
        -H 'Content-Type: application/json' --data "$2" "$1"
}
cookie_from() { # HEADERS-FILE NAME: the value of Set-Cookie NAME
    sed -n "s/^[Ss]et-[Cc]ookie: *\($2=[^;]*\).*/\1/p" "$1" | tr -d '\r' | tail -1
}
json_field() { # FILE KEY: a top-level string field of a JSON file ("" when absent)
    node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const v=j[process.argv[2]]; process.stdout.write(typeof v==="string"?v:"")' "$1" "$2"
}
code_of() { # URL [CURL ARGS...]: the status of a GET
    local url="$1"; shift
    curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@" "$url"
}
tamper() { # TOKEN: one character in the middle of its signature changed
    local t="$1" i c
    i=$((${#t} - 12)); c="${t:i:1}"
    if [[ "$c" == A ]]; then c=B; else c=A; fi
    printf '%s' "${t:0:i}$c${t:i+1}"
}
setup_users() { # DEPLOYMENT INSTANCE: users bench, flood, revoker; COOKIE and TOKEN of bench
    local dep="$1" base="${IURL[$2]}" u code
    for u in bench flood revoker; do
        code="$(post_json "$base/v1/users" "{\"username\":\"$u\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
        [[ "$code" == 201 ]] || die "signup of $u ($dep) answered $code: $(cat "$W/body.json")"
    done
    code="$(post_json "$base/v1/session/login" "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
    [[ "$code" == 200 ]] || die "login ($dep) answered $code: $(cat "$W/body.json")"
    COOKIE[$dep]="$(cookie_from "$W/h.txt" "$COOKIE_NAME")"
    [[ -n "${COOKIE[$dep]}" ]] || die "login ($dep) set no $COOKIE_NAME cookie"
    code="$(curl -s -o "$W/grant.json" -w '%{http_code}' --max-time 10 --data-urlencode grant_type=password \
        --data-urlencode username=bench --data-urlencode "password=$PASSWORD" "$base/v1/oauth/token")"
    [[ "$code" == 200 ]] || die "password grant ($dep) answered $code: $(head -c 300 "$W/grant.json")"
    TOKEN[$dep]="$(json_field "$W/grant.json" access_token)"
    [[ -n "${TOKEN[$dep]}" ]] || die "the password grant ($dep) gave no access_token"
}
check_instance() { # DEPLOYMENT INSTANCE [cookie]: the token verifies, a tampered twin does not; and the cookie
    local dep="$1" v="${IURL[$2]}/v1/verify" c1 c2 c3
    c1="$(code_of "$v" -H "Authorization: Bearer ${TOKEN[$dep]}")"
    c2="$(code_of "$v" -H "Authorization: Bearer $(tamper "${TOKEN[$dep]}")")"
    [[ "$c1" == 200 && "$c2" == 401 ]] || die "$2: the token answered $c1 (want 200), a tampered twin $c2 (want 401)"
    if [[ "${3:-}" == cookie ]]; then
        c3="$(code_of "$v" -H "Cookie: ${COOKIE[$dep]}")"
        [[ "$c3" == 200 ]] || die "$2: the cookie answered $c3 (want 200)"
    fi
}
cache_hits() { # INSTANCE...: "HITS MISSES" of the Redis session cache, summed over the instances (/metrics)
    local i h=0 m=0 x y
    for i in "$@"; do
        curl -s --max-time 5 -o "$W/metrics.txt" "${IURL[$i]}/metrics" || die "GET /metrics of $i failed"
        x="$(awk '$1 == "tessera_session_cache_total{result=\"hit\"}" { print $2 }' "$W/metrics.txt")"
        y="$(awk '$1 == "tessera_session_cache_total{result=\"miss\"}" { print $2 }' "$W/metrics.txt")"
        h=$((h + ${x:-0})); m=$((m + ${y:-0}))
    done
    echo "$h $m"
}
feed_live() { # INSTANCE...: wait (10 s at most) until Redis counts one subscriber per instance on the feed
    local want="$1" i n
    for ((i = 0; i < 100; i++)); do
        n="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PUBSUB NUMSUB tsr:revocations 2>/dev/null | tail -1)"
        [[ "${n:-0}" -ge "$want" ]] && return 0
        sleep 0.1
    done
    die "only ${n:-0} subscriber(s) on the revocation feed, want $want"
}

LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$(date +%s)
note "scratch: $W; tessera: $TESSERA_SRC_BIN; store: $STORE_NAME; $ROUNDS round(s) of ${ROUND}s, ${WARMUP}s warm-up; load: $LOAD0"

# ======== rates and revoke: four deployments ========
if want rates || want revoke; then
    # sqlite: run.sh's set-up; pg-redis: A and B on PostgreSQL + Redis; pg-memory: PostgreSQL
    # without Redis (its own database). Each has a revocation-list instance and a stateful one
    # (verify.bearer is per instance); pg-redis has two of each, pg-memory a second
    # revocation-list instance for the revocation baseline.
    DEP_STORE[sqlite]="sqlite:$W/sq/sqlite-alone.db"; DEP_CACHE[sqlite]=memory
    new_deployment pgr tsr_redis "$REDIS_BASE/0"
    new_deployment pgm tsr_memory memory
    note "starting 9 tessera instances: sqlite (2), $STORE_NAME + Redis (4), $STORE_NAME + memory (3)"
    start_instance s-rl sqlite revocation-list
    setup_users sqlite s-rl
    start_instance s-sf sqlite stateful
    start_instance A-rl pgr revocation-list
    setup_users pgr A-rl
    start_instance B-rl pgr revocation-list
    start_instance A-sf pgr stateful
    start_instance B-sf pgr stateful
    start_instance m-rl pgm revocation-list
    setup_users pgm m-rl
    start_instance m2-rl pgm revocation-list
    start_instance m-sf pgm stateful
    feed_live 4
    for i in s-rl s-sf; do check_instance sqlite "$i" cookie; done
    for i in A-rl B-rl A-sf B-sf; do check_instance pgr "$i" cookie; done
    for i in m-rl m2-rl m-sf; do check_instance pgm "$i" cookie; done
fi

SETUPS=(sqlite pg1 pg2 pgmem) # table order
setup_name() {
    case "$1" in
        sqlite) echo "SQLite, cache.url=memory, 1 instance" ;;
        pg1) echo "$STORE_NAME + Redis, 1 instance" ;;
        pg2) echo "$STORE_NAME + Redis, 2 instances (wrk split)" ;;
        pgmem) echo "$STORE_NAME, cache.url=memory, 1 instance" ;;
    esac
}

if want rates; then
    V=/v1/verify
    declare -A SETUP_I=([sqlite]="s-rl s-sf" [pg1]="A-rl A-sf" [pg2]="A-rl A-sf B-rl B-sf" [pgmem]="m-rl m-sf")
    declare -A SETUP_D=([sqlite]=sqlite [pg1]=pgr [pg2]=pgr [pgmem]=pgm)
    RATE_CONTENDERS=()
    for s in "${SETUPS[@]}"; do
        d="${SETUP_D[$s]}"
        read -r -a ins <<<"${SETUP_I[$s]}"
        rl="${IURL[${ins[0]}]}$V"; sf="${IURL[${ins[1]}]}$V"
        if [[ ${#ins[@]} == 4 ]]; then rl+=" ${IURL[${ins[2]}]}$V"; sf+=" ${IURL[${ins[3]}]}$V"; fi
        C_URLS[cookie-$s]="$rl"; C_ENVS[cookie-$s]="BENCH_COOKIE=${COOKIE[$d]}"; C_CONNS[cookie-$s]=$CONNS
        C_URLS[rl-$s]="$rl";     C_ENVS[rl-$s]="AUTH=${TOKEN[$d]}";           C_CONNS[rl-$s]=$CONNS
        C_URLS[sf-$s]="$sf";     C_ENVS[sf-$s]="AUTH=${TOKEN[$d]}";           C_CONNS[sf-$s]=$CONNS
        RATE_CONTENDERS+=("cookie-$s" "rl-$s" "sf-$s")
        lg="${IURL[${ins[0]}]}/v1/session/login"
        [[ ${#ins[@]} == 4 ]] && lg+=" ${IURL[${ins[2]}]}/v1/session/login"
        C_URLS[login-$s]="$lg"; C_CONNS[login-$s]=$LOGIN_CONNS
        C_ENVS[login-$s]="BENCH_METHOD=POST"$'\n'"BENCH_BODY={\"username\":\"flood\",\"password\":\"$PASSWORD\"}"
    done
    note "rates. verify (cookie, bearer revocation-list, bearer stateful) x ${#SETUPS[@]} set-ups: $ROUNDS interleaved rounds of wrk -t1 -c$CONNS -d${ROUND}s"
    for c in "${RATE_CONTENDERS[@]}"; do warm_contender "$c"; done
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${RATE_CONTENDERS[@]}"; do measure "$c.$r" "$ROUND"; done
    done
    for c in "${RATE_CONTENDERS[@]}"; do aggregate "$c"; done
    note "rates. logins/s: POST /v1/session/login, $ROUNDS interleaved rounds of wrk -t1 -c$LOGIN_CONNS -d${LOGIN_SECS}s (Argon2id m=19 MiB t=2 p=1)"
    WRK_TIMEOUT=10
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in "${SETUPS[@]}"; do
            measure "login-$s.$r" "$LOGIN_SECS"
            # the logins wrk left queued are still hashed after it stops: one more login per
            # instance, answered after them (the queue is FIFO), so the next run starts on an
            # idle hashing pool (pg1 and pg2 share instance A)
            for u in ${C_URLS[login-$s]}; do
                curl -s -o /dev/null --max-time 30 -X POST -H 'Content-Type: application/json' \
                    --data "{\"username\":\"flood\",\"password\":\"$PASSWORD\"}" "$u" || true
            done
        done
    done
    WRK_TIMEOUT=2
    for s in "${SETUPS[@]}"; do aggregate "login-$s"; done
    RATES_CACHE="$(cache_hits A-rl B-rl A-sf B-sf)"
fi

# ======== revoke: across two instances ========
REVOKE_LINES=()
if want revoke; then
    note "revoke. revocation delay from instance A to instance B: $REVOKE_N revocations per kind"
    for spec in "pgr A-rl B-rl 0" "pgm m-rl m2-rl $REVOKE_JITTER_MS"; do
        read -r dep a b jitter <<<"$spec"
        for kind in refresh access cookie session; do
            lab="$dep/$kind"
            log="$W/revoke-$dep-$kind.log"
            if line="$(timeout 600 node "$HERE/revocation_delay.js" --url "${IURL[$a]}" --verify-url "${IURL[$b]}" \
                --username revoker --password "$PASSWORD" --kind "$kind" --n "$REVOKE_N" \
                --window-ms "$REVOKE_WINDOW_MS" --jitter-ms "$jitter" --label "$lab" 2>"$log")"; then
                REVOKE_LINES+=("$(grep '^RESULT ' <<<"$line" | tail -1)")
                sed 's/^/   /' "$log" >&2
            else
                REVOKE_LINES+=("FAILED label=$lab why=$(tail -1 "$log" | tr ' ' '_')")
                echo "   revocation delay $lab could not be measured: $(tail -1 "$log")" >&2
            fi
        done
    done
fi
if want rates || want revoke; then
    stop_instances
fi

# ======== sizes: session look-up cost ========
declare -A STORED FILL_S SIZE_ON_DISK ADDED
if want sizes; then
    note "sizes. session look-up cost on $STORE_NAME: ${SIZES// /, } stored sessions"
    DEP_URL=()
    new_deployment grow tsr_grow memory
    start_instance grow grow revocation-list
    code="$(post_json "${IURL[grow]}/v1/users" "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
    [[ "$code" == 201 ]] || die "signup of bench (sizes) answered $code: $(cat "$W/body.json")"
    code="$(post_json "${IURL[grow]}/v1/session/login" "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" "$W/h.txt")"
    [[ "$code" == 200 ]] || die "login (sizes) answered $code: $(cat "$W/body.json")"
    SZ_COOKIE="$(cookie_from "$W/h.txt" "$COOKIE_NAME")"
    [[ -n "$SZ_COOKIE" ]] || die "login (sizes) set no $COOKIE_NAME cookie"
    forget_pids "${IPID[grow]}" # nothing may be connected to a database that is copied
    unset 'IPID[grow]'
    for n in $SIZES; do
        have="$(store_count tsr_grow)"
        [[ "$have" -lt "$n" ]] || die "SIZES must grow: $n after $have"
        t0=$(date +%s.%N)
        store_fill tsr_grow "$have" "$n" "$W/cookies-$n.txt"
        ADDED[$n]=$((n - have))
        FILL_S[$n]="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
        STORED[$n]="$(store_count tsr_grow)"
        store_copy tsr_grow "tsr_s$n"
        SIZE_ON_DISK[$n]="$(store_size "tsr_s$n")"
        note "   ${STORED[$n]} sessions stored (+$((n - have)) rows in ${FILL_S[$n]} s; ${SIZE_ON_DISK[$n]} on disk)"
    done
    SIZE_CONTENDERS=()
    i=0
    for n in $SIZES; do
        i=$((i + 1))
        for cache in redis memory; do
            d="sz-$cache-$n"
            if [[ $cache == redis ]]; then cu="$REDIS_BASE/$i"; else cu=memory; fi # one Redis database per size
            DEP_STORE[$d]="$(store_url "tsr_s$n")"; DEP_CACHE[$d]="$cu"
            start_instance "$d" "$d" revocation-list
            c="$(code_of "${IURL[$d]}/v1/verify" -H "Cookie: $SZ_COOKIE")"
            [[ "$c" == 200 ]] || die "/v1/verify at $n sessions ($cache) answered $c"
            if [[ -s "$W/cookies-$n.txt" ]]; then
                c="$(code_of "${IURL[$d]}/v1/verify" -H "Cookie: $(tail -1 "$W/cookies-$n.txt")")"
                [[ "$c" == 200 ]] || die "/v1/verify with a filled cookie at $n sessions ($cache) answered $c"
            fi
            C_URLS[one-$cache-$n]="${IURL[$d]}/v1/verify"; C_ENVS[one-$cache-$n]="BENCH_COOKIE=$SZ_COOKIE"
            C_CONNS[one-$cache-$n]=$CONNS
            SIZE_CONTENDERS+=("one-$cache-$n")
            if [[ -s "$W/cookies-$n.txt" ]]; then
                C_URLS[spread-$cache-$n]="${IURL[$d]}/v1/verify"; C_ENVS[spread-$cache-$n]="BENCH_COOKIE_FILE=$W/cookies-$n.txt"
                C_CONNS[spread-$cache-$n]=$CONNS
                SIZE_CONTENDERS+=("spread-$cache-$n")
            fi
        done
    done
    feed_live "$nsizes"
    note "   ${#SIZE_CONTENDERS[@]} contenders: $ROUNDS interleaved rounds of wrk -t1 -c$CONNS -d${ROUND}s"
    for c in "${SIZE_CONTENDERS[@]}"; do warm_contender "$c"; done
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${SIZE_CONTENDERS[@]}"; do measure "$c.$r" "$ROUND"; done
    done
    for c in "${SIZE_CONTENDERS[@]}"; do aggregate "$c"; done
    declare -A SIZE_CACHE
    for n in $SIZES; do SIZE_CACHE[$n]="$(cache_hits "sz-redis-$n")"; done
    stop_instances
fi
T_END=$(date +%s)

# ---- report ----
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%gM", n/1e6; else if (n >= 1e3) printf "%gk", n/1e3; else print n }'; }
cell() { # LABEL: "req/s (p50 / p99 ms)" or "-"
    if [[ -n "${RPS[$1]:-}" ]]; then printf '%.0f (%s / %s)' "${RPS[$1]}" "$(ms "${P50[$1]}")" "$(ms "${P99[$1]}")"; else echo "-"; fi
}
invalid=""
for l in "${!RPS[@]}"; do
    case "$l" in *.[0-9]* | *~*) continue ;; esac
    if [[ "${NON2XX[$l]}" != 0 || "${ERRS[$l]}" != 0 ]]; then invalid+=" $l"; fi
done
invalid="$(tr ' ' '\n' <<<"$invalid" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ *$//')"
if [[ "$CLUSTER_STORE" == pg ]]; then
    PGV="PostgreSQL $(pg postgres 'SHOW server_version' | cut -d' ' -f1) (fsync on, synchronous_commit on, shared_buffers $(pg postgres 'SHOW shared_buffers'))"
else
    PGV="no PostgreSQL: CLUSTER_STORE=sqlite, shared SQLite files in its place (not the PostgreSQL figures)"
fi

{
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M UTC') (cluster.sh)"
    echo
    echo "Machine: $NCPU cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average before the run: $LOAD0; run time $(( (T_END - T_START) / 60 )) min $(( (T_END - T_START) % 60 )) s."
    echo "tessera: \`$TESSERA_SRC_BIN\` (a copy taken at the start; server.threads = $NCPU, log.level=warn, ES256, access tokens 1 h); $PGV; $(redis-server --version | sed 's/ sha=.*//'); node $(node -v); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2). Parts run: $PARTS."
    echo "Each verify figure: the median of $ROUNDS interleaved round(s) of \`wrk -t1 -c$CONNS -d${ROUND}s --latency\` after ${WARMUP}s of warm-up per contender; the 2-instance rows run two such wrk at once with $((CONNS / 2)) connections each (req/s summed, p50 and p99 the higher of the two)."
} >"$W/report.md"

if want rates; then
{
    echo
    echo "**Rates** (each cell: req/s (p50 / p99 ms); bearer = an ES256 access token, verified-token cache on; logins: POST /v1/session/login, Argon2id m=19 MiB t=2 p=1, wrk -c$LOGIN_CONNS for ${LOGIN_SECS}s per round, one hashing thread per instance):"
    echo
    echo "| set-up | cookie verify | bearer, revocation-list | bearer, stateful | logins/s (p50 / p99 ms) |"
    echo "|---|---:|---:|---:|---:|"
    for s in "${SETUPS[@]}"; do
        lo="$(printf '%.1f (%s / %s)' "${OKPS[login-$s]}" "$(ms "${P50[login-$s]}")" "$(ms "${P99[login-$s]}")")"
        echo "| $(setup_name "$s") | $(cell "cookie-$s") | $(cell "rl-$s") | $(cell "sf-$s") | $lo |"
    done
    echo
    echo "req/s of each round:"
    echo
    echo "| set-up | cookie verify | bearer, revocation-list | bearer, stateful | logins/s |"
    echo "|---|---|---|---|---|"
    for s in "${SETUPS[@]}"; do
        echo "| $(setup_name "$s") | ${ROUNDS_RPS[cookie-$s]} | ${ROUNDS_RPS[rl-$s]} | ${ROUNDS_RPS[sf-$s]} | ${ROUNDS_RPS[login-$s]} |"
    done
    echo
    echo "- Redis session cache vs none ($STORE_NAME + Redis ÷ $STORE_NAME with cache.url=memory, 1 instance, req/s): cookie $(ratio "${RPS[cookie-pg1]}" "${RPS[cookie-pgmem]}")×, stateful bearer $(ratio "${RPS[sf-pg1]}" "${RPS[sf-pgmem]}")×"
    echo "- 2 instances ÷ 1 ($STORE_NAME + Redis, same total connections): cookie $(ratio "${RPS[cookie-pg2]}" "${RPS[cookie-pg1]}")×, revocation-list $(ratio "${RPS[rl-pg2]}" "${RPS[rl-pg1]}")×, stateful $(ratio "${RPS[sf-pg2]}" "${RPS[sf-pg1]}")×, logins $(ratio "${OKPS[login-pg2]}" "${OKPS[login-pg1]}")×"
    read -r h m <<<"$RATES_CACHE"
    echo "- Redis session cache of the four $STORE_NAME + Redis instances over the whole part (warm-ups, logins and set-up included): $h hits, $m misses"
    echo "- $STORE_NAME + Redis ÷ SQLite (1 instance): cookie $(ratio "${RPS[cookie-pg1]}" "${RPS[cookie-sqlite]}")×, revocation-list $(ratio "${RPS[rl-pg1]}" "${RPS[rl-sqlite]}")×, stateful $(ratio "${RPS[sf-pg1]}" "${RPS[sf-sqlite]}")×, logins $(ratio "${OKPS[login-pg1]}" "${OKPS[login-sqlite]}")×"
} >>"$W/report.md"
fi

if want revoke; then
{
    echo
    echo "**Revocation delay across instances** (verify.bearer = revocation-list, verified-token cache on: revoked on instance A, polled on instance B with GET /v1/verify until 401; from the revoke or logout answer on A to B's first 401, measured by the client, so it includes that one verify round trip; with cache.url=memory a random 0-${REVOKE_JITTER_MS} ms pause before each revoke, so that the revokes do not fall in step with B's 100 ms log reads):"
    echo
    echo "| cache.url | revoked by (on A), verified with (on B) | revocations | refused | never refused (${REVOKE_WINDOW_MS} ms) | stale 200s on B | delay p50 ms | p99 ms | max ms | verify RTT p50 / p99 ms | p99 < 50 ms |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
    for line in "${REVOKE_LINES[@]}"; do
        lab="$(sed -n 's/.*label=\([^ ]*\).*/\1/p' <<<"$line")"
        dep="${lab%%/*}"; k="${lab#*/}"
        case "$dep" in pgr) cu="redis (feed)" ;; pgm) cu="memory (store log, 100 ms)" ;; *) cu="$dep" ;; esac
        case "$k" in
            refresh) how="POST /v1/oauth/revoke of the refresh token (sid); its access token" ;;
            access) how="POST /v1/oauth/revoke of the access token (jti); that token" ;;
            cookie) how="POST /v1/session/logout; the hybrid access token of that session" ;;
            session) how="POST /v1/session/logout; the session cookie itself" ;;
            *) how="$k" ;;
        esac
        if [[ "$line" == FAILED* ]]; then
            echo "| $cu | $how | not measured: $(sed -n 's/.*why=//p' <<<"$line" | tr '_' ' ') | | | | | | | | |"
            continue
        fi
        f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
        v="-"
        if [[ "$dep" == pgr ]]; then
            if [[ "$(f never)" == 0 ]] && lt "$(f p99_ms)" 50; then v=PASS; else v=MISS; fi
        fi
        echo "| $cu | $how | $(f n) | $(f refused) | $(f never) | $(f stale) | $(f p50_ms) | $(f p99_ms) | $(f max_ms) | $(f rtt_p50_ms) / $(f rtt_p99_ms) | $v |"
    done
} >>"$W/report.md"
fi

if want sizes; then
first="$(awk '{print $1}' <<<"$SIZES")"; last="$(awk '{print $NF}' <<<"$SIZES")"
{
    echo
    echo "**Session look-up cost on $STORE_NAME** (cookie verify with N sessions stored; one database copy and two instances per size, redis = the Redis session cache (hits after the first look-up; one Redis database per size), memory = cache.url=memory, a store query per verify; spread: ${SPREAD_COOKIES} cookies of filled sessions, cycled, look-ups only (no idle slide due)):"
    echo
    echo "| sessions stored | fill | on disk | redis, one cookie | redis, ${SPREAD_COOKIES} spread | memory, one cookie | memory, ${SPREAD_COOKIES} spread |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    for n in $SIZES; do
        echo "| $(human "$n") (${STORED[$n]} rows) | +${ADDED[$n]} rows in ${FILL_S[$n]} s | ${SIZE_ON_DISK[$n]} | $(cell "one-redis-$n") | $(cell "spread-redis-$n") | $(cell "one-memory-$n") | $(cell "spread-memory-$n") |"
    done
    echo
    echo "req/s of each round (one / spread):"
    echo
    echo "| sessions stored | redis | memory |"
    echo "|---:|---|---|"
    for n in $SIZES; do
        echo "| $(human "$n") | ${ROUNDS_RPS[one-redis-$n]} ; ${ROUNDS_RPS[spread-redis-$n]:--} | ${ROUNDS_RPS[one-memory-$n]} ; ${ROUNDS_RPS[spread-memory-$n]:--} |"
    done
    if [[ "$first" != "$last" ]]; then
        echo
        echo "SPEC §6: $(human "$last") sessions within 1.25× of $(human "$first") (req/s at $(human "$first") ÷ req/s at $(human "$last")):"
        echo
        for cache in redis memory; do
            x="$(ratio "${RPS[one-$cache-$first]}" "${RPS[one-$cache-$last]}")"
            t="- cache.url=$cache: one cookie ${x}× → $(verdict le "$x" 1.25)"
            if [[ -n "${RPS[spread-$cache-$first]:-}" && -n "${RPS[spread-$cache-$last]:-}" ]]; then
                x="$(ratio "${RPS[spread-$cache-$first]}" "${RPS[spread-$cache-$last]}")"
                t+="; ${SPREAD_COOKIES} cookies spread ${x}× → $(verdict le "$x" 1.25)"
            fi
            echo "$t"
        done
    fi
    echo
    t="- Redis session cache of the redis instances over the part (hits / misses):"
    for n in $SIZES; do read -r h m <<<"${SIZE_CACHE[$n]}"; t+=" $(human "$n") $h / $m;"; done
    echo "${t%;}"
} >>"$W/report.md"
fi

if [[ -n "$invalid" ]]; then
    {
        echo
        echo "**Warning:** non-2xx answers or socket errors in: $invalid. Those figures do not measure what they claim (rerun with KEEP=1 and read the wrk outputs)."
    } >>"$W/report.md"
fi

cp "$W/report.md" "$BENCH_BUILD/cluster-results.md"
echo
cat "$W/report.md"
echo
echo "(written to $BENCH_BUILD/cluster-results.md)"
