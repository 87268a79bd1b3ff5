# lifespan.gp: histogram of milestone lifespans (last - first + 1 active steps) found by
# `raasbench lifecycle`, with the planted lifespans of a synthetic trace as outlined bars
# when the file has them. From `raasbench export LC.h5 --table lifespan`.
#   gnuplot -e "in='lifespan.tsv'; out='lifespan.png'" plots/lifespan.gp
# Optional: title='...'
if (!exists("in") || !exists("out")) { print "lifespan.gp: set in='lifespan.tsv' and out='lifespan.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set output out
stats in using "detected" nooutput
if (STATS_records == 0) { print "lifespan.gp: no rows in ".in; exit status 2 }
ndet = STATS_sum
stats in using "bin_hi" nooutput
xmax = STATS_max
planted = system(sprintf("awk -F'\t' 'NR>1 && $4!=\"NaN\" {n++} END{print n+0}' '%s'", in)) + 0
if (planted) { stats in using "planted" nooutput; ntruth = STATS_sum }

set title (exists("title") ? title : sprintf("Milestone lifespans (%d detected%s)", ndet, planted ? sprintf(", %d planted", ntruth) : ""))
set xlabel "lifespan (decode steps a milestone stays in use)"
set ylabel "milestones per bin"
set xrange [0 : xmax]
# nothing detected and no truth (a real decode can have no milestone): an empty histogram
# with a fixed range, not gnuplot's warning about an empty one
if (ndet == 0 && !planted) {
  set yrange [0 : 1]
  set label 1 "no milestone detected" at graph 0.5, graph 0.5 center front
} else {
  set yrange [0 : *]
}
set offsets 0, 0, graph 0.08, 0
set style fill transparent solid 0.55 border
set key top right
set boxwidth 1.0 relative
mid(a, b) = (a + b) / 2.0
if (planted) {
  plot in using (mid(column("bin_lo"), column("bin_hi"))):"detected":(column("bin_hi") - column("bin_lo")) \
          with boxes lc rgb "#d62728" title "detected", \
       in using (mid(column("bin_lo"), column("bin_hi"))):"planted":(column("bin_hi") - column("bin_lo")) \
          with boxes fs empty lc rgb "#000000" lw 2 title "planted (synthetic truth)"
} else {
  plot in using (mid(column("bin_lo"), column("bin_hi"))):"detected":(column("bin_hi") - column("bin_lo")) \
          with boxes lc rgb "#d62728" title "detected"
}
