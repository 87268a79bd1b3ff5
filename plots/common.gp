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
               p eq "random" ? "#9467bd" : p eq "window" ? "#8c564b" : p eq "tova" ? "#e377c2" : \
               p eq "snapkv" ? "#17becf" : p eq "rkv" ? "#393b79" : p eq "lazyeviction" ? "#bcbd22" : \
               p eq "adakv" ? "#8c6d31" : p eq "sepllm" ? "#7b4173" : "#a0a0a0"
pol_pt(p) = p eq "dense" ? 1 : p eq "oracle" ? 2 : p eq "quest" ? 5 : p eq "raas" ? 7 : \
            p eq "h2o" ? 9 : p eq "streamingllm" ? 11 : p eq "random" ? 13 : p eq "tova" ? 15 : \
            p eq "snapkv" ? 4 : p eq "rkv" ? 6 : p eq "lazyeviction" ? 8 : p eq "adakv" ? 10 : \
            p eq "sepllm" ? 12 : 3
pol_dt(p) = (p eq "dense" || p eq "oracle") ? 2 : 1

# The distinct values of the column named `name` in TSV file `f`, in order of first
# appearance, as a space-separated word list (policies, budgets).
distinct(f, name) = system(sprintf("awk -F'\t' 'NR==1{for(i=1;i<=NF;i++) if($i==\"%s\") c=i; next} c && NF && $c!=\"\" && !s[$c]++ {printf \"%%s \", $c}' '%s'", name, f))

# The 1-based index of the column named `name` in TSV file `f` (0 when absent).
colidx(f, name) = int(system(sprintf("awk -F'\t' 'NR==1{for(i=1;i<=NF;i++) if($i==\"%s\") c=i; print c+0; exit}' '%s'", name, f)))
# A gnuplot input that reads TSV file `f` with its rows sorted numerically by column `name`
# (header kept first).
sorted_by(f, name) = sprintf("< (head -n 1 '%s'; tail -n +2 '%s' | sort -t \"$(printf '\\t')\" -k%d,%dg)", f, f, colidx(f, name), colidx(f, name))

# ---- series: what one line of a figure is ----
# A series is `<policy>[-<label>]`: the `series` column of eval tables, else the run_id
# without its "_L<budget>[@<trace>]" suffix. A labelled variant (raas-exact, raas-decode) is
# its own line, never averaged into its policy's.
plots_dir = system(sprintf("dirname '%s'", ARG0))
series_list(f) = system(sprintf("sh '%s/rows.sh' '%s' --list", plots_dir, f))
# a gnuplot input: the header, then series s's rows of f sorted numerically by column key
series_rows(f, s, key) = sprintf("< sh '%s/rows.sh' '%s' '%s' '%s'", plots_dir, f, s, key)
_last_L(s, off) = (strstrt(s[off + 1:], "_L") > 0 ? _last_L(s, off + strstrt(s[off + 1:], "_L")) : off)
run_series(r) = (_last_L(r, 0) > 0 ? r[1:_last_L(r, 0) - 1] : r)
# the series of the current row (has_series: whether the table has the column)
row_series(has_series) = (has_series ? strcol("series") : run_series(strcol("run_id")))
series_base(s) = (strstrt(s, "-") > 0 ? s[1:strstrt(s, "-") - 1] : s)
# the k-th variant (1-based, in the order of `list`) of a figure: a colour of its own from a
# second palette, its policy's point type opened, dash type 2 + k
variant_palette = "#8c564b #e377c2 #17becf #bcbd22 #9467bd #7f7f7f #1f77b4 #ff7f0e"
variant_k(s, list) = int(system(sprintf("printf '%%s\\n' %s | grep -- - | grep -nxF -- '%s' | cut -d: -f1", list, s)))
series_color(s, list) = (s eq series_base(s) ? pol_color(s) : word(variant_palette, (variant_k(s, list) - 1) % 8 + 1))
series_pt(s) = (s eq series_base(s) ? pol_pt(s) : (pol_pt(series_base(s)) > 3 ? pol_pt(series_base(s)) - 1 : 6))
series_dt(s, list) = (s eq series_base(s) ? pol_dt(s) : 2 + variant_k(s, list))
