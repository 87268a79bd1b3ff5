# tradeoff.gp: accuracy against memory, with latency, one point per run (policy x budget):
# x = peak resident KV memory (MiB, log scale), y = mean attention recall, point area grows
# with the median step latency (p50_latency_ns), each point labelled with its budget; one
# colour per policy, points of a policy joined in budget order (rows sorted with sort(1)). Upper left is better:
# accurate with little memory; small points are fast. From `raasbench export RESULTS.h5
# --table summary`.
#   gnuplot -e "in='summary.tsv'; out='tradeoff.png'" plots/tradeoff.gp
# Optional: title='...'; keyx=0.99 (the key's right edge, in graph units; default 0.66)
if (!exists("in") || !exists("out")) { print "tradeoff.gp: set in='summary.tsv' and out='tradeoff.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set output out
pols = series_list(in)
has_series = colidx(in, "series") > 0
if (words(pols) == 0) { print "tradeoff.gp: no rows in ".in; exit status 2 }
stats in using (column("p50_latency_ns") / 1e6) nooutput
lat_max = STATS_max > 0 ? STATS_max : 1
stats in using (column("peak_kv_bytes") / 1048576.0) nooutput
mmin = STATS_min; mmax = STATS_max
# point size: area proportional to latency, from 0.8 (fastest possible) to 4.5 (slowest run)
psz(ms) = 0.8 + 3.7 * sqrt(ms / lat_max)

set title (exists("title") ? title : "Accuracy, memory and latency (point area ∝ median step latency)")
set xlabel "peak resident K+V memory (MiB, all layers, log scale)"
set ylabel "attention recall (mean over steps and sparse layers)"
set logscale x 2
set format x "%g"
set xrange [mmin / 1.4 : mmax * 1.4]
set yrange [0:1.05]
# Bottom, left of centre: the dense-memory column (quest, oracle, random) sits at the
# right edge and the O(L) policies climb from the left.
set key at graph (exists("keyx") ? keyx : 0.66), graph 0.03 bottom right title "series"
sel(p) = row_series(has_series) eq p
# budget labels: consecutive budgets (log2 parity) go left and right of their point, so runs
# that land on the same point (RaaS below its prompt's pages) stay readable; dense and oracle
# are references and not labelled
side(b) = int(log(b) / log(2) + 0.5) % 2 == 0 ? -1 : 1
pols_lab = ""
do for [p in pols] { if (p ne "dense" && p ne "oracle") { pols_lab = pols_lab.p." " } }
l1 = lat_max / 10.0; l2 = lat_max / 2.0; l3 = lat_max
plot for [p in pols] series_rows(in, p, "budget") using (column("peak_kv_bytes") / 1048576.0):"mean_recall" \
         with lines lw 1.5 dt series_dt(p, pols) lc rgb series_color(p, pols) notitle, \
     for [p in pols] in using (sel(p) ? column("peak_kv_bytes") / 1048576.0 : NaN):"mean_recall":(psz(column("p50_latency_ns") / 1e6)) \
         with points pt series_pt(p) ps variable lw 2 lc rgb series_color(p, pols) notitle, \
     for [p in pols_lab] in using (sel(p) && side(column("budget")) < 0 ? column("peak_kv_bytes") / 1048576.0 : NaN):"mean_recall":(sprintf("%d", column("budget"))) \
         with labels right offset char -1.2,0 font ",10" tc rgb series_color(p, pols) notitle, \
     for [p in pols_lab] in using (sel(p) && side(column("budget")) > 0 ? column("peak_kv_bytes") / 1048576.0 : NaN):"mean_recall":(sprintf("%d", column("budget"))) \
         with labels left offset char 1.2,0 font ",10" tc rgb series_color(p, pols) notitle, \
     for [p in pols] NaN with linespoints pt series_pt(p) ps 1.5 lw 2 dt series_dt(p, pols) lc rgb series_color(p, pols) title p, \
     NaN with points pt 6 ps psz(l1) lc rgb "#444444" title sprintf("%.2g ms", l1), \
     NaN with points pt 6 ps psz(l2) lc rgb "#444444" title sprintf("%.2g ms", l2), \
     NaN with points pt 6 ps psz(l3) lc rgb "#444444" title sprintf("%.2g ms", l3)
