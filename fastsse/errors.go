package fastsse

import (
	"errors"
	"fmt"
)

// Errors returned by the encoder. AppendEvent appends nothing when it returns one.
var (
	// ErrDataRequired is lasse's data_required: an event must carry data.
	// Send an explicitly empty message with a non-nil, empty Event.DataBytes.
	ErrDataRequired = errors.New("fastsse: event data required")
	// ErrInvalidID reports an event id containing CR, LF or NUL.
	ErrInvalidID = errors.New("fastsse: event id contains CR, LF or NUL")
	// ErrInvalidType reports an event type containing CR or LF.
	ErrInvalidType = errors.New("fastsse: event type contains CR or LF")
	// ErrInvalidRetry reports a negative retry.
	ErrInvalidRetry = errors.New("fastsse: negative retry")
)

// Errors returned when an endpoint is built, and by Conn's methods.
var (
	// ErrNilHandler is lasse's module_option_missing: New was given no handler.
	ErrNilHandler = errors.New("fastsse: nil handler")
	// ErrDenseUnsupported is New's answer to TransportDense where it cannot
	// run (outside Linux).
	ErrDenseUnsupported = errors.New("fastsse: the dense transport needs Linux")
	// ErrClosed is returned by Conn methods once the connection has ended.
	ErrClosed = errors.New("fastsse: connection closed")
	// ErrQueueFull is returned by Notify and Info when the connection's queue is
	// full and its overflow policy is OverflowDropNewest: the message was dropped.
	ErrQueueFull = errors.New("fastsse: queue full, message dropped")
	// ErrIDSet is returned by Group.Publish for an event with an ID in a
	// group that keeps replay: such a group numbers its events itself.
	ErrIDSet = errors.New("fastsse: a group with replay assigns event ids: leave Event.ID empty")
	// ErrInvalidLimits is returned by New and Conn.SetLimits for Limits with
	// a negative field, and by New for an unknown Conflation.
	ErrInvalidLimits = errors.New("fastsse: negative limit or unknown conflation")
)

// Reasons passed to Terminate and returned by Conn.Err. A recovered panic is
// reported as a *PanicError.
var (
	// ErrStopped: a callback returned Stop, or Conn.Close was called.
	ErrStopped = errors.New("fastsse: stream stopped")
	// ErrRefused: Init answered NoContent or Reply, so no stream was opened.
	ErrRefused = errors.New("fastsse: stream refused by Init")
	// ErrClientGone: a write failed because the client went away. The reason
	// wraps the write error.
	ErrClientGone = errors.New("fastsse: client gone")
	// ErrWriteFailed: a write failed for another cause (a deadline, for one). The
	// reason wraps the write error.
	ErrWriteFailed = errors.New("fastsse: write failed")
	// ErrShutdown: the server is shutting down (Server.Shutdown, or
	// Endpoint.Drain).
	ErrShutdown = errors.New("fastsse: server shutting down")
	// ErrLifetime: the stream reached Options.MaxLifetime.
	ErrLifetime = errors.New("fastsse: stream lifetime reached")
	// ErrSlowConsumer: the connection's queue overflowed under OverflowClose.
	// Notify returns it to the sender that overflowed the queue.
	ErrSlowConsumer = errors.New("fastsse: slow consumer closed")
)

// PanicError is the Terminate reason for a panic recovered in a callback.
type PanicError struct {
	// Value is what the callback panicked with.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("fastsse: panic in callback: %v", e.Value)
}

// Unwrap returns Value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
