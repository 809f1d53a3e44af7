import test from 'ava';
import { createClusterCa, generateEcKeyPair, issueNodeCertificate, verifyNodeCertificate, CertificateError } from '../../controlplane/security/certificates.ts';

const now = new Date();

test('a node certificate binds node ID and peer ID and verifies against its CA', async (t) => {
  const ca = await createClusterCa(now);
  const keys = await generateEcKeyPair();
  const cert = await issueNodeCertificate(ca, { nodeId: 'a'.repeat(32), peerId: '12D3KooWtest', publicKeySpki: keys.publicKeySpki, ip: '198.18.0.9' }, now);
  t.deepEqual(await verifyNodeCertificate(cert, ca.certificate, now), { nodeId: 'a'.repeat(32), peerId: '12D3KooWtest' });
});

test('a certificate from another cluster CA is refused', async (t) => {
  const ca = await createClusterCa(now);
  const other = await createClusterCa(now);
  const keys = await generateEcKeyPair();
  const cert = await issueNodeCertificate(other, { nodeId: 'b'.repeat(32), peerId: 'p', publicKeySpki: keys.publicKeySpki, ip: '198.18.0.9' }, now);
  await t.throwsAsync(verifyNodeCertificate(cert, ca.certificate, now), { instanceOf: CertificateError, message: /not signed by the cluster CA/ });
});

test('an expired certificate is refused', async (t) => {
  const ca = await createClusterCa(now);
  const keys = await generateEcKeyPair();
  const cert = await issueNodeCertificate(ca, { nodeId: 'c'.repeat(32), peerId: 'p', publicKeySpki: keys.publicKeySpki, ip: '198.18.0.9' }, now);
  const farFuture = new Date(now.getTime() + 11 * 365 * 86_400_000);
  await t.throwsAsync(verifyNodeCertificate(cert, ca.certificate, farFuture), { instanceOf: CertificateError });
});

test('garbage is not a certificate', async (t) => {
  const ca = await createClusterCa(now);
  await t.throwsAsync(verifyNodeCertificate(new Uint8Array([0x30, 0x03, 1, 2, 3]), ca.certificate, now), { instanceOf: CertificateError, message: /not valid DER/ });
});

test('a CA certificate is self-signed and marked as a CA', async (t) => {
  const { X509Certificate, BasicConstraintsExtension } = await import('@peculiar/x509');
  const ca = await createClusterCa(now);
  const cert = new X509Certificate(ca.certificate);
  t.true(await cert.isSelfSigned());
  t.true(cert.getExtension(BasicConstraintsExtension)?.ca);
});
