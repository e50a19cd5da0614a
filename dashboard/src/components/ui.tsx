// Small shared pieces: icons (inline SVG, aria-hidden: the text next to them
// carries the meaning), status and signal badges, error text, copy box,
// confirm dialog, and a data loader hook.
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { t } from '../i18n/index.js';
import { formatAgo, signalBars } from '../format.js';

type IconName = 'online' | 'offline' | 'alert' | 'speaker' | 'check' | 'clock' | 'empty' | 'copy' | 'logout' | 'globe';
const PATHS: Record<IconName, string> = {
  online: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Zm-4-9 3 3 5-6',
  offline: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18ZM9 9l6 6m0-6-6 6',
  alert: 'M12 3 2 20h20L12 3Zm0 6v5m0 3v.5',
  speaker: 'M4 9v6h4l5 4V5L8 9H4Zm12-1a5 5 0 0 1 0 8m2.5-10.5a8.5 8.5 0 0 1 0 13',
  check: 'M5 12.5 10 17l9-10',
  clock: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Zm0-13v4.5l3 2',
  empty: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18ZM8 12h8',
  copy: 'M9 9h10v11H9zM5 15V4h10',
  logout: 'M14 4h5v16h-5M10 8l-4 4 4 4M6 12h10',
  globe: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18ZM3 12h18M12 3c3 3.5 3 14.5 0 18M12 3c-3 3.5-3 14.5 0 18',
};

export function Icon({ name, class: cls = '' }: { name: IconName; class?: string }) {
  return (
    <svg class={`icon ${cls}`} viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
      <path d={PATHS[name]} fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}

export function OnlineBadge({ online, lastSeen, now }: { online: boolean; lastSeen: string | null; now: number }) {
  return (
    <span class={`badge ${online ? 'badge-ok' : 'badge-bad'}`} data-online={String(online)}>
      <Icon name={online ? 'online' : 'offline'} />
      <span>
        <span class="badge-label">{t(online ? 'status.online' : 'status.offline')}</span>
        {!online && <span class="badge-sub">{lastSeen ? t('time.lastSeen', { ago: formatAgo(lastSeen, now) }) : t('time.never')}</span>}
      </span>
    </span>
  );
}

export function Signal({ dbm }: { dbm: number | null | undefined }) {
  if (dbm === null || dbm === undefined) return <span class="muted">{t('value.none')}</span>;
  const bars = signalBars(dbm);
  return (
    <span class="signal" title={t('signal.bars', { bars })}>
      <svg viewBox="0 0 20 16" width="20" height="16" role="img" aria-label={t('signal.bars', { bars })}>
        {[0, 1, 2, 3].map((i) => (
          <rect x={i * 5} y={12 - i * 4} width="3.5" height={4 + i * 4} rx="0.8" class={i < bars ? 'bar-on' : 'bar-off'} />
        ))}
      </svg>
      <span>{Math.round(dbm)} dBm</span>
    </span>
  );
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.code === 'network') return t('error.network');
    if (err.code === 'forbidden') return t('error.forbidden');
    if (err.code === 'validation' || err.code === 'conflict' || err.code === 'not_found') return t(`error.${err.code}`, { message: err.message });
    return t('error.generic', { message: err.message });
  }
  return t('error.generic', { message: String((err as Error)?.message ?? err) });
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      <Icon name="alert" /> <span>{errorText(error)}</span>
    </p>
  );
}

/** Loads data; `reload()` refetches (quietly: the old data stays on screen until the new arrives). */
export function useData<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void; set: (fn: (d: T) => T) => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const reload = useCallback(() => {
    const n = ++seq.current;
    setLoading(true);
    load().then(
      (d) => {
        if (n !== seq.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (n !== seq.current) return;
        setError(e);
        setLoading(false);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(reload, [reload]);
  const set = useCallback((fn: (d: T) => T) => setData((d) => (d === undefined ? d : fn(d))), []);
  return { data, error, loading, reload, set };
}

/** Runs `fn` at most once per `ms` after the last call (bursts of live events -> one reload). */
export function useDebounced(fn: () => void, ms = 400): () => void {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);
  return useCallback(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => ref.current(), ms);
  }, [ms]);
}

async function copyText(text: string, fallback: HTMLTextAreaElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Plain http on the office LAN is not a secure context: no Clipboard API.
    if (!fallback) return false;
    fallback.focus();
    fallback.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

export function CopyBox({ label, value, rows = 1 }: { label: string; value: string; rows?: number }) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [state, setState] = useState<'idle' | 'done' | 'failed'>('idle');
  const id = useRef(`copy-${Math.random().toString(36).slice(2)}`).current;
  return (
    <div class="copybox">
      <label for={id}>{label}</label>
      <textarea id={id} ref={ref} readOnly rows={rows} value={value} class="mono" spellcheck={false} onFocus={(e) => e.currentTarget.select()} />
      <div class="row">
        <button type="button" class="btn" onClick={async () => setState((await copyText(value, ref.current)) ? 'done' : 'failed')}>
          <Icon name="copy" /> {t('copy')}
        </button>
        <span role="status" class={state === 'failed' ? 'error-inline' : 'ok-inline'}>
          {state === 'done' ? t('copy.done') : state === 'failed' ? t('copy.failed') : ''}
        </span>
      </div>
    </div>
  );
}

/** A modal confirm built on <dialog>: focus is trapped and Esc cancels, natively. */
export function Confirm({ message, confirmLabel, danger, onConfirm, onCancel }: { message: string; confirmLabel: string; danger?: boolean; onConfirm: () => void; onCancel: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="confirm-msg" onCancel={(e) => { e.preventDefault(); onCancel(); }}>
      <p id="confirm-msg">{message}</p>
      <div class="row end">
        <button type="button" class="btn" onClick={onCancel}>{t('form.cancel')}</button>
        <button type="button" class={`btn ${danger ? 'btn-danger' : 'btn-primary'}`} onClick={onConfirm}>{confirmLabel}</button>
      </div>
    </dialog>
  );
}

export function Field({ label, hint, children, id }: { label: string; hint?: string; id: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {hint && <small id={`${id}-hint`} class="hint">{hint}</small>}
    </div>
  );
}

export function Section({ title, children, actions, id }: { title: string; children: ComponentChildren; actions?: JSX.Element; id?: string }) {
  return (
    <section class="card" aria-labelledby={id}>
      <div class="card-head">
        <h2 id={id}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/**
 * A form action against the API: clears the last error, marks the form busy,
 * runs `fn`, then `after` (usually a reload). Resolves with fn's result, or
 * undefined when it failed (the error is in `err`).
 */
export function useMutation(after: () => void): { err: unknown; busy: boolean; run: <T>(fn: () => Promise<T>) => Promise<T | undefined> } {
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async <T,>(fn: () => Promise<T>): Promise<T | undefined> => {
    setErr(null);
    setBusy(true);
    try {
      const r = await fn();
      after();
      return r;
    } catch (e) {
      setErr(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { err, busy, run };
}

