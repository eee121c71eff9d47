-- wrk.lua: the one wrk script of bench/http/run.sh, driven by environment variables.
--
--   BENCH_METHOD        GET (default) or POST
--   BENCH_BODY          request body (POST), sent as application/json
--   BENCH_COOKIE        a whole Cookie header value, e.g. "__Host-tessera=abc..."
--   BENCH_COOKIE_FILE   a file of Cookie header values, one a line: requests cycle
--                       through them in order (formatted once per wrk thread)
--   BENCH_LABEL         printed on the result line
--
-- done() prints one machine-readable line that run.sh parses:
--   RESULT label=.. requests=.. duration_us=.. rps=.. p50_us=.. p99_us=.. max_us=..
--          non2xx=.. connect=.. read=.. write=.. timeout=..
-- wrk counts a 4xx/5xx answer in errors.status ("Non-2xx or 3xx responses").

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local cookie = os.getenv("BENCH_COOKIE")
local cookie_file = os.getenv("BENCH_COOKIE_FILE")
local label = os.getenv("BENCH_LABEL") or "run"

wrk.method = method
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if cookie ~= nil and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local requests = nil
local count = 0
local next_i = 1

-- Requests are formatted in init(), once per thread: only then does wrk know the
-- Host header that wrk.format adds.
if cookie_file ~= nil and cookie_file ~= "" then
  function init(args)
    requests = {}
    for line in io.lines(cookie_file) do
      if line ~= "" then
        local h = {}
        for k, v in pairs(wrk.headers) do h[k] = v end
        h["Cookie"] = line
        count = count + 1
        requests[count] = wrk.format(method, wrk.path, h, wrk.body)
      end
    end
    if count == 0 then error("no cookies in " .. cookie_file) end
  end

  function request()
    local r = requests[next_i]
    next_i = next_i + 1
    if next_i > count then next_i = 1 end
    return r
  end
end

function done(summary, latency, reqs)
  local e = summary.errors
  io.write(string.format(
    "RESULT label=%s requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    label, summary.requests, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
