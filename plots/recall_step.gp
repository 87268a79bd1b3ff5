# recall_step.gp: recall (attention mass kept, mean over the sparse layers) against decode
# step at one cache budget, one line per policy: where a policy loses the tokens that
# matter as the decode goes on (the h2o-stress trace of `raasbench synth --preset
# h2o-stress`: stale accumulated scores crowd out new milestones). Per-step recall jumps
# with every milestone that starts or ends, so each point is the mean over a window of
# `win` steps (default: the decode split into ~64 windows), from `raasbench export
# RESULTS.h5 --table steps`. latency.gp draws window medians of latency; this draws means,
# because recall has no outliers to resist and a mean is what a reader multiplies by.
#   gnuplot -e "in='steps.tsv'; out='recall_step.png'" plots/recall_step.gp
# Optional: budget=L (default: the largest budget in the file), win=N, title='...'
if (!exists("in") || !exists("out")) { print "recall_step.gp: set in='steps.tsv' and out='recall_step.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
stats in using "budget" nooutput
if (!exists("budget")) { budget = STATS_max }
stats in using "step" nooutput
smin = STATS_min; smax = STATS_max
if (!exists("win")) { win = ceil((smax - smin + 1) / 64.0) }
pols = distinct(in, "policy")
n = words(pols)
if (n == 0) { print "recall_step.gp: no rows in ".in; exit status 2 }

# Window means with awk: rows "policy window_centre mean_recall", in order of first
# appearance of (policy, window); NaN recall (no sparse layer) skipped.
avg = sprintf("< awk -F'\t' -v B=%d -v W=%d -v S0=%d 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} " . \
      "NF && $c[\"budget\"]==B && $c[\"recall\"]!=\"NaN\" {w=int(($c[\"step\"]-S0)/W); k=$c[\"policy\"]\" \"(S0+(w+0.5)*W); if(!(k in n))o[++m]=k; n[k]++; s[k]+=$c[\"recall\"]} " . \
      "END{for(i=1;i<=m;i++)print o[i], s[o[i]]/n[o[i]]}' '%s'", budget, win, smin, in)
set datafile separator whitespace

set output out
set title (exists("title") ? title : sprintf("Recall at budget L = %d (mean over %d-step windows)", budget, win))
set xlabel "decode step (token position)"
set ylabel "recall (attention mass kept)"
set xrange [smin:smax]
set yrange [0:1.02]
set key bottom left
plot for [i=1:n] avg using (strcol(1) eq word(pols, i) ? $2 : NaN):3 with linespoints lw 2 pt pol_pt(word(pols, i)) ps 1.2 pi 8 \
     dt pol_dt(word(pols, i)) lc rgb pol_color(word(pols, i)) title word(pols, i)
