// SPDX-License-Identifier: GPL-2.0
/*
 * A livepatch of lpt_holder_wait() in the lpt_holder module. While lpt_holder's
 * kthread sleeps in the old function, this patch's transition cannot finish:
 * the kthread is named as the blocking task, and only a reversal (or force)
 * ends the transition. The new function behaves like the old one.
 */
#include <linux/module.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/wait.h>

extern wait_queue_head_t lpt_holder_wq;
extern bool lpt_holder_hold;

static int lpt_stall_holder_wait(void)
{
	wait_event_idle(lpt_holder_wq, !READ_ONCE(lpt_holder_hold) || kthread_should_stop());
	return 0;
}

static struct klp_func lpt_funcs[] = {
	{ .old_name = "lpt_holder_wait", .new_func = lpt_stall_holder_wait },
	{}
};

static struct klp_object lpt_objs[] = {
	{ .name = "lpt_holder", .funcs = lpt_funcs },
	{}
};

static struct klp_patch lpt_patch = {
	.mod = THIS_MODULE,
	.objs = lpt_objs,
};

static int __init lpt_stall_init(void)
{
	return klp_enable_patch(&lpt_patch);
}

static void __exit lpt_stall_exit(void)
{
}

module_init(lpt_stall_init);
module_exit(lpt_stall_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatch-operator test: patches lpt_holder_wait, which a kthread sleeps in");
MODULE_INFO(livepatch, "Y");
