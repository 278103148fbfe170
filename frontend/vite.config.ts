import { defineConfig } from 'vitest/config'

// The page is served by the Go function at / next to the API (same origin). During development,
// `npm run dev` proxies /api, /brain and /openapi.yaml to a server running on localhost:8080.
const api = 'http://localhost:8080'

export default defineConfig({
  base: '/',
  resolve: {
    alias: [
      // NiiVue's zarr reader loads these WebAssembly codecs on demand; the page never needs them.
      { find: /^numcodecs\/(blosc|lz4|zstd)$/, replacement: new URL('./src/codec-stub.ts', import.meta.url).pathname },
    ],
  },
  build: {
    outDir: 'dist/site',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
  },
  server: {
    proxy: {
      '/api': api,
      '/brain': api,
      '/openapi.yaml': api,
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
})
