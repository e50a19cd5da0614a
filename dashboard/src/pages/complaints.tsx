// The chairman's workspace: complaint cases (newest first) and one case with
// its clip. Filing a complaint tags the desk's camera around that moment and
// puts the video on legal hold (the gateway does both); the case page plays
// the clip, exports it with a progress bar, verifies the export against its
// manifest, and shows every audited action about the case.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { formatDateTime, fromZoneInput, toZoneInput } from '../format.js';
import { navigate } from '../router.js';
import { Confirm, ErrorText, Field, Icon, Section, useData, useMutation } from '../components/ui.js';
import { HlsView, formatWallClock } from '../components/hls-view.js';
import { TimelineBar, type Timeline } from '../components/timeline-bar.js';
import '../styles/evidence.css';

interface Tag { id: string; type: string; cameraIds: string[]; desk: string | null; at: string; from: string; to: string; note: string }
interface Case {
  id: string; reference: string; desk: string | null; at: string; account: string; contact: string | null; status: 'open' | 'handled';
  hold: boolean; tagIds: string[]; exportIds: string[]; notes: Array<{ at: string; by: string; text: string }>; createdAt: string; createdBy: string;
  complaintTagId: string | null;
}
interface CaseDetail extends Case { tags: Tag[]; audit: Array<{ at: string; actor: string | null; action: string; target?: string; ok: boolean }> }
interface Desk { id: string; name: string }
interface ExportView { id: string; cameraId: string; from: string; to: string; caseId: string | null; state: 'queued' | 'running' | 'done' | 'failed'; percent: number; bytes: number | null; sha256: string | null; createdBy: string; createdAt: string; error: string | null }
interface VerifyResult { ok: boolean; checks: Array<{ name: string; ok: boolean; skipped?: boolean; detail: string }> }

export function CasesPage() {
  const [status, setStatus] = useState<'' | 'open' | 'handled'>('');
  const cases = useData(() => api<Case[]>('/api/cases', { query: { status: status || undefined } }), [status]);
  const desks = useData(() => api<Desk[]>('/api/cameras/desks'), []);
  const deskName = (id: string | null) => desks.data?.find((d) => d.id === id)?.name ?? id ?? '—';
  return (
    <div class="page">
      <h1>{t('ev.cases.title')}</h1>
      <ComplaintForm desks={desks.data ?? []} onFiled={(c) => navigate(`/cases/${c.id}`)} />
      <Section title={t('ev.cases.list')} id="cases-list" actions={(
        <select aria-label={t('ev.cases.filter')} value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as typeof status)}>
          <option value="">{t('ev.cases.all')}</option>
          <option value="open">{t('ev.status.open')}</option>
          <option value="handled">{t('ev.status.handled')}</option>
        </select>
      )}>
        <ErrorText error={cases.error} />
        {cases.data && !cases.data.length && <p class="muted">{t('ev.cases.empty')}</p>}
        <ul class="case-list" data-testid="case-list">
          {cases.data?.map((c) => (
            <li key={c.id}>
              <a href={`/cases/${c.id}`} onClick={(e) => { e.preventDefault(); navigate(`/cases/${c.id}`); }}>
                <strong>{c.reference}</strong> · {deskName(c.desk)} · {formatDateTime(c.at)}
              </a>
              <StatusBadge c={c} />
              <p class="muted clamp">{c.account}</p>
            </li>
          ))}
        </ul>
      </Section>
    </div>
  );
}

function StatusBadge({ c }: { c: Case }) {
  return (
    <span class="row">
      <span class={`badge ${c.status === 'open' ? 'badge-warn' : 'badge-ok'}`}><Icon name={c.status === 'open' ? 'clock' : 'online'} /> {t(`ev.status.${c.status}` as MessageKey)}</span>
      {c.hold && <span class="badge badge-info" data-testid="hold-badge"><Icon name="alert" /> {t('ev.hold.on')}</span>}
    </span>
  );
}

function ComplaintForm({ desks, onFiled }: { desks: Desk[]; onFiled: (c: Case) => void }) {
  const [reference, setReference] = useState('');
  const [desk, setDesk] = useState('');
  const [at, setAt] = useState(toZoneInput(Date.now() - 10 * 60_000));
  const [account, setAccount] = useState('');
  const [contact, setContact] = useState('');
  const m = useMutation(() => {});
  const fieldErr = (f: string) => (m.err instanceof ApiError && m.err.field === `body.${f}` ? m.err.message : null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const when = fromZoneInput(at);
    const c = await m.run(() => api<Case>('/api/cases', {
      method: 'POST', body: { reference, desk: desk || desks[0]?.id, at: when ? when.toISOString() : at, account, ...(contact ? { contact } : {}) },
    }));
    if (c) onFiled(c);
  };
  return (
    <Section title={t('ev.file.title')} id="file-complaint">
      <form class="form-grid" onSubmit={submit} data-testid="complaint-form">
        <Field id="c-ref" label={t('ev.file.reference')}><input id="c-ref" name="reference" value={reference} onInput={(e) => setReference((e.target as HTMLInputElement).value)} required maxLength={64} />{fieldErr('reference') && <small class="error-inline">{fieldErr('reference')}</small>}</Field>
        <Field id="c-desk" label={t('ev.file.desk')}>
          <select id="c-desk" name="desk" value={desk || desks[0]?.id} onChange={(e) => setDesk((e.target as HTMLSelectElement).value)}>
            {desks.map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
          </select>
          {fieldErr('desk') && <small class="error-inline">{fieldErr('desk')}</small>}
        </Field>
        <Field id="c-at" label={t('ev.file.at')} hint={t('ev.file.atHint')}><input id="c-at" name="at" type="datetime-local" step="1" value={at} onInput={(e) => setAt((e.target as HTMLInputElement).value)} required />{fieldErr('at') && <small class="error-inline">{fieldErr('at')}</small>}</Field>
        <Field id="c-account" label={t('ev.file.account')}><textarea id="c-account" name="account" rows={3} value={account} onInput={(e) => setAccount((e.target as HTMLTextAreaElement).value)} required maxLength={8000} />{fieldErr('account') && <small class="error-inline">{fieldErr('account')}</small>}</Field>
        <Field id="c-contact" label={t('ev.file.contact')}><input id="c-contact" name="contact" value={contact} onInput={(e) => setContact((e.target as HTMLInputElement).value)} maxLength={200} /></Field>
        <div class="row end"><button class="btn btn-primary" type="submit" disabled={m.busy}>{t('ev.file.submit')}</button></div>
        {m.err && !(m.err instanceof ApiError && m.err.field) ? <ErrorText error={m.err} /> : null}
      </form>
    </Section>
  );
}

export function CasePage({ id }: { id: string }) {
  const kase = useData(() => api<CaseDetail>(`/api/cases/${id}`), [id]);
  const exports = useData(() => api<ExportView[]>('/api/exports', { query: { caseId: id } }), [id]);
  const cameras = useData(() => api<Array<{ id: string; name: string; desk: string | null }>>('/api/cameras'), []);
  const [note, setNote] = useState('');
  const [confirmRelease, setConfirmRelease] = useState(false);
  const m = useMutation(() => { kase.reload(); exports.reload(); });
  const c = kase.data;
  if (kase.error) return <div class="page"><ErrorText error={kase.error} /></div>;
  if (!c) return <div class="page"><p>{t('app.loading')}</p></div>;
  const complaint = c.tags.find((x) => x.id === c.complaintTagId) ?? c.tags.find((x) => x.type === 'complaint');
  const camera = complaint?.cameraIds[0] ?? cameras.data?.find((x) => x.desk === c.desk)?.id ?? null;
  return (
    <div class="page case-page">
      <p><a href="/cases" onClick={(e) => { e.preventDefault(); navigate('/cases'); }}>← {t('ev.cases.title')}</a></p>
      <h1>{t('ev.case.title', { reference: c.reference })}</h1>
      <StatusBadge c={c} />
      <dl class="facts">
        <dt>{t('ev.file.at')}</dt><dd>{formatDateTime(c.at)}</dd>
        <dt>{t('ev.file.desk')}</dt><dd>{c.desk ?? '—'}</dd>
        <dt>{t('ev.file.account')}</dt><dd class="prewrap">{c.account}</dd>
        {c.contact && <><dt>{t('ev.file.contact')}</dt><dd>{c.contact}</dd></>}
      </dl>
      <div class="row">
        <button class="btn" disabled={m.busy} onClick={() => void m.run(() => api(`/api/cases/${id}`, { method: 'PATCH', body: { status: c.status === 'open' ? 'handled' : 'open' } }))}>
          {c.status === 'open' ? t('ev.case.markHandled') : t('ev.case.reopen')}
        </button>
        {c.hold && <button class="btn btn-danger" disabled={m.busy || c.status !== 'handled'} title={c.status !== 'handled' ? t('ev.hold.onlyHandled') : ''} onClick={() => setConfirmRelease(true)}>{t('ev.hold.release')}</button>}
      </div>
      {confirmRelease && <Confirm message={t('ev.hold.confirm')} confirmLabel={t('ev.hold.release')} danger onCancel={() => setConfirmRelease(false)} onConfirm={() => { setConfirmRelease(false); void m.run(() => api(`/api/cases/${id}/release-hold`, { method: 'POST' })); }} />}
      <ErrorText error={m.err} />

      {camera && complaint
        ? <ClipSection caseId={c.id} cameraId={camera} from={complaint.from} to={complaint.to} exports={exports.data ?? []} onExported={exports.reload} />
        : <p class="muted">{t('ev.case.noCamera')}</p>}

      <Section title={t('ev.case.tags')} id="case-tags">
        <ul class="tag-list">
          {c.tags.map((tg) => (
            <li key={tg.id} data-testid="case-tag" data-type={tg.type}>
              {tg.cameraIds[0] && <img loading="lazy" alt="" width={160} height={90} src={`/api/cameras/${encodeURIComponent(tg.cameraIds[0])}/snapshot?at=${encodeURIComponent(tg.at)}`} />}
              <span><strong>{t(`ev.tag.${tg.type}` as MessageKey)}</strong> · {formatWallClock(Date.parse(tg.at))}{tg.note ? ` — ${tg.note}` : ''}</span>
            </li>
          ))}
        </ul>
      </Section>

      <Section title={t('ev.case.notes')} id="case-notes">
        <ul>{c.notes.map((n) => <li key={n.at}>{formatDateTime(n.at)} · {n.by}: {n.text}</li>)}</ul>
        <form class="row" onSubmit={(e) => { e.preventDefault(); void m.run(() => api(`/api/cases/${id}/notes`, { method: 'POST', body: { text: note } })).then(() => setNote('')); }}>
          <input aria-label={t('ev.case.note')} value={note} onInput={(e) => setNote((e.target as HTMLInputElement).value)} required maxLength={2000} />
          <button class="btn" type="submit" disabled={m.busy}>{t('ev.case.addNote')}</button>
        </form>
      </Section>

      <Section title={t('ev.case.audit')} id="case-audit">
        <table class="table" data-testid="case-audit">
          <thead><tr><th>{t('ev.audit.at')}</th><th>{t('ev.audit.who')}</th><th>{t('ev.audit.action')}</th></tr></thead>
          <tbody>{c.audit.map((a, i) => <tr key={i}><td>{formatDateTime(a.at)}</td><td>{a.actor ?? '—'}</td><td>{a.action}{a.ok ? '' : ' ✗'}</td></tr>)}</tbody>
        </table>
      </Section>
    </div>
  );
}

function ClipSection({ caseId, cameraId, from, to, exports, onExported }: { caseId: string; cameraId: string; from: string; to: string; exports: ExportView[]; onExported: () => void }) {
  const src = `/api/cameras/${encodeURIComponent(cameraId)}/playlist.m3u8?${new URLSearchParams({ from, to, caseId })}`;
  const tl = useData(() => api<Timeline>(`/api/cameras/${encodeURIComponent(cameraId)}/timeline`, { query: { from, to } }), [cameraId, from, to]);
  const [playFrom, setPlayFrom] = useState(0);
  const [cursor, setCursor] = useState<number | null>(null);
  const [running, setRunning] = useState<ExportView | null>(null);
  const [verify, setVerify] = useState<Record<string, VerifyResult>>({});
  const m = useMutation(() => {});
  // Progress by polling: one export at a time, a few seconds long.
  useEffect(() => {
    if (!running || running.state === 'done' || running.state === 'failed') return;
    const h = setTimeout(() => { void api<ExportView>(`/api/exports/${running.id}`).then((x) => { setRunning(x); if (x.state === 'done' || x.state === 'failed') onExported(); }); }, 400);
    return () => clearTimeout(h);
  }, [running]);
  const startExport = async () => {
    const x = await m.run(() => api<ExportView>('/api/exports', { method: 'POST', body: { cameraId, from, to, caseId } }));
    if (x) setRunning(x);
  };
  const check = async (id: string) => {
    const r = await m.run(() => api<VerifyResult>(`/api/exports/${id}/verify`, { method: 'POST' }));
    if (r) setVerify((v) => ({ ...v, [id]: r }));
  };
  const a = Date.parse(from);
  return (
    <Section title={t('ev.clip.title', { from: formatWallClock(a), to: formatWallClock(Date.parse(to)) })} id="case-clip">
      {tl.data && <TimelineBar data={tl.data} cursor={cursor} onSeek={(ms) => setPlayFrom(Math.max(0, (ms - a) / 1000))} />}
      <HlsView key={`${src}#${playFrom}`} src={src} startAt={playFrom} onTime={setCursor} />
      <div class="row">
        <button class="btn btn-primary" onClick={() => void startExport()} disabled={m.busy || (running !== null && (running.state === 'queued' || running.state === 'running'))} data-testid="export-btn">{t('ev.export.start')}</button>
        {running && (
          <span class="export-progress">
            <progress max={100} value={running.percent} data-testid="export-progress" /> {running.percent} % · {t(`ev.export.state.${running.state}` as MessageKey)}
            {running.error && <span class="error-inline"> {running.error}</span>}
          </span>
        )}
      </div>
      <ErrorText error={m.err} />
      <ul class="export-list" data-testid="export-list">
        {exports.map((x) => (
          <li key={x.id} data-state={x.state}>
            <span>{formatDateTime(x.createdAt)} · {x.createdBy} · {t(`ev.export.state.${x.state}` as MessageKey)}</span>
            {x.state === 'done' && (
              <span class="row">
                <a class="btn" href={`/api/exports/${x.id}/file`} download data-testid="export-download">{t('ev.export.download')}</a>
                <a class="btn" href={`/api/exports/${x.id}/manifest`} download>{t('ev.export.manifest')}</a>
                <button class="btn" onClick={() => void check(x.id)} data-testid="export-verify">{t('ev.export.verify')}</button>
                {x.sha256 && <code class="sha" title="SHA-256">{x.sha256.slice(0, 16)}…</code>}
              </span>
            )}
            {verify[x.id] && (
              <div class={verify[x.id]!.ok ? 'ok-inline' : 'error-inline'} data-testid="verify-result" data-ok={String(verify[x.id]!.ok)}>
                <strong>{verify[x.id]!.ok ? t('ev.export.verifyOk') : t('ev.export.verifyFailed')}</strong>
                <ul>{verify[x.id]!.checks.map((ch) => <li key={ch.name}>{ch.skipped ? '–' : ch.ok ? '✓' : '✗'} {ch.name}: {ch.detail}</li>)}</ul>
              </div>
            )}
          </li>
        ))}
      </ul>
    </Section>
  );
}
