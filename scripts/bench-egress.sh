#!/usr/bin/env bash
# Egress proxy cost (issue 14): BENCH_MB (100) MB downloaded from a loopback
# upstream (127.0.0.2) by curl inside the sandbox, BENCH_REPS (5) times each
# way, in the same run of this script against one server:
#   direct  network mode host (--allow-network): curl straight to the upstream
#   proxy   allowed_domains ["bench.test"]: through the run's HTTP proxy
#           (plain forwarding), and through CONNECT (curl -p)
# Prints the median throughput of each, the ratio proxy/direct and the median
# time to the first byte with the difference. Figures only; no thresholds.
#
# Knobs (environment): SANDBOXD_BIN [./mcp-sandboxd], BENCH_MB [100], BENCH_REPS [5].
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
MB=${BENCH_MB:-100}
REPS=${BENCH_REPS:-5}
export LC_ALL=C


source "$ROOT/scripts/bench-lib.sh"
bench_require node curl
bench_init egress

# the upstream: HTTP/1.1 on 127.0.0.2, MB megabytes from memory per request
up_port=$(free_port)
node -e '
const http = require("http");
const chunk = Buffer.alloc(1 << 20, 120), n = Number(process.argv[2]);
http.createServer((req, res) => {
  res.writeHead(200, { "content-length": n * chunk.length, "content-type": "application/octet-stream" });
  let i = 0;
  const more = () => { while (i < n) { i++; if (!res.write(chunk)) return res.once("drain", more); } res.end(); };
  more();
}).listen(Number(process.argv[1]), "127.0.0.2");' "$up_port" "$MB" &
pids+=($!)

start_sandboxd "$BIN" "$(free_port)" --allow-network --egress-resolve bench.test=127.0.0.2 --egress-allow-cidr 127.0.0.2/32
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.2:$up_port/" 2>/dev/null && break; sleep 0.05; done
echo "== $("$BIN" --version) ($BIN), $MB MB x $REPS per way, upstream 127.0.0.2:$up_port"

node --input-type=module -e '
import { Session } from "./scripts/mcp-http.mjs";
const [url, upPort, reps] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const s = await new Session(url, { name: "bench-egress" }).open();
const fmt = "%{speed_download} %{time_starttransfer}\\n";
const ways = {
  direct: { cmd: `curl -sS --noproxy "*" -o /dev/null -w "${fmt}" http://127.0.0.2:${upPort}/`, sc: { network: { mode: "host" } } },
  proxy: { cmd: `curl -sS -o /dev/null -w "${fmt}" http://bench.test:${upPort}/`, sc: { network: { allowed_domains: ["bench.test"] } } },
  connect: { cmd: `curl -sS -p -o /dev/null -w "${fmt}" http://bench.test:${upPort}/`, sc: { network: { allowed_domains: ["bench.test"] } } },
};
const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
const res = {};
for (const [name, w] of Object.entries(ways)) {
  const cmd = Array.from({ length: reps }, () => w.cmd).join("; ");
  const r = await s.call("execute_code", { command: cmd, sandbox_config: w.sc, timeout_seconds: 600 }, 700000);
  const rows = (r.sc?.output ?? []).filter((e) => e.type === "stdout").map((e) => e.data.split(" ").map(Number));
  if (r.isError || rows.length !== reps) throw new Error(`${name}: ${r.text ?? JSON.stringify(r.sc).slice(0, 500)}`);
  res[name] = { mbs: med(rows.map((x) => x[0])) / 1e6, ttfb: med(rows.map((x) => x[1])) * 1000 };
  console.log(`${name.padEnd(8)} ${res[name].mbs.toFixed(0).padStart(6)} MB/s   first byte ${res[name].ttfb.toFixed(2)} ms (medians of ${reps})`);
}
for (const n of ["proxy", "connect"])
  console.log(`${n}/direct throughput ratio ${(res[n].mbs / res.direct.mbs).toFixed(2)}, first byte +${(res[n].ttfb - res.direct.ttfb).toFixed(2)} ms`);
await s.close();
' "$base/mcp" "$up_port" "$REPS"
