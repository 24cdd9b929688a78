// Package bucket is the rate-limit engine: the algorithms and the sharded,
// expiring in-memory store that holds one bucket per (user, action) key.
//
// It imports only the standard library. Nothing here reads the wall clock
// inside a decision: every algorithm is a pure state machine over
// (state, now, hits), and the Store takes its time from an injected Clock.
//
// A walk-through:
//
//	s, err := bucket.NewStore(bucket.StoreConfig{})   // defaults: 256 shards, 1 s to 1 h windows
//	defer s.Close()
//	// The default algorithm, StrictWindow: at most 5 in any rolling minute.
//	d, err := s.Check(bucket.Request{
//		UserID: "u1", Action: "login",
//		Limit: 5, Window: time.Minute, Hits: 1,
//	})
//	if err != nil { /* bad input: errors.Is(err, bucket.ErrInvalidArgument) */ }
//	if !d.Allowed { /* wait d.RetryAfter */ }
//
// Being over the limit is not an error; it is a Decision with Allowed false.
package bucket
