# eval_budget.gp: graded task accuracy against the cache budget, one line per series (a
# policy, or policy-label for a variant such as raas-decode), with Wilson 95% intervals (the
# shape of the RaaS paper's RQ1). Left: against the nominal budget L; right: against the
# token slots each cell really held per KV head (mean over decode steps and the policy's
# layers), so a policy that holds more than L gets no credit for memory it did not count.
# From `raasbench export EVAL.h5 --table summary`.
#   gnuplot -e "in='eval_summary.tsv'; out='eval_budget.png'" plots/eval_budget.gp
# Optional: title='...'
if (!exists("in") || !exists("out")) { print "eval_budget.gp: set in='eval_summary.tsv' and out='eval_budget.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set output out
series = distinct(in, "series")
if (words(series) == 0) { print "eval_budget.gp: no rows in ".in; exit status 2 }
base(s) = (strstrt(s, "-") > 0 ? s[1:strstrt(s, "-") - 1] : s)
series_dt(s) = (s eq base(s) ? pol_dt(s) : 3)   # a variant: dotted, in its policy's colour
data = sorted_by(in, "budget")

set multiplot layout 1,2 title (exists("title") ? title : "Task accuracy under a KV budget") font ",16"
set logscale x 2
set format x "%g"
set yrange [0:1.05]
set ylabel "accuracy (Wilson 95% interval)"
set key bottom right
set xlabel "cache budget L (tokens per KV head)"
plot for [s in series] data using (strcol("series") eq s ? column("budget") : NaN):"accuracy":"wilson_lo":"wilson_hi" \
       with yerrorlines lw 2 pt pol_pt(base(s)) ps 1.3 dt series_dt(s) lc rgb pol_color(base(s)) title s
set xlabel "token slots held per KV head (mean; pages whole)"
data2 = sorted_by(in, "mean_resident_tokens")
plot for [s in series] data2 using (strcol("series") eq s ? column("mean_resident_tokens") : NaN):"accuracy":"wilson_lo":"wilson_hi" \
       with yerrorlines lw 2 pt pol_pt(base(s)) ps 1.3 dt series_dt(s) lc rgb pol_color(base(s)) title s
unset multiplot
