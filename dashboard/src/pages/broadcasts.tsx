// Broadcast history, newest first, kept current by 'broadcast.updated'
// events (each carries the whole broadcast: replaced in place, or added on
// top when new). Officers and admins get a link to compose; the chairman and
// the technician read.
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import { formatDateTime } from '../format.js';
import { useLive } from '../live.js';
import { navigate, useLocation } from '../router.js';
import type { Broadcast, Role } from '../types.js';
import { PriorityBadge, StatusBadge, ZoneOutcomes } from '../components/broadcast-bits.js';
import { ErrorText, Icon, useData, useDebounced } from '../components/ui.js';

const LIMIT = 50;

export function BroadcastsPage({ role }: { role: Role }) {
  const loc = useLocation();
  const sent = loc.search.get('sent');
  const canSend = role === 'officer' || role === 'admin';
  const list = useData(() => api<{ items: Broadcast[] }>('/api/broadcasts', { query: { limit: String(LIMIT) } }).then((r) => r.items), []);
  const reload = useDebounced(list.reload, 300);
  useLive((name, data) => {
    if (name === 'resync') reload();
    if (name !== 'broadcast.updated') return;
    const b = data as Broadcast;
    if (!list.data) return reload();
    list.set((items) => (items.some((x) => x.id === b.id) ? items.map((x) => (x.id === b.id ? b : x)) : [b, ...items].slice(0, LIMIT)));
  });
  const sentItem = sent ? list.data?.find((b) => b.id === sent) : undefined;
  const open = (id: string) => navigate(`/broadcasts/${encodeURIComponent(id)}`);

  return (
    <>
      <div class="page-head">
        <h1>{t('bc.title')}</h1>
        {canSend && (
          <a class="btn btn-primary" href="/broadcasts/new" onClick={(e) => { e.preventDefault(); navigate('/broadcasts/new'); }}>
            <Icon name="speaker" /> {t('bc.new')}
          </a>
        )}
      </div>
      {sentItem && <p class="notice ok" role="status">{t('compose.sent', { title: sentItem.title })}</p>}
      {!canSend && <p class="muted">{t('bc.readOnly')}</p>}
      <ErrorText error={list.error} />
      {list.data && !list.data.length && <p class="card muted">{t('bc.empty')}</p>}
      <ul class="bc-list" data-testid="bc-list">
        {list.data?.map((b) => (
          <li key={b.id} class={`card bc bc-${b.priority}`} data-broadcast={b.id} data-status={b.status}>
            <div class="bc-head">
              <a class="bc-title" href={`/broadcasts/${encodeURIComponent(b.id)}`} onClick={(e) => { e.preventDefault(); open(b.id); }}>{b.title}</a>
              <span class="row">
                <PriorityBadge priority={b.priority} />
                <StatusBadge status={b.status} />
              </span>
            </div>
            <p class="muted bc-meta">
              {t('bc.playAt', { time: formatDateTime(b.playAt) })} · {t(`bc.kind.${b.source.kind}`)} · {t('bc.by', { name: b.createdBy })}
            </p>
            {b.error && <p class="error-inline">{t('bc.failedReason', { error: b.error })}</p>}
            <ZoneOutcomes broadcast={b} />
          </li>
        ))}
      </ul>
    </>
  );
}
