package engine

import (
	"errors"
	"fmt"
)

// ErrInvalidArgument is matched (errors.Is) by every error that reports
// bad input. Use errors.As with *ArgumentError to learn which field.
var ErrInvalidArgument = errors.New("bucket: invalid argument")

// ErrClosed is returned by a Store's methods after Close.
var ErrClosed = errors.New("bucket: store closed")

// ErrFenced is returned for a key the store's fence refuses (see SetFence):
// this store is no longer the key's authority.
var ErrFenced = errors.New("bucket: key fenced off")

// ArgumentError names the request field that failed validation and why.
// It matches ErrInvalidArgument.
type ArgumentError struct {
	Field  string // the field's wire name, such as "user_id" or "window"
	Reason string
}

func (e *ArgumentError) Error() string {
	return "bucket: invalid " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func invalid(field, format string, args ...any) error {
	return &ArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
