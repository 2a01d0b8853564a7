// Admission policies that ship with the CRDs: checks that only warn, for
// what the schema must allow but a person should hear about at apply time.
import { GROUP, LIVEPATCH, VERSION } from './constants.js';

/** The kernel signals the tasks still blocking a transition 15 s in; a timeout shorter than this reverses too early. */
export const STALL_TIMEOUT_WARN_BELOW = '20s';

const STALL_POLICY = `${GROUP}-stall-timeout`;

export interface AdmissionObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string };
  readonly spec: Record<string, unknown>;
}

/** A Warn-only ValidatingAdmissionPolicy and its binding: short stall timeouts stay allowed (simulated fleets). */
export function admissionPolicies(): AdmissionObject[] {
  const timeout = 'object.spec.stall.timeout';
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: STALL_POLICY },
      spec: {
        failurePolicy: 'Ignore',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [GROUP],
              apiVersions: [VERSION],
              operations: ['CREATE', 'UPDATE'],
              resources: [LIVEPATCH.plural],
            },
          ],
        },
        validations: [
          {
            expression: `!has(object.spec.stall) || !has(${timeout}) || duration(${timeout}) >= duration('${STALL_TIMEOUT_WARN_BELOW}')`,
            messageExpression:
              `'spec.stall.timeout ' + ${timeout} + ' is under ${STALL_TIMEOUT_WARN_BELOW}: the kernel signals the tasks ` +
              'that block a transition only 15s after it starts, so real nodes would reverse transitions that were about ' +
              "to finish. Use 60s or more on real kernels; short timeouts suit simulated fleets.'",
            reason: 'Invalid',
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: STALL_POLICY },
      spec: { policyName: STALL_POLICY, validationActions: ['Warn'] },
    },
  ];
}
