package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
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

// plotScenario draws accepted requests per second over time, one line per
// contender, with the server's limit, into dir/<scenario>.png.
func plotScenario(dir string, s scenario, rs []result) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s", s.Name, s.Description)
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = fmt.Sprintf("200 answers per second (%v bins)", binWidth)
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())

	var end time.Duration
	for _, r := range rs {
		end = max(end, r.Wall)
	}
	limit := make(plotter.XYs, 0, 2*len(s.Schedule)+2)
	prev := s.Config.Rate
	limit = append(limit, plotter.XY{X: 0, Y: prev})
	for _, rc := range s.Schedule {
		limit = append(limit, plotter.XY{X: rc.At.Seconds(), Y: prev}, plotter.XY{X: rc.At.Seconds(), Y: rc.Rate})
		prev = rc.Rate
	}
	limit = append(limit, plotter.XY{X: end.Seconds(), Y: prev})
	ll, err := plotter.NewLine(limit)
	if err != nil {
		return "", err
	}
	ll.Color = color.Black
	ll.Width = vg.Points(1)
	ll.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(ll)
	p.Legend.Add("server limit", ll)

	for _, r := range rs {
		// Step lines: each bin is flat over its width, so the area under a
		// line is the number of requests.
		pts := make(plotter.XYs, 0, 2*len(r.Timeline)+1)
		w := r.TimelineBin.Seconds()
		for j, v := range r.Timeline {
			pts = append(pts, plotter.XY{X: float64(j) * w, Y: v}, plotter.XY{X: float64(j+1) * w, Y: v})
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return "", err
		}
		l.Color = palette[contenderIndex(r.Contender)%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(r.Contender, l)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Legend.Padding = vg.Points(1)
	p.Y.Min = 0

	path := filepath.Join(dir, s.Name+".png")
	c := vg.Length(7) * vg.Inch
	if err := p.Save(c, c*0.5, path); err != nil {
		return "", err
	}
	return path, nil
}

func contenderIndex(name string) int {
	for i, c := range contenders {
		if c.Name == name {
			return i
		}
	}
	return 0
}
