// Create or edit one item of the broadcast programme: title, content (text
// read by the speech engine with its normalised reading, a library item, a
// playlist of library items, or a relayed stream), recurrence (friendly forms
// or cron), exception dates, hamlets, priority and duration. The gateway
// writes it into the programme file (files are the source of truth) and
// answers with the overlaps it creates; its errors name the field
// (`body.recurrence.rule.times/0: ...`) and are shown under that part.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { t } from '../i18n/index.js';
import { navigate } from '../router.js';
import { mondayOf, todayVN } from '../schedule-dates.js';
import { PRIORITIES, type MediaItem, type Priority, type ProgrammeItem, type ProgrammeState, type Recurrence, type ScheduleContent, type ScheduleEditReply, type ScheduleKind, type ZoneSummary } from '../types.js';
import { fieldGroup } from './compose.js';
import { ZoneTiles } from '../components/zone-tiles.js';
import { MediaList, formatClock } from '../components/media-list.js';
import { RecurrenceEditor } from '../components/recurrence-editor.js';
import { SpokenPreview } from '../components/spoken-preview.js';
import { Confirm, ErrorText, Icon, useData, useDebounced } from '../components/ui.js';

const KINDS: ScheduleKind[] = ['tts', 'media', 'playlist', 'relay'];
const VOICES = ['vi', 'vi-vn-x-central', 'vi-vn-x-south'] as const;
const KNOWN = ['id', 'title', 'enabled', 'recurrence', 'content', 'targets', 'priority', 'durationMinutes'];

/** "Bản tin sáng thứ 2" -> "ban-tin-sang-thu-2": an id the programme file accepts. */
export function slugify(title: string): string {
  return title.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[đĐ]/g, 'd').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64).replace(/-+$/, '');
}

/** The form part an API error belongs to, from its field or, failing that, the `body.x: ...` message. */
function errGroup(err: unknown): string | null {
  if (!(err instanceof ApiError)) return null;
  return fieldGroup(err.field) ?? fieldGroup(/^(body[.\w/-]*):/.exec(err.message)?.[1]);
}

const blank = (): ProgrammeItem => ({
  id: '', title: '', enabled: true, recurrence: { rule: { kind: 'daily', times: ['05:30'] } },
  content: { kind: 'tts', text: '' }, targets: { zones: [] }, priority: 'normal', durationMinutes: 15,
});

/** What is sent: empty exception lists left out, as a hand-written file would. */
function cleanRecurrence(r: Recurrence): Recurrence {
  return { rule: r.rule, ...(r.except?.length ? { except: r.except } : {}), ...(r.exceptRanges?.length ? { exceptRanges: r.exceptRanges } : {}) };
}

export function ScheduleItemPage({ id }: { id?: string }) {
  const state = useData(() => (id ? api<ProgrammeState>('/api/schedules') : Promise.resolve(null)), [id]);
  const existing = id ? state.data?.items.find((i) => i.id === id) : undefined;
  if (id && state.data && !existing) {
    return (
      <div class="card">
        <p>{t('sched.notFound')}</p>
        <a href="/schedules" onClick={(e) => { e.preventDefault(); navigate('/schedules'); }}>{t('sched.back')}</a>
      </div>
    );
  }
  if (id && !existing) return state.error ? <ErrorText error={state.error} /> : <p>{t('app.loading')}</p>;
  // `file` is where the item lives, not part of it: the API refuses it in the body.
  const { file: _file, ...initial } = existing ?? { ...blank(), file: '' };
  return <ItemForm key={id ?? 'new'} initial={initial} editing={!!id} />;
}

function ItemForm({ initial, editing }: { initial: ProgrammeItem; editing: boolean }) {
  const [item, setItem] = useState<ProgrammeItem>(initial);
  const [idTouched, setIdTouched] = useState(editing);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const summary = useData(() => api<ZoneSummary[]>('/api/zones/summary'), []);
  const hamlets = summary.data?.filter((z) => z.zoneId !== null) ?? [];
  const set = (patch: Partial<ProgrammeItem>) => setItem((i) => ({ ...i, ...patch }));

  const group = errGroup(err);
  const errFor = (...g: string[]) => (group && g.includes(group) ? err : null);
  const otherErr = err && !(group && KNOWN.includes(group)) ? err : null;

  const all = 'all' in item.targets;
  const zones: string[] = 'zones' in item.targets ? item.targets.zones : [];
  const selected: ReadonlySet<string | null> = all ? new Set(hamlets.map((z) => z.zoneId)) : new Set(zones);
  const pickZone = (z: string | null) => {
    if (z === null) return;
    const base = all ? [] : zones;
    set({ targets: { zones: base.includes(z) ? base.filter((x) => x !== z) : [...base, z] } });
  };

  const setKind = (kind: ScheduleKind) => {
    const c = item.content;
    const media = c.kind === 'media' ? [c.mediaId] : c.kind === 'playlist' ? c.mediaIds : [];
    const next: ScheduleContent =
      kind === 'tts' ? { kind, text: c.kind === 'tts' ? c.text : '' }
        : kind === 'media' ? { kind, mediaId: media[0] ?? '' }
          : kind === 'playlist' ? { kind, mediaIds: media.filter(Boolean) }
            : { kind, url: c.kind === 'relay' ? c.url : '' };
    set({ content: next });
  };

  const save = async () => {
    setErr(null);
    setBusy(true);
    const id = item.id || slugify(item.title);
    // Only the item's own fields: the API's schema allows no others.
    const body: ProgrammeItem = {
      id, title: item.title.trim(), enabled: item.enabled, recurrence: cleanRecurrence(item.recurrence),
      content: item.content.kind === 'relay' ? { kind: 'relay', url: item.content.url.trim() } : item.content,
      targets: item.targets, priority: item.priority, durationMinutes: item.durationMinutes,
    };
    try {
      const r = editing
        ? await api<ScheduleEditReply>(`/api/schedules/${encodeURIComponent(initial.id)}`, { method: 'PUT', body })
        : await api<ScheduleEditReply>('/api/schedules', { method: 'POST', body });
      navigate(`/schedules?week=${mondayOf(todayVN())}&saved=${encodeURIComponent(r.item.id)}`);
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <div class="page-head">
        <h1>{editing ? t('sched.editTitle', { title: initial.title }) : t('sched.newTitle')}</h1>
        <a href="/schedules" onClick={(e) => { e.preventDefault(); navigate('/schedules'); }}>{t('sched.back')}</a>
      </div>
      <form noValidate class={`compose${item.priority === 'emergency' ? ' compose-emergency' : ''}`} onSubmit={(e) => {
        e.preventDefault();
        if (item.priority === 'emergency') setConfirming(true);
        else void save();
      }}>
        <section class="card" aria-labelledby="s-what">
          <h2 id="s-what">{t('sched.what')}</h2>
          <div class="form-grid">
            <div class="field">
              <label for="s-title">{t('sched.titleField')}</label>
              <input id="s-title" maxLength={200} required value={item.title} onInput={(e) => {
                const title = e.currentTarget.value;
                set(idTouched ? { title } : { title, id: slugify(title) });
              }} />
            </div>
            <div class="field">
              <label for="s-id">{t('sched.idField')}</label>
              <input id="s-id" class="mono" maxLength={64} value={item.id} readOnly={editing} aria-describedby="s-id-hint" spellcheck={false}
                onInput={(e) => { setIdTouched(true); set({ id: e.currentTarget.value }); }} />
              <small id="s-id-hint" class="hint">{t(editing ? 'sched.idFixed' : 'sched.idHint')}</small>
            </div>
          </div>
          <FieldErr error={errFor('title', 'id')} testid="err-title" />

          <div class="segmented" role="radiogroup" aria-label={t('compose.source')}>
            {KINDS.map((k) => (
              <label key={k} class={`seg${item.content.kind === k ? ' seg-on' : ''}`}>
                <input type="radio" name="kind" value={k} checked={item.content.kind === k} onChange={() => setKind(k)} /> {t(`sched.kindPick.${k}`)}
              </label>
            ))}
          </div>
          <ContentEditor content={item.content} onChange={(content) => set({ content })} />
          <FieldErr error={errFor('content')} testid="err-content" />
        </section>

        <section class="card" aria-labelledby="s-when">
          <h2 id="s-when">{t('sched.when')}</h2>
          <p class="hint">{t('compose.atHint')}</p>
          <RecurrenceEditor value={item.recurrence} onChange={(recurrence) => set({ recurrence })} />
          <FieldErr error={errFor('recurrence')} testid="err-recurrence" />
          <div class="field">
            <label for="s-duration">{t('sched.duration')}</label>
            <input id="s-duration" class="num" type="number" min={1} max={480} value={item.durationMinutes} aria-describedby="s-duration-hint"
              onInput={(e) => set({ durationMinutes: Number(e.currentTarget.value) })} />
            <small id="s-duration-hint" class="hint">{t(item.content.kind === 'relay' ? 'sched.durationRelay' : 'sched.durationHint')}</small>
          </div>
          <FieldErr error={errFor('durationMinutes')} testid="err-duration" />
        </section>

        <section class="card" aria-labelledby="s-target">
          <div class="card-head">
            <h2 id="s-target">{t('compose.target')}</h2>
            <span class="muted" role="status" data-testid="target-summary">
              {all ? t('compose.allZones') : zones.length ? t('compose.zonesPicked', { count: zones.length }) : t('compose.noTarget')}
            </span>
          </div>
          <p>
            <button type="button" class="btn" aria-pressed={all} data-testid="target-all" onClick={() => set({ targets: all ? { zones: [] } : { all: true } })}>
              <Icon name={all ? 'check' : 'empty'} /> {t('compose.allZones')}
            </button>
          </p>
          <ErrorText error={summary.error} />
          {summary.data && <ZoneTiles zones={hamlets} selected={selected} onPick={pickZone} />}
          <FieldErr error={errFor('targets')} testid="err-targets" />

          <h2 id="s-prio">{t('compose.priority')}</h2>
          <div class="segmented" role="radiogroup" aria-labelledby="s-prio">
            {PRIORITIES.map((p) => (
              <label key={p} class={`seg seg-${p}${item.priority === p ? ' seg-on' : ''}`}>
                <input type="radio" name="priority" value={p} checked={item.priority === p} onChange={() => set({ priority: p as Priority })} />
                {p === 'emergency' && <Icon name="alert" />} {t(`priority.${p}`)}
              </label>
            ))}
          </div>
          <p class="hint">{t('sched.priorityHint')}</p>
          <FieldErr error={errFor('priority')} testid="err-priority" />
          {editing && (
            <label class="check"><input type="checkbox" checked={item.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} /> {t('sched.enabledField')}</label>
          )}
        </section>

        <div class="send-bar">
          <ErrorText error={otherErr} />
          <button type="submit" class={`btn ${item.priority === 'emergency' ? 'btn-emergency' : 'btn-primary'}`} disabled={busy} data-testid="sched-save">
            <Icon name="check" /> {busy ? t('form.saving') : t('sched.save')}
          </button>
        </div>
      </form>
      {confirming && (
        <Confirm danger message={t('sched.confirmEmergency', { title: item.title })} confirmLabel={t('sched.save')}
          onCancel={() => setConfirming(false)} onConfirm={() => { setConfirming(false); void save(); }} />
      )}
    </>
  );
}

function FieldErr({ error, testid }: { error: unknown; testid: string }) {
  return error ? <div data-testid={testid}><ErrorText error={error} /></div> : null;
}

function ContentEditor({ content, onChange }: { content: ScheduleContent; onChange: (c: ScheduleContent) => void }) {
  switch (content.kind) {
    case 'tts':
      return (
        <>
          <div class="field">
            <label for="s-text">{t('compose.text')}</label>
            <textarea id="s-text" rows={5} maxLength={5000} value={content.text} aria-describedby="s-text-hint" onInput={(e) => onChange({ ...content, text: e.currentTarget.value })} />
            <small id="s-text-hint" class="hint">{t('sched.textHint')}</small>
          </div>
          <SpokenPreview text={content.text} />
          <div class="field">
            <label for="s-voice">{t('sched.voice')}</label>
            <select id="s-voice" value={content.voice ?? ''} onChange={(e) => {
              const { voice: _v, ...rest } = content;
              const v = e.currentTarget.value;
              onChange(v ? { ...rest, voice: v } : rest);
            }}>
              <option value="">{t('sched.voiceDefault')}</option>
              {VOICES.map((v) => <option key={v} value={v}>{t(`sched.voice.${v}`)}</option>)}
            </select>
          </div>
        </>
      );
    case 'media':
      return <LibraryPick picked={content.mediaId ? [content.mediaId] : []} onPick={(m) => onChange({ kind: 'media', mediaId: m.id })} />;
    case 'playlist':
      return <Playlist ids={content.mediaIds} onChange={(mediaIds) => onChange({ kind: 'playlist', mediaIds })} />;
    case 'relay':
      return (
        <div class="field">
          <label for="s-relay">{t('compose.relayUrl')}</label>
          <input id="s-relay" type="url" inputMode="url" placeholder="https://" value={content.url} aria-describedby="s-relay-hint" onInput={(e) => onChange({ kind: 'relay', url: e.currentTarget.value })} />
          <small id="s-relay-hint" class="hint">{t('compose.relayUrlHint')}</small>
        </div>
      );
  }
}

/** Searchable library; `picked` are marked, the button says what a click does. */
function LibraryPick({ picked, onPick, add }: { picked: string[]; onPick: (m: MediaItem) => void; add?: boolean }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const items = useData(() => api<MediaItem[]>('/api/media', { query: { q: query.trim() || undefined } }), [query]);
  const apply = useDebounced(() => setQuery(q), 350);
  return (
    <>
      <div class="field">
        <label for="s-media-q">{t('lib.search')}</label>
        <input id="s-media-q" type="search" value={q} onInput={(e) => { setQ(e.currentTarget.value); apply(); }} />
      </div>
      {!add && <p role="status" data-testid="media-picked">{picked[0] ? t('compose.mediaPicked', { title: items.data?.find((m) => m.id === picked[0])?.title ?? picked[0].slice(0, 12) }) : t('compose.noMedia')}</p>}
      <ErrorText error={items.error} />
      {items.data && (
        <div class="media-scroll" aria-label={t('compose.pickMedia')}>
          <MediaList items={items.data} action={(m) => (add
            ? <button type="button" class="btn" onClick={() => onPick(m)}>+ {t('sched.playlistAdd')}</button>
            : (
              <button type="button" class={`btn${picked.includes(m.id) ? ' btn-primary' : ''}`} aria-pressed={picked.includes(m.id)} onClick={() => onPick(m)}>
                {picked.includes(m.id) ? <><Icon name="check" /> {t('lib.picked')}</> : t('lib.pick')}
              </button>
            ))} />
        </div>
      )}
    </>
  );
}

/** The playlist in playing order (each part its own broadcast, one after the other). */
function Playlist({ ids, onChange }: { ids: string[]; onChange: (ids: string[]) => void }) {
  const [known, setKnown] = useState<Record<string, MediaItem>>({});
  useEffect(() => {
    const missing = ids.filter((id) => !known[id]);
    if (!missing.length) return;
    void Promise.all(missing.map((id) => api<MediaItem>(`/api/media/${id}`).catch(() => null))).then((ms) => {
      setKnown((k) => ({ ...k, ...Object.fromEntries(ms.filter((m): m is MediaItem => !!m).map((m) => [m.id, m])) }));
    });
  }, [ids.join()]);
  const move = (i: number, d: number) => {
    const next = [...ids];
    const [x] = next.splice(i, 1);
    next.splice(i + d, 0, x!);
    onChange(next);
  };
  const total = ids.reduce((s, id) => s + (known[id]?.durationSeconds ?? 0), 0);
  return (
    <>
      <h3 class="sub-head">{t('sched.playlist', { count: ids.length, duration: formatClock(total) })}</h3>
      {!ids.length && <p class="muted">{t('sched.playlistEmpty')}</p>}
      <ol class="playlist" data-testid="playlist">
        {ids.map((id, i) => (
          <li key={`${id}-${i}`} class="row">
            <span class="playlist-title">{known[id]?.title ?? id.slice(0, 12)} <small class="muted">{formatClock(known[id]?.durationSeconds)}</small></span>
            <button type="button" class="btn btn-ghost" disabled={i === 0} aria-label={t('sched.moveUp')} onClick={() => move(i, -1)}>↑</button>
            <button type="button" class="btn btn-ghost" disabled={i === ids.length - 1} aria-label={t('sched.moveDown')} onClick={() => move(i, 1)}>↓</button>
            <button type="button" class="btn btn-ghost" aria-label={t('sched.remove')} onClick={() => onChange(ids.filter((_, j) => j !== i))}>✕</button>
          </li>
        ))}
      </ol>
      <LibraryPick picked={ids} add onPick={(m) => { setKnown((k) => ({ ...k, [m.id]: m })); onChange([...ids, m.id]); }} />
    </>
  );
}
