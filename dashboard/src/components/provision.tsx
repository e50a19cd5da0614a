// Provisioning dialog: pick a template (and network, desk) for a device, make
// a one-time bundle link (this rotates the device secret), then show it as a
// QR code for a phone on site, with a download link. The link works once and
// expires; closing the dialog forgets it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { formatDateTime } from '../format.js';
import { qrSvg } from '../qr.js';
import type { Device, ProvisionLink, ProvisionTemplate } from '../types.js';
import { CopyBox, ErrorText, Field, useData, useMutation } from './ui.js';
import '../styles/ratings.css';

export function ProvisionDialog({ device, onClose }: { device: Pick<Device, 'id' | 'name' | 'type'>; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const templates = useData(() => api<ProvisionTemplate[]>('/api/provisioning/templates'), []);
  const desks = useData(() => (device.type === 'keypad' ? api<Array<{ id: string; name: string }>>('/api/cameras/desks') : Promise.resolve([])), [device.type]);
  const fitting = templates.data?.filter((x) => x.deviceType === device.type) ?? [];
  const [template, setTemplate] = useState('');
  const [network, setNetwork] = useState<'wifi' | 'ethernet'>('wifi');
  const [desk, setDesk] = useState('');
  const [link, setLink] = useState<ProvisionLink | null>(null);
  const { err, busy, run } = useMutation(() => {});
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const chosen = template || fitting[0]?.name || '';
  const full = link ? new URL(link.url, location.origin).toString() : '';

  return (
    <dialog ref={ref} class="dialog dialog-wide" aria-labelledby="prov-title" onCancel={(e) => { e.preventDefault(); onClose(); }} data-testid="provision-dialog">
      <h2 id="prov-title">{t('provision.title', { name: device.name })}</h2>
      <ErrorText error={templates.error ?? err} />
      {!link && (
        <form class="form-grid" onSubmit={async (e) => {
          e.preventDefault();
          const body = {
            template: chosen,
            ...(chosen.startsWith('esphome') ? { network } : {}),
            ...(device.type === 'keypad' && desk ? { desk } : {}),
          };
          const r = await run(() => api<ProvisionLink>(`/api/devices/${encodeURIComponent(device.id)}/provision`, { method: 'POST', body }));
          if (r) setLink(r);
        }}>
          <Field id="prov-template" label={t('provision.template')}>
            <select id="prov-template" value={chosen} onChange={(e) => setTemplate(e.currentTarget.value)}>
              {fitting.map((x) => <option key={x.name} value={x.name}>{t(`provision.tpl.${x.name}` as MessageKey)}</option>)}
            </select>
          </Field>
          {chosen.startsWith('esphome') && (
            <Field id="prov-network" label={t('provision.network')}>
              <select id="prov-network" value={network} onChange={(e) => setNetwork(e.currentTarget.value as 'wifi' | 'ethernet')}>
                <option value="wifi">{t('provision.wifi')}</option>
                <option value="ethernet">{t('provision.ethernet')}</option>
              </select>
            </Field>
          )}
          {device.type === 'keypad' && (
            <Field id="prov-desk" label={t('provision.desk')}>
              <select id="prov-desk" value={desk} onChange={(e) => setDesk(e.currentTarget.value)}>
                <option value="">{t('provision.deskDefault')}</option>
                {desks.data?.map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
              </select>
            </Field>
          )}
          <p class="hint">{t('provision.warn')}</p>
          <div class="form-actions row end">
            <button type="button" class="btn" onClick={onClose}>{t('form.cancel')}</button>
            <button type="submit" class="btn btn-primary" disabled={busy || !chosen}>{t('provision.create')}</button>
          </div>
        </form>
      )}
      {link && (
        <div class="provision-result" role="status">
          <p>{t('provision.once', { time: formatDateTime(link.expiresAt) })}</p>
          <img class="qr" src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(qrSvg(full, { moduleSize: 5 }))}`} alt={t('provision.qr')} width={240} height={240} data-testid="provision-qr" />
          <CopyBox label={t('provision.link')} value={full} rows={2} />
          <div class="row end">
            {/* The link's download is a POST (opening it only shows a page): a plain form, no script. */}
            <form method="post" action={link.url}><button type="submit" class="btn" data-testid="provision-download">{t('provision.download', { file: link.filename })}</button></form>
            <button type="button" class="btn btn-primary" onClick={onClose}>{t('form.close')}</button>
          </div>
        </div>
      )}
    </dialog>
  );
}
