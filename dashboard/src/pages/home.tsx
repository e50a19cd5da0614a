// Officer and chairman: what exists for them today, in plain words, and the
// hamlet summary (every role may read it). No buttons to features not built.
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import { useLive } from '../live.js';
import { navigate } from '../router.js';
import type { Session, ZoneSummary } from '../types.js';
import { ZoneTiles } from '../components/zone-tiles.js';
import { ErrorText, Icon, useData, useDebounced } from '../components/ui.js';

export function HomePage({ session }: { session: Session }) {
  const role = session.user.role;
  const zones = useData(() => api<ZoneSummary[]>('/api/zones/summary'), []);
  const refresh = useDebounced(zones.reload, 500);
  useLive((name) => {
    if (name !== 'device.telemetry') refresh();
  });
  return (
    <>
      <h1>{t('home.title', { name: session.user.displayName })}</h1>
      <section class="card intro">
        <p><Icon name="clock" /> {t(role === 'chairman' ? 'home.chairman.intro' : 'home.officer.intro')}</p>
        <p>{t(role === 'chairman' ? 'home.chairman.now' : 'home.officer.now')}</p>
        {role === 'officer' && (
          <p>
            <a class="btn btn-primary" href="/devices" onClick={(e) => { e.preventDefault(); navigate('/devices'); }}>{t('home.officer.open')}</a>
          </p>
        )}
      </section>
      <section class="card" aria-labelledby="zones-title">
        <h2 id="zones-title">{t('zone.summaryTitle')}</h2>
        <ErrorText error={zones.error} />
        {zones.data ? <ZoneTiles zones={zones.data} /> : !zones.error && <p class="muted">{t('app.loading')}</p>}
      </section>
    </>
  );
}
