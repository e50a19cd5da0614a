// The chairman: what exists today, in plain words, and the hamlet summary
// (every role may read it). No buttons to features not built. (The officer
// lands on the broadcast workspace instead: compose.tsx.)
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import { useLive } from '../live.js';
import type { Session, ZoneSummary } from '../types.js';
import { ZoneTiles } from '../components/zone-tiles.js';
import { ErrorText, Icon, useData, useDebounced } from '../components/ui.js';

export function HomePage({ session }: { session: Session }) {
  const zones = useData(() => api<ZoneSummary[]>('/api/zones/summary'), []);
  const refresh = useDebounced(zones.reload, 500);
  useLive((name) => {
    if (name !== 'device.telemetry' && name !== 'broadcast.updated') refresh();
  });
  return (
    <>
      <h1>{t('home.title', { name: session.user.displayName })}</h1>
      <section class="card intro">
        <p><Icon name="clock" /> {t('home.chairman.intro')}</p>
        <p>{t('home.chairman.now')}</p>
      </section>
      <section class="card" aria-labelledby="zones-title">
        <h2 id="zones-title">{t('zone.summaryTitle')}</h2>
        <ErrorText error={zones.error} />
        {zones.data ? <ZoneTiles zones={zones.data} /> : !zones.error && <p class="muted">{t('app.loading')}</p>}
      </section>
    </>
  );
}
