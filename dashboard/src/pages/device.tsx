// One device: latest readings, 24-hour sparklines, alarm history and (for
// admins and technicians) commands with their outcome as the API reports it:
// 200 acked, 502 failed, 504 timeout.
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { formatAgo, formatDateTime, formatDuration, formatNumber } from '../format.js';
import { useLive, useNow } from '../live.js';
import { navigate } from '../router.js';
import type { Alarm, CommandResult, CommandType, Device, DeviceHealth, Role, SecretReply, Telemetry, Zone } from '../types.js';
import { Confirm, CopyBox, ErrorText, Icon, OnlineBadge, Signal, useData, useDebounced } from '../components/ui.js';
import { ProvisionDialog } from '../components/provision.js';
import { OnlineStrip, Sparkline } from '../components/sparkline.js';

const TONE_SECONDS = 3;

type CmdState = { status: 'pending' } | { status: 'done'; result: CommandResult } | { status: 'error'; error: unknown };

export function DevicePage({ id, role }: { id: string; role: Role }) {
  const now = useNow();
  const canWrite = role === 'admin' || role === 'technician';
  const device = useData(() => api<Device>(`/api/devices/${encodeURIComponent(id)}`), [id]);
  const health = useData(() => api<DeviceHealth>(`/api/devices/${encodeURIComponent(id)}/health`), [id]);
  const alarms = useData(() => api<Alarm[]>('/api/alarms', { query: { deviceId: id } }), [id]);
  const zones = useData(() => api<Zone[]>('/api/zones'), []);
  const reloadAlarms = useDebounced(() => {
    alarms.reload();
    device.reload();
  });
  const reloadHealth = useDebounced(health.reload, 1000);

  useLive((name, data) => {
    const e = data as { deviceId?: string; id?: string; online?: boolean; at?: string; telemetry?: Telemetry };
    if (name === 'resync') {
      device.reload();
      health.reload();
      alarms.reload();
      return;
    }
    if (e?.deviceId !== id) return;
    if (name === 'device.presence') {
      device.set((d) => ({ ...d, online: e.online!, lastSeen: e.online ? e.at! : d.lastSeen }));
      reloadHealth();
    } else if (name === 'device.telemetry') {
      device.set((d) => ({ ...d, telemetry: e.telemetry!, lastSeen: e.at! }));
      health.set((h) => ({ ...h, telemetry: e.telemetry!, telemetryAt: e.at! }));
    } else if (name === 'device.changed') {
      device.reload();
    } else {
      reloadAlarms();
    }
  });

  if (device.error instanceof ApiError && device.error.status === 404) {
    return (
      <div class="card">
        <p>{t('device.notFound')}</p>
        <BackLink />
      </div>
    );
  }
  const d = device.data;
  const h = health.data;
  const tel = d?.telemetry;
  const zone = d?.zoneId ? zones.data?.find((z) => z.id === d.zoneId)?.name ?? d.zoneId : t('zone.unassigned');

  return (
    <>
      <BackLink />
      <ErrorText error={device.error} />
      {!d ? <p class="muted">{t('app.loading')}</p> : (
        <>
          <div class="page-head">
            <h1>{d.name}</h1>
            <OnlineBadge online={d.online} lastSeen={d.lastSeen} now={now} />
          </div>
          <p class="muted"><span class="mono">{d.id}</span> · {zone} · {t(`type.${d.type}` as MessageKey)}</p>

          <div class="grid-2">
            <section class="card" aria-labelledby="latest-title">
              <h2 id="latest-title">{t('device.latest')}</h2>
              {!tel ? <p class="muted">{t('device.noTelemetry')}</p> : (
                <dl class="facts">
                  <dt>{t('col.signal')}</dt><dd><Signal dbm={tel.rssi} /></dd>
                  <dt>{t('col.temperature')}</dt><dd data-testid="temperature">{formatNumber(tel.temperature, 1, ' °C')}</dd>
                  <dt>{t('col.volume')}</dt><dd data-testid="volume">{formatNumber(tel.volume, 0, '%')}</dd>
                  <dt>{t('device.uptime')}</dt><dd>{formatDuration(tel.uptime)}</dd>
                  <dt>{t('col.firmware')}</dt><dd class="mono">{tel.fw ?? d.firmware}</dd>
                  <dt>{t('device.model')}</dt><dd>{d.model || t('value.none')}</dd>
                </dl>
              )}
              {h?.telemetryAt && <p class="muted">{t('device.telemetryAt', { time: `${formatDateTime(h.telemetryAt)} (${formatAgo(h.telemetryAt, now)})` })}</p>}
              {h?.since && <p class="muted">{t(d.online ? 'status.online' : 'status.offline')} · {t('device.since', { time: formatDateTime(h.since) })}</p>}
            </section>

            {canWrite && <Actions device={d} onChanged={device.reload} />}
          </div>

          <section class="card" aria-labelledby="hist-title">
            <div class="card-head">
              <h2 id="hist-title">{t('device.history')}</h2>
              <span class="muted">{t('device.spark.axis')}</span>
            </div>
            <ErrorText error={health.error} />
            {h && (
              <div class="sparks">
                <Sparkline label={t('device.spark.signal')} values={h.history.map((p) => p.rssi)} unit=" dBm" />
                <Sparkline label={t('device.spark.temperature')} values={h.history.map((p) => p.temperature)} unit=" °C" digits={1} />
                <OnlineStrip label={t('device.spark.online')} values={h.history.map((p) => p.online)} />
              </div>
            )}
          </section>

          <section class="card" aria-labelledby="alarm-title">
            <h2 id="alarm-title">{t('device.alarmHistory')}</h2>
            <ErrorText error={alarms.error} />
            {alarms.data && !alarms.data.length && <p class="muted">{t('device.noAlarms')}</p>}
            <ul class="alarm-list">
              {alarms.data?.map((a) => <AlarmItem alarm={a} key={a.id} />)}
            </ul>
          </section>
        </>
      )}
    </>
  );
}

function BackLink() {
  return (
    <p>
      <a href="/devices" onClick={(e) => { e.preventDefault(); history.length > 1 ? history.back() : navigate('/devices'); }}>← {t('device.back')}</a>
    </p>
  );
}

export function AlarmItem({ alarm: a, deviceName, action }: { alarm: Alarm; deviceName?: preact.ComponentChildren; action?: preact.ComponentChildren }) {
  const open = a.clearedAt === null;
  return (
    <li class={`alarm ${open ? 'alarm-open' : 'alarm-cleared'}`} data-alarm={a.id}>
      <Icon name={open ? 'alert' : 'check'} />
      <div class="alarm-body">
        <strong>{t(`alarm.${a.kind}` as MessageKey)}</strong> <span class={`badge ${open ? 'badge-warn' : 'badge-muted'}`}>{t(open ? 'alarms.open' : 'alarms.cleared')}</span>
        {deviceName && <div>{deviceName}</div>}
        <div class="muted">{a.detail}</div>
        <div class="muted">
          {t('alarms.openedAt', { time: formatDateTime(a.openedAt) })}
          {a.clearedAt && <> · {t('alarms.clearedAt', { time: formatDateTime(a.clearedAt) })}</>}
        </div>
        {a.acknowledgedAt && <div class="muted">{t('alarms.acked', { by: a.acknowledgedBy ?? '', time: formatDateTime(a.acknowledgedAt) })}</div>}
      </div>
      {action}
    </li>
  );
}

function CommandStatus({ state }: { state: CmdState | undefined }) {
  if (!state) return <p class="cmd-status" role="status" />;
  if (state.status === 'pending') return <p class="cmd-status pending" role="status" data-status="pending"><Icon name="clock" /> {t('cmd.pending')}</p>;
  if (state.status === 'error') return <div class="cmd-status" role="status" data-status="error"><ErrorText error={state.error} /></div>;
  const r = state.result;
  if (r.status === 'acked') return <p class="cmd-status ok" role="status" data-status="acked"><Icon name="check" /> {t('cmd.acked')}</p>;
  if (r.status === 'failed') return <p class="cmd-status bad" role="status" data-status="failed"><Icon name="alert" /> {t('cmd.failed', { error: r.error ?? '' })}</p>;
  return (
    <p class="cmd-status warn" role="status" data-status="timeout">
      <Icon name="clock" /> {t('cmd.timeout')} {r.owed ? t('cmd.owed') : ''}
    </p>
  );
}

function Actions({ device, onChanged }: { device: Device; onChanged: () => void }) {
  const [cmd, setCmd] = useState<Partial<Record<CommandType, CmdState>>>({});
  const [volume, setVolume] = useState<number>(device.telemetry?.volume ?? 70);
  const [confirm, setConfirm] = useState<'reboot' | 'rotate' | null>(null);
  const [secret, setSecret] = useState<SecretReply | null>(null);
  const [rotateError, setRotateError] = useState<unknown>(null);
  const [provision, setProvision] = useState(false);

  const send = async (type: CommandType, body: Record<string, unknown>) => {
    setCmd((c) => ({ ...c, [type]: { status: 'pending' } }));
    try {
      const result = await api<CommandResult>(`/api/devices/${encodeURIComponent(device.id)}/commands`, { method: 'POST', body: { type, ...body }, okStatuses: [502, 504] });
      setCmd((c) => ({ ...c, [type]: { status: 'done', result } }));
    } catch (error) {
      setCmd((c) => ({ ...c, [type]: { status: 'error', error } }));
    }
  };
  const rotate = async () => {
    setRotateError(null);
    try {
      setSecret(await api<SecretReply>(`/api/devices/${encodeURIComponent(device.id)}/rotate-secret`, { method: 'POST' }));
      onChanged();
    } catch (e) {
      setRotateError(e);
    }
  };
  const busy = (type: CommandType) => cmd[type]?.status === 'pending';
  const clamp = (n: number) => Math.max(0, Math.min(100, Math.round(n)));

  return (
    <section class="card" aria-labelledby="actions-title">
      <h2 id="actions-title">{t('device.actions')}</h2>

      <div class="action">
        <button type="button" class="btn btn-primary" disabled={busy('test-tone')} onClick={() => send('test-tone', { seconds: TONE_SECONDS })} data-testid="test-tone">
          <Icon name="speaker" /> {t('device.testTone')}
        </button>
        <small class="hint">{t('device.testToneHint', { seconds: TONE_SECONDS })}</small>
        <div data-testid="status-test-tone"><CommandStatus state={cmd['test-tone']} /></div>
      </div>

      <form class="action" onSubmit={(e) => { e.preventDefault(); void send('volume', { level: clamp(volume) }); }}>
        <div class="field">
          <label for="vol-range">{t('device.volume')}</label>
          <div class="row">
            <input id="vol-range" type="range" min={0} max={100} step={1} value={volume} onInput={(e) => setVolume(Number(e.currentTarget.value))} />
            <label class="sr-only" for="vol-number">{t('device.volumeNumber')}</label>
            <input id="vol-number" class="num" type="number" min={0} max={100} step={1} inputMode="numeric" value={volume}
              onInput={(e) => { const n = Number(e.currentTarget.value); if (e.currentTarget.value !== '' && Number.isFinite(n)) setVolume(clamp(n)); }} />
          </div>
        </div>
        <button type="submit" class="btn" disabled={busy('volume')} data-testid="set-volume">{t('device.volumeSet')}</button>
        <div data-testid="status-volume"><CommandStatus state={cmd.volume} /></div>
      </form>

      <div class="action">
        <button type="button" class="btn btn-danger" disabled={busy('reboot')} onClick={() => setConfirm('reboot')}>{t('device.reboot')}</button>
        <div data-testid="status-reboot"><CommandStatus state={cmd.reboot} /></div>
      </div>

      <div class="action">
        <button type="button" class="btn" onClick={() => setConfirm('rotate')}>{t('device.rotate')}</button>
        <button type="button" class="btn" onClick={() => setProvision(true)} data-testid="provision-open">{t('provision.open')}</button>
        <ErrorText error={rotateError} />
        {secret && (
          <>
            <CopyBox label={t('device.secretOnce')} value={secret.secret} />
            <CopyBox label={t('adminDevices.provisioning')} value={JSON.stringify(secret.provisioning, null, 2)} rows={8} />
          </>
        )}
      </div>

      {provision && <ProvisionDialog device={device} onClose={() => { setProvision(false); onChanged(); }} />}
      {confirm && (
        <Confirm
          danger
          message={t(confirm === 'reboot' ? 'device.rebootConfirm' : 'device.rotateConfirm', { name: device.name })}
          confirmLabel={t(confirm === 'reboot' ? 'device.reboot' : 'device.rotate')}
          onCancel={() => setConfirm(null)}
          onConfirm={() => {
            const which = confirm;
            setConfirm(null);
            if (which === 'reboot') void send('reboot', {});
            else void rotate();
          }}
        />
      )}
    </section>
  );
}
