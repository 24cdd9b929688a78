package transport

import (
	"fmt"

	"github.com/drlimit/drl/bucket"
)

// FailPolicy says what a check answers when the key's owner cannot be
// reached within the check's deadline. cluster re-exports it.
type FailPolicy uint8

const (
	// FailDefault means the node's configured policy.
	FailDefault FailPolicy = iota
	// FailLocal decides on a provisional bucket kept by the node that
	// received the check, with limit/N (N the cluster size it last saw),
	// until the owner answers again or the ring changes.
	FailLocal
	// FailOpen allows the check.
	FailOpen
	// FailClosed denies the check.
	FailClosed
)

var failPolicyNames = []string{FailDefault: "", FailLocal: "local", FailOpen: "open", FailClosed: "closed"}

func (p FailPolicy) String() string {
	if int(p) < len(failPolicyNames) {
		if p == FailDefault {
			return "default"
		}
		return failPolicyNames[p]
	}
	return fmt.Sprintf("fail_policy(%d)", uint8(p))
}

// ParseFailPolicy reads a policy name: "", "local", "open" or "closed". An
// unknown name is an invalid argument naming the field fail_policy.
func ParseFailPolicy(name string) (FailPolicy, error) {
	for i, n := range failPolicyNames {
		if n == name {
			return FailPolicy(i), nil
		}
	}
	return 0, &bucket.ArgumentError{Field: "fail_policy", Reason: fmt.Sprintf("unknown policy %q: want local, open or closed", name)}
}
