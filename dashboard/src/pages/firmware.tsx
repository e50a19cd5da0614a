// Firmware updates for technicians: upload an image (the SHA-256 the vendor
// published is checked against the bytes by the gateway), start a staged
// campaign (canary, batches, health gate) for the image's model in some
// hamlets, follow it with a progress bar per campaign and a row per speaker,
// pause / resume / abort (abort after a confirmation).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, apiForm } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { formatDateTime } from '../format.js';
import { Confirm, ErrorText, Field, Section, useData, useMutation } from '../components/ui.js';

interface Image { sha256: string; model: string; version: string; bytes: number; uploadedBy: string; uploadedAt: string }
interface Row { deviceId: string; zoneId: string | null; stage: string; wave: number | null; error: string | null }
interface Campaign {
  id: string; sha256: string; model: string; version: string; zones: string[] | null; state: 'running' | 'paused' | 'aborted' | 'done'; reason: string | null;
  canary: number; maxFailureShare: number; createdAt: string; counts: Record<string, number>; rows: Row[];
}
interface Zone { id: string; name: string }

/** A device's way through an update, as steps of its progress bar (the text says which). */
const STAGE_STEP: Record<string, number> = { pending: 0, sent: 1, installing: 2, done: 3, skipped: 3, failed: 3, 'timed-out': 3 };

export function FirmwarePage() {
  const images = useData(() => api<Image[]>('/api/firmware'), []);
  const campaigns = useData(() => api<Campaign[]>('/api/ota/campaigns'), []);
  const zones = useData(() => api<Zone[]>('/api/zones'), []);
  useEffect(() => {
    const h = setInterval(() => campaigns.reload(), 2000);
    return () => clearInterval(h);
  }, []);
  return (
    <div class="page">
      <h1>{t('ota.title')}</h1>
      <UploadForm onDone={images.reload} />
      <Section title={t('ota.images')} id="ota-images">
        <ErrorText error={images.error} />
        {images.data && !images.data.length && <p class="muted">{t('ota.noImages')}</p>}
        <ul data-testid="ota-images">{images.data?.map((i) => <li key={i.sha256}><strong>{i.model} {i.version}</strong> · {(i.bytes / 1e6).toFixed(1)} MB · <code>{i.sha256.slice(0, 16)}…</code> · {formatDateTime(i.uploadedAt)}</li>)}</ul>
      </Section>
      {images.data && images.data.length > 0 && <CampaignForm images={images.data} zones={zones.data ?? []} onDone={campaigns.reload} />}
      <Section title={t('ota.campaigns')} id="ota-campaigns">
        {campaigns.data?.map((c) => <CampaignCard key={c.id} c={c} onChanged={campaigns.reload} />)}
      </Section>
    </div>
  );
}

function UploadForm({ onDone }: { onDone: () => void }) {
  const m = useMutation(onDone);
  const err = (f: string) => (m.err instanceof ApiError && m.err.field === `body.${f}` ? m.err.message : null);
  return (
    <Section title={t('ota.upload')} id="ota-upload">
      <form class="form-grid" onSubmit={(e) => { e.preventDefault(); const f = new FormData(e.currentTarget as HTMLFormElement); void m.run(() => apiForm<Image>('/api/firmware', f)); }}>
        <Field id="fw-model" label={t('ota.model')}><input id="fw-model" name="model" required placeholder="LOA-4G-30W" />{err('model') && <small class="error-inline">{err('model')}</small>}</Field>
        <Field id="fw-version" label={t('ota.version')}><input id="fw-version" name="version" required placeholder="1.5.0" />{err('version') && <small class="error-inline">{err('version')}</small>}</Field>
        <Field id="fw-sha" label={t('ota.sha256')} hint={t('ota.shaHint')}><input id="fw-sha" name="sha256" required pattern="[0-9a-fA-F]{64}" />{err('sha256') && <small class="error-inline">{err('sha256')}</small>}</Field>
        <Field id="fw-file" label={t('ota.file')}><input id="fw-file" name="file" type="file" required /></Field>
        <div class="row end"><button class="btn btn-primary" disabled={m.busy}>{t('ota.uploadBtn')}</button></div>
        {m.err && !(m.err instanceof ApiError && m.err.field) ? <ErrorText error={m.err} /> : null}
      </form>
    </Section>
  );
}

function CampaignForm({ images, zones, onDone }: { images: Image[]; zones: Zone[]; onDone: () => void }) {
  const [sha, setSha] = useState(images[0]!.sha256);
  const [picked, setPicked] = useState<string[]>([]);
  const [canary, setCanary] = useState(1);
  const [share, setShare] = useState(20);
  const [timeout, setTimeoutMin] = useState(30);
  const m = useMutation(onDone);
  return (
    <Section title={t('ota.newCampaign')} id="ota-new">
      <form class="form-grid" onSubmit={(e) => { e.preventDefault(); void m.run(() => api('/api/ota/campaigns', { method: 'POST', body: { sha256: sha, zones: picked.length ? picked : undefined, canary, batchSize: 0, maxFailureShare: share / 100, onlineTimeoutMinutes: timeout } })); }}>
        <Field id="oc-image" label={t('ota.image')}><select id="oc-image" value={sha} onChange={(e) => setSha((e.target as HTMLSelectElement).value)}>{images.map((i) => <option key={i.sha256} value={i.sha256}>{i.model} {i.version}</option>)}</select></Field>
        <fieldset><legend>{t('ota.zones')}</legend>
          {zones.map((z) => <label key={z.id} class="check"><input type="checkbox" checked={picked.includes(z.id)} onChange={(e) => setPicked((p) => ((e.target as HTMLInputElement).checked ? [...p, z.id] : p.filter((x) => x !== z.id)))} /> {z.name}</label>)}
          <small class="hint">{t('ota.zonesHint')}</small>
        </fieldset>
        <Field id="oc-canary" label={t('ota.canary')}><input id="oc-canary" type="number" min={1} value={canary} onInput={(e) => setCanary(Number((e.target as HTMLInputElement).value))} /></Field>
        <Field id="oc-share" label={t('ota.gate')}><input id="oc-share" type="number" min={0} max={100} value={share} onInput={(e) => setShare(Number((e.target as HTMLInputElement).value))} /></Field>
        <Field id="oc-timeout" label={t('ota.timeout')}><input id="oc-timeout" type="number" min={1} max={1440} value={timeout} onInput={(e) => setTimeoutMin(Number((e.target as HTMLInputElement).value))} /></Field>
        <div class="row end"><button class="btn btn-primary" disabled={m.busy}>{t('ota.start')}</button></div>
        <ErrorText error={m.err} />
      </form>
    </Section>
  );
}

function CampaignCard({ c, onChanged }: { c: Campaign; onChanged: () => void }) {
  const [confirm, setConfirm] = useState(false);
  const m = useMutation(onChanged);
  const act = (a: 'pause' | 'resume' | 'abort') => void m.run(() => api(`/api/ota/campaigns/${c.id}/${a}`, { method: 'POST' }));
  const todo = c.counts.targets! - (c.counts.skipped ?? 0);
  const finished = (c.counts.done ?? 0) + (c.counts.failed ?? 0) + (c.counts.timedOut ?? 0);
  return (
    <article class="card" data-testid="ota-campaign" data-state={c.state}>
      <h3>{c.model} → {c.version} · {t(`ota.state.${c.state}` as MessageKey)}</h3>
      <p><progress max={Math.max(1, todo)} value={finished} /> {t('ota.progress', { done: c.counts.done ?? 0, failed: (c.counts.failed ?? 0) + (c.counts.timedOut ?? 0), total: todo })}</p>
      {c.reason && <p class="error-inline">{c.reason}</p>}
      <div class="row">
        {c.state === 'running' && <button class="btn" onClick={() => act('pause')}>{t('ota.pause')}</button>}
        {c.state === 'paused' && <button class="btn" onClick={() => act('resume')}>{t('ota.resume')}</button>}
        {(c.state === 'running' || c.state === 'paused') && <button class="btn btn-danger" onClick={() => setConfirm(true)}>{t('ota.abort')}</button>}
      </div>
      {confirm && <Confirm message={t('ota.abortConfirm')} confirmLabel={t('ota.abort')} danger onCancel={() => setConfirm(false)} onConfirm={() => { setConfirm(false); act('abort'); }} />}
      <ErrorText error={m.err} />
      <table class="table"><thead><tr><th>{t('ota.device')}</th><th>{t('ota.stage')}</th><th>{t('ota.error')}</th></tr></thead>
        <tbody>{c.rows.map((r) => (
          <tr key={r.deviceId} data-stage={r.stage}>
            <td>{r.deviceId}</td>
            <td><progress max={3} value={STAGE_STEP[r.stage] ?? 0} aria-hidden="true" /> {t(`ota.stage.${r.stage}` as MessageKey)}</td>
            <td>{r.error ?? ''}</td>
          </tr>
        ))}</tbody>
      </table>
    </article>
  );
}
