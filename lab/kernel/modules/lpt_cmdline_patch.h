/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A livepatch of an observable vmlinux function: with it, /proc/cmdline reads
 * "livepatch-test:<module name>", so a test sees whose code runs. Included by
 * lpt_cmdline.c and lpt_cmdline_v2.c, which differ only in LPT_REPLACE, and
 * by the modules that add a klp_state (LPT_STATE_VERSION) or a pre-patch
 * callback (LPT_PRE_PATCH) to the same patch.
 */
#include <linux/module.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

static int lpt_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "livepatch-test:%s\n", KBUILD_MODNAME);
	return 0;
}

static struct klp_func lpt_funcs[] = {
	{ .old_name = "cmdline_proc_show", .new_func = lpt_cmdline_proc_show },
	{}
};

static struct klp_object lpt_objs[] = {
	{
		/* no name: vmlinux */
		.funcs = lpt_funcs,
#ifdef LPT_PRE_PATCH
		.callbacks = { .pre_patch = LPT_PRE_PATCH },
#endif
	},
	{}
};

#ifdef LPT_STATE_VERSION
/* One system state, id 1, at the version the including module declares. */
static struct klp_state lpt_states[] = {
	{ .id = 1, .version = LPT_STATE_VERSION },
	{}
};
#endif

static struct klp_patch lpt_patch = {
	.mod = THIS_MODULE,
	.objs = lpt_objs,
	.replace = LPT_REPLACE,
#ifdef LPT_STATE_VERSION
	.states = lpt_states,
#endif
};

static int __init lpt_init(void)
{
	return klp_enable_patch(&lpt_patch);
}

static void __exit lpt_exit(void)
{
}

module_init(lpt_init);
module_exit(lpt_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatch-operator test: patches cmdline_proc_show");
MODULE_INFO(livepatch, "Y");
