// SPDX-License-Identifier: GPL-2.0
/*
 * lpt_stall under another name. Before 5.18 a forced enable pins lpt_stall's
 * module for good; the forced disable after it needs a patch of
 * lpt_holder_wait that can still be loaded.
 */
#include "lpt_stall.c"
