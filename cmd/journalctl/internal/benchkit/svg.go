package benchkit

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// PlotLatency writes an SVG latency-by-percentile chart, one line per
// series, in the usual HdrHistogram style: the x axis counts "nines"
// (log10 of 1/(1−q)), so 50%, 90%, 99%, 99.9%, 99.99% are evenly spaced,
// then the maximum; the y axis is logarithmic in nanoseconds. Hand-written
// SVG: a plotting library would be the only reason for a new dependency.
func PlotLatency(w io.Writer, title string, series []Latency) error {
	const (
		W, H                 = 900, 520
		left, right, top, bt = 70, 190, 40, 50
		xmax                 = 4.6 // 99.99% is 4 nines; max is drawn at 4.5
	)
	pw, ph := float64(W-left-right), float64(H-top-bt)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, v := range s.Curve {
			if v > 0 {
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	X := func(nines float64) float64 { return float64(left) + nines/xmax*pw }
	Y := func(v float64) float64 {
		return float64(top) + ph - (math.Log10(math.Max(v, 1))-ylo)/(yhi-ylo)*ph
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s</text>`+"\n", left, html.EscapeString(title))
	for e := ylo; e <= yhi; e++ {
		y := Y(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, X(xmax), y, left-6, y+4, nsLabel(math.Pow(10, e)))
	}
	for _, t := range []struct {
		n float64
		l string
	}{{0, "0%"}, {math.Log10(2), "50%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {4.5, "max"}} {
		x := X(t.n)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n",
			x, top, x, float64(top)+ph, x, float64(top)+ph+16, t.l)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">percentile</text>`+"\n", X(xmax/2), H-10)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">one-way latency (RTT/2)</text>`+"\n", float64(top)+ph/2)
	colors := []string{"#000000", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#ff7f0e", "#17becf", "#7f7f7f", "#bcbd22"}
	for i, s := range series {
		if len(s.Curve) != len(PlotQuantiles) {
			continue
		}
		c := colors[i%len(colors)]
		var pts []string
		for j, q := range PlotQuantiles {
			n := 4.5
			if q < 100 {
				n = math.Log10(100 / (100 - q))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(n), Y(float64(s.Curve[j]))))
		}
		width := 1.5
		if i == 0 {
			width = 2.5
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" points="%s"/>`+"\n", c, width, strings.Join(pts, " "))
		ly := top + 14 + i*18
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/><text x="%d" y="%d">%s (p50 %s)</text>`+"\n",
			W-right+12, ly, W-right+32, ly, c, W-right+38, ly+4, html.EscapeString(s.Name), nsLabel(float64(s.P50)))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func nsLabel(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%gs", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%gms", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gµs", v/1e3)
	}
	return fmt.Sprintf("%gns", v)
}
