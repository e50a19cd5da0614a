// Hamlets (zones): create, rename, change kind, delete (the API refuses a zone that still has devices).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import type { Zone } from '../types.js';
import { Confirm, ErrorText, Field, useData, useMutation } from '../components/ui.js';

export function ZonesPage() {
  const zones = useData(() => api<Zone[]>('/api/zones'), []);
  const [form, setForm] = useState({ name: '', id: '', kind: 'thôn' });
  const [editing, setEditing] = useState<{ id: string; name: string; kind: string } | null>(null);
  const [deleting, setDeleting] = useState<Zone | null>(null);
  const { err, busy, run } = useMutation(zones.reload);

  return (
    <>
      <h1>{t('zones.title')}</h1>
      <section class="card" aria-labelledby="zc-title">
        <h2 id="zc-title">{t('zones.create')}</h2>
        <form class="form-grid" onSubmit={async (e) => {
          e.preventDefault();
          const ok = await run(() => api('/api/zones', { method: 'POST', body: { name: form.name.trim(), kind: form.kind.trim() || undefined, ...(form.id.trim() ? { id: form.id.trim() } : {}) } }));
          if (ok) setForm({ name: '', id: '', kind: 'thôn' });
        }}>
          <Field id="z-name" label={t('zones.name')}><input id="z-name" required maxLength={100} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} /></Field>
          <Field id="z-kind" label={t('zones.kind')} hint={t('zones.kindHint')}><input id="z-kind" maxLength={40} aria-describedby="z-kind-hint" value={form.kind} onInput={(e) => setForm({ ...form, kind: e.currentTarget.value })} /></Field>
          <Field id="z-id" label={`${t('zones.id')} ${t('form.optional')}`} hint={t('zones.idHint')}><input id="z-id" maxLength={48} aria-describedby="z-id-hint" class="mono" value={form.id} onInput={(e) => setForm({ ...form, id: e.currentTarget.value })} /></Field>
          <div class="form-actions"><button type="submit" class="btn btn-primary" disabled={busy}>{t('form.create')}</button></div>
        </form>
      </section>
      <section class="card" aria-labelledby="zl-title">
        <h2 id="zl-title">{t('zones.title')}</h2>
        <ErrorText error={zones.error ?? err} />
        {zones.data && !zones.data.length && <p class="muted">{t('zones.empty')}</p>}
        {!!zones.data?.length && (
          <table class="table">
            <thead><tr><th scope="col">{t('zones.name')}</th><th scope="col">{t('zones.kind')}</th><th scope="col">{t('zones.id')}</th><th scope="col">{t('col.actions')}</th></tr></thead>
            <tbody>
              {zones.data.map((z) => editing?.id === z.id ? (
                <tr key={z.id}>
                  <td data-label={t('zones.name')}><label class="sr-only" for={`ze-n-${z.id}`}>{t('zones.name')}</label><input id={`ze-n-${z.id}`} value={editing.name} maxLength={100} onInput={(e) => setEditing({ ...editing, name: e.currentTarget.value })} /></td>
                  <td data-label={t('zones.kind')}><label class="sr-only" for={`ze-k-${z.id}`}>{t('zones.kind')}</label><input id={`ze-k-${z.id}`} value={editing.kind} maxLength={40} onInput={(e) => setEditing({ ...editing, kind: e.currentTarget.value })} /></td>
                  <td data-label={t('zones.id')} class="mono">{z.id}</td>
                  <td data-label={t('col.actions')} class="row">
                    <button type="button" class="btn btn-primary" disabled={busy} onClick={async () => {
                      if (await run(() => api(`/api/zones/${z.id}`, { method: 'PATCH', body: { name: editing.name.trim(), kind: editing.kind.trim() } }))) setEditing(null);
                    }}>{t('form.save')}</button>
                    <button type="button" class="btn" onClick={() => setEditing(null)}>{t('form.cancel')}</button>
                  </td>
                </tr>
              ) : (
                <tr key={z.id}>
                  <td data-label={t('zones.name')}>{z.name}</td>
                  <td data-label={t('zones.kind')}>{z.kind}</td>
                  <td data-label={t('zones.id')} class="mono">{z.id}</td>
                  <td data-label={t('col.actions')} class="row">
                    <button type="button" class="btn" onClick={() => setEditing({ id: z.id, name: z.name, kind: z.kind })}>{t('form.edit')}</button>
                    <button type="button" class="btn btn-danger" onClick={() => setDeleting(z)}>{t('form.delete')}</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {deleting && (
        <Confirm danger message={t('form.deleteConfirm', { name: deleting.name })} confirmLabel={t('form.delete')} onCancel={() => setDeleting(null)}
          onConfirm={() => { const z = deleting; setDeleting(null); void run(() => api(`/api/zones/${z.id}`, { method: 'DELETE' })); }} />
      )}
    </>
  );
}
