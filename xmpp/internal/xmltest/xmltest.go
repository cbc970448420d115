// Package xmltest runs table-driven value ⇄ XML tests for the stanza packages
// under xmpp/.
//
// It is internal so that the tests of each package can share it without it
// becoming API; it must only be imported from _test.go files.
package xmltest

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmlstream"
)

// ErrAny matches any non-nil error in Case.Err.
var ErrAny = errors.New("xmltest: any error")

// Case is one value ⇄ XML test.
//
// Value must be a pointer. When marshaling, the value it points to is encoded
// with encoding/xml (and with its TokenReader if it implements
// xmlstream.Marshaler) and compared byte for byte with XML. When unmarshaling,
// XML is decoded into a new value of the same type and compared with Value
// using reflect.DeepEqual.
type Case struct {
	Value       any
	XML         string
	Err         error // expected unmarshal error (errors.Is, or ErrAny)
	NoMarshal   bool
	NoUnmarshal bool
}

// Run runs the cases as subtests.
func Run(t *testing.T, cases []Case) {
	t.Helper()
	for i, tc := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if !tc.NoMarshal && tc.Err == nil {
				t.Run("marshal", func(t *testing.T) {
					out, err := xml.Marshal(tc.Value)
					if err != nil {
						t.Fatalf("failed to marshal: %v", err)
					}
					if string(out) != tc.XML {
						t.Errorf("wrong XML from xml.Marshal:\nwant=%s\n got=%s", tc.XML, out)
					}
					m, ok := reflect.ValueOf(tc.Value).Elem().Interface().(xmlstream.Marshaler)
					if !ok {
						return
					}
					got, err := Encode(m.TokenReader())
					if err != nil {
						t.Fatalf("failed to encode TokenReader: %v", err)
					}
					if got != tc.XML {
						t.Errorf("wrong XML from TokenReader:\nwant=%s\n got=%s", tc.XML, got)
					}
				})
			}
			if tc.NoUnmarshal {
				return
			}
			t.Run("unmarshal", func(t *testing.T) {
				v := reflect.New(reflect.TypeOf(tc.Value).Elem())
				err := xml.Unmarshal([]byte(tc.XML), v.Interface())
				switch {
				case tc.Err == nil && err != nil:
					t.Fatalf("unexpected error: %v", err)
				case tc.Err == ErrAny && err == nil, tc.Err != nil && tc.Err != ErrAny && !errors.Is(err, tc.Err):
					t.Fatalf("wrong error: want=%v, got=%v", tc.Err, err)
				case tc.Err != nil:
					return
				}
				if got := v.Elem().Interface(); !reflect.DeepEqual(got, reflect.ValueOf(tc.Value).Elem().Interface()) {
					t.Errorf("wrong value:\nwant=%+v\n got=%+v", reflect.ValueOf(tc.Value).Elem().Interface(), got)
				}
			})
		})
	}
}

// Encode encodes all tokens of r into a string.
func Encode(r xml.TokenReader) (string, error) {
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		return "", err
	}
	if err := e.Flush(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Reader returns a token reader over s.
func Reader(s string) xml.TokenReader {
	return xml.NewDecoder(strings.NewReader(s))
}
