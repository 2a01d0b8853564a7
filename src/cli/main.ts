#!/usr/bin/env node
// `livepatch-operator <command>` as the image runs it: the controller, the
// agent and sim-module. A checkout's lab/cli/main.ts adds the lab's commands.
import { PRODUCT_COMMANDS, runCommandLine } from './commands.js';

runCommandLine(PRODUCT_COMMANDS);
