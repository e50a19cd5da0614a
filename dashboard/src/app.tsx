// The shell: who is logged in, which pages their role may open, the header
// (user, role, language, logout, live status), navigation and the routes.
// Which role may do what is the API's decision; this table only hides what
// the API would refuse, so no dead links are shown.
import { useEffect, useState } from 'preact/hooks';
import { api, onUnauthorized } from './api.js';
import { getLang, onLangChange, setLang, t, type MessageKey } from './i18n/index.js';
import { startLive, stopLive, useLiveState } from './live.js';
import { navigate, useLocation } from './router.js';
import type { Role, Session } from './types.js';
import { Icon } from './components/ui.js';
import { LoginPage } from './pages/login.js';
import { HomePage } from './pages/home.js';
import { DevicesPage } from './pages/devices.js';
import { DevicePage } from './pages/device.js';
import { AlarmsPage } from './pages/alarms.js';
import { ZonesPage } from './pages/zones.js';
import { AdminDevicesPage } from './pages/admin-devices.js';
import { UsersPage } from './pages/users.js';
import { ComposePage } from './pages/compose.js';
import { BroadcastsPage } from './pages/broadcasts.js';
import { BroadcastPage } from './pages/broadcast.js';
import { LibraryPage } from './pages/library.js';
import { ScheduleWeekPage } from './pages/schedule-week.js';
import { ScheduleItemPage } from './pages/schedule-item.js';
import { ScheduleReportPage } from './pages/schedule-report.js';
import { CamerasPage } from './pages/cameras.js';
import { RatingsPage } from './pages/ratings.js';
import { CasePage, CasesPage } from './pages/complaints.js';
import { ReviewPage } from './pages/review.js';
import { FirmwarePage } from './pages/firmware.js';

type PageId = 'home' | 'compose' | 'broadcasts' | 'schedule' | 'scheduleReport' | 'scheduleItem' | 'library' | 'devices' | 'alarms' | 'zones' | 'adminDevices' | 'cameras' | 'users' | 'ratings' | 'cases' | 'review' | 'firmware';

/** Pages per role, mirroring the API's route roles (devices: admin/technician/officer; users: admin...). */
const PAGES: Record<PageId, { path: string; label: MessageKey; roles: Role[] }> = {
  home: { path: '/home', label: 'nav.home', roles: ['chairman'] },
  compose: { path: '/broadcasts/new', label: 'nav.compose', roles: ['officer', 'admin'] },
  broadcasts: { path: '/broadcasts', label: 'nav.broadcasts', roles: ['officer', 'admin', 'chairman', 'technician'] },
  schedule: { path: '/schedules', label: 'nav.schedule', roles: ['officer', 'admin', 'chairman', 'technician'] },
  scheduleReport: { path: '/schedules/report', label: 'nav.scheduleReport', roles: ['officer', 'admin', 'chairman', 'technician'] },
  /** Not in the menu: /schedules/new and /schedules/:id. */
  scheduleItem: { path: '/schedules/new', label: 'sched.new', roles: ['officer', 'admin'] },
  library: { path: '/library', label: 'nav.library', roles: ['officer', 'admin'] },
  devices: { path: '/devices', label: 'nav.devices', roles: ['technician', 'admin', 'officer'] },
  alarms: { path: '/alarms', label: 'nav.alarms', roles: ['technician', 'admin', 'officer'] },
  zones: { path: '/admin/zones', label: 'nav.zones', roles: ['admin', 'technician'] },
  adminDevices: { path: '/admin/devices', label: 'nav.adminDevices', roles: ['admin', 'technician'] },
  cameras: { path: '/admin/cameras', label: 'nav.cameras', roles: ['admin', 'technician'] },
  users: { path: '/admin/users', label: 'nav.users', roles: ['admin'] },
  ratings: { path: '/ratings', label: 'nav.ratings', roles: ['chairman', 'admin', 'officer'] },
  /** Recordings of citizens: the chairman and the admin only (as the API). */
  cases: { path: '/cases', label: 'nav.cases', roles: ['chairman', 'admin'] },
  review: { path: '/review', label: 'nav.review', roles: ['chairman', 'admin'] },
  firmware: { path: '/admin/firmware', label: 'nav.firmware', roles: ['admin', 'technician'] },
};
const NAV_ORDER: PageId[] = ['cases', 'review', 'home', 'compose', 'broadcasts', 'schedule', 'scheduleReport', 'library', 'ratings', 'devices', 'alarms', 'zones', 'adminDevices', 'cameras', 'firmware', 'users'];

export function landing(role: Role): string {
  if (role === 'officer') return PAGES.compose.path;
  if (role === 'chairman') return PAGES.cases.path;
  return role === 'technician' || role === 'admin' ? PAGES.devices.path : PAGES.home.path;
}

function match(path: string): { page: PageId; deviceId?: string; broadcastId?: string; scheduleId?: string; caseId?: string } | null {
  for (const id of NAV_ORDER) if (PAGES[id].path === path) return { page: id };
  if (path === PAGES.scheduleItem.path) return { page: 'scheduleItem' };
  const item = /^\/schedules\/([^/]+)$/.exec(path);
  if (item) return { page: 'scheduleItem', scheduleId: decodeURIComponent(item[1]!) };
  const dev = /^\/devices\/([^/]+)$/.exec(path);
  if (dev) return { page: 'devices', deviceId: decodeURIComponent(dev[1]!) };
  const cs = /^\/cases\/([^/]+)$/.exec(path);
  if (cs) return { page: 'cases', caseId: decodeURIComponent(cs[1]!) };
  const bc = /^\/broadcasts\/([^/]+)$/.exec(path);
  if (bc) return { page: 'broadcasts', broadcastId: decodeURIComponent(bc[1]!) };
  return null;
}

const NEXT_KEY = 'gw.next';
const rememberNext = (full: string) => {
  if (!full.startsWith('/login')) sessionStorage.setItem(NEXT_KEY, full);
};

function useLangVersion(): number {
  const [v, setV] = useState(0);
  useEffect(() => onLangChange(() => setV((x) => x + 1)), []);
  return v;
}

export function App() {
  const loc = useLocation();
  useLangVersion();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [notice, setNotice] = useState<MessageKey | null>(null);

  useEffect(() => {
    document.documentElement.lang = getLang();
    onUnauthorized(() => {
      // The session ended under us (expired, logged out elsewhere, user disabled): back to login, then back here.
      rememberNext(location.pathname + location.search);
      stopLive();
      setSession((s) => {
        if (s) setNotice('login.expired');
        return null;
      });
      navigate('/login', { replace: true });
    });
    api<Session>('/api/auth/me').then(setSession, () => setSession(null));
  }, []);

  useEffect(() => {
    if (session) startLive();
  }, [session]);

  useEffect(() => {
    document.title = t('app.title');
  });

  if (session === undefined) return <p class="loading-screen">{t('app.loading')}</p>;

  if (!session) {
    return (
      <LoginPage
        path={loc.path}
        full={loc.full}
        notice={notice}
        onLoggedIn={(s) => {
          setNotice(null);
          setSession(s);
          const next = sessionStorage.getItem(NEXT_KEY);
          sessionStorage.removeItem(NEXT_KEY);
          navigate(next && next !== '/' ? next : landing(s.user.role), { replace: true });
        }}
      />
    );
  }

  const role = session.user.role;
  const m = match(loc.path);
  let content;
  if (loc.path === '/' || loc.path === '/login') {
    content = <Redirect to={landing(role)} />;
  } else if (!m) {
    content = <Problem text="app.notFound" role={role} />;
  } else if (!PAGES[m.page].roles.includes(role)) {
    // Hidden from the menu, and refused if typed in: back to the user's own workspace.
    content = <Redirect to={`${landing(role)}?denied=1`} />;
  } else if (m.deviceId) {
    content = <DevicePage id={m.deviceId} role={role} />;
  } else if (m.broadcastId) {
    content = <BroadcastPage id={m.broadcastId} role={role} />;
  } else if (m.caseId) {
    content = <CasePage id={m.caseId} />;
  } else {
    content = {
      home: () => <HomePage session={session} />,
      compose: () => <ComposePage />,
      broadcasts: () => <BroadcastsPage role={role} />,
      schedule: () => <ScheduleWeekPage role={role} />,
      scheduleReport: () => <ScheduleReportPage />,
      scheduleItem: () => <ScheduleItemPage id={m.scheduleId} />,
      library: () => <LibraryPage role={role} />,
      devices: () => <DevicesPage role={role} />,
      alarms: () => <AlarmsPage role={role} />,
      zones: () => <ZonesPage />,
      adminDevices: () => <AdminDevicesPage />,
      cameras: () => <CamerasPage />,
      users: () => <UsersPage me={session.user} />,
      ratings: () => <RatingsPage role={role} />,
      cases: () => <CasesPage />,
      review: () => <ReviewPage />,
      firmware: () => <FirmwarePage />,
    }[m.page]();
  }

  const logout = async () => {
    try {
      await api('/api/auth/logout', { method: 'POST' });
    } catch {
      // already gone: same result
    }
    stopLive();
    sessionStorage.removeItem(NEXT_KEY);
    setNotice('login.loggedOut');
    setSession(null);
    navigate('/login', { replace: true });
  };

  return (
    <div class="shell">
      <a class="skip" href="#main">{t('app.skip')}</a>
      <header class="topbar">
        <div class="brand">
          <Icon name="speaker" />
          <span>
            <strong>{t('app.title')}</strong>
            <small>{t('app.subtitle')}</small>
          </span>
        </div>
        <LiveIndicator />
        <div class="who" aria-label={t('user.menu')}>
          <span class="who-name" data-testid="user-name">{session.user.displayName}</span>
          <span class="who-role" data-testid="user-role">{t(`role.${role}`)}</span>
        </div>
        <div class="top-actions">
          <LangSwitch />
          <button type="button" class="btn btn-ghost" onClick={logout}>
            <Icon name="logout" /> <span>{t('logout')}</span>
          </button>
        </div>
      </header>
      <nav class="nav" aria-label={t('nav.label')}>
        <ul>
          {NAV_ORDER.filter((id) => PAGES[id].roles.includes(role)).map((id) => {
            const active = m?.page === id || (id === 'schedule' && m?.page === 'scheduleItem');
            return (
              <li key={id}>
                <a
                  href={PAGES[id].path}
                  aria-current={active ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(PAGES[id].path);
                  }}
                >
                  {t(PAGES[id].label)}
                </a>
              </li>
            );
          })}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {loc.search.get('denied') && <p class="notice" role="status">{t('app.notAllowed')}</p>}
        {content}
      </main>
    </div>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function Problem({ text, role }: { text: MessageKey; role: Role }) {
  return (
    <div class="card">
      <p>{t(text)}</p>
      <a href={landing(role)} onClick={(e) => { e.preventDefault(); navigate(landing(role)); }}>{t('app.backHome')}</a>
    </div>
  );
}

export function LangSwitch() {
  const next = getLang() === 'vi' ? 'en' : 'vi';
  return (
    <button type="button" class="btn btn-ghost" lang={next} title={t('lang.switchHint')} aria-label={`${t('lang.label')}: ${t('lang.switchTo')}`} onClick={() => setLang(next)} data-testid="lang-switch">
      <Icon name="globe" /> <span>{t('lang.switchTo')}</span>
    </button>
  );
}

function LiveIndicator() {
  const s = useLiveState();
  const key: MessageKey = s === 'open' ? 'live.connected' : s === 'lost' ? 'live.lost' : 'live.connecting';
  return (
    <span class={`live live-${s}`} role="status" data-testid="live-state" data-state={s}>
      <span class="dot" aria-hidden="true" /> {t(key)}
    </span>
  );
}
