// graphile-worker doing what crm-bench-jobs does (benches/jobs.sh): no-op jobs per second, all
// enqueued first (8 at a time) and run to the last; then enqueue-to-start latency, one job at a
// time into an idle worker woken by LISTEN/NOTIFY. Default options: no batching, no local queue.
//
//   node bench.js <admin-url> <jobs> <concurrency> <latency-samples>   → one JSON line
const { run, makeWorkerUtils, Logger } = require("graphile-worker");
const { Client, Pool } = require("pg");

const quiet = new Logger(() => () => {});

async function main() {
  const [adminUrl, jobsArg, concurrencyArg, samplesArg] = process.argv.slice(2);
  const [jobs, concurrency, samples] = [Number(jobsArg), Number(concurrencyArg), Number(samplesArg)];
  const name = `crm_bench_graphile_${Date.now()}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const connectionString = url.toString();
  // One pool for both, ended before the database is dropped (graphile-worker's default pool size).
  const pgPool = new Pool({ connectionString, max: 10 });
  // The listening client may still be open when the database is dropped at the end.
  pgPool.on("error", () => {});
  try {
    const utils = await makeWorkerUtils({ pgPool, logger: quiet });
    await utils.migrate();

    const enqueueStarted = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let n = w; n < jobs; n += 8) await utils.addJob("noop", { n });
      }),
    );
    const enqueueSecs = Number(process.hrtime.bigint() - enqueueStarted) / 1e9;

    let done = 0;
    let allDone;
    const finished = new Promise((resolve) => (allDone = resolve));
    let started = null;
    const taskList = {
      noop: async () => {
        if (++done === jobs) allDone();
      },
      latency: async () => {
        if (started) started(process.hrtime.bigint());
      },
    };
    const runStarted = process.hrtime.bigint();
    const runner = await run({ pgPool, concurrency, noHandleSignals: true, pollInterval: 1000, taskList, logger: quiet });
    await finished;
    const runSecs = Number(process.hrtime.bigint() - runStarted) / 1e9;

    const latencies = [];
    for (let i = 0; i < samples; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const start = new Promise((resolve) => (started = resolve));
      const sent = process.hrtime.bigint();
      await utils.addJob("latency", {});
      const at = await start;
      latencies.push(Number(at - sent) / 1e6);
    }
    await runner.stop();
    await utils.release();
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.round((latencies.length - 1) * p)] ?? 0;
    console.log(
      JSON.stringify({
        side: "graphile-worker",
        jobs,
        concurrency,
        enqueue_per_sec: jobs / enqueueSecs,
        jobs_per_sec: jobs / runSecs,
        latency_ms: { p50: pct(0.5), p99: pct(0.99), max: pct(1), samples },
      }),
    );
  } finally {
    await pgPool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
