// Package envoyrls serves Envoy's rate limit service API
// (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit) from a drl
// cluster, so that Envoy and Istio can ask the cluster directly. Rules in
// YAML, in the spirit of envoyproxy/ratelimit's configuration, map
// descriptors to limits.
package envoyrls

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// The rules file holds one YAML document per domain:
//
//	domain: edge
//	descriptors:
//	  - key: remote_address          # any value: one bucket per address
//	    rate_limit: {unit: minute, requests_per_unit: 100}
//	  - key: path
//	    value: /login                # this value only
//	    rate_limit: {unit: second, requests_per_unit: 5}
//	    shadow_mode: true            # count denials, deny nothing
//	    descriptors:                 # nested: (path=/login, user=...)
//	      - key: user
//	        rate_limit: {window: 10s, requests_per_unit: 3, algorithm: gcra}
//	  - key: health
//	    rate_limit: {unlimited: true}
//
// A request's descriptor matches a rule when each of its entries, in
// order, matches one level of the tree: a rule with the entry's key and
// value, else one with the key and no value. The rule reached by the last
// entry applies; a descriptor that stops short, or goes deeper than the
// tree, is not limited (as in envoyproxy/ratelimit).
//
// drl's additions: window (any duration within the nodes' window range)
// instead of unit, algorithm, burst, fail_policy, and name (for the
// response's current_limit).
//
// requests_per_unit means what Envoy users read it as: at most that many
// in any unit-long span (strict_window, the default). envoyproxy/ratelimit
// counts in fixed windows aligned to the clock, which let up to twice the
// number through across a boundary; algorithm: fixed_window counts in
// fixed windows here too (from a key's first hit). A rule with a burst
// and no algorithm is a token bucket.

// Domain is the rules of one domain.
type Domain struct {
	Domain      string `yaml:"domain"`
	Descriptors []Rule `yaml:"descriptors"`
}

// Rule is one level of a domain's descriptor tree.
type Rule struct {
	Key         string     `yaml:"key"`
	Value       string     `yaml:"value"`
	RateLimit   *RateLimit `yaml:"rate_limit"`
	ShadowMode  bool       `yaml:"shadow_mode"`
	Descriptors []Rule     `yaml:"descriptors"`
}

// RateLimit is a rule's limit.
type RateLimit struct {
	Name            string `yaml:"name"`
	Unit            string `yaml:"unit"`
	Window          string `yaml:"window"`
	RequestsPerUnit int64  `yaml:"requests_per_unit"`
	Burst           int64  `yaml:"burst"`
	Algorithm       string `yaml:"algorithm"`
	FailPolicy      string `yaml:"fail_policy"`
	Unlimited       bool   `yaml:"unlimited"`
}

// ErrRules is matched by every error in a rules file.
var ErrRules = errors.New("envoyrls: bad rules")

// Rules is a validated rules file, ready to match requests.
type Rules struct {
	domains map[string]*node
}

// node is one rule, compiled.
type node struct {
	path     string // `/"path"="/login"/"user"`, for the action
	limit    *limit // nil: no limit at this level
	byValue  map[[2]string]*node
	anyValue map[string]*node
}

type limit struct {
	name      string
	unlimited bool
	shadow    bool
	policy    drl.FailPolicy
	req       bucket.Request // Limit, Window, Burst, Algorithm
	unit      string         // as configured, for current_limit; "" for a window
}

// Window range that ReadRules checks limits against when the caller gives
// none: the nodes' defaults.
const (
	defaultMinWindow = bucket.DefaultMinWindow
	defaultMaxWindow = bucket.DefaultMaxWindow
)

// LoadRules reads and validates a rules file against the nodes' window
// range [minWindow, maxWindow].
func LoadRules(path string, minWindow, maxWindow time.Duration) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRules, err)
	}
	defer f.Close()
	rules, err := ReadRules(f, minWindow, maxWindow)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// ReadRules reads rules from YAML. Zero window bounds mean the nodes'
// defaults (1 s to 1 h). Unknown fields, duplicate rules, bad units and
// limits outside the bounds are errors that name the rule.
func ReadRules(r io.Reader, minWindow, maxWindow time.Duration) (*Rules, error) {
	if minWindow == 0 {
		minWindow = defaultMinWindow
	}
	if maxWindow == 0 {
		maxWindow = defaultMaxWindow
	}
	body, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRules, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	rules := &Rules{domains: map[string]*node{}}
	for doc := 0; ; doc++ {
		var d Domain
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%w: document %d: %v", ErrRules, doc, err)
		}
		if d.Domain == "" {
			return nil, fmt.Errorf("%w: document %d: no domain", ErrRules, doc)
		}
		if _, dup := rules.domains[d.Domain]; dup {
			return nil, fmt.Errorf("%w: domain %q appears twice", ErrRules, d.Domain)
		}
		root := &node{}
		c := compiler{domain: d.Domain, minW: minWindow, maxW: maxWindow}
		if err := c.children(root, d.Descriptors, "", fmt.Sprintf("domain %q: ", d.Domain)); err != nil {
			return nil, err
		}
		rules.domains[d.Domain] = root
	}
	if len(rules.domains) == 0 {
		return nil, fmt.Errorf("%w: no domains", ErrRules)
	}
	return rules, nil
}

type compiler struct {
	domain     string
	minW, maxW time.Duration
}

func (c compiler) children(parent *node, rules []Rule, path, within string) error {
	for i, r := range rules {
		where := fmt.Sprintf("%sdescriptors[%d]", within, i)
		if r.Key == "" {
			return fmt.Errorf("%w: %s: no key", ErrRules, where)
		}
		step := r.Key
		if r.Value != "" {
			step += "=" + r.Value
		}
		// The path names the rule in its buckets' action: quoted steps,
		// so that no two rules can share one.
		n := &node{path: path + "/" + strconv.Quote(r.Key)}
		if r.Value != "" {
			n.path += "=" + strconv.Quote(r.Value)
		}
		if r.Value != "" {
			if parent.byValue == nil {
				parent.byValue = map[[2]string]*node{}
			}
			if parent.byValue[[2]string{r.Key, r.Value}] != nil {
				return fmt.Errorf("%w: %s: %s appears twice at this level", ErrRules, where, step)
			}
			parent.byValue[[2]string{r.Key, r.Value}] = n
		} else {
			if parent.anyValue == nil {
				parent.anyValue = map[string]*node{}
			}
			if parent.anyValue[r.Key] != nil {
				return fmt.Errorf("%w: %s: key %s without a value appears twice at this level", ErrRules, where, r.Key)
			}
			parent.anyValue[r.Key] = n
		}
		if r.RateLimit != nil {
			l, err := c.limit(r)
			if err != nil {
				return fmt.Errorf("%w: %s (%s): rate_limit: %v", ErrRules, where, step, err)
			}
			n.limit = l
		} else if len(r.Descriptors) == 0 {
			return fmt.Errorf("%w: %s (%s): neither a rate_limit nor descriptors", ErrRules, where, step)
		}
		if err := c.children(n, r.Descriptors, n.path, where+" ("+step+"): "); err != nil {
			return err
		}
	}
	return nil
}

var units = map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}

func (c compiler) limit(r Rule) (*limit, error) {
	rl := r.RateLimit
	l := &limit{name: rl.Name, shadow: r.ShadowMode, unlimited: rl.Unlimited}
	if l.unlimited {
		if rl.RequestsPerUnit != 0 || rl.Unit != "" || rl.Window != "" {
			return nil, errors.New("unlimited takes no unit, window or requests_per_unit")
		}
		return l, nil
	}
	var window time.Duration
	switch {
	case rl.Unit != "" && rl.Window != "":
		return nil, errors.New("give unit or window, not both")
	case rl.Unit != "":
		w, ok := units[strings.ToLower(rl.Unit)]
		if !ok {
			return nil, fmt.Errorf("unit %q: want second, minute, hour or day", rl.Unit)
		}
		window, l.unit = w, strings.ToLower(rl.Unit)
	case rl.Window != "":
		w, err := time.ParseDuration(rl.Window)
		if err != nil {
			return nil, fmt.Errorf("window %q: %v", rl.Window, err)
		}
		window = w
	default:
		return nil, errors.New("no unit or window")
	}
	alg, err := bucket.ParseAlgorithm(rl.Algorithm)
	if err != nil {
		return nil, err
	}
	if rl.Algorithm == "" && rl.Burst > 0 {
		alg = bucket.TokenBucket // a burst only means something there
	}
	if l.policy, err = drl.ParseFailPolicy(rl.FailPolicy); err != nil {
		return nil, err
	}
	l.req = bucket.Request{UserID: "probe", Action: "probe", Limit: rl.RequestsPerUnit, Window: window, Burst: rl.Burst,
		Algorithm: alg, Hits: 0}
	if err := bucket.ValidateWithin(l.req, c.minW, c.maxW); err != nil {
		return nil, err
	}
	return l, nil
}

// match finds the limit for a descriptor's entries, and its bucket's ids.
func (r *Rules) match(domain string, entries [][2]string) (l *limit, user, action string, ok bool) {
	n := r.domains[domain]
	if n == nil || len(entries) == 0 {
		return nil, "", "", false
	}
	values := make([]string, len(entries))
	for i, e := range entries {
		next := n.byValue[e]
		if next == nil {
			next = n.anyValue[e[0]]
		}
		if next == nil {
			return nil, "", "", false
		}
		n = next
		values[i] = strconv.Quote(e[1])
	}
	if n.limit == nil {
		return nil, "", "", false
	}
	return n.limit, fitID(strings.Join(values, ",")), fitID(strconv.Quote(domain) + n.path), true
}

// fitID keeps an id within bucket.MaxKeyLen: a longer one is replaced by
// its SHA-256, which keeps distinct ids apart.
func fitID(s string) string {
	if len(s) <= bucket.MaxKeyLen {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}
