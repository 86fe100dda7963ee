// The Go peer of coreproc-bench (section "peers"): os/exec of the bench's no-op and writer
// children. Usage: peer NOOP WRITER N. Built by the bench with `go build` before its first chunk
// (so compiling is not timed); runs N iterations of each of its two loops after 3 warm-up calls
// and prints one line per sample: "plain <us>" or "capture <us>".
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func bench(key string, n int, fn func() error) {
	for i := 0; i < 3+n; i++ {
		t := time.Now()
		if err := fn(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if i >= 3 {
			fmt.Println(key, float64(time.Since(t).Nanoseconds())/1000)
		}
	}
}

func main() {
	noop, writer := os.Args[1], os.Args[2]
	n, _ := strconv.Atoi(os.Args[3])
	bench("plain", n, func() error { return exec.Command(noop).Run() })
	bench("capture", n, func() error {
		out, err := exec.Command(writer, "16").Output()
		if err == nil && len(out) != 16 {
			err = fmt.Errorf("got %d bytes", len(out))
		}
		return err
	})
}
