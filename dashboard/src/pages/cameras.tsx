// Desk cameras for the technician (and admin): each camera's recording state
// (icon + text, never colour alone), clock offset and ONVIF events; discover
// ONVIF cameras on the network and add one with its credentials (the gateway
// connects first and says why it refuses); enable/disable, re-check, delete
// (with confirmation; recordings are kept). Passwords are sent, never shown:
// the API does not return them.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { formatAgo, formatDateTime } from '../format.js';
import { Confirm, ErrorText, Field, Icon, useData, useMutation } from '../components/ui.js';

type CameraState = 'disabled' | 'connecting' | 'unreachable' | 'idle' | 'starting' | 'recording' | 'waiting' | 'stopping' | 'stopped';
interface Camera {
  id: string; name: string; desk: string | null; kind: 'onvif' | 'rtsp'; xaddr: string | null; streamUrl: string | null;
  profileToken: string | null; enabled: boolean; hasCredentials: boolean;
  info: { manufacturer: string; model: string; firmware: string; serial: string; hardwareId: string } | null;
  pullPoint: boolean | null;
  status: {
    state: CameraState; down: boolean; lastSegmentEnd: string | null; segments: number;
    openGap: { since: string; why: string } | null;
    onvif: { connected: boolean; error: string | null; reason: string | null; profile: { token: string; name: string; encoding: string; width: number; height: number; fps: number } | null } | null;
    clock: { offsetMs: number; rttMs: number; checkedAt: string; ok: boolean } | null;
    events: 'off' | 'pulling' | 'retrying' | 'unsupported'; eventsDetail: string | null;
  };
}
interface Discovered { xaddr: string; urn: string; name: string; hardware: string; address: string; registeredAs: string | null }
interface Desk { id: string; name: string }

const POLL_MS = 5000;

/** Recording state as icon + text + badge colour. */
function recState(c: Camera): { icon: 'online' | 'offline' | 'clock' | 'empty' | 'alert'; cls: string; key: MessageKey } {
  const s = c.status.state;
  if (s === 'disabled') return { icon: 'empty', cls: 'badge-muted', key: 'cameras.state.disabled' };
  if (s === 'recording' && !c.status.down) return { icon: 'online', cls: 'badge-ok', key: 'cameras.state.recording' };
  if (c.status.down || s === 'unreachable' || s === 'waiting') return { icon: 'offline', cls: 'badge-bad', key: 'cameras.state.lost' };
  if (s === 'connecting' || s === 'starting' || s === 'idle') return { icon: 'clock', cls: 'badge-info', key: 'cameras.state.connecting' };
  return { icon: 'empty', cls: 'badge-muted', key: 'cameras.state.stopped' };
}

function RecordingBadge({ camera, now }: { camera: Camera; now: number }) {
  const r = recState(camera);
  const last = camera.status.lastSegmentEnd;
  return (
    <span class={`badge ${r.cls}`} data-testid="camera-state" data-state={camera.status.state}>
      <Icon name={r.icon} />
      <span>
        <span class="badge-label">{t(r.key)}</span>
        {camera.enabled && <span class="badge-sub">{last ? t('cameras.lastSegment', { ago: formatAgo(last, now) }) : t('cameras.noSegment')}</span>}
      </span>
    </span>
  );
}

function ClockCell({ camera }: { camera: Camera }) {
  const c = camera.status.clock;
  if (camera.kind !== 'onvif') return <span class="muted">{t('cameras.clock.na')}</span>;
  if (!c) return <span class="muted">{t('cameras.clock.unknown')}</span>;
  const secs = (c.offsetMs / 1000).toFixed(1);
  return (
    <span class={`badge ${c.ok ? 'badge-ok' : 'badge-warn'}`} title={t('cameras.clock.checked', { time: formatDateTime(c.checkedAt) })} data-testid="camera-clock">
      <Icon name={c.ok ? 'check' : 'alert'} />
      <span>{c.ok ? t('cameras.clock.ok', { seconds: secs }) : t('cameras.clock.off', { seconds: secs })}</span>
    </span>
  );
}

const EVENTS_KEY: Record<Camera['status']['events'], MessageKey> = {
  off: 'cameras.events.off', pulling: 'cameras.events.pulling', retrying: 'cameras.events.retrying', unsupported: 'cameras.events.unsupported',
};

const REASON_KEY: Record<string, MessageKey> = {
  unreachable: 'cameras.reason.unreachable', timeout: 'cameras.reason.timeout', auth: 'cameras.reason.auth',
  'not-supported': 'cameras.reason.not-supported', 'bad-response': 'cameras.reason.bad-response',
  'no-h264': 'cameras.reason.no-h264', 'unknown-profile': 'cameras.reason.unknown-profile',
};

/** The gateway's 422 says which field the camera refused; the technician reads why in Vietnamese first. */
function rejectedText(err: ApiError): string {
  const key: MessageKey = err.field === 'body.password' ? 'cameras.rejected.auth'
    : err.field === 'body.xaddr' ? 'cameras.rejected.address'
      : err.field === 'body.profileToken' ? 'cameras.rejected.profile' : 'cameras.rejected';
  return t(key, { message: err.message });
}

const emptyForm = { kind: 'onvif' as 'onvif' | 'rtsp', id: '', name: '', desk: '', xaddr: '', url: '', username: '', password: '', profileToken: '' };

/** A camera id from a name: "Quầy một cửa 1" -> quay-mot-cua-1. */
function idFrom(name: string): string {
  return name.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/gi, 'd').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64);
}

export function CamerasPage() {
  const cameras = useData(() => api<Camera[]>('/api/cameras'), []);
  const desks = useData(() => api<Desk[]>('/api/cameras/desks'), []);
  const [now, setNow] = useState(Date.now());
  const [form, setForm] = useState(emptyForm);
  const [found, setFound] = useState<Discovered[] | null>(null);
  const [deleting, setDeleting] = useState<Camera | null>(null);
  const [added, setAdded] = useState<string | null>(null);
  const { err, busy, run } = useMutation(cameras.reload);
  const discovery = useMutation(() => {});

  useEffect(() => {
    const timer = setInterval(() => {
      setNow(Date.now());
      cameras.reload();
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [cameras.reload]);

  const deskName = (id: string | null) => (id ? desks.data?.find((d) => d.id === id)?.name ?? id : t('cameras.noDesk'));
  const set = (patch: Partial<typeof emptyForm>) => setForm({ ...form, ...patch });

  const discover = async () => {
    const r = await discovery.run(() => api<Discovered[]>('/api/cameras/discover', { method: 'POST', body: {} }));
    if (r) setFound(r);
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setAdded(null);
    const common = { id: form.id.trim() || idFrom(form.name), name: form.name.trim(), desk: form.desk || null };
    const body = form.kind === 'onvif'
      ? { ...common, kind: 'onvif', xaddr: form.xaddr.trim(), username: form.username, password: form.password, ...(form.profileToken.trim() ? { profileToken: form.profileToken.trim() } : {}) }
      : { ...common, kind: 'rtsp', url: form.url.trim(), ...(form.username ? { username: form.username, password: form.password } : {}) };
    const r = await run(() => api<Camera>('/api/cameras', { method: 'POST', body }));
    if (r) {
      setAdded(r.name);
      // The password does not stay in the page once the gateway has it.
      setForm(emptyForm);
    }
  };

  const formError = err instanceof ApiError && err.code === 'camera_rejected' ? rejectedText(err) : null;

  return (
    <>
      <h1>{t('cameras.title')}</h1>
      <section class="card" aria-labelledby="cam-list-title">
        <div class="card-head">
          <h2 id="cam-list-title">{t('cameras.list')}</h2>
        </div>
        {!formError && <ErrorText error={cameras.error ?? err} />}
        {cameras.data && !cameras.data.length && <p class="muted">{t('cameras.empty')}</p>}
        {!!cameras.data?.length && (
          <table class="table" data-testid="camera-table">
            <thead>
              <tr>
                <th scope="col">{t('cameras.name')}</th><th scope="col">{t('cameras.desk')}</th><th scope="col">{t('cameras.recording')}</th>
                <th scope="col">{t('cameras.clock')}</th><th scope="col">{t('cameras.events')}</th><th scope="col">{t('col.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {cameras.data.map((c) => (
                <tr key={c.id} data-camera={c.id}>
                  <td data-label={t('cameras.name')}>
                    <strong>{c.name}</strong>
                    <div class="muted"><span class="mono">{c.id}</span> · {c.kind === 'onvif' ? 'ONVIF' : 'RTSP'}{c.info?.model ? ` · ${c.info.manufacturer} ${c.info.model}` : ''}</div>
                    {c.status.onvif?.error && (
                      <div class="error-inline" title={c.status.onvif.error} data-testid="camera-onvif-error">
                        {c.status.onvif.reason && c.status.onvif.reason in REASON_KEY ? t(REASON_KEY[c.status.onvif.reason]!) : c.status.onvif.error}
                      </div>
                    )}
                  </td>
                  <td data-label={t('cameras.desk')}>{deskName(c.desk)}</td>
                  <td data-label={t('cameras.recording')}><RecordingBadge camera={c} now={now} /></td>
                  <td data-label={t('cameras.clock')}><ClockCell camera={c} /></td>
                  <td data-label={t('cameras.events')} title={c.status.eventsDetail ?? undefined}>{t(EVENTS_KEY[c.status.events])}</td>
                  <td data-label={t('col.actions')} class="row">
                    <button type="button" class="btn" disabled={busy} onClick={() => void run(() => api(`/api/cameras/${encodeURIComponent(c.id)}/check`, { method: 'POST' }))}>{t('cameras.check')}</button>
                    <button type="button" class="btn" disabled={busy} onClick={() => void run(() => api(`/api/cameras/${encodeURIComponent(c.id)}`, { method: 'PATCH', body: { enabled: !c.enabled } }))}>
                      {t(c.enabled ? 'cameras.disable' : 'cameras.enable')}
                    </button>
                    <button type="button" class="btn btn-danger" onClick={() => setDeleting(c)}>{t('form.delete')}</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section class="card" aria-labelledby="cam-discover-title">
        <div class="card-head">
          <h2 id="cam-discover-title">{t('cameras.discover')}</h2>
          <button type="button" class="btn" disabled={discovery.busy} onClick={discover}>{discovery.busy ? t('cameras.discovering') : t('cameras.discoverRun')}</button>
        </div>
        <p class="muted">{t('cameras.discoverHint')}</p>
        <ErrorText error={discovery.err} />
        {found && !found.length && <p class="muted" role="status">{t('cameras.discoverNone')}</p>}
        {!!found?.length && (
          <ul data-testid="discovered">
            {found.map((d) => (
              <li key={d.xaddr} class="row">
                <span><strong>{d.name || d.hardware || d.address}</strong> <span class="muted mono">{d.xaddr}</span></span>
                {d.registeredAs
                  ? <span class="badge badge-muted">{t('cameras.registeredAs', { id: d.registeredAs })}</span>
                  : <button type="button" class="btn" onClick={() => setForm({ ...emptyForm, kind: 'onvif', xaddr: d.xaddr, name: d.name || d.hardware })}>{t('cameras.useThis')}</button>}
              </li>
            ))}
          </ul>
        )}
      </section>

      <section class="card" aria-labelledby="cam-add-title">
        <h2 id="cam-add-title">{t('cameras.add')}</h2>
        {formError && <p class="error" role="alert"><Icon name="alert" /> <span>{formError}</span></p>}
        {added && <p class="notice ok" role="status">{t('cameras.added', { name: added })}</p>}
        <form class="form-grid" onSubmit={submit} autocomplete="off">
          <Field id="cam-kind" label={t('cameras.kind')}>
            <select id="cam-kind" value={form.kind} onChange={(e) => set({ kind: e.currentTarget.value as 'onvif' | 'rtsp' })}>
              <option value="onvif">{t('cameras.kind.onvif')}</option>
              <option value="rtsp">{t('cameras.kind.rtsp')}</option>
            </select>
          </Field>
          <Field id="cam-name" label={t('cameras.name')}><input id="cam-name" required maxLength={100} value={form.name} onInput={(e) => set({ name: e.currentTarget.value })} /></Field>
          <Field id="cam-id" label={`${t('cameras.id')} ${t('form.optional')}`} hint={t('cameras.idHint')}>
            <input id="cam-id" class="mono" maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9_\-]{0,63}" aria-describedby="cam-id-hint" value={form.id} placeholder={idFrom(form.name)} onInput={(e) => set({ id: e.currentTarget.value })} />
          </Field>
          <Field id="cam-desk" label={t('cameras.desk')}>
            <select id="cam-desk" value={form.desk} onChange={(e) => set({ desk: e.currentTarget.value })}>
              <option value="">{t('cameras.noDesk')}</option>
              {desks.data?.map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
            </select>
          </Field>
          {form.kind === 'onvif' ? (
            <Field id="cam-xaddr" label={t('cameras.xaddr')} hint={t('cameras.xaddrHint')}>
              <input id="cam-xaddr" class="mono" required type="url" aria-describedby="cam-xaddr-hint" value={form.xaddr} onInput={(e) => set({ xaddr: e.currentTarget.value })} />
            </Field>
          ) : (
            <Field id="cam-url" label={t('cameras.url')} hint={t('cameras.urlHint')}>
              <input id="cam-url" class="mono" required pattern="rtsps?://.+" aria-describedby="cam-url-hint" value={form.url} onInput={(e) => set({ url: e.currentTarget.value })} />
            </Field>
          )}
          <Field id="cam-user" label={form.kind === 'onvif' ? t('cameras.username') : `${t('cameras.username')} ${t('form.optional')}`}>
            <input id="cam-user" required={form.kind === 'onvif'} maxLength={128} autocomplete="off" value={form.username} onInput={(e) => set({ username: e.currentTarget.value })} />
          </Field>
          <Field id="cam-pass" label={form.kind === 'onvif' ? t('cameras.password') : `${t('cameras.password')} ${t('form.optional')}`} hint={t('cameras.passwordHint')}>
            <input id="cam-pass" type="password" required={form.kind === 'onvif' || !!form.username} maxLength={256} autocomplete="new-password" aria-describedby="cam-pass-hint" value={form.password} onInput={(e) => set({ password: e.currentTarget.value })} />
          </Field>
          {form.kind === 'onvif' && (
            <Field id="cam-profile" label={`${t('cameras.profile')} ${t('form.optional')}`} hint={t('cameras.profileHint')}>
              <input id="cam-profile" class="mono" maxLength={128} aria-describedby="cam-profile-hint" value={form.profileToken} onInput={(e) => set({ profileToken: e.currentTarget.value })} />
            </Field>
          )}
          <div class="form-actions">
            <button type="submit" class="btn btn-primary" disabled={busy}>{busy ? t('cameras.connecting') : t('cameras.addSubmit')}</button>
          </div>
        </form>
      </section>

      {deleting && (
        <Confirm danger message={t('cameras.deleteConfirm', { name: deleting.name })} confirmLabel={t('form.delete')} onCancel={() => setDeleting(null)}
          onConfirm={() => { const c = deleting; setDeleting(null); void run(() => api(`/api/cameras/${encodeURIComponent(c.id)}`, { method: 'DELETE' })); }} />
      )}
    </>
  );
}
