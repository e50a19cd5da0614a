// Devices: register (the secret and a provisioning snippet are shown once),
// rename / move to another hamlet / set model and firmware, delete.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { navigate } from '../router.js';
import type { Device, DeviceType, SecretReply, Zone } from '../types.js';
import { Confirm, CopyBox, ErrorText, Field, useData, useMutation } from '../components/ui.js';
import { ProvisionDialog } from '../components/provision.js';

interface Form { id: string; type: DeviceType; name: string; zoneId: string; model: string; firmware: string }
const EMPTY: Form = { id: '', type: 'speaker', name: '', zoneId: '', model: '', firmware: '' };

export function AdminDevicesPage() {
  const devices = useData(() => api<Device[]>('/api/devices'), []);
  const zones = useData(() => api<Zone[]>('/api/zones'), []);
  const [form, setForm] = useState<Form>(EMPTY);
  const [created, setCreated] = useState<SecretReply | null>(null);
  const [editing, setEditing] = useState<Form | null>(null);
  const [deleting, setDeleting] = useState<Device | null>(null);
  const [provisioning, setProvisioning] = useState<Pick<Device, 'id' | 'name' | 'type'> | null>(null);
  const { err, busy, run } = useMutation(devices.reload);
  const zoneSelect = (id: string, value: string, on: (v: string) => void) => (
    <select id={id} value={value} onChange={(e) => on(e.currentTarget.value)}>
      <option value="">{t('adminDevices.noZone')}</option>
      {zones.data?.map((z) => <option key={z.id} value={z.id}>{z.name}</option>)}
    </select>
  );

  return (
    <>
      <h1>{t('adminDevices.title')}</h1>
      <section class="card" aria-labelledby="dc-title">
        <h2 id="dc-title">{t('adminDevices.create')}</h2>
        <form class="form-grid" onSubmit={async (e) => {
          e.preventDefault();
          const body = {
            type: form.type, name: form.name.trim(), zoneId: form.zoneId || null,
            ...(form.id.trim() ? { id: form.id.trim() } : {}), ...(form.model.trim() ? { model: form.model.trim() } : {}), ...(form.firmware.trim() ? { firmware: form.firmware.trim() } : {}),
          };
          const r = await run(() => api<SecretReply>('/api/devices', { method: 'POST', body }));
          if (r) {
            setCreated(r);
            setForm(EMPTY);
          }
        }}>
          <Field id="d-name" label={t('adminDevices.name')}><input id="d-name" required maxLength={100} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} /></Field>
          <Field id="d-type" label={t('adminDevices.type')}>
            <select id="d-type" value={form.type} onChange={(e) => setForm({ ...form, type: e.currentTarget.value as DeviceType })}>
              <option value="speaker">{t('type.speaker')}</option>
              <option value="keypad">{t('type.keypad')}</option>
            </select>
          </Field>
          <Field id="d-zone" label={t('adminDevices.zone')}>{zoneSelect('d-zone', form.zoneId, (v) => setForm({ ...form, zoneId: v }))}</Field>
          <Field id="d-id" label={`${t('adminDevices.id')} ${t('form.optional')}`} hint={t('adminDevices.idHint')}><input id="d-id" class="mono" maxLength={52} aria-describedby="d-id-hint" value={form.id} onInput={(e) => setForm({ ...form, id: e.currentTarget.value })} /></Field>
          <Field id="d-model" label={`${t('adminDevices.model')} ${t('form.optional')}`}><input id="d-model" maxLength={64} value={form.model} onInput={(e) => setForm({ ...form, model: e.currentTarget.value })} /></Field>
          <Field id="d-fw" label={`${t('adminDevices.firmware')} ${t('form.optional')}`}><input id="d-fw" maxLength={64} value={form.firmware} onInput={(e) => setForm({ ...form, firmware: e.currentTarget.value })} /></Field>
          <div class="form-actions"><button type="submit" class="btn btn-primary" disabled={busy}>{t('form.create')}</button></div>
        </form>
        {created && (
          <div class="secret-box" role="status">
            <p class="ok-inline">{t('adminDevices.created', { name: created.device.name })}</p>
            <CopyBox label={t('device.secretOnce')} value={created.secret} />
            <CopyBox label={t('adminDevices.provisioning')} value={JSON.stringify(created.provisioning, null, 2)} rows={10} />
            <button type="button" class="btn btn-primary" onClick={() => { setProvisioning(created.device); setCreated(null); }}>{t('provision.open')}</button>
            <button type="button" class="btn" onClick={() => setCreated(null)}>{t('form.close')}</button>
          </div>
        )}
      </section>

      <section class="card" aria-labelledby="dl-title">
        <h2 id="dl-title">{t('devices.listTitle')}</h2>
        <ErrorText error={devices.error ?? err} />
        {devices.data && !devices.data.length && <p class="muted">{t('devices.empty')}</p>}
        {!!devices.data?.length && (
          <table class="table">
            <thead><tr><th scope="col">{t('col.name')}</th><th scope="col">{t('adminDevices.type')}</th><th scope="col">{t('col.zone')}</th><th scope="col">{t('adminDevices.model')}</th><th scope="col">{t('col.firmware')}</th><th scope="col">{t('col.actions')}</th></tr></thead>
            <tbody>
              {devices.data.map((d) => editing?.id === d.id ? (
                <tr key={d.id}>
                  <td data-label={t('col.name')}><label class="sr-only" for="de-name">{t('adminDevices.name')}</label><input id="de-name" maxLength={100} value={editing.name} onInput={(e) => setEditing({ ...editing, name: e.currentTarget.value })} /></td>
                  <td data-label={t('adminDevices.type')}>{t(`type.${d.type}` as MessageKey)}</td>
                  <td data-label={t('col.zone')}><label class="sr-only" for="de-zone">{t('adminDevices.zone')}</label>{zoneSelect('de-zone', editing.zoneId, (v) => setEditing({ ...editing, zoneId: v }))}</td>
                  <td data-label={t('adminDevices.model')}><label class="sr-only" for="de-model">{t('adminDevices.model')}</label><input id="de-model" maxLength={64} value={editing.model} onInput={(e) => setEditing({ ...editing, model: e.currentTarget.value })} /></td>
                  <td data-label={t('col.firmware')}><label class="sr-only" for="de-fw">{t('adminDevices.firmware')}</label><input id="de-fw" maxLength={64} value={editing.firmware} onInput={(e) => setEditing({ ...editing, firmware: e.currentTarget.value })} /></td>
                  <td data-label={t('col.actions')} class="row">
                    <button type="button" class="btn btn-primary" disabled={busy} onClick={async () => {
                      const ok = await run(() => api(`/api/devices/${encodeURIComponent(d.id)}`, { method: 'PATCH', body: { name: editing.name.trim(), zoneId: editing.zoneId || null, model: editing.model.trim(), firmware: editing.firmware.trim() } }));
                      if (ok) setEditing(null);
                    }}>{t('form.save')}</button>
                    <button type="button" class="btn" onClick={() => setEditing(null)}>{t('form.cancel')}</button>
                  </td>
                </tr>
              ) : (
                <tr key={d.id}>
                  <td data-label={t('col.name')}>
                    <a href={`/devices/${encodeURIComponent(d.id)}`} onClick={(e) => { e.preventDefault(); navigate(`/devices/${encodeURIComponent(d.id)}`); }}>{d.name}</a>
                    <small class="muted mono block">{d.id}</small>
                  </td>
                  <td data-label={t('adminDevices.type')}>{t(`type.${d.type}` as MessageKey)}</td>
                  <td data-label={t('col.zone')}>{d.zoneId ? zones.data?.find((z) => z.id === d.zoneId)?.name ?? d.zoneId : t('zone.unassigned')}</td>
                  <td data-label={t('adminDevices.model')}>{d.model || t('value.none')}</td>
                  <td data-label={t('col.firmware')} class="mono">{d.firmware || t('value.none')}</td>
                  <td data-label={t('col.actions')} class="row">
                    <button type="button" class="btn" onClick={() => setEditing({ id: d.id, type: d.type, name: d.name, zoneId: d.zoneId ?? '', model: d.model, firmware: d.firmware })}>{t('form.edit')}</button>
                    <button type="button" class="btn" onClick={() => setProvisioning(d)}>{t('provision.open')}</button>
                    <button type="button" class="btn btn-danger" onClick={() => setDeleting(d)}>{t('form.delete')}</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {provisioning && <ProvisionDialog device={provisioning} onClose={() => setProvisioning(null)} />}
      {deleting && (
        <Confirm danger message={t('form.deleteConfirm', { name: deleting.name })} confirmLabel={t('form.delete')} onCancel={() => setDeleting(null)}
          onConfirm={() => { const d = deleting; setDeleting(null); void run(() => api(`/api/devices/${encodeURIComponent(d.id)}`, { method: 'DELETE' })); }} />
      )}
    </>
  );
}
