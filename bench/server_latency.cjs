// Latency under load (docs/BENCHMARKS.md, "Server latency"; issue 15 point 4): N clients stream answers to
// prompts of mixed lengths; reports time to first token and inter-token latency (p50, p99) in ms, then
// the same while a long prompt (default 4,000 tokens) arrives in the middle. Run it against a server
// started with --prefill-chunk 512 (continuous batching) and --prefill-chunk -1 (whole prompts) to compare.
//   node bench/server_latency.cjs BASE_URL KEY CLIENTS [LONG_WORDS]
const [base, key, clients, longWords] = process.argv.slice(2);
const H = { "Content-Type": "application/json", Authorization: "Bearer " + key };
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN; };
async function stream(content, maxTokens, seed) {
  const t0 = performance.now(), stamps = [];
  const r = await fetch(base + "/v1/chat/completions", { method: "POST", headers: H,
    body: JSON.stringify({ messages: [{ role: "user", content }], max_tokens: maxTokens, temperature: 1, seed, stream: true }) });
  const rd = r.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await rd.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (ev.startsWith("data: {") && JSON.parse(ev.slice(6)).choices[0]?.delta?.content) stamps.push(performance.now());
    }
  }
  return { ttft: stamps.length ? stamps[0] - t0 : NaN, itl: stamps.slice(1).map((t, k) => t - stamps[k]), stamps };
}
const words = (n, salt) => Array.from({ length: n }, (_, i) => "w" + ((i * 7 + salt) % 101)).join(" ");
async function round(n, withLong) {
  const runs = Array.from({ length: n }, (_, i) => stream(words(20 + (i * 37) % 300, i), 160, i + 1));
  let long = null, tLong = 0;
  if (withLong) {
    await new Promise((r) => setTimeout(r, 300));
    tLong = performance.now();
    long = stream(words(+(longWords || 1700), 999), 8, 99);
  }
  const rs = await Promise.all(runs), lr = long ? await long : null;
  const itl = rs.flatMap((r) => r.itl);
  /* inter-token gaps of the streams while the long prompt was in flight */
  const during = lr ? rs.flatMap((r) => r.stamps.slice(1).map((t, k) => [r.stamps[k], t - r.stamps[k]]).filter(([t]) => t >= tLong && t <= tLong + lr.ttft).map(([, d]) => d)) : [];
  return { ttft: rs.map((r) => r.ttft), itl, during, longTtft: lr ? lr.ttft : NaN };
}
(async () => {
  const n = +clients;
  await round(Math.min(n, 4), false);   // warm-up
  const a = await round(n, false), b = await round(n, true);
  const f = (x) => x.toFixed(1);
  console.log(`clients ${n}: TTFT p50 ${f(pct(a.ttft, .5))} p99 ${f(pct(a.ttft, .99))} ms, ITL p50 ${f(pct(a.itl, .5))} p99 ${f(pct(a.itl, .99))} ms` +
    ` | with a long prompt arriving: ITL p50 ${f(pct(b.itl, .5))} p99 ${f(pct(b.itl, .99))} ms, during its prefill p99 ${f(pct(b.during, .99))} ms (max ${f(Math.max(...b.during, 0))}), its TTFT ${f(b.longTtft)} ms`);
})();
