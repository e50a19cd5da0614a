// The gateway's settings, defined once. Defaults live here and nowhere else;
// env overrides are derived from this schema (see load.ts), so a new setting
// needs no extra wiring.
import { commandEngineSchema, type CommandEngineConfig } from '../tts/command-engine.js';

export const settingsSchema = {
  $id: 'https://commune-gateway.local/schemas/settings.json',
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    ns: {
      type: 'string', default: 'commune', pattern: '^[a-z0-9][a-z0-9-]{0,31}$',
      description: 'MQTT topic root; several communes on one broker use different roots',
    },
    dataDir: { type: 'string', default: './data', minLength: 1 },
    timeZone: { type: 'string', default: 'Asia/Ho_Chi_Minh', description: 'zone used to show and schedule; storage is always UTC' },
    log: {
      type: 'object', additionalProperties: false, default: {},
      properties: { level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' } },
    },
    http: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        secureCookies: { type: 'boolean', default: false, description: 'set when served behind HTTPS' },
        sessionHours: { type: 'number', exclusiveMinimum: 0, maximum: 720, default: 12 },
        loginAttemptsPerMinute: { type: 'integer', minimum: 1, default: 5 },
      },
    },
    broker: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        mode: { enum: ['embedded', 'external'], default: 'embedded' },
        host: { type: 'string', default: '0.0.0.0', description: 'embedded: listen address' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 1883 },
        tlsPort: { type: 'integer', minimum: 0, maximum: 65535, default: 8883 },
        tlsCertFile: { type: 'string', default: '', description: 'embedded: enables TLS on tlsPort when set with tlsKeyFile' },
        tlsKeyFile: { type: 'string', default: '' },
        url: { type: 'string', default: '', description: 'external: e.g. mqtt://127.0.0.1:1883' },
        username: { type: 'string', default: '', description: 'external: the gateway\'s own credentials' },
        password: { type: 'string', default: '' },
        maxPayloadBytes: { type: 'integer', minimum: 256, maximum: 1048576, default: 16384 },
        deviceMessagesPerSecond: { type: 'number', exclusiveMinimum: 0, default: 20, description: 'per-device flood limit; excess is dropped and counted' },
        connectFailuresPerMinute: { type: 'integer', minimum: 0, maximum: 1000, default: 10, description: 'embedded: wrong-secret CONNECTs per client IP and device id per minute before further ones are refused unchecked (0: off)' },
      },
    },
    health: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        heartbeatSeconds: { type: 'number', exclusiveMinimum: 0, default: 30 },
        missedHeartbeats: { type: 'integer', minimum: 1, default: 3 },
        offlineAlarmMinutes: { type: 'number', minimum: 0, default: 10 },
        weakRssiDbm: { type: 'number', default: -85 },
        highTemperatureC: { type: 'number', default: 70 },
        clockSkewMs: { type: 'integer', minimum: 0, default: 2000 },
        checkIntervalSeconds: { type: 'number', exclusiveMinimum: 0, default: 5 },
      },
    },
    commands: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        ackTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, default: 10 },
        expireHours: { type: 'number', exclusiveMinimum: 0, default: 72, description: 'owed commands older than this are dropped as expired' },
      },
    },
    provisioning: {
      type: 'object', additionalProperties: false, default: {},
      description: 'what provisioning bundles tell a device (firmware-config templates)',
      properties: {
        publicHost: { type: 'string', default: '', description: 'host or IP devices use to reach the gateway (MQTT, media, NTP); empty: the address the technician\'s browser used' },
        mediaBaseUrl: { type: 'string', default: '', pattern: '^(https?://[^\\s]+)?$', description: 'gateway HTTP base for prefetch paths; empty: http://<publicHost>:<http.port>' },
        ntpServer: { type: 'string', default: '', pattern: '^[A-Za-z0-9.:-]*$', description: 'time server in bundles; empty: the gateway host (run chrony/ntpd there) — or e.g. vn.pool.ntp.org' },
        caFile: { type: 'string', default: '', description: 'PEM of the CA of the broker certificate; set: bundles use TLS and carry it, and the gateway\'s own link verifies an mqtts:// external broker against it (empty: system CAs)' },
        linkMinutes: { type: 'integer', minimum: 1, maximum: 1440, default: 30, description: 'a bundle link works once, for this long' },
      },
    },
    province: {
      type: 'object', additionalProperties: false, default: {},
      description: 'priority bulletins from the provincial system, bridged to <ns>/province/bulletin (docs/scale-out.md)',
      properties: {
        enabled: { type: 'boolean', default: false, description: 'subscribe to <ns>/province/bulletin and broadcast valid bulletins (audit actor "province")' },
      },
    },
    media: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        maxUploadMb: { type: 'number', exclusiveMinimum: 0, maximum: 1024, default: 50, description: 'largest accepted upload; bigger ones get 413 while streaming' },
        maxSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 4 * 3600, default: 900, description: 'longest accepted audio' },
        bitrateKbps: { type: 'integer', enum: [32, 48, 64, 96, 128], default: 64, description: 'MP3 mono bitrate of stored items' },
        sampleRate: { type: 'integer', enum: [22050, 44100, 48000], default: 44100 },
        jobTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600, default: 300, description: 'per ffmpeg job' },
        signedUrlTtlSeconds: { type: 'integer', minimum: 60, maximum: 7 * 24 * 3600, default: 6 * 3600, description: 'default lifetime of signed download URLs for devices' },
        loudness: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            i: { type: 'number', minimum: -30, maximum: -5, default: -16, description: 'integrated loudness target, LUFS' },
            tp: { type: 'number', minimum: -9, maximum: 0, default: -1.5, description: 'true peak ceiling, dBTP' },
            lra: { type: 'number', minimum: 1, maximum: 20, default: 11, description: 'loudness range target, LU' },
          },
        },
      },
    },
    broadcasts: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        validityMinutes: { type: 'number', exclusiveMinimum: 0, maximum: 7 * 24 * 60, default: 60, description: 'default validity after playAt; offline speakers get a broadcast when they reconnect within it, later it is marked missed' },
        immediateLeadMs: { type: 'integer', minimum: 0, maximum: 60_000, default: 3000, description: 'immediate normal/priority broadcasts start this long after sending, so speakers download first and start together' },
        emergencyLeadMs: { type: 'integer', minimum: 0, maximum: 10_000, default: 500, description: 'the same for emergency broadcasts (they must start within 1 s)' },
        prefetchLeadMinutes: { type: 'number', minimum: 0, maximum: 24 * 60, default: 30, description: 'scheduled broadcasts are sent to speakers this long before they play' },
        emergencyVolume: { type: ['integer', 'null'], minimum: 0, maximum: 100, default: 90, description: 'speaker volume during emergency broadcasts (restored after); null leaves it' },
        proofGraceSeconds: { type: 'number', minimum: 0, maximum: 3600, default: 120, description: 'how long after validUntil + duration a speaker may still report the end of play' },
        retrySeconds: { type: 'number', minimum: 0, maximum: 3600, default: 5, description: 'a speaker whose download failed gets the prefetch again after about this long (x attempt, jittered); 3 attempts in all' },
      },
    },
    schedule: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        dir: { type: 'string', default: '', description: 'folder of programme files (YAML/JSON); empty: <dataDir>/schedules. The repo\'s schedules/ holds an example' },
        leadMinutes: { type: 'number', minimum: 0, maximum: 24 * 60, default: 30, description: 'each occurrence becomes a broadcast this long before air time (TTS rendered, prefetch on its way)' },
        graceMinutes: { type: 'number', minimum: 0, maximum: 24 * 60, default: 10, description: 'after downtime, occurrences missed by less than this run late; older ones are marked missed' },
        tickSeconds: { type: 'number', minimum: 0.05, maximum: 60, default: 1, description: 'how often the runner compares the clock with the programme' },
      },
    },
    cameras: {
      type: 'object', additionalProperties: false, default: {},
      description: 'desk cameras recorded continuously (stream copy, MPEG-TS segments); the cameras themselves are registered through /api/cameras',
      properties: {
        dir: { type: 'string', default: '', description: 'recordings root; empty: <dataDir>/recordings' },
        segmentSeconds: { type: 'integer', minimum: 2, maximum: 60, default: 10 },
        stallFactor: { type: 'number', minimum: 2, maximum: 10, default: 3, description: 'no new segment for this many segment lengths = stalled, ffmpeg restarted' },
        ioTimeoutSeconds: { type: 'integer', minimum: 2, maximum: 60, default: 10 },
        backoffMaxSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 30 },
        downAlarmSeconds: { type: 'integer', minimum: 5, maximum: 3600, default: 30, description: 'a camera not recording this long raises a camera-down alarm' },
        credentialProxy: { type: 'boolean', default: true, description: 'ffmpeg opens a camera with a login through a loopback RTSP proxy that answers the camera\'s challenge, so the password is never on ffmpeg\'s command line (world-readable in /proc); false: the password goes in the URL' },
        retention: {
          type: 'object', additionalProperties: false, default: {},
          description: 'what recordings are kept: the oldest unprotected segments go first',
          properties: {
            days: { type: 'integer', minimum: 1, maximum: 3650, default: 30, description: 'untagged recordings older than this are deleted' },
            quotaGb: { type: 'number', minimum: 0, default: 0, description: 'recordings never use more than this; 0: no quota (minFreeGb still applies)' },
            minFreeGb: { type: 'number', minimum: 0, default: 2, description: 'free disk space kept on the recordings file system' },
            tagKeepDays: { type: 'integer', minimum: 1, maximum: 3650, default: 90, description: 'segments covered by a tag are kept this long' },
            sweepSeconds: { type: 'integer', minimum: 5, maximum: 3600, default: 60 },
          },
        },
        tags: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            preSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 30, description: 'a tag covers this much video before its time' },
            postSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 60 },
            lowRatingMax: { type: 'integer', minimum: 1, maximum: 5, default: 2, description: 'keypad scores up to this one tag the desk camera' },
            motionMergeSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 30, description: 'motion within this gap extends the previous motion tag' },
          },
        },
        onvif: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            discoveryMs: { type: 'integer', minimum: 200, maximum: 30000, default: 3000 },
            clockWarnSeconds: { type: 'number', minimum: 0.1, maximum: 3600, default: 2, description: 'camera clock further off than this: a warning (evidence timestamps depend on it)' },
            pullSeconds: { type: 'integer', minimum: 1, maximum: 60, default: 10, description: 'PullPoint long-poll timeout' },
            backoffMaxSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 300 },
          },
        },
        exportDir: { type: 'string', default: '', description: 'evidence exports; empty: <dataDir>/exports' },
        desks: {
          type: 'array', default: [], maxItems: 32,
          description: 'one-stop desks: which keypads rate which desk (a camera names its desk in the registry)',
          items: {
            type: 'object', additionalProperties: false, required: ['id'],
            properties: {
              id: { type: 'string', pattern: '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$' },
              name: { type: 'string', default: '' },
              keypads: { type: 'array', default: [], items: { type: 'string', minLength: 1 } },
            },
          },
        },
      },
    },
    ffmpeg: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        ffmpegPath: { type: 'string', minLength: 1, default: 'ffmpeg' },
        ffprobePath: { type: 'string', minLength: 1, default: 'ffprobe' },
        quitGraceSeconds: { type: 'number', minimum: 0, maximum: 60, default: 3, description: 'after "q" on a timed-out job, before SIGTERM' },
        termGraceSeconds: { type: 'number', minimum: 0, maximum: 60, default: 2, description: 'after SIGTERM, before SIGKILL' },
      },
    },
    tts: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        engine: { enum: ['espeak', 'command'], default: 'espeak', description: 'command: any speech program from tts.command (e.g. Piper)' },
        espeakPath: { type: 'string', minLength: 1, default: 'espeak-ng' },
        defaultVoice: { type: 'string', minLength: 1, default: 'vi' },
        rate: { type: 'integer', minimum: 80, maximum: 450, default: 150, description: 'words per minute' },
        pitch: { type: 'integer', minimum: 0, maximum: 99, default: 50 },
        style: { enum: ['north', 'south'], default: 'north', description: 'how numbers are read: north (linh, nghìn) or south (lẻ, ngàn)' },
        dictionaryFile: { type: 'string', default: '', description: 'abbreviation dictionary JSON; empty: the built-in one' },
        command: { ...commandEngineSchema, description: 'required when engine is "command"; env: JSON for argv and voices' },
      },
    },
  },
} as const;

export interface Settings {
  ns: string;
  dataDir: string;
  timeZone: string;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  http: { host: string; port: number; secureCookies: boolean; sessionHours: number; loginAttemptsPerMinute: number };
  broker: {
    mode: 'embedded' | 'external'; host: string; port: number; tlsPort: number; tlsCertFile: string; tlsKeyFile: string;
    url: string; username: string; password: string; maxPayloadBytes: number; deviceMessagesPerSecond: number; connectFailuresPerMinute: number;
  };
  health: {
    heartbeatSeconds: number; missedHeartbeats: number; offlineAlarmMinutes: number; weakRssiDbm: number;
    highTemperatureC: number; clockSkewMs: number; checkIntervalSeconds: number;
  };
  commands: { ackTimeoutSeconds: number; expireHours: number };
  provisioning: { publicHost: string; mediaBaseUrl: string; ntpServer: string; caFile: string; linkMinutes: number };
  province: { enabled: boolean };
  media: {
    maxUploadMb: number; maxSeconds: number; bitrateKbps: 32 | 48 | 64 | 96 | 128; sampleRate: 22050 | 44100 | 48000;
    jobTimeoutSeconds: number; signedUrlTtlSeconds: number; loudness: { i: number; tp: number; lra: number };
  };
  broadcasts: {
    validityMinutes: number; immediateLeadMs: number; emergencyLeadMs: number; prefetchLeadMinutes: number;
    emergencyVolume: number | null; proofGraceSeconds: number; retrySeconds: number;
  };
  schedule: { dir: string; leadMinutes: number; graceMinutes: number; tickSeconds: number };
  cameras: {
    dir: string; segmentSeconds: number; stallFactor: number; ioTimeoutSeconds: number; backoffMaxSeconds: number; downAlarmSeconds: number; credentialProxy: boolean;
    retention: { days: number; quotaGb: number; minFreeGb: number; tagKeepDays: number; sweepSeconds: number };
    tags: { preSeconds: number; postSeconds: number; lowRatingMax: number; motionMergeSeconds: number };
    onvif: { discoveryMs: number; clockWarnSeconds: number; pullSeconds: number; backoffMaxSeconds: number };
    exportDir: string;
    desks: Array<{ id: string; name: string; keypads: string[] }>;
  };
  ffmpeg: { ffmpegPath: string; ffprobePath: string; quitGraceSeconds: number; termGraceSeconds: number };
  tts: {
    engine: 'espeak' | 'command'; espeakPath: string; defaultVoice: string; rate: number; pitch: number;
    style: 'north' | 'south'; dictionaryFile: string; command?: CommandEngineConfig;
  };
}

/** Settings in test or code: a partial tree merged over the defaults. */
export type SettingsInput = { [K in keyof Settings]?: Settings[K] extends object ? Partial<Settings[K]> : Settings[K] };
