# latency.gp: policy step latency against decode step at one cache budget, one line per
# policy (the RaaS paper's latency vs decode length figure). Latency is the wall time of a
# policy's step over all layers (bookkeeping, selection, attention over S); single steps are
# noisy (scheduling, preemption on a shared machine), so each line is the median over
# windows of `win` steps (default: the decode split into ~48 windows), from `raasbench export
# RESULTS.h5 --table steps`. Medians, not means: one preempted step must not move a point.
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

# Window medians with sort and awk (mawk has no asort): rows "policy window_centre ms",
# grouped by policy, then window.
med = sprintf("< awk -F'\t' -v B=%d -v W=%d -v S0=%d 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} " . \
      "NF && $c[\"budget\"]==B && $c[\"latency_ns\"]!=\"NaN\" {w=int(($c[\"step\"]-S0)/W); print $c[\"policy\"], S0+(w+0.5)*W, $c[\"latency_ns\"]/1e6}' '%s' " . \
      "| sort -k1,1 -k2,2n -k3,3g | awk '{k=$1\" \"$2; if(k!=p){if(n)print p, v[int((n+1)/2)]; n=0; p=k} v[++n]=$3} END{if(n)print p, v[int((n+1)/2)]}'", \
      budget, win, smin, in)
set datafile separator whitespace

set output out
set title (exists("title") ? title : sprintf("Step latency at budget L = %d (median over %d-step windows)", budget, win))
set xlabel "decode step (token position)"
set ylabel "policy step latency (ms, all layers)"
set xrange [smin:smax]
set yrange [0:*]
set key top left
plot for [i=1:n] med using (strcol(1) eq word(pols, i) ? $2 : NaN):3 with linespoints lw 2 pt pol_pt(word(pols, i)) ps 1.2 pi 6 \
     dt pol_dt(word(pols, i)) lc rgb pol_color(word(pols, i)) title word(pols, i)
