// The dashboard's build: Preact through Vite's own JSX transform (oxc, no
// babel), output to dashboard/dist, and a size report that fails the build
// when the shipped JavaScript outgrows its budget. `vite` (npm run
// dev:dashboard) proxies the API to a gateway on 127.0.0.1:8080.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { sizeReport } from './scripts/size.ts';

const root = fileURLToPath(new URL('.', import.meta.url));
const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The polyfill would be an inline script, which our CSP forbids; every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(['/api', '/healthz', '/metrics', '/docs'].map((p) => [p, { target: gateway, changeOrigin: false }])),
  },
  plugins: [sizeReport()],
});
