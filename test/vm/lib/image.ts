// The VM tier's guest image: built once by test/vm/guest/build-image.sh into a
// cache directory outside the repo, keyed by a hash of every input, so a
// fresh machine builds it once (~3 min) and later runs reuse it.
//
// Cache root: $LVMLOCKD_VM_CACHE, else $XDG_CACHE_HOME/lvmlockd-ts-vm, else
// /var/cache/lvmlockd-ts-vm.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCommand } from '../../harness/exec';
import { repoRoot } from '../../harness/cluster';

export interface GuestImage {
  dir: string;
  rootfs: string;
  kernel: string;
  initrd: string;
  hash: string;
  /** true when this call built it */
  built: boolean;
  manifest: string;
}

export function cacheRoot(): string {
  if (process.env.LVMLOCKD_VM_CACHE) return process.env.LVMLOCKD_VM_CACHE;
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'lvmlockd-ts-vm');
  return '/var/cache/lvmlockd-ts-vm';
}

/** Sources of the guest, in the repo (test/vm/guest). */
export function guestDir(): string {
  return path.join(repoRoot(), 'test', 'vm', 'guest');
}

export function imageHash(nodeBinary = process.execPath): string {
  const h = crypto.createHash('sha256');
  h.update('lvmlockd-ts-vm-image v1\n');
  for (const f of ['build-image.sh']) {
    h.update(f + '\n');
    h.update(fs.readFileSync(path.join(guestDir(), f)));
  }
  h.update('node\n');
  h.update(fs.readFileSync(nodeBinary));
  return h.digest('hex').slice(0, 16);
}

function complete(dir: string): boolean {
  return ['rootfs.img', 'vmlinuz', 'initrd.img', 'manifest.txt'].every((f) => fs.existsSync(path.join(dir, f)));
}

function describe(dir: string, hash: string, built: boolean): GuestImage {
  return {
    dir,
    hash,
    built,
    rootfs: path.join(dir, 'rootfs.img'),
    kernel: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd.img'),
    manifest: fs.readFileSync(path.join(dir, 'manifest.txt'), 'utf8'),
  };
}

/**
 * Run `build` for the cache entry `dir` unless it is complete, holding
 * `<dir>.lock` (a directory with the owner's pid) so concurrent callers build
 * it once; a lock left by a dead process is taken over.
 */
async function buildLocked(dir: string, build: () => Promise<void>): Promise<boolean> {
  if (complete(dir)) return false;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      // held: by a live process, wait; by a dead one, take over
      let owner = 0;
      try { owner = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8')); } catch { /* being created */ }
      let alive = false;
      if (owner > 0) { try { process.kill(owner, 0); alive = true; } catch { alive = false; } }
      if (owner > 0 && !alive) { fs.rmSync(lock, { recursive: true, force: true }); continue; }
      if (Date.now() > deadline) throw new Error(`timed out waiting for image build lock ${lock}`);
      await new Promise((r) => setTimeout(r, 2000));
      if (complete(dir)) return false;
    }
  }
  try {
    if (complete(dir)) return false;
    await build();
    return true;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Remove the other versions of one kind of image from the cache root: the
 * entries named `<prefix><hash>` other than `keep` (never a lock or a build in
 * progress). Each kind has its own prefix ('img-' base, 'systemd-' systemd),
 * so dropping old base images never evicts the systemd image or the reverse.
 */
export function pruneImages(root: string, prefix: string, keep: string): string[] {
  const removed: string[] = [];
  for (const e of fs.readdirSync(root)) {
    if (!e.startsWith(prefix) || e === keep || e.endsWith('.lock') || e.includes('.tmp.')) continue;
    if (!/^[0-9a-f]{16}$/.test(e.slice(prefix.length))) continue;
    fs.rmSync(path.join(root, e), { recursive: true, force: true });
    removed.push(e);
  }
  return removed;
}

/**
 * Return the cached image for the current inputs, building it when missing.
 * Concurrent callers serialize on a lock directory.
 */
export async function ensureImage(log: (s: string) => void = () => {}): Promise<GuestImage> {
  const hash = imageHash();
  const root = cacheRoot();
  const dir = path.join(root, `img-${hash}`);
  const built = await buildLocked(dir, async () => {
    log(`building VM image ${hash} in ${root} (debootstrap, ~3 min)`);
    const r = await runCommand(['bash', path.join(guestDir(), 'build-image.sh'), dir, process.execPath], {
      timeoutMs: 20 * 60_000,
    });
    if (r.code !== 0 || !complete(dir)) {
      throw new Error(`VM image build failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}):\n${r.stdout}\n${r.stderr}`);
    }
    log(r.stdout.trim());
    // keep the cache small: drop other base image versions
    pruneImages(root, 'img-', `img-${hash}`);
  });
  return describe(dir, hash, built);
}

/** Cache key of the systemd image: the base image's key and build-image-systemd.sh. */
export function systemdImageHash(baseHash: string): string {
  const h = crypto.createHash('sha256');
  h.update('lvmlockd-ts-vm-image-systemd v1\n');
  h.update(baseHash + '\n');
  h.update(fs.readFileSync(path.join(guestDir(), 'build-image-systemd.sh')));
  return h.digest('hex').slice(0, 16);
}

/**
 * The systemd variant of the guest (build-image-systemd.sh: the base image
 * plus systemd-sysv and an agent unit), in `systemd-<hash>/` of the cache;
 * builds the base image first when needed.
 */
export async function ensureSystemdImage(log: (s: string) => void = () => {}): Promise<GuestImage> {
  const base = await ensureImage(log);
  const hash = systemdImageHash(base.hash);
  const root = cacheRoot();
  const dir = path.join(root, `systemd-${hash}`);
  const built = await buildLocked(dir, async () => {
    log(`building the systemd VM image ${hash} from ${base.dir} (apt-get install systemd-sysv, ~1 min)`);
    const r = await runCommand(['bash', path.join(guestDir(), 'build-image-systemd.sh'), base.dir, dir], {
      timeoutMs: 15 * 60_000,
    });
    if (r.code !== 0 || !complete(dir)) {
      throw new Error(`systemd VM image build failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}):\n${r.stdout}\n${r.stderr}`);
    }
    log(r.stdout.trim());
    pruneImages(root, 'systemd-', `systemd-${hash}`);
  });
  return describe(dir, hash, built);
}
