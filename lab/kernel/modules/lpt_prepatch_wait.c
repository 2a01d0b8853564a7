// SPDX-License-Identifier: GPL-2.0
/*
 * A patch whose pre-patch callback waits while lpt_holder's "hold" parameter
 * is 1: insmod does not return (module init blocks in klp_enable_patch) until
 * the test writes 0, so a test can outlast the agent's insmod timeout and
 * still release the kernel afterwards.
 */
#include <linux/livepatch.h>
#include <linux/wait.h>

extern wait_queue_head_t lpt_holder_wq;
extern bool lpt_holder_hold;

static int lpt_pre_patch(struct klp_object *obj)
{
	wait_event_idle(lpt_holder_wq, !READ_ONCE(lpt_holder_hold));
	return 0;
}

#define LPT_REPLACE false
#define LPT_PRE_PATCH lpt_pre_patch
#include "lpt_cmdline_patch.h"
