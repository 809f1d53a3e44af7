// The agent's persistent identity and cluster membership, laid out as:
//   identity/libp2p.key   libp2p Ed25519 private key (defines the peer ID)
//   identity/tls.key      ECDSA P-256 PKCS#8 key bound by the node certificate
//   identity/tls.pub      its SPKI public key
//   cluster/node-id, ca.crt, ca.key, node.crt, psk, state.pb
// All files are 0600 and directories 0700. Leaving a cluster removes both
// directories: the next join starts a fresh identity, as a new node.
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { generateEcKeyPair, type KeyPairDer } from '../../controlplane/security/certificates.ts';
import { readOptional, removeIfPresent, writeSecretFile, ensurePrivateDir } from './files.ts';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../wire/cluster-codec.ts';
import { decodeEntryBatch, encodeEntryBatch } from '../wire/tables-codec.ts';
import type { WireEntry } from '../../controlplane/tables/index.ts';
import type { TableStore } from '../cluster/table-service.ts';

export interface NodeKeys {
  libp2pKey: PrivateKey;
  tls: KeyPairDer;
}

export interface ClusterMaterial {
  nodeId: string;
  caCertificate: Uint8Array;
  caPrivateKey: Uint8Array;
  nodeCertificate: Uint8Array;
  psk: Uint8Array;
}

export class DataDir {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
    ensurePrivateDir(path);
  }

  #file(...parts: string[]): string {
    return join(this.path, ...parts);
  }

  async loadOrCreateKeys(): Promise<NodeKeys> {
    const libp2pBytes = readOptional(this.#file('identity', 'libp2p.key'));
    const tlsKey = readOptional(this.#file('identity', 'tls.key'));
    const tlsPub = readOptional(this.#file('identity', 'tls.pub'));
    if (libp2pBytes && tlsKey && tlsPub) {
      return {
        libp2pKey: privateKeyFromProtobuf(libp2pBytes),
        tls: { privateKeyPkcs8: new Uint8Array(tlsKey), publicKeySpki: new Uint8Array(tlsPub) },
      };
    }
    const libp2pKey = await generateKeyPair('Ed25519');
    const tls = await generateEcKeyPair();
    writeSecretFile(this.#file('identity', 'libp2p.key'), privateKeyToProtobuf(libp2pKey));
    writeSecretFile(this.#file('identity', 'tls.key'), tls.privateKeyPkcs8);
    writeSecretFile(this.#file('identity', 'tls.pub'), tls.publicKeySpki);
    return { libp2pKey, tls };
  }

  loadCluster(): ClusterMaterial | undefined {
    const nodeId = readOptional(this.#file('cluster', 'node-id'));
    const caCertificate = readOptional(this.#file('cluster', 'ca.crt'));
    const caPrivateKey = readOptional(this.#file('cluster', 'ca.key'));
    const nodeCertificate = readOptional(this.#file('cluster', 'node.crt'));
    const psk = readOptional(this.#file('cluster', 'psk'));
    if (!nodeId || !caCertificate || !caPrivateKey || !nodeCertificate || !psk) return undefined;
    return {
      nodeId: nodeId.toString('utf8').trim(),
      caCertificate: new Uint8Array(caCertificate),
      caPrivateKey: new Uint8Array(caPrivateKey),
      nodeCertificate: new Uint8Array(nodeCertificate),
      psk: new Uint8Array(psk),
    };
  }

  saveCluster(material: ClusterMaterial): void {
    ensurePrivateDir(this.#file('cluster'));
    writeSecretFile(this.#file('cluster', 'ca.crt'), material.caCertificate);
    writeSecretFile(this.#file('cluster', 'ca.key'), material.caPrivateKey);
    writeSecretFile(this.#file('cluster', 'node.crt'), material.nodeCertificate);
    writeSecretFile(this.#file('cluster', 'psk'), material.psk);
    // Written last: its presence is what marks the cluster material complete.
    writeSecretFile(this.#file('cluster', 'node-id'), material.nodeId + '\n');
  }

  loadState(): Snapshot | undefined {
    const data = readOptional(this.#file('cluster', 'state.pb'));
    return data ? decodeSnapshot(new Uint8Array(data)) : undefined;
  }

  saveState(snapshot: Snapshot): void {
    writeSecretFile(this.#file('cluster', 'state.pb'), encodeSnapshot(snapshot));
  }

  /** The replicated tables and the Lamport clock, so a restart never reuses a Lamport time. */
  tableStore(): TableStore {
    const entriesFile = this.#file('cluster', 'tables.pb');
    const clockFile = this.#file('cluster', 'lamport');
    return {
      load: () => {
        const entries = readOptional(entriesFile);
        const clock = readOptional(clockFile);
        if (!entries || !clock) return undefined;
        const lamport = Number(clock.toString('utf8').trim());
        return { lamport: Number.isSafeInteger(lamport) && lamport >= 0 ? lamport : 0, entries: decodeEntryBatch(new Uint8Array(entries)) };
      },
      save: (lamport: number, entries: WireEntry[]) => {
        writeSecretFile(entriesFile, encodeEntryBatch(entries));
        writeSecretFile(clockFile, `${lamport}\n`);
      },
    };
  }

  /** Forgets the cluster and the node identity (after `weft leave` or revocation). */
  wipeCluster(): void {
    removeIfPresent(this.#file('cluster'));
    removeIfPresent(this.#file('identity'));
  }
}
