// The audio library: upload a file (normalised by the gateway), search by
// title, listen, and hand an item to the compose page.
import { useRef, useState } from 'preact/hooks';
import { api, apiForm } from '../api.js';
import { t } from '../i18n/index.js';
import { navigate, setQuery, useLocation } from '../router.js';
import type { MediaItem, Role } from '../types.js';
import { MediaList } from '../components/media-list.js';
import { ErrorText, Field, Icon, Section, useData, useDebounced, useMutation } from '../components/ui.js';

export function LibraryPage({ role }: { role: Role }) {
  const loc = useLocation();
  const q = loc.search.get('q') ?? '';
  const [search, setSearch] = useState(q);
  const items = useData(() => api<MediaItem[]>('/api/media', { query: { q: q.trim() || undefined } }), [q]);
  const applySearch = useDebounced(() => setQuery({ q: search.trim() || undefined }), 350);
  const canUpload = role === 'admin' || role === 'officer';

  return (
    <>
      <h1>{t('lib.title')}</h1>
      {canUpload && <UploadForm onDone={items.reload} />}
      <Section id="lib-list" title={items.data ? `${t('lib.title')} · ${t('lib.count', { count: items.data.length })}` : t('lib.title')}>
        <div class="field">
          <label for="lib-q">{t('lib.search')}</label>
          <input id="lib-q" type="search" value={search} maxLength={200} onInput={(e) => { setSearch(e.currentTarget.value); applySearch(); }} />
        </div>
        <ErrorText error={items.error} />
        {items.data ? (
          <MediaList
            items={items.data}
            action={(m) => canUpload && (
              <a class="btn" href={`/broadcasts/new?media=${m.id}`} onClick={(e) => { e.preventDefault(); navigate(`/broadcasts/new?media=${m.id}`); }}>
                <Icon name="speaker" /> {t('lib.use')}
              </a>
            )}
          />
        ) : !items.error && <p class="muted">{t('app.loading')}</p>}
      </Section>
    </>
  );
}

function UploadForm({ onDone }: { onDone: () => void }) {
  const [title, setTitle] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const file = useRef<HTMLInputElement>(null);
  const { err, busy, run } = useMutation(onDone);
  return (
    <Section id="lib-up" title={t('lib.upload')}>
      <form class="form-grid" onSubmit={async (e) => {
        e.preventDefault();
        setDone(null);
        const f = file.current?.files?.[0];
        const form = new FormData();
        // The API reads the title before the file; the order of parts matters for its error messages only.
        form.append('title', title.trim());
        if (f) form.append('file', f, f.name);
        const item = await run(() => apiForm<MediaItem>('/api/media', form));
        if (item) {
          setDone(item.title);
          setTitle('');
          if (file.current) file.current.value = '';
        }
      }}>
        <Field id="up-title" label={t('lib.uploadTitle')}>
          <input id="up-title" required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </Field>
        <Field id="up-file" label={t('lib.file')} hint={t('lib.fileHint')}>
          <input id="up-file" ref={file} type="file" required accept="audio/*,.mp3,.wav,.m4a,.ogg,.webm" aria-describedby="up-file-hint" />
        </Field>
        <div class="form-actions">
          <button type="submit" class="btn btn-primary" disabled={busy}>{busy ? t('lib.uploading') : t('lib.upload')}</button>
        </div>
      </form>
      <ErrorText error={err} />
      <p role="status" class="ok-inline">{done ? t('lib.uploaded', { title: done }) : ''}</p>
    </Section>
  );
}
