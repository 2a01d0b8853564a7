// SPDX-License-Identifier: GPL-2.0
/*
 * Not a livepatch: a kthread that sleeps interruptibly inside
 * lpt_sleeper_wait() while the "hold" parameter is 1. Nothing wakes it but the
 * livepatch transition's fake signal (about 15 s into a transition it blocks,
 * the kernel wakes such kthreads) or a write of 0 to "hold". Woken, it returns
 * from lpt_sleeper_wait() and rests outside it for 2 s, so the transition's
 * next try (every second) finds it off the function and switches it; then it
 * goes back in, now running whichever code is current. A livepatch of the
 * function (lpt_signal) thus completes only after the fake signal.
 */
#include <linux/module.h>
#include <linux/kthread.h>
#include <linux/sched.h>
#include <linux/wait.h>

DECLARE_WAIT_QUEUE_HEAD(lpt_sleeper_wq);
bool lpt_sleeper_hold = true;
EXPORT_SYMBOL_GPL(lpt_sleeper_hold);
static struct task_struct *lpt_thread;

int lpt_sleeper_wait(void);

/*
 * noinline: it must stay a function of its own, on the kthread's stack. One
 * interruptible sleep, not wait_event_interruptible(): that loops back to sleep
 * on a wake-up without a pending signal, which is all a kthread gets.
 */
noinline int lpt_sleeper_wait(void)
{
	set_current_state(TASK_INTERRUPTIBLE);
	if (READ_ONCE(lpt_sleeper_hold) && !kthread_should_stop())
		schedule();
	__set_current_state(TASK_RUNNING);
	return 0;
}

static int lpt_sleeper_fn(void *unused)
{
	while (!kthread_should_stop()) {
		lpt_sleeper_wait();
		wait_event_idle_timeout(lpt_sleeper_wq, kthread_should_stop(), 2 * HZ);
		/* Released: wait outside lpt_sleeper_wait until held again. */
		wait_event_idle(lpt_sleeper_wq, READ_ONCE(lpt_sleeper_hold) || kthread_should_stop());
	}
	return 0;
}

static int lpt_hold_set(const char *val, const struct kernel_param *kp)
{
	int ret = param_set_bool(val, kp);

	wake_up_all(&lpt_sleeper_wq);
	if (lpt_thread) /* not yet started when set on insmod's command line */
		wake_up_process(lpt_thread);
	return ret;
}

static const struct kernel_param_ops lpt_hold_ops = {
	.set = lpt_hold_set,
	.get = param_get_bool,
};
module_param_cb(hold, &lpt_hold_ops, &lpt_sleeper_hold, 0644);
MODULE_PARM_DESC(hold, "1: the kthread sleeps interruptibly in lpt_sleeper_wait; 0: it leaves");

static int __init lpt_sleeper_init(void)
{
	lpt_thread = kthread_run(lpt_sleeper_fn, NULL, "lpt_sleeper");
	return PTR_ERR_OR_ZERO(lpt_thread);
}

static void __exit lpt_sleeper_exit(void)
{
	kthread_stop(lpt_thread);
}

module_init(lpt_sleeper_init);
module_exit(lpt_sleeper_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatch-operator test: a kthread asleep interruptibly in a patchable function");
