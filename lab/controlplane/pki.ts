// Certificates for the local control plane: one CA that signs the API
// server's serving certificate and the admin's client certificate, plus the
// service-account signing key. ECDSA P-256 keeps generation instant.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export interface Pem {
  readonly cert: string;
  readonly key: string;
}

export interface ControlPlanePki {
  readonly ca: Pem;
  readonly serving: Pem;
  readonly admin: Pem;
  readonly serviceAccount: { readonly publicKey: string; readonly privateKey: string };
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const VALIDITY_MS = 7 * 24 * 3600 * 1000;

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

async function keyPair(): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

function pem(label: string, der: ArrayBuffer): string {
  const body = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd();
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

function validity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - 3600_000), notAfter: new Date(now + VALIDITY_MS) };
}

interface Leaf {
  readonly subject: string;
  readonly usage: x509.ExtendedKeyUsage;
  readonly sans?: x509.JsonGeneralNames;
}

async function issue(caCert: x509.X509Certificate, caKey: CryptoKey, leaf: Leaf): Promise<Pem> {
  const keys = await keyPair();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([leaf.usage]),
  ];
  if (leaf.sans) extensions.push(new x509.SubjectAlternativeNameExtension(leaf.sans));
  const cert = await x509.X509CertificateGenerator.create({
    subject: leaf.subject,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALGORITHM,
    extensions,
    ...validity(),
  });
  return { cert: cert.toString('pem') + '\n', key: await privateKeyPem(keys.privateKey) };
}

/** A client certificate signed by the cluster's CA: CN is the user, each O a group. */
export async function issueClientCertificate(
  pki: ControlPlanePki,
  user: string,
  groups: readonly string[] = [],
): Promise<Pem> {
  const caCert = new x509.X509Certificate(pki.ca.cert);
  const caKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(pki.ca.key),
    ALGORITHM,
    false,
    ['sign'],
  );
  const subject = [`CN=${user}`, ...groups.map((g) => `O=${g}`)].join(', ');
  return issue(caCert, caKey, { subject, usage: x509.ExtendedKeyUsage.clientAuth });
}

/** `extraSans`: more IP addresses the API server is reached at (a service VIP, say). */
export async function createControlPlanePki(
  extraSans: readonly string[] = [],
): Promise<ControlPlanePki> {
  const caKeys = await keyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=livepatch-local-ca',
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
    ],
    ...validity(),
  });
  const serving = await issue(caCert, caKeys.privateKey, {
    subject: 'CN=kube-apiserver',
    usage: x509.ExtendedKeyUsage.serverAuth,
    sans: [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
      ...extraSans.map((value) => ({ type: 'ip' as const, value })),
    ],
  });
  // system:masters is what kubeadm's admin.conf uses: full access through RBAC's bootstrap roles.
  const admin = await issue(caCert, caKeys.privateKey, {
    subject: 'CN=livepatch-admin, O=system:masters',
    usage: x509.ExtendedKeyUsage.clientAuth,
  });
  const saKeys = await keyPair();
  return {
    ca: { cert: caCert.toString('pem') + '\n', key: await privateKeyPem(caKeys.privateKey) },
    serving,
    admin,
    serviceAccount: {
      publicKey: pem('PUBLIC KEY', await webcrypto.subtle.exportKey('spki', saKeys.publicKey)),
      privateKey: await privateKeyPem(saKeys.privateKey),
    },
  };
}
