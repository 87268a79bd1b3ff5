/* cmd_policies.c: `raasbench policies [NAME] [--names] [--all] [--except a,b]`: every
 * registered policy (or one) with its summary, flags and parameters (type, default, range or
 * choices, help), so users can see what --param accepts without reading the source.
 * `--names` prints only the names, one a line: the list scripts take policies from (the
 * registry is the only list); `--except` leaves named ones out and refuses a name that is
 * not registered. Internal policies (POLICY_INTERNAL: run by the engine itself) are left out
 * unless --all or asked for by name. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "policy.h"

static void print_policy(const policy_ops *ops) {
    printf("%s\n  %s\n", ops->name, ops->summary);
    if (ops->flags & POLICY_INTERNAL)
        printf("  internal: the engine runs it itself; not a choice for a run\n");
    if (ops->flags & POLICY_PAGED) printf("  budget counts whole pages: needs L >= 2P\n");
    if (ops->flags & POLICY_KEEPS_ALL)
        printf("  keeps every token resident: L bounds what is attended, not memory\n");
    if (ops->flags & POLICY_PINS_PROMPT)
        printf("  never evicts a prompt token: a prompt over the budget stays resident\n");
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

/* Is ops one of the names in out[0..n)? */
static int named(const policy_ops *ops, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ops->name, names[i])) return 1;
    return 0;
}

int cmd_policies(int argc, char **argv) {
    static const char usage[] =
        "[NAME] [--names] [--all] [--except a,b]\n\nLists every policy (or the one named) with "
        "its parameters. Set a parameter on replay, sweep or decode with --param "
        "NAME.KEY=VALUE (e.g. --param raas.r=0.3). Scripts take their policies from "
        "`raasbench policies --names` (one a line), leaving some out with --except.";
    int names = 0, all = 0;
    const char *except = NULL;
    const arg_spec specs[] = {
        {"names", ARG_FLAG, &names, NULL, "only the names, one a line (for scripts)"},
        {"all", ARG_FLAG, &all, NULL, "also the internal policies the engine runs itself"},
        {"except", ARG_STR, &except, "a,b", "leave these registered policies out"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("policies", usage, specs, argc, argv, pos, 1, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    char *storage = NULL;
    const char *left_out[64];
    int n_left_out = 0;
    if (except && args_name_list("--except", except, &storage, left_out, 64, &n_left_out, &e)) {
        free(storage);
        return rb_err_print(&e);
    }
    /* An exclusion must name a registered policy, so a typo or a renamed policy is caught
     * instead of silently keeping it in. */
    for (int i = 0; i < n_left_out; i++)
        if (!policy_find(left_out[i], &e)) {
            free(storage);
            return rb_err_print(&e);
        }
    int n = 1;
    const policy_ops *one = NULL, *const *list = &one;
    if (n_pos == 1) {
        one = policy_find(pos[0], &e);
        if (!one) {
            free(storage);
            return rb_err_print(&e);
        }
    } else {
        list = policy_list(&n);
    }
    int hidden = 0;
    for (int i = 0; i < n; i++) {
        if (named(list[i], left_out, n_left_out)) continue;
        if ((list[i]->flags & POLICY_INTERNAL) && !all && n_pos == 0) {
            hidden++;
            continue;
        }
        if (names)
            printf("%s\n", list[i]->name);
        else
            print_policy(list[i]);
    }
    if (hidden && !names)
        printf("(%d internal %s, run by the engine itself: raasbench policies --all)\n", hidden,
               hidden == 1 ? "policy" : "policies");
    free(storage);
    return 0;
}
