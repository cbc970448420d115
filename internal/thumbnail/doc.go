// Package thumbnail reads the size of an image file and makes the small
// JPEG preview Matrix clients show for it (info.thumbnail_*), with bounded
// memory: the size comes from the header alone, and only images up to
// MaxPixels are decoded, one at a time per process.
//
// JPEG, PNG and GIF (standard library) and WebP (golang.org/x/image/webp)
// are read; scaling is golang.org/x/image/draw's approximate bilinear.
// It imports nothing of the bridge.
package thumbnail // import "github.com/mxomemo/xmpp-bridge/internal/thumbnail"
