// A real RTSP H.264 camera for tests: test/fixtures/rtsp-server.py (GStreamer's
// RTSP server under Debian's /usr/bin/python3) on a free port. kill() drops
// it the way a camera losing power does (SIGKILL: every client's TCP
// connection closes); restart() brings it back on the same port and path.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort } from './mosquitto.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/rtsp-server.py', import.meta.url));

export interface RtspStreamOptions {
  width?: number;
  height?: number;
  fps?: number;
  bitrateKbps?: number;
  /** Keyframe interval, frames. */
  gop?: number;
  profile?: 'baseline' | 'main' | 'high';
  path?: string;
  /** videotestsrc pattern; 'ball' (default) is cheap, 'snow' fills the bitrate. */
  pattern?: string;
  /** Pad to the bitrate with filler NAL units (constant bitrate whatever the picture). */
  cbr?: boolean;
  /** A camera that wants a login: RTSP 401 challenge by Digest (default) or Basic. */
  user?: string;
  password?: string;
  auth?: 'digest' | 'basic';
}

export interface RtspServer {
  url: string;
  port: number;
  readonly pid: number | undefined;
  /** SIGKILL: the camera vanishes. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill()). */
  restart(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
}

export async function startRtspServer(o: RtspStreamOptions = {}): Promise<RtspServer> {
  const port = await freePort();
  const path = o.path ?? '/cam';
  const args = [
    SCRIPT, '--port', String(port), '--path', path,
    '--width', String(o.width ?? 320), '--height', String(o.height ?? 240), '--fps', String(o.fps ?? 15),
    '--bitrate-kbps', String(o.bitrateKbps ?? 400), '--gop', String(o.gop ?? 15), '--profile', o.profile ?? 'baseline',
    '--pattern', o.pattern ?? 'ball', ...(o.cbr ? ['--cbr'] : []),
    ...(o.user ? ['--user', o.user, '--password', o.password ?? '', '--auth', o.auth ?? 'digest'] : []),
  ];
  let proc: ChildProcess = await launch(args);
  const stopWith = (sig: NodeJS.Signals) => new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(sig);
  });
  return {
    url: `rtsp://127.0.0.1:${port}${path}`,
    port,
    get pid() { return proc.pid; },
    kill: () => stopWith('SIGKILL'),
    restart: async () => {
      await stopWith('SIGKILL');
      proc = await launch(args);
    },
    stop: () => stopWith('SIGTERM'),
  };
}

async function launch(args: string[]): Promise<ChildProcess> {
  const proc = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-4000); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`rtsp-server.py did not start in 15 s: ${stderr}`)); }, 15_000);
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('READY ')) { clearTimeout(timer); resolve(); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`rtsp-server.py exited (${code}): ${stderr}`)); });
  });
  return proc;
}

/**
 * The H.264 SPS the camera announces in its SDP (RTSP DESCRIBE,
 * sprop-parameter-sets), as raw NAL bytes: a stream copy carries exactly
 * these bytes into the recording; an encoder would write its own.
 */
export async function describeSps(url: string): Promise<Buffer> {
  const u = new URL(url);
  const sdp = await new Promise<string>((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(`DESCRIBE ${url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n`);
    });
    let text = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no DESCRIBE answer: ${text}`)); }, 10_000);
    sock.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      const len = Number(/content-length:\s*(\d+)/i.exec(text)?.[1] ?? NaN);
      const body = text.indexOf('\r\n\r\n');
      if (body >= 0 && Number.isFinite(len) && text.length >= body + 4 + len) {
        clearTimeout(timer);
        sock.end();
        resolve(text.slice(body + 4));
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  const sets = /sprop-parameter-sets=([^;\s]+)/.exec(sdp)?.[1];
  if (!sets) throw new Error(`no sprop-parameter-sets in SDP: ${sdp}`);
  return Buffer.from(sets.split(',')[0]!, 'base64');
}
