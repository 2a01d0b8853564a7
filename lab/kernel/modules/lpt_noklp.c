// SPDX-License-Identifier: GPL-2.0
/*
 * Marked a livepatch (livepatch=Y) but its init returns 0 without calling
 * klp_enable_patch: it loads, and no /sys/kernel/livepatch directory appears.
 */
#include <linux/module.h>

static int __init lpt_noklp_init(void)
{
	return 0;
}

static void __exit lpt_noklp_exit(void)
{
}

module_init(lpt_noklp_init);
module_exit(lpt_noklp_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("livepatch-operator test: livepatch=Y without klp_enable_patch");
MODULE_INFO(livepatch, "Y");
