// The live microphone of a 'live' broadcast: getUserMedia -> MediaRecorder
// (audio/webm;codecs=opus, a chunk every 250 ms) -> the broadcast's WebSocket
// (/api/broadcasts/:id/live, session cookie, same origin). Closing the socket
// ends the broadcast on the gateway. Browsers give the microphone only to
// secure contexts (HTTPS or localhost): on plain http over the LAN,
// micAvailable() is false and the page says so. The gateway opens the
// stream just before playAt (about a second after the broadcast is created):
// until then it closes the socket with 4404, and we try again.
import { useEffect, useRef, useState } from 'preact/hooks';

export const LIVE_MIME = 'audio/webm;codecs=opus';
export const LIVE_TIMESLICE_MS = 250;

export type MicState = { phase: 'idle' } | { phase: 'starting' } | { phase: 'on'; since: number } | { phase: 'ended' } | { phase: 'error'; message: string };

export function micAvailable(): boolean {
  return typeof navigator !== 'undefined' && !!navigator.mediaDevices?.getUserMedia && typeof MediaRecorder !== 'undefined' && MediaRecorder.isTypeSupported(LIVE_MIME);
}

export function liveSocketUrl(broadcastId: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/broadcasts/${encodeURIComponent(broadcastId)}/live`;
}

/** Close code of the gateway when the broadcast's stream is not on air yet (it opens just before playAt). */
const NOT_OPEN_YET = 4404;
const CONNECT_WITHIN_MS = 20_000;

/** Opens the microphone socket; retried while the gateway says the stream is not open yet. */
async function connect(broadcastId: string, onSocket: (ws: WebSocket) => void): Promise<WebSocket> {
  const give = Date.now() + CONNECT_WITHIN_MS;
  for (;;) {
    const ws = new WebSocket(liveSocketUrl(broadcastId));
    ws.binaryType = 'arraybuffer';
    onSocket(ws);
    const r = await new Promise<{ ok: true } | { ok: false; code: number; reason: string }>((resolve) => {
      ws.onopen = () => resolve({ ok: true });
      ws.onclose = (e) => resolve({ ok: false, code: e.code, reason: e.reason });
    });
    // The server may accept and then close at once with 4404: wait a moment to see which.
    if (r.ok) {
      const closed = await new Promise<CloseEvent | null>((resolve) => {
        ws.onclose = (e) => resolve(e);
        setTimeout(() => resolve(null), 150);
      });
      if (!closed) return ws;
      if (closed.code !== NOT_OPEN_YET || Date.now() > give) throw new Error(closed.reason || `WebSocket ${closed.code}`);
    } else if (r.code !== NOT_OPEN_YET || Date.now() > give) {
      throw new Error(r.reason || `WebSocket ${r.code}`);
    }
    await new Promise((res) => setTimeout(res, 400));
  }
}

export function useLiveMic(): { state: MicState; start: (broadcastId: string) => Promise<boolean>; stop: () => void } {
  const [state, setState] = useState<MicState>({ phase: 'idle' });
  const parts = useRef<{ ws?: WebSocket; rec?: MediaRecorder; stream?: MediaStream }>({});

  const release = () => {
    const p = parts.current;
    p.stream?.getTracks().forEach((tr) => tr.stop());
    if (p.ws && p.ws.readyState <= WebSocket.OPEN) p.ws.close(1000, 'done');
    parts.current = {};
  };

  const stop = () => {
    const { rec, ws } = parts.current;
    if (rec && rec.state !== 'inactive') {
      // The last chunk arrives in the dataavailable that stop() fires; close after it.
      rec.onstop = () => {
        release();
        setState({ phase: 'ended' });
      };
      rec.stop();
    } else {
      if (ws) release();
      setState({ phase: 'ended' });
    }
  };

  const start = async (broadcastId: string): Promise<boolean> => {
    setState({ phase: 'starting' });
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
      parts.current.stream = stream;
      const ws = await connect(broadcastId, (w) => { parts.current.ws = w; });
      ws.onclose = (e) => {
        // The gateway ended it (maxSeconds, cancelled): stop recording too.
        if (parts.current.ws !== ws) return;
        parts.current.rec?.state === 'recording' && parts.current.rec.stop();
        release();
        setState(e.code === 1000 ? { phase: 'ended' } : { phase: 'error', message: e.reason || `WebSocket ${e.code}` });
      };
      const rec = new MediaRecorder(stream, { mimeType: LIVE_MIME });
      parts.current.rec = rec;
      rec.ondataavailable = (e) => {
        if (e.data.size && ws.readyState === WebSocket.OPEN) ws.send(e.data);
      };
      rec.start(LIVE_TIMESLICE_MS);
      setState({ phase: 'on', since: Date.now() });
      return true;
    } catch (err) {
      release();
      setState({ phase: 'error', message: (err as Error)?.message ?? String(err) });
      return false;
    }
  };

  useEffect(() => () => stop(), []);
  return { state, start, stop };
}
