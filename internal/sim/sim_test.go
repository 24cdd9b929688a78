package sim

import (
	"testing"
)

func TestQuick(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		res, err := Run(Config{}, seed)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: events %d checks %d admitted %d faults %d trace %x worst %v", seed, res.Events, res.Checks, res.Admitted, len(res.Schedule.Faults), res.Trace, res.Worst)
		for _, v := range res.Violations {
			t.Errorf("seed %d: %v", seed, v)
		}
	}
}
