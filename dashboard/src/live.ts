// The gateway's live events (GET /api/events, server-sent events). One
// EventSource for the whole app; pages subscribe to the event names they care
// about. EventSource retries by itself after a dropped stream; when it gives
// up (an HTTP error, e.g. 401 after the session ended) we check the session
// and reopen with a growing delay. Every (re)connect tells subscribers to
// reload, since events sent while we were away are lost.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';

export type LiveEvent = 'device.presence' | 'device.telemetry' | 'device.changed' | 'alarm.opened' | 'alarm.cleared' | 'alarm.acknowledged' | 'broadcast.updated' | 'schedule.changed';
const EVENTS: LiveEvent[] = ['device.presence', 'device.telemetry', 'device.changed', 'alarm.opened', 'alarm.cleared', 'alarm.acknowledged', 'broadcast.updated', 'schedule.changed'];
export type LiveState = 'connecting' | 'open' | 'lost';

type Handler = (name: LiveEvent | 'resync', data: unknown) => void;
const handlers = new Set<Handler>();
const stateListeners = new Set<(s: LiveState) => void>();
let source: EventSource | null = null;
let state: LiveState = 'connecting';
let retryTimer: ReturnType<typeof setTimeout> | null = null;
let failures = 0;
let everOpened = false;

function setState(s: LiveState): void {
  state = s;
  for (const fn of stateListeners) fn(s);
}

function open(): void {
  close();
  setState(everOpened ? 'lost' : 'connecting');
  const es = new EventSource('/api/events');
  source = es;
  es.onopen = () => {
    failures = 0;
    setState('open');
    // Anything missed while the stream was down: reload.
    if (everOpened) for (const fn of handlers) fn('resync', null);
    everOpened = true;
  };
  es.onerror = () => {
    if (source !== es) return;
    if (es.readyState === EventSource.CONNECTING) {
      setState('lost');
      return;
    }
    // CLOSED: the browser gave up (HTTP error). A 401 on /me sends the user to login (api.ts).
    es.close();
    source = null;
    setState('lost');
    failures++;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(failures, 5)) * (0.5 + Math.random() / 2);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      api('/api/auth/me').then(open, () => {
        if (source === null && handlers.size) retryTimer = setTimeout(open, delay);
      });
    }, delay);
  };
  for (const name of EVENTS) {
    es.addEventListener(name, (e) => {
      let data: unknown;
      try {
        data = JSON.parse((e as MessageEvent<string>).data);
      } catch {
        return;
      }
      for (const fn of handlers) fn(name, data);
    });
  }
}

export function startLive(): void {
  if (!source && !retryTimer) open();
}

export function close(): void {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  source?.close();
  source = null;
}

/** Stops the stream (logout, expired session). */
export function stopLive(): void {
  close();
  everOpened = false;
  failures = 0;
  setState('connecting');
}

/** Calls `fn` for every live event and for 'resync' after a reconnect; `fn` may change between renders. */
export function useLive(fn: Handler): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    const h: Handler = (name, data) => ref.current(name, data);
    handlers.add(h);
    return () => {
      handlers.delete(h);
    };
  }, []);
}

export function useLiveState(): LiveState {
  const [s, setS] = useState(state);
  useEffect(() => {
    stateListeners.add(setS);
    setS(state);
    return () => {
      stateListeners.delete(setS);
    };
  }, []);
  return s;
}

/** A clock that ticks every `ms`, for "3 phút trước". */
export function useNow(ms = 20_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}
