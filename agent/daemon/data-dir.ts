// The agent's persistent identity and cluster membership, laid out as:
//   identity/libp2p.key   libp2p Ed25519 private key (defines the peer ID)
//   identity/tls.key      ECDSA P-256 PKCS#8 key bound by the node certificate
//   identity/tls.pub      its SPKI public key
//   cluster/node-id, ca.crt, ca.key, node.crt, psk, state.pb, tables.state
// All files are 0600 and directories 0700. Leaving a cluster removes both
// directories: the next join starts a fresh identity, as a new node.
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { generateEcKeyPair, type KeyPairDer } from '../../controlplane/security/certificates.ts';
import { readOptional, removeIfPresent, writeSecretFile, ensurePrivateDir } from './files.ts';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../wire/cluster-codec.ts';
import type { TableStore } from '../cluster/table-service.ts';
import { fileTableStore } from './table-store.ts';
import { corrupt, isSealed, seal, unseal } from './sealed-file.ts';

const STATE_REMEDY = 'restore it from a backup, or move the cluster/ and identity/ directories aside and join the cluster again';

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

  /** The cluster snapshot; CorruptStateError for a damaged file (never an empty cluster instead). */
  loadState(): Snapshot | undefined {
    const path = this.#file('cluster', 'state.pb');
    const data = readOptional(path);
    if (data === undefined) return undefined;
    // Agents before the sealed envelope wrote the bare snapshot; an empty one would decode as an empty cluster.
    if (!isSealed(data) && data.length === 0) throw corrupt(path, 'it is empty', STATE_REMEDY);
    const payload = isSealed(data) ? unseal(data, path, STATE_REMEDY) : new Uint8Array(data);
    try {
      return decodeSnapshot(payload);
    } catch (error) {
      throw corrupt(path, (error as Error).message, STATE_REMEDY);
    }
  }

  saveState(snapshot: Snapshot): void {
    writeSecretFile(this.#file('cluster', 'state.pb'), seal(encodeSnapshot(snapshot)));
  }

  /** The replicated tables and the Lamport clock, so a restart never reuses a Lamport time. */
  tableStore(): TableStore {
    return fileTableStore(this.#file('cluster'));
  }

  /** Forgets the cluster and the node identity (after `weft leave` or revocation). */
  wipeCluster(): void {
    removeIfPresent(this.#file('cluster'));
    removeIfPresent(this.#file('identity'));
  }
}
