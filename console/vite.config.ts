// Builds the console into dist/, which omsd embeds (gateway/src/console). The output must be a
// function of the sources and the lockfile: CI rebuilds it and fails when the committed dist/
// differs. `npm run dev` proxies the API and the session to an omsd console port
// (OMSD_CONSOLE, default http://127.0.0.1:7703).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const target = process.env.OMSD_CONSOLE ?? 'http://127.0.0.1:7703';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline scripts or module preload polyfill: the console is served with a CSP that allows
    // scripts from its own origin only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
    sourcemap: false,
  },
  server: {
    proxy: { '/api': target, '/session': target },
  },
});
