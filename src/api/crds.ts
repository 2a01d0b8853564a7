// The two CustomResourceDefinitions, built from the schemas in ./schema.
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import type { IJSONSchemaProps } from 'kubernetes-models/apiextensions.k8s.io/v1/JSONSchemaProps';
import { CATEGORY, GROUP, LIVEPATCH, LIVEPATCH_NODE, VERSION } from './constants.js';
import type { Schema } from './schema/dsl.js';
import { livePatchSchema } from './schema/livepatch.js';
import { livePatchNodeSchema } from './schema/livepatchnode.js';

interface Column {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'date';
  readonly jsonPath: string;
  readonly description: string;
  readonly priority?: number;
}

interface Names {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly listKind: string;
}

function crd(names: Names, schema: Schema, columns: readonly Column[]): CustomResourceDefinition {
  const definition = new CustomResourceDefinition({
    metadata: { name: `${names.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Cluster',
      names: { ...names, shortNames: [...names.shortNames], categories: [CATEGORY] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          // Our Schema is a strict subset of JSONSchemaProps.
          schema: { openAPIV3Schema: schema as IJSONSchemaProps },
          subresources: { status: {} },
          additionalPrinterColumns: columns.map((c) => ({ ...c })),
        },
      ],
    },
  });
  definition.validate();
  return definition;
}

const age: Column = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};

export function livePatchCrd(): CustomResourceDefinition {
  return crd(LIVEPATCH, livePatchSchema, [
    {
      name: 'State',
      type: 'string',
      jsonPath: '.spec.state',
      description: 'Desired fleet-wide state.',
    },
    {
      name: 'Phase',
      type: 'string',
      jsonPath: '.status.phase',
      description: 'Where the rollout is.',
    },
    {
      name: 'Patched',
      type: 'string',
      jsonPath: '.status.summary',
      description: 'Patched/targeted nodes.',
    },
    {
      name: 'Transitioning',
      type: 'integer',
      jsonPath: '.status.nodes.transitioning',
      description: 'Nodes in transition.',
    },
    {
      name: 'Stalled',
      type: 'integer',
      jsonPath: '.status.nodes.stalled',
      description: 'Stalled nodes.',
    },
    {
      name: 'Failed',
      type: 'integer',
      jsonPath: '.status.nodes.failed',
      description: 'Failed nodes.',
    },
    age,
  ]);
}

export function livePatchNodeCrd(): CustomResourceDefinition {
  return crd(LIVEPATCH_NODE, livePatchNodeSchema, [
    {
      name: 'Kernel',
      type: 'string',
      jsonPath: '.status.kernelRelease',
      description: 'uname -r of the node.',
    },
    {
      name: 'Backend',
      type: 'string',
      jsonPath: '.status.backend',
      description: 'sysfs or simulator.',
    },
    {
      name: 'Patched',
      type: 'integer',
      jsonPath: '.status.patchedCount',
      description: 'Managed patches fully applied.',
    },
    {
      name: 'Transition',
      type: 'string',
      jsonPath: '.status.transitioning',
      description: 'Patch in transition, if any.',
    },
    age,
  ]);
}

export function allCrds(): CustomResourceDefinition[] {
  return [livePatchCrd(), livePatchNodeCrd()];
}
