package thumbnail

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"

	// Decoders for Probe and Make.
	_ "image/gif"
	_ "image/png"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// Limits of the preview.
const (
	// MaxWidth and MaxHeight bound the preview; smaller images get none.
	MaxWidth  = 800
	MaxHeight = 600
	// MaxPixels bounds the images that are decoded: 12 megapixels
	// (4000×3000) take at most 48 MiB as RGBA (twice that for 16-bit PNG).
	MaxPixels = 12_000_000
	// jpegQuality of the preview.
	jpegQuality = 80
)

// ErrTooLarge: the image has more than MaxPixels.
var ErrTooLarge = errors.New("thumbnail: image too large to decode")

// Info is an image's format and size.
type Info struct {
	Format        string
	Width, Height int
}

// Probe reads the header of an image: ok is false when r is no image of a
// known format.
func Probe(r io.Reader) (Info, bool) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return Info{}, false
	}
	return Info{Format: format, Width: cfg.Width, Height: cfg.Height}, true
}

// Wanted reports whether an image of info's size gets a preview: larger
// than the preview's bounds, and small enough to decode.
func Wanted(info Info) bool {
	return (info.Width > MaxWidth || info.Height > MaxHeight) && int64(info.Width)*int64(info.Height) <= MaxPixels
}

// Fit is the size of the preview of a w×h image: within MaxWidth×MaxHeight,
// the aspect ratio kept, never upscaled, at least 1×1.
func Fit(w, h int) (int, int) {
	if w <= MaxWidth && h <= MaxHeight {
		return w, h
	}
	tw, th := MaxWidth, h*MaxWidth/w
	if th > MaxHeight {
		tw, th = w*MaxHeight/h, MaxHeight
	}
	return max(tw, 1), max(th, 1)
}

// sem lets one image be decoded at a time, so that previews never hold
// more than one decoded image in memory.
var sem = make(chan struct{}, 1)

// Make decodes the image r holds (info from Probe) and returns its preview
// as JPEG with its size.
func Make(r io.Reader, info Info) (data []byte, w, h int, err error) {
	if int64(info.Width)*int64(info.Height) > MaxPixels {
		return nil, 0, 0, ErrTooLarge
	}
	sem <- struct{}{}
	defer func() { <-sem }()
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("thumbnail: failed to decode image: %w", err)
	}
	b := img.Bounds()
	if int64(b.Dx())*int64(b.Dy()) > MaxPixels {
		// The header lied.
		return nil, 0, 0, ErrTooLarge
	}
	w, h = Fit(b.Dx(), b.Dy())
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	// JPEG has no alpha: transparent parts become white, not black.
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, draw.Over, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: jpegQuality}); err != nil {
		return nil, 0, 0, fmt.Errorf("thumbnail: failed to encode preview: %w", err)
	}
	return buf.Bytes(), w, h, nil
}
