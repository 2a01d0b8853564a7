#!/usr/bin/env node
// `livepatch-operator <command>` in a checkout (package.json's bin and the npm
// scripts): the product's commands plus the lab's, which need the local control
// plane, the fleet simulator or the VM harness and so never enter the image.
import { PRODUCT_COMMANDS, runCommandLine } from '../../src/cli/commands.js';

runCommandLine({
  cluster: {
    summary: 'start a local kube-apiserver + etcd with the CRDs installed; prints KUBECONFIG=…',
    run: async (args) => (await import('./cluster.js')).runCluster(args),
  },
  demo: {
    summary: 'the local demo: control plane, controller, simulated fleet, live rollouts',
    run: async (args) => (await import('./demo.js')).runDemo(args),
  },
  ...PRODUCT_COMMANDS,
  fleet: {
    summary: 'a simulated fleet: N Nodes, one agent each, simulator backend',
    run: async (args) => (await import('./fleet.js')).runFleet(args),
  },
});
