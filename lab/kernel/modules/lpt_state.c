// SPDX-License-Identifier: GPL-2.0
/* A stacked patch that declares system state 1 at version 2 (klp_state). */
#define LPT_REPLACE false
#define LPT_STATE_VERSION 2
#include "lpt_cmdline_patch.h"
