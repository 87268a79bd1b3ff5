# common.gp: shared settings of the raasbench figures (loaded by every plots/*.gp): the
# terminal, fonts, the TSV format written by `raasbench export`, and one fixed colour per
# policy so a policy looks the same in every figure.
set terminal pngcairo size 1200,800 font "DejaVu Sans,14" enhanced
set datafile separator "\t"
set grid back lc rgb "#d0d0d0" lw 1
set border lw 1.2
set key opaque box lc rgb "#a0a0a0"
set style line 100 lc rgb "#444444"

# colour and point type of a policy (unknown policies are grey)
pol_color(p) = p eq "dense" ? "#000000" : p eq "oracle" ? "#7f7f7f" : p eq "quest" ? "#1f77b4" : \
               p eq "raas" ? "#d62728" : p eq "h2o" ? "#2ca02c" : p eq "streamingllm" ? "#ff7f0e" : \
               p eq "random" ? "#9467bd" : p eq "window" ? "#8c564b" : "#bcbd22"
pol_pt(p) = p eq "dense" ? 1 : p eq "oracle" ? 2 : p eq "quest" ? 5 : p eq "raas" ? 7 : \
            p eq "h2o" ? 9 : p eq "streamingllm" ? 11 : p eq "random" ? 13 : 3
pol_dt(p) = (p eq "dense" || p eq "oracle") ? 2 : 1

# The distinct values of the column named `name` in TSV file `f`, in order of first
# appearance, as a space-separated word list (policies, budgets).
distinct(f, name) = system(sprintf("awk -F'\t' 'NR==1{for(i=1;i<=NF;i++) if($i==\"%s\") c=i; next} c && NF && $c!=\"\" && !s[$c]++ {printf \"%%s \", $c}' '%s'", name, f))

# The 1-based index of the column named `name` in TSV file `f` (0 when absent).
colidx(f, name) = int(system(sprintf("awk -F'\t' 'NR==1{for(i=1;i<=NF;i++) if($i==\"%s\") c=i; print c+0; exit}' '%s'", name, f)))
# A gnuplot input that reads TSV file `f` with its rows sorted numerically by column `name`
# (header kept first).
sorted_by(f, name) = sprintf("< (head -n 1 '%s'; tail -n +2 '%s' | sort -t \"$(printf '\\t')\" -k%d,%dg)", f, f, colidx(f, name), colidx(f, name))
