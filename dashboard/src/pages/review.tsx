// Review a desk camera's day: the timeline (recorded ranges, gaps, tags), a
// click plays from that moment (the player gets the hour around it: playlists
// are capped at a few hours), and a bookmark marks the moment being watched.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { fromZoneInput, toZoneInput } from '../format.js';
import { ErrorText, Section, useData, useMutation } from '../components/ui.js';
import { HlsView, formatWallClock } from '../components/hls-view.js';
import { TimelineBar, type Timeline } from '../components/timeline-bar.js';
import '../styles/evidence.css';

const HOUR = 3_600_000;

export function ReviewPage() {
  const cameras = useData(() => api<Array<{ id: string; name: string; desk: string | null }>>('/api/cameras'), []);
  const [camera, setCamera] = useState('');
  const [day, setDay] = useState(toZoneInput(Date.now()).slice(0, 10));
  const cam = camera || cameras.data?.[0]?.id || '';
  const dayStart = fromZoneInput(`${day}T00:00`)?.getTime() ?? Date.now() - 24 * HOUR;
  const tl = useData(
    () => (cam ? api<Timeline>(`/api/cameras/${encodeURIComponent(cam)}/timeline`, { query: { from: new Date(dayStart).toISOString(), to: new Date(dayStart + 24 * HOUR).toISOString() } }) : Promise.resolve(undefined)),
    [cam, dayStart],
  );
  const [play, setPlay] = useState<number | null>(null);
  const [cursor, setCursor] = useState<number | null>(null);
  const [note, setNote] = useState('');
  const m = useMutation(() => tl.reload());
  const windowFrom = play === null ? 0 : Math.max(dayStart, play - 5 * 60_000);
  const src = play === null ? null : `/api/cameras/${encodeURIComponent(cam)}/playlist.m3u8?${new URLSearchParams({ from: new Date(windowFrom).toISOString(), to: new Date(windowFrom + HOUR).toISOString() })}`;
  return (
    <div class="page">
      <h1>{t('ev.review.title')}</h1>
      <div class="row">
        <label>{t('ev.review.camera')} <select value={cam} onChange={(e) => { setCamera((e.target as HTMLSelectElement).value); setPlay(null); }}>
          {cameras.data?.map((c) => <option key={c.id} value={c.id}>{c.name || c.id}</option>)}
        </select></label>
        <label>{t('ev.review.day')} <input type="date" value={day} onInput={(e) => { setDay((e.target as HTMLInputElement).value); setPlay(null); }} /></label>
      </div>
      <ErrorText error={cameras.error || tl.error} />
      {tl.data && <Section title={t('ev.review.timeline')} id="review-tl"><TimelineBar data={tl.data} cursor={cursor} onSeek={setPlay} /><p class="muted">{t('ev.review.hint')}</p></Section>}
      {tl.data && (
        <Section title={t('ev.review.tags')} id="review-tags">
          {!tl.data.tags.length && <p class="muted">{t('ev.review.noTags')}</p>}
          <ul class="tag-list" data-testid="review-tags">
            {[...tl.data.tags].sort((x, y) => Date.parse(y.at) - Date.parse(x.at)).map((tg) => (
              <li key={tg.id} data-type={tg.type}>
                <button type="button" class="btn" onClick={() => setPlay(Date.parse(tg.from))}>{t('ev.review.play')}</button>
                <span><strong>{t(`ev.tag.${tg.type}` as MessageKey)}</strong> · {formatWallClock(Date.parse(tg.at))}{tg.note ? ` — ${tg.note}` : ''}</span>
              </li>
            ))}
          </ul>
        </Section>
      )}
      {src && play !== null && (
        <Section title={t('ev.review.player')} id="review-player">
          <HlsView key={src} src={src} startAt={(play - windowFrom) / 1000} onTime={setCursor} />
          <form class="row" onSubmit={(e) => {
            e.preventDefault();
            void m.run(() => api('/api/tags', { method: 'POST', body: { cameraIds: [cam], at: new Date(cursor ?? play).toISOString(), note: note || t('ev.review.bookmark') } })).then(() => setNote(''));
          }}>
            <input aria-label={t('ev.review.note')} placeholder={t('ev.review.note')} value={note} onInput={(e) => setNote((e.target as HTMLInputElement).value)} maxLength={500} />
            <button class="btn" type="submit" disabled={m.busy}>{t('ev.review.bookmark')}</button>
          </form>
          <ErrorText error={m.err} />
        </Section>
      )}
    </div>
  );
}
