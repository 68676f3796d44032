// Collects the tool input schemas of the official MCP servers from npm (filesystem, memory, everything,
// github, gitlab, google-maps, brave-search, postgres): each server is started over stdio, initialized,
// and asked for tools/list. Writes tests/data/schemas/mcp.json: [{"name": "server/tool", "schema": ...}].
//   npm install --prefix build/npm @modelcontextprotocol/server-{filesystem,memory,...}
//   node scripts/collect-mcp-schemas.cjs build/npm tests/data/schemas/mcp.json
// Servers that want credentials get dummy ones: tools/list needs no network.
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const [npmDir, outFile] = process.argv.slice(2);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mcp-"));
const servers = [
  ["filesystem", [tmp]], ["memory", []], ["everything", ["stdio"]], ["github", []], ["gitlab", []],
  ["google-maps", []], ["brave-search", []], ["postgres", ["postgresql://127.0.0.1:1/none"]],
];
const env = { ...process.env, GITHUB_PERSONAL_ACCESS_TOKEN: "x", GITLAB_PERSONAL_ACCESS_TOKEN: "x",
  GOOGLE_MAPS_API_KEY: "x", BRAVE_API_KEY: "x", MEMORY_FILE_PATH: path.join(tmp, "memory.json") };

function list(name, args) {
  return new Promise((resolve, reject) => {
    const main = path.resolve(npmDir, "node_modules/@modelcontextprotocol", "server-" + name, "dist/index.js");
    const p = spawn("node", [main, ...args], { env, stdio: ["pipe", "pipe", "ignore"] });
    let buf = "";
    const timer = setTimeout(() => { p.kill(); reject(new Error(name + ": timeout")); }, 20000);
    const send = (m) => p.stdin.write(JSON.stringify(m) + "\n");
    p.stdout.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        let m; try { m = JSON.parse(line); } catch { continue; }
        if (m.id === 1) {
          send({ jsonrpc: "2.0", method: "notifications/initialized" });
          send({ jsonrpc: "2.0", id: 2, method: "tools/list", params: {} });
        } else if (m.id === 2) { clearTimeout(timer); p.kill(); resolve(m.result.tools); }
      }
    });
    p.on("exit", (c) => { clearTimeout(timer); reject(new Error(name + ": exited " + c)); });
    send({ jsonrpc: "2.0", id: 1, method: "initialize",
      params: { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "k2c-collect", version: "1" } } });
  });
}

(async () => {
  const out = [];
  for (const [name, args] of servers) {
    try {
      const tools = await list(name, args);
      for (const t of tools) out.push({ name: name + "/" + t.name, schema: t.inputSchema });
      console.error(`${name}: ${tools.length} tools`);
    } catch (e) { console.error(String(e)); process.exitCode = 1; }
  }
  fs.writeFileSync(outFile, JSON.stringify(out, null, 1) + "\n");
  console.error(`${out.length} schemas -> ${outFile}`);
  fs.rmSync(tmp, { recursive: true, force: true });
})();
