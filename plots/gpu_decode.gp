# gpu_decode.gp: the RaaS paper's RQ2 on the GPU: per-token latency and resident KV memory
# against decode length, one line per series (policy[-label]), from the samples
# `raasbench bench decode --device cuda --out R.h5` writes (`raasbench export R.h5 --table
# steps`): token_latency_ns is the device time of one whole token (CUDA events), kv_bytes
# the device pages the KV cache holds, all layers. Each sample is one token's time; the
# latency panel draws the median over windows of `win` samples (default 8) so one slow
# token does not move a point.
#   gnuplot -e "in='steps.tsv'; out='gpu_decode.png'" plots/gpu_decode.gp
# Optional: win=N, title='...' (e.g. the device and date). Policies that hold the same bytes
# (dense and Quest keep every token) draw the same memory line.
if (!exists("in") || !exists("out")) { print "gpu_decode.gp: set in='steps.tsv' and out='gpu_decode.png'"; exit status 2 }
load sprintf("%s/common.gp", system(sprintf("dirname '%s'", ARG0)))
if (!exists("win")) { win = 8 }
ss = series_list(in)
n = words(ss)
if (n == 0) { print "gpu_decode.gp: no rows in ".in; exit status 2 }
# windowed medians of one series: rows "step ms", a row per window of win samples
med(s) = sprintf("< sh '%s/rows.sh' '%s' '%s' step | awk -F'\t' -v W=%d 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} " . \
         "NF && $c[\"token_latency_ns\"]!=\"NaN\" {k=int(m/W); m++; x[k]=$c[\"step\"]; v[k, ++nv[k]]=$c[\"token_latency_ns\"]/1e6} " . \
         "END{for(k=0;k<=int((m-1)/W);k++){nn=nv[k]; for(i=1;i<=nn;i++)for(j=i+1;j<=nn;j++)if(v[k,j]<v[k,i]){t=v[k,i];v[k,i]=v[k,j];v[k,j]=t} " . \
         "if(nn) print x[k] \"\\t\" v[k, int((nn+1)/2)]}}'", plots_dir, in, s, win)
set output out
set multiplot layout 1,2 title (exists("title") ? title : "Decode on the GPU: latency and KV memory against decode length")
set xlabel "decode length (token position)"
set key top left
set ylabel "per-token latency (ms, device time; window medians)"
set key bottom right
set yrange [0:*]
plot for [i=1:n] med(word(ss, i)) using 1:2 with linespoints lw 2 ps 1.0 pi 4 \
     pt series_pt(word(ss, i)) dt series_dt(word(ss, i), ss) lc rgb series_color(word(ss, i), ss) title word(ss, i)
set datafile separator "\t"
set ylabel "resident K+V on the device (MiB, all layers)"
set key top left
plot for [i=1:n] series_rows(in, word(ss, i), "step") using (column("step")):(column("kv_bytes") / 1048576.0) \
     with linespoints lw 2 ps 1.0 pi 16 pt series_pt(word(ss, i)) dt series_dt(word(ss, i), ss) \
     lc rgb series_color(word(ss, i), ss) title word(ss, i)
unset multiplot
