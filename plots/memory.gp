# memory.gp: resident KV memory against decode step at one cache budget, one line per
# policy (the RaaS paper's memory vs decode length figure): K and V bytes resident over all
# layers and KV heads (whole pages count; dense layers keep every token), in MiB, from
# `raasbench export RESULTS.h5 --table steps`. Policies with the same memory draw the same
# line; their markers are staggered along it so each stays visible.
#   gnuplot -e "in='steps.tsv'; out='memory.png'" plots/memory.gp
# Optional: budget=L (default: the largest budget in the file), title='...'
if (!exists("in") || !exists("out")) { print "memory.gp: set in='steps.tsv' and out='memory.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
set output out
stats in using "budget" nooutput
if (!exists("budget")) { budget = STATS_max }
stats in using "step" nooutput
smin = STATS_min; smax = STATS_max
pols = distinct(in, "policy")
n = words(pols)
if (n == 0) { print "memory.gp: no rows in ".in; exit status 2 }
period = ceil((smax - smin + 1) / 8.0)  # markers: 8 per line, staggered by policy
mark(s, i) = (int(s - smin) % period) == int((i - 1) * period / n)

set title (exists("title") ? title : sprintf("Resident KV cache at budget L = %d", budget))
set xlabel "decode step (token position)"
set ylabel "resident K+V memory (MiB, all layers)"
set xrange [smin:smax]
set yrange [0:*]
set key top left
sel(i) = strcol("policy") eq word(pols, i) && column("budget") == budget
plot for [i=1:n] in using (sel(i) ? column("step") : NaN):(column("kv_bytes") / 1048576.0) \
         with lines lw 2 dt pol_dt(word(pols, i)) lc rgb pol_color(word(pols, i)) notitle, \
     for [i=1:n] in using (sel(i) && mark(column("step"), i) ? column("step") : NaN):(column("kv_bytes") / 1048576.0) \
         with points pt pol_pt(word(pols, i)) ps 1.6 lw 2 lc rgb pol_color(word(pols, i)) notitle, \
     for [i=1:n] NaN with linespoints lw 2 pt pol_pt(word(pols, i)) ps 1.6 dt pol_dt(word(pols, i)) lc rgb pol_color(word(pols, i)) title word(pols, i)
