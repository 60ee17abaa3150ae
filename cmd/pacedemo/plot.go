package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// palette has one distinguishable colour per contender, in contender order.
var palette = []color.Color{
	color.RGBA{0x99, 0x99, 0x99, 0xff}, // no retry: grey
	color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // seed article: orange
	color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // go-retryablehttp: sky blue
	color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // failsafe-go: purple
	color.RGBA{0x00, 0x9e, 0x73, 0xff}, // pacehttp: green
	color.RGBA{0x00, 0x45, 0x9e, 0xff}, // pacehttp+rate: dark blue
}

// plotScenario draws accepted requests per second over time into
// dir/<scenario>.png: one panel per contender, on the same axes, each with
// the server's limit dashed, so that the panels compare at a glance.
func plotScenario(dir string, sr scenarioReport) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	rs := sr.Results
	var end time.Duration
	var ymax float64
	for _, r := range rs {
		end = max(end, r.Elapsed)
		for _, v := range r.Timeline {
			ymax = max(ymax, v)
		}
	}
	limit := limitLine(sr.scenario, end)
	for _, p := range limit {
		ymax = max(ymax, p.Y)
	}
	const cols = 2
	rows := (len(rs) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, r := range rs {
		p, err := panel(r, limit, end, math.Ceil(ymax*1.1/50)*50)
		if err != nil {
			return "", err
		}
		if i/cols == rows-1 || i+cols >= len(rs) {
			p.X.Label.Text = "seconds since start"
		}
		if i%cols == 0 {
			p.Y.Label.Text = "200s per second"
		}
		plots[i/cols][i%cols] = p
	}
	for i := len(rs); i < rows*cols; i++ {
		plots[i/cols][i%cols] = plot.New() // an empty tile keeps the grid even
	}

	const titleSpace = 36
	img := vgimg.New(vg.Points(760), vg.Points(float64(160*rows+titleSpace)))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	title := text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, vg.Points(11)),
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
	dc.FillText(title, vg.Point{X: dc.Max.X / 2, Y: dc.Max.Y - 6},
		fmt.Sprintf("%s: %s", sr.Name, sr.Description))
	title.Font.Size = vg.Points(8)
	dc.FillText(title, vg.Point{X: dc.Max.X / 2, Y: dc.Max.Y - 20},
		fmt.Sprintf("attempts answered 2xx per second, by when they were sent, in %v bins; dashed: the server's request limit; bound %s", binWidth, fmtDur(sr.Bound)))
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadTop: titleSpace, PadX: vg.Points(12), PadY: vg.Points(8), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadBottom: vg.Points(4)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			if i*cols+j < len(rs) {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}

	path := filepath.Join(dir, sr.Name+".png")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// limitLine is the server's nominal request limit over [0, end], as the
// points of a step line; none when nothing limits requests.
func limitLine(s pacetest.Scenario, end time.Duration) plotter.XYs {
	const step = 10 * time.Millisecond
	var pts plotter.XYs
	prev := math.NaN()
	for t := time.Duration(0); t <= end; t += step {
		v := s.LimitAt(t)
		if math.IsInf(v, 1) {
			return nil
		}
		if v != prev {
			if len(pts) > 0 {
				pts = append(pts, plotter.XY{X: t.Seconds(), Y: prev})
			}
			pts = append(pts, plotter.XY{X: t.Seconds(), Y: v})
			prev = v
		}
	}
	if len(pts) > 0 {
		pts = append(pts, plotter.XY{X: end.Seconds(), Y: prev})
	}
	return pts
}

// panel is one contender's accepted-requests timeline over the server's
// request limit.
func panel(r contenderRun, limit plotter.XYs, end time.Duration, ymax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s, %d failed", r.Contender, fmtDur(r.Elapsed), r.Failed)
	p.Title.TextStyle.Font.Size = vg.Points(9)
	p.X.Min, p.X.Max = 0, end.Seconds()
	p.Y.Min, p.Y.Max = 0, ymax
	p.X.Tick.Label.Font.Size = vg.Points(7)
	p.Y.Tick.Label.Font.Size = vg.Points(7)
	p.X.Label.TextStyle.Font.Size = vg.Points(8)
	p.Y.Label.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())

	if len(limit) > 0 {
		ll, err := plotter.NewLine(limit)
		if err != nil {
			return nil, err
		}
		ll.Color = color.Black
		ll.Width = vg.Points(0.8)
		ll.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(ll)
	}

	// A step line: each bin is flat over its width, so the area under it
	// is the number of requests answered 2xx.
	w := r.TimelineBin.Seconds()
	pts := plotter.XYs{{X: 0, Y: 0}}
	for j, v := range r.Timeline {
		pts = append(pts, plotter.XY{X: float64(j) * w, Y: v}, plotter.XY{X: float64(j+1) * w, Y: v})
	}
	pts = append(pts, plotter.XY{X: pts[len(pts)-1].X, Y: 0})
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	c := palette[contenderIndex(r.Contender)%len(palette)]
	l.Color = c
	l.Width = vg.Points(1.2)
	l.FillColor = withAlpha(c, 0x50)
	p.Add(l)
	return p, nil
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}

func contenderIndex(name string) int {
	for i, c := range contenders {
		if c.Name == name {
			return i
		}
	}
	return 0
}
