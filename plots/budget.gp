# budget.gp: accuracy against cache budget, one line per series (a policy, or policy-label
# for a labelled variant such as raas-exact, in a colour of its own; runs of one series over
# several traces are averaged per budget) (the RaaS paper's accuracy
# vs budget figure): left, attention recall (mass of the dense attention kept); right,
# relative output error ||o_S - o*|| / ||o*||. Both are means over decode steps and sparse
# layers, from `raasbench export RESULTS.h5 --table summary`.
#   gnuplot -e "in='summary.tsv'; out='budget.png'" plots/budget.gp
# Optional: title='...'
if (!exists("in") || !exists("out")) { print "budget.gp: set in='summary.tsv' and out='budget.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set output out
pols = series_list(in)
if (words(pols) == 0) { print "budget.gp: no rows in ".in; exit status 2 }
stats in using "budget" nooutput
bmin = STATS_min; bmax = STATS_max

set multiplot layout 1,2 title (exists("title") ? title : "Accuracy against cache budget") font ",16"
set logscale x 2
set xrange [bmin / 1.3 : bmax * 1.3]
set xlabel "cache budget L (tokens per KV head)"
set format x "%g"
set ylabel "attention recall (fraction of dense mass kept)"
set yrange [0:1.02]
set key bottom right
plot for [p in pols] series_rows(in, p, "budget") using "budget":"mean_recall" \
     smooth unique with linespoints lw 2 pt series_pt(p) ps 1.3 dt series_dt(p, pols) lc rgb series_color(p, pols) title p

set ylabel "relative output error ||o_S - o*|| / ||o*||"
set logscale y
set yrange [*:*]
set format y "10^{%T}"
set key bottom left
# dense has zero error by definition and cannot appear on a log axis: left out
pols_err = ""
do for [p in pols] { if (p ne "dense") { pols_err = pols_err.p." " } }
plot for [p in pols_err] series_rows(in, p, "budget") using (column("mean_out_err") > 0 ? column("budget") : NaN):"mean_out_err" \
     smooth unique with linespoints lw 2 pt series_pt(p) ps 1.3 dt series_dt(p, pols) lc rgb series_color(p, pols) title p
unset multiplot
