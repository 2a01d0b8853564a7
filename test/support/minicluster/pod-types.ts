// The fields of a core/v1 Pod the test kubelet reads, as the API server sends them.

export interface FieldRef {
  readonly fieldPath: string;
}

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: { readonly fieldRef?: FieldRef } & Record<string, unknown>;
}

export interface HttpProbe {
  readonly httpGet?: { readonly path?: string; readonly port: number | string };
  readonly periodSeconds?: number;
  readonly timeoutSeconds?: number;
  readonly failureThreshold?: number;
  readonly initialDelaySeconds?: number;
}

export interface VolumeMount {
  readonly name: string;
  readonly mountPath: string;
  readonly readOnly?: boolean;
}

export interface SecurityContext {
  readonly runAsUser?: number;
  readonly runAsGroup?: number;
  readonly runAsNonRoot?: boolean;
  readonly readOnlyRootFilesystem?: boolean;
  readonly allowPrivilegeEscalation?: boolean;
  readonly privileged?: boolean;
}

export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command?: string[];
  readonly args?: string[];
  readonly env?: EnvVar[];
  readonly ports?: { readonly name?: string; readonly containerPort: number }[];
  readonly volumeMounts?: VolumeMount[];
  readonly startupProbe?: HttpProbe;
  readonly livenessProbe?: HttpProbe;
  readonly readinessProbe?: HttpProbe;
  readonly securityContext?: SecurityContext;
}

export interface KeyToPath {
  readonly key: string;
  readonly path: string;
}

export interface ProjectedSource {
  readonly serviceAccountToken?: {
    readonly path: string;
    readonly audience?: string;
    readonly expirationSeconds?: number;
  };
  readonly configMap?: { readonly name: string; readonly items?: KeyToPath[] };
  readonly downwardAPI?: {
    readonly items?: { readonly path: string; readonly fieldRef?: FieldRef }[];
  };
}

export interface Volume {
  readonly name: string;
  readonly emptyDir?: Record<string, unknown>;
  readonly hostPath?: { readonly path: string };
  readonly projected?: { readonly sources: ProjectedSource[] };
}

export interface Pod {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly deletionTimestamp?: string;
    readonly deletionGracePeriodSeconds?: number;
    readonly resourceVersion?: string;
  };
  readonly spec: {
    readonly nodeName?: string;
    readonly serviceAccountName?: string;
    readonly containers: Container[];
    readonly volumes?: Volume[];
    readonly hostPID?: boolean;
    readonly hostNetwork?: boolean;
    readonly securityContext?: SecurityContext;
    readonly terminationGracePeriodSeconds?: number;
  };
  readonly status?: { readonly phase?: string };
}
