// docker-compose.yml: valid for docker compose (when it is installed), and the
// shape the README promises: gateway ports and data volume, mosquitto opt-in.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = resolve(import.meta.dirname, '..');
const composeFile = join(root, 'docker-compose.yml');

// `docker compose` (v2 plugin) where installed, else Debian 12's docker-compose 1.29
// (scripts/install-deps.sh installs it): both validate without a Docker engine.
const ok = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 }).status === 0;
const composeCmd: string[] | null = ok('docker', ['compose', 'version']) ? ['docker', 'compose'] : ok('docker-compose', ['version']) ? ['docker-compose'] : null;
const hasCompose = composeCmd !== null;

interface Service {
  build?: unknown;
  image?: string;
  ports?: string[];
  volumes?: string[];
  environment?: string[];
  profiles?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

describe('docker-compose.yml', () => {
  it.skipIf(!hasCompose)(
    `passes ${composeCmd?.join(' ') ?? 'docker compose'} config${hasCompose ? '' : ' (skipped: neither docker compose nor docker-compose is installed)'}`,
    () => {
      const [cmd, ...pre] = composeCmd!;
      const r = spawnSync(cmd!, [...pre, '-f', composeFile, 'config', '-q'], { cwd: root, encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(0);
    },
  );

  const compose = parse(readFileSync(composeFile, 'utf8')) as Compose;

  it('builds the gateway from the Dockerfile with HTTP, MQTT and MQTT/TLS ports', () => {
    const gw = compose.services.gateway!;
    expect(gw).toBeDefined();
    expect(gw.build).toBe('.');
    const published = (gw.ports ?? []).map((p) => String(p));
    for (const port of ['8080:8080', '1883:1883', '8883:8883']) expect(published).toContain(port);
    expect(gw.profiles).toBeUndefined(); // always started
  });

  it('keeps the gateway data in a named volume at /app/data', () => {
    const gw = compose.services.gateway!;
    expect(gw.volumes).toContain('gateway-data:/app/data');
    expect(compose.volumes).toHaveProperty('gateway-data');
  });

  it('lets the environment set the admin password and switch to an external broker', () => {
    const env = compose.services.gateway!.environment ?? [];
    expect(env).toContain('GATEWAY_ADMIN_PASSWORD'); // passed through only when set
    expect(env).toContain('GATEWAY_BROKER_MODE=${GATEWAY_BROKER_MODE:-embedded}');
    expect(env.some((e) => e.startsWith('GATEWAY_BROKER_URL='))).toBe(true);
  });

  it('runs mosquitto only under the external-broker profile, with the repo config mounted', () => {
    const mq = compose.services.mosquitto!;
    expect(mq).toBeDefined();
    expect(mq.image).toBe('eclipse-mosquitto:2');
    expect(mq.profiles).toEqual(['external-broker']);
    expect(mq.volumes).toContain('./docker/mosquitto:/mosquitto/config:ro');
    const conf = readFileSync(join(root, 'docker', 'mosquitto', 'mosquitto.conf'), 'utf8');
    expect(conf).toMatch(/^listener 1883$/m);
    expect(conf).toMatch(/^allow_anonymous false$/m);
    expect(conf).toMatch(/^password_file \/mosquitto\/config\/passwd$/m);
    expect(conf).toMatch(/^acl_file \/mosquitto\/config\/acl$/m);
  });

  it('has a Dockerfile that exposes the same ports and the data volume', () => {
    const df = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(df).toMatch(/^FROM node:22-bookworm-slim$/m);
    expect(df).toMatch(/^EXPOSE 8080 1883 8883$/m);
    expect(df).toMatch(/^VOLUME \/app\/data$/m);
    expect(df).toMatch(/^CMD \["node", "gateway\/dist\/main\.js"\]$/m);
  });
});
