# Shared by the benchmark scripts (sourced after scripts/lib.sh).

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# pgbench_tps ARGS... : run pgbench with ARGS and print its transactions per second.
pgbench_tps() { pgbench "$@" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
