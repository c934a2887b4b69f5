// Characters of tool-result text per byte of output (issue 15): for each
// binary given, execute_code with `seq 1 1000`, `seq 1 200000` and a 1 MB
// single line, on a server that keeps every event (--max-events 300000,
// --max-output-bytes 64M), with the server's default budget. Prints one line
// per binary and command: text chars, structuredContent JSON chars, output bytes,
// text chars per output byte.
import { connect } from '../tests/integration/helpers.mjs';

const CASES = [
  ['seq 1 1000', 3893],
  ['seq 1 200000', 1288895],
  ["head -c 1000000 /dev/zero | tr '\\0' a; echo", 1000001],
];
const bins = process.argv.slice(2);
for (const bin of bins) {
  process.env.SANDBOXD_BIN = bin;
  // a fresh instance of the helpers per binary: they read SANDBOXD_BIN when loaded
  const { BIN, startServer } = await import(`../tests/integration/helpers.mjs?bin=${encodeURIComponent(bin)}`);
  const server = await startServer({
    args: ['--max-events', '300000', '--max-output-bytes', '64M'],
    env: { SANDBOX_MAX_RESULT_CHARS: '1000000' }, // the default ceiling: the budget is the default 20,000
  });
  const { client } = await connect(server);
  for (const [command, bytes] of CASES) {
    const res = await client.callTool({ name: 'execute_code', arguments: { command } }, undefined, { timeout: 300000 });
    const text = res.content[0].text.length;
    const structured = JSON.stringify(res.structuredContent).length;
    console.log(`${BIN.split('/').slice(-3).join('/')}\t${command.slice(0, 24)}\ttext ${text}\tstructured ${structured}\toutput ${bytes}\ttext/byte ${(text / bytes).toFixed(3)}`);
  }
  await client.close();
  await server.stop();
}
process.exit(0);
