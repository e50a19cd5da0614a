// A small History API router: paths are real URLs (/devices/spk-1), so a
// reload or a bookmark lands on the same page (the gateway serves index.html
// for them).
import { useEffect, useState } from 'preact/hooks';

const EVENT = 'gw:navigate';

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === location.pathname + location.search) return;
  if (opts.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(EVENT));
  window.scrollTo(0, 0);
}

export interface Location { path: string; search: URLSearchParams; full: string }

const read = (): Location => ({ path: location.pathname, search: new URLSearchParams(location.search), full: location.pathname + location.search });

export function useLocation(): Location {
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const update = () => setLoc(read());
    window.addEventListener('popstate', update);
    window.addEventListener(EVENT, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(EVENT, update);
    };
  }, []);
  return loc;
}

/** Replaces the query string without a history entry (filters). */
export function setQuery(params: Record<string, string | undefined>): void {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  navigate(location.pathname + (s ? `?${s}` : ''), { replace: true });
}
