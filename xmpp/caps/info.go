package caps

import (
	"crypto/sha1" // #nosec G505 -- XEP-0115 mandates SHA-1 for ver.
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Namespaces used by this package.
const (
	NS     = "http://jabber.org/protocol/caps"
	NSInfo = "http://jabber.org/protocol/disco#info"
	nsData = "jabber:x:data"
)

// Errors from Ver and Verify.
var (
	ErrDuplicate   = errors.New("caps: duplicate identity, feature or form type")
	ErrBadForm     = errors.New("caps: extended info form without a hidden FORM_TYPE")
	ErrVerMismatch = errors.New("caps: ver does not match disco#info")
)

// Identity is a disco#info identity.
type Identity struct {
	Category, Type, Lang, Name string
}

// Field is a field of an extended info form.
type Field struct {
	Var    string
	Values []string
}

// Form is an XEP-0128 extended info form (type "result").
type Form struct {
	FormType string
	Fields   []Field
}

// Info is the disco#info of an entity.
type Info struct {
	Identities []Identity
	Features   []string
	Forms      []Form
}

// Notify returns the PEP notification feature for node (XEP-0163 §4.2).
func Notify(node string) string {
	return node + "+notify"
}

// Ver returns the XEP-0115 §5.1 verification string (SHA-1, base64).
// It does not modify i.
func (i Info) Ver() (string, error) {
	ids := append([]Identity(nil), i.Identities...)
	sort.Slice(ids, func(a, b int) bool {
		x, y := ids[a], ids[b]
		switch {
		case x.Category != y.Category:
			return x.Category < y.Category
		case x.Type != y.Type:
			return x.Type < y.Type
		case x.Lang != y.Lang:
			return x.Lang < y.Lang
		}
		return x.Name < y.Name
	})
	idents := make([]string, 0, len(ids))
	for n, id := range ids {
		if n > 0 && id == ids[n-1] {
			return "", fmt.Errorf("%w: identity %s/%s/%s/%s", ErrDuplicate, id.Category, id.Type, id.Lang, id.Name)
		}
		idents = append(idents, id.Category+"/"+id.Type+"/"+id.Lang+"/"+id.Name)
	}

	features := append([]string(nil), i.Features...)
	sort.Strings(features)
	for n := 1; n < len(features); n++ {
		if features[n] == features[n-1] {
			return "", fmt.Errorf("%w: feature %s", ErrDuplicate, features[n])
		}
	}

	forms := append([]Form(nil), i.Forms...)
	sort.Slice(forms, func(a, b int) bool { return forms[a].FormType < forms[b].FormType })
	for n := range forms {
		if forms[n].FormType == "" {
			return "", ErrBadForm
		}
		if n > 0 && forms[n].FormType == forms[n-1].FormType {
			return "", fmt.Errorf("%w: form %s", ErrDuplicate, forms[n].FormType)
		}
	}

	var s strings.Builder
	for _, id := range idents {
		s.WriteString(id)
		s.WriteByte('<')
	}
	for _, f := range features {
		s.WriteString(f)
		s.WriteByte('<')
	}
	for _, form := range forms {
		s.WriteString(form.FormType)
		s.WriteByte('<')
		fields := append([]Field(nil), form.Fields...)
		sort.Slice(fields, func(a, b int) bool { return fields[a].Var < fields[b].Var })
		for _, f := range fields {
			s.WriteString(f.Var)
			s.WriteByte('<')
			values := append([]string(nil), f.Values...)
			sort.Strings(values)
			for _, v := range values {
				s.WriteString(v)
				s.WriteByte('<')
			}
		}
	}
	sum := sha1.Sum([]byte(s.String())) // #nosec G401
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// Verify checks that ver (with hash algorithm hash, as advertised in a
// peer's <c/>) is the hash of i. Only "sha-1" is supported.
func (i Info) Verify(hash, ver string) error {
	if hash != "sha-1" {
		return fmt.Errorf("caps: unsupported hash %q", hash)
	}
	got, err := i.Ver()
	if err != nil {
		return err
	}
	if got != ver {
		return fmt.Errorf("%w: advertised %s, computed %s", ErrVerMismatch, ver, got)
	}
	return nil
}

// HasFeature reports whether i lists feature.
func (i Info) HasFeature(feature string) bool {
	for _, f := range i.Features {
		if f == feature {
			return true
		}
	}
	return false
}
