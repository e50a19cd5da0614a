// The dashboard's message catalogues and date formatting (no browser needed).
import { describe, expect, it } from 'vitest';
import { vi as viMessages } from '../dashboard/src/i18n/vi.js';
import { en } from '../dashboard/src/i18n/en.js';
import { formatAgo, formatDateTime } from '../dashboard/src/format.js';

describe('dashboard i18n', () => {
  it('vi and en have the same keys, no empty strings and the same {params}', () => {
    expect(Object.keys(en).sort()).toEqual(Object.keys(viMessages).sort());
    const params = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [k, v] of Object.entries(viMessages)) {
      expect(v.trim(), `vi ${k}`).not.toBe('');
      const e = en[k as keyof typeof en];
      expect(e.trim(), `en ${k}`).not.toBe('');
      expect(params(e), `params of ${k}`).toEqual(params(v));
    }
    expect(viMessages['login.wrong']).toBe('Sai tên đăng nhập hoặc mật khẩu');
  });

  it('formats times in Asia/Ho_Chi_Minh as dd/mm/yyyy HH:mm whatever the process zone, and "N phút trước"', () => {
    expect(formatDateTime('2025-11-24T17:05:00Z')).toBe('25/11/2025 00:05');
    expect(formatDateTime('2025-01-02T03:04:00Z')).toBe('02/01/2025 10:04');
    const now = Date.parse('2025-11-24T10:00:00Z');
    expect(formatAgo('2025-11-24T09:57:00Z', now, 'vi')).toBe('3 phút trước');
    expect(formatAgo('2025-11-24T09:57:00Z', now, 'en')).toBe('3 minutes ago');
    expect(formatAgo('2025-11-24T07:00:00Z', now, 'vi')).toBe('3 giờ trước');
  });
});
