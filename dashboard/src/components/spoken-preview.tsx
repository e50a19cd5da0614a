// What the speech engine will read for a text (POST /api/tts/preview), as one
// types: numbers, dates and abbreviations in words, the same normalisation the
// gateway applies when it renders the programme's TTS ahead of air time.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import type { TtsPreview } from '../types.js';
import { ErrorText } from './ui.js';

export function SpokenPreview({ text }: { text: string }) {
  const [spoken, setSpoken] = useState<TtsPreview | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const seq = useRef(0);
  useEffect(() => {
    if (!text.trim()) {
      setSpoken(null);
      return;
    }
    const n = ++seq.current;
    const timer = setTimeout(() => {
      api<TtsPreview>('/api/tts/preview', { method: 'POST', body: { text } }).then(
        (p) => { if (n === seq.current) { setSpoken(p); setErr(null); } },
        (e: unknown) => { if (n === seq.current) setErr(e); },
      );
    }, 400);
    return () => clearTimeout(timer);
  }, [text]);
  if (!text.trim()) return null;
  return (
    <div class="spoken" aria-live="polite">
      <strong>{t('compose.spoken')}</strong>
      <ErrorText error={err} />
      {spoken ? <p data-testid="spoken-text" lang="vi">{spoken.text}</p> : <p class="muted">{t('compose.spokenWorking')}</p>}
      {spoken && spoken.changes.length > 0 && (
        <details>
          <summary>{t('compose.changes', { count: spoken.changes.length })}</summary>
          <ul class="changes">{spoken.changes.map((c, i) => <li key={i}><span class="mono">{c.from}</span> → {c.to}</li>)}</ul>
        </details>
      )}
    </div>
  );
}
