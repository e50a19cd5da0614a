import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { navigate } from '../router.js';
import type { Session } from '../types.js';
import { ErrorText, Icon } from '../components/ui.js';
import { LangSwitch } from '../app.js';

export function LoginPage({ notice, onLoggedIn, path, full }: { notice: MessageKey | null; onLoggedIn: (s: Session) => void; path: string; full: string }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [other, setOther] = useState<unknown>(null);

  useEffect(() => {
    // Any page asked for without a session: remember it, show the login at /login.
    if (path !== '/login') {
      if (path !== '/') sessionStorage.setItem('gw.next', full);
      navigate('/login', { replace: true });
    }
  }, [path, full]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setMessage(null);
    setOther(null);
    try {
      const s = await api<Session>('/api/auth/login', { method: 'POST', body: { username: username.trim(), password }, anonymous: true });
      onLoggedIn(s);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setMessage(t('login.wrong'));
      else if (err instanceof ApiError && err.status === 429) setMessage(t('login.rateLimited', { seconds: err.retryAfter ?? 60 }));
      else setOther(err);
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login" id="main">
      <div class="login-lang"><LangSwitch /></div>
      <form class="card login-card" onSubmit={submit} noValidate={false}>
        <div class="brand">
          <Icon name="speaker" />
          <span>
            <strong>{t('app.title')}</strong>
            <small>{t('app.subtitle')}</small>
          </span>
        </div>
        <h1>{t('login.title')}</h1>
        <p class="muted">{t('login.intro')}</p>
        {notice && <p class="notice" role="status">{t(notice)}</p>}
        <div class="field">
          <label for="username">{t('login.username')}</label>
          <input id="username" name="username" autoComplete="username" autoCapitalize="none" spellcheck={false} required maxLength={64}
            value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="password">{t('login.password')}</label>
          <input id="password" name="password" type="password" autoComplete="current-password" required maxLength={200}
            value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </div>
        {message && <p class="error" role="alert" data-testid="login-error"><Icon name="alert" /> <span>{message}</span></p>}
        <ErrorText error={other} />
        <button type="submit" class="btn btn-primary btn-block" disabled={busy}>{busy ? t('login.submitting') : t('login.submit')}</button>
      </form>
    </main>
  );
}
