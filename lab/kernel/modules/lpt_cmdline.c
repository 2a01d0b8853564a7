// SPDX-License-Identifier: GPL-2.0
/* The plain build: stacks on top of other patches. */
#define LPT_REPLACE false
#include "lpt_cmdline_patch.h"
