// Continuous batching: a long prompt arriving while others stream is prefilled in chunks between their
// decode steps, so the streams keep receiving tokens while it is prefilled (without chunking the scheduler
// would prefill it in one go and the streams would get at most one token in that window). Counted in
// tokens and chunks, not in time, so a loaded machine cannot make it pass or fail.
//   node tests/batching_e2e.cjs BASE_URL KEY CHUNK
const [base, key, chunk] = process.argv.slice(2);
const pass = (n) => console.log("PASS " + n), fail = (n, w) => console.log("FAIL " + n + ": " + w);
const H = { "Content-Type": "application/json", Authorization: "Bearer " + key };
async function stream(body, onChunk) {
  const r = await fetch(base + "/v1/chat/completions", { method: "POST", headers: H, body: JSON.stringify({ ...body, stream: true }) });
  const rd = r.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await rd.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (ev.startsWith("data: {")) onChunk(JSON.parse(ev.slice(6)));
    }
  }
}
const metric = async (name) => +(await (await fetch(base + "/metrics", { headers: H })).text()).match(new RegExp("^" + name + " (\\S+)", "m"))[1];
(async () => {
  const times = [[], [], []];
  const streams = times.map((t, i) => stream({ messages: [{ role: "user", content: "stream " + i }], max_tokens: 600, temperature: 1, seed: 11 + i }, (c) => { if (c.choices[0] && c.choices[0].delta.content) t.push(Date.now()); }));
  while (times.some((t) => t.length < 5)) await new Promise((r) => setTimeout(r, 20));
  const long = Array.from({ length: 500 }, (_, i) => "w" + (i % 97)).join(" ");
  const chunks0 = await metric("k2c_prefill_chunks_total");
  const t0 = Date.now();
  let t1 = 0, prompt = 0;
  await stream({ messages: [{ role: "user", content: long }], max_tokens: 2, temperature: 0, stream_options: { include_usage: true } }, (c) => {
    if (!t1 && c.choices[0]) t1 = Date.now();
    if (c.usage) prompt = c.usage.prompt_tokens;
  });
  const chunks = (await metric("k2c_prefill_chunks_total")) - chunks0;
  const during = times.reduce((n, t) => n + t.filter((x) => x > t0 && x < t1).length, 0);
  await Promise.all(streams);
  const want = Math.floor(prompt / +chunk);
  if (prompt < 4 * +chunk) return fail("continuous_batching", `the long prompt has only ${prompt} tokens`);
  chunks >= want && during >= want ? pass("continuous_batching")
    : fail("continuous_batching", `${prompt}-token prompt in ${chunks} chunks (want >= ${want}); ${during} stream tokens while it was prefilled`);
  console.log(`  a ${prompt}-token prompt arrived during 3 streams: ${chunks} chunks of <= ${chunk}, ${during} stream tokens delivered before its first token`);
})().catch((e) => { fail("continuous_batching", String(e && e.stack || e)); process.exit(1); });
