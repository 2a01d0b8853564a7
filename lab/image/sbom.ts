// The image's bill of materials, one per architecture, in CycloneDX 1.5 JSON:
// every Debian package and every npm package the build put into that image,
// from the lists the build itself used (apt's plan, package-lock.json's
// production packages, the Node package), each with its package URL and the
// hash its source was checked against. CycloneDX because its schema is
// published with the CycloneDX project's own npm library (the tests validate
// against it), package URLs and hashes are first-class fields, and trivy,
// grype and cosign's attestations read it.
import { createHash } from 'node:crypto';
import { SUITE_VERSION, type DebianPackage } from './debian.js';
import type { NodeBinary } from './node.js';
import type { Platform } from './platforms.js';
import type { NpmPackage } from './rootfs.js';

export interface SbomInput {
  /** repository:tag */
  readonly reference: string;
  readonly platform: Platform;
  /** This architecture's manifest digest: the BOM describes that image. */
  readonly manifestDigest: string;
  /** RFC 3339, the image's `created`. */
  readonly created: string;
  readonly operator: { readonly version: string; readonly license: string };
  readonly debian: readonly DebianPackage[];
  readonly node: NodeBinary;
  readonly npm: readonly NpmPackage[];
}

interface Hash {
  readonly alg: 'SHA-256' | 'SHA-512';
  readonly content: string;
}

interface Component {
  readonly type: 'application' | 'library' | 'operating-system';
  readonly 'bom-ref': string;
  readonly group?: string;
  readonly name: string;
  readonly version: string;
  readonly purl?: string;
  readonly hashes?: readonly Hash[];
  readonly licenses?: readonly ({ license: { id: string } } | { expression: string })[];
  readonly properties?: readonly { name: string; value: string }[];
}

/** A package URL's name or version part: percent-encoded, as the purl spec asks. */
const enc = (s: string): string => encodeURIComponent(s);

/** npm's integrity (`sha512-<base64>`) as CycloneDX's hex hash. */
function npmHash(integrity: string | undefined): Hash[] {
  const m = /^sha512-(.+)$/.exec(integrity ?? '');
  return m?.[1] ? [{ alg: 'SHA-512', content: Buffer.from(m[1], 'base64').toString('hex') }] : [];
}

/** One SPDX identifier as an id (the schema checks it against SPDX's list), anything else as an expression. */
function licenses(license: string | undefined): Component['licenses'] {
  if (!license) return undefined;
  return /^[A-Za-z0-9.+-]+$/.test(license)
    ? [{ license: { id: license } }]
    : [{ expression: license }];
}

function npmPurl(name: string, version: string): string {
  const at = name.startsWith('@') ? name.indexOf('/') : -1;
  const scope = at > 0 ? `${enc(name.slice(0, at))}/` : '';
  return `pkg:npm/${scope}${enc(name.slice(at + 1))}@${enc(version)}`;
}

function npmComponent(p: NpmPackage): Component {
  const at = p.name.startsWith('@') ? p.name.indexOf('/') : -1;
  return {
    type: 'library',
    // The same version can sit at two paths: the path makes each entry one of its own.
    'bom-ref': `npm:${p.path}`,
    ...(at > 0 ? { group: p.name.slice(0, at) } : {}),
    name: p.name.slice(at + 1),
    version: p.version,
    purl: npmPurl(p.name, p.version),
    hashes: npmHash(p.integrity),
    ...(p.license ? { licenses: licenses(p.license) } : {}),
    properties: [{ name: 'cdx:npm:package:path', value: `app/${p.path}` }],
  };
}

function debianComponent(p: DebianPackage): Component {
  const purl = `pkg:deb/debian/${enc(p.name)}@${enc(p.version)}?arch=${p.architecture}&distro=debian-${SUITE_VERSION}`;
  return {
    type: 'library',
    'bom-ref': purl,
    name: p.name,
    version: p.version,
    purl,
    hashes: [{ alg: 'SHA-256', content: p.sha256 }],
  };
}

/** A stable urn:uuid for the BOM of one manifest (a name-based UUID of its digest). */
function serialNumber(digest: string): string {
  const h = createHash('sha256').update(`livepatch-operator sbom ${digest}`).digest('hex');
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The BOM of one architecture's image, as a JSON value. */
export function imageSbom(i: SbomInput): unknown {
  const colon = i.reference.lastIndexOf(':');
  const repository = i.reference.slice(0, colon);
  const tag = i.reference.slice(colon + 1);
  const name = repository.slice(repository.lastIndexOf('/') + 1);
  const arch = i.platform.architecture;
  const operator: Component = {
    type: 'application',
    'bom-ref': 'livepatch-operator',
    name: 'livepatch-operator',
    version: i.operator.version,
    ...(licenses(i.operator.license) ? { licenses: licenses(i.operator.license) } : {}),
  };
  const node: Component = {
    type: 'application',
    'bom-ref': npmPurl(i.node.packageName, i.node.version),
    name: i.node.packageName,
    version: i.node.version,
    purl: npmPurl(i.node.packageName, i.node.version),
    hashes: npmHash(i.node.integrity),
    ...(licenses(i.node.license) ? { licenses: licenses(i.node.license) } : {}),
    properties: [{ name: 'livepatch-operator:file', value: 'usr/local/bin/node' }],
  };
  const os: Component = {
    type: 'operating-system',
    'bom-ref': 'debian',
    name: 'debian',
    version: SUITE_VERSION,
  };
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: serialNumber(i.manifestDigest),
    version: 1,
    metadata: {
      timestamp: i.created,
      tools: {
        components: [
          {
            type: 'application',
            name: 'livepatch-operator image build',
            version: i.operator.version,
          },
        ],
      },
      component: {
        type: 'container',
        'bom-ref': i.manifestDigest,
        name: repository,
        version: tag,
        purl:
          `pkg:oci/${enc(name)}@${enc(i.manifestDigest)}?arch=${arch}` +
          `&repository_url=${enc(repository)}&tag=${enc(tag)}`,
      },
    },
    components: [operator, node, os, ...i.debian.map(debianComponent), ...i.npm.map(npmComponent)],
  };
}
