# eval_length.gp: graded accuracy against how long the reasoning ran (the RaaS paper's RQ3:
# what discarding the prompt costs as decodes grow). One line per series at one budget L
# (raas with the prompt pinned against raas.pin_prefill=0, and any other policies in the
# file), with Wilson 95% intervals. x: the bins of `raasbench export --table length`, tasks
# cut into equal-count bins by the dense run's generated length, drawn at the bin's middle,
# so every series is graded on the same tasks in a bin.
#   raasbench export EVAL.h5 --table length --out len.tsv
#   gnuplot -e "in='len.tsv'; out='eval_length.png'; budget=64" plots/eval_length.gp
# budget: the L to draw (rows of budget-free runs given no budget, budget 0, are drawn too);
# without it, the smallest L in the file. Optional: title='...'
if (!exists("in") || !exists("out")) { print "eval_length.gp: set in='len.tsv' and out='eval_length.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set output out
series = series_list(in)
if (words(series) == 0) { print "eval_length.gp: no rows in ".in; exit status 2 }
if (!exists("budget")) {
  budget = int(system(sprintf("awk -F'\t' 'NR>1 && $3>0 && (m==\"\" || $3<m) {m=$3} END {print m+0}' '%s'", in)))
}
keep(x) = (column("budget") == budget || column("budget") == 0)
mid = "((column(\"len_lo\") + column(\"len_hi\")) / 2.0)"

set title (exists("title") ? title : sprintf("Accuracy against generated length, L = %d", budget)) font ",14"
set xlabel "tokens the dense decode generated (bin middle; equal-count bins)"
set ylabel "accuracy (Wilson 95% interval)"
set yrange [0:1.05]
set key outside right
set offsets graph 0.04, graph 0.04, 0, 0
plot for [s in series] series_rows(in, s, "len_lo") using (keep(0) ? @mid : NaN):"accuracy":"wilson_lo":"wilson_hi" \
       with yerrorlines lw 2 pt series_pt(s) ps 1.3 dt series_dt(s, series) lc rgb series_color(s, series) title s
