// A tiny container image from the machine's busybox-static, for runtimes that
// need an image and have no registry to pull from: a root filesystem tar
// (docker import) or an OCI image archive (ctr images import, podman load).
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const APPLETS = ['sh', 'ip', 'ping', 'nc', 'wget', 'sleep', 'cat', 'nslookup', 'hostname', 'httpd', 'echo', 'true', 'timeout'];

/** Writes DIR/rootfs.tar: /bin/busybox and its applets. */
export async function busyboxRootfsTar(dir: string): Promise<string> {
  if (!existsSync('/bin/busybox')) throw new Error('/bin/busybox is missing (deploy/install-deps.sh installs busybox-static)');
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  await execa('cp', ['/bin/busybox', join(rootfs, 'bin', 'busybox')]);
  for (const applet of APPLETS) await execa('ln', ['-sf', 'busybox', join(rootfs, 'bin', applet)]);
  const tar = join(dir, 'rootfs.tar');
  await execa('tar', ['-C', rootfs, '-cf', tar, '.']);
  return tar;
}

function blob(layout: string, bytes: Buffer): { digest: string; size: number } {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(layout, 'blobs', 'sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/**
 * Writes DIR/busybox-oci.tar, an OCI image layout archive of one uncompressed
 * layer named REF (e.g. docker.io/library/weftbb:latest).
 */
export async function busyboxOciArchive(dir: string, ref: string): Promise<string> {
  const layer = readFileSync(await busyboxRootfsTar(dir));
  const layout = join(dir, 'oci');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const layerBlob = blob(layout, layer);
  const config = blob(layout, Buffer.from(JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64', os: 'linux',
    config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: [layerBlob.digest] },
  })));
  const manifest = blob(layout, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layerBlob }],
  })));
  const tag = ref.slice(ref.lastIndexOf(':') + 1);
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag } }],
  }));
  const archive = join(dir, 'busybox-oci.tar');
  await execa('tar', ['-C', layout, '-cf', archive, '.']);
  return archive;
}
