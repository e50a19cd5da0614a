// Users and roles. Password hashes never leave this module's records; the
// HTTP layer's response schemas list the public fields only.
import { randomUUID } from 'node:crypto';
import type { Role, User } from '../core/types.js';
import type { Store } from '../store/store.js';
import { RegistryError } from '../devices/registry.js';
import { hashPassword, verifyPassword } from './password.js';

export type PublicUser = Omit<User, 'passwordHash'>;

export const toPublicUser = ({ passwordHash: _omit, ...u }: User): PublicUser => u;

// A hash to compare against when the user does not exist, so a login for an
// unknown name costs as much as one for a known name (no user enumeration).
let dummyHash: Promise<string> | null = null;

export class Users {
  constructor(private readonly store: Store, private readonly now: () => Date = () => new Date()) {}

  list(): PublicUser[] {
    return this.store.data.users.map(toPublicUser);
  }
  get(id: string): User | undefined {
    return this.store.data.users.find((u) => u.id === id);
  }
  byName(username: string): User | undefined {
    const n = username.toLowerCase();
    return this.store.data.users.find((u) => u.username.toLowerCase() === n);
  }

  async create(input: { username: string; displayName: string; role: Role; password: string }): Promise<User> {
    if (this.byName(input.username)) throw new RegistryError('conflict', 'username', `user ${input.username} already exists`);
    const user: User = {
      id: randomUUID(), username: input.username, displayName: input.displayName, role: input.role,
      passwordHash: await hashPassword(input.password), disabled: false, createdAt: this.now().toISOString(),
    };
    await this.store.update((d) => d.users.push(user));
    return user;
  }

  async update(id: string, patch: { displayName?: string; role?: Role; password?: string; disabled?: boolean }): Promise<User> {
    const user = this.get(id);
    if (!user) throw new RegistryError('not_found', 'id', `user ${id} not found`);
    if ((patch.role && patch.role !== 'admin') || patch.disabled) this.keepOneAdmin(user);
    const hash = patch.password ? await hashPassword(patch.password) : undefined;
    await this.store.update(() => {
      if (patch.displayName !== undefined) user.displayName = patch.displayName;
      if (patch.role !== undefined) user.role = patch.role;
      if (patch.disabled !== undefined) user.disabled = patch.disabled;
      if (hash) user.passwordHash = hash;
    });
    return user;
  }

  async remove(id: string): Promise<void> {
    const user = this.get(id);
    if (!user) throw new RegistryError('not_found', 'id', `user ${id} not found`);
    this.keepOneAdmin(user);
    await this.store.update((d) => (d.users = d.users.filter((u) => u.id !== id)));
  }

  /** The commune must never lock itself out: the last active admin stays. */
  private keepOneAdmin(user: User): void {
    if (user.role !== 'admin') return;
    const admins = this.store.data.users.filter((u) => u.role === 'admin' && !u.disabled);
    if (admins.length <= 1) throw new RegistryError('conflict', 'role', 'the last active admin cannot be removed, disabled or demoted');
  }

  /** The user on success, null otherwise; same cost either way. */
  async authenticate(username: string, password: string): Promise<User | null> {
    const user = this.byName(username);
    if (!user || user.disabled) {
      dummyHash ??= hashPassword('not-a-user');
      await verifyPassword(password, await dummyHash);
      return null;
    }
    return (await verifyPassword(password, user.passwordHash)) ? user : null;
  }
}
