package engine

import (
	"time"
	"unicode/utf8"
)

// Request is one check: spend Hits from the bucket of (UserID, Action).
type Request struct {
	// UserID and Action name the bucket. Each must be 1 to MaxKeyLen bytes
	// of valid UTF-8.
	UserID, Action string
	// Limit is how many hits each Window admits: 1 to MaxLimit.
	Limit int64
	// Window is the period of Limit, within the store's window range
	// (1 s to 1 h unless configured otherwise).
	Window time.Duration
	// Burst is the bucket's capacity for TokenBucket and GCRA: how many
	// hits may pass at once after a quiet period. 0 means Limit. The window
	// algorithms, StrictWindow (the default) among them, take only 0 or
	// Limit: a burst needs TokenBucket or GCRA named.
	Burst int64
	// Hits is the cost of this check, 0 to the bucket's capacity. 0 spends
	// nothing and reports whether one more hit would pass.
	Hits int64
	// Algorithm picks the algorithm; the zero value is StrictWindow, at
	// most Limit in any rolling Window. A key's buckets under different
	// algorithms are separate.
	Algorithm Algorithm
	// DryRun spends nothing: the decision says whether Hits would pass now
	// (and if not, RetryAfter says when), while Remaining and ResetAfter
	// describe the bucket as it stands. Multi-limit checks use it to find
	// out whether every limit admits before any is spent.
	DryRun bool
}

// Hard bounds on a request, whatever the configuration.
const (
	// MaxKeyLen is the longest UserID or Action, in bytes.
	MaxKeyLen = 256
	// MaxLimit is the largest Limit or Burst.
	MaxLimit = 1_000_000_000_000
	// maxFill bounds Burst*Window/Limit, the time an empty bucket takes to
	// fill, so that no time computation can overflow.
	maxFill = 1 << 58
	// HardMaxWindow is the longest window a store may be configured for.
	HardMaxWindow = 366 * 24 * time.Hour
)

// validate checks r against the window range [minW, maxW] and returns its
// bucket shape. Errors are *ArgumentError.
func (r *Request) validate(minW, maxW time.Duration) (Limit, error) {
	if err := validateName("user_id", r.UserID); err != nil {
		return Limit{}, err
	}
	if err := validateName("action", r.Action); err != nil {
		return Limit{}, err
	}
	return r.shape(minW, maxW)
}

// shape validates everything but the ids and returns the bucket's shape.
func (r *Request) shape(minW, maxW time.Duration) (Limit, error) {
	if r.Algorithm >= numAlgorithms {
		return Limit{}, invalid("algorithm", "unknown algorithm %d", r.Algorithm)
	}
	if r.Limit <= 0 || r.Limit > MaxLimit {
		return Limit{}, invalid("limit", "%d is outside 1 to %d", r.Limit, int64(MaxLimit))
	}
	if r.Window < minW || r.Window > maxW {
		return Limit{}, invalid("window", "%v is outside %v to %v", r.Window, minW, maxW)
	}
	lim := Limit{Limit: r.Limit, Window: r.Window, Burst: r.Burst}
	switch {
	case r.Burst == 0:
		lim.Burst = r.Limit
	case r.Burst < 0 || r.Burst > MaxLimit:
		return Limit{}, invalid("burst", "%d is outside 0 to %d", r.Burst, int64(MaxLimit))
	case r.Algorithm != TokenBucket && r.Algorithm != GCRA && r.Burst != r.Limit:
		return Limit{}, invalid("burst", "%v takes no burst other than limit", r.Algorithm)
	}
	if fill, _, ok := mul(uint64(lim.Burst), uint64(lim.Window)).div(uint64(lim.Limit)); !ok || fill > maxFill {
		return Limit{}, invalid("burst", "burst/limit*window is longer than %v", time.Duration(maxFill))
	}
	if r.Hits < 0 || r.Hits > lim.Burst {
		return Limit{}, invalid("hits", "%d is outside 0 to the bucket's capacity %d", r.Hits, lim.Burst)
	}
	return lim, nil
}

// ValidateWithin checks req as a store with the window range
// [minWindow, maxWindow] would, for callers that validate limits before
// any store sees them (a rules file at start-up, say).
func ValidateWithin(req Request, minWindow, maxWindow time.Duration) error {
	_, err := req.validate(minWindow, maxWindow)
	return err
}

// ValidateIDs checks a user id and an action as Check does, for callers
// that need a key's place before they have a whole request.
func ValidateIDs(userID, action string) error {
	if err := validateName("user_id", userID); err != nil {
		return err
	}
	return validateName("action", action)
}

func validateName(field, s string) error {
	switch {
	case s == "":
		return invalid(field, "empty")
	case len(s) > MaxKeyLen:
		return invalid(field, "%d bytes, more than %d", len(s), MaxKeyLen)
	case !isASCII(s) && !utf8.ValidString(s):
		return invalid(field, "not valid UTF-8")
	}
	return nil
}

// isASCII is the common case of validation, cheaper than utf8.ValidString
// for the short strings ids usually are.
func isASCII(s string) bool {
	var or byte
	for i := 0; i < len(s); i++ {
		or |= s[i]
	}
	return or < utf8.RuneSelf
}

// CheckID identifies identical checks: the same bucket (key and
// algorithm), the same shape and the same hits. Checks with one CheckID at
// one instant get the same answer, which is what lets a forwarder coalesce
// them, remember a denial, or spend a lease on them.
type CheckID struct {
	Key       Key
	Algorithm Algorithm
	Limit     int64
	Window    time.Duration
	Burst     int64
	Hits      int64
	DryRun    bool
}

// IDOf returns the CheckID of req on the bucket named by k.
func IDOf(k Key, req Request) CheckID {
	return CheckID{k, req.Algorithm, req.Limit, req.Window, req.Burst, req.Hits, req.DryRun}
}
