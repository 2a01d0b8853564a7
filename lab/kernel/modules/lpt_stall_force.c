// SPDX-License-Identifier: GPL-2.0
/*
 * lpt_stall under a third name, for the force scenario that runs after the
 * forced ones have pinned lpt_stall and lpt_stall_twin.
 */
#include "lpt_stall.c"
