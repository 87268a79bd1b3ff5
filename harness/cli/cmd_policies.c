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
    if (ops->flags & POLICY_NEEDS_DENSE) printf("  reads the dense attention (a ceiling)\n");
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

int cmd_policies(int argc, char **argv) {
    static const char usage[] =
        "[NAME]\n\nLists every policy (or the one named) with its parameters. Set a parameter "
        "on replay, sweep or decode with --param NAME.KEY=VALUE (e.g. --param raas.r=0.3).";
    const arg_spec specs[] = {{NULL, 0, NULL, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("policies", usage, specs, argc, argv, pos, 1, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
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
