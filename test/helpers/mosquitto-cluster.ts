// Debian Mosquitto beyond one plain listener, for the scale-out tests: a test
// CA made with openssl (EC P-256, fast), server certificates for 127.0.0.1,
// brokers with a TLS listener next to the plain one, and extra config such as
// a `connection` bridge to another broker. Builds on helpers/mosquitto.ts (freePort, CLI wrappers).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './mosquitto.js';

const run = promisify(execFile);

export interface TestCa {
  dir: string;
  /** PEM file of the CA certificate (what clients trust). */
  caFile: string;
  caKey: string;
}

/** A throwaway CA: `<dir>/<name>.pem` and its key. */
export async function makeTestCa(dir: string, name = 'test-ca'): Promise<TestCa> {
  const caKey = join(dir, `${name}.key`);
  const caFile = join(dir, `${name}.pem`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey]);
  await run('openssl', ['req', '-x509', '-new', '-key', caKey, '-sha256', '-days', '2', '-subj', `/CN=${name}`, '-out', caFile,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { dir, caFile, caKey };
}

/** A server certificate signed by `ca` for the given names (default: 127.0.0.1 and localhost). */
export async function issueCert(ca: TestCa, name: string, sans = ['IP:127.0.0.1', 'DNS:localhost']): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = join(ca.dir, `${name}.key`);
  const csr = join(ca.dir, `${name}.csr`);
  const certFile = join(ca.dir, `${name}.pem`);
  const ext = join(ca.dir, `${name}.ext`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  await run('openssl', ['req', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-out', csr]);
  await writeFile(ext, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.caFile, '-CAkey', ca.caKey, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', ext, '-out', certFile]);
  return { certFile, keyFile };
}

export interface BrokerOptions {
  users: Record<string, string>;
  acl: string;
  /** Plain listener too (default true); the TLS one when tls is given. */
  plain?: boolean;
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** More mosquitto.conf text after the listeners, e.g. a bridge (gateway/src/province/bridge.ts renders one). */
  extra?: string;
}

export interface Broker {
  /** Plain listener port (0 when none). */
  port: number;
  /** TLS listener port (0 when none). */
  tlsPort: number;
  proc: ChildProcess;
  log: () => string;
  stop: () => Promise<void>;
}

export async function startBroker(dir: string, o: BrokerOptions): Promise<Broker> {
  const port = o.plain === false ? 0 : await freePort();
  const tlsPort = o.tls ? await freePort() : 0;
  const pwFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await writeFile(pwFile, '');
  for (const [u, p] of Object.entries(o.users)) await run('mosquitto_passwd', ['-b', pwFile, u, p]);
  await writeFile(aclFile, o.acl);
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(conf, [
    // Global auth (per_listener_settings false): one password file and ACL for every listener.
    'allow_anonymous false', `password_file ${pwFile}`, `acl_file ${aclFile}`,
    'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', 'log_type subscribe',
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    ...(port ? [`listener ${port} 127.0.0.1`] : []),
    ...(o.tls ? [`listener ${tlsPort} 127.0.0.1`, `certfile ${o.tls.certFile}`, `keyfile ${o.tls.keyFile}`, `cafile ${o.tls.caFile}`] : []),
    ...(o.extra ? ['', o.extra] : []),
  ].join('\n') + '\n');
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const until = Date.now() + 10_000;
  for (const p of [port, tlsPort].filter(Boolean)) {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`mosquitto exited: ${stderr}`);
      const ok = await new Promise<boolean>((r) => {
        const sock = net.connect(p, '127.0.0.1', () => { sock.end(); r(true); });
        sock.on('error', () => r(false));
      });
      if (ok) break;
      if (Date.now() > until) throw new Error(`mosquitto did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port, tlsPort, proc, log: () => stderr,
    stop: () => new Promise<void>((r) => {
      if (proc.exitCode !== null) return r();
      proc.once('exit', () => r());
      proc.kill('SIGTERM');
    }),
  };
}
