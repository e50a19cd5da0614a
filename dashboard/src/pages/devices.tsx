// The technician's workspace: hamlet tiles on top, then every device with
// filters (applied by the API: zoneId, type, status). Live: presence and
// telemetry events patch rows at once; anything else reloads the lists.
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import { formatNumber } from '../format.js';
import { useLive, useNow } from '../live.js';
import { navigate, setQuery, useLocation } from '../router.js';
import type { Device, Role, Telemetry, Zone, ZoneSummary } from '../types.js';
import { ZoneTiles } from '../components/zone-tiles.js';
import { ErrorText, Icon, OnlineBadge, Signal, useData, useDebounced } from '../components/ui.js';

export function DevicesPage({ role }: { role: Role }) {
  const loc = useLocation();
  const zoneId = loc.search.get('zone') ?? '';
  const type = loc.search.get('type') ?? '';
  const status = loc.search.get('status') ?? '';
  const now = useNow();

  const summary = useData(() => api<ZoneSummary[]>('/api/zones/summary'), []);
  const zones = useData(() => api<Zone[]>('/api/zones'), []);
  const devices = useData(
    () => api<Device[]>('/api/devices', { query: { zoneId: zoneId || undefined, type: type || undefined, status: status || undefined } }),
    [zoneId, type, status],
  );
  const reloadSummary = useDebounced(summary.reload, 400);
  const reloadDevices = useDebounced(devices.reload, 400);

  useLive((name, data) => {
    if (name === 'device.presence') {
      const e = data as { deviceId: string; online: boolean; at: string };
      devices.set((list) => list.map((d) => (d.id === e.deviceId ? { ...d, online: e.online, lastSeen: e.online ? e.at : d.lastSeen } : d)));
      reloadSummary();
      if (status) reloadDevices();
    } else if (name === 'device.telemetry') {
      const e = data as { deviceId: string; at: string; telemetry: Telemetry };
      devices.set((list) => list.map((d) => (d.id === e.deviceId ? { ...d, telemetry: e.telemetry, lastSeen: e.at } : d)));
    } else if (name !== 'broadcast.updated') {
      // device.changed, alarm.*, resync: counts and lists may all have moved.
      reloadSummary();
      reloadDevices();
      if (name === 'device.changed' || name === 'resync') zones.reload();
    }
  });

  const zoneName = (id: string | null) => (id ? zones.data?.find((z) => z.id === id)?.name ?? id : t('zone.unassigned'));
  const filters = { zone: zoneId, type, status };
  const list = [...(devices.data ?? [])].sort((a, b) => (a.zoneId ?? '~').localeCompare(b.zoneId ?? '~', 'vi', { numeric: true }) || a.name.localeCompare(b.name, 'vi', { numeric: true }));

  return (
    <>
      <h1>{t('devices.title')}</h1>
      <section class="card" aria-labelledby="sum-title">
        <h2 id="sum-title">{t('zone.summaryTitle')}</h2>
        <ErrorText error={summary.error} />
        {summary.data && <ZoneTiles zones={summary.data} onPick={(z) => setQuery({ ...filters, zone: z ?? undefined })} />}
      </section>

      <section class="card" aria-labelledby="list-title">
        <div class="card-head">
          <h2 id="list-title">{t('devices.listTitle')}</h2>
          <span class="muted" role="status">{devices.data ? t('devices.count', { count: list.length }) : t('app.loading')}</span>
        </div>
        {role === 'officer' && <p class="muted">{t('devices.readOnly')}</p>}
        <form class="filters" aria-label={t('devices.filters')} onSubmit={(e) => e.preventDefault()}>
          <div class="field">
            <label for="f-zone">{t('devices.filterZone')}</label>
            <select id="f-zone" value={zoneId} onChange={(e) => setQuery({ ...filters, zone: e.currentTarget.value })}>
              <option value="">{t('devices.all')}</option>
              {zones.data?.map((z) => <option value={z.id} key={z.id}>{z.name}</option>)}
            </select>
          </div>
          <div class="field">
            <label for="f-type">{t('devices.filterType')}</label>
            <select id="f-type" value={type} onChange={(e) => setQuery({ ...filters, type: e.currentTarget.value })}>
              <option value="">{t('devices.all')}</option>
              <option value="speaker">{t('type.speaker')}</option>
              <option value="keypad">{t('type.keypad')}</option>
            </select>
          </div>
          <div class="field">
            <label for="f-status">{t('devices.filterStatus')}</label>
            <select id="f-status" value={status} onChange={(e) => setQuery({ ...filters, status: e.currentTarget.value })}>
              <option value="">{t('devices.all')}</option>
              <option value="online">{t('status.online')}</option>
              <option value="offline">{t('status.offline')}</option>
            </select>
          </div>
        </form>
        <ErrorText error={devices.error} />
        {devices.data && !list.length && <p class="muted">{t('devices.empty')}</p>}
        {list.length > 0 && (
          <table class="table" data-testid="device-table">
            <thead>
              <tr>
                <th scope="col">{t('col.name')}</th>
                <th scope="col">{t('col.zone')}</th>
                <th scope="col">{t('col.status')}</th>
                <th scope="col">{t('col.signal')}</th>
                <th scope="col">{t('col.temperature')}</th>
                <th scope="col">{t('col.volume')}</th>
                <th scope="col">{t('col.firmware')}</th>
                <th scope="col">{t('col.alarms')}</th>
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.id} data-device={d.id}>
                  <td data-label={t('col.name')}>
                    <a href={`/devices/${encodeURIComponent(d.id)}`} onClick={(e) => { e.preventDefault(); navigate(`/devices/${encodeURIComponent(d.id)}`); }}>
                      {d.name}
                    </a>
                    <small class="muted mono block">{d.id}</small>
                  </td>
                  <td data-label={t('col.zone')}>{zoneName(d.zoneId)}</td>
                  <td data-label={t('col.status')}><OnlineBadge online={d.online} lastSeen={d.lastSeen} now={now} /></td>
                  <td data-label={t('col.signal')}><Signal dbm={d.telemetry?.rssi} /></td>
                  <td data-label={t('col.temperature')}>{formatNumber(d.telemetry?.temperature, 1, ' °C')}</td>
                  <td data-label={t('col.volume')}>{formatNumber(d.telemetry?.volume, 0, '%')}</td>
                  <td data-label={t('col.firmware')} class="mono">{d.telemetry?.fw ?? d.firmware ?? t('value.none')}</td>
                  <td data-label={t('col.alarms')}>
                    {d.openAlarms ? <span class="badge badge-warn"><Icon name="alert" /> {d.openAlarms}</span> : <span class="muted">0</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
