// The officer's compose page: what to play (text read by the speech engine,
// a library item, a relayed stream, or the live microphone), where (hamlets on
// the hamlet picture, or single speakers), when (now, or a time entered in
// Vietnam time whatever the browser's zone), how urgent, then Send.
// The API validates; its error names the field (`body.playAt: ...`) and is
// shown next to that field.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, apiAudio, ApiError, mediaAudioUrl } from '../api.js';
import { t } from '../i18n/index.js';
import { formatDateTime, fromZoneInput, toZoneInput } from '../format.js';
import { useLive, useNow } from '../live.js';
import { navigate, useLocation } from '../router.js';
import { PRIORITIES, type Broadcast, type BroadcastCreate, type BroadcastSource, type Device, type MediaItem, type Priority, type TtsPreview, type ZoneSummary } from '../types.js';
import { ZoneTiles } from '../components/zone-tiles.js';
import { MediaList, formatClock } from '../components/media-list.js';
import { micAvailable, useLiveMic } from '../components/live-mic.js';
import { Confirm, ErrorText, Icon, useData, useDebounced } from '../components/ui.js';

type Kind = BroadcastSource['kind'];
const KINDS: Kind[] = ['tts', 'media', 'relay', 'live'];

/** Which part of the form an API error belongs to: `body.target.zones/0` -> 'target'. */
export function fieldGroup(field: string | undefined): string | null {
  if (!field?.startsWith('body')) return null;
  const rest = field.replace(/^body\.?/, '');
  return rest.split(/[./]/)[0] || null;
}

export function ComposePage() {
  const loc = useLocation();
  const [kind, setKind] = useState<Kind>(loc.search.get('media') ? 'media' : 'tts');
  const [title, setTitle] = useState('');
  const [text, setText] = useState('');
  const [chime, setChime] = useState({ before: true, after: false });
  const [repeat, setRepeat] = useState(1);
  const [pause, setPause] = useState(3);
  const [mediaId, setMediaId] = useState(loc.search.get('media') ?? '');
  const [relay, setRelay] = useState({ url: '', minutes: 30 });
  const [liveMinutes, setLiveMinutes] = useState(10);
  const [all, setAll] = useState(false);
  const [zones, setZones] = useState<ReadonlySet<string | null>>(new Set());
  const [devices, setDevices] = useState<ReadonlySet<string>>(new Set());
  const [later, setLater] = useState(false);
  const [at, setAt] = useState(() => toZoneInput(Date.now() + 30 * 60_000));
  const [priority, setPriority] = useState<Priority>('normal');
  const [volume, setVolume] = useState(100);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [live, setLive] = useState<Broadcast | null>(null);
  const mic = useLiveMic();
  const liveActive = !!live && (mic.state.phase === 'starting' || mic.state.phase === 'on');

  const summary = useData(() => api<ZoneSummary[]>('/api/zones/summary'), []);
  const speakers = useData(() => api<Device[]>('/api/devices', { query: { type: 'speaker' } }), []);
  const reloadSummary = useDebounced(summary.reload, 500);
  useLive((name) => {
    if (name !== 'device.telemetry' && name !== 'broadcast.updated') reloadSummary();
  });

  const group = err instanceof ApiError ? fieldGroup(err.field) : null;
  const known = ['title', 'source', 'target', 'playAt', 'validUntil', 'priority', 'volume'];
  const errFor = (g: string) => (group === g ? err : null);
  const otherErr = err && !(group && known.includes(group)) ? err : null;

  const hamlets = summary.data?.filter((z) => z.zoneId !== null) ?? [];
  const zoneName = (id: string | null) => hamlets.find((z) => z.zoneId === id)?.name ?? id ?? '';
  const pickZone = (id: string | null) => {
    setAll(false);
    const next = new Set(zones);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setZones(next);
  };
  const pickAll = () => {
    setAll(!all);
    setZones(new Set());
  };
  const selected: ReadonlySet<string | null> = all ? new Set(hamlets.map((z) => z.zoneId)) : zones;

  const source = (): BroadcastSource => {
    switch (kind) {
      case 'tts':
        return { kind, text, chime, repeat, pauseSeconds: repeat > 1 ? pause : 0 };
      case 'media':
        return { kind, mediaId };
      case 'relay':
        return { kind, url: relay.url.trim(), durationSeconds: Math.round(relay.minutes * 60) };
      case 'live':
        return { kind, maxSeconds: Math.round(liveMinutes * 60) };
    }
  };

  const body = (): BroadcastCreate => {
    const target = all ? { all: true as const } : {
      ...(zones.size ? { zones: [...zones].filter((z): z is string => z !== null) } : {}),
      ...(devices.size ? { devices: [...devices] } : {}),
    };
    const playAt = later && kind !== 'live' ? fromZoneInput(at) : null;
    return {
      ...(title.trim() ? { title: title.trim() } : {}),
      source: source(),
      target,
      priority,
      ...(later && kind !== 'live' ? { playAt: playAt ? playAt.toISOString() : at } : {}),
      ...(priority === 'emergency' ? { volume } : {}),
    };
  };

  const send = async () => {
    setErr(null);
    setBusy(true);
    try {
      const b = await api<Broadcast>('/api/broadcasts', { method: 'POST', body: body() });
      if (kind === 'live') {
        setLive(b);
        if (!(await mic.start(b.id))) await api(`/api/broadcasts/${b.id}/cancel`, { method: 'POST' }).catch(() => {});
      } else {
        navigate(`/broadcasts?sent=${encodeURIComponent(b.id)}`);
      }
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };

  const targetWords = all ? t('compose.targetAll') : t('compose.targetSome', { zones: zones.size, devices: devices.size });
  const shownTitle = title.trim() || text.trim().slice(0, 60) || t(`compose.kind.${kind}`);

  return (
    <>
      <h1>{t('compose.title')}</h1>
      <form noValidate class={`compose${priority === 'emergency' ? ' compose-emergency' : ''}`} onSubmit={(e) => {
        e.preventDefault();
        if (priority === 'emergency') setConfirming(true);
        else void send();
      }}>
        {/* While the microphone is on air the form is locked: the broadcast it describes is already live. */}
        <fieldset class="plain" disabled={liveActive}>
        <section class="card" aria-labelledby="c-src">
          <h2 id="c-src">{t('compose.source')}</h2>
          <div class="segmented" role="radiogroup" aria-labelledby="c-src">
            {KINDS.map((k) => (
              <label key={k} class={`seg${kind === k ? ' seg-on' : ''}`}>
                <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} /> {t(`compose.kind.${k}`)}
              </label>
            ))}
          </div>
          {kind === 'tts' && (
            <TextSource text={text} setText={setText} chime={chime} setChime={setChime} repeat={repeat} setRepeat={setRepeat} pause={pause} setPause={setPause} title={shownTitle} />
          )}
          {kind === 'media' && <MediaSource mediaId={mediaId} setMediaId={setMediaId} />}
          {kind === 'relay' && (
            <div class="form-grid">
              <div class="field">
                <label for="c-relay">{t('compose.relayUrl')}</label>
                <input id="c-relay" type="url" inputMode="url" placeholder="https://" value={relay.url} aria-describedby="c-relay-hint" onInput={(e) => setRelay({ ...relay, url: e.currentTarget.value })} />
                <small id="c-relay-hint" class="hint">{t('compose.relayUrlHint')}</small>
              </div>
              <div class="field">
                <label for="c-relay-min">{t('compose.relayDuration')}</label>
                <input id="c-relay-min" class="num" type="number" min={1} max={240} value={relay.minutes} onInput={(e) => setRelay({ ...relay, minutes: Number(e.currentTarget.value) })} />
              </div>
            </div>
          )}
          {kind === 'live' && (
            <div>
              <p>{t('compose.liveIntro')}</p>
              {!micAvailable() && <p class="notice" role="status">{t('compose.liveNoMic')}</p>}
              <div class="field">
                <label for="c-live-max">{t('compose.liveMax')}</label>
                <input id="c-live-max" class="num" type="number" min={1} max={60} value={liveMinutes} onInput={(e) => setLiveMinutes(Number(e.currentTarget.value))} />
              </div>
            </div>
          )}
          <div class="field">
            <label for="c-title">{t('compose.titleField')} {t('form.optional')}</label>
            <input id="c-title" maxLength={200} value={title} aria-describedby="c-title-hint" onInput={(e) => setTitle(e.currentTarget.value)} />
            <small id="c-title-hint" class="hint">{t('compose.titleHint')}</small>
          </div>
          <FieldError error={errFor('source') ?? errFor('title')} testid="err-source" />
        </section>

        <section class="card" aria-labelledby="c-target">
          <div class="card-head">
            <h2 id="c-target">{t('compose.target')}</h2>
            <span class="muted" role="status" data-testid="target-summary">
              {all ? t('compose.allZones') : zones.size || devices.size
                ? [zones.size ? t('compose.zonesPicked', { count: zones.size }) : '', devices.size ? t('compose.speakersPicked', { count: devices.size }) : ''].filter(Boolean).join(' · ')
                : t('compose.noTarget')}
            </span>
          </div>
          <p>
            <button type="button" class="btn" aria-pressed={all} data-testid="target-all" onClick={pickAll}>
              <Icon name={all ? 'check' : 'empty'} /> {t('compose.allZones')}
            </button>
          </p>
          <ErrorText error={summary.error} />
          {summary.data && <ZoneTiles zones={hamlets} selected={selected} onPick={pickZone} />}
          <details class="speaker-pick">
            <summary>{t('compose.speakers')}{devices.size ? ` (${devices.size})` : ''}</summary>
            <ErrorText error={speakers.error} />
            <ul class="check-list">
              {speakers.data?.map((d) => (
                <li key={d.id}>
                  <label>
                    <input type="checkbox" checked={devices.has(d.id)} onChange={(e) => {
                      const next = new Set(devices);
                      if (e.currentTarget.checked) next.add(d.id);
                      else next.delete(d.id);
                      setDevices(next);
                    }} />
                    {' '}{d.name} <small class="muted">{d.zoneId ? zoneName(d.zoneId) : t('zone.unassigned')} · {t(d.online ? 'status.online' : 'status.offline')}</small>
                  </label>
                </li>
              ))}
            </ul>
          </details>
          <FieldError error={errFor('target')} testid="err-target" />
        </section>

        <section class="card" aria-labelledby="c-when">
          <h2 id="c-when">{t('compose.when')}</h2>
          {kind === 'live' ? <p>{t('compose.now')}</p> : (
            <>
              <div class="segmented" role="radiogroup" aria-labelledby="c-when">
                <label class={`seg${!later ? ' seg-on' : ''}`}><input type="radio" name="when" checked={!later} onChange={() => setLater(false)} /> {t('compose.now')}</label>
                <label class={`seg${later ? ' seg-on' : ''}`}><input type="radio" name="when" checked={later} onChange={() => setLater(true)} /> {t('compose.later')}</label>
              </div>
              {later && (
                <div class="field">
                  <label for="c-at">{t('compose.at')}</label>
                  <input id="c-at" type="datetime-local" value={at} aria-describedby="c-at-hint" onInput={(e) => setAt(e.currentTarget.value)} />
                  {/* The browser draws the input in its own locale; this line says it the commune's way. */}
                  <small id="c-at-hint" class="hint" data-testid="at-echo">
                    {fromZoneInput(at) ? t('compose.atEcho', { time: formatDateTime(fromZoneInput(at)) }) : t('compose.atHint')}
                  </small>
                </div>
              )}
            </>
          )}
          <FieldError error={errFor('playAt') ?? errFor('validUntil')} testid="err-playAt"
            lead={group === 'playAt' && err instanceof ApiError && / past/.test(err.message) ? t('compose.pastTime') : undefined} />

          <h2 id="c-prio">{t('compose.priority')}</h2>
          <div class="segmented" role="radiogroup" aria-labelledby="c-prio">
            {PRIORITIES.map((p) => (
              <label key={p} class={`seg seg-${p}${priority === p ? ' seg-on' : ''}`}>
                <input type="radio" name="priority" value={p} checked={priority === p} onChange={() => setPriority(p)} />
                {p === 'emergency' && <Icon name="alert" />} {t(`priority.${p}`)}
              </label>
            ))}
          </div>
          {priority === 'emergency' && (
            <div class="emergency-box">
              <p><Icon name="alert" /> {t('compose.emergencyHint')}</p>
              <div class="field">
                <label for="c-volume">{t('compose.volume')}: {volume}%</label>
                <input id="c-volume" type="range" min={0} max={100} step={5} value={volume} onInput={(e) => setVolume(Number(e.currentTarget.value))} />
              </div>
            </div>
          )}
          <FieldError error={errFor('priority') ?? errFor('volume')} testid="err-priority" />
        </section>

        </fieldset>

        <div class="send-bar">
          <ErrorText error={otherErr} />
          {live && <LiveControls state={mic.state} onStop={mic.stop} broadcastId={live.id} />}
          {!liveActive && (
            <button type="submit" class={`btn ${priority === 'emergency' ? 'btn-emergency' : 'btn-primary'}`} disabled={busy} data-testid="send">
              <Icon name={priority === 'emergency' ? 'alert' : 'speaker'} /> {busy ? t('compose.sending') : kind === 'live' ? t('compose.liveStart') : t('compose.send')}
            </button>
          )}
        </div>
      </form>
      {confirming && (
        <Confirm danger message={t('compose.confirmEmergency', { title: shownTitle, target: targetWords })} confirmLabel={t('compose.confirmSend')}
          onCancel={() => setConfirming(false)} onConfirm={() => { setConfirming(false); void send(); }} />
      )}
    </>
  );
}

/** The API's error under the field it names; `lead` says it in the officer's words first when we know the case. */
function FieldError({ error, testid, lead }: { error: unknown; testid: string; lead?: string }) {
  if (!error) return null;
  return (
    <div data-testid={testid}>
      {lead && <p class="error-inline field-lead">{lead}</p>}
      <ErrorText error={error} />
    </div>
  );
}

function LiveControls({ state, onStop, broadcastId }: { state: ReturnType<typeof useLiveMic>['state']; onStop: () => void; broadcastId: string }) {
  const now = useNow(1000);
  const details = (
    <a href={`/broadcasts/${encodeURIComponent(broadcastId)}`} onClick={(e) => { e.preventDefault(); navigate(`/broadcasts/${encodeURIComponent(broadcastId)}`); }}>{t('bc.open')}</a>
  );
  if (state.phase === 'starting') return <p role="status">{t('compose.liveStarting')}</p>;
  if (state.phase === 'on') {
    return (
      <div class="row" data-testid="live-on">
        <span class="badge badge-bad" role="status"><Icon name="speaker" /> {t('compose.liveOn', { seconds: Math.max(0, Math.round((now - state.since) / 1000)) })}</span>
        <button type="button" class="btn btn-emergency" onClick={onStop}>{t('compose.liveStop')}</button>
      </div>
    );
  }
  if (state.phase === 'error') return <p class="error" role="alert"><Icon name="alert" /> {t('compose.liveMicError', { message: state.message })}</p>;
  if (state.phase === 'idle') return null;
  return <p role="status"><span class="ok-inline">{t('compose.liveEnded')}</span> {details}</p>;
}

interface TextProps {
  text: string; setText: (s: string) => void; title: string;
  chime: { before: boolean; after: boolean }; setChime: (c: { before: boolean; after: boolean }) => void;
  repeat: number; setRepeat: (n: number) => void; pause: number; setPause: (n: number) => void;
}

/** The text, the normalised text as the engine will read it (refreshed as one types), and "listen". */
function TextSource({ text, setText, title, chime, setChime, repeat, setRepeat, pause, setPause }: TextProps) {
  const [spoken, setSpoken] = useState<TtsPreview | null>(null);
  const [spokenErr, setSpokenErr] = useState<unknown>(null);
  const [working, setWorking] = useState(false);
  const [rendering, setRendering] = useState(false);
  /** The last "listen first" render: an object URL of the MP3 (not stored in the library) and its length. */
  const [item, setItem] = useState<{ url: string; durationSeconds: number } | null>(null);
  const [renderErr, setRenderErr] = useState<unknown>(null);
  const audio = useRef<HTMLAudioElement>(null);
  const seq = useRef(0);

  useEffect(() => {
    if (!text.trim()) {
      setSpoken(null);
      return;
    }
    const n = ++seq.current;
    setWorking(true);
    const timer = setTimeout(() => {
      api<TtsPreview>('/api/tts/preview', { method: 'POST', body: { text } }).then(
        (p) => { if (n === seq.current) { setSpoken(p); setSpokenErr(null); setWorking(false); } },
        (e: unknown) => { if (n === seq.current) { setSpokenErr(e); setWorking(false); } },
      );
    }, 400);
    return () => clearTimeout(timer);
  }, [text]);

  const listen = async () => {
    setRenderErr(null);
    setRendering(true);
    try {
      const blob = await apiAudio('/api/tts/preview-audio', { text, chime, repeat, pauseSeconds: repeat > 1 ? pause : 0 });
      const url = URL.createObjectURL(blob);
      const durationSeconds = await new Promise<number>((ok) => {
        const a = new Audio();
        a.preload = 'metadata';
        a.onloadedmetadata = () => ok(Number.isFinite(a.duration) ? a.duration : 0);
        a.onerror = () => ok(0);
        a.src = url;
      });
      setItem((old) => {
        if (old) URL.revokeObjectURL(old.url);
        return { url, durationSeconds };
      });
    } catch (e) {
      setRenderErr(e);
    } finally {
      setRendering(false);
    }
  };
  useEffect(() => {
    // A new render: play it (the click that asked for it is the user gesture browsers want).
    if (item) audio.current?.play().catch(() => {});
  }, [item]);

  return (
    <>
      <div class="field">
        <label for="c-text">{t('compose.text')}</label>
        <textarea id="c-text" rows={5} maxLength={5000} value={text} aria-describedby="c-text-hint" onInput={(e) => setText(e.currentTarget.value)} />
        <small id="c-text-hint" class="hint">{t('compose.textHint')}</small>
      </div>
      {text.trim() && (
        <div class="spoken" aria-live="polite">
          <strong>{t('compose.spoken')}</strong>
          <ErrorText error={spokenErr} />
          {spoken ? <p data-testid="spoken-text" lang="vi">{spoken.text}</p> : <p class="muted">{t('compose.spokenWorking')}</p>}
          {spoken && spoken.changes.length > 0 && (
            <details>
              <summary>{t('compose.changes', { count: spoken.changes.length })}{working ? ' …' : ''}</summary>
              <ul class="changes">{spoken.changes.map((c, i) => <li key={i}><span class="mono">{c.from}</span> → {c.to}</li>)}</ul>
            </details>
          )}
        </div>
      )}
      <div class="row tts-options">
        <label class="check"><input type="checkbox" checked={chime.before} onChange={(e) => setChime({ ...chime, before: e.currentTarget.checked })} /> {t('compose.chimeBefore')}</label>
        <label class="check"><input type="checkbox" checked={chime.after} onChange={(e) => setChime({ ...chime, after: e.currentTarget.checked })} /> {t('compose.chimeAfter')}</label>
        <label class="check" for="c-repeat">{t('compose.repeat')}</label>
        <input id="c-repeat" class="num" type="number" min={1} max={10} value={repeat} onInput={(e) => setRepeat(Math.max(1, Number(e.currentTarget.value) || 1))} />
        {repeat > 1 && (
          <>
            <label class="check" for="c-pause">{t('compose.pause')}</label>
            <input id="c-pause" class="num" type="number" min={0} max={60} value={pause} onInput={(e) => setPause(Number(e.currentTarget.value) || 0)} />
          </>
        )}
      </div>
      <div class="row listen">
        <button type="button" class="btn" disabled={rendering || !text.trim()} onClick={listen} data-testid="listen">
          <Icon name="speaker" /> {rendering ? t('compose.listening') : t('compose.listen')}
        </button>
        {item && <span class="muted">{t('compose.listenReady', { duration: formatClock(item.durationSeconds) })}</span>}
        <audio ref={audio} controls preload="auto" src={item ? item.url : undefined} data-testid="preview-audio" class={item ? '' : 'sr-only'} />
      </div>
      <ErrorText error={renderErr} />
    </>
  );
}

/** Pick a library item (searchable); ?media=<id> from the library page arrives picked. */
function MediaSource({ mediaId, setMediaId }: { mediaId: string; setMediaId: (id: string) => void }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const items = useData(() => api<MediaItem[]>('/api/media', { query: { q: query.trim() || undefined } }), [query]);
  const apply = useDebounced(() => setQuery(q), 350);
  const picked = useData(() => (mediaId ? api<MediaItem>(`/api/media/${mediaId}`) : Promise.resolve(null)), [mediaId]);
  return (
    <>
      <p role="status" data-testid="media-picked">{picked.data ? t('compose.mediaPicked', { title: picked.data.title }) : t('compose.noMedia')}</p>
      <div class="field">
        <label for="c-media-q">{t('lib.search')}</label>
        <input id="c-media-q" type="search" value={q} onInput={(e) => { setQ(e.currentTarget.value); apply(); }} />
      </div>
      <ErrorText error={items.error ?? picked.error} />
      {items.data && (
        <div class="media-scroll" aria-label={t('compose.pickMedia')}>
          <MediaList items={items.data} action={(m) => (
            <button type="button" class={`btn${m.id === mediaId ? ' btn-primary' : ''}`} aria-pressed={m.id === mediaId} onClick={() => setMediaId(m.id)}>
              {m.id === mediaId ? <><Icon name="check" /> {t('lib.picked')}</> : t('lib.pick')}
            </button>
          )} />
        </div>
      )}
    </>
  );
}

