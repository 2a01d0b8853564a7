// The architectures the image is built for, each under the names its sources
// use: OCI's platform (the index and the config), Debian's architecture (the
// packages) and Node's (the `node-linux-*` package on npm).

export interface Platform {
  /** OCI and Debian agree on these names. */
  readonly architecture: 'amd64' | 'arm64';
  /** OCI's variant: arm64 images are v8, as containerd and docker match them. */
  readonly variant?: string;
  /** process.arch's name, which Node's npm packages carry. */
  readonly nodeArch: 'x64' | 'arm64';
}

export const PLATFORMS: readonly Platform[] = [
  { architecture: 'amd64', nodeArch: 'x64' },
  { architecture: 'arm64', variant: 'v8', nodeArch: 'arm64' },
];

/** The platform of an architecture name, or an error naming the ones there are. */
export function platformOf(architecture: string): Platform {
  const found = PLATFORMS.find((p) => p.architecture === architecture);
  if (!found)
    throw new Error(
      `no image for ${architecture}: the image is built for ${PLATFORMS.map((p) => p.architecture).join(', ')}`,
    );
  return found;
}

/** The platform of the machine this runs on; amd64 on any other (docker load's usual default). */
export function hostPlatform(): Platform {
  return PLATFORMS.find((p) => p.nodeArch === process.arch) ?? platformOf('amd64');
}
