package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat times;
// it is 100 on every Linux we run on.
const clockTick = 10 * time.Millisecond

func parsePIDs(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("-pids: %q is not a process id", f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// cpuTime sums the user and system CPU time of the processes.
func cpuTime(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, fmt.Errorf("CPU time of %d: %w", pid, err)
		}
		// The command name (field 2) may hold spaces; count from its ")".
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return 0, fmt.Errorf("CPU time of %d: malformed stat", pid)
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 13 {
			return 0, fmt.Errorf("CPU time of %d: malformed stat", pid)
		}
		// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
		for _, f := range fields[11:13] {
			ticks, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("CPU time of %d: %w", pid, err)
			}
			total += time.Duration(ticks) * clockTick
		}
	}
	return total, nil
}

// ioSyscalls sums the read and write syscalls (syscr + syscw in
// /proc/<pid>/io) of the processes; pid 0 is this one. Every read(2) and
// write(2) counts, a socket read that finds nothing (EAGAIN) included.
func ioSyscalls(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		name := "/proc/self/io"
		if pid != 0 {
			name = "/proc/" + strconv.Itoa(pid) + "/io"
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return 0, fmt.Errorf("syscalls of %d: %w", pid, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "syscr" && k != "syscw") {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("syscalls of %d: %w", pid, err)
			}
			total += n
		}
	}
	return total, nil
}

// usage is what the run reads of the processes before and after the load:
// the nodes' CPU time (-pids), and the read and write syscalls of this
// process (the sender, in embedded mode) and of the nodes (the owners).
type usage struct {
	cpu            time.Duration
	sender, owners int64
}

func readUsage(pids []int) (u usage, err error) {
	if u.cpu, err = cpuTime(pids); err != nil {
		return u, err
	}
	if u.sender, err = ioSyscalls([]int{0}); err != nil {
		return u, err
	}
	u.owners, err = ioSyscalls(pids)
	return u, err
}
