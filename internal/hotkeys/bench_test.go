package hotkeys

import (
	"runtime"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
)

// BenchmarkLastAnswersStore is the cost a forwarded check pays to remember
// its owner's answer: one shard lock and a map write.
func BenchmarkLastAnswersStore(b *testing.B) {
	l := NewLastAnswers(bucket.SystemClock())
	req := bucket.Request{Limit: 100, Window: time.Minute, Hits: 1}
	d := bucket.Decision{Allowed: true, Remaining: 50}
	i := uint64(0)
	for b.Loop() {
		i++
		l.Store(bucket.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: i % 50_000}, req, d, 0)
	}
}

// BenchmarkLastAnswersHot is the common case: answers for a few thousand
// keys, stored again and again.
func BenchmarkLastAnswersHot(b *testing.B) {
	l := NewLastAnswers(bucket.SystemClock())
	req := bucket.Request{Limit: 100, Window: time.Minute, Hits: 1}
	d := bucket.Decision{Allowed: true, Remaining: 50}
	i := uint64(0)
	for b.Loop() {
		i = (i + 1) % 4096
		l.Store(bucket.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: i}, req, d, 0)
	}
}

// BenchmarkLastAnswersFull is the table's memory when full: bytes per
// remembered bucket, at its bound of 64k.
func BenchmarkLastAnswersFull(b *testing.B) {
	req := bucket.Request{Limit: 100, Window: time.Hour, Hits: 1}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := NewLastAnswers(bucket.SystemClock())
		for i := range uint64(Shards * lastPerShard) {
			l.Store(bucket.Key{Hi: i * 0x9e3779b97f4a7c15, Lo: i}, req, bucket.Decision{Remaining: 1}, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(Shards*lastPerShard), "B/bucket")
		runtime.KeepAlive(l)
	}
}
