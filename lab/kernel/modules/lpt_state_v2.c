// SPDX-License-Identifier: GPL-2.0
/* An atomic-replace patch with state 1 at version 2, as lpt_state has: accepted. */
#define LPT_REPLACE true
#define LPT_STATE_VERSION 2
#include "lpt_cmdline_patch.h"
