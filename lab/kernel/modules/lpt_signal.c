// SPDX-License-Identifier: GPL-2.0
/*
 * A livepatch of lpt_sleeper_wait() in the lpt_sleeper module. lpt_sleeper's
 * kthread sleeps interruptibly in the old function, so this patch's transition
 * completes only once the kernel's fake signal has woken it. The new function
 * behaves like the old one.
 */
#include <linux/module.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/sched.h>

extern bool lpt_sleeper_hold;

static int lpt_signal_sleeper_wait(void)
{
	set_current_state(TASK_INTERRUPTIBLE);
	if (READ_ONCE(lpt_sleeper_hold) && !kthread_should_stop())
		schedule();
	__set_current_state(TASK_RUNNING);
	return 0;
}

static struct klp_func lpt_funcs[] = {
	{ .old_name = "lpt_sleeper_wait", .new_func = lpt_signal_sleeper_wait },
	{}
};

static struct klp_object lpt_objs[] = {
	{ .name = "lpt_sleeper", .funcs = lpt_funcs },
	{}
};

static struct klp_patch lpt_patch = {
	.mod = THIS_MODULE,
	.objs = lpt_objs,
};

static int __init lpt_signal_init(void)
{
	return klp_enable_patch(&lpt_patch);
}

static void __exit lpt_signal_exit(void)
{
}

module_init(lpt_signal_init);
module_exit(lpt_signal_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatch-operator test: patches lpt_sleeper_wait, which a kthread sleeps in interruptibly");
MODULE_INFO(livepatch, "Y");
