// SPDX-License-Identifier: GPL-2.0
/* An atomic-replace patch with state 1 at version 1: lower than lpt_state's 2, refused. */
#define LPT_REPLACE true
#define LPT_STATE_VERSION 1
#include "lpt_cmdline_patch.h"
