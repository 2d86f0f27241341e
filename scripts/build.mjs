// Build: clear dist once, then let tsup run both formats (TOOLCHAIN.md §7:
// two configs must not both `clean`).
import { rmSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/tsup/dist/cli-default.js'], { stdio: 'inherit' });
chmodSync(new URL('../dist/cli/main.js', import.meta.url), 0o755);
