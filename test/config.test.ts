// Settings: defaults < config file (YAML or JSON) < GATEWAY_* env; invalid
// settings throw a ValidationError listing every problem as `path: message`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envName, envVariables, loadSettings } from '../gateway/src/config/load.js';
import { ValidationError } from '../gateway/src/core/validation.js';

const fixtures = resolve(import.meta.dirname, 'fixtures');

/** Runs fn and returns the ValidationError it throws (fails the test otherwise). */
function validationErrorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

describe('loadSettings', () => {
  // loadSettings looks for gateway.yaml/.yml/.json in the working directory;
  // run in an empty one so a developer's own config file cannot leak in.
  let cwd: string;
  let dir: string;
  beforeEach(() => {
    cwd = process.cwd();
    dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    process.chdir(dir);
  });
  afterEach(() => {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives valid defaults with no file and no env', () => {
    const s = loadSettings({ env: {} });
    expect(s.ns).toBe('commune');
    expect(s.dataDir).toBe('./data');
    expect(s.broker).toMatchObject({ mode: 'embedded', port: 1883, tlsPort: 8883, url: '' });
    expect(s.http).toMatchObject({ host: '0.0.0.0', port: 8080, secureCookies: false });
    expect(s.log.level).toBe('info');
    expect(s.timeZone).toBe('Asia/Ho_Chi_Minh');
  });

  it('loads a YAML file over the defaults', () => {
    const s = loadSettings({ file: join(fixtures, 'gateway.yaml'), env: {} });
    expect(s.ns).toBe('xa-an-binh');
    expect(s.dataDir).toBe('/var/lib/commune');
    expect(s.broker.port).toBe(1884);
    expect(s.broker.maxPayloadBytes).toBe(4096);
    expect(s.broker.mode).toBe('embedded'); // untouched keys keep their defaults
    expect(s.http.port).toBe(9090);
    expect(s.log.level).toBe('debug');
  });

  it('loads a JSON file over the defaults', () => {
    const s = loadSettings({ file: join(fixtures, 'gateway.json'), env: {} });
    expect(s.ns).toBe('xa-phu-my');
    expect(s.http.port).toBe(8081);
    expect(s.http.secureCookies).toBe(true);
    expect(s.health.heartbeatSeconds).toBe(15);
    expect(s.broker.port).toBe(1883);
  });

  it('finds gateway.yaml in the working directory, or the file named by GATEWAY_CONFIG', () => {
    writeFileSync(join(dir, 'gateway.yaml'), 'http:\n  port: 7000\n');
    expect(loadSettings({ env: {} }).http.port).toBe(7000);
    expect(loadSettings({ env: { GATEWAY_CONFIG: join(fixtures, 'gateway.json') } }).http.port).toBe(8081);
  });

  it('refuses a named config file that does not exist', () => {
    const err = validationErrorOf(() => loadSettings({ env: { GATEWAY_CONFIG: join(dir, 'missing.yaml') } }));
    expect(err.errors).toEqual([`${join(dir, 'missing.yaml')}: file not found`]);
  });

  it('applies GATEWAY_* env overrides over the file, coercing numbers and booleans', () => {
    const s = loadSettings({
      file: join(fixtures, 'gateway.yaml'),
      env: {
        GATEWAY_BROKER_PORT: '1999',
        GATEWAY_HTTP_SECURE_COOKIES: 'true',
        GATEWAY_HEALTH_WEAK_RSSI_DBM: '-90.5',
        GATEWAY_BROKER_TLS_PORT: '0',
        GATEWAY_NS: 'xa-moi',
      },
    });
    expect(s.broker.port).toBe(1999);
    expect(s.http.secureCookies).toBe(true);
    expect(s.health.weakRssiDbm).toBe(-90.5);
    expect(s.broker.tlsPort).toBe(0);
    expect(s.ns).toBe('xa-moi');
    expect(s.http.port).toBe(9090); // from the file, not overridden
  });

  it('derives one env variable per leaf setting', () => {
    expect(envName(['broker', 'tlsCertFile'])).toBe('GATEWAY_BROKER_TLS_CERT_FILE');
    const names = envVariables().map((v) => v.name);
    expect(names).toContain('GATEWAY_BROKER_PORT');
    expect(names).toContain('GATEWAY_HTTP_SECURE_COOKIES');
    expect(names).toContain('GATEWAY_DATA_DIR');
    expect(new Set(names).size).toBe(names.length);
  });

  it('media, ffmpeg and tts settings: defaults, env overrides, and tts.command required for the command engine', () => {
    const s = loadSettings({ env: {} });
    expect(s.media).toMatchObject({ maxUploadMb: 50, maxSeconds: 900, bitrateKbps: 64, sampleRate: 44100, jobTimeoutSeconds: 300, loudness: { i: -16, tp: -1.5, lra: 11 } });
    expect(s.ffmpeg).toEqual({ ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe', quitGraceSeconds: 3, termGraceSeconds: 2 });
    expect(s.tts).toMatchObject({ engine: 'espeak', espeakPath: 'espeak-ng', defaultVoice: 'vi', rate: 150, pitch: 50, style: 'north', dictionaryFile: '' });
    expect(s.tts.command).toBeUndefined();
    const env = { GATEWAY_MEDIA_BITRATE_KBPS: '96', GATEWAY_MEDIA_LOUDNESS_I: '-23', GATEWAY_TTS_ENGINE: 'command', GATEWAY_TTS_COMMAND_NAME: 'piper',
      GATEWAY_TTS_COMMAND_ARGV: '["piper","--output_file","{out}"]', GATEWAY_TTS_COMMAND_VOICES: '{"vi":"vi.onnx"}' };
    const e = loadSettings({ env });
    expect(e.media.bitrateKbps).toBe(96);
    expect(e.media.loudness.i).toBe(-23);
    expect(e.tts.command).toEqual({ name: 'piper', argv: ['piper', '--output_file', '{out}'], voices: { vi: 'vi.onnx' } });
    expect(validationErrorOf(() => loadSettings({ env: { GATEWAY_TTS_ENGINE: 'command' } })).errors).toEqual(['tts.command: is required when tts.engine is "command"']);
    expect(validationErrorOf(() => loadSettings({ env: { GATEWAY_MEDIA_BITRATE_KBPS: '100' } })).errors[0]).toMatch(/^media\.bitrateKbps: must be one of/);
  });

  it('reports every error of an invalid file at once, as path: message', () => {
    const err = validationErrorOf(() => loadSettings({ file: join(fixtures, 'gateway-invalid.yaml'), env: {} }));
    expect(err.errors).toEqual(
      expect.arrayContaining([
        'broker.port: must be <= 65535',
        'http.nope: is not an allowed property',
        'broker.mode: must be one of "embedded", "external"',
        'log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
        expect.stringMatching(/^ns: must match pattern/),
      ]),
    );
    expect(err.errors).toHaveLength(5);
    for (const line of err.errors) expect(line).toMatch(/^[a-zA-Z.]+: \S/);
    // The message carries every line too (it is what the gateway prints).
    for (const line of err.errors) expect(err.message).toContain(line);
  });

  it('rejects env values of the wrong type', () => {
    const err = validationErrorOf(() =>
      loadSettings({ env: { GATEWAY_HTTP_PORT: 'abc', GATEWAY_HTTP_SECURE_COOKIES: 'yes' } }),
    );
    expect(err.errors).toContain('http.port: must be integer');
    expect(err.errors).toContain('http.secureCookies: must be boolean');
  });

  it('rejects external broker mode without a url, and accepts it with one', () => {
    const err = validationErrorOf(() => loadSettings({ env: { GATEWAY_BROKER_MODE: 'external' } }));
    expect(err.errors).toEqual(['broker.url: is required when broker.mode is "external"']);

    const s = loadSettings({
      env: {
        GATEWAY_BROKER_MODE: 'external',
        GATEWAY_BROKER_URL: 'mqtt://mosquitto:1883',
        GATEWAY_BROKER_USERNAME: 'gateway',
        GATEWAY_BROKER_PASSWORD: 's3cret',
      },
    });
    expect(s.broker).toMatchObject({ mode: 'external', url: 'mqtt://mosquitto:1883', username: 'gateway', password: 's3cret' });
  });

  it('rejects a TLS cert without its key', () => {
    const err = validationErrorOf(() => loadSettings({ env: { GATEWAY_BROKER_TLS_CERT_FILE: '/etc/gw/cert.pem' } }));
    expect(err.errors).toEqual(['broker.tlsKeyFile: tlsCertFile and tlsKeyFile must be set together']);
  });
});
