// Latency under load (docs/BENCHMARKS.md, "Server latency"; issue 15 point 4), two measurements:
//  1. N clients send prompts of mixed lengths at once and stream 160 tokens each: time to first token and
//     inter-token latency (p50, p99, max) over all streams.
//  2. N streams in steady decode (every prompt prefilled, each has had 10 tokens); their inter-token gaps over
//     a 2-second window (baseline), then a long prompt (default 1,500 words, ~4,000 tokens) arrives: the gaps
//     that overlap its prefill (from its arrival to its first token), and its own time to first token.
// Run it against servers started with different --prefill-chunk (bench/server_latency.sh does).
//   node bench/server_latency.cjs BASE_URL KEY CLIENTS [LONG_WORDS]
const [base, key, clients, longWords] = process.argv.slice(2);
const H = { "Content-Type": "application/json", Authorization: "Bearer " + key };
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/* one streaming request; st.stamps grows as content deltas arrive; resolves when the stream ends */
function stream(content, maxTokens, seed, st, signal) {
  st.t0 = performance.now(); st.stamps = [];
  return (async () => {
    const r = await fetch(base + "/v1/chat/completions", { method: "POST", headers: H, signal,
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
        if (ev.startsWith("data: {") && JSON.parse(ev.slice(6)).choices[0]?.delta?.content) st.stamps.push(performance.now());
      }
    }
  })().catch((e) => { if (e.name !== "AbortError") throw e; });
}
const words = (n, salt) => Array.from({ length: n }, (_, i) => "w" + ((i * 7 + salt) % 101)).join(" ");
/* gaps between consecutive tokens of a stream: those inside [t0, t1] (inside), or overlapping it */
const gapsIn = (stamps, t0, t1, inside) => stamps.slice(1).map((t, k) => [stamps[k], t])
  .filter(([a, b]) => inside ? a >= t0 && b <= t1 : b > t0 && a < t1).map(([a, b]) => b - a);
async function mixed(n) {
  const sts = Array.from({ length: n }, () => ({}));
  await Promise.all(sts.map((st, i) => stream(words(20 + (i * 37) % 300, i), 160, i + 1, st)));
  return { ttft: sts.map((s) => s.stamps[0] - s.t0), itl: sts.flatMap((s) => s.stamps.slice(1).map((t, k) => t - s.stamps[k])) };
}
async function steady(n) {
  /* each client streams request after request (an answer may end early at an end-of-turn token); a
   * request's gaps are its own, the pause between two requests is not a gap */
  const ac = new AbortController(), done = [];
  const sts = Array.from({ length: n }, () => ({}));
  const runs = sts.map(async (st, i) => {
    for (let k = 0; !ac.signal.aborted; k++) {
      await stream(words(20 + (i * 37) % 300, i), 3000, 1000 * k + i + 1, st, ac.signal);
      done.push(st.stamps);
    }
  });
  while (sts.some((s) => !s.stamps || s.stamps.length < 10)) await sleep(20);
  const b0 = performance.now();
  await sleep(2000);
  const b1 = performance.now(), lst = {};
  const long = stream(words(+(longWords || 1500), 999), 4, 99, lst);
  while (!lst.stamps.length) await sleep(5);
  const l1 = lst.stamps[0];
  ac.abort();
  await Promise.all(runs); await long;
  return { base: done.flatMap((s) => gapsIn(s, b0, b1, true)), during: done.flatMap((s) => gapsIn(s, b1, l1, false)), ttft: l1 - b1 };
}
(async () => {
  const n = +clients;
  await mixed(Math.min(n, 4));   // warm-up
  const a = await mixed(n), b = await steady(n);
  const f = (x) => x.toFixed(1), st = (x) => `p50 ${f(pct(x, .5))} p99 ${f(pct(x, .99))} max ${f(Math.max(...x))}`;
  console.log(`clients ${n}: mixed prompts: TTFT p50 ${f(pct(a.ttft, .5))} p99 ${f(pct(a.ttft, .99))} ms, ITL ${st(a.itl)} ms` +
    ` | steady streams: ITL ${st(b.base)} ms (${b.base.length} gaps); while a long prompt is prefilled: ITL ${st(b.during)} ms` +
    ` (${b.during.length} gaps), p99 ratio ${(pct(b.during, .99) / pct(b.base, .99)).toFixed(2)}x; its TTFT ${f(b.ttft)} ms`);
})();
