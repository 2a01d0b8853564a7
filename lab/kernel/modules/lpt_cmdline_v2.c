// SPDX-License-Identifier: GPL-2.0
/* The cumulative build: atomic replace, superseding every patch loaded before it. */
#define LPT_REPLACE true
#include "lpt_cmdline_patch.h"
