package children

import "encoding/xml"

// Attr returns the value of the unqualified attribute local of start and
// whether it was present.
func Attr(start xml.StartElement, local string) (string, bool) {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}
