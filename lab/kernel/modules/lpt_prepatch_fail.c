// SPDX-License-Identifier: GPL-2.0
/*
 * A patch whose pre-patch callback refuses (-EINVAL), as a vendor's patch
 * does when the node lacks what it checks for: module init fails, nothing is
 * patched, and the kernel logs which object's callback failed.
 */
#include <linux/livepatch.h>

static int lpt_pre_patch(struct klp_object *obj)
{
	return -EINVAL;
}

#define LPT_REPLACE false
#define LPT_PRE_PATCH lpt_pre_patch
#include "lpt_cmdline_patch.h"
