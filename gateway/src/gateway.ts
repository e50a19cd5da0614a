// Composition root: builds every service once, starts them in order and stops
// them in reverse, each step in its own try/catch so one failing stop does not
// leave the rest running. No globals: everything hangs off GatewayContext.
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Settings } from './config/schema.js';
import { EventBus } from './core/bus.js';
import { Metrics } from './core/metrics.js';
import { Store } from './store/store.js';
import { CoalescedJsonFile, SerialWriter, readJsonFile, removeStaleTemps } from './store/atomic-write.js';
import { Topics } from './mqtt/topics.js';
import { MqttLink } from './mqtt/link.js';
import { AccessPolicy } from './broker/policy.js';
import { EmbeddedBroker } from './broker/embedded.js';
import { DeviceContract } from './devices/contract.js';
import { Registry } from './devices/registry.js';
import { Ingest } from './devices/ingest.js';
import { DeviceInbox } from './devices/inbox.js';
import { verifyDeviceSecret } from './devices/secret.js';
import { Presence } from './health/presence.js';
import { HealthHistory } from './health/history.js';
import { Alarms } from './health/alarms.js';
import { Dispatcher } from './commands/dispatcher.js';
import { Users } from './auth/users.js';
import { generatePassword } from './auth/password.js';
import { AuditLog } from './audit/audit.js';
import { buildApp } from './http/app.js';
import { MediaUrlSigner } from './http/media-urls.js';
import { Ffmpeg } from './ffmpeg/ffmpeg.js';
import type { TtsEngine } from './tts/engine.js';
import { EspeakEngine } from './tts/espeak.js';
import { CommandEngine } from './tts/command-engine.js';
import { defaultDictionary, loadDictionaryFile, type Dictionary } from './tts/normalize-vi.js';
import { MediaLibrary } from './media/library.js';
import { BroadcastStore } from './broadcast/store.js';
import { BroadcastService } from './broadcast/service.js';
import { StreamHub } from './broadcast/streams.js';
import { signStreamUrl } from './http/routes/streams.js';
import { SegmentIndex } from './cameras/segments.js';
import { CameraSecrets } from './cameras/secrets.js';
import { CameraRegistry } from './cameras/registry.js';
import { CameraManager } from './cameras/manager.js';
import { ScheduleService } from './schedule/service.js';
import { TagService } from './cameras/tags.js';
import { CaseService } from './cameras/cases.js';
import { RetentionService } from './cameras/retention.js';
import { CoverageIndex } from './cameras/coverage.js';
import { ExportService } from './cameras/exports.js';
import { FirmwareStore } from './ota/images.js';
import { CampaignService } from './ota/campaigns.js';
import { signFirmwareUrl } from './http/routes/firmware.js';
import { RatingStore } from './ratings/store.js';
import { ProvinceService } from './province/service.js';

export interface GatewayContext {
  settings: Settings;
  log: Logger;
  bus: EventBus;
  metrics: Metrics;
  store: Store;
  topics: Topics;
  contract: DeviceContract;
  registry: Registry;
  users: Users;
  audit: AuditLog;
  presence: Presence;
  history: HealthHistory;
  alarms: Alarms;
  dispatcher: Dispatcher;
  /** null in external broker mode */
  broker: EmbeddedBroker | null;
  link: MqttLink;
  ffmpeg: Ffmpeg;
  tts: TtsEngine;
  /** Abbreviations for text normalisation (tts.dictionaryFile or the built-in one). */
  ttsDictionary: Dictionary;
  media: MediaLibrary;
  /** A device download path for a media item: `/media/<id>.mp3?exp=…&sig=…`, valid ttlSeconds. */
  signMediaUrl: (id: string, ttlSeconds?: number) => { url: string; exp: number };
  mediaUrls: MediaUrlSigner;
  broadcasts: BroadcastService;
  /** Live and relay streams: one encoder each, fanned out to the speakers. */
  streams: StreamHub;
  /** Recorded segments of the desk cameras (per-hour index files, not the store). */
  segments: SegmentIndex;
  /** The desk cameras (store, credentials sealed). */
  cameras: CameraRegistry;
  /** One recorder (and ONVIF session) per enabled camera, following the registry. */
  cameraManager: CameraManager;
  /** The broadcast programme: files, runner, journal, calendar and log. */
  schedule: ScheduleService;
  /** Event tags of the desk cameras (own append-only log in <dataDir>/tags, not the store). */
  tags: TagService;
  /** Complaint cases (store), their tags, exports and legal hold. */
  cases: CaseService;
  /** What recordings are kept (age, quota, free space; tags and legal holds protect): cameras/retention.ts. */
  retention: RetentionService;
  /** Evidence exports (MP4 by stream copy + SHA-256 manifest), records in <exportDir>/exports.jsonl. */
  exports: ExportService;
  /** Firmware images for OTA (<dataDir>/firmware, own small index). */
  firmware: FirmwareStore;
  /** Staged OTA campaigns (<dataDir>/ota, one file each). */
  ota: CampaignService;
  /** Per-hour coverage summaries of the recordings for long timelines (read-only, on ctx.segments). */
  coverage: CoverageIndex;
  /** Keypad ratings and the desk duty roster (own JSON-lines files in <dataDir>/ratings, not the store). */
  ratings: RatingStore;
  /** Province bulletins → broadcasts (province.enabled; null when off). */
  province: ProvinceService | null;
  now: () => number;
}

interface Service {
  name: string;
  start: () => Promise<void> | void;
  stop: () => Promise<void> | void;
}

export interface GatewayOptions {
  log?: Logger;
  /** Password for the first admin; otherwise GATEWAY_ADMIN_PASSWORD or a generated one printed once. */
  adminPassword?: string;
  /** Called with the generated first-admin password (default: print to stdout). */
  onAdminCreated?: (username: string, password: string, generated: boolean) => void;
  now?: () => number;
}

export class Gateway {
  readonly ctx: GatewayContext;
  private services: Service[] = [];
  private started: Service[] = [];
  app: FastifyInstance | null = null;
  httpPort = 0;

  private constructor(ctx: GatewayContext, private readonly opts: GatewayOptions) {
    this.ctx = ctx;
  }

  static async create(settings: Settings, opts: GatewayOptions = {}): Promise<Gateway> {
    const log = opts.log ?? pino({ level: settings.log.level, base: { svc: 'gateway' } });
    const now = opts.now ?? Date.now;
    const dataDir = resolve(settings.dataDir);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const bus = new EventBus((err, event) => log.error({ err, event }, 'event listener failed'));
    const metrics = new Metrics();
    const store = await Store.open(join(dataDir, 'gateway.json'), {
      onWriteError: (err) => log.error({ err }, 'store write failed; change undone, previous state kept on disk'),
      // Nothing can be saved while the disk is full (alarms live in the store too): /healthz shows it live;
      // once writes succeed again the outage goes into the alarm history (opened at the first failure's detail, cleared now).
      onWriteRecovered: ({ failingSince, lastError }) => {
        log.warn({ failingSince, lastError }, 'store writes succeed again');
        const detail = `store file not saved from ${failingSince ?? '?'} to ${new Date(now()).toISOString()}: ${lastError?.reason ?? 'write failed'}; refused changes were undone`;
        void alarms.open('store', 'storage-full', detail).then(() => alarms.clear('store', 'storage-full')).catch((err: unknown) => log.error({ err }, 'store outage alarm not saved'));
      },
    });
    const topics = new Topics(settings.ns);
    const contract = new DeviceContract();
    const registry = new Registry(store, bus, () => new Date(now()));
    const users = new Users(store, () => new Date(now()));
    const audit = new AuditLog(join(dataDir, 'audit.log'), () => new Date(now()));
    const presence = new Presence({
      bus, heartbeatMs: settings.health.heartbeatSeconds * 1000, missedHeartbeats: settings.health.missedHeartbeats,
      authoritativeLinks: settings.broker.mode === 'embedded', now,
    });
    const history = new HealthHistory(now);
    const alarms = new Alarms({ store, bus, presence, health: settings.health, now });

    const gatewayCreds = settings.broker.mode === 'embedded'
      ? { username: `gateway-${settings.ns}`, password: randomBytes(24).toString('base64url') }
      : { username: settings.broker.username, password: settings.broker.password };
    const refused = metrics.counter('gateway_mqtt_refused_total', 'Refused MQTT connects, publishes and subscribes');
    const refusalLogged = new Map<string, number>();
    // Embedded broker: device events are on disk before their PUBACK, replayed at start (devices/inbox.ts).
    const inbox = settings.broker.mode === 'embedded'
      ? new DeviceInbox({
        dir: join(dataDir, 'inbox'), log,
        // What the events changed, made durable: broadcast deliveries (coalesced) and ratings (fdatasync'ed in order).
        saved: async () => {
          await new Promise((r) => setImmediate(r));
          await Promise.all([broadcastStore.saveNow(), ratings.idle()]);
        },
      })
      : null;
    const broker = settings.broker.mode === 'embedded'
      ? new EmbeddedBroker({
        host: settings.broker.host, port: settings.broker.port,
        // room for the topic and headers on top of the largest accepted payload
        maxPacketBytes: settings.broker.maxPayloadBytes + 1024,
        tls: settings.broker.tlsCertFile ? { port: settings.broker.tlsPort, certFile: settings.broker.tlsCertFile, keyFile: settings.broker.tlsKeyFile } : undefined,
        gateway: gatewayCreds,
        findDevice: (id) => registry.device(id),
        verifySecret: verifyDeviceSecret,
        policy: new AccessPolicy(topics),
        connectFailuresPerMinute: settings.broker.connectFailuresPerMinute,
        onRefused: (what, clientId, detail) => {
          refused({ what });
          // One line per client and kind per 10 s: a hammering device must not flood the log (the metric counts all).
          const k = `${what} ${clientId ?? '-'}`;
          const t = now();
          if ((refusalLogged.get(k) ?? -Infinity) > t - 10_000) return;
          if (refusalLogged.size > 10_000) refusalLogged.clear();
          refusalLogged.set(k, t);
          log.warn({ what, clientId, detail }, 'mqtt refused');
        },
        onLink: (deviceId, connected) => bus.emit('device.link', { deviceId, connected, at: now() }),
        onCommandSubscription: (deviceId) => bus.emit('device.ready', { deviceId, at: now(), via: 'subscribe' }),
        beforeAck: (_deviceId, topic, payload) => (inbox && topics.parseDeviceTopic(topic)?.channel === 'event' ? inbox.write(topic, payload) : undefined),
        log,
      })
      : null;

    let ingest: Ingest | null = null;
    let province: ProvinceService | null = null;
    const bulletinTopic = topics.provinceBulletin();
    const link = new MqttLink({
      username: gatewayCreds.username, password: gatewayCreds.password,
      clientId: `gateway-${settings.ns}-${randomBytes(4).toString('hex')}`,
      subscriptions: [...topics.gatewaySubscriptions(), ...(settings.province.enabled ? [bulletinTopic] : [])],
      onMessage: (topic, payload, retained) => (topic === bulletinTopic ? province?.handle(payload, retained) : ingest?.handle(topic, payload, retained)),
      // External mqtts:// broker: the same CA the provisioning bundles carry (one source of truth).
      caFile: settings.broker.mode === 'external' ? settings.provisioning.caFile : '',
    });
    const dispatcher = new Dispatcher({
      store, bus, topics, contract, metrics,
      publish: (topic, payload) => link.publish(topic, payload, { qos: 1 }),
      ackTimeoutMs: settings.commands.ackTimeoutSeconds * 1000,
      expireMs: settings.commands.expireHours * 3600_000,
      now,
    });
    ingest = new Ingest({
      topics, contract, bus, metrics, isKnownDevice: (id) => registry.device(id) !== undefined,
      maxPayloadBytes: settings.broker.maxPayloadBytes, messagesPerSecond: settings.broker.deviceMessagesPerSecond, log,
      now,
      // Owed work goes out once per reconnect: the subscription already triggered it (found by the fault suite).
      readyBySubscription: broker ? (id) => broker.hasCommandSubscription(id) : undefined,
    });

    const ffmpeg = new Ffmpeg({
      ffmpegPath: settings.ffmpeg.ffmpegPath, ffprobePath: settings.ffmpeg.ffprobePath,
      timeoutMs: settings.media.jobTimeoutSeconds * 1000,
      quitGraceMs: settings.ffmpeg.quitGraceSeconds * 1000, termGraceMs: settings.ffmpeg.termGraceSeconds * 1000,
    });
    const tts: TtsEngine = settings.tts.engine === 'command'
      ? new CommandEngine(settings.tts.command!)
      : new EspeakEngine({ path: settings.tts.espeakPath });
    const ttsDictionary = settings.tts.dictionaryFile ? loadDictionaryFile(settings.tts.dictionaryFile) : defaultDictionary();
    const media = new MediaLibrary({
      dataDir, ffmpeg, tts, dictionary: ttsDictionary,
      maxSeconds: settings.media.maxSeconds, maxBytes: Math.floor(settings.media.maxUploadMb * 1024 * 1024),
      bitrateKbps: settings.media.bitrateKbps, sampleRate: settings.media.sampleRate, target: settings.media.loudness,
      jobTimeoutMs: settings.media.jobTimeoutSeconds * 1000, now,
    });
    const mediaUrls = await MediaUrlSigner.open(join(dataDir, 'media-url.key'), now);
    const signMediaUrl = (id: string, ttlSeconds = settings.media.signedUrlTtlSeconds) => mediaUrls.sign(id, ttlSeconds);

    const streams = new StreamHub({ ffmpeg, bitrateKbps: settings.media.bitrateKbps, sampleRate: settings.media.sampleRate, log: log.child({ mod: 'streams' }), now });
    const broadcastStore = await BroadcastStore.open(join(dataDir, 'broadcasts'), (err) => log.error({ err }, 'broadcast store write failed'));
    const broadcasts = new BroadcastService({
      store: broadcastStore, bus, metrics, topics, settings: settings.broadcasts,
      speakers: () => registry.devices({ type: 'speaker' }),
      zones: () => registry.zones(),
      // Embedded: the broker knows this instant whether the session is live; presence lags by design.
      isOnline: (id) => (broker ? broker.isConnected(id) : presence.get(id)?.online ?? false),
      media,
      ttsDefaults: { voice: settings.tts.defaultVoice, rate: settings.tts.rate, pitch: settings.tts.pitch },
      publish: (topic, payload) => link.publish(topic, payload, { qos: 1 }),
      signMediaUrl,
      streams, signStreamUrl: (id, ttl) => signStreamUrl(mediaUrls, id, ttl),
      log, now,
    });
    streams.on('ended', (e: { id: string; reason: string; error?: string }) => broadcasts.streamEnded(e));

    const schedule = await ScheduleService.open({
      dir: settings.schedule.dir ? resolve(settings.schedule.dir) : join(dataDir, 'schedules'), dataDir, tz: settings.timeZone,
      settings: settings.schedule, broadcasts, media,
      zones: () => registry.zones(),
      speakersIn: (zoneId) => registry.devices({ zoneId, type: 'speaker' }).length,
      lateStartMs: settings.broadcasts.immediateLeadMs, log, now, metrics,
      onChanged: (what, detail) => bus.emit('schedule.changed', { what, ...detail, at: now() }),
    });

    const recordingsDir = settings.cameras.dir ? resolve(settings.cameras.dir) : join(dataDir, 'recordings');
    const segments = new SegmentIndex({ root: recordingsDir });
    const cameras = new CameraRegistry({
      store, bus, secrets: await CameraSecrets.open(dataDir), desks: () => settings.cameras.desks.map((d) => d.id), now,
    });
    const cameraManager = new CameraManager({
      registry: cameras, segments, ffmpeg, bus, alarms, settings: settings.cameras, log: log.child({ mod: 'cameras' }), metrics, now,
    });

    const tags: TagService = new TagService({
      dir: join(dataDir, 'tags'),
      settings: () => settings.cameras.tags,
      tagKeepDays: () => settings.cameras.retention.tagKeepDays,
      retentionDays: () => settings.cameras.retention.days,
      camerasOfDesk: (desk) => (store.data.cameras ?? []).filter((cam) => cam.desk === desk).map((cam) => cam.id),
      deskOfKeypad: (id) => settings.cameras.desks.find((d) => d.keypads.includes(id))?.id ?? null,
      heldTags: () => cases.heldTags(),
      caseTags: () => cases.caseTags(),
      onChanged: (t, change) => bus.emit('tag.changed', { tagId: t.id, cameraIds: t.cameraIds, type: t.type, change }),
      log: log.child({ mod: 'tags' }), now, metrics,
    });
    const cases: CaseService = new CaseService({
      store, tags, now,
      knownDesks: () => [...new Set([...settings.cameras.desks.map((d) => d.id), ...(store.data.cameras ?? []).flatMap((cam) => (cam.desk ? [cam.desk] : []))])],
      onChanged: (cc) => bus.emit('case.changed', { caseId: cc.id, at: now() }),
    });

    const retention = new RetentionService({
      index: segments, settings: () => settings.cameras.retention,
      // Tags keep their range tagKeepDays after the tag; a complaint case's tags are on hold (until: Infinity) until released.
      protection: (t) => tags.protectedRanges(t),
      alarms, metrics, log: log.child({ mod: 'retention' }), now,
      // Space is back after a full disk: recorders waiting out their backoff start again now.
      onFreed: () => { for (const c of cameras.list()) cameraManager.recorder(c.id)?.retryNow(); },
    });
    const coverage = new CoverageIndex({ index: segments, now });
    const firmware = await FirmwareStore.open(join(dataDir, 'firmware'), now);
    const ota = new CampaignService({
      dir: join(dataDir, 'ota'), firmware, log: log.child({ mod: 'ota' }), now,
      speakers: () => registry.devices({ type: 'speaker' }),
      zoneExists: (id) => registry.zone(id) !== undefined,
      send: (deviceId, params) => dispatcher.send(deviceId, 'ota', params),
      // Long enough for a slow 4G download and a retry; a re-sent command carries the same URL.
      signUrl: (sha) => signFirmwareUrl(mediaUrls, sha, 6 * 3600).url,
    });
    const exports = new ExportService({
      dir: settings.cameras.exportDir ? resolve(settings.cameras.exportDir) : join(dataDir, 'exports'),
      index: segments, ffmpeg, maxRangeMs: 2 * 3_600_000, log: log.child({ mod: 'exports' }), now,
      cameraName: (id) => cameras.get(id)?.name ?? null,
      onProgress: (r) => bus.emit('export.progress', {
        exportId: r.id, state: r.state === 'queued' ? 'running' : r.state, percent: r.percent, ...(r.error ? { error: r.error } : {}),
      }),
    });

    const ratings = new RatingStore({
      dir: join(dataDir, 'ratings'),
      deskOfKeypad: (id) => settings.cameras.desks.find((d) => d.keypads.includes(id))?.id ?? null,
      isKeypad: (id) => registry.device(id)?.type === 'keypad',
      metrics, now,
    });

    if (settings.province.enabled) {
      province = new ProvinceService({
        broadcasts, findByKey: (key) => broadcastStore.byIdempotencyKey(key), audit, metrics,
        log: log.child({ mod: 'province' }), maxPayloadBytes: settings.broker.maxPayloadBytes, now,
      });
    }

    const ctx: GatewayContext = {
      settings, log, bus, metrics, store, topics, contract, registry, users, audit, presence, history, alarms, dispatcher, broker, link,
      ffmpeg, tts, ttsDictionary, media, signMediaUrl, mediaUrls, broadcasts, streams, schedule, segments, cameras, cameraManager, tags, cases, ratings, retention, coverage, exports, firmware, ota, province, now,
    };
    const gw = new Gateway(ctx, opts);
    gw.wire(dataDir, broadcastStore, inbox ? { inbox, replay: (topic, payload) => ingest?.handle(topic, payload, false) } : null);
    return gw;
  }

  private wire(dataDir: string, broadcastStore: BroadcastStore, events: { inbox: DeviceInbox; replay: (topic: string, payload: Buffer) => void } | null): void {
    const inbox = events?.inbox ?? null;
    const { settings, log, bus, metrics, store, registry, presence, history, alarms, dispatcher, broker, link } = this.ctx;
    const liveFile = new CoalescedJsonFile(join(dataDir, 'live.json'), () => presence.snapshot(), 1000, (err) => log.error({ err }, 'live state flush failed'));
    const historyFile = join(dataDir, 'health-history.bin');
    const historyWriter = new SerialWriter(historyFile, () => history.serialize(), (err) => log.error({ err }, 'history flush failed'));
    const timers: NodeJS.Timeout[] = [];
    const offs: Array<() => void> = [];
    const tagOffs: Array<() => void> = [];
    const otaOffs: Array<() => void> = [];
    const ratingOffs: Array<() => void> = [];
    const LAG_RESOLUTION_MS = 10;
    const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });

    metrics.gauge('gateway_devices_connected', 'Devices with a live MQTT session (embedded broker) or online by heartbeat (external)', () =>
      broker ? broker.connectedDevices().length : presence.onlineCount());
    metrics.gauge('gateway_devices_online', 'Devices online (live link and fresh heartbeat)', () => presence.onlineCount());
    metrics.gauge('gateway_devices_registered', 'Registered devices', () => store.data.devices.length);
    metrics.counterFrom('gateway_mqtt_messages_out_total', 'Messages the gateway published', () => link.published);
    metrics.counterFrom('gateway_store_flushes_total', 'Full writes of the main store file', () => store.flushes);
    metrics.counterFrom('gateway_store_write_failures_total', 'Failed writes of the main store file', () => store.writeFailures);
    metrics.gauge('gateway_store_writable', '1 if the last write of the main store file succeeded, 0 while writes fail (disk full)', () => (store.health().ok ? 1 : 0));
    metrics.counterFrom('gateway_audit_write_failures_total', 'Audit entries that could not be appended (disk full)', () => this.ctx.audit.failures);
    if (inbox) {
      metrics.counterFrom('gateway_inbox_events_journaled_total', 'Device events written to disk before their PUBACK', () => inbox.journaled);
      metrics.counterFrom('gateway_inbox_syncs_total', 'fdatasync calls of the event inbox (one per group of events)', () => inbox.syncs);
      metrics.counterFrom('gateway_inbox_events_replayed_total', 'Device events replayed from the inbox at start', () => inbox.replayed);
      metrics.counterFrom('gateway_inbox_write_failures_total', 'Device events acknowledged without being journaled (disk full)', () => inbox.failures);
    }
    metrics.counterFrom('gateway_live_flushes_total', 'Coalesced writes of live device state', () => liveFile.flushes);
    metrics.gauge('gateway_alarms_open', 'Open alarms', () => store.data.alarms.filter((a) => !a.clearedAt).length);
    metrics.gauge('gateway_commands_owed', 'Commands not yet acknowledged by their device', () => store.data.owed.length);
    metrics.gauge('gateway_event_loop_lag_p99_seconds', 'Event-loop delay p99 since the last scrape', () => {
      // The histogram records whole timer periods: an idle loop reads ~10 ms. Report only the delay beyond it.
      const v = Math.max(0, lag.percentile(99) / 1e6 - LAG_RESOLUTION_MS) / 1e3;
      lag.reset();
      return v;
    });
    metrics.gauge('gateway_process_resident_memory_bytes', 'Resident set size', () => process.memoryUsage.rss());

    this.services = [
      // Opened in create(); listed first so it is closed last, after every writer.
      { name: 'store', start: () => {}, stop: () => store.close() },
      {
        name: 'live state',
        start: async () => {
          await removeStaleTemps(join(dataDir, 'live.json'));
          await removeStaleTemps(historyFile);
          presence.restore(await readJsonFile(join(dataDir, 'live.json')));
          history.restore(await readFile(historyFile).catch(() => null));
          presence.start();
          const guard = (p: Promise<unknown>) => p.catch((err) => log.error({ err }, 'health update failed'));
          offs.push(
            bus.on('device.telemetry', (e) => {
              history.recordTelemetry(e.deviceId, e.telemetry, e.at);
              liveFile.markDirty();
              void guard(alarms.onTelemetry(e.deviceId, e.telemetry, e.at));
            }),
            bus.on('device.presence', (e) => {
              history.recordPresence(e.deviceId, e.online, e.at);
              liveFile.markDirty();
              if (e.online) void guard(alarms.clear(e.deviceId, 'offline'));
            }),
            bus.on('device.state', (e) => void guard(registry.noteReported(e.deviceId, e.fw, e.model))),
            bus.on('device.changed', (e) => {
              if (e.change === 'deleted') {
                history.forget(e.deviceId);
                void guard(alarms.deviceRemoved(e.deviceId));
              }
              // A new secret or zone must take effect now: close the session so the
              // device re-authenticates and re-subscribes under the new rules.
              if (e.change === 'deleted' || e.credentials) broker?.disconnect(e.deviceId);
            }),
          );
          lag.enable();
          const sweepMs = settings.health.checkIntervalSeconds * 1000;
          timers.push(setInterval(() => {
            presence.sweep();
            for (const id of presence.ids()) if (presence.get(id)?.online) history.recordPresence(id, true);
            void guard(alarms.sweep(registry.devices().map((d) => d.id)));
          }, sweepMs));
          timers.push(setInterval(() => void historyWriter.write().catch(() => {}), 10 * 60_000));
          for (const t of timers) t.unref();
          // Registered devices never heard from still count for offline alarms.
          for (const d of registry.devices()) presence.evaluate(d.id, 'startup');
        },
        stop: async () => {
          for (const t of timers) clearInterval(t);
          for (const off of offs) off();
          presence.stop();
          lag.disable();
          await liveFile.close();
          await historyWriter.write();
        },
      },
      {
        // Before MQTT and cameras: a keypad's low rating or an ONVIF motion event must find the tag log open.
        name: 'tags',
        start: async () => {
          const { tags } = this.ctx;
          await tags.start();
          const guard = (p: Promise<unknown>) => p.catch((err) => log.error({ err }, 'tag update failed'));
          const attach = (cameraId: string) => {
            const desk = (store.data.cameras ?? []).find((cam) => cam.id === cameraId)?.desk;
            if (desk) void guard(tags.attachDesk(desk, cameraId));
          };
          tagOffs.push(
            bus.on('camera.event', (e) => tags.onCameraEvent(e)),
            bus.on('device.event', (e) => {
              // Ratings are the keypads' (device contract); a speaker sending one is ignored.
              if (e.event.type === 'rating' && registry.device(e.deviceId)?.type === 'keypad') void guard(tags.onRating(e.deviceId, e.event, e.at));
            }),
            // Low ratings kept without a camera attach once the desk gets one.
            bus.on('camera.changed', (e) => { if (e.change !== 'deleted') attach(e.cameraId); }),
          );
          for (const cam of store.data.cameras ?? []) attach(cam.id);
        },
        stop: async () => {
          for (const off of tagOffs.splice(0)) off();
          await this.ctx.tags.stop();
        },
      },
      {
        // Before MQTT: a keypad's rating must find the rating log open.
        name: 'ratings',
        start: async () => {
          const { ratings } = this.ctx;
          await ratings.start();
          ratingOffs.push(bus.on('device.event', (e) => {
            if (e.event.type !== 'rating') return;
            void ratings.record(e.deviceId, e.event, e.at).catch((err) => log.error({ err, deviceId: e.deviceId }, 'rating not stored'));
          }));
        },
        stop: async () => {
          for (const off of ratingOffs.splice(0)) off();
          await this.ctx.ratings.stop();
        },
      },
      {
        // Before broadcasts: its start clears media/tmp, where a broadcast re-rendered after a restart works.
        name: 'media',
        start: async () => {
          const { media, tts } = this.ctx;
          const removed = await media.removeTemp();
          if (removed) log.info({ removed }, 'media: removed work files left by an earlier run');
          if (!tts.voices().includes(settings.tts.defaultVoice)) {
            log.warn({ voice: settings.tts.defaultVoice, voices: tts.voices() }, 'tts.defaultVoice is not a voice of the engine; renders without a voice will fail');
          }
          if (tts instanceof EspeakEngine) {
            // A missing espeak-ng or voice must not keep the speakers' gateway down: warn, renders then fail with 502.
            const missing = await tts.missingVoices().catch((err: Error) => [`(${err.message})`]);
            if (missing.length) log.warn({ missing }, 'tts: espeak-ng voices missing; text announcements will fail');
          }
        },
        stop: () => {},
      },
      {
        name: 'mqtt broker',
        start: async () => {
          if (broker) await broker.start();
        },
        stop: async () => {
          if (broker) await broker.stop();
        },
      },
      {
        name: 'mqtt link',
        start: async () => {
          const url = broker ? `mqtt://127.0.0.1:${broker.ports.mqtt}` : settings.broker.url;
          await link.start(url);
        },
        stop: () => link.stop(),
      },
      { name: 'commands', start: () => dispatcher.start(), stop: () => dispatcher.stop() },
      {
        // Before device admission: a speaker coming back must find its owed broadcasts.
        name: 'broadcasts',
        start: () => this.ctx.broadcasts.start(),
        stop: async () => {
          await this.ctx.broadcasts.stop();
          await broadcastStore.close();
        },
      },
      {
        // After broadcasts (it creates them); bulletins the link got earlier (a retained one) wait for this.
        name: 'province',
        start: () => this.ctx.province?.start(),
        stop: () => this.ctx.province?.stop(),
      },
      {
        // Last of the MQTT side: from here on every device message has a listener.
        name: 'device admission',
        start: async () => {
          if (inbox) {
            await inbox.open();
            // Events acknowledged before a crash but maybe not yet in the records: through the ingest again (it drops known ids).
            const n = await inbox.replay(events!.replay);
            if (n) log.info({ events: n }, 'device events replayed from the inbox');
            inbox.start();
          }
          if (broker) broker.acceptDevices = true;
        },
        stop: async () => {
          if (broker) await broker.closeDevices();
          await inbox?.close();
        },
      },
      {
        name: 'users',
        start: () => this.ensureAdmin(),
        stop: () => {},
      },
      {
        // After broadcasts (it creates them) and media (whose start clears the
        // render work folder: a TTS occurrence pre-staged at start renders there).
        name: 'schedule',
        start: () => this.ctx.schedule.start(),
        stop: () => this.ctx.schedule.stop(),
      },
      {
        // Recording never waits for anything else; a camera that is down raises an alarm, not an error.
        name: 'cameras',
        // Cameras follow the registry (camera.changed); camera-down / camera-clock alarms are the manager's.
        start: () => this.ctx.cameraManager.start(),
        stop: () => this.ctx.cameraManager.stop(),
      },
      {
        // After the recorders: reads the index totals once, then sweeps every sweepSeconds (and early on a full disk).
        name: 'retention',
        start: () => this.ctx.retention.start(),
        stop: () => this.ctx.retention.stop(),
      },
      {
        // After the broker link and the dispatcher (it sends owed commands) and before http.
        name: 'ota',
        start: async () => {
          await this.ctx.ota.start();
          otaOffs.push(bus.on('device.state', (e) => { if (!e.retained) void this.ctx.ota.onReported(e.deviceId, e.fw).catch((err) => log.error({ err }, 'ota update failed')); }));
        },
        stop: () => {
          for (const off of otaOffs.splice(0)) off();
          this.ctx.ota.stop();
        },
      },
      {
        // A running export is cancelled at stop (its half-written file removed; the record says why).
        name: 'exports',
        start: () => this.ctx.exports.start(),
        stop: () => this.ctx.exports.stop(),
      },
      {
        name: 'http',
        start: async () => {
          this.app = await buildApp(this.ctx);
          await this.app.listen({ host: settings.http.host, port: settings.http.port });
          const addr = this.app.server.address();
          this.httpPort = typeof addr === 'object' && addr ? addr.port : settings.http.port;
          log.info({ port: this.httpPort }, 'http listening');
        },
        stop: async () => {
          // Open streams keep their HTTP responses (speakers) and WebSockets (microphone) busy: end them first.
          await this.ctx.streams.stopAll();
          await this.app?.close();
        },
      },
    ];
  }

  private async ensureAdmin(): Promise<void> {
    const { users, log } = this.ctx;
    if (users.list().length) return;
    const given = this.opts.adminPassword ?? process.env.GATEWAY_ADMIN_PASSWORD;
    const password = given || generatePassword();
    await users.create({ username: 'admin', displayName: 'Quản trị viên', role: 'admin', password });
    await this.ctx.audit.record({ actor: null, action: 'user.bootstrap', target: 'admin', ok: true });
    log.info({ username: 'admin' }, 'first admin user created');
    const report = this.opts.onAdminCreated ?? ((u: string, p: string, generated: boolean) => {
      if (generated) process.stdout.write(`\n  First start: admin user "${u}" created with password: ${p}\n  It is shown only this once. Change it after logging in.\n\n`);
    });
    report('admin', password, !given);
  }

  async start(): Promise<void> {
    for (const s of this.services) {
      try {
        await s.start();
        this.started.push(s);
        this.ctx.log.debug({ service: s.name }, 'started');
      } catch (err) {
        this.ctx.log.error({ err, service: s.name }, 'service failed to start; stopping the others');
        await this.stop();
        throw err;
      }
    }
  }

  async stop(): Promise<void> {
    for (const s of [...this.started].reverse()) {
      try {
        await s.stop();
      } catch (err) {
        this.ctx.log.error({ err, service: s.name }, 'service failed to stop');
      }
    }
    this.started = [];
  }
}
