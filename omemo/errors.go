package omemo

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrUntrusted: the device's identity key is not trusted under the policy.
	ErrUntrusted = errors.New("omemo: device not trusted")
	// ErrNoSession: no session with the device and no bundle to start one.
	ErrNoSession = errors.New("omemo: no session")
	// ErrBadMAC: a message failed authentication (wrong key, tampered).
	ErrBadMAC = errors.New("omemo: bad MAC")
	// ErrDuplicate: the message was already decrypted (replay).
	ErrDuplicate = errors.New("omemo: duplicate message")
	// ErrTooManySkipped: the message lies too far ahead in its chain.
	ErrTooManySkipped = errors.New("omemo: too many skipped messages")
	// ErrNotForThisDevice: the element holds no key for our device.
	ErrNotForThisDevice = errors.New("omemo: message not encrypted for this device")
	// ErrBadSignature: a signed prekey signature did not verify.
	ErrBadSignature = errors.New("omemo: bad signature")
	// ErrMalformed: input that does not parse (protobuf, XML, key sizes).
	ErrMalformed = errors.New("omemo: malformed input")
	// ErrUnknownPreKey: a key exchange names a prekey we do not (any longer) have.
	ErrUnknownPreKey = errors.New("omemo: unknown prekey")
	// ErrNoRecipients: Encrypt produced no key for any recipient.
	ErrNoRecipients = errors.New("omemo: no recipient device could be encrypted for")
	// ErrNoIdentity: the Manager was used before Setup.
	ErrNoIdentity = errors.New("omemo: no identity, call Setup first")
	// ErrEnvelope: an SCE envelope is invalid or its from does not match.
	ErrEnvelope = errors.New("omemo: invalid SCE envelope")
)
