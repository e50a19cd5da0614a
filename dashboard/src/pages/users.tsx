// Users and roles (admin): create, edit display name / role / password, disable and enable.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import { formatDateTime } from '../format.js';
import { ROLES, type Role, type User } from '../types.js';
import { ErrorText, Field, useData, useMutation } from '../components/ui.js';

export function UsersPage({ me }: { me: User }) {
  const users = useData(() => api<User[]>('/api/users'), []);
  const [form, setForm] = useState({ username: '', displayName: '', role: 'officer' as Role, password: '' });
  const [editing, setEditing] = useState<{ id: string; displayName: string; role: Role; password: string } | null>(null);
  const { err, busy, run } = useMutation(users.reload);
  const roleSelect = (id: string, value: Role, on: (r: Role) => void) => (
    <select id={id} value={value} onChange={(e) => on(e.currentTarget.value as Role)}>
      {ROLES.map((r) => <option key={r} value={r}>{t(`role.${r}`)}</option>)}
    </select>
  );

  return (
    <>
      <h1>{t('users.title')}</h1>
      <section class="card" aria-labelledby="uc-title">
        <h2 id="uc-title">{t('users.create')}</h2>
        <form class="form-grid" onSubmit={async (e) => {
          e.preventDefault();
          if (await run(() => api('/api/users', { method: 'POST', body: { ...form, username: form.username.trim(), displayName: form.displayName.trim() } }))) {
            setForm({ username: '', displayName: '', role: 'officer', password: '' });
          }
        }}>
          <Field id="u-name" label={t('users.displayName')}><input id="u-name" required maxLength={100} value={form.displayName} onInput={(e) => setForm({ ...form, displayName: e.currentTarget.value })} /></Field>
          <Field id="u-user" label={t('users.username')} hint={t('users.usernameHint')}><input id="u-user" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{1,31}" autoCapitalize="none" aria-describedby="u-user-hint" value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} /></Field>
          <Field id="u-role" label={t('users.role')}>{roleSelect('u-role', form.role, (role) => setForm({ ...form, role }))}</Field>
          <Field id="u-pw" label={t('users.password')} hint={t('users.passwordHint')}><input id="u-pw" type="password" required minLength={8} maxLength={200} autoComplete="new-password" aria-describedby="u-pw-hint" value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} /></Field>
          <div class="form-actions"><button type="submit" class="btn btn-primary" disabled={busy}>{t('form.create')}</button></div>
        </form>
      </section>
      <section class="card" aria-labelledby="ul-title">
        <h2 id="ul-title">{t('users.title')}</h2>
        <ErrorText error={users.error ?? err} />
        {!!users.data?.length && (
          <table class="table">
            <thead><tr><th scope="col">{t('users.displayName')}</th><th scope="col">{t('users.username')}</th><th scope="col">{t('users.role')}</th><th scope="col">{t('users.status')}</th><th scope="col">{t('users.createdAt')}</th><th scope="col">{t('col.actions')}</th></tr></thead>
            <tbody>
              {users.data.map((u) => editing?.id === u.id ? (
                <tr key={u.id}>
                  <td data-label={t('users.displayName')}><label class="sr-only" for="ue-name">{t('users.displayName')}</label><input id="ue-name" maxLength={100} value={editing.displayName} onInput={(e) => setEditing({ ...editing, displayName: e.currentTarget.value })} /></td>
                  <td data-label={t('users.username')} class="mono">{u.username}</td>
                  <td data-label={t('users.role')}><label class="sr-only" for="ue-role">{t('users.role')}</label>{roleSelect('ue-role', editing.role, (role) => setEditing({ ...editing, role }))}</td>
                  <td data-label={t('users.newPassword')}>
                    <label for="ue-pw">{t('users.newPassword')}</label>
                    <input id="ue-pw" type="password" minLength={8} maxLength={200} autoComplete="new-password" aria-describedby="ue-pw-hint" value={editing.password} onInput={(e) => setEditing({ ...editing, password: e.currentTarget.value })} />
                    <small id="ue-pw-hint" class="hint">{t('users.newPasswordHint')}</small>
                  </td>
                  <td data-label={t('users.createdAt')}>{formatDateTime(u.createdAt)}</td>
                  <td data-label={t('col.actions')} class="row">
                    <button type="button" class="btn btn-primary" disabled={busy} onClick={async () => {
                      const body = { displayName: editing.displayName.trim(), role: editing.role, ...(editing.password ? { password: editing.password } : {}) };
                      if (await run(() => api(`/api/users/${u.id}`, { method: 'PATCH', body }))) setEditing(null);
                    }}>{t('form.save')}</button>
                    <button type="button" class="btn" onClick={() => setEditing(null)}>{t('form.cancel')}</button>
                  </td>
                </tr>
              ) : (
                <tr key={u.id} data-user={u.username}>
                  <td data-label={t('users.displayName')}>{u.displayName} {u.id === me.id && <span class="muted">{t('users.you')}</span>}</td>
                  <td data-label={t('users.username')} class="mono">{u.username}</td>
                  <td data-label={t('users.role')}>{t(`role.${u.role}`)}</td>
                  <td data-label={t('users.status')}><span class={`badge ${u.disabled ? 'badge-bad' : 'badge-ok'}`}>{t(u.disabled ? 'users.disabled' : 'users.active')}</span></td>
                  <td data-label={t('users.createdAt')}>{formatDateTime(u.createdAt)}</td>
                  <td data-label={t('col.actions')} class="row">
                    <button type="button" class="btn" onClick={() => setEditing({ id: u.id, displayName: u.displayName, role: u.role, password: '' })}>{t('form.edit')}</button>
                    {u.id !== me.id && (
                      <button type="button" class={`btn ${u.disabled ? '' : 'btn-danger'}`} disabled={busy} onClick={() => run(() => api(`/api/users/${u.id}`, { method: 'PATCH', body: { disabled: !u.disabled } }))}>
                        {t(u.disabled ? 'users.enable' : 'users.disable')}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
