package conn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
)

// Sentinel errors; every error returned by Dial wraps exactly one of them.
var (
	ErrBadJID        = errors.New("conn: invalid XMPP address, expected user@domain")
	ErrUnreachable   = errors.New("conn: XMPP server unreachable")
	ErrNoTLS         = errors.New("conn: XMPP server does not offer TLS")
	ErrCertificate   = errors.New("conn: XMPP server certificate is not trusted")
	ErrWrongPassword = errors.New("conn: wrong password or unknown account")
	ErrAuthFailed    = errors.New("conn: authentication failed")
	ErrStream        = errors.New("conn: XMPP stream negotiation failed")
)

// IsPermanent reports whether retrying with the same settings cannot help:
// the user (or the admin) has to change something first.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrBadJID) || errors.Is(err, ErrWrongPassword)
}

// stage says where in the connection an error happened, which decides how an
// otherwise ambiguous error (an EOF, a stream error) is classified.
type stage int

const (
	stageDial stage = iota
	stageTLS
	stageSASL
	stageStream
)

// classify wraps err with the sentinel matching what went wrong.
func classify(st stage, err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrBadJID, ErrUnreachable, ErrNoTLS, ErrCertificate, ErrWrongPassword, ErrAuthFailed, ErrStream} {
		if errors.Is(err, s) {
			return err
		}
	}
	if isCertError(err) {
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		// The server stopped answering (at any stage): Dial's timeout.
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	var recordErr tls.RecordHeaderError
	if errors.As(err, &recordErr) {
		// Direct TLS to a port that speaks plain XMPP (or something else).
		return fmt.Errorf("%w: the server did not answer with TLS: %w", ErrNoTLS, err)
	}
	switch st {
	case stageSASL:
		switch cond := saslCondition(err); cond {
		case "not-authorized", "credentials-expired":
			if text := strings.TrimSpace(saslText(err)); text != "" {
				return fmt.Errorf("%w (%s: %s)", ErrWrongPassword, cond, text)
			}
			return fmt.Errorf("%w (%s)", ErrWrongPassword, cond)
		case "":
			return fmt.Errorf("%w: %w", ErrAuthFailed, err)
		default:
			return fmt.Errorf("%w: %s", ErrAuthFailed, cond)
		}
	case stageTLS:
		// A server that cannot do TLS typically refuses or just closes the
		// stream when asked to start it.
		return fmt.Errorf("%w: %w", ErrNoTLS, err)
	case stageDial:
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if isNetError(err) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return fmt.Errorf("%w: %w", ErrStream, err)
}

func isCertError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verification)
}

func isNetError(err error) bool {
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
	)
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, net.ErrClosed)
}

// saslCondition extracts the RFC 6120 SASL failure condition from err.
// mellium returns its SASL failures as a type from an internal package, so
// the condition is read by reflection: any error in the chain that is a
// struct with a fmt.Stringer field named Condition.
func saslCondition(err error) string {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("Condition"); f.IsValid() && f.CanInterface() {
				if s, ok := f.Interface().(fmt.Stringer); ok {
					return strings.ToLower(s.String())
				}
			}
		}
		err = errors.Unwrap(err)
	}
	return ""
}
