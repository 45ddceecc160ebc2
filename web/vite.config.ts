// Builds the web console (web/) into dist/web-app, which `virtfleet api --web-port` serves
// (src/web/static.ts): everything bundled, nothing fetched from elsewhere at run time.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import solid from 'vite-plugin-solid';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  plugins: [solid()],
  build: {
    outDir: fileURLToPath(new URL('../dist/web-app', import.meta.url)),
    emptyOutDir: true,
    // The page's CSP is script-src 'self': no inline module-preload polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    // One stylesheet, linked from index.html: no <link> for a lazy chunk's CSS added by script.
    cssCodeSplit: false,
    sourcemap: false,
  },
});
