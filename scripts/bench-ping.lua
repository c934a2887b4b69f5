-- wrk script for scripts/bench-protocol.sh: POSTs a JSON-RPC ping on an
-- initialized MCP session. The session comes from the environment:
--   MCP_SESSION_ID        the Mcp-Session-Id returned by initialize (required)
--   MCP_PROTOCOL_VERSION  sent as MCP-Protocol-Version [2025-06-18]
-- done() prints one machine-readable line, parsed by the shell script:
--   BENCH requests=N duration_s=S rps=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. errors=E non2xx=N

local sid = os.getenv("MCP_SESSION_ID")
if sid == nil or sid == "" then
    io.stderr:write("bench-ping.lua: MCP_SESSION_ID is not set\n")
    os.exit(2)
end

wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"ping"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = sid
wrk.headers["MCP-Protocol-Version"] = os.getenv("MCP_PROTOCOL_VERSION") or "2025-06-18"

-- No request() function: wrk then builds the request once, from the fields
-- above, after it has set the path and the Host header (a wrk.format() call at
-- load time would still see path "/" and no Host).

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    local errors = e.connect + e.read + e.write + e.timeout
    io.write(string.format(
        "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d non2xx=%d\n",
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
        latency.max / 1e3, errors, e.status))
end
