// SPDX-License-Identifier: GPL-2.0
/*
 * Not a livepatch: a kthread that sleeps uninterruptibly (TASK_IDLE, so the
 * hung-task detector leaves it alone and the kernel's fake signal cannot wake
 * it) inside lpt_holder_wait() while the "hold" parameter is 1. A livepatch of
 * that function (lpt_stall) cannot finish its transition while it sleeps there:
 * a deterministic stall, released by writing 0 to
 * /sys/module/lpt_holder/parameters/hold.
 */
#include <linux/module.h>
#include <linux/kthread.h>
#include <linux/wait.h>

DECLARE_WAIT_QUEUE_HEAD(lpt_holder_wq);
EXPORT_SYMBOL_GPL(lpt_holder_wq);
bool lpt_holder_hold = true;
EXPORT_SYMBOL_GPL(lpt_holder_hold);
static struct task_struct *lpt_thread;

int lpt_holder_wait(void);

/* noinline: it must stay a function of its own, on the kthread's stack. */
noinline int lpt_holder_wait(void)
{
	wait_event_idle(lpt_holder_wq, !READ_ONCE(lpt_holder_hold) || kthread_should_stop());
	return 0;
}

static int lpt_holder_fn(void *unused)
{
	while (!kthread_should_stop()) {
		lpt_holder_wait();
		/* Released: wait outside lpt_holder_wait until held again. */
		wait_event_idle(lpt_holder_wq, READ_ONCE(lpt_holder_hold) || kthread_should_stop());
	}
	return 0;
}

static int lpt_hold_set(const char *val, const struct kernel_param *kp)
{
	int ret = param_set_bool(val, kp);

	wake_up_all(&lpt_holder_wq);
	return ret;
}

static const struct kernel_param_ops lpt_hold_ops = {
	.set = lpt_hold_set,
	.get = param_get_bool,
};
module_param_cb(hold, &lpt_hold_ops, &lpt_holder_hold, 0644);
MODULE_PARM_DESC(hold, "1: the kthread sleeps in lpt_holder_wait; 0: it leaves");

static int __init lpt_holder_init(void)
{
	lpt_thread = kthread_run(lpt_holder_fn, NULL, "lpt_holder");
	return PTR_ERR_OR_ZERO(lpt_thread);
}

static void __exit lpt_holder_exit(void)
{
	kthread_stop(lpt_thread);
}

module_init(lpt_holder_init);
module_exit(lpt_holder_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatch-operator test: a kthread asleep in a patchable function");
