// SPDX-License-Identifier: GPL-2.0
/*
 * An atomic-replace patch that carries no klp_state: the kernel refuses it
 * while a loaded patch declares a state (a cumulative patch must handle them all).
 */
#define LPT_REPLACE true
#include "lpt_cmdline_patch.h"
