// Benchmark runner: `npm run bench` runs every benchmark with its defaults;
// `npm run bench -- <name> [options]` runs one, e.g.
//   npm run bench -- fleet --speakers 1000,5000,10000
//   npm run bench -- fanout --speakers 1000,10000
//   npm run bench -- segments
//   npm run bench -- recording --seconds 30
// Results are printed and written as JSON under .tmp/bench/ (gitignored).
// Benchmarks report figures and PASS/FAIL against targets; they never fail the
// build (tests do not assert on performance).

interface Benchmark {
  describe: string;
  run: (argv: string[]) => Promise<void>;
}

const BENCHMARKS: Record<string, Benchmark> = {
  fleet: {
    describe: 'N simulated speakers against a gateway child process: CPU, RSS, event-loop delay, flushes, heartbeat latency '
      + '(--speakers 1000,5000 --heartbeat-real 30 --compression 10 --window 20 --samples 200 --per-shard 5000 --concurrency 200)',
    run: async (argv) => (await import('./fleet.js')).fleetBench(argv),
  },
  fanout: {
    describe: 'one broadcast to N speakers in 20 hamlets, by zone topics and by device topics: command delivery, command-to-ack, download MB/s, '
      + 'play-start skew, gateway CPU/RSS (--speakers 1000 --zones 20 --seconds 45 --lead <auto> --modes zones,devices --per-shard 5000 --profile)',
    run: async (argv) => (await import('./fanout.js')).fanoutBench(argv),
  },
  brokers: {
    describe: 'embedded broker (aedes) vs Mosquitto (external mode) side by side, same fleet steady state and broadcast, alternating rounds: '
      + 'CPU, RSS, heartbeat latency, connect, delivery, ack completion, ratios (--speakers 2000 --rounds 3 --window 10 --compression 10 --clip 2)',
    run: async (argv) => (await import('./brokers.js')).brokersBench(argv),
  },
  inbox: {
    describe: 'device event inbox: events journaled (fdatasync, grouped) before their PUBACK, bursts of 1/100/2000: events/s and write → durable latency (--dir <disk to measure>)',
    run: async (argv) => (await import('./inbox.js')).inboxBench(argv),
  },
  tts: {
    describe: 'a ~60 s Vietnamese announcement: normalise text, espeak-ng, loudness measure, normalise+encode MP3, check; time per stage (--runs 3)',
    run: async (argv) => (await import('./tts.js')).ttsBench(argv),
  },
  segments: {
    describe: 'camera segment index: one-hour lookup among 30 days × 4 cameras (synthetic per-hour index), cold/cached/day, '
      + 'against a lowdb-style array and file names only (--days 30 --cameras 4 --segment 10 --lookups 1000)',
    run: async (argv) => (await import('./segments.js')).segmentsBench(argv),
  },
  recording: {
    describe: 'camera recording CPU per camera (ffmpeg + node) on the GStreamer test camera, with the recorded bitrate '
      + '(--seconds 30 --streams 320x240@15:400,1920x1080@25:4000)',
    run: async (argv) => (await import('./recording.js')).recordingBench(argv),
  },
  retention: {
    describe: 'camera retention on the synthetic 30 days × 4 cameras index: startup scan, idle sweep, age sweep (a day), quota sweep (2 GB), '
      + '30-day coverage in 1-h buckets cold/cached (--days 30 --cameras 4 --segment 10)',
    run: async (argv) => (await import('./retention.js')).retentionBench(argv),
  },
  export: {
    describe: 'evidence export of a 10-min range (1080p ~4 Mbit/s, 10-s segments): the gateway\'s command vs the Frigate-style '
      + 'concat demuxer + faststart, alternating, medians and ratio (--minutes 10 --runs 5 --bitrate 4000)',
    run: async (argv) => (await import('./export.js')).exportBench(argv),
  },
};

async function main(): Promise<void> {
  const [first, ...rest] = process.argv.slice(2);
  if (first === '--help' || first === '-h' || first === 'list') {
    for (const [name, b] of Object.entries(BENCHMARKS)) process.stdout.write(`${name}\t${b.describe}\n`);
    return;
  }
  const selected = first && !first.startsWith('-') ? [first] : Object.keys(BENCHMARKS);
  const argv = first && !first.startsWith('-') ? rest : process.argv.slice(2);
  for (const name of selected) {
    const b = BENCHMARKS[name];
    if (!b) throw new Error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHMARKS).join(', ')}`);
    process.stdout.write(`# ${name}\n`);
    await b.run(argv);
  }
}

// A stuck benchmark must not hang CI or a terminal forever.
const guard = setTimeout(() => {
  process.stderr.write('bench: overall time limit (30 min) reached\n');
  process.exit(2);
}, 30 * 60_000);
guard.unref();

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
