// SPDX-License-Identifier: GPL-2.0
/* A module name with upper-case letters, as kpatch-build keeps a patch file's case. */
#define LPT_REPLACE false
#include "lpt_cmdline_patch.h"
