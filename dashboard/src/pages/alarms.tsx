// Alarms, open first (the API's order); admins and technicians acknowledge.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import { useLive } from '../live.js';
import { navigate } from '../router.js';
import type { Alarm, Device, Role } from '../types.js';
import { ErrorText, useData, useDebounced } from '../components/ui.js';
import { AlarmItem } from './device.js';

export function AlarmsPage({ role }: { role: Role }) {
  const canAck = role === 'admin' || role === 'technician';
  const alarms = useData(() => api<Alarm[]>('/api/alarms'), []);
  const devices = useData(() => api<Device[]>('/api/devices'), []);
  const [err, setErr] = useState<unknown>(null);
  const reload = useDebounced(alarms.reload, 300);
  const reloadDevices = useDebounced(devices.reload, 300);
  useLive((name) => {
    if (name.startsWith('alarm.') || name === 'resync') reload();
    // An alarm can name a device added since this page loaded: keep the names current.
    if (name === 'device.changed' || name === 'resync') reloadDevices();
  });
  const name = (id: string) => devices.data?.find((d) => d.id === id)?.name ?? id;
  const open = alarms.data?.filter((a) => !a.clearedAt).length ?? 0;
  const ack = async (a: Alarm) => {
    setErr(null);
    try {
      const updated = await api<Alarm>(`/api/alarms/${a.id}/ack`, { method: 'POST' });
      alarms.set((list) => list.map((x) => (x.id === a.id ? updated : x)));
    } catch (e) {
      setErr(e);
    }
  };
  return (
    <>
      <h1>{t('alarms.title')}</h1>
      <section class="card" aria-labelledby="al-title">
        <div class="card-head">
          <h2 id="al-title">{t('alarms.openCount', { count: open })}</h2>
        </div>
        <ErrorText error={alarms.error ?? err} />
        {alarms.data && !alarms.data.length && <p class="muted">{t('alarms.empty')}</p>}
        <ul class="alarm-list">
          {alarms.data?.map((a) => (
            <AlarmItem
              key={a.id}
              alarm={a}
              deviceName={<a href={`/devices/${encodeURIComponent(a.deviceId)}`} onClick={(e) => { e.preventDefault(); navigate(`/devices/${encodeURIComponent(a.deviceId)}`); }}>{name(a.deviceId)}</a>}
              action={canAck && !a.clearedAt && !a.acknowledgedAt ? <button type="button" class="btn" onClick={() => ack(a)}>{t('alarms.ack')}</button> : undefined}
            />
          ))}
        </ul>
      </section>
    </>
  );
}
