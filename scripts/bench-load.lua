-- wrk script for scripts/bench-load.sh (phase a): POSTs one JSON-RPC body on
-- an initialized MCP session, from the environment:
--   MCP_SESSION_ID        the Mcp-Session-Id returned by initialize (required)
--   MCP_BODY              the JSON-RPC request to send (required)
--   MCP_EXPECT            a string every 200 answer must contain (optional;
--                         answers without it are counted as "bad")
--   MCP_PROTOCOL_VERSION  sent as MCP-Protocol-Version [2025-06-18]
-- done() prints one machine-readable line, parsed by the shell script:
--   BENCH requests=N duration_s=S rps=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
--         errors=E connect=.. read=.. write=.. timeout=.. non2xx=N bad=B

local sid = os.getenv("MCP_SESSION_ID")
local body = os.getenv("MCP_BODY")
if sid == nil or sid == "" or body == nil or body == "" then
    io.stderr:write("bench-load.lua: MCP_SESSION_ID and MCP_BODY must be set\n")
    os.exit(2)
end
local expect = os.getenv("MCP_EXPECT")
if expect == "" then expect = nil end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = sid
wrk.headers["MCP-Protocol-Version"] = os.getenv("MCP_PROTOCOL_VERSION") or "2025-06-18"

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

-- per thread (each has its own Lua state); summed in done()
bad = 0
if expect ~= nil then
    function response(status, headers, resp)
        if status == 200 and not string.find(resp, expect, 1, true) then
            bad = bad + 1
        end
    end
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    local errors = e.connect + e.read + e.write + e.timeout
    local nbad = 0
    for _, t in ipairs(threads) do nbad = nbad + (t:get("bad") or 0) end
    io.write(string.format(
        "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d connect=%d read=%d write=%d timeout=%d non2xx=%d bad=%d\n",
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
        latency.max / 1e3, errors, e.connect, e.read, e.write, e.timeout, e.status, nbad))
end
