# latency.gp: policy step latency against decode step at one cache budget, one line per
# policy (the RaaS paper's latency vs decode length figure). Latency is the wall time of a
# policy's step over all layers (bookkeeping, selection, attention over S); single steps are
# noisy (scheduling, page allocation), so each line is the mean over windows of `win` steps
# (default: the decode split into ~48 windows), from `raasbench export RESULTS.h5 --table
# steps`. The y axis is scaled to the window means, not to single-step outliers.
#   gnuplot -e "in='steps.tsv'; out='latency.png'" plots/latency.gp
# Optional: budget=L (default: the largest budget in the file), win=N, title='...'
if (!exists("in") || !exists("out")) { print "latency.gp: set in='steps.tsv' and out='latency.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
stats in using "budget" nooutput
if (!exists("budget")) { budget = STATS_max }
stats in using "step" nooutput
smin = STATS_min; smax = STATS_max
if (!exists("win")) { win = ceil((smax - smin + 1) / 48.0) }
pols = distinct(in, "policy")
n = words(pols)
if (n == 0) { print "latency.gp: no rows in ".in; exit status 2 }
wx(s) = smin + (floor((s - smin) / win) + 0.5) * win

# window means into a table first (block i-1 = policy i), so the axes follow the means
set table $means
plot for [i=1:n] in using (strcol("policy") eq word(pols, i) && column("budget") == budget ? wx(column("step")) : NaN):(column("latency_ns") / 1e6) smooth unique
unset table
set datafile separator whitespace  # gnuplot writes tables space-separated

set output out
set title (exists("title") ? title : sprintf("Step latency at budget L = %d (mean over %d-step windows)", budget, win))
set xlabel "decode step (token position)"
set ylabel "policy step latency (ms, all layers)"
set xrange [smin:smax]
set yrange [0:*]
set key top left
plot for [i=1:n] $means index (i - 1) using 1:2 with linespoints lw 2 pt pol_pt(word(pols, i)) ps 1.2 pi 6 \
     dt pol_dt(word(pols, i)) lc rgb pol_color(word(pols, i)) title word(pols, i)
