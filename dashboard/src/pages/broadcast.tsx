// One broadcast: what, when, the outcome per hamlet and per speaker (state,
// clock offset at play, error), the audio, and Cancel while it is not
// finished (officer, admin). Reloaded when its 'broadcast.updated' arrives
// (the event carries counts, not the delivery rows).
import { useState } from 'preact/hooks';
import { api, mediaAudioUrl } from '../api.js';
import { t } from '../i18n/index.js';
import { formatDateTime, formatNumber } from '../format.js';
import { useLive } from '../live.js';
import { navigate } from '../router.js';
import { FINISHED, type Broadcast, type BroadcastDetail, type Device, type Role } from '../types.js';
import { DeliveryBadge, PriorityBadge, StatusBadge, ZoneOutcomes } from '../components/broadcast-bits.js';
import { formatClock } from '../components/media-list.js';
import { Confirm, ErrorText, useData, useDebounced, useMutation } from '../components/ui.js';

export function BroadcastPage({ id, role }: { id: string; role: Role }) {
  const canCancel = role === 'officer' || role === 'admin';
  // The chairman may read broadcasts but not devices or media (API roles).
  const canSeeDevices = role !== 'chairman';
  const b = useData(() => api<BroadcastDetail>(`/api/broadcasts/${encodeURIComponent(id)}`), [id]);
  const devices = useData(() => (canSeeDevices ? api<Device[]>('/api/devices', { query: { type: 'speaker' } }) : Promise.resolve([] as Device[])), [canSeeDevices]);
  const reload = useDebounced(b.reload, 300);
  const [cancelling, setCancelling] = useState(false);
  const { err, busy, run } = useMutation(b.reload);
  useLive((name, data) => {
    if (name === 'resync' || (name === 'broadcast.updated' && (data as Broadcast).id === id)) reload();
  });
  const deviceName = (d: string) => devices.data?.find((x) => x.id === d)?.name ?? d;

  const back = (
    <a href="/broadcasts" onClick={(e) => { e.preventDefault(); navigate('/broadcasts'); }}>← {t('bc.back')}</a>
  );
  if (b.error && !b.data) return <>{back}<ErrorText error={b.error} /></>;
  if (!b.data) return <>{back}<p class="muted">{t('app.loading')}</p></>;
  const x = b.data;
  const finished = FINISHED.includes(x.status);

  return (
    <>
      <p>{back}</p>
      <div class="page-head">
        <h1>{x.title}</h1>
        <PriorityBadge priority={x.priority} />
        <StatusBadge status={x.status} />
      </div>
      <section class="card" aria-labelledby="bd-facts">
        <h2 id="bd-facts" class="sr-only">{x.title}</h2>
        <dl class="facts facts-stack">
          <dt>{t('bc.source')}</dt><dd>{t(`bc.kind.${x.source.kind}`)}{x.source.url ? ` · ${x.source.url}` : ''}</dd>
          {x.source.text && <><dt>{t('compose.text')}</dt><dd class="pre">{x.source.text}</dd></>}
          <dt>{t('compose.at')}</dt><dd>{formatDateTime(x.playAt)}</dd>
          <dt>{t('bc.validUntil')}</dt><dd>{formatDateTime(x.validUntil)}</dd>
          {x.durationMs !== null && <><dt>{t('bc.duration')}</dt><dd>{formatClock(x.durationMs / 1000)}</dd></>}
          {x.volume !== null && <><dt>{t('bc.volume')}</dt><dd>{x.volume}%</dd></>}
          <dt>{t('bc.sender')}</dt><dd>{x.createdBy} · {formatDateTime(x.createdAt)}</dd>
        </dl>
        {x.error && <p class="error-inline">{t('bc.failedReason', { error: x.error })}</p>}
        {x.mediaId && canSeeDevices && <audio controls preload="none" src={mediaAudioUrl(x.mediaId)} aria-label={x.title} />}
        {canCancel && !finished && (
          <p><button type="button" class="btn btn-danger" disabled={busy} onClick={() => setCancelling(true)} data-testid="cancel">{t('bc.cancel')}</button></p>
        )}
        <ErrorText error={err} />
      </section>
      <section class="card" aria-labelledby="bd-out">
        <h2 id="bd-out">{t('bc.outcome')}</h2>
        <ZoneOutcomes broadcast={x} />
      </section>
      <section class="card" aria-labelledby="bd-dl">
        <h2 id="bd-dl">{t('bc.deliveries')}</h2>
        <table class="table" data-testid="delivery-table">
          <thead>
            <tr>
              <th scope="col">{t('bc.device')}</th><th scope="col">{t('col.zone')}</th><th scope="col">{t('bc.state')}</th>
              <th scope="col">{t('bc.started')}</th><th scope="col">{t('bc.skew')}</th><th scope="col">{t('bc.error')}</th>
            </tr>
          </thead>
          <tbody>
            {x.deliveries.map((d) => (
              <tr key={d.deviceId} data-device={d.deviceId} data-state={d.state}>
                <td data-label={t('bc.device')}>{deviceName(d.deviceId)}{deviceName(d.deviceId) !== d.deviceId && <small class="muted mono block">{d.deviceId}</small>}</td>
                <td data-label={t('col.zone')}>{x.zones.find((z) => z.zoneId === d.zoneId)?.name ?? d.zoneId ?? t('zone.unassigned')}</td>
                <td data-label={t('bc.state')}><DeliveryBadge state={d.state} /></td>
                <td data-label={t('bc.started')}>{d.startedAt ? formatDateTime(d.startedAt) : t('value.none')}</td>
                <td data-label={t('bc.skew')}>{formatNumber(d.skewMs, 0, ' ms')}</td>
                <td data-label={t('bc.error')}>{d.error ?? t('value.none')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {cancelling && (
        <Confirm danger message={t('bc.cancelConfirm', { title: x.title })} confirmLabel={t('bc.cancel')} onCancel={() => setCancelling(false)}
          onConfirm={() => { setCancelling(false); void run(() => api(`/api/broadcasts/${encodeURIComponent(id)}/cancel`, { method: 'POST' })); }} />
      )}
    </>
  );
}
