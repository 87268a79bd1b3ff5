/* cmd_policies.c: `raasbench policies [NAME]`: every registered policy (or one) with its
 * summary, flags and parameters (type, default, range or choices, help), so users can see
 * what --param accepts without reading the source. */
#include <string.h>

#include "args.h"
#include "commands.h"
#include "policy.h"

static void print_policy(const policy_ops *ops) {
    printf("%s\n  %s\n", ops->name, ops->summary);
    if (ops->flags & POLICY_PAGED) printf("  budget counts whole pages: needs L >= 2P\n");
    if (ops->flags & POLICY_NEEDS_DENSE) printf("  reads the dense attention\n");
    if (ops->flags & POLICY_KEEPS_ALL) printf("  keeps every token resident (memory O(N))\n");
    if (ops->flags & POLICY_BOUND) printf("  a bound to compare against, not a practical policy\n");
    if (ops->flags & POLICY_PINS_PROMPT)
        printf("  pins the prompt's pages: a prompt longer than L makes it hold more than L\n");
    if (ops->flags & POLICY_INTERNAL)
        printf("  internal: run by the engines where a layer needs it\n");
    if (!ops->params || !ops->params->key) {
        printf("  parameters: none\n\n");
        return;
    }
    printf("  parameters:\n");
    for (const policy_param_spec *sp = ops->params; sp->key; sp++) {
        char name[96], range[96];
        snprintf(name, sizeof name, "%s.%s", ops->name, sp->key);
        const char *type = sp->type == PARAM_INT ? "int" : sp->type == PARAM_FLOAT ? "float" : "choice";
        if (sp->type == PARAM_CHOICE)
            snprintf(range, sizeof range, "%s", sp->choices);
        else if (sp->type == PARAM_INT)
            snprintf(range, sizeof range, "[%.0f, %.0f]", sp->min, sp->max);
        else
            snprintf(range, sizeof range, "[%g, %g]", sp->min, sp->max);
        printf("    %-22s %-6s default %-9s %s\n", name, type, sp->def, range);
        printf("    %-22s %s\n", "", sp->help);
    }
    printf("\n");
}

/* --names: the names scripts and tests take, one a line, registry order; internal policies
 * never, bounds (oracle, random) unless --practical. */
static void print_names(int practical) {
    int n;
    const policy_ops *const *list = policy_list(&n);
    for (int i = 0; i < n; i++) {
        unsigned f = list[i]->flags;
        if ((f & POLICY_INTERNAL) || (practical && (f & POLICY_BOUND))) continue;
        printf("%s\n", list[i]->name);
    }
}

int cmd_policies(int argc, char **argv) {
    static const char usage[] =
        "[NAME] [--names [--practical]]\n\nLists every policy (or the one named) with its "
        "parameters. Set a parameter on replay, sweep or decode with --param NAME.KEY=VALUE "
        "(e.g. --param raas.r=0.3). --names prints the names a sweep may use, one a line.";
    int names = 0, practical = 0;
    const arg_spec specs[] = {
        {"names", ARG_FLAG, &names, NULL, "names only, one a line (internal policies omitted)"},
        {"practical", ARG_FLAG, &practical, NULL, "with --names: leave out the bounds (oracle, random)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("policies", usage, specs, argc, argv, pos, 1, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (practical && !names) {
        rb_fail(&e, RB_EINPUT, "--practical", "only with --names");
        return rb_err_print(&e);
    }
    if (names) {
        if (n_pos) {
            rb_fail(&e, RB_EINPUT, "--names", "takes no policy name");
            return rb_err_print(&e);
        }
        print_names(practical);
        return 0;
    }
    if (n_pos == 1) {
        const policy_ops *ops = policy_find(pos[0], &e);
        if (!ops) return rb_err_print(&e);
        print_policy(ops);
        return 0;
    }
    int n;
    const policy_ops *const *list = policy_list(&n);
    for (int i = 0; i < n; i++) print_policy(list[i]);
    return 0;
}
