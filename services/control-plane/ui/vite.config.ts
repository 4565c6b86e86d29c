import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The control plane's web UI, served at / by the API process (see src/ui.ts).
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1000 },
});
