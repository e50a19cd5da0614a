// Generic runner for a speech program: argument list (no shell), optional
// stdin, time limit (SIGTERM, then SIGKILL), stderr tail for errors. The TTS
// engines are its only users.
import { spawn } from 'node:child_process';

export interface CommandOptions {
  stdin?: string;
  timeoutMs?: number;
  killGraceMs?: number;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Keep stdout (up to 1 MiB), e.g. for a voice listing; otherwise it is discarded. */
  captureStdout?: boolean;
}

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
  elapsedMs: number;
  timedOut: boolean;
  stdout: string;
}

const TAIL = 8192;

export function runCommand(argv: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new Error('command: argv must name a program'));
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'], env: opts.env ?? process.env });
    let stderr = '';
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (c: string) => { if (stdout.length < 1 << 20) stdout += c; });
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr = (stderr + c).slice(-TAIL); });
    const stop = () => {
      if (child.exitCode !== null || killTimer) return;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), opts.killGraceMs ?? 1000);
    };
    const timer = setTimeout(() => { timedOut = true; stop(); }, opts.timeoutMs ?? 60_000);
    opts.signal?.addEventListener('abort', stop, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      reject(new Error(`cannot start ${cmd}: ${err.message}`));
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', stop);
      resolve({ exitCode, signal, stderrTail: stderr, elapsedMs: Date.now() - started, timedOut, stdout });
    });
    if (opts.stdin !== undefined) {
      // The program may exit without reading all of stdin; that shows in its exit code, not here.
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.stdin, 'utf8');
    }
  });
}
