// Checks an exported clip against its manifest, anywhere (a police office, a
// court), with nothing but Node and this file's folder of the repository:
//   npm run verify-clip -- <clip.mp4> <manifest.json> [--recordings <camera folder>]
// Prints one line per check and exits 0 when every check passes, 1 otherwise
// (2 for bad usage). --recordings re-checks the source segments too.
import { readFile } from 'node:fs/promises';
import { verifyAgainstManifest, type Manifest } from './exports.js';

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  let recordings: string | undefined;
  const i = args.indexOf('--recordings');
  if (i >= 0) {
    recordings = args[i + 1];
    args.splice(i, 2);
  }
  const [clip, manifestFile] = args;
  if (!clip || !manifestFile || (i >= 0 && !recordings)) {
    process.stderr.write('usage: verify-clip <clip.mp4> <manifest.json> [--recordings <camera folder>]\n');
    return 2;
  }
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(manifestFile, 'utf8')) as Manifest;
    if (m.version !== 1 || !m.output?.sha256) throw new Error('not an export manifest (version 1)');
  } catch (err) {
    process.stderr.write(`verify-clip: ${manifestFile}: ${(err as Error).message}\n`);
    return 2;
  }
  const res = await verifyAgainstManifest(clip, m, recordings);
  for (const c of res.checks) process.stdout.write(`${c.skipped ? 'SKIPPED' : c.ok ? 'OK     ' : 'FAILED '} ${c.name}: ${c.detail}\n`);
  process.stdout.write(res.ok ? `OK: ${clip} matches its manifest (export ${m.exportId}, camera ${m.camera.id}, ${m.actual.from} – ${m.actual.to})\n` : `FAILED: ${clip} does not match its manifest\n`);
  return res.ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
