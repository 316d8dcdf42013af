package loadtest

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// procRSS returns the resident set size of process pid (0: this process) in
// bytes from /proc/PID/status, or 0 when it cannot be read.
func procRSS(pid int) int64 {
	path := "/proc/self/status"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte("VmRSS:"))
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+len("VmRSS:"):])
	if len(f) < 2 || string(f[1]) != "kB" {
		return 0
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}

// selfRSS is this process's resident set size in bytes (0 when unknown).
func selfRSS() int64 { return procRSS(0) }

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times; 100 on every
// Linux platform Go supports.
const clockTicks = 100

// procCPU returns the user + system CPU time of process pid from
// /proc/PID/stat, or 0 when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+s) * time.Second / clockTicks
}

// procsRSS is the sum of the RSS of pids, or 0 when one cannot be read.
func procsRSS(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		n := procRSS(pid)
		if n == 0 {
			return 0
		}
		sum += n
	}
	return sum
}

// procsCPU is the sum of the CPU time of pids.
func procsCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += procCPU(pid)
	}
	return sum
}
