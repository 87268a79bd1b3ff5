# eval_budget.gp: graded task accuracy against the cache budget, one line per series (a
# policy, or policy-label for a variant such as raas-decode, in a colour of its own), with
# Wilson 95% intervals (the shape of the RaaS paper's RQ1). Left: against the nominal
# budget L; right: against the token slots each cell really held per KV head (mean over
# decode steps and the policy's layers), so a policy that holds more than L gets no credit
# for memory it did not count. From `raasbench export EVAL.h5 --table summary`.
#   gnuplot -e "in='eval_summary.tsv'; out='eval_budget.png'" plots/eval_budget.gp
# Optional: title='...'
if (!exists("in") || !exists("out")) { print "eval_budget.gp: set in='eval_summary.tsv' and out='eval_budget.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set output out
series = series_list(in)
if (words(series) == 0) { print "eval_budget.gp: no rows in ".in; exit status 2 }

set multiplot layout 1,2 title (exists("title") ? title : "Task accuracy under a KV budget") font ",16"
set logscale x 2
set format x "%g"
set offsets graph 0.06, graph 0.06, 0, 0
set yrange [0:1.05]
set ylabel "accuracy (Wilson 95% interval)"
unset key
set xlabel "cache budget L (tokens per KV head)"
plot for [s in series] series_rows(in, s, "budget") using "budget":"accuracy":"wilson_lo":"wilson_hi" \
       with yerrorlines lw 2 pt series_pt(s) ps 1.3 dt series_dt(s, series) lc rgb series_color(s, series) title s
set key outside right top vertical
set xlabel "token slots held per KV head (mean; pages whole)"
plot for [s in series] series_rows(in, s, "mean_resident_tokens") using "mean_resident_tokens":"accuracy":"wilson_lo":"wilson_hi" \
       with yerrorlines lw 2 pt series_pt(s) ps 1.3 dt series_dt(s, series) lc rgb series_color(s, series) title s
unset multiplot
