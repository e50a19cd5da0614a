// The current language (Vietnamese unless the user chose English, remembered
// in localStorage) and t(): a catalogue lookup with {param} substitution.
import { vi, type MessageKey } from './vi.js';
import { en } from './en.js';

export type Lang = 'vi' | 'en';
export type { MessageKey };
const CATALOGUES: Record<Lang, Record<MessageKey, string>> = { vi, en };
const STORAGE_KEY = 'gw.lang';

function stored(): Lang {
  try {
    return localStorage.getItem(STORAGE_KEY) === 'en' ? 'en' : 'vi';
  } catch {
    return 'vi';
  }
}

let lang: Lang = typeof localStorage === 'undefined' ? 'vi' : stored();
const listeners = new Set<() => void>();

export function getLang(): Lang {
  return lang;
}

export function setLang(next: Lang): void {
  lang = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // private mode: the choice lasts until reload
  }
  if (typeof document !== 'undefined') document.documentElement.lang = next;
  for (const fn of listeners) fn();
}

export function onLangChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function translate(l: Lang, key: MessageKey, params?: Record<string, string | number>): string {
  const s = CATALOGUES[l][key];
  return params ? s.replace(/\{(\w+)\}/g, (m, k: string) => (k in params ? String(params[k]) : m)) : s;
}

export function t(key: MessageKey, params?: Record<string, string | number>): string {
  return translate(lang, key, params);
}
