// The fields of a core/v1 Pod the chart test reads, as the API server sends them.

export interface Pod {
  readonly metadata: {
    readonly name: string;
    readonly uid: string;
    readonly deletionTimestamp?: string;
  };
  readonly spec: {
    readonly nodeName?: string;
    readonly containers: readonly {
      readonly name: string;
      readonly env?: readonly { readonly name: string; readonly value?: string }[];
      readonly resources?: { readonly limits?: Readonly<Record<string, string>> };
    }[];
  };
  readonly status?: {
    readonly phase?: string;
    readonly qosClass?: string;
    readonly containerStatuses?: readonly {
      readonly name: string;
      readonly containerID?: string;
      readonly ready: boolean;
      readonly restartCount: number;
      readonly lastState?: { readonly terminated?: { readonly reason?: string } };
    }[];
  };
}
