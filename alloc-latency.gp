set terminal svg size 760,520 dynamic font 'sans,12' background '#ffffff'
set output 'docs/alloc-latency.svg'
set title 'vmc\_alloc(VMC\_CODE) latency vs fill of the code region'
set xlabel 'fill (code\_used / region size), %'
set ylabel 'ns per call (log scale)'
set logscale y
set grid
set key below maxrows 3 width -2
set xrange [0:100]
set xtics (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99)
plot './alloc-latency.dat' using 1:2 with linespoints lw 2 pt 7 title 'vmc\_alloc median', \
     '' using 1:3 with linespoints lw 2 pt 5 title 'vmc\_alloc p99', \
     '' using 1:4 with linespoints lw 1 pt 6 dt 2 title 'vmc\_free median', \
     '' using 1:5 with linespoints lw 1 pt 4 dt 2 title 'vmc\_free p99', \
     '' using 1:6 with linespoints lw 1 pt 3 dt 3 lc rgb 'gray40' title 'malloc median (same live count)', \
     '' using 1:7 with linespoints lw 1 pt 2 dt 3 lc rgb 'gray60' title 'malloc p99 (same live count)'
