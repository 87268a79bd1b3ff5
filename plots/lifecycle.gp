# lifecycle.gp: the milestone "waterfall": importance of every token (y, position) at every
# decode step (x), max-pooled into cells, log colour scale (ratio to uniform attention
# p*(t+1): 1 = uniform share), with the milestones found by `raasbench lifecycle` bracketed
# by red ticks at their first and last active step (and the planted truth of a synthetic
# trace, when present, as black dots at its first and last active step). Inputs from `raasbench export LC.h5 --table heatmap` and
# `--table milestones`.
#   gnuplot -e "in='heatmap.tsv'; ms='milestones.tsv'; out='lifecycle.png'" plots/lifecycle.gp
# Optional: ms (omit to draw the heatmap alone; a set without rows, such as the planted truth
# of a real decode, is left out of the plot and its key), cbmin=0.1 (lowest ratio coloured),
# title='...'
if (!exists("in") || !exists("out")) { print "lifecycle.gp: set in='heatmap.tsv', ms='milestones.tsv' and out='lifecycle.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set terminal pngcairo size 1200,900 font "DejaVu Sans,14" enhanced
set output out
stats in using "step" nooutput
smin = STATS_min; smax = STATS_max
stats in using "token" nooutput
tmax = STATS_max
stats in using "importance" nooutput
imax = STATS_max
if (!exists("cbmin")) { cbmin = 0.1 }

set title (exists("title") ? title : "Token importance over the decode (milestones: the waterfall)")
set xlabel "decode step (query position)"
set ylabel "token position (key)"
set cblabel "importance: ratio to uniform attention, p · (t+1) (log scale)"
set logscale cb
set cbrange [cbmin : (imax > cbmin * 10 ? imax : cbmin * 10)]
set format cb "10^{%T}"
set xrange [smin : smax]
set yrange [0 : tmax]
set grid front lc rgb "#ffffff" lw 0.5
set palette defined (0 "#ffffff", 0.6 "#fff3b0", 1.6 "#fde725", 2.4 "#5ec962", 3.2 "#21918c", 4.2 "#3b528b", 5 "#440154")
set palette maxcolors 0
set key top left opaque box
unset colorbox
set colorbox vertical user origin graph 1.02, graph 0 size char 1.5, graph 1
set rmargin 12

has_ms = exists("ms") ? (system(sprintf("test -s '%s' && echo 1 || echo 0", ms)) + 0) : 0
# rows of each set: a real decode has no planted truth, and may have no milestone at all;
# a series with no rows is left out (gnuplot would warn and draw an empty key entry)
nrows(set) = has_ms ? system(sprintf("awk -F'\t' '$1 == \"%s\" {n++} END {print n + 0}' '%s'", set, ms)) + 0 : 0
n_det = nrows("detected")
n_pl = nrows("planted")
# importance below the colour range is shown white, like the cells of tokens not yet written
clip(v) = v < cbmin ? NaN : v
tick = tmax / 90.0  # half height of the span brackets, in tokens
HEAT = 'in using "step":"token":(clip(column("importance"))) with image pixels notitle'
DET = ', ms using (strcol("set") eq "detected" ? column("first") : NaN):(column("position") - tick):(0):(2 * tick) \
          with vectors nohead lw 1.5 lc rgb "#e8000b" title "detected milestone: first and last active step", \
       ms using (strcol("set") eq "detected" ? column("last") : NaN):(column("position") - tick):(0):(2 * tick) \
          with vectors nohead lw 1.5 lc rgb "#e8000b" notitle'
PL = ', ms using (strcol("set") eq "planted" ? column("first") : NaN):"position" \
          with points pt 7 ps 0.35 lc rgb "#000000" title "planted milestone: first and last active step", \
       ms using (strcol("set") eq "planted" ? column("last") : NaN):"position" \
          with points pt 7 ps 0.35 lc rgb "#000000" notitle'
if (has_ms && n_det == 0) {
  set label 1 "no milestone detected" at graph 0.02, graph 0.95 left front boxed
}
if (!n_det && !n_pl) { unset key }
plot_cmd = "plot " . HEAT . (n_det ? DET : "") . (n_pl ? PL : "")
eval plot_cmd
