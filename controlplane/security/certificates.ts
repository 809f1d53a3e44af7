// The cluster CA and node certificates. A node certificate binds three things
// together: the node ID (subject CN and a weft://node/ URI), the libp2p peer ID
// (a weft://peer/ URI) and the node's ECDSA P-256 TLS key (the certificate key).
// That binding is what the connection gater checks before admitting a peer.
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes } from 'node:crypto';

const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
// No renewal protocol exists yet, so lifetimes are long enough never to expire
// under a running cluster; revocation (not expiry) is how access is withdrawn.
const CA_LIFETIME_DAYS = 20 * 365;
const NODE_LIFETIME_DAYS = 10 * 365;
const NODE_URI_PREFIX = 'weft://node/';
const PEER_URI_PREFIX = 'weft://peer/';

export interface KeyPairDer {
  publicKeySpki: Uint8Array;
  privateKeyPkcs8: Uint8Array;
}

export interface ClusterCa {
  certificate: Uint8Array; // DER
  privateKey: Uint8Array;  // PKCS#8 DER
}

export interface NodeIdentityClaims {
  nodeId: string;
  peerId: string;
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

export async function generateEcKeyPair(): Promise<KeyPairDer> {
  const keys = await crypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
  return {
    publicKeySpki: new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey)),
    privateKeyPkcs8: new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

export async function createClusterCa(now: Date): Promise<ClusterCa> {
  const keys = await crypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=weft cluster CA ${randomBytes(4).toString('hex')}, O=weft`,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + CA_LIFETIME_DAYS * DAY_MS),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificate: new Uint8Array(cert.rawData),
    privateKey: new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

export interface IssueRequest extends NodeIdentityClaims {
  publicKeySpki: Uint8Array;
  ip: string;
}

export async function issueNodeCertificate(ca: ClusterCa, request: IssueRequest, now: Date): Promise<Uint8Array> {
  const caCert = new x509.X509Certificate(ca.certificate);
  const signingKey = await crypto.subtle.importKey('pkcs8', ca.privateKey, EC_ALGORITHM, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('spki', request.publicKeySpki, EC_ALGORITHM, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${request.nodeId}, O=weft`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + NODE_LIFETIME_DAYS * DAY_MS),
    publicKey,
    signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      // Server and client auth: the same certificate serves admission and any mTLS API.
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: NODE_URI_PREFIX + request.nodeId },
        { type: 'url', value: PEER_URI_PREFIX + request.peerId },
        // Clients dial members by IP and override the expected name to localhost
        // (gRPC's ssl_target_name_override), so every node certificate carries it.
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: request.ip },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(await caCert.publicKey.export()),
    ],
  });
  return new Uint8Array(cert.rawData);
}

/** Verifies a node certificate against the CA and returns the identities it binds. */
export async function verifyNodeCertificate(certificateDer: Uint8Array, caDer: Uint8Array, now: Date): Promise<NodeIdentityClaims> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certificateDer);
  } catch {
    throw new CertificateError('node certificate is not valid DER');
  }
  const ca = new x509.X509Certificate(caDer);
  const signedByCa = await cert.verify({ publicKey: ca.publicKey, date: now, signatureOnly: false }).catch(() => false);
  if (!signedByCa) throw new CertificateError('node certificate is not signed by the cluster CA or is outside its validity period');
  return claimsOf(cert);
}

function claimsOf(cert: x509.X509Certificate): NodeIdentityClaims {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  const nodeId = uris.find((u) => u.startsWith(NODE_URI_PREFIX))?.slice(NODE_URI_PREFIX.length);
  const peerId = uris.find((u) => u.startsWith(PEER_URI_PREFIX))?.slice(PEER_URI_PREFIX.length);
  if (!nodeId || !peerId) throw new CertificateError('node certificate lacks the weft node and peer identities');
  return { nodeId, peerId };
}

export function toPem(der: Uint8Array, label: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function serial(): string {
  // Positive 128-bit serial: clear the top bit so DER keeps it unsigned.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}
