/* svg: line charts as inline SVG, for the HTML report of `weft bench`.
 *
 * A chart is one <svg> element with everything drawn as text and shapes: axes with ticks and
 * titles, a grid, a legend and the lines, readable without scripts or outside resources. Both
 * axes start at 0; the x axis is linear, or a "nines" scale for percentile curves (as
 * HdrHistogram plots them), where 90 %, 99 %, 99.9 % ... are equally spaced. */
#ifndef WEFT_BENCH_SVG_H
#define WEFT_BENCH_SVG_H

#include <stdio.h>

/* One line of a chart: n points; a NAN y leaves a gap (a lone point is drawn as a dot). */
struct svg_series {
    const char *name; /* in the legend */
    const double *x, *y;
    int n;
    int color; /* index into an 8-colour palette, cycled */
    int dashed;
};

struct svg_chart {
    const char *title, *xlabel, *ylabel;
    double xmax, ymax; /* the data's largest values; the y axis is rounded up to a tick */
    int nines;         /* x is -log10(1 - p/100): ticks at 0 %, 90 %, 99 %, ... up to xmax */
};

/* Writes s with & < > " ' escaped, for HTML text, attribute values and SVG text. */
void svg_escape(FILE *f, const char *s);

/* Writes chart c with its ns series as one <svg> element. */
void svg_line_chart(FILE *f, const struct svg_chart *c, const struct svg_series *s, int ns);

/* The step between ticks for about `ticks` of them over [0, span]: 1, 2 or 5 times a power of
 * ten (1 when span is not positive). */
double svg_nice_step(double span, int ticks);

#endif
