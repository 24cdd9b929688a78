package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// ErrNotOwner means the receiver of a forwarded check does not own its
// key in its current ring.
var ErrNotOwner = errors.New("transport: receiver is not the key's owner")

// WireCode maps an error to the wire's Code.
func WireCode(err error) drlv1.Code {
	switch {
	case err == nil:
		return drlv1.Code_CODE_OK
	case errors.Is(err, bucket.ErrInvalidArgument):
		return drlv1.Code_CODE_INVALID_ARGUMENT
	case errors.Is(err, ErrNotOwner):
		return drlv1.Code_CODE_NOT_OWNER
	case errors.Is(err, context.DeadlineExceeded):
		return drlv1.Code_CODE_DEADLINE_EXCEEDED
	case errors.Is(err, drl.ErrUnavailable), errors.Is(err, bucket.ErrClosed), errors.Is(err, drl.ErrClosed):
		return drlv1.Code_CODE_UNAVAILABLE
	}
	return drlv1.Code_CODE_INTERNAL
}

// ErrorFromWire turns a check's error in a CheckBatch answer back into our
// errors: an invalid argument becomes a *bucket.ArgumentError naming the
// field.
func ErrorFromWire(e *drlv1.Error) error {
	if e.GetCode() == drlv1.Code_CODE_INVALID_ARGUMENT {
		return &bucket.ArgumentError{Field: e.GetField(), Reason: e.GetMessage()}
	}
	if err := ErrorFromCode(e.GetCode(), e.GetMessage()); err != nil {
		return fmt.Errorf("%w: %s", err, e.GetMessage())
	}
	return nil
}

// ErrorFromCode turns a wire Code back into one of our sentinels.
func ErrorFromCode(c drlv1.Code, msg string) error {
	switch c {
	case drlv1.Code_CODE_OK:
		return nil
	case drlv1.Code_CODE_INVALID_ARGUMENT:
		return &bucket.ArgumentError{Field: "request", Reason: msg}
	case drlv1.Code_CODE_NOT_OWNER:
		return ErrNotOwner
	case drlv1.Code_CODE_DEADLINE_EXCEEDED:
		return context.DeadlineExceeded
	case drlv1.Code_CODE_UNAVAILABLE:
		return drl.ErrUnavailable
	}
	return errors.New("transport: internal error: " + msg)
}

// grpcCode maps an error to a gRPC status code.
func grpcCode(err error) codes.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	switch WireCode(err) {
	case drlv1.Code_CODE_INVALID_ARGUMENT:
		return codes.InvalidArgument
	case drlv1.Code_CODE_DEADLINE_EXCEEDED:
		return codes.DeadlineExceeded
	case drlv1.Code_CODE_UNAVAILABLE, drlv1.Code_CODE_NOT_OWNER:
		return codes.Unavailable
	}
	if errors.Is(err, drl.ErrNotFound) {
		return codes.NotFound
	}
	return codes.Internal
}

// GRPCError returns err as a gRPC status error; an invalid argument carries
// the field at fault as a BadRequest detail.
func GRPCError(err error) error {
	st := status.New(grpcCode(err), err.Error())
	if ae, ok := asArgumentError(err); ok {
		if withField, e := st.WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: ae.Field, Description: ae.Reason}},
		}); e == nil {
			st = withField
		}
	}
	return st.Err()
}

// ErrorFromGRPC maps a gRPC error from a node back to our sentinels, so
// that callers can use errors.Is whatever the hop: InvalidArgument becomes
// a *bucket.ArgumentError naming the field, and unreachable or timed-out
// calls match drl.ErrUnavailable.
func ErrorFromGRPC(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.InvalidArgument:
		ae := &bucket.ArgumentError{Field: "request", Reason: st.Message()}
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
				ae = &bucket.ArgumentError{Field: br.FieldViolations[0].Field, Reason: br.FieldViolations[0].Description}
			}
		}
		return ae
	case codes.Unauthenticated:
		return fmt.Errorf("%w: %s", drl.ErrUnauthenticated, st.Message())
	case codes.PermissionDenied:
		return fmt.Errorf("%w: %s", drl.ErrPermissionDenied, st.Message())
	case codes.NotFound:
		return fmt.Errorf("%w: %s", drl.ErrNotFound, st.Message())
	case codes.DeadlineExceeded:
		return errors.Join(drl.ErrUnavailable, context.DeadlineExceeded)
	case codes.Canceled:
		return context.Canceled
	}
	return errors.Join(drl.ErrUnavailable, err)
}

// httpStatus maps an error to an HTTP status code.
func httpStatus(err error) int {
	switch grpcCode(err) {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Canceled:
		return 499 // the client went away; nobody reads this
	case codes.NotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func asArgumentError(err error) (*bucket.ArgumentError, bool) {
	var ae *bucket.ArgumentError
	ok := errors.As(err, &ae)
	return ae, ok
}
