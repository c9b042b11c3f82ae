package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors; the API server maps them to Status responses in one place.
var (
	// ErrNotFound: no object at the key.
	ErrNotFound = errors.New("not found")
	// ErrExists: create found an object at the key.
	ErrExists = errors.New("already exists")
	// ErrConflict: a precondition on the resourceVersion or uid failed.
	ErrConflict = errors.New("conflict")
	// ErrExpired: the requested resourceVersion has been compacted or left the watch window.
	ErrExpired = errors.New("resource version expired")
	// ErrTooLarge: the requested resourceVersion is newer than the store has seen in time.
	ErrTooLarge = errors.New("resource version too large")
	// ErrRace: the extra comparisons of a Txn failed (another writer took an allocation);
	// the caller should redo the whole write.
	ErrRace = errors.New("lost a race for an allocation")
	// ErrInvalidContinue: a continue token that does not parse.
	ErrInvalidContinue = errors.New("invalid continue token")
)

// Error carries the key and a sentinel, so callers can both test the kind with errors.Is and
// report which object it concerned.
type Error struct {
	Err     error
	Key     string
	Message string
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(sentinel error, key, format string, args ...any) error {
	return &Error{Err: sentinel, Key: key, Message: fmt.Sprintf(format, args...)}
}
