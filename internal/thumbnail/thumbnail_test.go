package thumbnail

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFit(t *testing.T) {
	for _, tc := range []struct{ w, h, tw, th int }{
		{1200, 900, 800, 600},
		{1600, 900, 800, 450},
		{900, 1600, 337, 600},
		{640, 480, 640, 480},
		{10000, 1, 800, 1},
	} {
		if tw, th := Fit(tc.w, tc.h); tw != tc.tw || th != tc.th {
			t.Errorf("Fit(%d, %d) = %d×%d, want %d×%d", tc.w, tc.h, tw, th, tc.tw, tc.th)
		}
	}
}

func TestProbeAndMake(t *testing.T) {
	data := pngOf(t, 1200, 900)
	info, ok := Probe(bytes.NewReader(data))
	if !ok || info.Format != "png" || info.Width != 1200 || info.Height != 900 {
		t.Fatalf("Probe = %+v, %v", info, ok)
	}
	if !Wanted(info) {
		t.Fatal("a 1200×900 image gets no preview")
	}
	thumb, w, h, err := Make(bytes.NewReader(data), info)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
	if err != nil || cfg.Width != 800 || cfg.Height != 600 || w != 800 || h != 600 {
		t.Fatalf("preview %d×%d (%v), said %d×%d", cfg.Width, cfg.Height, err, w, h)
	}
	if _, ok := Probe(bytes.NewReader([]byte("not an image"))); ok {
		t.Error("Probe accepted text")
	}
	if Wanted(Info{Width: 640, Height: 480}) || Wanted(Info{Width: 5000, Height: 5000}) {
		t.Error("Wanted for a small or a huge image")
	}
	// A header that claims more pixels than MaxPixels is not decoded.
	if _, _, _, err := Make(bytes.NewReader(data), Info{Width: 5000, Height: 5000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Make of a huge image: %v", err)
	}
}
