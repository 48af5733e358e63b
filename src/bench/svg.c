/* svg: line charts as inline SVG (axes, ticks, grid, legend, lines with gaps). */
#include <math.h>
#include <stdio.h>

#include "bench/svg.h"

void svg_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&'    ? "&amp;"
                        : *s == '<'  ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&#39;"
                                     : NULL;
        if (e)
            fputs(e, f);
        else
            fputc(*s, f);
    }
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define PALETTE_SIZE (int)(sizeof palette / sizeof palette[0])

/* Chart geometry in pixels: the plot area is inside the margins, the legend right of it. */
#define SVG_W 780
#define SVG_H 300
#define SVG_ML 72
#define SVG_MR 190
#define SVG_MT 34
#define SVG_MB 46
#define SVG_LEGEND_ROW 17

double svg_nice_step(double span, int ticks)
{
    if (!(span > 0) || ticks < 1)
        return 1;
    double raw = span / ticks, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static int step_decimals(double step)
{
    int d = (int)-floor(log10(step) + 1e-9);
    return d > 0 ? d : 0;
}

static void svg_tick_label(FILE *f, double x, double y, const char *anchor, const char *text)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">", x, y, anchor);
    svg_escape(f, text);
    fputs("</text>\n", f);
}

static void svg_path(FILE *f, const struct svg_series *s, double x0, double y0, double sx,
                     double sy)
{
    fprintf(f,
            "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" stroke-linejoin=\"round\" "
            "stroke-linecap=\"round\"%s d=\"",
            palette[s->color % PALETTE_SIZE], s->dashed ? " stroke-dasharray=\"6 4\"" : "");
    int pen = 0; /* points in the current stretch without gaps */
    for (int i = 0; i <= s->n; i++) {
        if (i == s->n || isnan(s->y[i])) {
            if (pen == 1)
                fputs(" h0.5", f); /* a lone point: a dot, thanks to the round cap */
            pen = 0;
            continue;
        }
        fprintf(f, "%s%.1f %.1f", pen ? " L" : " M", x0 + s->x[i] * sx, y0 - s->y[i] * sy);
        pen++;
    }
    fputs("\"/>\n", f);
}

void svg_line_chart(FILE *f, const struct svg_chart *c, const struct svg_series *s, int ns)
{
    int h = SVG_MT + 12 + ns * SVG_LEGEND_ROW + SVG_MB;
    h = h > SVG_H ? h : SVG_H;
    double pw = SVG_W - SVG_ML - SVG_MR, ph = h - SVG_MT - SVG_MB;
    double x0 = SVG_ML, y0 = SVG_MT + ph;
    double xmax = c->xmax > 0 ? c->xmax : 1, ymax = c->ymax > 0 ? c->ymax : 1;
    double ystep = svg_nice_step(ymax, 5);
    ymax = ceil(ymax / ystep - 1e-9) * ystep;
    char buf[64];

    fprintf(f,
            "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "font-family=\"sans-serif\" font-size=\"11\" fill=\"#333\">\n<title>",
            SVG_W, h, SVG_W, h);
    svg_escape(f, c->title);
    fprintf(f, "</title>\n<text x=\"%d\" y=\"20\" font-size=\"13\" font-weight=\"bold\">", SVG_ML);
    svg_escape(f, c->title);
    fputs("</text>\n", f);

    for (int i = 0; i * ystep <= ymax * (1 + 1e-9); i++) {
        double y = y0 - i * ystep / ymax * ph;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                x0, y, x0 + pw, y);
        snprintf(buf, sizeof buf, "%.*f", step_decimals(ystep), i * ystep);
        svg_tick_label(f, x0 - 6, y + 4, "end", buf);
    }
    double xstep = c->nines ? 1 : svg_nice_step(xmax, 8);
    for (int i = 0; i * xstep <= xmax * (1 + 1e-9); i++) {
        double x = x0 + i * xstep / xmax * pw;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                x, y0, x, (double)SVG_MT);
        if (c->nines && i == 0)
            snprintf(buf, sizeof buf, "0%%");
        else if (c->nines)
            snprintf(buf, sizeof buf, "%.*f%%", i > 2 ? i - 2 : 0, 100.0 * (1 - pow(10, -i)));
        else
            snprintf(buf, sizeof buf, "%.*f", step_decimals(xstep), i * xstep);
        svg_tick_label(f, x, y0 + 16, "middle", buf);
    }
    fprintf(f,
            "<path fill=\"none\" stroke=\"#333\" d=\"M%.1f %.1f V%.1f H%.1f\"/>\n"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
            x0, (double)SVG_MT, y0, x0 + pw, x0 + pw / 2, h - 10);
    svg_escape(f, c->xlabel);
    fprintf(f,
            "</text>\n<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">",
            SVG_MT + ph / 2);
    svg_escape(f, c->ylabel);
    fputs("</text>\n", f);

    for (int i = 0; i < ns; i++) {
        svg_path(f, &s[i], x0, y0, pw / xmax, ph / ymax);
        double ly = SVG_MT + 8 + i * SVG_LEGEND_ROW, lx = x0 + pw + 16;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"2\"%s/>\n",
                lx, ly, lx + 24, ly, palette[s[i].color % PALETTE_SIZE],
                s[i].dashed ? " stroke-dasharray=\"6 4\"" : "");
        svg_tick_label(f, lx + 30, ly + 4, "start", s[i].name);
    }
    fputs("</svg>\n", f);
}
